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

use crate::bins::{self, Bins};
use crate::node::{self, NodeSpec};
use crate::proc::{Place, Proc};
use crate::seeder::{Seeder, tool};
use crate::watch::{Watched, until_installed};
use crate::{cleanup, image, manifest};
use anyhow::{Context, Result, bail};
use shoal_core::Release;
use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;
const NODES: usize = 5;

/// Runs one offline shoal-seeder command in `dir`, echoing it first.
fn step(bins: &Bins, dir: &Path, args: &[&str]) -> Result<String> {
    println!("$ shoal-seeder {}", args.join(" "));
    tool(bins, dir, args)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

pub fn run(image_mib: u64, change_pct: u64) -> Result<()> {
    if image_mib == 0 || change_pct > 100 {
        bail!(
            "expected --image-mib at least 1 and --change-pct at most 100, found {image_mib} and {change_pct}"
        );
    }
    let _guard = cleanup::guard()?;
    let bins = bins::locate()?;
    let started = Instant::now();
    let tmp = cleanup::tempdir("shoal-demo-")?;
    let dir = tmp.as_path();
    println!("shoal demo in {} (removed at the end)\n", dir.display());

    println!("1. Offline keys: two root keys, two release keys, and the seeder's online key.");
    for k in ["root1", "root2", "release1", "release2", "online"] {
        step(&bins, dir, &["keygen", "--out", &format!("{k}.key")])?;
    }
    println!("\n2. The root of trust: root 2-of-2, release 2-of-2, online 1-of-1.");
    step(
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

    println!(
        "\n3. Release 1.0: a {image_mib} MiB image, cut into content-defined chunks and signed by both release keys."
    );
    let mut data = image::image(image_mib * MIB, 42);
    std::fs::write(dir.join("pump.img"), &data)?;
    release(&bins, dir, "1.0", 1, "v1.shoal")?;
    step(
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

    println!(
        "\n4. A device refuses what the release keys did not sign: one byte changed in a copy."
    );
    let mut tampered = std::fs::read(dir.join("v1.shoal"))?;
    tampered[16] ^= 0x20;
    std::fs::write(dir.join("tampered.shoal"), tampered)?;
    println!("$ shoal-seeder release verify --root root.shoal tampered.shoal");
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
            println!(
                "refused: {}",
                why.replace(&format!("{}/", dir.display()), "")
            );
        }
    }

    println!(
        "\n5. A seeder and {NODES} devices on this machine's loopback; each device listens for LAN peers and knows the others."
    );
    println!(
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
    println!(
        "$ shoal-node init --data d1 --seeder {} --seeder-cert seeder-data/tls/cert.pem --root root.shoal --device-type pump --site site --target d1/installed",
        seeder.device_addr
    );
    println!("$ shoal-seeder devices preauthorize --pub d1/node.pub --group site");
    let peers: Vec<String> = specs[0]
        .peers
        .iter()
        .map(|p| format!("--peer {p}"))
        .collect();
    println!(
        "$ shoal-node run --data d1 --listen {} {}",
        specs[0].listen,
        peers.join(" ")
    );
    println!("  (and the same for d2 to d{NODES})");
    let mut procs = Vec::new();
    for s in &specs {
        node::init(&bins, s, &seeder, &dir.join("root.shoal"))?;
        procs.push(node::start(&bins, s)?);
    }

    println!("\n6. Publish release 1.0 and deploy it to the devices.");
    println!("$ shoal-seeder publish v1.shoal pump.img");
    seeder.publish("v1.shoal", &["pump.img"])?;
    let v1 = manifest::load(&dir.join("v1.shoal"))?;
    let (_, unique1) = manifest::needed_bytes(&v1, None);
    let first = deploy(&bins, &seeder, &specs, &mut procs, &v1, image_mib, 0)?;
    println!(
        "The seeder served {} for {} of distinct chunks: WAN amplification {:.2} (1.00 = each chunk crossed the WAN once for the whole site; {NODES}.00 = every device fetched everything).",
        mib(first),
        mib(unique1),
        first as f64 / unique1 as f64
    );

    println!(
        "\n7. Release 1.1: {change_pct}% of the image changed, in eight places spread over it."
    );
    let changed = image::change_scattered(&mut data, change_pct, 8);
    std::fs::write(dir.join("pump.img"), &data)?;
    drop(data);
    release(&bins, dir, "1.1", 2, "v2.shoal")?;
    println!("$ shoal-seeder publish v2.shoal pump.img");
    seeder.publish("v2.shoal", &["pump.img"])?;
    let v2 = manifest::load(&dir.join("v2.shoal"))?;
    let (new_chunks, needed) = manifest::needed_bytes(&v2, Some(&v1));
    let second = deploy(&bins, &seeder, &specs, &mut procs, &v2, image_mib, first)?;
    println!(
        "\nSummary: a device on 1.0 needs {new_chunks} of {} chunks for 1.1: {} of {} ({:.1}%), for {} changed ({:.2} x the changed bytes); the rest is copied from the installed image.",
        v2.chunk_count(),
        mib(needed),
        mib(v2.total_size()),
        100.0 * needed as f64 / v2.total_size() as f64,
        mib(changed),
        needed as f64 / changed.max(1) as f64
    );
    println!(
        "The seeder served {} for the update: {:.2} x the changed bytes, WAN amplification {:.2}.",
        mib(second),
        second as f64 / changed.max(1) as f64,
        second as f64 / needed.max(1) as f64
    );
    println!(
        "Took {:.1} s. Stopping the seeder and the devices, removing {}.",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    std::io::stdout().flush()?;
    drop(procs);
    drop(seeder);
    Ok(())
}

/// `release create` of `pump.img` and both release officers' signatures.
fn release(bins: &Bins, dir: &Path, version: &str, counter: u64, rel: &str) -> Result<()> {
    let c = counter.to_string();
    step(
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
        step(bins, dir, &["release", "sign", "--key", k, rel])?;
    }
    Ok(())
}

/// Deploys `release`, shows progress until every node installed it, checks each
/// node's installed file against the manifest, prints the per-node table; returns the
/// chunk bytes the seeder served for it.
fn deploy(
    bins: &Bins,
    seeder: &Seeder,
    specs: &[NodeSpec],
    procs: &mut [Proc],
    release: &Release,
    image_mib: u64,
    served_before: u64,
) -> Result<u64> {
    let (version, counter) = (release.version.as_str(), release.counter);
    println!("$ shoal-seeder deploy --release pump-firmware@{version} --group site");
    let t0 = Instant::now();
    seeder.deploy(version)?;
    let mut watched: Vec<Watched> = procs
        .iter_mut()
        .zip(specs)
        .map(|(proc, s)| Watched {
            proc,
            data: s.data.clone(),
        })
        .collect();
    // generous: a loopback moves the default image in a few seconds
    let timeout = Duration::from_secs(120 + image_mib * 2);
    let times = until_installed(
        &mut watched,
        counter,
        t0,
        timeout,
        std::io::stderr().is_terminal(),
    )?;
    let served = seeder.chunk_bytes_served()? - served_before;
    println!(
        "\n{:<5} {:>12} {:>12} {:>12} {:>12}  verified",
        "node", "installed in", "WAN", "LAN", "local"
    );
    for (s, t) in specs.iter().zip(&times) {
        let st = node::status(bins, &s.data)?;
        let wrong = manifest::check_installed(release, &s.target());
        if !wrong.is_empty() {
            bail!(
                "{} did not install release {version} exactly: {}",
                s.name,
                wrong.join("; ")
            );
        }
        println!(
            "{:<5} {:>10.1} s {:>12} {:>12} {:>12}  BLAKE3 = release",
            s.name,
            t.as_secs_f64(),
            mib(st.bytes_wan),
            mib(st.bytes_lan),
            mib(st.bytes_local)
        );
    }
    let last = times.iter().max().copied().unwrap_or_default();
    println!(
        "All {} devices run {version}, {:.1} s after the deploy.",
        specs.len(),
        last.as_secs_f64()
    );
    Ok(served)
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
