//! File names from metadata: `check_path` on any UTF-8. What it accepts must be a
//! relative path made only of normal components.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::path::{MAX_PATH_DEPTH, MAX_PATH_LEN, check_path};
use std::path::{Component, Path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if check_path(text).is_ok() {
        assert!(!text.is_empty() && text.len() <= MAX_PATH_LEN);
        assert!(!text.contains('\\') && !text.chars().any(char::is_control));
        let parts: Vec<&str> = text.split('/').collect();
        assert!(parts.len() <= MAX_PATH_DEPTH);
        assert!(
            parts
                .iter()
                .all(|p| !p.is_empty() && *p != "." && *p != "..")
        );
        let components: Vec<Component> = Path::new(text).components().collect();
        assert_eq!(components.len(), parts.len());
        assert!(components.iter().all(|c| matches!(c, Component::Normal(_))));
        assert!(Path::new("/target").join(text).starts_with("/target/"));
    }
});
