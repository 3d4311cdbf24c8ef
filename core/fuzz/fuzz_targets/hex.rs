//! Hex digests: `Hash::from_hex` (and `KeyId::from_hex`, the same parser) on any UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::{Hash, KeyId};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let h = Hash::from_hex(text);
    if let Ok(h) = &h {
        assert!(h.to_hex().eq_ignore_ascii_case(text));
        assert_eq!(Hash::from_hex(&h.to_hex()).as_ref(), Ok(h));
    }
    let k = KeyId::from_hex(text);
    assert_eq!(h.is_ok(), k.is_ok());
    if let (Ok(h), Ok(k)) = (h, k) {
        assert_eq!(h.0, k.0);
    }
});
