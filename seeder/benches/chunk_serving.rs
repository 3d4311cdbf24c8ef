//! Benchmark: a seeder serving the chunks of a 1 GiB release to one device over
//! loopback QUIC, beside `iperf3` TCP over loopback in the same run.
//!
//! `cargo bench -p shoal-seeder --bench chunk_serving` (needs `iperf3` on PATH:
//! `apt-get install -y iperf3`; SHOAL_BENCH_MIB changes the size). The seeder is the
//! real binary; the device is `shoal_node::wan::WanClient` with several requests in
//! flight, checking every chunk's BLAKE3 as a device does.

use shoal_core::{Document, Hash};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

const MIB: u64 = 1024 * 1024;
/// Chunks per request, and requests in flight.
const PER_REQUEST: usize = 16;
const IN_FLIGHT: usize = 8;

fn seeder(dir: &Path, args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_shoal-seeder"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn write_random(path: &Path, bytes: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..bytes / (1 << 20) {
        for w in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

/// iperf3 TCP over loopback for `secs`: bytes per second received.
fn iperf3(secs: u32) -> Option<f64> {
    let port = "15201";
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-p", port])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", port, "-t", &secs.to_string(), "-J"])
        .output()
        .ok()?;
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 8.0)
}

/// User plus system CPU seconds of process `pid` so far.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the ')' of the command name: utime is the 12th, stime the 13th
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// User plus system CPU seconds of this process so far.
fn self_cpu() -> f64 {
    process_cpu(std::process::id())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("chunk_serving: skipped (run with `cargo bench`)");
        return;
    }
    if Command::new("iperf3").arg("--version").output().is_err() {
        eprintln!("chunk_serving: iperf3 is not installed (apt-get install -y iperf3)");
        std::process::exit(1);
    }
    let mib: u64 = std::env::var("SHOAL_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for k in ["root", "release", "online"] {
        seeder(d, &["keygen", "--out", &format!("{k}.key")]);
    }
    seeder(
        d,
        &[
            "root",
            "create",
            "--root-key",
            "root.key",
            "--root-threshold",
            "1",
            "--release-pub",
            "release.key.pub",
            "--release-threshold",
            "1",
            "--online-pub",
            "online.key.pub",
            "--out",
            "root.shoal",
        ],
    );
    write_random(&d.join("image.bin"), mib * MIB);
    seeder(
        d,
        &[
            "release",
            "create",
            "--name",
            "bench",
            "--version",
            "1",
            "--counter",
            "1",
            "--device-type",
            "pump",
            "--out",
            "rel.shoal",
            "image.bin",
        ],
    );
    seeder(d, &["release", "sign", "--key", "release.key", "rel.shoal"]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal-seeder"))
        .current_dir(d)
        .args([
            "serve",
            "--data",
            "data",
            "--root",
            "root.shoal",
            "--online-key",
            "online.key",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .env(
            "RUST_LOG",
            std::env::var("SHOAL_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("listening "))
        .expect("the seeder listens");
    let word = |p: &str| {
        line.split(' ')
            .find_map(|w| w.strip_prefix(p))
            .unwrap()
            .to_string()
    };
    let device_addr: std::net::SocketAddr = word("device=").parse().unwrap();
    let url = format!("https://{}", word("http="));
    let token = d.join("data/admin.token");
    let cert = d.join("data/tls/cert.pem");
    let admin = |args: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--url", &url, "--token-file", token.to_str().unwrap()]);
        a.extend(["--cert", cert.to_str().unwrap()]);
        seeder(d, &a);
    };
    admin(&["publish", "rel.shoal", "image.bin"]);
    let key = shoal_core::SecretKey::from_seed([42; 32]);
    std::fs::write(d.join("dev.pub"), key.public().to_text()).unwrap();
    admin(&[
        "devices",
        "preauthorize",
        "--pub",
        "dev.pub",
        "--group",
        "g",
    ]);
    let signed =
        shoal_core::Release::decode_envelope(&std::fs::read(d.join("rel.shoal")).unwrap()).unwrap();
    let release = signed.decode_unverified().unwrap();
    let hashes: Vec<Hash> = release.files[0].chunks.iter().map(|c| c.hash).collect();
    let cert = shoal_seeder::device_api::tls::read_cert_pem(&d.join("data/tls/cert.pem")).unwrap();

    if let Ok(secs) = std::env::var("SHOAL_BENCH_PERF") {
        // profile the seeder while the device fetches
        let _ = Command::new("perf")
            .args([
                "record",
                "-g",
                "-o",
                "/tmp/shoal-seeder.perf",
                "-p",
                &child.id().to_string(),
                "--",
                "sleep",
                &secs,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
    let server_cpu_before = process_cpu(child.id());
    let client_cpu_before = self_cpu();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (bytes, secs) = rt.block_on(async {
        let dev = Arc::new(
            shoal_node::wan::WanClient::connect(device_addr, &key, cert)
                .await
                .unwrap(),
        );
        dev.enrol("pump", "bench", vec![]).await.unwrap();
        // A device polls its head and fetches the release before any chunk; those idle
        // moments are when QUIC's MTU discovery probes (quinn only probes when it has
        // nothing else to send). Give it the same chance here.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let batches: Vec<Vec<Hash>> = hashes.chunks(PER_REQUEST).map(<[Hash]>::to_vec).collect();
        let queue = Arc::new(std::sync::Mutex::new(batches));
        let start = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..IN_FLIGHT {
            let dev = Arc::clone(&dev);
            let queue = Arc::clone(&queue);
            workers.push(tokio::spawn(async move {
                let mut bytes = 0u64;
                loop {
                    let Some(batch) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    for (h, data) in dev.chunks(&batch).await.unwrap() {
                        let data = data.expect("the seeder has the chunk");
                        assert_eq!(Hash::of(&data), h, "a chunk does not match its hash");
                        bytes += data.len() as u64;
                    }
                }
                bytes
            }));
        }
        let mut total = 0;
        for w in workers {
            total += w.await.unwrap();
        }
        let stats = dev.connection().stats();
        println!(
            "  path: mtu {}, rtt {:?}, {} datagrams received",
            stats.path.current_mtu, stats.path.rtt, stats.udp_rx.datagrams
        );
        (total, start.elapsed().as_secs_f64())
    });
    let server_cpu = process_cpu(child.id()) - server_cpu_before;
    let client_cpu = self_cpu() - client_cpu_before;
    drop(rt);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    assert_eq!(bytes, mib * MIB);
    let quic = bytes as f64 / secs;
    let tcp = iperf3(5).expect("iperf3 ran");
    println!(
        "chunk serving benchmark: {mib} MiB release, {} chunks, {IN_FLIGHT} requests of {PER_REQUEST} chunks in flight",
        hashes.len()
    );
    println!(
        "  shoal QUIC (seeder -> device, BLAKE3 checked): {:8.0} MB/s ({secs:.2} s)",
        quic / 1e6
    );
    println!(
        "  iperf3 TCP over loopback:                      {:8.0} MB/s",
        tcp / 1e6
    );
    println!(
        "  ratio:                                          {:8.2}",
        quic / tcp
    );
    let gib = bytes as f64 / (1024.0 * MIB as f64);
    println!(
        "  CPU seconds per GiB: seeder {:.2}, device {:.2}",
        server_cpu / gib,
        client_cpu / gib
    );
    println!(
        "{{\"release_mib\":{mib},\"quic_mbps\":{:.0},\"iperf3_tcp_mbps\":{:.0},\"ratio\":{:.3}}}",
        quic / 1e6,
        tcp / 1e6,
        quic / tcp
    );
}
