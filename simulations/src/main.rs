//! shoal-sim: the demo and the site and scale simulations.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "shoal-sim", version, about = "shoal's demo and simulations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the demo on built-in defaults in a temporary directory (no root, no setup).
    Demo {
        /// Size of the demo image in MiB.
        #[arg(long, default_value_t = 64)]
        image_mib: u64,
        /// Percent of the image changed for the second release.
        #[arg(long, default_value_t = 10)]
        change_pct: u64,
        /// Print one JSON summary on stdout; the walkthrough goes to stderr.
        #[arg(long)]
        json: bool,
    },
    /// The real scheduler for every node of many sites on a flow-level network model.
    Scale(ScaleArgs),
    /// A site from network namespaces (needs root): a seeder behind a shaped WAN, N
    /// devices on a bridge; prints WAN amplification, completion time, bytes by source.
    Site(shoal_sim::site::SiteArgs),
}

#[derive(Debug, clap::Args)]
struct ScaleArgs {
    #[arg(long, default_value_t = 1)]
    sites: u32,
    #[arg(long, default_value_t = 10)]
    devices_per_site: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the JSON summary (otherwise a few lines of text).
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 64)]
    image_mib: u64,
    /// Each site's WAN link.
    #[arg(long, default_value_t = 100.0)]
    wan_mbit: f64,
    /// Each node's LAN uplink and downlink.
    #[arg(long, default_value_t = 1000.0)]
    lan_mbit: f64,
    /// Share of nodes that die at a random time.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Share of nodes that serve bad chunks.
    #[arg(long, default_value_t = 0.0)]
    hostile: f64,
    /// The scheduler's WAN requests in flight per node.
    #[arg(long, default_value_t = 2)]
    wan_in_flight: usize,
    /// The scheduler's LAN requests in flight per node.
    #[arg(long, default_value_t = 16)]
    lan_in_flight: usize,
    /// Model time step while anything flows.
    #[arg(long, default_value_t = 1000)]
    tick_us: u64,
    /// Delay from a LAN request to its first byte.
    #[arg(long, default_value_t = 500)]
    lan_latency_us: u64,
    /// Delay from a WAN request to its first byte.
    #[arg(long, default_value_t = 20)]
    wan_rtt_ms: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            image_mib,
            change_pct,
            json,
        } => shoal_sim::demo::run(image_mib, change_pct, json),
        Command::Scale(a) => scale(a),
        Command::Site(args) => shoal_sim::site::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal-sim: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn scale(a: ScaleArgs) -> anyhow::Result<()> {
    use shoal_sim::scale;
    let p = scale::Params {
        sites: a.sites,
        devices_per_site: a.devices_per_site,
        seed: a.seed,
        image_mib: a.image_mib,
        wan_mbit: a.wan_mbit,
        lan_mbit: a.lan_mbit,
        churn: a.churn,
        hostile: a.hostile,
        wan_in_flight: a.wan_in_flight,
        lan_in_flight: a.lan_in_flight,
        tick_us: a.tick_us,
        lan_latency_us: a.lan_latency_us,
        wan_rtt_us: a.wan_rtt_ms.saturating_mul(1000),
    };
    let report = scale::run(&p)?;
    if a.json {
        print!("{}", report.to_json());
    } else {
        println!(
            "{} devices on {} sites: WAN amplification {:.3}, completion {} s (lower bound {:.2} s), all verified: {}",
            report.devices,
            report.sites,
            report.wan_amplification,
            report
                .completion_s
                .map_or("-".into(), |c| format!("{c:.2}")),
            report.lower_bound_s,
            report.all_verified
        );
    }
    Ok(())
}
