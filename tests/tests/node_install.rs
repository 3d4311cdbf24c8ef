//! A seeder and a node as real processes on loopback: a fresh device installs release
//! 1; release 2, with 10% of a 64 MiB image changed at scattered places, costs no more
//! than 1.3 x the changed bytes from the WAN (counted by the seeder and by the node),
//! and the installed file's BLAKE3 equals the release's.

use shoal_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

fn release(dir: &Path, seeder: &SeederProcess, image: &[u8], version: &str, counter: u64) {
    std::fs::write(dir.join("image.bin"), image).unwrap();
    let rel = format!("rel-{version}.shoal");
    ok(
        dir,
        "shoal-seeder",
        &[
            "release",
            "create",
            "--name",
            "pump-fw",
            "--version",
            version,
            "--counter",
            &counter.to_string(),
            "--device-type",
            "pump",
            "--out",
            &rel,
            "image.bin",
        ],
    );
    ok(
        dir,
        "shoal-seeder",
        &["release", "sign", "--key", "release.key", &rel],
    );
    seeder.admin(&["publish", &rel, "image.bin"]);
    seeder.admin(&[
        "deploy",
        "--release",
        &format!("pump-fw@{version}"),
        "--group",
        "line-a",
    ]);
}

/// Runs the node until it has installed what it was assigned; panics after 180 s.
fn run_node_until_installed(dir: &Path) -> serde_json::Value {
    let mut child = Command::new(bin("shoal-node"))
        .current_dir(dir)
        .args(["run", "--data", "node", "--exit-after-install"])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("the node did not install within 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the node failed: {status}");
    let out = ok(dir, "shoal-node", &["status", "--data", "node", "--json"]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_device_installs_a_release_then_an_update_for_little_more_than_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let cert = seeder.data.join("tls/cert.pem");
    let out = ok(
        dir,
        "shoal-node",
        &[
            "init",
            "--data",
            "node",
            "--seeder",
            &seeder.device_addr,
            "--seeder-cert",
            cert.to_str().unwrap(),
            "--root",
            "root.shoal",
            "--device-type",
            "pump",
            "--site",
            "plant-7",
            "--target",
            "installed",
            "--poll-secs",
            "1",
        ],
    );
    assert!(out.starts_with("device id "), "{out}");
    seeder.admin(&[
        "devices",
        "preauthorize",
        "--pub",
        "node/node.pub",
        "--group",
        "line-a",
    ]);

    let mut image = bytes(64 * MIB, 1);
    release(dir, &seeder, &image, "1.0", 1);
    let status = run_node_until_installed(dir);
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
    assert!(first_served >= (64 * MIB) as u64, "served {first_served}");

    let changed = change_scattered(&mut image, 10, 12);
    release(dir, &seeder, &image, "1.1", 2);
    let status = run_node_until_installed(dir);
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
