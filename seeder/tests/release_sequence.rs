//! Runs `tests/scripts/release-sequence.sh` (the core issue's offline sequence) against
//! this build of shoal-seeder.

use std::process::Command;

#[test]
fn the_documented_release_sequence_behaves_as_specified() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/scripts/release-sequence.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_shoal-seeder"))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("all steps behaved as specified"),
        "{stdout}"
    );
}
