//! A root rotation reaching a real device over `shoal-wan/1` (`GetRoots`), and the
//! fast-forward attack it recovers from: a stolen online key (`shoal-hostile-seeder
//! --misbehave max-seq-head`) hands the device a head with seq `u64::MAX`, after which
//! every head of the genuine seeder is a replay. The operator rotates the root to a
//! new online key and restarts the seeder with it; the device walks to root v2 at its
//! next poll, keeps it, starts the head seq over under the new online keys, and
//! installs the update the genuine seeder deploys.

use shoal_tests::*;
use std::path::Path;

const MIB: usize = 1024 * 1024;

fn installed(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("installed/image.bin")).unwrap()
}

#[test]
fn rotating_the_online_key_reaches_the_device_and_ends_a_fast_forward_freeze() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let v1_root = std::fs::read(dir.join("root.shoal")).unwrap();
    let seeder = SeederProcess::start(dir);
    let addr = seeder.device_addr.clone();
    init_node(dir, &seeder, "installed", &[]);
    let v1 = bytes(MIB, 1);
    ship(dir, &seeder, &v1, "1", 1, &[]);
    assert!(run_node(dir).success(), "release 1 installs");
    assert_eq!(installed(dir), v1);

    // the stolen online key: a head with the largest seq, for the release it runs
    seeder.stop();
    let hostile = SeederProcess::start_hostile(dir, "max-seq-head", &addr);
    assert!(
        run_node(dir).success(),
        "the device takes the head: nothing to install"
    );
    hostile.stop();

    // the genuine seeder deploys an update: every head it signs is now a replay
    let seeder = SeederProcess::start_at(dir, &addr);
    let v2 = bytes(MIB, 2);
    ship(dir, &seeder, &v2, "2", 2, &[]);
    assert!(
        !run_node(dir).success(),
        "frozen: the update's head is refused"
    );
    let status = node_status(dir);
    assert!(
        status["error"]
            .as_str()
            .unwrap_or_default()
            .contains("rule 'head-seq'"),
        "{status}"
    );
    assert_eq!(installed(dir), v1);
    seeder.stop();

    // the operator rotates the root to a new online key, offline, and restarts the
    // seeder with both
    ok(dir, "shoal-seeder", &["keygen", "--out", "online2.key"]);
    ok(
        dir,
        "shoal-seeder",
        &[
            "root",
            "rotate",
            "--current",
            "root.shoal",
            "--sign-key",
            "root.key",
            "--root-key",
            "root.key",
            "--root-threshold",
            "1",
            "--release-pub",
            "release.key.pub",
            "--release-threshold",
            "1",
            "--online-pub",
            "online2.key.pub",
            "--out",
            "root-v2.shoal",
        ],
    );
    let v2_root = std::fs::read(dir.join("root-v2.shoal")).unwrap();
    std::fs::copy(dir.join("root-v2.shoal"), dir.join("root.shoal")).unwrap();
    std::fs::copy(dir.join("online.key"), dir.join("online1.key")).unwrap();
    std::fs::copy(dir.join("online2.key"), dir.join("online.key")).unwrap();
    let seeder = SeederProcess::start_at(dir, &addr);
    assert!(
        run_node(dir).success(),
        "the device walks to v2 and installs"
    );
    assert_eq!(installed(dir), v2);
    assert_eq!(node_status(dir)["installed_counter"], 2);
    assert_eq!(
        std::fs::read(dir.join("node/root.shoal")).unwrap(),
        v2_root,
        "the device keeps root v2"
    );
    assert_ne!(v1_root, v2_root);
    // the rotation is in the seeder's audit log
    let entries = shoal_seeder::audit::read_entries(&seeder.data).unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.action == "root rotation" && e.detail == "root v1 -> v2"),
        "{entries:?}"
    );
    seeder.stop();

    // a seeder restarted with the old root is refused: it would hand out v1 again
    std::fs::write(dir.join("root.shoal"), &v1_root).unwrap();
    let out = run(
        dir,
        "shoal-seeder",
        &[
            "serve",
            "--data",
            "seeder-data",
            "--root",
            "root.shoal",
            "--online-key",
            "online1.key",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("already serves v2"), "{err}");
}
