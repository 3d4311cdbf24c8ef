//! The chunk directory: `chunks/<first 2 hex>/<64 hex>`, one file per chunk, named by
//! the BLAKE3 of its bytes.
//!
//! **Invariant: a chunk file is complete and matches its name, or is absent.** Bytes are
//! hashed before anything touches the disk; they go to a temporary file (a name starting
//! with `.` and holding `.tmp.`) that is fsynced, renamed onto its final name, and the
//! directory fsynced. A crash leaves at most a temporary file, which `open` deletes. So
//! "the file exists" is the whole truth about "the chunk is stored": no redb table
//! mirrors it, and nothing can disagree.

use super::error::{StoreError, io};
use serde::{Deserialize, Serialize};
use shoal_core::Hash;
use shoal_core::release::MAX_CHUNK_LEN;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of chunk files: they hold only public, signed-for content.
const CHUNK_MODE: u32 = 0o644;

/// What `check_chunks` found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkAudit {
    /// Chunk files re-hashed.
    pub checked: usize,
    /// Files whose bytes do not hash to their name, that are too large, or that are
    /// not where a chunk of that name belongs.
    pub bad: Vec<PathBuf>,
}

pub(crate) struct ChunkDir {
    root: PathBuf,
    /// Makes temporary names unique between threads of this process (the pid between
    /// processes), so two uploads of the same chunk never share a temporary file.
    next_temp: AtomicU64,
}

impl ChunkDir {
    /// Creates `root` if needed and deletes temporary files a crash left behind. The
    /// caller holds the database lock, so no other process is writing here.
    pub(crate) fn open(root: PathBuf) -> Result<ChunkDir, StoreError> {
        if !root.is_dir() {
            fs::create_dir_all(&root).map_err(io(&root))?;
            sync_parent(&root)?;
        }
        let dir = ChunkDir {
            root,
            next_temp: AtomicU64::new(0),
        };
        dir.remove_temp_files()?;
        Ok(dir)
    }

    pub(crate) fn path(&self, hash: Hash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    pub(crate) fn has(&self, hash: Hash) -> bool {
        self.path(hash).is_file()
    }

    pub(crate) fn put(&self, hash: Hash, bytes: &[u8]) -> Result<(), StoreError> {
        let max = MAX_CHUNK_LEN as usize;
        if bytes.len() > max {
            return Err(StoreError::ChunkTooLarge {
                len: bytes.len(),
                max,
            });
        }
        let found = Hash::of(bytes);
        if found != hash {
            return Err(StoreError::ChunkMismatch {
                expected: hash,
                found,
            });
        }
        let path = self.path(hash);
        if path.is_file() {
            // Another upload may have renamed it in but not yet synced the directory;
            // syncing here means "put returned" always implies "durable".
            return sync_parent(&path);
        }
        let subdir = path.parent().unwrap_or(&self.root);
        if !subdir.is_dir() {
            match fs::create_dir(subdir) {
                Ok(()) => sync_parent(subdir)?,
                // a concurrent upload made it
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(subdir)(e)),
            }
        }
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let tmp = subdir.join(format!(".{}.tmp.{}.{n}", hash.to_hex(), std::process::id()));
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(CHUNK_MODE)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(io(&tmp))?;
            // Same bytes under the same name: replacing a concurrent upload's file is fine.
            fs::rename(&tmp, &path).map_err(io(&path))?;
            sync_parent(&path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// The chunk's bytes, checked against its name on the way out: a disk that rots
    /// is reported, not passed on to devices.
    pub(crate) fn get(&self, hash: Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(hash, true)
    }

    /// The chunk's bytes without re-hashing them: for serving devices, which check
    /// every chunk themselves (the stored file was checked when it was written).
    pub(crate) fn get_unchecked(&self, hash: Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(hash, false)
    }

    fn read(&self, hash: Hash, check: bool) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(hash);
        let bytes = match read_capped(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        if bytes.len() > MAX_CHUNK_LEN as usize {
            return Err(StoreError::Corrupt(format!(
                "{}: over {MAX_CHUNK_LEN} bytes, expected a chunk",
                path.display()
            )));
        }
        let found = if check { Hash::of(&bytes) } else { hash };
        if found != hash {
            return Err(StoreError::Corrupt(format!(
                "{}: bytes hash to {found}, expected {hash}",
                path.display()
            )));
        }
        Ok(Some(bytes))
    }

    /// Re-hashes every chunk file. Temporary files are skipped: they may be uploads in
    /// progress.
    pub(crate) fn audit(&self) -> Result<ChunkAudit, StoreError> {
        let mut audit = ChunkAudit::default();
        for entry in sorted_entries(&self.root)? {
            if is_temp(&entry) {
                continue;
            }
            let Some(prefix) = name_of(&entry) else {
                audit.bad.push(entry);
                continue;
            };
            if !entry.is_dir() || prefix.len() != 2 {
                audit.bad.push(entry);
                continue;
            }
            for file in sorted_entries(&entry)? {
                if is_temp(&file) {
                    continue;
                }
                if !self.file_is_good(&file, &prefix)? {
                    audit.bad.push(file);
                }
                audit.checked += 1;
            }
        }
        Ok(audit)
    }

    fn file_is_good(&self, file: &Path, prefix: &str) -> Result<bool, StoreError> {
        let Some(name) = name_of(file) else {
            return Ok(false);
        };
        let Ok(hash) = Hash::from_hex(&name) else {
            return Ok(false);
        };
        // the canonical name (lowercase) in the directory of its first two digits
        if hash.to_hex() != name || !name.starts_with(prefix) || !file.is_file() {
            return Ok(false);
        }
        let bytes = read_capped(file).map_err(io(file))?;
        Ok(bytes.len() <= MAX_CHUNK_LEN as usize && Hash::of(&bytes) == hash)
    }

    fn remove_temp_files(&self) -> Result<(), StoreError> {
        let mut removed = false;
        for entry in sorted_entries(&self.root)? {
            if is_temp(&entry) {
                remove(&entry)?;
                removed = true;
            } else if entry.is_dir() {
                for file in sorted_entries(&entry)? {
                    if is_temp(&file) {
                        remove(&file)?;
                        removed = true;
                    }
                }
            }
        }
        if removed {
            File::open(&self.root)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.root))?;
        }
        Ok(())
    }
}

