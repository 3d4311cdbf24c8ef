//! Crash and restart: SIGTERM in the middle of a publish, and kill -9 after a publish.
//! After each, the store is consistent: every stored chunk matches its hash, and no
//! release is listed whose chunks are missing.

mod common;

use common::*;
use shoal_seeder::store::Store;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Opens the store of a stopped seeder and checks it the way the issue asks.
fn assert_consistent(data: &Path) -> Vec<shoal_seeder::store::ReleaseRecord> {
    let store = Store::open(data).expect("the store opens after the crash");
    let audit = store.check_chunks().unwrap();
    assert!(
        audit.bad.is_empty(),
        "chunk files that do not match their hash: {:?}",
        audit.bad
    );
    let listed = store.list_releases().unwrap();
    for r in &listed {
        assert!(
            store.missing_chunks(r.id).unwrap().is_empty(),
            "release {} is listed with chunks missing",
            r.name
        );
    }
    listed
}

fn chunk_files(data: &Path) -> usize {
    walk(&data.join("chunks"))
}

fn walk(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn sigterm_in_the_middle_of_a_publish_leaves_a_consistent_store() {
    let work = Work::new();
    let data = work.path("data");
    // 48 MiB: several hundred chunk uploads, long enough to interrupt
    let image = bytes(48 * 1024 * 1024, 7);
    let rel = work.release("big.bin", &image, "big", "1", 1, Some("release.key"));
    let mut seeder = Seeder::start(&work, &data, &[]);
    let mut publish = Command::new(bin())
        .current_dir(work.dir.path())
        .args([
            "publish",
            rel.to_str().unwrap(),
            "big.bin",
            "--url",
            &seeder.http,
            "--cert",
            seeder.cert_pem.to_str().unwrap(),
            "--token-file",
        ])
        .arg(seeder.token_file())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait until some chunks are stored, then stop the seeder mid-upload
    let start = Instant::now();
    while chunk_files(&data) < 20 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the upload did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        seeder.terminate(),
        "the seeder shuts down cleanly on SIGTERM"
    );
    let publish_ok = publish.wait().unwrap().success();
    assert!(!publish_ok, "the publish was interrupted");
    let stored = chunk_files(&data);
    let listed = assert_consistent(&data);
    assert!(
        listed.is_empty(),
        "a half-uploaded release is not listed: {listed:?}"
    );

    // after a restart the same publish completes, uploading only what is missing
    let seeder = Seeder::start(&work, &data, &[]);
    let out = seeder.cli_ok(&["publish", rel.to_str().unwrap(), "big.bin"]);
    assert!(out.contains("were already on the seeder"), "{out}");
    let uploaded: usize = out
        .split("uploaded ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the count of uploaded chunks");
    let total = chunk_files(&data);
    assert_eq!(
        uploaded,
        total - stored,
        "only the missing chunks were uploaded"
    );
    drop(seeder);
    assert_eq!(assert_consistent(&data).len(), 1);
}

#[test]
fn kill_9_after_a_publish_loses_nothing() {
    let work = Work::new();
    let data = work.path("data");
    let image = bytes(4 * 1024 * 1024, 8);
    let rel = work.release("fw.bin", &image, "fw", "1", 1, Some("release.key"));
    let mut seeder = Seeder::start(&work, &data, &[]);
    seeder.cli_ok(&["publish", rel.to_str().unwrap(), "fw.bin"]);
    seeder.cli_ok(&["deploy", "--release", "fw@1", "--group", "g"]);
    seeder.kill9();
    let listed = assert_consistent(&data);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "fw");

    // restarted, it serves the release and the deployment it had
    let seeder = Seeder::start(&work, &data, &[]);
    let deployments = seeder.cli_json(&["deploy", "list"]);
    assert_eq!(deployments.as_array().unwrap().len(), 1);
    let key = device_key(30);
    let pubfile = write_pub(&work, &key, "d.pub");
    seeder.cli_ok(&[
        "devices",
        "preauthorize",
        "--pub",
        pubfile.to_str().unwrap(),
        "--group",
        "g",
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dev = seeder.device(&key).await;
        dev.enrol("pump", "s", vec![]).await.unwrap();
        let head = dev.head().await.unwrap().expect("a head after the restart");
        let head = shoal_core::Head::decode_envelope(&head)
            .unwrap()
            .decode_unverified()
            .unwrap();
        let rel = dev
            .release(head.release)
            .await
            .unwrap()
            .expect("the release");
        let release = shoal_core::release::decode_release(&rel)
            .unwrap()
            .decode_unverified()
            .unwrap();
        let hashes: Vec<_> = release.files[0].chunks.iter().map(|c| c.hash).collect();
        let got = dev.chunks(&hashes).await.unwrap();
        let joined: Vec<u8> = got
            .into_iter()
            .flat_map(|(_, b)| b.expect("chunk present").to_vec())
            .collect();
        assert_eq!(joined, image);
    });
}
