//! Crash safety of the node: kill -9 at 5 seeded random points during the download and
//! once during verify/install; after each restart it goes on, and in the end installs
//! the exact bytes, with the WAN bytes of the whole test under 1.1 x the image.
//!
//! The seed is printed; `SHOAL_TEST_SEED=N` replays a run.
//!
//! Each kill wastes what was served but not yet durable on the device: under a rate
//! limit the node keeps only about two round trips' worth of chunks in flight.

use shoal_tests::*;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;
/// Slow enough that the kills land inside the download (a few seconds of it).
const WAN_RATE: &str = "24000000";

fn start_node(dir: &Path) -> Child {
    Command::new(bin("shoal-node"))
        .current_dir(dir)
        .args([
            "run",
            "--data",
            "node",
            "--exit-after-install",
            "--wan-rate",
            WAN_RATE,
        ])
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap()
}

fn status(dir: &Path) -> serde_json::Value {
    std::fs::read_to_string(dir.join("node/status.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .unwrap_or_default()
}

fn state(dir: &Path) -> String {
    status(dir)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn kill9(mut child: Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

#[test]
fn kill_9_during_download_and_install_resumes_and_installs_the_exact_bytes() {
    let seed: u64 = std::env::var("SHOAL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("crash test seed: {seed} (replay with SHOAL_TEST_SEED={seed})");
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    init_node(dir, &seeder, "installed", &[]);
    let image = bytes(64 * MIB, seed);
    ship(dir, &seeder, &image, "1", 1, &[]);

    // five kills at seeded random points of the download: kill k lands somewhere in the
    // k-th sixth of the image's bytes
    let total = image.len() as u64;
    for k in 0..5u64 {
        let from = total * k / 6;
        let point = from + next() % (total / 6);
        let child = start_node(dir);
        let start = Instant::now();
        loop {
            let s = status(dir);
            let done = s["done_bytes"].as_u64().unwrap_or(0);
            assert_ne!(
                s["state"], "success",
                "the download finished before kill {k}"
            );
            if s["state"] == "downloading" && done >= point {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no progress before kill {k}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        kill9(child);
        println!(
            "kill {k} at {} of {total} bytes (aimed at {point}); served so far {}",
            status(dir)["done_bytes"],
            seeder.chunk_bytes_served()
        );
        assert!(
            !dir.join("installed/image.bin").exists(),
            "nothing installed mid-download"
        );
    }
    // once in verify or install: watch the status and kill as soon as it gets there
    let child = start_node(dir);
    let start = Instant::now();
    let mut seen = String::new();
    while start.elapsed() < Duration::from_secs(120) {
        seen = state(dir);
        if seen == "verifying" || seen == "installing" || seen == "success" {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    kill9(child);
    println!("kill 6 in state '{seen}'");
    if let Ok(partial) = std::fs::read(dir.join("installed/image.bin")) {
        assert_eq!(
            partial, image,
            "an installed file is always the whole, verified file"
        );
    }

    // a last run completes
    let mut child = start_node(dir);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the last run did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert_eq!(
        std::fs::read(dir.join("installed/image.bin")).unwrap(),
        image
    );
    let served = seeder.chunk_bytes_served();
    println!(
        "WAN bytes over the whole test: {served} for a {} byte image ({:.3} x)",
        image.len(),
        served as f64 / image.len() as f64
    );
    assert!(
        (served as f64) < 1.1 * image.len() as f64,
        "served {served} (seed {seed})"
    );
}
