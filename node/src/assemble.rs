//! Assembling a release in the staging folder: each distinct chunk is checked (length
//! and BLAKE3 against the signed manifest) before its bytes are written, then written
//! at every offset it occurs, with no second copy. Progress is marked in the store only
//! after the staging files are synced, so a kill -9 at any moment loses at most the
//! chunks since the last sync, and never marks bytes that are not on disk.

use crate::error::NodeError;
use crate::store::NodeStore;
use shoal_core::plan::{Bitset, Plan};
use shoal_core::{Hash, Release};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One release being assembled.
pub struct Assembly {
    pub id: Hash,
    pub plan: Plan,
    pub bits: Bitset,
    dir: PathBuf,
    files: Vec<File>,
    /// Chunks written since the last sync.
    unsynced: Vec<usize>,
}

impl Assembly {
    /// Opens (or resumes) the staging files of `release` under `staging/<id>/`.
    pub fn open(
        staging: &Path,
        release: &Release,
        id: Hash,
        store: &NodeStore,
    ) -> Result<Assembly, NodeError> {
        let dir = staging.join(id.to_hex());
        std::fs::create_dir_all(&dir).map_err(NodeError::io(&dir))?;
        let mut files = Vec::new();
        for (i, f) in release.files.iter().enumerate() {
            let path = dir.join(format!("f{i}"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(NodeError::io(&path))?;
            file.set_len(f.size).map_err(NodeError::io(&path))?;
            files.push(file);
        }
        let plan = Plan::new(release);
        let bits = store.progress(id, plan.chunks.len())?;
        Ok(Assembly {
            id,
            plan,
            bits,
            dir,
            files,
            unsynced: Vec::new(),
        })
    }

    /// The staging file of file `i`.
    pub fn file_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("f{i}"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Indices of the chunks still missing.
    pub fn missing(&self) -> Vec<usize> {
        (0..self.plan.chunks.len())
            .filter(|&i| !self.bits.get(i))
            .collect()
    }

    /// Bytes of distinct chunks in place.
    pub fn done_bytes(&self) -> u64 {
        self.plan
            .chunks
            .iter()
            .enumerate()
            .filter(|(i, _)| self.bits.get(*i))
            .map(|(_, c)| u64::from(c.len))
            .sum()
    }

    /// Checks chunk `i`'s bytes against the manifest, then writes them everywhere the
    /// chunk occurs. Bad bytes are refused before anything is written.
    pub fn write_chunk(&mut self, i: usize, data: &[u8]) -> Result<(), NodeError> {
        let needed = &self.plan.chunks[i];
        let hash_ok = Hash::of(data) == needed.hash;
        if data.len() != needed.len as usize || !hash_ok {
            return Err(NodeError::BadChunk {
                hash: needed.hash,
                expected: needed.len,
                found: data.len(),
                hash_ok,
            });
        }
        for p in &needed.placements {
            self.files[p.file]
                .write_all_at(data, p.offset)
                .map_err(NodeError::io(self.dir.join(format!("f{}", p.file))))?;
        }
        self.unsynced.push(i);
        Ok(())
    }

    /// Makes the chunks written so far durable, then marks them present.
    pub fn commit(&mut self, store: &NodeStore) -> Result<(), NodeError> {
        if self.unsynced.is_empty() {
            return Ok(());
        }
        // Only the files these chunks went to.
        let mut touched: Vec<usize> = self
            .unsynced
            .iter()
            .flat_map(|&i| self.plan.chunks[i].placements.iter().map(|p| p.file))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for i in touched {
            self.files[i]
                .sync_data()
                .map_err(NodeError::io(self.dir.join(format!("f{i}"))))?;
        }
        for i in self.unsynced.drain(..) {
            self.bits.set(i);
        }
        store.set_progress(self.id, &self.bits)
    }

    /// Re-hashes every assembled file against the manifest's whole-file BLAKE3.
    pub fn verify_files(&self, release: &Release) -> Result<(), NodeError> {
        for (i, f) in release.files.iter().enumerate() {
            let path = self.file_path(i);
            let mut file = File::open(&path).map_err(NodeError::io(&path))?;
            let mut h = blake3::Hasher::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).map_err(NodeError::io(&path))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            let found = Hash::from(h.finalize());
            if found != f.blake3 {
                return Err(NodeError::BadFile {
                    path: f.path.clone(),
                    expected: f.blake3,
                    found,
                });
            }
        }
        Ok(())
    }
}
