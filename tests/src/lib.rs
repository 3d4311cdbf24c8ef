//! Helpers for the end-to-end tests in `tests/tests/`: the real binaries, a seeder
//! process on port 0, keys and releases made with the real commands.

pub mod xfer;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A workspace binary (`shoal-seeder`, `shoal-node`, `shoal-hostile-seeder`) of this
/// build profile. The first call in a test process runs `cargo build --workspace
/// --bins` (a no-op when they are current), so a test never runs a stale binary, even
/// when this package's tests run on their own.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("the test knows its path");
    // target/<profile>/deps/<test> -> target/<profile>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a target folder");
    BUILT.call_once(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "--workspace", "--bins"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        // What cargo sets for a running test is no build setting, but build scripts
        // that read it (ring's reads CARGO_MANIFEST_DIR) count it as one: passed on,
        // this build and the next `cargo test` rebuilt each other's dependencies.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            let set_by_cargo_test = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|p| k.starts_with(p))
                || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*k);
            if set_by_cargo_test {
                cmd.env_remove(&*k);
            }
        }
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "cannot build the workspace's binaries");
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

pub fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(bin(program))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the binary runs")
}

pub fn ok(dir: &Path, program: &str, args: &[&str]) -> String {
    let o = run(dir, program, args);
    assert!(
        o.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A test that cannot run here (no root, no browser) says so on stderr; under CI
/// (`SHOAL_CI` set, as `.ci/run` does) it fails instead, so a missing tool never
/// passes for a green run.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("SHOAL_CI").is_some() {
        panic!("{test} cannot run: {why} (SHOAL_CI is set, so this is a failure, not a skip)");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// Keys (1-of-1 root, release and online) and `root.shoal` in `dir`.
pub fn make_keys_and_root(dir: &Path) {
    for k in ["root", "release", "online"] {
        ok(
            dir,
            "shoal-seeder",
            &["keygen", "--out", &format!("{k}.key")],
        );
    }
    ok(
        dir,
        "shoal-seeder",
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
}

/// A running `shoal-seeder serve`, killed on drop.
pub struct SeederProcess {
    pub child: Child,
    pub device_addr: String,
    /// `https://ADDR` of the management API.
    pub http: String,
    pub data: PathBuf,
    dir: PathBuf,
}

impl SeederProcess {
    pub fn start(dir: &Path) -> SeederProcess {
        SeederProcess::start_as(dir, "shoal-seeder", &["serve"], "127.0.0.1:0")
    }

    /// `shoal-seeder serve` on the device port of a seeder that ran before it (the
    /// same data folder: the same certificate, so devices pinned to it connect).
    pub fn start_at(dir: &Path, device_addr: &str) -> SeederProcess {
        SeederProcess::start_as(dir, "shoal-seeder", &["serve"], device_addr)
    }

    /// A seeder that misbehaves on purpose (`shoal-hostile-seeder`), on the same data
    /// folder and device port as a seeder that ran before it.
    pub fn start_hostile(dir: &Path, mode: &str, device_addr: &str) -> SeederProcess {
        SeederProcess::start_as(
            dir,
            "shoal-hostile-seeder",
            &["--misbehave", mode],
            device_addr,
        )
    }

    fn start_as(dir: &Path, program: &str, first: &[&str], listen: &str) -> SeederProcess {
        let data = dir.join("seeder-data");
        let mut child = Command::new(bin(program))
            .current_dir(dir)
            .args(first)
            .args([
                "--data",
                "seeder-data",
                "--root",
                "root.shoal",
                "--online-key",
                "online.key",
                "--listen",
                listen,
                "--http",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the seeder starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(l) if l.starts_with("listening ") => break l,
                Ok(_) => {}
                Err(_) => panic!("the seeder did not start within 60 s"),
            }
        };
        let word = |p: &str| {
            line.split(' ')
                .find_map(|w| w.strip_prefix(p))
                .expect("address in the listening line")
                .to_string()
        };
        SeederProcess {
            device_addr: word("device="),
            http: format!("https://{}", word("http=")),
            child,
            data,
            dir: dir.to_path_buf(),
        }
    }

    /// The certificate both of its APIs present (devices and operators pin it).
    pub fn cert(&self) -> PathBuf {
        self.data.join("tls/cert.pem")
    }

    /// The flags of an operator command against this seeder (its bootstrap admin
    /// token).
    fn api_flags(&self) -> shoal_seeder::admin::ApiFlags {
        shoal_seeder::admin::ApiFlags {
            url: Some(self.http.clone()),
            token_file: Some(self.data.join("admin.token")),
            cert: Some(self.cert()),
        }
    }

    /// An operator command against this seeder.
    pub fn admin(&self, args: &[&str]) -> String {
        let (token, cert) = (self.data.join("admin.token"), self.cert());
        let utf8 = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
        let (token, cert) = (utf8(&token), utf8(&cert));
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--url", &self.http, "--token-file", &token, "--cert", &cert]);
        ok(&self.dir, "shoal-seeder", &a)
    }

    /// The management API's client, as the operator commands make it.
    pub fn api(&self) -> shoal_seeder::admin::Api {
        shoal_seeder::admin::Api::new(&self.api_flags()).expect("a client of the seeder")
    }

    /// `GET path` (`/metrics`, `/dashboard`: not under /api/v1) with the admin token:
    /// the status and the body.
    pub fn get_text(&self, path: &str) -> (u16, String) {
        let trust = shoal_seeder::admin::https::Trust::from_flag(Some(&self.cert()))
            .expect("the seeder's certificate");
        let token = std::fs::read_to_string(self.data.join("admin.token")).expect("token");
        let mut r = shoal_seeder::admin::https::agent(&trust)
            .expect("an HTTPS client")
            .get(format!("{}{path}", self.http))
            .header("Authorization", format!("Bearer {}", token.trim()))
            .call()
            .expect("the seeder answers");
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().expect("a text body"))
    }

    /// The management API's `/stats`.
    pub fn stats(&self) -> serde_json::Value {
        self.api().get("/stats").expect("stats")
    }

    pub fn chunk_bytes_served(&self) -> u64 {
        self.stats()["chunk_bytes_served"]
            .as_u64()
            .expect("a counter")
    }

    /// SIGTERM, then wait.
    pub fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for SeederProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Changes `pct` percent of `data` in `places` runs spread evenly; returns the bytes
/// changed.
pub fn change_scattered(data: &mut [u8], pct: u64, places: usize) -> u64 {
    let run = (data.len() as u64 * pct / 100 / places as u64).max(1) as usize;
    let stride = data.len() / places;
    let mut changed = 0;
    for i in 0..places {
        let at = i * stride + stride / 3;
        let end = (at + run).min(data.len());
        for b in &mut data[at..end] {
            *b ^= 0x5a;
        }
        changed += (end - at) as u64;
    }
    changed
}

/// `shoal-node init` of a node in `dir/node` against `seeder`, with `extra` flags.
pub fn init_node(dir: &Path, seeder: &SeederProcess, target: &str, extra: &[&str]) {
    init_named_node(dir, "node", seeder, target, extra);
    preauthorize(seeder, "node");
}

/// The seeder pre-authorises the node in `dir/name` (group `g`).
pub fn preauthorize(seeder: &SeederProcess, name: &str) {
    preauthorize_in(seeder, name, "g");
}

/// The seeder pre-authorises the node in `dir/name` in `group`.
pub fn preauthorize_in(seeder: &SeederProcess, name: &str, group: &str) {
    seeder.admin(&[
        "devices",
        "preauthorize",
        "--pub",
        &format!("{name}/node.pub"),
        "--group",
        group,
    ]);
}

/// `shoal-node init` of a node in `dir/name` (not yet known to the seeder).
pub fn init_named_node(
    dir: &Path,
    name: &str,
    seeder: &SeederProcess,
    target: &str,
    extra: &[&str],
) {
    init_node_on(dir, name, seeder, "s", target, extra);
}

/// `shoal-node init` of a node in `dir/name` on `site` (not yet known to the
/// seeder); returns the device id it prints.
pub fn init_node_on(
    dir: &Path,
    name: &str,
    seeder: &SeederProcess,
    site: &str,
    target: &str,
    extra: &[&str],
) -> String {
    let cert = seeder.cert();
    let mut args = vec![
        "init",
        "--data",
        name,
        "--seeder",
        &seeder.device_addr,
        "--seeder-cert",
        cert.to_str().expect("UTF-8 path"),
        "--root",
        "root.shoal",
        "--device-type",
        "pump",
        "--site",
        site,
        "--target",
        target,
        "--poll-secs",
        "1",
    ];
    args.extend_from_slice(extra);
    ok(dir, "shoal-node", &args)
        .lines()
        .find_map(|l| l.strip_prefix("device id "))
        .expect("init prints the device id")
        .to_string()
}

/// Makes, signs, publishes and deploys (to group `g`) a release `fw@version` of
/// `image` as `image.bin`, with `extra` flags for `release create` (device type `pump`
/// unless `extra` names one).
pub fn ship(
    dir: &Path,
    seeder: &SeederProcess,
    image: &[u8],
    version: &str,
    counter: u64,
    extra: &[&str],
) {
    ship_to(dir, seeder, image, version, counter, extra, "g");
}

/// [`ship`], deployed to `group`.
pub fn ship_to(
    dir: &Path,
    seeder: &SeederProcess,
    image: &[u8],
    version: &str,
    counter: u64,
    extra: &[&str],
    group: &str,
) {
    publish(dir, seeder, image, version, counter, extra);
    deploy(seeder, version, group);
}

/// [`ship`] without the deployment: made, signed and published.
pub fn publish(
    dir: &Path,
    seeder: &SeederProcess,
    image: &[u8],
    version: &str,
    counter: u64,
    extra: &[&str],
) {
    std::fs::write(dir.join("image.bin"), image).expect("write the image");
    let rel = format!("rel-{version}.shoal");
    let counter = counter.to_string();
    let mut args = vec![
        "release",
        "create",
        "--name",
        "fw",
        "--version",
        version,
        "--counter",
        &counter,
        "--out",
        &rel,
    ];
    // device type pump unless the caller names one
    if !extra.contains(&"--device-type") {
        args.extend_from_slice(&["--device-type", "pump"]);
    }
    args.extend_from_slice(extra);
    args.push("image.bin");
    ok(dir, "shoal-seeder", &args);
    ok(
        dir,
        "shoal-seeder",
        &["release", "sign", "--key", "release.key", &rel],
    );
    seeder.admin(&["publish", &rel, "image.bin"]);
}

/// Deploys `fw@version` (published already) to `group`.
pub fn deploy(seeder: &SeederProcess, version: &str, group: &str) {
    seeder.admin(&[
        "deploy",
        "--release",
        &format!("fw@{version}"),
        "--group",
        group,
    ]);
}

/// Runs `shoal-node run --exit-after-install` in `dir` until it exits (90 s at most).
pub fn run_node(dir: &Path) -> std::process::ExitStatus {
    let mut child = Command::new(bin("shoal-node"))
        .current_dir(dir)
        .args(["run", "--data", "node", "--exit-after-install"])
        .env("RUST_LOG", "error")
        .spawn()
        .expect("the node starts");
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("the node neither installed nor gave up within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `shoal-node status --json` of the node in `dir`.
pub fn node_status(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(
        dir,
        "shoal-node",
        &["status", "--data", "node", "--json"],
    ))
    .expect("status JSON")
}

/// A free UDP port on loopback (bound, read, released).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// A `shoal-node run` (or `shoal-hostile-peer`) process in `dir/name`, killed on drop.
pub struct NodeProcess {
    pub name: String,
    child: Child,
}

impl NodeProcess {
    /// Starts `program` (`shoal-node` or `shoal-hostile-peer`) with `run --data NAME`
    /// (the hostile peer takes its flags without `run`) and `extra` flags.
    pub fn start(dir: &Path, program: &str, name: &str, extra: &[&str]) -> NodeProcess {
        NodeProcess::spawn(dir, program, name, extra, Stdio::inherit())
    }

    /// `shoal-node run` as [`NodeProcess::start`], with `--metrics` on a free loopback
    /// port; also the URL of its Prometheus text (from the line the node prints).
    pub fn start_with_metrics(dir: &Path, name: &str, extra: &[&str]) -> (NodeProcess, String) {
        let mut args = extra.to_vec();
        args.extend(["--metrics", "127.0.0.1:0"]);
        let mut node = NodeProcess::spawn(dir, "shoal-node", name, &args, Stdio::piped());
        let stdout = node.child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // the node's stdout is read to its end, so it never blocks on a full pipe
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("metrics on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the node prints where its metrics are within 60 s");
        (node, url)
    }

    fn spawn(dir: &Path, program: &str, name: &str, extra: &[&str], stdout: Stdio) -> NodeProcess {
        let mut args: Vec<&str> = Vec::new();
        if program == "shoal-node" {
            args.push("run");
        }
        args.extend_from_slice(&["--data", name]);
        args.extend_from_slice(extra);
        let child = Command::new(bin(program))
            .current_dir(dir)
            .args(&args)
            .env(
                "RUST_LOG",
                std::env::var("SHOAL_TEST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(stdout)
            .spawn()
            .expect("the node starts");
        NodeProcess {
            name: name.to_string(),
            child,
        }
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Prometheus text a node serves at `url` (`run --metrics`).
pub fn scrape(url: &str) -> String {
    ureq::get(url)
        .call()
        .expect("the node answers its metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics text")
}

/// The value of `sample` (its name and labels, e.g.
/// `shoal_node_chunk_bytes_total{source="lan"}`) in Prometheus text; panics, showing
/// the text, if it is not there.
pub fn sample(metrics: &str, sample: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(sample)
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("{sample} in\n{metrics}"))
}

/// `shoal-node status --json` of the node in `dir/name`, if it has written one.
pub fn named_status(dir: &Path, name: &str) -> Option<serde_json::Value> {
    let o = run(dir, "shoal-node", &["status", "--data", name, "--json"]);
    if !o.status.success() {
        return None;
    }
    serde_json::from_slice(&o.stdout).ok()
}

/// Waits until `done` holds for the status of every node in `names` (or panics after
/// `limit`, naming the nodes that were not done).
pub fn wait_for_all(
    dir: &Path,
    names: &[String],
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) {
    let start = std::time::Instant::now();
    loop {
        let pending: Vec<String> = names
            .iter()
            .filter(|n| !named_status(dir, n).is_some_and(|s| done(&s)))
            .cloned()
            .collect();
        if pending.is_empty() {
            return;
        }
        if start.elapsed() > limit {
            let states: Vec<String> = pending
                .iter()
                .map(|n| {
                    format!(
                        "{n}: {}",
                        named_status(dir, n)
                            .map(|s| s.to_string())
                            .unwrap_or_default()
                    )
                })
                .collect();
            panic!("not done within {limit:?}: {}", states.join("; "));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// iperf3 TCP over loopback for `secs`: bytes per second received (for benchmarks).
pub fn iperf3(secs: u32) -> Option<f64> {
    let port = free_udp_port().to_string();
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-p", &port])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new("iperf3")
        .args([
            "-c",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            &secs.to_string(),
            "-J",
        ])
        .output()
        .ok()?;
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 8.0)
}

/// User plus system CPU seconds of process `pid` so far.
pub fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the ')' of the command name: utime is the 12th, stime the 13th
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}
