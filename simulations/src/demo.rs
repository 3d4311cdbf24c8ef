//! `shoal-sim demo`: what shoal does today, end to end, on built-in defaults.
//!
//! In a temporary directory it runs the offline release tooling as an operator would:
//! keys, a 2-of-2 root, a signed release of an image, verification (and a tampered copy
//! refused), then a second release with a share of the image changed at scattered
//! places, to show how few chunks an update needs. The seeder service and the nodes
//! join the demo as they are built (seeder, node and simulations issues).

use anyhow::{Context, Result, bail};
use clap::Parser;
use shoal_core::Release;
use shoal_seeder::cli::{Cli, run as seeder};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

const MIB: u64 = 1024 * 1024;

/// Runs one shoal-seeder command in `dir`, echoing it first.
fn step(dir: &Path, args: &[&str]) -> Result<()> {
    println!("$ shoal-seeder {}", args.join(" "));
    let mut argv = vec!["shoal-seeder".to_string()];
    argv.extend(args.iter().map(|a| {
        if a.ends_with(".key")
            || a.ends_with(".pub")
            || a.ends_with(".shoal")
            || a.ends_with(".img")
        {
            dir.join(a).display().to_string()
        } else {
            a.to_string()
        }
    }));
    let cli = Cli::try_parse_from(&argv).context("demo command line")?;
    seeder(cli)
}

/// Deterministic pseudo-random bytes (xorshift), so every run shows the same figures.
fn image(bytes: u64, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(bytes as usize);
    while (out.len() as u64) < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(bytes as usize);
    out
}

/// Changes `pct` percent of `data` in eight runs spread evenly over it (a patch that
/// touches a few modules of a firmware image).
fn change_scattered(data: &mut [u8], pct: u64) -> u64 {
    let runs = 8;
    let run = (data.len() as u64 * pct / 100 / runs as u64).max(1) as usize;
    let stride = data.len() / runs;
    let mut changed = 0;
    for i in 0..runs {
        let at = i * stride + stride / 2;
        let end = (at + run).min(data.len());
        for b in &mut data[at..end] {
            *b = b.wrapping_add(1);
        }
        changed += (end - at) as u64;
    }
    changed
}

fn load(path: &Path) -> Result<Release> {
    let bytes = std::fs::read(path)?;
    Ok(shoal_core::release::decode_release(&bytes)?.decode_unverified()?)
}

pub fn run(image_mib: u64, change_pct: u64) -> Result<()> {
    if image_mib == 0 || change_pct > 100 {
        bail!("--image-mib must be at least 1 and --change-pct at most 100");
    }
    let started = Instant::now();
    let tmp = tempfile::Builder::new().prefix("shoal-demo-").tempdir()?;
    let dir = tmp.path();
    println!("shoal demo in {} (removed at the end)\n", dir.display());

    println!("1. Offline keys: two root keys, two release keys, and the seeder's online key.");
    for k in ["root1", "root2", "release1", "release2", "online"] {
        step(dir, &["keygen", "--out", &format!("{k}.key")])?;
    }
    println!("\n2. The root of trust: root 2-of-2, release 2-of-2, online 1-of-1.");
    step(
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
    let mut data = image(image_mib * MIB, 42);
    std::fs::write(dir.join("pump-v1.img"), &data)?;
    step(
        dir,
        &[
            "release",
            "create",
            "--name",
            "pump-firmware",
            "--version",
            "1.0",
            "--counter",
            "1",
            "--device-type",
            "pump",
            "--out",
            "v1.shoal",
            "pump-v1.img",
        ],
    )?;
    step(
        dir,
        &["release", "sign", "--key", "release1.key", "v1.shoal"],
    )?;
    step(
        dir,
        &["release", "sign", "--key", "release2.key", "v1.shoal"],
    )?;
    step(
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
    match step_quiet(
        dir,
        &[
            "release",
            "verify",
            "--root",
            "root.shoal",
            "tampered.shoal",
        ],
    ) {
        Ok(()) => bail!("a tampered release verified: this is a bug"),
        Err(e) => println!(
            "refused: {}",
            format!("{e:#}").replace(&format!("{}/", dir.display()), "")
        ),
    }

    println!(
        "\n5. Release 1.1: {change_pct}% of the image changed, in eight places spread over it."
    );
    let changed = change_scattered(&mut data, change_pct);
    std::fs::write(dir.join("pump-v2.img"), &data)?;
    drop(data);
    step(
        dir,
        &[
            "release",
            "create",
            "--name",
            "pump-firmware",
            "--version",
            "1.1",
            "--counter",
            "2",
            "--device-type",
            "pump",
            "--out",
            "v2.shoal",
            "pump-v2.img",
        ],
    )?;
    let v1 = load(&dir.join("v1.shoal"))?;
    let v2 = load(&dir.join("v2.shoal"))?;
    let have: BTreeSet<_> = v1
        .files
        .iter()
        .flat_map(|f| &f.chunks)
        .map(|c| c.hash)
        .collect();
    let mut seen = BTreeSet::new();
    let (mut new_chunks, mut new_bytes) = (0u64, 0u64);
    for c in v2.files.iter().flat_map(|f| &f.chunks) {
        if !have.contains(&c.hash) && seen.insert(c.hash) {
            new_chunks += 1;
            new_bytes += u64::from(c.len);
        }
    }
    println!(
        "\nSummary: a device on 1.0 needs {new_chunks} of {} chunks for 1.1: {:.1} MiB of {:.1} MiB ({:.1}%), for {:.1} MiB changed ({:.2} x the changed bytes).",
        v2.chunk_count(),
        new_bytes as f64 / MIB as f64,
        v2.total_size() as f64 / MIB as f64,
        100.0 * new_bytes as f64 / v2.total_size() as f64,
        changed as f64 / MIB as f64,
        new_bytes as f64 / changed as f64
    );
    println!(
        "The seeder service and the LAN swarm of nodes join this demo as they are built. Took {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    std::io::stdout().flush()?;
    Ok(())
}

/// Like [`step`], without echoing.
fn step_quiet(dir: &Path, args: &[&str]) -> Result<()> {
    let mut argv = vec!["shoal-seeder".to_string()];
    argv.extend(args.iter().map(|a| {
        if a.ends_with(".shoal") {
            dir.join(a).display().to_string()
        } else {
            a.to_string()
        }
    }));
    seeder(Cli::try_parse_from(&argv)?)
}
