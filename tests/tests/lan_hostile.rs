//! Hostile LAN peers (`shoal-hostile-peer`, an admitted device that fetches like any
//! other and serves badly): flipped bytes, extra bytes, an endless chunk, and a have-map
//! that claims every chunk. Three honest nodes still install the exact image; a peer
//! that sent bad bytes is banned by every honest node that got some; a peer that claims
//! chunks it does not serve is dropped, and banned when it comes back and lies again.
//! A ban closes the hostile peer's own connections to the honest node too: cut off, it
//! dials again and is refused as banned. The honest nodes' Prometheus endpoints
//! (`--metrics`) show it: peers connected, a ban on each node that banned, and for bad
//! bytes the rejected chunks.

use shoal_tests::*;
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

fn lan_flags(ports: &[u16], i: usize) -> Vec<String> {
    let mut f = vec![
        "--listen".to_string(),
        format!("127.0.0.1:{}", ports[i]),
        "--no-mdns".to_string(),
    ];
    for (j, p) in ports.iter().enumerate() {
        if j != i {
            f.push("--peer".into());
            f.push(format!("127.0.0.1:{p}"));
        }
    }
    f
}

/// Three honest nodes (`h0..h2`, with `honest_flags`) and one hostile peer (`bad`) in
/// `mode`, running until dropped.
///
/// With `hostile_first`, the hostile peer alone gets the release and installs it, then
/// waits, connected to every honest node, with nothing more to ask them (only its
/// control streams open); only then is the release deployed to the honest nodes.
struct Site {
    seeder: SeederProcess,
    procs: Vec<NodeProcess>,
    honest: Vec<String>,
    /// Where each honest node's Prometheus text is.
    metrics: Vec<String>,
    bad: String,
}

impl Site {
    /// Starts the site and waits until the honest nodes installed the exact image.
    fn start(
        dir: &Path,
        mode: &str,
        seed: u64,
        honest_flags: &[&str],
        hostile_first: bool,
    ) -> Site {
        make_keys_and_root(dir);
        let seeder = SeederProcess::start(dir);
        let names: Vec<String> = ["h0", "h1", "h2", "bad"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for n in &names {
            init_named_node(dir, n, &seeder, &format!("{n}-target"), &[]);
            let group = if n == "bad" && hostile_first {
                "h"
            } else {
                "g"
            };
            preauthorize_in(&seeder, n, group);
        }
        let ports: Vec<u16> = names.iter().map(|_| free_udp_port()).collect();
        let image = bytes(8 * MIB, seed);
        let group = if hostile_first { "h" } else { "g" };
        ship_to(dir, &seeder, &image, "1.0", 1, &[], group);
        let mut procs = Vec::new();
        let mut metrics = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let mut flags = lan_flags(&ports, i);
            let program = if n == "bad" {
                flags.splice(0..0, ["--misbehave".to_string(), mode.to_string()]);
                "shoal-hostile-peer"
            } else {
                flags.extend(honest_flags.iter().map(|f| f.to_string()));
                "shoal-node"
            };
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            if n == "bad" {
                procs.push(NodeProcess::start(dir, program, n, &flags));
            } else {
                let (p, url) = NodeProcess::start_with_metrics(dir, n, &flags);
                procs.push(p);
                metrics.push(url);
            }
        }
        if hostile_first {
            let bad = ["bad".to_string()];
            wait_for_all(dir, &bad, Duration::from_secs(120), |s| {
                s["installed_counter"] == 1 && s["lan_peers"] == 3
            });
            deploy(&seeder, "1.0", "g");
        }
        let honest = names[..3].to_vec();
        wait_for_all(dir, &honest, Duration::from_secs(240), |s| {
            s["installed_counter"] == 1
        });
        for n in &honest {
            let got = std::fs::read(dir.join(format!("{n}-target/image.bin"))).unwrap();
            assert!(got == image, "{mode}: {n} installed other bytes");
        }
        let bad = named_status(dir, "bad").unwrap()["device_id"]
            .as_str()
            .unwrap()
            .to_string();
        Site {
            seeder,
            procs,
            honest,
            metrics,
            bad,
        }
    }

    /// Each honest node's Prometheus text.
    fn scrape(&self) -> Vec<String> {
        self.metrics.iter().map(|url| scrape(url)).collect()
    }

    fn status(&self, dir: &Path) -> Vec<serde_json::Value> {
        self.honest
            .iter()
            .map(|n| named_status(dir, n).unwrap())
            .collect()
    }

    fn stop(self) {
        self.procs.into_iter().for_each(NodeProcess::stop);
        self.seeder.stop();
    }
}

fn listed(s: &serde_json::Value, key: &str, id: &str) -> bool {
    s[key]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(id)))
}

fn short(s: &serde_json::Value) -> &str {
    s["device_id"]
        .as_str()
        .unwrap_or("?")
        .get(..16)
        .unwrap_or("?")
}