fn remove(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

fn name_of(path: &Path) -> Option<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
}

fn is_temp(path: &Path) -> bool {
    name_of(path).is_some_and(|n| n.starts_with('.') && n.contains(".tmp."))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        out.push(entry.map_err(io(dir))?.path());
    }
    out.sort();
    Ok(out)
}

/// Reads at most one byte more than the largest chunk, so a huge file planted in the
/// directory costs no more memory than a chunk.
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    // Sized from the file's length, so the read is one copy with no regrowth; `take`
    // still stops at one byte past the cap if the file is larger than it says.
    let len = file.metadata()?.len().min(u64::from(MAX_CHUNK_LEN) + 1);
    let mut bytes = Vec::with_capacity(len as usize + 1);
    file.take(u64::from(MAX_CHUNK_LEN) + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Makes a create or rename in `path`'s directory durable.
fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, ChunkDir) {
        let t = tempfile::tempdir().unwrap();
        let d = ChunkDir::open(t.path().join("chunks")).unwrap();
        (t, d)
    }

    #[test]
    fn a_chunk_round_trips_under_its_hash() {
        let (_t, d) = dir();
        let bytes = b"some chunk".to_vec();
        let h = Hash::of(&bytes);
        assert!(!d.has(h));
        assert_eq!(d.get(h).unwrap(), None);
        d.put(h, &bytes).unwrap();
        d.put(h, &bytes).unwrap(); // idempotent
        assert!(d.has(h));
        assert_eq!(d.get(h).unwrap(), Some(bytes));
        let hex = h.to_hex();
        assert!(d.path(h).ends_with(format!("{}/{hex}", &hex[..2])));
    }

    // guards: "no chunk is stored before it is verified"
    #[test]
    fn a_mismatching_chunk_is_refused_and_not_stored() {
        let (_t, d) = dir();
        let claimed = Hash::of(b"the real bytes");
        let err = d.put(claimed, b"other bytes").unwrap_err();
        assert!(
            matches!(err, StoreError::ChunkMismatch { expected, found }
                if expected == claimed && found == Hash::of(b"other bytes")),
            "{err}"
        );
        assert!(!d.has(claimed));
        assert_eq!(files_under(&d.root), Vec::<PathBuf>::new());
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn a_chunk_over_the_cap_is_refused() {
        let (_t, d) = dir();
        let big = vec![0u8; MAX_CHUNK_LEN as usize + 1];
        let h = Hash::of(&big);
        let err = d.put(h, &big).unwrap_err();
        assert!(
            matches!(err, StoreError::ChunkTooLarge { len, max }
                if len == big.len() && max == MAX_CHUNK_LEN as usize),
            "{err}"
        );
        assert!(!d.has(h));
        // exactly the cap is fine
        let edge = vec![0u8; MAX_CHUNK_LEN as usize];
        d.put(Hash::of(&edge), &edge).unwrap();
    }

    #[test]
    fn open_deletes_leftover_temp_files_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("chunks");
        let d = ChunkDir::open(root.clone()).unwrap();
        let h = Hash::of(b"kept");
        d.put(h, b"kept").unwrap();
        let sub = d.path(h).parent().unwrap().to_path_buf();
        let stale = sub.join(format!(".{}.tmp.1.0", Hash::of(b"x").to_hex()));
        fs::write(&stale, b"half a chu").unwrap();
        let top = root.join(".junk.tmp.9.9");
        fs::write(&top, b"").unwrap();
        drop(d);
        let d = ChunkDir::open(root).unwrap();
        assert!(!stale.exists());
        assert!(!top.exists());
        assert_eq!(d.get(h).unwrap().as_deref(), Some(&b"kept"[..]));
    }

    #[test]
    fn audit_finds_changed_misplaced_and_misnamed_files() {
        let (_t, d) = dir();
        let mut hashes = Vec::new();
        for i in 0..5u8 {
            let bytes = vec![i; 100 + i as usize];
            let h = Hash::of(&bytes);
            d.put(h, &bytes).unwrap();
            hashes.push(h);
        }
        assert_eq!(
            d.audit().unwrap(),
            ChunkAudit {
                checked: 5,
                bad: vec![]
            }
        );
        // flip one byte of one chunk
        let victim = d.path(hashes[2]);
        let mut bytes = fs::read(&victim).unwrap();
        bytes[10] ^= 1;
        fs::write(&victim, &bytes).unwrap();
        // a good chunk filed under the wrong prefix
        let good = b"misplaced";
        let gh = Hash::of(good);
        let wrong = if gh.to_hex().starts_with("00") {
            "01"
        } else {
            "00"
        };
        fs::create_dir_all(d.root.join(wrong)).unwrap();
        let misplaced = d.root.join(wrong).join(gh.to_hex());
        fs::write(&misplaced, good).unwrap();
        let audit = d.audit().unwrap();
        assert_eq!(audit.checked, 6);
        let mut want = vec![victim.clone(), misplaced];
        want.sort();
        let mut got = audit.bad.clone();
        got.sort();
        assert_eq!(got, want);
        // reading the changed chunk is refused, not served
        assert!(matches!(d.get(hashes[2]), Err(StoreError::Corrupt(_))));
    }
}
