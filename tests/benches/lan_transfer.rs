//! LAN transfer: one node fetches a 1 GiB release from one LAN peer over loopback
//! (`/shoal/xfer/1`, QUIC), beside `iperf3` TCP over loopback in the same run.
//!
//! `cargo bench -p shoal-tests --bench lan_transfer` (needs `iperf3`:
//! `apt-get install -y iperf3`; `SHOAL_BENCH_MIB` changes the size). Real processes: a
//! seeder, node A (which installs the release from the seeder first) and node B, which
//! then fetches every chunk from A (A holds them all, so none is B's to fetch from the
//! WAN). B checks every chunk's length and BLAKE3 and writes it to its staging file; A
//! serves each chunk from its installed file, verified whole at install (decision
//! 0011). The figure is B's fetch time (first request to last chunk, from B's status);
//! CPU seconds are read from `/proc` for both processes over the same span (sampled
//! every 20 ms, so a little wider).
//!
//! The nodes' folders are on tmpfs (`/dev/shm`) when there is one, so that the figure
//! is the node's and not this machine's disk; `SHOAL_BENCH_DIR` names another folder.
//! Three figures:
//! 1. **node**: B, a real node, fetching into its staging files (checked, written,
//!    synced every 250 ms, progress in redb), as above;
//! 2. **protocol**: B's identity and admission in this process, fetching every chunk
//!    from A over `/shoal/xfer/1` with `REQUESTS` requests of `PER_REQUEST` chunks in
//!    flight and checking each chunk's length and BLAKE3, without writing it (what the
//!    WAN benchmark `chunk_serving` measures for the seeder, and what iperf3 does: memory
//!    to memory);
//! 3. **disk**: the same number of bytes written in 80 KiB `pwrite`s to a file in the
//!    system's temporary folder (on disk), then `fdatasync`: what a node storing on this
//!    machine's disk could reach at best.

use shoal_core::Hash;
use shoal_core::plan::Plan;
use shoal_node::agent::LanOptions;
use shoal_node::config::DataDir;
use shoal_node::lan::Lan;
use shoal_tests::*;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;
/// The protocol client's requests in flight and chunks per request.
const REQUESTS: usize = 8;
const PER_REQUEST: usize = 16;

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
    let base = std::env::var_os("SHOAL_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(Path::new("/dev/shm").to_path_buf()).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(&base).unwrap();
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
    b.stop();
    let release = s["release"]
        .as_str()
        .expect("B names its release")
        .to_string();
    let proto = protocol_fetch(dir, &release, ports[0], a.pid());
    a.stop();
    seeder.stop();
    let disk_dir = tempfile::tempdir().unwrap();
    let disk = disk_write(disk_dir.path(), lan);
    let tcp = iperf3(5).expect("iperf3 ran");
    println!(
        "lan_transfer: {mib} MiB from one LAN peer over loopback; nodes in {}",
        base.display()
    );
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
    let proto_rate = proto.bytes as f64 / proto.secs;
    println!(
        "  protocol only (checked, not stored): {:8.0} MB/s ({} bytes in {:.0} ms), ratio {:.3}",
        proto_rate / 1e6,
        proto.bytes,
        proto.secs * 1000.0,
        proto_rate / tcp
    );
    println!(
        "  CPU seconds per GiB: serving peer {:.2}, protocol client {:.2}",
        proto.cpu_server / gib,
        proto.cpu_client / gib
    );
    println!(
        "  disk ({}): 80 KiB pwrites + fdatasync: {:8.0} MB/s (a node storing there is bounded by this)",
        std::env::temp_dir().display(),
        disk / 1e6
    );
    println!(
        "{{\"release_mib\":{mib},\"xfer_mbps\":{:.0},\"protocol_mbps\":{:.0},\"disk_mbps\":{:.0},\"iperf3_tcp_mbps\":{:.0},\"ratio\":{:.3},\"protocol_ratio\":{:.3}}}",
        quic / 1e6,
        proto_rate / 1e6,
        disk / 1e6,
        tcp / 1e6,
        quic / tcp,
        proto_rate / tcp
    );
}

