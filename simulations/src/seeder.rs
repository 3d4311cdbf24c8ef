//! The seeder side of a run: keys and a root made with the real offline commands, a
//! `shoal-seeder serve` process, and the operator commands against it (run where the
//! seeder runs, so the management API stays on that namespace's loopback).

use crate::bins::Bins;
use crate::proc::{Place, Proc, run_ok};
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

/// Keys (1-of-1 root, release and online) and `root.shoal` in `dir`.
pub fn make_keys_and_root(bins: &Bins, dir: &Path) -> Result<()> {
    for k in ["root", "release", "online"] {
        tool(bins, dir, &["keygen", "--out", &format!("{k}.key")])?;
    }
    tool(
        bins,
        dir,
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
    )
    .map(drop)
}

/// An offline `shoal-seeder` command in `dir`, on this host.
pub fn tool(bins: &Bins, dir: &Path, args: &[&str]) -> Result<String> {
    run_ok(&Place::Host, dir, &bins.seeder, args)
}

/// Makes `rel` from `files` (in `dir`) and signs it with `keys` (all offline).
pub fn make_release(
    bins: &Bins,
    dir: &Path,
    version: &str,
    counter: u64,
    rel: &str,
    files: &[&str],
    keys: &[&str],
) -> Result<()> {
    let counter = counter.to_string();
    let mut args = vec![
        "release",
        "create",
        "--name",
        "pump-firmware",
        "--version",
        version,
        "--counter",
        &counter,
        "--device-type",
        "pump",
        "--out",
        rel,
    ];
    args.extend_from_slice(files);
    tool(bins, dir, &args)?;
    for k in keys {
        tool(bins, dir, &["release", "sign", "--key", k, rel])?;
    }
    Ok(())
}

/// A running `shoal-seeder serve` (data in `DIR/seeder-data`), killed on drop.
pub struct Seeder {
    pub proc: Proc,
    /// The device API as devices dial it.
    pub device_addr: String,
    /// The management API, `https://ADDR`, reachable from `place`.
    pub http: String,
    pub data: PathBuf,
    place: Place,
    dir: PathBuf,
    bin: PathBuf,
}

impl Seeder {
    /// Starts the seeder at `place` in `dir` (which holds `root.shoal` and
    /// `online.key`), its device API on `listen` and its management API on `http`.
    pub fn start(
        bins: &Bins,
        place: Place,
        dir: &Path,
        listen: &str,
        http: &str,
    ) -> Result<Seeder> {
        let mut cmd = place.command(&bins.seeder);
        cmd.current_dir(dir)
            .args([
                "serve",
                "--data",
                "seeder-data",
                "--root",
                "root.shoal",
                "--online-key",
                "online.key",
                "--listen",
                listen,
                "--http",
                http,
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped());
        let mut proc = Proc::spawn("the seeder", &mut cmd, dir.join("seeder.log"))?;
        let stdout = proc.child.stdout.take().context("the seeder's stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = std::time::Instant::now();
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(l) if l.starts_with("listening ") => break l,
                Ok(_) => {}
                Err(_) => {
                    proc.check_alive()?;
                    if started.elapsed() > Duration::from_secs(60) {
                        bail!("the seeder did not say `listening` within 60 s");
                    }
                }
            }
        };
        let word = |p: &str| {
            line.split(' ')
                .find_map(|w| w.strip_prefix(p))
                .map(str::to_string)
                .with_context(|| format!("expected `{p}ADDR` in the seeder's line, found `{line}`"))
        };
        Ok(Seeder {
            device_addr: word("device=")?,
            http: format!("https://{}", word("http=")?),
            data: dir.join("seeder-data"),
            proc,
            place,
            dir: dir.to_path_buf(),
            bin: bins.seeder.clone(),
        })
    }

    /// The certificate devices and operator commands pin.
    pub fn cert(&self) -> PathBuf {
        self.data.join("tls/cert.pem")
    }

    /// An operator command against this seeder, where the seeder runs.
    pub fn admin(&self, args: &[&str]) -> Result<String> {
        let (token, cert) = (self.data.join("admin.token"), self.cert());
        let utf8 = |p: PathBuf| {
            p.into_os_string()
                .into_string()
                .map_err(|_| anyhow::anyhow!("the data folder's path is not UTF-8"))
        };
        let (token, cert) = (utf8(token)?, utf8(cert)?);
        let mut a = args.to_vec();
        a.extend(["--url", &self.http, "--token-file", &token, "--cert", &cert]);
        run_ok(&self.place, &self.dir, &self.bin, &a)
    }

    pub fn preauthorize(&self, public_key: &Path) -> Result<()> {
        let p = public_key
            .to_str()
            .context("a key path that is not UTF-8")?;
        self.admin(&["devices", "preauthorize", "--pub", p, "--group", "site"])
            .map(drop)
    }

    pub fn publish(&self, rel: &str, files: &[&str]) -> Result<()> {
        let mut a = vec!["publish", rel];
        a.extend_from_slice(files);
        self.admin(&a).map(drop)
    }

    /// Deploys `pump-firmware@version` to the group every device joined.
    pub fn deploy(&self, version: &str) -> Result<()> {
        let r = format!("pump-firmware@{version}");
        self.admin(&["deploy", "--release", &r, "--group", "site"])
            .map(drop)
    }

    /// Chunk bytes the device API has served (`GET /api/v1/stats`); only from the
    /// host, so only for a seeder on this host's loopback.
    pub fn chunk_bytes_served(&self) -> Result<u64> {
        if self.place != Place::Host {
            bail!("the seeder's stats are read from the host only");
        }
        let api = shoal_seeder::admin::Api::new(&shoal_seeder::admin::ApiFlags {
            url: Some(self.http.clone()),
            token_file: Some(self.data.join("admin.token")),
            cert: Some(self.cert()),
        })?;
        let stats = api.get("/stats").context("the seeder's stats")?;
        stats["chunk_bytes_served"]
            .as_u64()
            .with_context(|| format!("expected chunk_bytes_served in the stats, found {stats}"))
    }
}
