//! `shoal-seeder release create`: cut the files into chunks and write an unsigned
//! release manifest. Signing is a separate, offline step (`release sign`).

use super::build::{collect_inputs, file_entry};
use crate::files::{PUBLIC_MODE, write_atomic};
use anyhow::{Context, Result, bail};
use shoal_core::{ChunkingProfile, Install, Release, Signed};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InstallKind {
    /// Atomically replace files below the device's target directory.
    File,
    /// Write the inactive slot with the release's one image; switch; health check.
    AbSlot,
    /// Hand the files to the device's configured update command.
    Command,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// The product name, e.g. pump-firmware.
    #[arg(long)]
    pub name: String,
    /// The version text, e.g. 2.4.1.
    #[arg(long)]
    pub version: String,
    /// The anti-rollback counter: strictly increasing per product.
    #[arg(long)]
    pub counter: u64,
    /// A device type that may install this release (repeat for more).
    #[arg(long = "device-type", required = true, value_name = "T")]
    pub device_types: Vec<String>,
    /// How devices install it.
    #[arg(long, value_enum, default_value = "file")]
    pub install: InstallKind,
    /// An argument for the device's update command (with --install command; repeat).
    #[arg(long = "install-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub install_args: Vec<String>,
    /// Chunking profile as MIN/AVG/MAX bytes (FastCDC v2020).
    #[arg(long, value_name = "MIN/AVG/MAX", value_parser = parse_profile, default_value = "16384/65536/262144")]
    pub chunking: ChunkingProfile,
    /// Where to write the release manifest.
    #[arg(long)]
    pub out: PathBuf,
    /// The files (a directory adds every file below it).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

fn parse_profile(s: &str) -> Result<ChunkingProfile, String> {
    let parts: Vec<&str> = s.split('/').collect();
    let [min, avg, max] = parts.as_slice() else {
        return Err("expected MIN/AVG/MAX in bytes, e.g. 16384/65536/262144".into());
    };
    let n = |t: &str| t.parse::<u32>().map_err(|e| format!("'{t}': {e}"));
    let p = ChunkingProfile {
        min: n(min)?,
        avg: n(avg)?,
        max: n(max)?,
    };
    p.check()?;
    Ok(p)
}

pub fn build_release(args: &CreateArgs, now: u64) -> Result<Release> {
    let install = match args.install {
        InstallKind::File => Install::File,
        InstallKind::AbSlot => Install::AbSlot,
        InstallKind::Command => Install::Command {
            args: args.install_args.clone(),
        },
    };
    if args.install != InstallKind::Command && !args.install_args.is_empty() {
        bail!("--install-arg goes with --install command");
    }
    let inputs = collect_inputs(&args.files)?;
    let files = inputs
        .iter()
        .map(|i| file_entry(i, args.chunking))
        .collect::<Result<Vec<_>>>()?;
    let release = Release {
        name: args.name.clone(),
        version: args.version.clone(),
        counter: args.counter,
        device_types: args.device_types.clone(),
        created_at: now,
        chunking: args.chunking,
        install,
        files,
    };
    // The same structural rules devices apply, so a release that no device would accept
    // is never written.
    release.check_structure()?;
    Ok(release)
}

pub fn run(args: &CreateArgs, now: u64) -> Result<()> {
    let release = build_release(args, now).context("nothing was written")?;
    let signed = Signed::new(&release).context("nothing was written")?;
    write_atomic(&args.out, &signed.to_bytes()?, PUBLIC_MODE, true)
        .context("nothing was written")?;
    let (unique, unique_bytes) = release.unique_chunks();
    println!(
        "wrote {}: {} {} counter {}, {} file(s), {} bytes, {} chunks ({} unique, {} bytes), id {}; unsigned: sign with `shoal-seeder release sign --key K {}`",
        args.out.display(),
        release.name,
        release.version,
        release.counter,
        release.files.len(),
        release.total_size(),
        release.chunk_count(),
        unique,
        unique_bytes,
        signed.body_hash(),
        args.out.display()
    );
    Ok(())
}
