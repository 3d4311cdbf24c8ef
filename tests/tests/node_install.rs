//! A seeder and a node as real processes on loopback: a fresh device installs release
//! 1; release 2, with 10% of a 64 MiB image changed at scattered places, costs no more
//! than 1.3 x the changed bytes from the WAN (counted by the seeder and by the node),
//! and the installed file's BLAKE3 equals the release's.

use shoal_tests::*;

const MIB: usize = 1024 * 1024;

#[test]
fn a_device_installs_a_release_then_an_update_for_little_more_than_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    init_node(dir, &seeder, "installed", &[]);

    let mut image = bytes(64 * MIB, 1);
    ship(dir, &seeder, &image, "1.0", 1, &[]);
    assert!(run_node(dir).success());
    let status = node_status(dir);
    assert_eq!(
        std::fs::read(dir.join("installed/image.bin")).unwrap(),
        image
    );
    assert_eq!(status["state"], "success");
    assert_eq!(status["installed_counter"], 1);
    let first_served = seeder.chunk_bytes_served();
    println!(
        "first install: served {first_served} for {} bytes",
        64 * MIB
    );
    assert_eq!(first_served, (64 * MIB) as u64, "each chunk once");

    let changed = change_scattered(&mut image, 10, 12);
    ship(dir, &seeder, &image, "1.1", 2, &[]);
    assert!(run_node(dir).success());
    let status = node_status(dir);
    let installed = std::fs::read(dir.join("installed/image.bin")).unwrap();
    assert_eq!(
        blake3::hash(&installed),
        blake3::hash(&image),
        "the installed file's BLAKE3 is the release's"
    );
    assert_eq!(status["installed_counter"], 2);
    let by_node = status["bytes_wan"].as_u64().unwrap();
    let by_seeder = seeder.chunk_bytes_served() - first_served;
    let bound = changed as f64 * 1.3;
    println!(
        "changed {changed} bytes; WAN by the node {by_node} ({:.3} x), by the seeder {by_seeder} ({:.3} x); local {}",
        by_node as f64 / changed as f64,
        by_seeder as f64 / changed as f64,
        status["bytes_local"]
    );
    assert!(
        (by_node as f64) <= bound,
        "the node fetched {by_node} for {changed} changed"
    );
    assert!(
        (by_seeder as f64) <= bound,
        "the seeder served {by_seeder} for {changed} changed"
    );
    assert_eq!(by_node, by_seeder, "both counts agree");
    // the previous version is kept for one rollback
    assert_eq!(
        blake3::hash(&std::fs::read(dir.join("node/previous/image.bin")).unwrap()),
        blake3::hash(&bytes(64 * MIB, 1))
    );
}
