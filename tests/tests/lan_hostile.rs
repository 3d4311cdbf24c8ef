//! Hostile LAN peers (`shoal-hostile-peer`, an admitted device that fetches like any
//! other and serves badly): flipped bytes, extra bytes, an endless chunk, and a have-map
//! that claims every chunk. Three honest nodes still install the exact image; a peer
//! that sent bad bytes is banned by every honest node that got some, a peer that claims
//! chunks it does not serve is dropped. The honest nodes' Prometheus endpoints
//! (`--metrics`) show it: peers connected, a ban on each node that banned, and for
//! flipped bytes the rejected chunks.

use shoal_tests::*;
use std::path::Path;
use std::time::Duration;

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

/// What the test sees of one honest node once it installed.
struct Honest {
    status: serde_json::Value,
    /// Its Prometheus text.
    metrics: String,
}

/// Runs a site of three honest nodes and one hostile peer in `mode`; returns the
/// honest nodes and the hostile peer's device id.
fn site_with(dir: &Path, mode: &str, seed: u64) -> (Vec<Honest>, String) {
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let names: Vec<String> = ["h0", "h1", "h2", "bad"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for n in &names {
        init_named_node(dir, n, &seeder, &format!("{n}-target"), &[]);
        preauthorize(&seeder, n);
    }
    let ports: Vec<u16> = names.iter().map(|_| free_udp_port()).collect();
    let image = bytes(8 * MIB, seed);
    ship(dir, &seeder, &image, "1.0", 1, &[]);
    let mut procs = Vec::new();
    let mut metrics_urls = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut flags = lan_flags(&ports, i);
        if n == "bad" {
            flags.splice(0..0, ["--misbehave".to_string(), mode.to_string()]);
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        if n == "bad" {
            procs.push(NodeProcess::start(dir, "shoal-hostile-peer", n, &flags));
        } else {
            let (p, url) = NodeProcess::start_with_metrics(dir, n, &flags);
            procs.push(p);
            metrics_urls.push(url);
        }
    }
    let honest = &names[..3];
    wait_for_all(dir, honest, Duration::from_secs(240), |s| {
        s["installed_counter"] == 1
    });
    for n in honest {
        let got = std::fs::read(dir.join(format!("{n}-target/image.bin"))).unwrap();
        assert!(got == image, "{mode}: {n} installed other bytes");
    }
    let bad_id = named_status(dir, "bad").unwrap()["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = honest
        .iter()
        .zip(&metrics_urls)
        .map(|(n, url)| Honest {
            status: named_status(dir, n).unwrap(),
            metrics: scrape(url),
        })
        .collect();
    procs.into_iter().for_each(NodeProcess::stop);
    seeder.stop();
    (status, bad_id)
}

fn listed(s: &serde_json::Value, key: &str, id: &str) -> bool {
    s[key]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(id)))
}

/// The honest nodes that fetched from the hostile peer banned it; at least one did.
fn assert_banned(mode: &str, seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let (honest, bad) = site_with(tmp.path(), mode, seed);
    let banned = honest
        .iter()
        .filter(|h| listed(&h.status, "lan_banned", &bad))
        .count();
    for Honest { status: s, metrics } in &honest {
        let bans = sample(metrics, "shoal_node_peer_bans_total");
        let rejected = sample(metrics, "shoal_node_chunks_rejected_total");
        let peers = sample(metrics, "shoal_node_peers");
        println!("{mode}: metrics bans {bans} rejected {rejected} peers {peers}");
        assert!(
            peers > 0,
            "{mode}: an honest node with no peers in its metrics"
        );
        if listed(s, "lan_banned", &bad) {
            assert!(bans >= 1, "{mode}: a ban missing from the metrics: {s}");
            // a flipped byte or extra bytes reach the check and fail it; an endless
            // chunk is cut off at the frame cap, before it is a chunk to check
            if mode != "endless" {
                assert!(rejected >= 1, "{mode}: no rejected chunk in the metrics");
            }
        } else {
            assert_eq!(
                bans, 0,
                "{mode}: a ban in the metrics but not the status: {s}"
            );
        }
        println!(
            "{mode}: {} wan {} lan {} banned {}",
            s["device_id"]
                .as_str()
                .unwrap_or("?")
                .get(..16)
                .unwrap_or("?"),
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
    assert!(
        banned >= 1,
        "{mode}: no honest node banned the hostile peer"
    );
}

#[test]
fn a_peer_flipping_bytes_is_banned_and_the_image_is_exact() {
    assert_banned("flip-byte", 31);
}

#[test]
fn a_peer_sending_extra_bytes_is_banned_and_the_image_is_exact() {
    assert_banned("extra-bytes", 32);
}

#[test]
fn a_peer_sending_an_endless_chunk_is_banned_and_the_image_is_exact() {
    assert_banned("endless", 33);
}

#[test]
fn a_peer_with_a_false_have_map_is_dropped_and_the_image_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (honest, bad) = site_with(tmp.path(), "false-have-map", 34);
    let dropped = honest
        .iter()
        .filter(|h| listed(&h.status, "lan_dropped", &bad))
        .count();
    for h in &honest {
        println!("false-have-map: dropped {}", h.status["lan_dropped"]);
        // dropped, not banned: it sent nothing bad
        assert_eq!(sample(&h.metrics, "shoal_node_chunks_rejected_total"), 0);
    }
    assert!(
        dropped >= 1,
        "no honest node dropped the peer with a false have-map"
    );
}
