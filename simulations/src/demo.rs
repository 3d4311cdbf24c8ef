//! `shoal-sim demo`: shoal end to end on this machine's loopback, no root, no setup.
//!
//! In a temporary directory it runs what operators and devices run, as real processes:
//! offline keys, a 2-of-2 root, a release of an image signed by both release keys (and
//! a tampered copy refused); a `shoal-seeder serve` and five `shoal-node run` agents
//! that listen for LAN peers on loopback and know each other as `--peer`s. It publishes
//! and deploys the release, shows each node's progress, then where each node's bytes
//! came from (WAN, LAN, local) and the WAN amplification (chunk bytes the seeder served
//! ÷ the release's unique chunk bytes: 1.0 is each chunk once for the whole site). Then
//! a second release with a share of the image changed at scattered places, to show the
//! delta. Processes and the folder are removed at the end, on error, and on Ctrl-C.
//!
//! With `--json` the walkthrough goes to stderr and stdout carries one JSON object
//! (`Summary`): release 1's figures at the top level (`wan_bytes`: chunk bytes the
//! seeder served; `unique_bytes`: the release's distinct chunk bytes;
//! `wan_amplification`: the one over the other; `lan_bytes`, `local_bytes`: summed over
//! the nodes; `completion_s`; per node `bytes_wan`, `bytes_lan`, `bytes_local`,
//! `installed_s`), and release 2's under `second`, with `changed_bytes` and
//! `wan_bytes_over_changed`. The demo fails unless every node's installed image is the
//! release's, so a summary means every image was checked.

use crate::bins::{self, Bins};
use crate::node::{self, NodeSpec};
use crate::proc::{Place, Proc};
use crate::seeder::{Seeder, tool};
use crate::watch::{Watched, until_installed};
use crate::{cleanup, image, manifest};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use shoal_core::Release;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;
const NODES: usize = 5;

/// Where the walkthrough goes: stdout, or stderr when stdout carries the JSON summary.
#[derive(Debug, Clone, Copy)]
struct Say {
    json: bool,
}

impl Say {
    fn line(self, text: fmt::Arguments<'_>) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

/// `println!` of the walkthrough, through a [`Say`].
macro_rules! say {
    ($to:expr, $($arg:tt)*) => {
        $to.line(format_args!($($arg)*))
    };
}

/// One node's figures for one release.
#[derive(Debug, Clone, Serialize)]
pub struct NodeLine {
    pub name: String,
    pub installed_s: f64,
    pub bytes_wan: u64,
    pub bytes_lan: u64,
    pub bytes_local: u64,
}

/// One release's rollout over the five nodes.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub version: String,
    pub wan_bytes: u64,
    pub unique_bytes: u64,
    pub wan_amplification: f64,
    pub lan_bytes: u64,
    pub local_bytes: u64,
    pub completion_s: f64,
    pub nodes: Vec<NodeLine>,
}

/// The update: its round, and its WAN bytes against the bytes changed.
#[derive(Debug, Clone, Serialize)]
pub struct Update {
    pub change_pct: u64,
    pub changed_bytes: u64,
    pub wan_bytes_over_changed: f64,
    #[serde(flatten)]
    pub round: Round,
}

/// What `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub devices: usize,
    pub image_mib: u64,
    #[serde(flatten)]
    pub first: Round,
    pub second: Update,
    pub took_s: f64,
}

/// `a / b`, rounded to 4 decimals for reading; 0 when nothing was needed.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        (a as f64 / b as f64 * 1e4).round() / 1e4
    }
}

