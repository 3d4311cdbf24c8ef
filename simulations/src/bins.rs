//! Where the real `shoal-seeder` and `shoal-node` binaries are: next to the
//! `shoal-sim` executable (the same `target/<profile>` folder). Run through cargo
//! (`cargo run -p shoal-sim`, `cargo test`), shoal-sim first builds the workspace's
//! binaries with cargo (a no-op when they are current; the same command as the
//! end-to-end tests' helper, so both share one build), so a fresh clone's first command
//! works and a run never uses a stale agent.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Bins {
    pub seeder: PathBuf,
    pub node: PathBuf,
}

pub fn locate() -> Result<Bins> {
    let exe = std::env::current_exe().context("cannot tell where shoal-sim runs from")?;
    let dir = exe
        .parent()
        .context("shoal-sim's path has no folder")?
        .to_path_buf();
    let bins = Bins {
        seeder: dir.join("shoal-seeder"),
        node: dir.join("shoal-node"),
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // `cargo run` and `cargo test` set CARGO for the programs they start.
    let cargo = std::env::var_os("CARGO");
    let present = bins.seeder.is_file() && bins.node.is_file();
    if let Some(cargo) = cargo.filter(|_| workspace.join("Cargo.toml").is_file()) {
        build(&cargo, &workspace, &dir, present)?;
    } else if !present {
        bail!(
            "expected shoal-seeder and shoal-node next to {}, found {}: run `cargo build --release --workspace` first",
            exe.display(),
            if bins.seeder.is_file() {
                "only shoal-seeder"
            } else if bins.node.is_file() {
                "only shoal-node"
            } else {
                "neither"
            }
        );
    }
    Ok(bins)
}

/// Whether cargo sets `name` for a program it runs (rather than for a build).
fn set_for_a_run(name: &str) -> bool {
    [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
    ]
    .iter()
    .any(|p| name.starts_with(p))
        || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&name)
}

/// `cargo build --workspace --bins` in the profile shoal-sim was built in.
fn build(cargo: &std::ffi::OsStr, workspace: &Path, dir: &Path, present: bool) -> Result<()> {
    let release = dir.file_name().is_some_and(|n| n == "release");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--quiet", "--workspace", "--bins"]);
    // What `cargo run` and `cargo test` set for the program they start is no build
    // setting, but build scripts that read it (ring's reads CARGO_MANIFEST_DIR) count
    // it as one: passed on, this build and the outer one rebuilt each other's
    // dependencies (minutes, each time). The tests' `bin()` helper does the same.
    for (k, _) in std::env::vars_os() {
        if set_for_a_run(&k.to_string_lossy()) {
            cmd.env_remove(k);
        }
    }
    if release {
        cmd.arg("--release");
    }
    if !present {
        eprintln!(
            "shoal-sim: building shoal-seeder and shoal-node first (cargo build{} --workspace --bins); this takes a few minutes once",
            if release { " --release" } else { "" }
        );
    }
    let status = cmd
        .status()
        .context("cannot run cargo to build shoal-seeder and shoal-node")?;
    if !status.success() {
        bail!("cargo build --workspace --bins failed ({status}); see its output above");
    }
    Ok(())
}
