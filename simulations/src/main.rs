//! shoal-sim: the demo and (with the simulations issue) the site and scale simulations.

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            image_mib,
            change_pct,
        } => shoal_sim::demo::run(image_mib, change_pct),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal-sim: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
