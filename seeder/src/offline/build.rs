//! Building a release's file entries from files on disk, streaming: each file is read
//! once in fixed blocks, so memory stays flat whatever its size.
//!
//! Every byte is hashed twice (the file's BLAKE3 and its chunk's) and scanned once for
//! cut points, so the work is shared by one worker thread per core, and each block's
//! work stays on the core that read it, while the block is still in that core's cache
//! (2 MiB here): a block hashed, scanned and hashed again on the core that did not
//! read it cost about a third more CPU time, measured. A worker claims the next block,
//! reads it (`pread`), hashes it as a subtree of the file's BLAKE3 tree (each block is
//! a power of two long, so its chaining value merges into the file's hash at the end),
//! then waits for its turn to cut: the cut points depend on all that came before, so
//! the chunker passes from block to block in order, like a baton. It hands back the
//! chunks that end in the block, and the worker hashes them once the next block's
//! worker may cut. Blocks are shared, not copied, and recycled once nothing refers to
//! them: memory is a few blocks per worker whatever the file size.

use anyhow::{Context, Result, anyhow, bail};
use blake3::hazmat::{ChainingValue, HasherExt, Mode, left_subtree_len};
use shoal_core::chunker::CutStream;
use shoal_core::path::check_path;
use shoal_core::{ChunkRef, ChunkingProfile, FileEntry, Hash};
use std::collections::VecDeque;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

/// Bytes read at a time; a power of two, so that each block is a subtree of the
/// file's BLAKE3 tree.
pub const BLOCK: usize = 1024 * 1024;
/// Workers at most: past about four, the chunker (one block at a time) is the limit.
const MAX_WORKERS: usize = 4;

/// A file's size, whole-file hash and chunk list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltFile {
    pub size: u64,
    pub blake3: Hash,
    pub chunks: Vec<ChunkRef>,
}

/// One block of the file: a full-size buffer and how much of it holds data (so that a
/// recycled buffer is never cleared or resized).
struct Block {
    buf: Vec<u8>,
    len: usize,
}

impl Block {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What the workers share: the next block to claim, and the chunker's baton.
struct Shared<'a> {
    file: &'a File,
    path: &'a Path,
    next_block: AtomicU64,
    baton: Mutex<Baton>,
    turn: Condvar,
}

/// The chunker and what it needs, held by the worker whose block is being cut.
struct Baton {
    /// The block whose turn it is.
    next: u64,
    /// `None` once the file's end was cut.
    cuts: Option<CutStream>,
    spans: ChunkSpans,
    size: u64,
    /// Set by the first worker that fails; the others stop.
    failed: bool,
}

/// What one worker found: the chaining values of its blocks, the chunks it hashed,
/// and the file's hash if it read the whole file in its first block, or that block if
/// it was full (the file may end with it; then it is the root of the tree).
#[derive(Default)]
struct Found {
    cvs: Vec<(u64, ChainingValue)>,
    chunks: Vec<(usize, ChunkRef)>,
    root: Option<Hash>,
    first: Option<Arc<Block>>,
}

