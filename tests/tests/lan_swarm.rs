//! The LAN swarm over real processes on loopback: a seeder and several `shoal-node`
//! processes with static peer lists (`--peer`, no mDNS), each with its own xfer port.
//!
//! - five admitted nodes install the identical image while the seeder serves at most
//!   1.10 x the release's unique bytes; each node's Prometheus endpoint (`--metrics`)
//!   counts LAN bytes (the same as its status), connected peers, verified chunks and
//!   one successful update;
//! - a node whose key was never accepted connects to the peers and receives nothing
//!   (seen from the peers' status and from its own);
//! - a node whose seeder address is unreachable completes through its peers' relays.

use shoal_tests::*;
use std::path::Path;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

/// Nodes `n0..n{count}` set up against `seeder` (not yet pre-authorised), each with
/// its own target folder and xfer port.
fn nodes(dir: &Path, seeder: &SeederProcess, count: usize) -> (Vec<String>, Vec<u16>) {
    let names: Vec<String> = (0..count).map(|i| format!("n{i}")).collect();
    for n in &names {
        init_named_node(dir, n, seeder, &format!("{n}-target"), &[]);
    }
    let ports = (0..count).map(|_| free_udp_port()).collect();
    (names, ports)
}

/// `--listen` on this node's port and `--peer` for every other.
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

fn start(dir: &Path, program: &str, names: &[String], ports: &[u16], i: usize) -> NodeProcess {
    let flags = lan_flags(ports, i);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    NodeProcess::start(dir, program, &names[i], &flags)
}

fn installed(counter: u64) -> impl Fn(&serde_json::Value) -> bool {
    move |s| s["installed_counter"] == counter
}

fn u(s: &serde_json::Value, key: &str) -> u64 {
    s[key].as_u64().unwrap_or(0)
}

#[test]
fn five_nodes_install_the_same_image_with_about_one_wan_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let (names, ports) = nodes(dir, &seeder, 5);
    names.iter().for_each(|n| preauthorize(&seeder, n));
    let image = bytes(32 * MIB, 11);
    ship(dir, &seeder, &image, "1.0", 1, &[]);
    let procs: Vec<(NodeProcess, String)> = (0..5)
        .map(|i| {
            let flags = lan_flags(&ports, i);
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            NodeProcess::start_with_metrics(dir, &names[i], &flags)
        })
        .collect();
    wait_for_all(dir, &names, Duration::from_secs(240), installed(1));
    let served = seeder.chunk_bytes_served();
    let mut lan_total = 0;
    for (n, (_, metrics_url)) in names.iter().zip(&procs) {
        let got = std::fs::read(dir.join(format!("{n}-target/image.bin"))).unwrap();
        assert!(got == image, "{n} installed other bytes");
        let s = named_status(dir, n).unwrap();
        println!(
            "{n}: wan {} lan {} local {} served to peers {}",
            u(&s, "bytes_wan"),
            u(&s, "bytes_lan"),
            u(&s, "bytes_local"),
            u(&s, "lan_served")
        );
        lan_total += u(&s, "bytes_lan");
        // what an operator's Prometheus sees of this node
        let m = scrape(metrics_url);
        let lan = sample(&m, "shoal_node_chunk_bytes_total{source=\"lan\"}");
        let peers = sample(&m, "shoal_node_peers");
        println!("{n} metrics: lan bytes {lan}, peers {peers}");
        assert!(lan > 0, "{n}: no LAN bytes in its metrics");
        assert_eq!(lan, u(&s, "bytes_lan"), "{n}: metrics and status agree");
        assert!(peers > 0, "{n}: no peers in its metrics");
        assert!(sample(&m, "shoal_node_chunks_verified_total") > 0, "{n}");
        assert_eq!(sample(&m, "shoal_node_chunks_rejected_total"), 0, "{n}");
        assert_eq!(
            sample(&m, "shoal_node_updates_total{outcome=\"success\"}"),
            1,
            "{n}"
        );
    }
    // random bytes have no repeated chunk: the unique bytes are the image's
    let unique = image.len() as f64;
    println!(
        "seeder served {served} bytes for {unique} unique: {:.3} x; LAN bytes in all {lan_total}",
        served as f64 / unique
    );
    assert!(
        served as f64 <= 1.10 * unique,
        "the seeder served {served} bytes, over 1.10 x {unique}"
    );
    assert!(
        lan_total >= 3 * image.len() as u64,
        "most bytes came over the LAN"
    );
    procs.into_iter().for_each(|(p, _)| p.stop());
    seeder.stop();
}

