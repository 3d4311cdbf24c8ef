//! The README's first command must keep working: `shoal-sim demo` on its defaults
//! (smaller image here to keep the test quick): a seeder and five nodes as real
//! processes install two releases, each node's image checked, and the summary printed.

use std::process::Command;

#[test]
fn demo_runs_and_shows_the_delta() {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal-sim"))
        .args(["demo", "--image-mib", "8", "--change-pct", "10"])
        .output()
        .expect("shoal-sim runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        out.status
    );
    assert!(stdout.contains("refused: tampered.shoal"), "{stdout}");
    assert!(
        stdout.contains("Summary: a device on 1.0 needs"),
        "{stdout}"
    );
    for version in ["1.0", "1.1"] {
        assert!(
            stdout.contains(&format!("All 5 devices run {version}")),
            "{stdout}"
        );
    }
    // five nodes, two releases, each node's installed file checked against the manifest
    assert_eq!(stdout.matches("BLAKE3 = release").count(), 10, "{stdout}");
    assert!(stdout.contains("WAN amplification"), "{stdout}");
    // the demo's temporary directory is gone
    let dir = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("shoal demo in "))
        .and_then(|l| l.split(' ').next())
        .expect("first line names the directory");
    assert!(!std::path::Path::new(dir).exists(), "{dir} left behind");
}

#[test]
fn demo_refuses_nonsense_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal-sim"))
        .args(["demo", "--change-pct", "101"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}
