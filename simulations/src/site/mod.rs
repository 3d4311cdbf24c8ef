//! `shoal-sim site`: one site on this machine, from network namespaces, with real
//! processes (needs root).
//!
//! A cloud namespace runs `shoal-seeder serve`; a WAN veth shaped to `--wan-mbit`
//! (`shape`) joins it to a router namespace holding the site's bridge; N device
//! namespaces each run `shoal-node run`, listening for LAN peers on a fixed UDP port
//! and given every other device as `--peer` (besides mDNS), or with `--discovery mdns`
//! no `--peer` at all, so that the devices find each other by mDNS on the site's
//! bridge alone. It publishes an
//! `--image-mib` release, deploys it, and measures from interface counters
//! (`counters`) the WAN bytes against the unique bytes needed and the time to the last
//! install against the WAN's lower bound; it checks every device's installed image
//! against the manifest. `--change-pct` then rolls out a second release with that share
//! changed at scattered places. `--baseline direct` runs the same with `--no-lan`.
//! The figures are in `report`. Namespaces are named after the run's pid and always
//! removed (`cleanup`).

mod counters;
mod netns;
mod report;
mod round;
mod shape;

use crate::node::{self, NodeSpec};
use crate::proc::Place;
use crate::seeder::{Seeder, make_keys_and_root, make_release};
use crate::{bins, cleanup, image, manifest};
use anyhow::{Context, Result, bail};
use netns::{SEEDER_IP, Topology, device_ip};
use report::{SecondReport, SiteReport};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

/// The LAN swarm's UDP port on every device.
const LAN_PORT: u16 = 7410;
const SEEDER_PORT: u16 = 7400;
const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// LAN sharing off (`shoal-node run --no-lan`): every device fetches from the
    /// seeder, the classic OTA server model.
    Direct,
}

/// How the devices learn of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Discovery {
    /// Every other device as `--peer`, and mDNS.
    #[default]
    Static,
    /// mDNS alone (multicast on the site's bridge).
    Mdns,
}