struct Protocol {
    bytes: u64,
    secs: f64,
    cpu_server: f64,
    cpu_client: f64,
}

/// Figure 2 of the module doc: B's identity in this process fetches every chunk of
/// `release` from A (on `port`, process `a_pid`), checking each.
fn protocol_fetch(dir: &Path, release: &str, port: u16, a_pid: u32) -> Protocol {
    let data = DataDir(dir.join("b"));
    let key = shoal_core::SecretKey::from_text(&std::fs::read_to_string(data.identity()).unwrap())
        .unwrap();
    let signed_root = shoal_core::root::decode_root(&std::fs::read(data.root()).unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let root = shoal_core::verify_root(&signed_root, now).unwrap();
    let site = data.load_config().unwrap().site;
    let admission = std::fs::read(data.admission()).expect("B kept its admission");
    let id = Hash::from_hex(release).unwrap();
    let bytes = std::fs::read(dir.join("rel-1.0.shoal")).unwrap();
    let signed = shoal_core::release::decode_release(&bytes).unwrap();
    assert_eq!(signed.body_hash(), id, "rel-1.0.shoal is B's release");
    let plan = Plan::new(&signed.decode_unverified().unwrap());
    let chunks: Vec<(Hash, u32)> = plan.chunks.iter().map(|c| (c.hash, c.len)).collect();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let options = LanOptions {
            enabled: true,
            listen: Some("127.0.0.1:0".parse().unwrap()),
            peers: vec![format!("127.0.0.1:{port}").parse().unwrap()],
            serve: false,
            rate: None,
            mdns: false,
        };
        let lan = Lan::start(&options, &key, root, site, None).unwrap();
        lan.set_admission(admission);
        let started = Instant::now();
        let peer = loop {
            if let Some(p) = lan.peers().into_iter().next() {
                break p;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "A never admitted us"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let (s0, c0) = (process_cpu(a_pid), process_cpu(std::process::id()));
        let start = Instant::now();
        let batches: Vec<Vec<(Hash, u32)>> =
            chunks.chunks(PER_REQUEST).map(<[_]>::to_vec).collect();
        let mut batches = batches.into_iter();
        let mut tasks = tokio::task::JoinSet::new();
        let mut total = 0u64;
        loop {
            while tasks.len() < REQUESTS {
                let Some(batch) = batches.next() else { break };
                let p = peer.clone();
                tasks.spawn(async move {
                    let hashes = batch.iter().map(|c| c.0).collect();
                    let mut next = batch.iter();
                    let mut got = 0u64;
                    p.chunks(id, hashes, |hash, data| {
                        let (want, len) = next.next().copied().unwrap();
                        let data = data.expect("A holds every chunk");
                        assert_eq!((hash, data.len()), (want, len as usize));
                        assert_eq!(Hash::of(&data), want, "a chunk that does not match");
                        got += data.len() as u64;
                    })
                    .await
                    .expect("A answers");
                    got
                });
            }
            match tasks.join_next().await {
                Some(r) => total += r.unwrap(),
                None => break,
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let (s1, c1) = (process_cpu(a_pid), process_cpu(std::process::id()));
        assert_eq!(total, plan.unique_bytes(), "every chunk arrived");
        Protocol {
            bytes: total,
            secs,
            cpu_server: s1 - s0,
            cpu_client: c1 - c0,
        }
    })
}

/// Figure 3 of the module doc: `bytes` written in 80 KiB `pwrite`s, then synced; B/s.
fn disk_write(dir: &Path, bytes: u64) -> f64 {
    let path = dir.join("disk-test");
    let f = std::fs::File::create(&path).unwrap();
    let block = vec![0x5au8; 80 * 1024];
    let start = Instant::now();
    let mut at = 0u64;
    while at < bytes {
        f.write_all_at(&block, at).unwrap();
        at += block.len() as u64;
    }
    f.sync_data().unwrap();
    let rate = at as f64 / start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path).unwrap();
    rate
}