#[test]
fn a_node_never_accepted_connects_to_its_peers_and_receives_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let (names, ports) = nodes(dir, &seeder, 4);
    // n3 is never accepted: it enrols and stays pending
    names[..3].iter().for_each(|n| preauthorize(&seeder, n));
    let image = bytes(8 * MIB, 12);
    ship(dir, &seeder, &image, "1.0", 1, &[]);
    let procs: Vec<NodeProcess> = (0..4)
        .map(|i| start(dir, "shoal-node", &names, &ports, i))
        .collect();
    wait_for_all(dir, &names[..3], Duration::from_secs(180), installed(1));
    // the outsider has had several dial rounds by now; give it a few more
    wait_for_all(dir, &names[3..], Duration::from_secs(30), |s| {
        s["lan_error"].as_str().is_some()
    });
    let outsider = named_status(dir, &names[3]).unwrap();
    let outsider_id = outsider["device_id"].as_str().unwrap().to_string();
    println!("outsider: {outsider}");
    assert_eq!(outsider["state"], "waiting-for-acceptance");
    assert_eq!(u(&outsider, "bytes_lan"), 0);
    assert_eq!(u(&outsider, "lan_peers"), 0);
    assert!(outsider["installed"].is_null());
    let err = outsider["lan_error"].as_str().unwrap();
    assert!(err.contains("refused"), "{err}");
    assert!(!dir.join("n3-target/image.bin").exists());
    for n in &names[..3] {
        let s = named_status(dir, n).unwrap();
        assert!(u(&s, "lan_refused") >= 1, "{n} refused nobody: {s}");
        assert!(
            s["lan_served_to"].get(&outsider_id).is_none(),
            "{n} served the outsider: {s}"
        );
    }
    procs.into_iter().for_each(NodeProcess::stop);
    seeder.stop();
}

#[test]
fn a_node_that_cannot_reach_the_seeder_completes_through_relays() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let (names, ports) = nodes(dir, &seeder, 3);
    names.iter().for_each(|n| preauthorize(&seeder, n));
    let mut image = bytes(8 * MIB, 13);
    ship(dir, &seeder, &image, "1.0", 1, &[]);
    let mut procs: Vec<NodeProcess> = (0..3)
        .map(|i| start(dir, "shoal-node", &names, &ports, i))
        .collect();
    wait_for_all(dir, &names, Duration::from_secs(180), installed(1));
    // n2 loses its way to the seeder (it keeps the admission it was given)
    procs.pop().unwrap().stop();
    let config = dir.join("n2/node.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    json["seeder"] = serde_json::Value::String(format!("127.0.0.1:{}", free_udp_port()));
    std::fs::write(&config, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    change_scattered(&mut image, 20, 8);
    ship(dir, &seeder, &image, "2.0", 2, &[]);
    procs.push(start(dir, "shoal-node", &names, &ports, 2));
    wait_for_all(dir, &names, Duration::from_secs(240), installed(2));
    let s = named_status(dir, "n2").unwrap();
    println!("n2: {s}");
    assert_eq!(u(&s, "bytes_wan"), 0, "n2 fetched nothing from the seeder");
    assert!(u(&s, "bytes_lan") > 0);
    assert!(std::fs::read(dir.join("n2-target/image.bin")).unwrap() == image);
    procs.into_iter().for_each(NodeProcess::stop);
    seeder.stop();
}
