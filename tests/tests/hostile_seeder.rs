//! A seeder that misbehaves on purpose (`shoal-hostile-seeder`) against a real node:
//! a chunk with one byte flipped, a chunk longer than its entry, an endless chunk
//! stream, a head for an older counter, an expired head, a release for another device
//! type, a release signed only by the online key. For each: nothing is installed, the
//! previous install is intact, and the reason is in `shoal-node status` and in the
//! report the seeder received. An expired head also shows in the node's metrics
//! (`shoal_node_head_stale_seconds`).

use shoal_tests::*;
use std::path::Path;

const MIB: usize = 1024 * 1024;

struct Site {
    tmp: tempfile::TempDir,
    seeder: Option<SeederProcess>,
    v1: Vec<u8>,
}

impl Site {
    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn seeder(&self) -> &SeederProcess {
        self.seeder.as_ref().expect("a seeder is running")
    }

    /// Keys, a seeder, a node with release 1 installed.
    fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        make_keys_and_root(dir);
        let seeder = SeederProcess::start(dir);
        init_node(dir, &seeder, "installed", &[]);
        let site = Site {
            tmp,
            seeder: Some(seeder),
            v1: bytes(4 * MIB, 1),
        };
        site.release(&site.v1, "1", 1, "pump");
        assert!(site.run_node().success(), "release 1 installs");
        assert_eq!(site.installed(), site.v1);
        site
    }

    fn release(&self, image: &[u8], version: &str, counter: u64, device_type: &str) {
        ship(
            self.dir(),
            self.seeder(),
            image,
            version,
            counter,
            &["--device-type", device_type],
        );
    }

    /// Replaces the seeder with a hostile one on the same data and port.
    fn turn_hostile(&mut self, mode: &str) {
        let old = self.seeder.take().expect("a seeder");
        let addr = old.device_addr.clone();
        old.stop();
        self.seeder = Some(SeederProcess::start_hostile(self.dir(), mode, &addr));
    }

    fn run_node(&self) -> std::process::ExitStatus {
        run_node(self.dir())
    }

    fn installed(&self) -> Vec<u8> {
        std::fs::read(self.dir().join("installed/image.bin")).unwrap()
    }

    fn status(&self) -> serde_json::Value {
        node_status(self.dir())
    }

    /// The node refused: it exited non-zero, kept `expect_installed`, and says why
    /// (with `reason` in the message) in its status and in its report to the seeder.
    fn assert_refused(&self, expect_installed: &[u8], reason: &str) {
        let exit = self.run_node();
        assert!(!exit.success(), "the node must give up");
        assert_eq!(
            self.installed(),
            expect_installed,
            "the previous install is intact"
        );
        let status = self.status();
        let error = status["error"].as_str().unwrap_or_default().to_string();
        assert_eq!(status["state"], "failure", "{status}");
        assert!(
            error.contains(reason),
            "status error '{error}' lacks '{reason}'"
        );
        let devices = self.seeder().admin(&["devices", "list", "--json"]);
        let devices: serde_json::Value = serde_json::from_str(&devices).unwrap();
        let reported = &devices[0]["status"];
        assert_eq!(reported["state"], "Failure", "{reported}");
        let reported_error = reported["error"].as_str().unwrap_or_default();
        assert!(
            reported_error.contains(reason),
            "reported '{reported_error}' lacks '{reason}'"
        );
        // nothing of the refused release reached the target
        let entries = std::fs::read_dir(self.dir().join("installed"))
            .unwrap()
            .count();
        assert_eq!(entries, 1, "only the previous install is in the target");
    }
}

#[test]
fn a_chunk_with_one_byte_flipped_is_refused() {
    let mut site = Site::new();
    site.release(&bytes(4 * MIB, 2), "2", 2, "pump");
    site.turn_hostile("flip-byte");
    site.assert_refused(&site.v1.clone(), "do not match");
}

#[test]
fn a_chunk_longer_than_its_entry_is_refused() {
    let mut site = Site::new();
    site.release(&bytes(4 * MIB, 3), "2", 2, "pump");
    site.turn_hostile("long-chunk");
    site.assert_refused(&site.v1.clone(), "bytes with that BLAKE3, got");
}

#[test]
fn an_endless_chunk_stream_is_cut_off() {
    let mut site = Site::new();
    site.release(&bytes(4 * MIB, 4), "2", 2, "pump");
    site.turn_hostile("endless-chunk");
    site.assert_refused(&site.v1.clone(), "was announced; the cap is");
}

#[test]
fn a_head_for_an_older_counter_is_refused() {
    let mut site = Site::new();
    let v2 = bytes(4 * MIB, 5);
    site.release(&v2, "2", 2, "pump");
    assert!(site.run_node().success(), "release 2 installs");
    assert_eq!(site.installed(), v2);
    // the hostile seeder points the device back at release 1 (counter 1)
    site.turn_hostile("old-head");
    site.assert_refused(&v2, "rule 'anti-rollback'");
}

#[test]
fn an_expired_head_is_not_acted_on_and_shows_as_stale() {
    let mut site = Site::new();
    site.release(&bytes(4 * MIB, 6), "2", 2, "pump");
    site.turn_hostile("expired-head");
    site.assert_refused(&site.v1.clone(), "rule 'expiry'");
    assert!(
        site.status()["stale_head_since"].as_u64().is_some(),
        "status says since when the head is stale"
    );
    let human = ok(site.dir(), "shoal-node", &["status", "--data", "node"]);
    assert!(human.contains("stale head since"), "{human}");
    // a running agent says so in its metrics: the stale time grows from 0
    let (node, url) = NodeProcess::start_with_metrics(site.dir(), "node", &["--no-lan"]);
    let start = std::time::Instant::now();
    let stale = loop {
        let stale = sample(&scrape(&url), "shoal_node_head_stale_seconds");
        if stale > 0 {
            break stale;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the head never showed as stale in the metrics"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    println!("head stale for {stale} s per the node's metrics");
    let m = scrape(&url);
    assert!(sample(&m, "shoal_node_head_stale_seconds") <= start.elapsed().as_secs() + 1);
    assert_eq!(
        sample(&m, "shoal_node_updates_total{outcome=\"success\"}"),
        0
    );
    node.stop();
}

#[test]
fn a_release_for_another_device_type_is_refused() {
    let site = Site::new();
    // an honest seeder will deploy what it is told; the device refuses wrong software
    site.release(&bytes(4 * MIB, 7), "2", 2, "fan");
    site.assert_refused(&site.v1.clone(), "rule 'device-type'");
}

#[test]
fn a_release_signed_only_by_the_online_key_is_refused() {
    let mut site = Site::new();
    site.release(&bytes(4 * MIB, 8), "2", 2, "pump");
    site.turn_hostile("online-signed-release");
    site.assert_refused(&site.v1.clone(), "1 by keys of another role");
}