/// Reads `path` once and cuts it into chunks with `profile`.
pub fn build_file(path: &Path, profile: ChunkingProfile) -> Result<BuiltFile> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let cuts = CutStream::new(profile).map_err(anyhow::Error::msg)?;
    let shared = Shared {
        file: &file,
        path,
        next_block: AtomicU64::new(0),
        baton: Mutex::new(Baton {
            next: 0,
            cuts: Some(cuts),
            spans: ChunkSpans::default(),
            size: 0,
            failed: false,
        }),
        turn: Condvar::new(),
    };
    let workers = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS);
    let results: Vec<Result<Found>> = thread::scope(|s| {
        let others: Vec<_> = (1..workers).map(|_| s.spawn(|| work(&shared))).collect();
        let mut all = vec![work(&shared)];
        all.extend(others.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow!("a hashing thread panicked")))
        }));
        all
    });
    let mut found = Found::default();
    for r in results {
        let f = r?;
        found.cvs.extend(f.cvs);
        found.chunks.extend(f.chunks);
        found.root = found.root.or(f.root);
        found.first = found.first.or(f.first);
    }
    let size = shared.lock().size;
    found.chunks.sort_unstable_by_key(|(index, _)| *index);
    debug_assert!(
        found
            .chunks
            .iter()
            .enumerate()
            .all(|(i, (index, _))| i == *index)
    );
    found.cvs.sort_unstable_by_key(|(k, _)| *k);
    let blake3 = match found.root {
        Some(root) => root,
        None if size == 0 => Hash::of(&[]),
        None if size == BLOCK as u64 => Hash::of(
            found
                .first
                .as_ref()
                .expect("a full first block is kept")
                .bytes(),
        ),
        None => {
            let cvs: Vec<ChainingValue> = found.cvs.into_iter().map(|(_, cv)| cv).collect();
            Hash::from(root_of(&cvs, size))
        }
    };
    Ok(BuiltFile {
        size,
        blake3,
        chunks: found.chunks.into_iter().map(|(_, c)| c).collect(),
    })
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, Baton> {
        // A panic while holding the lock leaves a baton marked failed or consistent.
        self.baton.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the build failed and wakes every worker, so that none waits for a turn
    /// that will not come.
    fn fail(&self) {
        self.lock().failed = true;
        self.turn.notify_all();
    }
}

/// One worker: claims blocks until the file has ended, as described in the module doc.
fn work(shared: &Shared) -> Result<Found> {
    let result = work_inner(shared);
    if result.is_err() {
        shared.fail();
    }
    result
}

fn work_inner(shared: &Shared) -> Result<Found> {
    let mut found = Found::default();
    let mut pool: Vec<Arc<Block>> = Vec::new();
    let mut lens = Vec::new();
    loop {
        let k = shared.next_block.fetch_add(1, Ordering::Relaxed);
        let mut block = match pool.iter().position(|b| Arc::strong_count(b) == 1) {
            Some(i) => pool.swap_remove(i),
            None => Arc::new(Block {
                buf: vec![0u8; BLOCK],
                len: 0,
            }),
        };
        // Only this worker holds a recycled block (strong count 1, no weak refs).
        let b = Arc::get_mut(&mut block).expect("recycled blocks are unshared");
        let offset = k * BLOCK as u64;
        b.len = read_full_at(shared.file, &mut b.buf, offset)
            .with_context(|| format!("{}: read failed", shared.path.display()))?;
        let bytes = block.bytes();
        if k == 0 && bytes.len() < BLOCK {
            // the whole file, so the root of its tree
            found.root = Some(Hash::of(bytes));
        } else if !bytes.is_empty() {
            if k == 0 {
                found.first = Some(Arc::clone(&block));
            }
            let mut h = blake3::Hasher::new();
            h.set_input_offset(offset);
            h.update(bytes);
            found.cvs.push((k, h.finalize_non_root()));
        }

        let mut jobs = Vec::new();
        let ended = {
            let mut baton = shared.lock();
            while baton.next != k && !baton.failed {
                baton = shared.turn.wait(baton).unwrap_or_else(|e| e.into_inner());
            }
            if baton.failed {
                return Ok(found);
            }
            let baton = &mut *baton;
            match baton.cuts.as_mut() {
                // an earlier block was short: the file had ended
                None if bytes.is_empty() => {}
                None => bail!("{}: the file grew while it was read", shared.path.display()),
                Some(cuts) => {
                    if !bytes.is_empty() {
                        cuts.push(bytes, |c| lens.push(c.len()));
                        baton.spans.held.push_back(Arc::clone(&block));
                        baton.size += bytes.len() as u64;
                    }
                    if bytes.len() < BLOCK {
                        let cuts = baton.cuts.take().expect("matched above");
                        cuts.finish(|c| lens.push(c.len()));
                    }
                    jobs.extend(lens.drain(..).map(|len| baton.spans.job(len)));
                }
            }
            baton.next += 1;
            baton.cuts.is_none()
        };
        shared.turn.notify_all();
        found.chunks.extend(jobs.into_iter().map(Job::run));
        pool.push(block);
        if ended {
            return Ok(found);
        }
    }
}

