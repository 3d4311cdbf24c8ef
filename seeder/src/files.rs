//! Files the tools read and write: every read is capped before it starts, every write
//! goes to a temporary file that is synced and renamed into place, so a crash or a bad
//! input never leaves a partial output behind.

use anyhow::{Context, Result, bail};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Mode of secret key files and tokens.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of everything else the tools write.
pub const PUBLIC_MODE: u32 = 0o644;

/// Reads `path`, refusing a file larger than `cap` before reading it.
pub fn read_capped(path: &Path, cap: usize) -> Result<Vec<u8>> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot stat", path.display()))?;
    if !meta.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    if meta.len() > cap as u64 {
        bail!(
            "{}: {} bytes is over the cap of {cap} bytes for this kind of file",
            path.display(),
            meta.len()
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take` guards against a file that grows between the stat and the read.
    file.take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() > cap {
        bail!(
            "{}: grew past the cap of {cap} bytes while being read",
            path.display()
        );
    }
    Ok(bytes)
}

/// Reads a small text file (a key file), capped.
pub fn read_text_capped(path: &Path, cap: usize) -> Result<String> {
    let bytes = read_capped(path, cap)?;
    String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically with `mode`: a temporary file beside it, fsync,
/// rename over `path`, fsync of the directory. With `replace` false an existing `path`
/// is an error and is left alone.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<()> {
    if !replace && path.symlink_metadata().is_ok() {
        bail!("{}: already exists; not overwritten", path.display());
    }
    let tmp = temp_path(path);
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("{}: cannot create", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        if !replace && path.symlink_metadata().is_ok() {
            bail!(
                "{}: appeared while writing; not overwritten",
                path.display()
            );
        }
        fs::rename(&tmp, path)
            .with_context(|| format!("{}: cannot rename into place", path.display()))?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename in `path`'s directory durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("{}: cannot sync directory", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_sets_mode_and_refuses_to_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_atomic(&p, b"secret", SECRET_MODE, false).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(write_atomic(&p, b"other", SECRET_MODE, false).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"secret");
        write_atomic(&p, b"new", SECRET_MODE, true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        // no temporary file is left behind
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn capped_read_refuses_large_files_unread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        fs::write(&p, vec![0u8; 100]).unwrap();
        assert!(read_capped(&p, 99).is_err());
        assert_eq!(read_capped(&p, 100).unwrap().len(), 100);
        assert!(read_capped(dir.path(), 100).is_err());
    }
}
