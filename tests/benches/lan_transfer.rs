//! LAN transfer: one node fetches a 1 GiB release from one LAN peer over loopback
//! (`/shoal/xfer/1`, QUIC), beside `iperf3` TCP over loopback in the same run.
//!
//! `cargo bench -p shoal-tests --bench lan_transfer` (needs `iperf3`:
//! `apt-get install -y iperf3`; `SHOAL_BENCH_MIB` changes the size). Real processes: a
//! seeder, node A (which installs the release from the seeder first) and node B, which
//! then fetches every chunk from A (A holds them all, so none is B's to fetch from the
//! WAN). B checks every chunk's BLAKE3 and writes it to its staging file; A checks each
//! chunk it serves from its installed file. The figure is B's fetch time (first request
//! to last chunk, from B's status); CPU seconds are read from `/proc` for both
//! processes over the same span (sampled every 20 ms, so a little wider).

use shoal_tests::*;
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("lan_transfer: skipped (run with `cargo bench`)");
        return;
    }
    if Command::new("iperf3").arg("--version").output().is_err() {
        eprintln!("lan_transfer: iperf3 is not installed (apt-get install -y iperf3)");
        std::process::exit(1);
    }
    let mib: usize = std::env::var("SHOAL_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let names = ["a".to_string(), "b".to_string()];
    for n in &names {
        init_named_node(dir, n, &seeder, &format!("{n}-target"), &[]);
        preauthorize(&seeder, n);
    }
    let ports = [free_udp_port(), free_udp_port()];
    let flags = |i: usize| {
        vec![
            "--listen".to_string(),
            format!("127.0.0.1:{}", ports[i]),
            "--peer".to_string(),
            format!("127.0.0.1:{}", ports[1 - i]),
            "--no-mdns".to_string(),
        ]
    };
    let image = bytes(mib * MIB, 21);
    ship(dir, &seeder, &image, "1.0", 1, &[]);
    drop(image);
    let fa = flags(0);
    let a = NodeProcess::start(
        dir,
        "shoal-node",
        "a",
        &fa.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    wait_for_all(dir, &names[..1], Duration::from_secs(600), |s| {
        s["installed_counter"] == 1
    });
    let served_before = seeder.chunk_bytes_served();

    let fb = flags(1);
    let b = NodeProcess::start(
        dir,
        "shoal-node",
        "b",
        &fb.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // sample both processes' CPU while B downloads
    let mut start_cpu = None;
    let started = Instant::now();
    let end_cpu = loop {
        let s = named_status(dir, "b");
        let state = s
            .as_ref()
            .and_then(|s| s["state"].as_str().map(str::to_string));
        let cpu = (process_cpu(a.pid()), process_cpu(b.pid()));
        match state.as_deref() {
            Some("downloading") if start_cpu.is_none() => start_cpu = Some(cpu),
            Some("verifying" | "installing" | "success") => break cpu,
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "B did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    wait_for_all(dir, &names[1..], Duration::from_secs(600), |s| {
        s["installed_counter"] == 1
    });
    let s = named_status(dir, "b").unwrap();
    let lan = s["bytes_lan"].as_u64().unwrap_or(0);
    let wan = s["bytes_wan"].as_u64().unwrap_or(0);
    let ms = s["last_fetch_ms"].as_u64().unwrap_or(1).max(1);
    assert_eq!(wan, 0, "B fetched {wan} bytes from the seeder");
    assert_eq!(seeder.chunk_bytes_served(), served_before);
    let (c0, c1) = (start_cpu.unwrap_or((0.0, 0.0)), end_cpu);
    let gib = lan as f64 / (1u64 << 30) as f64;
    let quic = lan as f64 / (ms as f64 / 1000.0);
    a.stop();
    b.stop();
    seeder.stop();
    let tcp = iperf3(5).expect("iperf3 ran");
    println!("lan_transfer: {mib} MiB from one LAN peer over loopback");
    println!(
        "  shoal /shoal/xfer/1, peer -> node:   {:8.0} MB/s ({lan} bytes in {ms} ms)",
        quic / 1e6
    );
    println!(
        "  iperf3 TCP over loopback:            {:8.0} MB/s",
        tcp / 1e6
    );
    println!("  ratio:                               {:8.3}", quic / tcp);
    println!(
        "  CPU seconds per GiB: serving peer {:.2}, fetching node {:.2}",
        (c1.0 - c0.0) / gib,
        (c1.1 - c0.1) / gib
    );
    println!(
        "{{\"release_mib\":{mib},\"xfer_mbps\":{:.0},\"iperf3_tcp_mbps\":{:.0},\"ratio\":{:.3}}}",
        quic / 1e6,
        tcp / 1e6,
        quic / tcp
    );
}
