//! The maintenance window over a real seeder and node: outside its window a device
//! downloads and verifies the release, then waits (and says so, to the seeder too)
//! without installing; inside the window it installs what it already holds.

use shoal_tests::*;
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

fn hour_now() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    secs % 86_400 / 3600
}

fn window(from: u64, to: u64) -> String {
    format!("{:02}:00-{:02}:00", from % 24, to % 24)
}

#[test]
fn a_device_outside_its_window_downloads_but_does_not_install() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let h = hour_now();
    init_node(
        dir,
        &seeder,
        "installed",
        &["--install-window", &window(h + 2, h + 3)],
    );
    let image = bytes(2 * MIB, 5);
    ship(dir, &seeder, &image, "1", 1, &[]);

    let mut child = Command::new(bin("shoal-node"))
        .current_dir(dir)
        .args(["run", "--data", "node", "--no-lan"])
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        let out = run(dir, "shoal-node", &["status", "--data", "node", "--json"]);
        if let Ok(s) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            && s["state"] == "waiting-for-window"
        {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never waited for the window"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        status["done_bytes"], status["total_bytes"],
        "downloaded: {status}"
    );
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("installs only in"),
        "{status}"
    );
    // a while later: still not installed
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !dir.join("installed/image.bin").exists(),
        "installed outside the window"
    );
    assert!(node_status(dir)["installed_counter"].is_null());
    let devices: serde_json::Value =
        serde_json::from_str(&seeder.admin(&["devices", "list", "--json"])).unwrap();
    assert_eq!(devices[0]["status"]["state"], "Verifying", "{devices}");
    let _ = child.kill();
    let _ = child.wait();

    // the window now includes this hour: it installs what it downloaded
    let served = seeder.chunk_bytes_served();
    init_node(
        dir,
        &seeder,
        "installed",
        &["--install-window", &window(h, h + 2)],
    );
    assert!(run_node(dir).success());
    assert_eq!(
        std::fs::read(dir.join("installed/image.bin")).unwrap(),
        image
    );
    assert_eq!(node_status(dir)["installed_counter"], 1);
    assert_eq!(seeder.chunk_bytes_served(), served, "nothing fetched again");
}
