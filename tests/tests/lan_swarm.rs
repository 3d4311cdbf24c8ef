//! The LAN swarm over real processes on loopback: a seeder and several `shoal-node`
//! processes with static peer lists (`--peer`, no mDNS), each with its own xfer port.
//!
//! - five admitted nodes install the identical image while the seeder serves at most
//!   1.10 x the release's unique bytes; each node's Prometheus endpoint (`--metrics`)
//!   counts LAN bytes (the same as its status), connected peers, verified chunks and
//!   one successful update;
//! - a node whose key was never accepted connects to the peers and receives nothing
//!   (seen from the peers' status and from its own);
//! - a node whose seeder address is unreachable completes through its peers' relays;
//! - a `--no-serve` node takes its whole image from the peers, serves nothing, and
//!   neither adds WAN copies nor makes its peers wait for it.

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

/// A seeder and `count` pre-authorised nodes (not started) in `dir`, with a release of
/// `len` pseudo-random bytes from `seed` deployed to them.
fn site(
    dir: &Path,
    count: usize,
    len: usize,
    seed: u64,
) -> (SeederProcess, Vec<String>, Vec<u16>, Vec<u8>) {
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let (names, ports) = nodes(dir, &seeder, count);
    names.iter().for_each(|n| preauthorize(&seeder, n));
    let image = bytes(len, seed);
    ship(dir, &seeder, &image, "1.0", 1, &[]);
    (seeder, names, ports, image)
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

/// Node `i` with its LAN flags and `extra` ones.
fn start(dir: &Path, names: &[String], ports: &[u16], i: usize, extra: &[&str]) -> NodeProcess {
    let mut flags: Vec<String> = lan_flags(ports, i);
    flags.extend(extra.iter().map(|f| f.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    NodeProcess::start(dir, "shoal-node", &names[i], &flags)
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
    let (seeder, names, ports, image) = site(dir, 5, 32 * MIB, 11);
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

// guards: a `--no-serve` node that counted itself a WAN member (it fetched a share
// the others, who never see its have-map, fetched again) and that its peers, which
// know its address, waited for
#[test]
fn a_fetch_only_node_adds_no_wan_copy_and_serves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (seeder, names, ports, image) = site(dir, 4, 16 * MIB, 14);
    // n3 fetches only; every node has every other's address
    let quiet = 3;
    let procs: Vec<NodeProcess> = (0..4)
        .map(|i| {
            let extra: &[&str] = if i == quiet { &["--no-serve"] } else { &[] };
            start(dir, &names, &ports, i, extra)
        })
        .collect();
    wait_for_all(dir, &names, Duration::from_secs(240), installed(1));
    let served = seeder.chunk_bytes_served();
    for n in &names {
        let got = std::fs::read(dir.join(format!("{n}-target/image.bin"))).unwrap();
        assert!(got == image, "{n} installed other bytes");
        let s = named_status(dir, n).unwrap();
        println!("{n}: fetch took {} ms", u(&s, "last_fetch_ms"));
    }
    let unique = image.len() as f64;
    let q = named_status(dir, &names[quiet]).unwrap();
    println!(
        "seeder served {served} bytes for {unique} unique: {:.3} x; the fetch-only node: wan {} lan {} served {}",
        served as f64 / unique,
        u(&q, "bytes_wan"),
        u(&q, "bytes_lan"),
        u(&q, "lan_served")
    );
    assert!(
        served as f64 <= 1.10 * unique,
        "the seeder served {served} bytes, over 1.10 x {unique}"
    );
    assert_eq!(u(&q, "lan_served"), 0, "the fetch-only node served: {q}");
    assert!(q["lan_served_to"].as_object().is_none_or(|m| m.is_empty()));
    let quiet_addr = format!("127.0.0.1:{}", ports[quiet]);
    for n in &names[..quiet] {
        let s = named_status(dir, n).unwrap();
        let listed = s["lan_not_serving"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(quiet_addr.as_str())));
        assert!(
            listed,
            "{n} does not know that {quiet_addr} serves nothing: {s}"
        );
    }
    procs.into_iter().for_each(NodeProcess::stop);
    seeder.stop();
}

// guards: requests the scheduler cancelled (endgame losers, timeouts) that went on
// downloading: the slow peer kept sending chunks the node already had
#[test]
fn a_cancelled_request_stops_its_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (seeder, names, ports, image) = site(dir, 3, 16 * MIB, 15);
    // n0 is slow (4 MB/s, well above the scheduler's floor of 64 KiB/s per request, so
    // nothing times out), n1 is not; both install first, then n2 fetches from them
    let mut procs = vec![
        start(dir, &names, &ports, 0, &["--lan-rate", "4000000"]),
        start(dir, &names, &ports, 1, &[]),
    ];
    wait_for_all(dir, &names[..2], Duration::from_secs(180), installed(1));
    procs.push(start(dir, &names, &ports, 2, &[]));
    wait_for_all(dir, &names[2..], Duration::from_secs(180), installed(1));
    let late_id = named_status(dir, &names[2]).unwrap()["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    // what the servers sent the late node, once the slow one has nothing left to send
    let served_to_late = |n: &str| {
        let s = named_status(dir, n).unwrap();
        s["lan_served_to"][&late_id].as_u64().unwrap_or(0)
    };
    let mut last = (u64::MAX, std::time::Instant::now());
    while last.1.elapsed() < Duration::from_secs(3) {
        let now = served_to_late(&names[0]);
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let late = named_status(dir, &names[2]).unwrap();
    let (from_slow, from_fast) = (served_to_late(&names[0]), served_to_late(&names[1]));
    let received = u(&late, "bytes_lan");
    let wasted = (from_slow + from_fast).saturating_sub(received);
    println!(
        "the late node took {received} bytes from its peers (wan {}); the slow peer sent it {from_slow}, the fast one {from_fast}: {wasted} bytes sent for nothing",
        u(&late, "bytes_wan")
    );
    assert!(std::fs::read(dir.join("n2-target/image.bin")).unwrap() == image);
    assert!(from_slow > 0, "the slow peer was never asked");
    // the chunks in flight when the streams stopped: a few at most
    assert!(
        wasted <= 512 * 1024,
        "{wasted} bytes were sent for requests already cancelled"
    );
    procs.into_iter().for_each(NodeProcess::stop);
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
    let procs: Vec<NodeProcess> = (0..4).map(|i| start(dir, &names, &ports, i, &[])).collect();
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
        // honest nodes also refuse each other while their admissions are on the way:
        // the refusal must be of the outsider's key
        let why = s["lan_refusals"][&outsider_id].as_str();
        assert!(why.is_some(), "{n} did not refuse the outsider: {s}");
        println!("{n} refused the outsider: {}", why.unwrap_or(""));
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
    let (seeder, names, ports, mut image) = site(dir, 3, 8 * MIB, 13);
    let mut procs: Vec<NodeProcess> = (0..3).map(|i| start(dir, &names, &ports, i, &[])).collect();
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
    procs.push(start(dir, &names, &ports, 2, &[]));
    wait_for_all(dir, &names, Duration::from_secs(240), installed(2));
    let s = named_status(dir, "n2").unwrap();
    println!("n2: {s}");
    assert_eq!(u(&s, "bytes_wan"), 0, "n2 fetched nothing from the seeder");
    assert!(u(&s, "bytes_lan") > 0);
    assert!(std::fs::read(dir.join("n2-target/image.bin")).unwrap() == image);
    procs.into_iter().for_each(NodeProcess::stop);
    seeder.stop();
}
