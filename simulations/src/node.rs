//! The device side of a run: `shoal-node init`, a `shoal-node run` process with its
//! LAN flags, and its status (`DIR/status.json`, the file `shoal-node status` prints,
//! kept current by `run`).

use crate::bins::Bins;
use crate::proc::{Place, Proc, run_ok};
use crate::seeder::Seeder;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// How a device is set up and run.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub place: Place,
    /// Its data folder; the install target is `DATA/installed`.
    pub data: PathBuf,
    /// The seeder's device API as this device dials it.
    pub seeder_addr: String,
    /// Where its LAN swarm listens, and the other devices' addresses.
    pub listen: SocketAddr,
    pub peers: Vec<SocketAddr>,
    /// false: `--no-lan` (the classic OTA model: everything from the seeder).
    pub lan: bool,
}

impl NodeSpec {
    pub fn target(&self) -> PathBuf {
        self.data.join("installed")
    }
}

/// `shoal-node init` (offline, on the host), then the seeder preauthorizes its key.
pub fn init(bins: &Bins, spec: &NodeSpec, seeder: &Seeder, root: &Path) -> Result<()> {
    let s = |p: &Path| {
        p.to_str()
            .map(str::to_string)
            .context("a path that is not UTF-8")
    };
    let (data, cert, root, target) = (
        s(&spec.data)?,
        s(&seeder.cert())?,
        s(root)?,
        s(&spec.target())?,
    );
    run_ok(
        &Place::Host,
        spec.data.parent().unwrap_or(Path::new("/")),
        &bins.node,
        &[
            "init",
            "--data",
            &data,
            "--seeder",
            &spec.seeder_addr,
            "--seeder-cert",
            &cert,
            "--root",
            &root,
            "--device-type",
            "pump",
            "--site",
            "site",
            "--target",
            &target,
            "--poll-secs",
            "1",
        ],
    )?;
    seeder.preauthorize(&spec.data.join("node.pub"))
}

/// `shoal-node run` at the spec's place, its log in `DATA/node.log`.
pub fn start(bins: &Bins, spec: &NodeSpec) -> Result<Proc> {
    let mut cmd = spec.place.command(&bins.node);
    cmd.arg("run")
        .arg("--data")
        .arg(&spec.data)
        .arg("--listen")
        .arg(spec.listen.to_string());
    for p in &spec.peers {
        cmd.arg("--peer").arg(p.to_string());
    }
    if !spec.lan {
        cmd.arg("--no-lan");
    }
    cmd.env("RUST_LOG", "warn,shoal_node::fetch=info")
        .stdout(Stdio::null());
    Proc::spawn(&spec.name, &mut cmd, spec.data.join("node.log"))
}

/// The fields of a node's status that a run reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeStatus {
    pub state: String,
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub bytes_local: u64,
    pub bytes_wan: u64,
    pub bytes_lan: u64,
    pub error: Option<String>,
    pub installed_counter: Option<u64>,
    #[serde(default)]
    pub fetch_wan_chunks: u64,
    #[serde(default)]
    pub fetch_takeovers: u64,
}

/// Reads `DATA/status.json`; `None` until `run` has written it.
pub fn read_status(data: &Path) -> Result<Option<NodeStatus>> {
    let path = data.join("status.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| {
            format!(
                "{}: expected a node status, found {text:.80}",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
    }
}

/// `shoal-node status --data DATA --json`: the figures a run reports, through the
/// command operators use.
pub fn status(bins: &Bins, data: &Path) -> Result<NodeStatus> {
    let d = data.to_str().context("a path that is not UTF-8")?;
    let out = run_ok(
        &Place::Host,
        Path::new("/"),
        &bins.node,
        &["status", "--data", d, "--json"],
    )?;
    serde_json::from_str(&out)
        .with_context(|| format!("expected `shoal-node status --json` output, found {out:.80}"))
}
