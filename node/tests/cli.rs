//! The node's command line on bad input: one line on stderr saying what was wrong, and
//! nothing kept that should not be. (Also makes `cargo test` build the `shoal-node`
//! binary that the end-to-end tests in `tests/` run.)

use std::process::Command;

fn node(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shoal-node"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn init_refuses_a_root_that_is_not_one() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("root.shoal"), b"not a root").unwrap();
    std::fs::write(d.join("cert.pem"), b"not a cert").unwrap();
    let o = node(
        d,
        &[
            "init",
            "--data",
            "n",
            "--seeder",
            "127.0.0.1:1",
            "--seeder-cert",
            "cert.pem",
            "--root",
            "root.shoal",
            "--device-type",
            "pump",
            "--site",
            "s",
            "--target",
            "t",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("root.shoal"), "{err}");
    assert!(
        !d.join("n/identity.key").exists(),
        "no identity is made for a refused setup"
    );
}

#[test]
fn status_before_any_run_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let o = node(tmp.path(), &["status", "--data", "nowhere"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("has `shoal-node run` started?"), "{err}");
}

#[test]
fn run_without_init_names_the_missing_config() {
    let tmp = tempfile::tempdir().unwrap();
    let o = node(tmp.path(), &["run", "--data", "nowhere"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("node.json"));
}