/// Every honest node that banned the hostile peer also cut the connections the hostile
/// peer had opened to it: the hostile peer dials again and is refused as banned (seen
/// in that node's refusals, within `limit`). Returns how many banned it.
fn assert_bans_cut_every_connection(dir: &Path, site: &Site, limit: Duration) -> usize {
    let start = Instant::now();
    loop {
        let status = site.status(dir);
        let banners: Vec<&serde_json::Value> = status
            .iter()
            .filter(|s| listed(s, "lan_banned", &site.bad))
            .collect();
        let refused_as_banned = |s: &serde_json::Value| {
            s["lan_refusals"][&site.bad]
                .as_str()
                .is_some_and(|r| r.contains("banned"))
        };
        if banners.iter().all(|s| refused_as_banned(s)) {
            return banners.len();
        }
        if start.elapsed() > limit {
            for s in &banners {
                println!("{}: refusals {}", short(s), s["lan_refusals"]);
            }
            panic!("a node banned the hostile peer but its connections to that node stayed open");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The honest nodes that fetched from the hostile peer banned it; at least one did,
/// and each closed the hostile peer's connections to it.
fn assert_banned(mode: &str, seed: u64, hostile_first: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let site = Site::start(dir, mode, seed, &[], hostile_first);
    // status, then metrics, then status again: bans only grow, so a ban in the first
    // status is in the metrics, and a ban in the metrics is in the second status
    let before = site.status(dir);
    let metrics = site.scrape();
    let after = site.status(dir);
    for ((b, m), s) in before.iter().zip(&metrics).zip(&after) {
        let bans = sample(m, "shoal_node_peer_bans_total");
        let rejected = sample(m, "shoal_node_chunks_rejected_total");
        let peers = sample(m, "shoal_node_peers");
        println!("{mode}: metrics bans {bans} rejected {rejected} peers {peers}");
        assert!(
            peers > 0,
            "{mode}: an honest node with no peers in its metrics"
        );
        if listed(b, "lan_banned", &site.bad) {
            assert!(bans >= 1, "{mode}: a ban missing from the metrics: {b}");
            // a flipped byte or extra bytes reach the check and fail it; an endless
            // chunk is cut off at the frame cap, before it is a chunk to check
            if mode != "endless" {
                assert!(rejected >= 1, "{mode}: no rejected chunk in the metrics");
            }
        }
        if bans >= 1 {
            assert!(
                listed(s, "lan_banned", &site.bad),
                "{mode}: a ban in the metrics but not the status: {s}"
            );
        }
        println!(
            "{mode}: {} wan {} lan {} banned {}",
            short(s),
            s["bytes_wan"],
            s["bytes_lan"],
            s["lan_banned"]
        );
        // nothing from a banned peer ever counts as received: a bad chunk is refused
        // before it is written, and the image matched above
        assert!(!listed(
            s,
            "lan_banned",
            s["device_id"].as_str().unwrap_or("")
        ));
    }
    let banned = assert_bans_cut_every_connection(dir, &site, Duration::from_secs(20));
    assert!(
        banned >= 1,
        "{mode}: no honest node banned the hostile peer"
    );
    site.stop();
}

#[test]
fn a_peer_flipping_bytes_is_banned_and_the_image_is_exact() {
    assert_banned("flip-byte", 31, false);
}

// guards: a ban that closed only our connection to the peer, so that the peer's own
// connection to us (idle but for its control stream: it had nothing more to ask)
// stayed open and kept getting our have-map increments
#[test]
fn a_ban_closes_the_connections_an_idle_hostile_peer_opened() {
    assert_banned("flip-byte", 35, true);
}

#[test]
fn a_peer_sending_extra_bytes_is_banned_and_the_image_is_exact() {
    assert_banned("extra-bytes", 32, false);
}

#[test]
fn a_peer_sending_an_endless_chunk_is_banned_and_the_image_is_exact() {
    assert_banned("endless", 33, false);
}

// guards: a liar that is dropped, reconnects a second later and lies again, for ever
#[test]
fn a_peer_with_a_false_have_map_is_dropped_then_banned_and_the_image_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A WAN of 1 MB/s per honest node keeps the fetch going for about 3 s, past the
    // liar's first reconnect (one second after it was dropped).
    let site = Site::start(dir, "false-have-map", 34, &["--wan-rate", "1000000"], false);
    let status = site.status(dir);
    for (s, m) in status.iter().zip(site.scrape()) {
        println!(
            "false-have-map: {} dropped {} banned {}",
            short(s),
            s["lan_dropped"],
            s["lan_banned"]
        );
        // a ban is never the first word: it was dropped once, and came back
        if listed(s, "lan_banned", &site.bad) {
            assert!(listed(s, "lan_dropped", &site.bad), "banned before a drop");
        }
        // it sent no bad bytes: nothing was rejected
        assert_eq!(sample(&m, "shoal_node_chunks_rejected_total"), 0);
    }
    let dropped = status
        .iter()
        .filter(|s| listed(s, "lan_dropped", &site.bad))
        .count();
    assert!(dropped >= 1, "no honest node dropped the liar");
    let banned = assert_bans_cut_every_connection(dir, &site, Duration::from_secs(20));
    assert!(banned >= 1, "no honest node banned the liar");
    site.stop();
}
