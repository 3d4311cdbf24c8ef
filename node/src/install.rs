//! Install models. `file`: the release's files replace those under the target folder,
//! one atomic rename each, after the replaced ones are moved to `DIR/previous/` (one
//! rollback). The staging files that were verified are the files renamed into place:
//! nothing is re-read in between. `ab-slot` and `command` are not built yet.

use crate::assemble::Assembly;
use crate::config::sync_dir;
use crate::error::NodeError;
use shoal_core::{Install, Release};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Installs an assembled, verified release.
pub fn install(
    release: &Release,
    assembly: &Assembly,
    target: &Path,
    previous: &Path,
) -> Result<(), NodeError> {
    match release.install {
        Install::File => install_files(release, assembly, target, previous),
        ref other => Err(NodeError::Install(format!(
            "the '{}' install model is not supported by this node yet",
            other.name()
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
