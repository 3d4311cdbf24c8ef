//! A LAN peer that misbehaves on purpose, for the swarm's hostile-peer tests:
//! `shoal-hostile-peer --misbehave MODE <the flags of shoal-node run>`. It is an
//! admitted device that fetches like any other and serves its peers badly.

use clap::Parser;
use shoal_node::cli::RunArgs;
use shoal_node::config::DataDir;
use shoal_node::lan::Misbehave;

#[derive(Debug, Parser)]
struct Args {
    /// flip-byte, extra-bytes, endless, false-have-map
    #[arg(long)]
    misbehave: String,
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mode = match args.misbehave.as_str() {
        "flip-byte" => Misbehave::FlipByte,
        "extra-bytes" => Misbehave::ExtraBytes,
        "endless" => Misbehave::Endless,
        "false-have-map" => Misbehave::FalseHaveMap,
        other => {
            eprintln!("shoal-hostile-peer: unknown mode '{other}'");
            return std::process::ExitCode::from(2);
        }
    };
    let dir = DataDir(args.run.data.clone());
    let result = tokio::runtime::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(shoal_node::agent::run_with(
                dir,
                args.run.into_options(),
                Some(mode),
            ))
            .map_err(|e| e.to_string())
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal-hostile-peer: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