/// The file's BLAKE3 from the chaining values of its blocks (`size > BLOCK`).
fn root_of(cvs: &[ChainingValue], size: u64) -> blake3::Hash {
    let (left, right) = children(cvs, size);
    blake3::hazmat::merge_subtrees_root(&left, &right, Mode::Hash)
}

/// The chaining values of the two children of the subtree of `len > BLOCK` bytes made
/// of the blocks of `cvs`: the tree's left subtrees are whole powers of two, so every
/// split falls between blocks.
fn children(cvs: &[ChainingValue], len: u64) -> (ChainingValue, ChainingValue) {
    let left = left_subtree_len(len);
    let split = (left / BLOCK as u64) as usize;
    (
        subtree(&cvs[..split], left),
        subtree(&cvs[split..], len - left),
    )
}

fn subtree(cvs: &[ChainingValue], len: u64) -> ChainingValue {
    if len <= BLOCK as u64 {
        return cvs[0];
    }
    let (left, right) = children(cvs, len);
    blake3::hazmat::merge_subtrees_non_root(&left, &right, Mode::Hash)
}

/// One chunk to hash: its index in the file and where its bytes lie (in one block
/// mostly, across two or three at most).
struct Job {
    index: usize,
    len: usize,
    pieces: Vec<(Arc<Block>, Range<usize>)>,
}

impl Job {
    fn run(self) -> (usize, ChunkRef) {
        let hash = match self.pieces.as_slice() {
            [(block, range)] => Hash::of(&block.bytes()[range.clone()]),
            pieces => {
                let mut h = blake3::Hasher::new();
                for (block, range) in pieces {
                    h.update(&block.bytes()[range.clone()]);
                }
                Hash::from(h.finalize())
            }
        };
        // A chunk is at most the profile's max, which ChunkingProfile::check keeps
        // within u32.
        let len = self.len as u32;
        (self.index, ChunkRef { hash, len })
    }
}

/// Turns chunk lengths, in order, into the block ranges they cover.
#[derive(Default)]
struct ChunkSpans {
    /// Blocks from the one holding `chunk_at` on.
    held: VecDeque<Arc<Block>>,
    /// Where the next chunk starts, counted from the start of `held[0]`.
    chunk_at: usize,
    next_index: usize,
}

impl ChunkSpans {
    fn job(&mut self, len: usize) -> Job {
        let mut pieces = Vec::with_capacity(1);
        let mut from = self.chunk_at;
        let mut left = len;
        for block in &self.held {
            let n = block.len;
            if from >= n {
                from -= n;
                continue;
            }
            let take = (n - from).min(left);
            pieces.push((Arc::clone(block), from..from + take));
            left -= take;
            from = 0;
            if left == 0 {
                break;
            }
        }
        debug_assert_eq!(left, 0, "a chunk's bytes were pushed before its cut");
        self.chunk_at += len;
        while let Some(front) = self.held.front() {
            if self.chunk_at < front.len {
                break;
            }
            self.chunk_at -= front.len;
            self.held.pop_front();
        }
        let index = self.next_index;
        self.next_index += 1;
        Job { index, len, pieces }
    }
}

/// Fills `buf` from `offset` as far as the file allows; returns the bytes read.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
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
    fn block_sized_empty_and_tiny_files_build() {
        let dir = tempfile::tempdir().unwrap();
        // around block boundaries, and block counts that are not powers of two (the
        // file's hash is merged from the blocks' subtrees)
        for len in [
            0usize,
            1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            2 * BLOCK,
            3 * BLOCK - 1,
            3 * BLOCK,
            3 * BLOCK + 1,
            5 * BLOCK + 7,
            8 * BLOCK,
            9 * BLOCK + 1,
        ] {
            let p = dir.path().join(format!("f{len}"));
            let data: Vec<u8> = (0..len as u64).map(|i| (i * 31 % 253) as u8).collect();
            std::fs::write(&p, &data).unwrap();
            let built = build_file(&p, ChunkingProfile::DEFAULT).unwrap();
            let (hash, chunks) =
                shoal_core::chunker::chunk_bytes(ChunkingProfile::DEFAULT, &data).unwrap();
            assert_eq!(
                (built.size, built.blake3, built.chunks),
                (len as u64, hash, chunks),
                "{len}"
            );
        }
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
