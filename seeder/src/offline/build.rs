//! Building a release's file entries from files on disk, streaming: each file is read
//! once in fixed blocks, so memory stays flat whatever its size.
//!
//! Two threads share the work: this one reads and runs the chunker (FastCDC plus a
//! BLAKE3 per chunk), a second one hashes the whole file. Blocks are shared, not
//! copied, and recycled once both are done with them.

use anyhow::{Context, Result, bail};
use shoal_core::chunker::FileChunker;
use shoal_core::path::check_path;
use shoal_core::{ChunkRef, ChunkingProfile, FileEntry, Hash};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread;

/// Bytes read at a time.
pub const BLOCK: usize = 4 * 1024 * 1024;
/// Blocks in flight to the hashing thread; with the one being chunked and one being
/// filled, memory is bounded by `(IN_FLIGHT + 2) * BLOCK`.
const IN_FLIGHT: usize = 2;

/// A file's size, whole-file hash and chunk list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltFile {
    pub size: u64,
    pub blake3: Hash,
    pub chunks: Vec<ChunkRef>,
}

/// Reads `path` once and cuts it into chunks with `profile`.
pub fn build_file(path: &Path, profile: ChunkingProfile) -> Result<BuiltFile> {
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut chunker = FileChunker::new(profile).map_err(anyhow::Error::msg)?;
    let (to_hasher, blocks) = mpsc::sync_channel::<Arc<Vec<u8>>>(IN_FLIGHT);
    let hasher = thread::spawn(move || {
        let mut h = blake3::Hasher::new();
        for block in blocks {
            h.update(&block);
        }
        Hash::from(h.finalize())
    });
    let mut pool: Vec<Arc<Vec<u8>>> = Vec::new();
    let read_result = (|| -> Result<()> {
        loop {
            let mut block = match pool.iter().position(|b| Arc::strong_count(b) == 1) {
                Some(i) => pool.swap_remove(i),
                None => Arc::new(vec![0u8; BLOCK]),
            };
            let buf = Arc::get_mut(&mut block).expect("only this thread holds a recycled block");
            buf.resize(BLOCK, 0);
            let n = read_full(&mut file, buf)
                .with_context(|| format!("{}: read failed", path.display()))?;
            if n == 0 {
                return Ok(());
            }
            buf.truncate(n);
            if to_hasher.send(Arc::clone(&block)).is_err() {
                bail!("the hashing thread stopped");
            }
            chunker.push(&block);
            pool.push(block);
        }
    })();
    drop(to_hasher);
    let blake3 = hasher
        .join()
        .map_err(|_| anyhow::anyhow!("the hashing thread panicked"))?;
    read_result?;
    let (size, chunks) = chunker.finish();
    Ok(BuiltFile {
        size,
        blake3,
        chunks,
    })
}

/// Fills `buf` as far as the file allows; returns the bytes read (0 at the end).
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One input file and the path it gets in the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub source: PathBuf,
    pub release_path: String,
}

/// Expands the command line's FILE arguments: a regular file becomes its file name; a
/// directory contributes every regular file below it, named relative to it. Anything
/// else (a symlink, a device) is refused, as is a name that the release could not
/// carry.
pub fn collect_inputs(args: &[PathBuf]) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for arg in args {
        let meta = arg
            .symlink_metadata()
            .with_context(|| format!("{}: cannot stat", arg.display()))?;
        if meta.is_file() {
            let name = arg
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: the file name is not UTF-8", arg.display()))?;
            out.push(Input {
                source: arg.clone(),
                release_path: name.to_string(),
            });
        } else if meta.is_dir() {
            walk(arg, "", &mut out)?;
        } else {
            bail!(
                "{}: not a regular file or directory (symlinks are not followed)",
                arg.display()
            );
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for i in &out {
        check_path(&i.release_path).with_context(|| {
            format!(
                "{}: cannot be named '{}' in a release",
                i.source.display(),
                i.release_path
            )
        })?;
        if !seen.insert(i.release_path.as_str()) {
            bail!(
                "two inputs would both be '{}' in the release",
                i.release_path
            );
        }
    }
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<Input>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("{}: cannot list", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e
            .file_name()
            .into_string()
            .map_err(|_| anyhow::anyhow!("{}: the file name is not UTF-8", path.display()))?;
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = path
            .symlink_metadata()
            .with_context(|| format!("{}: cannot stat", path.display()))?;
        if meta.is_dir() {
            walk(&path, &rel, out)?;
        } else if meta.is_file() {
            out.push(Input {
                source: path,
                release_path: rel,
            });
        } else {
            bail!(
                "{}: not a regular file or directory (symlinks are not followed)",
                path.display()
            );
        }
    }
    Ok(())
}

/// Builds the file entry of one input.
pub fn file_entry(input: &Input, profile: ChunkingProfile) -> Result<FileEntry> {
    let mode = std::fs::metadata(&input.source)
        .with_context(|| format!("{}: cannot stat", input.source.display()))?
        .permissions()
        .mode()
        & 0o777;
    let built = build_file(&input.source, profile)?;
    Ok(FileEntry {
        path: input.release_path.clone(),
        mode,
        size: built.size,
        blake3: built.blake3,
        chunks: built.chunks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_build_matches_the_in_memory_chunker() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        // three and a half blocks, so blocks are recycled and the tail is short
        let data: Vec<u8> = (0..(3 * BLOCK + BLOCK / 2) as u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
            .collect();
        std::fs::write(&p, &data).unwrap();
        let built = build_file(&p, ChunkingProfile::DEFAULT).unwrap();
        let (hash, chunks) =
            shoal_core::chunker::chunk_bytes(ChunkingProfile::DEFAULT, &data).unwrap();
        assert_eq!(built.size, data.len() as u64);
        assert_eq!(built.blake3, hash);
        assert_eq!(built.chunks, chunks);
    }

    #[test]
    fn directories_expand_sorted_and_relative() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/sub")).unwrap();
        std::fs::write(dir.path().join("d/b"), b"b").unwrap();
        std::fs::write(dir.path().join("d/sub/a"), b"a").unwrap();
        std::fs::write(dir.path().join("top"), b"t").unwrap();
        let got = collect_inputs(&[dir.path().join("d"), dir.path().join("top")]).unwrap();
        let names: Vec<_> = got.iter().map(|i| i.release_path.as_str()).collect();
        assert_eq!(names, ["b", "sub/a", "top"]);
        // the same name twice is refused
        assert!(collect_inputs(&[dir.path().join("top"), dir.path().join("top")]).is_err());
    }
}
