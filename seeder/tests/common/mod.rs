//! A real seeder process for the service tests: keys and a root in a temporary
//! directory, `shoal-seeder serve` on port 0, the operator commands against it, and
//! device clients (`shoal_node::wan::WanClient`).

#![allow(dead_code)]

use rustls::pki_types::CertificateDer;
#[allow(unused_imports)] // used by some of the test files that include this module
pub use shoal_core::Document as _;
use shoal_core::{Root, SecretKey};
use shoal_node::wan::WanClient;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_shoal-seeder")
}

/// Runs shoal-seeder with `args` in `dir`; panics if it cannot start.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("shoal-seeder runs")
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Keys (root, release, online; 1-of-1 each) and root.shoal in a temporary directory.
pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for k in ["root", "release", "online", "stranger"] {
            ok(d, &["keygen", "--out", &format!("{k}.key")]);
        }
        ok(
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
        Work { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn root(&self) -> Root {
        let bytes = std::fs::read(self.path("root.shoal")).unwrap();
        let signed = shoal_core::root::decode_root(&bytes).unwrap();
        shoal_core::verify_root(&signed, shoal_seeder::time::now()).unwrap()
    }

    /// Writes `data` as `file`, makes a release of it and signs it with `signer`
    /// (a key file name in the work dir, or none).
    pub fn release(
        &self,
        file: &str,
        data: &[u8],
        name: &str,
        version: &str,
        counter: u64,
        signer: Option<&str>,
    ) -> PathBuf {
        std::fs::write(self.path(file), data).unwrap();
        let rel = format!("{name}-{version}.shoal");
        ok(
            self.dir.path(),
            &[
                "release",
                "create",
                "--name",
                name,
                "--version",
                version,
                "--counter",
                &counter.to_string(),
                "--device-type",
                "pump",
                "--out",
                &rel,
                file,
            ],
        );
        if let Some(k) = signer {
            ok(self.dir.path(), &["release", "sign", "--key", k, &rel]);
        }
        self.path(&rel)
    }
}

/// A running seeder.
pub struct Seeder {
    pub child: Child,
    pub data: PathBuf,
    pub device_addr: SocketAddr,
    /// `https://ADDR` of the management API.
    pub http: String,
    pub cert: CertificateDer<'static>,
    /// The PEM the operator commands pin (`--cert`): the generated certificate, or the
    /// one given to `serve --cert`.
    pub cert_pem: PathBuf,
    work: PathBuf,
}

impl Seeder {
    /// Starts `shoal-seeder serve` with its data in `data`, on port 0.
    pub fn start(work: &Work, data: &Path, extra: &[&str]) -> Seeder {
        let mut child = Command::new(bin())
            .current_dir(work.dir.path())
            .args(["serve", "--data"])
            .arg(data)
            .args([
                "--root",
                "root.shoal",
                "--online-key",
                "online.key",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the seeder starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(l) if l.starts_with("listening ") => break l,
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    panic!("the seeder did not start listening within 60 s");
                }
            }
        };
        let mut device_addr = None;
        let mut http = None;
        for word in line.split(' ') {
            if let Some(a) = word.strip_prefix("device=") {
                device_addr = a.parse().ok();
            }
            if let Some(a) = word.strip_prefix("http=") {
                http = Some(format!("https://{a}"));
            }
        }
        // the generated certificate; a test that passes --cert sets its own
        let cert = shoal_seeder::device_api::tls::read_cert_pem(&data.join("tls/cert.pem"))
            .unwrap_or_else(|_| CertificateDer::from(Vec::new()));
        let cert_pem = extra
            .iter()
            .position(|a| *a == "--cert")
            .map_or_else(|| data.join("tls/cert.pem"), |i| work.path(extra[i + 1]));
        Seeder {
            cert_pem,
            child,
            data: data.to_path_buf(),
            device_addr: device_addr.expect("device address in the listening line"),
            http: http.expect("http address in the listening line"),
            cert,
            work: work.dir.path().to_path_buf(),
        }
    }

    pub fn token_file(&self) -> PathBuf {
        self.data.join("admin.token")
    }

    /// An operator command against this seeder.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .current_dir(&self.work)
            .args(args)
            .arg("--url")
            .arg(&self.http)
            .arg("--token-file")
            .arg(self.token_file())
            .arg("--cert")
            .arg(&self.cert_pem)
            .output()
            .expect("shoal-seeder runs")
    }

    /// An HTTPS client of the management API that pins this seeder's certificate, as
    /// the operator commands do (error statuses are answers, no redirects).
    pub fn agent(&self) -> ureq::Agent {
        let trust = shoal_seeder::admin::https::Trust::from_flag(Some(&self.cert_pem)).unwrap();
        shoal_seeder::admin::https::agent(&trust).unwrap()
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(
            o.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.cli_ok(&a)).expect("JSON output")
    }

    pub async fn device(&self, key: &SecretKey) -> WanClient {
        WanClient::connect(self.device_addr, key, self.cert.clone())
            .await
            .expect("a device connects")
    }

    /// SIGTERM, then wait; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// kill -9, then wait.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Seeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

pub fn device_key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// Writes a device's public key file (what `shoal-node init` writes as node.pub).
pub fn write_pub(work: &Work, key: &SecretKey, name: &str) -> PathBuf {
    let p = work.path(name);
    std::fs::write(&p, key.public().to_text()).unwrap();
    p
}
