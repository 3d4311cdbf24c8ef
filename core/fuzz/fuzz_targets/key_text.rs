//! Key files: `SecretKey::from_text` and `PublicKey::from_text` on any UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::{PublicKey, SecretKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sk) = SecretKey::from_text(text) {
        let again = SecretKey::from_text(&sk.to_text()).expect("to_text reads back");
        assert_eq!(again.seed(), sk.seed());
        assert!(
            PublicKey::from_text(text).is_err(),
            "a secret key file read as public"
        );
        let pk = sk.public();
        assert_eq!(PublicKey::from_text(&pk.to_text()), Ok(pk));
    }
    if let Ok(pk) = PublicKey::from_text(text) {
        assert_eq!(PublicKey::from_text(&pk.to_text()), Ok(pk));
        assert!(pk.verifying_key().is_ok());
        assert!(
            SecretKey::from_text(text).is_err(),
            "a public key file read as secret"
        );
    }
});