impl Discovery {
    pub fn name(self) -> &'static str {
        match self {
            Discovery::Static => "static",
            Discovery::Mdns => "mdns",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct SiteArgs {
    /// Devices on the site.
    #[arg(long, default_value_t = 10)]
    pub devices: usize,
    /// The WAN link's rate, Mbit/s (10^6 bit/s), each direction.
    #[arg(long, default_value_t = 20)]
    pub wan_mbit: u64,
    /// Size of the release's image in MiB.
    #[arg(long, default_value_t = 64)]
    pub image_mib: u64,
    /// Then roll out a second release with this percent of the image changed.
    #[arg(long, value_name = "P")]
    pub change_pct: Option<u64>,
    /// Compare with a baseline: `direct` turns LAN sharing off.
    #[arg(long, value_enum)]
    pub baseline: Option<Baseline>,
    /// How devices find each other: `static` (each given the others as `--peer`, and
    /// mDNS) or `mdns` (mDNS alone).
    #[arg(long, value_enum, default_value_t = Discovery::Static)]
    pub discovery: Discovery,
    /// Print one JSON object on stdout (progress, if any, on stderr).
    #[arg(long)]
    pub json: bool,
    /// The image's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Give up on a rollout after this many seconds (default: 3 x the time for every
    /// device to fetch the whole image over the WAN alone, plus 2 minutes).
    #[arg(long, value_name = "S")]
    pub timeout_s: Option<u64>,
}

pub fn run(args: &SiteArgs) -> Result<()> {
    check_args(args)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "site needs root (it creates network namespaces); run it with sudo, or try `shoal-sim demo`, which needs none"
        );
    }
    netns::run("ip", &["-V"])
        .context("shoal-sim site needs iproute2 (apt-get install -y iproute2)")?;
    netns::run("tc", &["-V"])
        .context("shoal-sim site needs tc, from iproute2 (apt-get install -y iproute2)")?;
    let guard = cleanup::guard()?;
    let result = simulate(args);
    drop(guard);
    // The guard removed them; say so if anything of ours is still listed.
    let left = netns::existing(&netns::prefix())?;
    if !left.is_empty() {
        bail!("namespaces left behind after cleanup: {}", left.join(" "));
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    let mut bad: Vec<String> = Vec::new();
    for r in std::iter::once(&report.first).chain(report.second.as_ref().map(|s| &s.round)) {
        bad.extend(
            r.nodes
                .iter()
                .filter(|n| !n.verified)
                .map(|n| format!("{} (release {})", n.name, r.version)),
        );
    }
    if !bad.is_empty() {
        bail!(
            "expected every device to hold the release's exact image, found {} that do not: {}",
            bad.len(),
            bad.join(", ")
        );
    }
    Ok(())
}

fn check_args(args: &SiteArgs) -> Result<()> {
    if args.devices == 0 || args.devices > netns::MAX_DEVICES {
        bail!(
            "expected --devices from 1 to {}, found {}",
            netns::MAX_DEVICES,
            args.devices
        );
    }
    if args.wan_mbit == 0 || args.image_mib == 0 {
        bail!("expected --wan-mbit and --image-mib of at least 1");
    }
    if let Some(p) = args.change_pct
        && !(1..=100).contains(&p)
    {
        bail!("expected --change-pct from 1 to 100, found {p}");
    }
    Ok(())
}

fn say(args: &SiteArgs, line: &str) {
    // with --json, stdout is the JSON object only, and stderr stays quiet for scripts
    // (one line if it fails)
    if args.json {
        if std::io::stderr().is_terminal() {
            eprintln!("{line}");
        }
    } else {
        println!("{line}");
    }
}

fn simulate(args: &SiteArgs) -> Result<SiteReport> {
    let bins = bins::locate()?;
    let tmp = cleanup::tempdir("shoal-site-")?;
    let dir = tmp.as_path();

    let topology = Topology::named(args.devices);
    say(
        args,
        &format!(
            "building the site: namespaces {} (cloud), {} (router), {}..{} (devices); WAN {} Mbit/s",
            topology.cloud,
            topology.router,
            topology.devices[0],
            topology.devices[args.devices - 1],
            args.wan_mbit
        ),
    );
    topology.build()?;
    shape::limit_wan(&[&topology.cloud, &topology.router], args.wan_mbit)?;

    make_keys_and_root(&bins, dir)?;
    let listen = format!("{SEEDER_IP}:{SEEDER_PORT}");
    let seeder = Seeder::start(
        &bins,
        Place::Netns(topology.cloud.clone()),
        dir,
        &listen,
        "127.0.0.1:7480",
    )?;
    let lan = args.baseline.is_none();
    let addrs: Vec<SocketAddr> = (0..args.devices)
        .map(|i| SocketAddr::from((device_ip(i), LAN_PORT)))
        .collect();
    let specs: Vec<NodeSpec> = topology
        .devices
        .iter()
        .enumerate()
        .map(|(i, ns)| NodeSpec {
            name: format!("d{i}"),
            place: Place::Netns(ns.clone()),
            data: dir.join(format!("d{i}")),
            seeder_addr: listen.clone(),
            listen: addrs[i],
            peers: match args.discovery {
                Discovery::Static => addrs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, a)| *a)
                    .collect(),
                Discovery::Mdns => Vec::new(),
            },
            lan,
        })
        .collect();
    let mut procs = Vec::with_capacity(specs.len());
    for s in &specs {
        node::init(&bins, s, &seeder, &dir.join("root.shoal"))?;
        procs.push(node::start(&bins, s)?);
    }

    let mut data = image::image(args.image_mib * MIB, args.seed);
    std::fs::write(dir.join("image.bin"), &data)?;
    make_release(
        &bins,
        dir,
        "1",
        1,
        "v1.shoal",
        &["image.bin"],
        &["release.key"],
    )?;
    seeder.publish("v1.shoal", &["image.bin"])?;
    let v1 = manifest::load(&dir.join("v1.shoal"))?;
    let (_, unique1) = manifest::needed_bytes(&v1, None);
    let timeout = Duration::from_secs(args.timeout_s.unwrap_or_else(|| {
        let alone = (args.image_mib * MIB * 8) as f64 / (args.wan_mbit as f64 * 1e6);
        120 + (3.0 * alone * args.devices as f64) as u64
    }));
    let mut site = round::Site {
        bins: &bins,
        topology: &topology,
        seeder: &seeder,
        specs: &specs,
        procs: &mut procs,
        wan_mbit: args.wan_mbit,
        bars: std::io::stderr().is_terminal(),
    };
    say(
        args,
        &format!(
            "rolling out release 1 ({} MiB) to {} devices",
            args.image_mib, args.devices
        ),
    );
    let first = site.roll_out(&v1, unique1, timeout)?;

    let second = match args.change_pct {
        None => None,
        Some(pct) => {
            let changed = image::change_scattered(&mut data, pct, 8);
            std::fs::write(dir.join("image.bin"), &data)?;
            make_release(
                &bins,
                dir,
                "2",
                2,
                "v2.shoal",
                &["image.bin"],
                &["release.key"],
            )?;
            seeder.publish("v2.shoal", &["image.bin"])?;
            let v2 = manifest::load(&dir.join("v2.shoal"))?;
            let (_, needed) = manifest::needed_bytes(&v2, Some(&v1));
            say(
                args,
                &format!("rolling out release 2 ({pct}% changed, at 8 places)"),
            );
            let round = site.roll_out(&v2, needed, timeout)?;
            Some(SecondReport {
                change_pct: pct,
                changed_bytes: changed,
                wan_bytes_over_changed: report::ratio(round.wan_bytes as f64, changed as f64),
                round,
            })
        }
    };
    drop(procs);
    drop(seeder);
    Ok(SiteReport {
        devices: args.devices,
        wan_mbit: args.wan_mbit,
        image_mib: args.image_mib,
        baseline: if lan { "lan" } else { "direct" },
        discovery: args.discovery.name(),
        seed: args.seed,
        first,
        second,
    })
}
