//! Install models.
//!
//! - `file`: the release's files replace those under the target folder, one atomic
//!   rename each, after the replaced ones are moved to `DIR/previous/` (one rollback).
//!   The staging files that were verified are the files renamed into place: nothing is
//!   re-read in between.
//! - `ab-slot`: the one image is written to the inactive slot (a file or a block
//!   device), synced and read back against its BLAKE3; the switch command makes it the
//!   boot slot; the health check then decides: exit 0 commits, anything else switches
//!   back and reports a rollback.
//! - `command`: the verified files are handed (hard links, so the very bytes that were
//!   checked) to the configured executable with the release's arguments; its exit
//!   status decides.

use crate::assemble::Assembly;
use crate::config::{DataDir, NodeConfig, sync_dir};
use crate::error::NodeError;
use shoal_core::{Install, Release};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What an install came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The release is in place; for `ab-slot`, in this slot.
    Installed { slot: Option<usize> },
    /// `ab-slot`: the health check failed and the previous slot is active again.
    RolledBack { reason: String },
}

/// What the install models need to know about the device.
pub struct Context<'a> {
    pub config: &'a NodeConfig,
    pub dir: &'a DataDir,
    pub active_slot: usize,
}

/// Installs an assembled, verified release.
pub fn install(
    release: &Release,
    assembly: &Assembly,
    ctx: &Context,
) -> Result<Outcome, NodeError> {
    match &release.install {
        Install::File => {
            install_files(release, assembly, &ctx.config.target, &ctx.dir.previous())?;
            Ok(Outcome::Installed { slot: None })
        }
        Install::AbSlot => install_slot(release, assembly, ctx),
        Install::Command { args } => {
            install_command(release, assembly, ctx, args)?;
            Ok(Outcome::Installed { slot: None })
        }
    }
}

/// Runs `command` with `sh -c`, the given arguments after it; returns its exit code.
fn run_shell(command: &str, args: &[&str]) -> Result<i32, NodeError> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{command} \"$@\""))
        .arg("shoal-node")
        .args(args)
        .status()
        .map_err(|e| NodeError::Install(format!("cannot run '{command}': {e}")))?;
    Ok(status.code().unwrap_or(-1))
}

fn install_slot(
    release: &Release,
    assembly: &Assembly,
    ctx: &Context,
) -> Result<Outcome, NodeError> {
    let slots = ctx.config.slots()?;
    let active = ctx.active_slot.min(1);
    let inactive = 1 - active;
    let dest = &slots[inactive];
    let Some(switch) = &ctx.config.switch_command else {
        return Err(NodeError::Install(
            "an ab-slot release needs the node's --switch-command".into(),
        ));
    };
    // Write the inactive slot from the verified staging file, sync, and read it back:
    // what boots must be what was verified, not what the medium made of it.
    let staged = assembly.file_path(0);
    let size = release.files[0].size;
    {
        let mut from = std::fs::File::open(&staged).map_err(NodeError::io(&staged))?;
        let mut to = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dest)
            .map_err(NodeError::io(dest))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = from.read(&mut buf).map_err(NodeError::io(&staged))?;
            if n == 0 {
                break;
            }
            to.write_all(&buf[..n]).map_err(NodeError::io(dest))?;
        }
        if to.metadata().map(|m| m.is_file()).unwrap_or(false) {
            to.set_len(size).map_err(NodeError::io(dest))?;
        }
        to.sync_all().map_err(NodeError::io(dest))?;
    }
    let mut check = std::fs::File::open(dest)
        .map_err(NodeError::io(dest))?
        .take(size);
    let mut h = blake3::Hasher::new();
    std::io::copy(&mut check, &mut h).map_err(NodeError::io(dest))?;
    let found = shoal_core::Hash::from(h.finalize());
    if found != release.files[0].blake3 {
        return Err(NodeError::BadFile {
            path: dest.display().to_string(),
            expected: release.files[0].blake3,
            found,
        });
    }
    let slot_arg = dest.to_string_lossy();
    let code = run_shell(switch, &[&slot_arg])?;
    if code != 0 {
        return Err(NodeError::Install(format!(
            "the switch command exited with {code}; slot {} stays active",
            slots[active].display()
        )));
    }
    let Some(health) = &ctx.config.health_command else {
        return Ok(Outcome::Installed {
            slot: Some(inactive),
        });
    };
    let code = run_shell(health, &[&slot_arg])?;
    if code == 0 {
        return Ok(Outcome::Installed {
            slot: Some(inactive),
        });
    }
    let back = slots[active].to_string_lossy();
    let undo = run_shell(switch, &[&back])?;
    Ok(Outcome::RolledBack {
        reason: if undo == 0 {
            format!("the health check exited with {code}; switched back to {back}")
        } else {
            format!(
                "the health check exited with {code}, and switching back to {back} exited with {undo}"
            )
        },
    })
}

