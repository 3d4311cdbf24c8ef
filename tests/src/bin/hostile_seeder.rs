//! A seeder that misbehaves on purpose, for the node's hostile-seeder tests:
//! `shoal-hostile-seeder --misbehave MODE <the flags of shoal-seeder serve>`.

use clap::Parser;
use shoal_seeder::device_api::Misbehave;
use shoal_seeder::service::{ServeArgs, run_with};

#[derive(Debug, Parser)]
struct Args {
    /// flip-byte, long-chunk, endless-chunk, old-head, expired-head, online-signed-release,
    /// max-seq-head
    #[arg(long)]
    misbehave: String,
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mode = match args.misbehave.as_str() {
        "flip-byte" => Misbehave::FlipByte,
        "long-chunk" => Misbehave::LongChunk,
        "endless-chunk" => Misbehave::EndlessChunk,
        "old-head" => Misbehave::OldHead,
        "expired-head" => Misbehave::ExpiredHead,
        "online-signed-release" => Misbehave::OnlineSignedRelease,
        "max-seq-head" => Misbehave::MaxSeqHead,
        other => {
            eprintln!("shoal-hostile-seeder: unknown mode '{other}'");
            return std::process::ExitCode::from(2);
        }
    };
    match run_with(args.serve, Some(mode)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal-hostile-seeder: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
