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
    },
    /// A site from network namespaces (needs root): a seeder behind a shaped WAN, N
    /// devices on a bridge; prints WAN amplification, completion time, bytes by source.
    Site(shoal_sim::site::SiteArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            image_mib,
            change_pct,
        } => shoal_sim::demo::run(image_mib, change_pct),
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