fn install_command(
    release: &Release,
    assembly: &Assembly,
    ctx: &Context,
    args: &[String],
) -> Result<(), NodeError> {
    let Some(command) = &ctx.config.install_command else {
        return Err(NodeError::Install(
            "a command release needs the node's --install-command".into(),
        ));
    };
    let handoff = ctx.dir.handoff().join(assembly.id.to_hex());
    let _ = std::fs::remove_dir_all(&handoff);
    for (i, f) in release.files.iter().enumerate() {
        let to = handoff.join(&f.path);
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).map_err(NodeError::io(p))?;
        }
        let from = assembly.file_path(i);
        std::fs::set_permissions(&from, std::fs::Permissions::from_mode(f.mode))
            .map_err(NodeError::io(&from))?;
        std::fs::hard_link(&from, &to).map_err(NodeError::io(&to))?;
    }
    let mut all: Vec<&str> = vec![handoff.to_str().unwrap_or_default()];
    all.extend(args.iter().map(String::as_str));
    let code = run_shell(command, &all);
    let _ = std::fs::remove_dir_all(&handoff);
    match code? {
        0 => Ok(()),
        c => Err(NodeError::Install(format!(
            "the install command exited with {c}"
        ))),
    }
}

/// Refuses a destination whose folders (below the target) are symlinks: the release's
/// paths are checked to stay below the target, and a symlink there would undo that.
fn check_no_symlinks(target: &Path, rel: &str) -> Result<PathBuf, NodeError> {
    let mut at = target.to_path_buf();
    let components: Vec<&str> = rel.split('/').collect();
    for (n, c) in components.iter().enumerate() {
        at.push(c);
        if let Ok(meta) = at.symlink_metadata() {
            let last = n + 1 == components.len();
            if meta.file_type().is_symlink() || (!last && !meta.is_dir()) || (last && meta.is_dir())
            {
                return Err(NodeError::Install(format!(
                    "{}: expected {} and found a symlink or other kind of file; nothing replaced",
                    at.display(),
                    if last { "a regular file" } else { "a folder" }
                )));
            }
        }
    }
    Ok(at)
}

fn install_files(
    release: &Release,
    assembly: &Assembly,
    target: &Path,
    previous: &Path,
) -> Result<(), NodeError> {
    std::fs::create_dir_all(target).map_err(NodeError::io(target))?;
    // Check every destination before touching any.
    let dests = release
        .files
        .iter()
        .map(|f| check_no_symlinks(target, &f.path))
        .collect::<Result<Vec<_>, _>>()?;
    let _ = std::fs::remove_dir_all(previous);
    // (destination, where its old file went): undone if a later file fails, so the
    // target is never left half old, half new.
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut placed: Vec<PathBuf> = Vec::new();
    let result = (|| {
        for (i, (f, dest)) in release.files.iter().zip(&dests).enumerate() {
            let parent = dest.parent().unwrap_or(target);
            std::fs::create_dir_all(parent).map_err(NodeError::io(parent))?;
            if dest.exists() {
                let keep = previous.join(&f.path);
                if let Some(p) = keep.parent() {
                    std::fs::create_dir_all(p).map_err(NodeError::io(p))?;
                }
                std::fs::rename(dest, &keep).map_err(NodeError::io(dest))?;
                moved.push((dest.clone(), keep));
            }
            let staged = assembly.file_path(i);
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(f.mode))
                .map_err(NodeError::io(&staged))?;
            place(&staged, dest)?;
            placed.push(dest.clone());
            sync_dir(parent).map_err(NodeError::io(parent))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for dest in placed {
            let _ = std::fs::remove_file(dest);
        }
        for (dest, keep) in moved {
            let _ = std::fs::rename(keep, dest);
        }
    }
    result
}

/// Renames `staged` to `dest`; across file systems, copies next to `dest`, syncs, then
/// renames there.
fn place(staged: &Path, dest: &Path) -> Result<(), NodeError> {
    match std::fs::rename(staged, dest) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(18) => {
            // EXDEV
            let tmp = dest.with_extension("shoal-tmp");
            std::fs::copy(staged, &tmp).map_err(NodeError::io(&tmp))?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(NodeError::io(&tmp))?;
            std::fs::rename(&tmp, dest).map_err(NodeError::io(dest))
        }
        Err(e) => Err(NodeError::io(dest)(e)),
    }
}