/// Runs one offline shoal-seeder command in `dir`, echoing it first.
fn step(out: Say, bins: &Bins, dir: &Path, args: &[&str]) -> Result<String> {
    say!(out, "$ shoal-seeder {}", args.join(" "));
    tool(bins, dir, args)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// Runs the demo; with `json`, the walkthrough goes to stderr and the summary to stdout.
pub fn run(image_mib: u64, change_pct: u64, json: bool) -> Result<()> {
    if image_mib == 0 || change_pct > 100 {
        bail!(
            "expected --image-mib at least 1 and --change-pct at most 100, found {image_mib} and {change_pct}"
        );
    }
    let out = Say { json };
    let _guard = cleanup::guard()?;
    let bins = bins::locate()?;
    let started = Instant::now();
    let tmp = cleanup::tempdir("shoal-demo-")?;
    let dir = tmp.as_path();
    say!(
        out,
        "shoal demo in {} (removed at the end)\n",
        dir.display()
    );

    say!(
        out,
        "1. Offline keys: two root keys, two release keys, and the seeder's online key."
    );
    for k in ["root1", "root2", "release1", "release2", "online"] {
        step(out, &bins, dir, &["keygen", "--out", &format!("{k}.key")])?;
    }
    say!(
        out,
        "\n2. The root of trust: root 2-of-2, release 2-of-2, online 1-of-1."
    );
    step(
        out,
        &bins,
        dir,
        &[
            "root",
            "create",
            "--root-key",
            "root1.key",
            "--root-key",
            "root2.key",
            "--root-threshold",
            "2",
            "--release-pub",
            "release1.key.pub",
            "--release-pub",
            "release2.key.pub",
            "--release-threshold",
            "2",
            "--online-pub",
            "online.key.pub",
            "--out",
            "root.shoal",
        ],
    )?;

    say!(
        out,
        "\n3. Release 1.0: a {image_mib} MiB image, cut into content-defined chunks and signed by both release keys."
    );
    let mut data = image::image(image_mib * MIB, 42);
    std::fs::write(dir.join("pump.img"), &data)?;
    release(out, &bins, dir, "1.0", 1, "v1.shoal")?;
    step(
        out,
        &bins,
        dir,
        &[
            "release",
            "verify",
            "--root",
            "root.shoal",
            "v1.shoal",
            "--device-type",
            "pump",
        ],
    )?;

    say!(
        out,
        "\n4. A device refuses what the release keys did not sign: one byte changed in a copy."
    );
    let mut tampered = std::fs::read(dir.join("v1.shoal"))?;
    tampered[16] ^= 0x20;
    std::fs::write(dir.join("tampered.shoal"), tampered)?;
    say!(
        out,
        "$ shoal-seeder release verify --root root.shoal tampered.shoal"
    );
    match tool(
        &bins,
        dir,
        &[
            "release",
            "verify",
            "--root",
            "root.shoal",
            "tampered.shoal",
        ],
    ) {
        Ok(_) => bail!("a tampered release verified: this is a bug"),
        Err(e) => {
            let msg = format!("{e:#}");
            let why = msg.rsplit("): ").next().unwrap_or(&msg);
            let why = why.strip_prefix("shoal-seeder: ").unwrap_or(why);
            say!(
                out,
                "refused: {}",
                why.replace(&format!("{}/", dir.display()), "")
            );
        }
    }

    say!(
        out,
        "\n5. A seeder and {NODES} devices on this machine's loopback; each device listens for LAN peers and knows the others."
    );
    say!(
        out,
        "$ shoal-seeder serve --data seeder-data --root root.shoal --online-key online.key --listen 127.0.0.1:0 --http 127.0.0.1:0"
    );
    let seeder = Seeder::start(&bins, Place::Host, dir, "127.0.0.1:0", "127.0.0.1:0")?;
    let ports = free_udp_ports(NODES)?;
    let specs: Vec<NodeSpec> = (0..NODES)
        .map(|i| NodeSpec {
            name: format!("d{}", i + 1),
            place: Place::Host,
            data: dir.join(format!("d{}", i + 1)),
            seeder_addr: seeder.device_addr.clone(),
            listen: ports[i],
            peers: ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .collect(),
            lan: true,
        })
        .collect();
    say!(
        out,
        "$ shoal-node init --data d1 --seeder {} --seeder-cert seeder-data/tls/cert.pem --root root.shoal --device-type pump --site site --target d1/installed",
        seeder.device_addr
    );
    say!(
        out,
        "$ shoal-seeder devices preauthorize --pub d1/node.pub --group site"
    );
    let peers: Vec<String> = specs[0]
        .peers
        .iter()
        .map(|p| format!("--peer {p}"))
        .collect();
    say!(
        out,
        "$ shoal-node run --data d1 --listen {} {}",
        specs[0].listen,
        peers.join(" ")
    );
    say!(out, "  (and the same for d2 to d{NODES})");
    let mut procs = Vec::new();
    for s in &specs {
        node::init(&bins, s, &seeder, &dir.join("root.shoal"))?;
        procs.push(node::start(&bins, s)?);
    }

    say!(
        out,
        "\n6. Publish release 1.0 and deploy it to the devices."
    );
    say!(out, "$ shoal-seeder publish v1.shoal pump.img");
    seeder.publish("v1.shoal", &["pump.img"])?;
    let v1 = manifest::load(&dir.join("v1.shoal"))?;
    let (_, unique1) = manifest::needed_bytes(&v1, None);
    let mut fleet = Fleet {
        out,
        bins: &bins,
        seeder: &seeder,
        specs: &specs,
        procs: &mut procs,
        served: 0,
    };
    let first = fleet.deploy(&v1, unique1)?;
    say!(
        out,
        "The seeder served {} for {} of distinct chunks: WAN amplification {:.2} (1.00 = each chunk crossed the WAN once for the whole site; {NODES}.00 = every device fetched everything).",
        mib(first.wan_bytes),
        mib(unique1),
        first.wan_amplification
    );

    say!(
        out,
        "\n7. Release 1.1: {change_pct}% of the image changed, in eight places spread over it."
    );
    let changed = image::change_scattered(&mut data, change_pct, 8);
    std::fs::write(dir.join("pump.img"), &data)?;
    drop(data);
    release(out, &bins, dir, "1.1", 2, "v2.shoal")?;
    say!(out, "$ shoal-seeder publish v2.shoal pump.img");
    seeder.publish("v2.shoal", &["pump.img"])?;
    let v2 = manifest::load(&dir.join("v2.shoal"))?;
    let (new_chunks, needed) = manifest::needed_bytes(&v2, Some(&v1));
    let second = fleet.deploy(&v2, needed)?;
    say!(
        out,
        "\nSummary: a device on 1.0 needs {new_chunks} of {} chunks for 1.1: {} of {} ({:.1}%), for {} changed ({:.2} x the changed bytes); the rest is copied from the installed image.",
        v2.chunk_count(),
        mib(needed),
        mib(v2.total_size()),
        100.0 * needed as f64 / v2.total_size() as f64,
        mib(changed),
        ratio(needed, changed)
    );
    let second = Update {
        change_pct,
        changed_bytes: changed,
        wan_bytes_over_changed: ratio(second.wan_bytes, changed),
        round: second,
    };
    say!(
        out,
        "The seeder served {} for the update: {:.2} x the changed bytes, WAN amplification {:.2}.",
        mib(second.round.wan_bytes),
        second.wan_bytes_over_changed,
        second.round.wan_amplification
    );
    let took = started.elapsed().as_secs_f64();
    say!(
        out,
        "Took {took:.1} s. Stopping the seeder and the devices, removing {}.",
        dir.display()
    );
    if json {
        let summary = Summary {
            devices: NODES,
            image_mib,
            first,
            second,
            took_s: (took * 1e3).round() / 1e3,
        };
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    std::io::stdout().flush()?;
    drop(procs);
    drop(seeder);
    Ok(())
}

/// `release create` of `pump.img` and both release officers' signatures.
fn release(
    out: Say,
    bins: &Bins,
    dir: &Path,
    version: &str,
    counter: u64,
    rel: &str,
) -> Result<()> {
    let c = counter.to_string();
    step(
        out,
        bins,
        dir,
        &[
            "release",
            "create",
            "--name",
            "pump-firmware",
            "--version",
            version,
            "--counter",
            &c,
            "--device-type",
            "pump",
            "--out",
            rel,
            "pump.img",
        ],
    )?;
    for k in ["release1.key", "release2.key"] {
        step(out, bins, dir, &["release", "sign", "--key", k, rel])?;
    }
    Ok(())
}

/// The running seeder and nodes.
struct Fleet<'a> {
    out: Say,
    bins: &'a Bins,
    seeder: &'a Seeder,
    specs: &'a [NodeSpec],
    procs: &'a mut [Proc],
    /// Chunk bytes the seeder had served before this deploy.
    served: u64,
}

impl Fleet<'_> {
    /// Deploys `release` (of which a node needs `unique_bytes`), shows progress until
    /// every node installed it, checks each node's installed file against the
    /// manifest, prints the per-node table; returns the figures.
    fn deploy(&mut self, release: &Release, unique_bytes: u64) -> Result<Round> {
        let out = self.out;
        let (version, counter) = (release.version.as_str(), release.counter);
        say!(
            out,
            "$ shoal-seeder deploy --release pump-firmware@{version} --group site"
        );
        let t0 = Instant::now();
        self.seeder.deploy(version)?;
        let mut watched = Watched::all(self.procs, self.specs);
        // generous: a loopback moves the default image in a few seconds
        let timeout = Duration::from_secs(120 + 2 * release.total_size() / MIB);
        let times = until_installed(
            &mut watched,
            counter,
            t0,
            timeout,
            std::io::stderr().is_terminal(),
        )?;
        let served_now = self.seeder.chunk_bytes_served()?;
        let wan_bytes = served_now - self.served;
        self.served = served_now;
        say!(
            out,
            "\n{:<5} {:>12} {:>12} {:>12} {:>12}  verified",
            "node",
            "installed in",
            "WAN",
            "LAN",
            "local"
        );
        let mut nodes = Vec::with_capacity(self.specs.len());
        for (s, t) in self.specs.iter().zip(&times) {
            let st = node::status(self.bins, &s.data)?;
            let wrong = manifest::check_installed(release, &s.target());
            if !wrong.is_empty() {
                bail!(
                    "{} did not install release {version} exactly: {}",
                    s.name,
                    wrong.join("; ")
                );
            }
            say!(
                out,
                "{:<5} {:>10.1} s {:>12} {:>12} {:>12}  BLAKE3 = release",
                s.name,
                t.as_secs_f64(),
                mib(st.bytes_wan),
                mib(st.bytes_lan),
                mib(st.bytes_local)
            );
            nodes.push(NodeLine {
                name: s.name.clone(),
                installed_s: round3(t.as_secs_f64()),
                bytes_wan: st.bytes_wan,
                bytes_lan: st.bytes_lan,
                bytes_local: st.bytes_local,
            });
        }
        let last = times.iter().max().copied().unwrap_or_default();
        say!(
            out,
            "All {} devices run {version}, {:.1} s after the deploy.",
            self.specs.len(),
            last.as_secs_f64()
        );
        Ok(Round {
            version: version.to_string(),
            wan_bytes,
            unique_bytes,
            wan_amplification: ratio(wan_bytes, unique_bytes),
            lan_bytes: nodes.iter().map(|n| n.bytes_lan).sum(),
            local_bytes: nodes.iter().map(|n| n.bytes_local).sum(),
            completion_s: round3(last.as_secs_f64()),
            nodes,
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// `n` UDP ports on 127.0.0.1 that were free a moment ago (bound to port 0, then
/// released), for the nodes' LAN listeners.
fn free_udp_ports(n: usize) -> Result<Vec<SocketAddr>> {
    let sockets = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot find free UDP ports on 127.0.0.1")?;
    sockets
        .iter()
        .map(|s| s.local_addr().context("a bound socket's address"))
        .collect()
}
