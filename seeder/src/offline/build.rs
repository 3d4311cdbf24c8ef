//! Building a release's file entries from files on disk, streaming: each file is read
//! once in fixed blocks, so memory stays flat whatever its size.
//!
//! Two threads share the work: this one reads the file and hashes it whole as it is
//! read; a cutting thread scans the blocks for FastCDC cuts and turns each chunk into a
//! hashing job. Chunk jobs go to whichever thread has time: a thread takes one while its
//! own work is blocked (the cutter waiting for a block, the reader for room in the
//! cutter's queue), and both take some whenever more than a block's worth is queued,
//! which also bounds the memory the jobs hold. Blocks are shared, not copied, and
//! recycled once nothing refers to them.

use anyhow::{Context, Result, bail};
use shoal_core::chunker::CutStream;
use shoal_core::path::check_path;
use shoal_core::{ChunkRef, ChunkingProfile, FileEntry, Hash};
use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, TryRecvError, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

/// Bytes read at a time.
pub const BLOCK: usize = 4 * 1024 * 1024;
/// Blocks queued for the cutting thread. Memory is bounded by this, plus the blocks a
/// chunk still spans, plus one being read, plus the blocks that queued jobs refer to
/// (about one block's worth): a handful of blocks whatever the file size.
const QUEUED: usize = 2;

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

/// Reads `path` once and cuts it into chunks with `profile`.
pub fn build_file(path: &Path, profile: ChunkingProfile) -> Result<BuiltFile> {
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let cuts = CutStream::new(profile).map_err(anyhow::Error::msg)?;
    let (to_cutter, blocks) = mpsc::sync_channel::<Arc<Block>>(QUEUED);
    let jobs = Arc::new(Jobs::default());
    let cutter = {
        let jobs = Arc::clone(&jobs);
        thread::spawn(move || cut_blocks(cuts, blocks, &jobs))
    };

    let mut hashed = Vec::new();
    let mut whole = blake3::Hasher::new();
    let mut pool: Vec<Arc<Block>> = Vec::new();
    let mut size = 0u64;
    let read_result = (|| -> Result<()> {
        loop {
            let mut block = match pool.iter().position(|b| Arc::strong_count(b) == 1) {
                Some(i) => pool.swap_remove(i),
                None => Arc::new(Block {
                    buf: vec![0u8; BLOCK],
                    len: 0,
                }),
            };
            // Only this thread holds a recycled block (strong count 1, no weak refs).
            let b = Arc::get_mut(&mut block).expect("recycled blocks are unshared");
            b.len = read_full(&mut file, &mut b.buf)
                .with_context(|| format!("{}: read failed", path.display()))?;
            if b.len == 0 {
                return Ok(());
            }
            size += b.len as u64;
            whole.update(block.bytes());
            pool.push(Arc::clone(&block));
            loop {
                match to_cutter.try_send(block) {
                    Ok(()) => break,
                    Err(TrySendError::Full(b)) => match jobs.take() {
                        Some(job) => {
                            hashed.push(job.run());
                            block = b;
                        }
                        None => {
                            if to_cutter.send(b).is_err() {
                                bail!("the cutting thread stopped");
                            }
                            break;
                        }
                    },
                    Err(TrySendError::Disconnected(_)) => bail!("the cutting thread stopped"),
                }
            }
            jobs.keep_short(&mut hashed);
        }
    })();
    drop(to_cutter);
    // Help with the last chunks until the cutter has queued them all.
    while let Some(job) = jobs.take_wait() {
        hashed.push(job.run());
    }
    let cut_hashed = cutter
        .join()
        .map_err(|_| anyhow::anyhow!("the cutting thread panicked"))?;
    read_result?;
    hashed.extend(cut_hashed);
    hashed.sort_unstable_by_key(|(index, _)| *index);
    debug_assert!(hashed.iter().enumerate().all(|(i, (index, _))| i == *index));
    Ok(BuiltFile {
        size,
        blake3: Hash::from(whole.finalize()),
        chunks: hashed.into_iter().map(|(_, c)| c).collect(),
    })
}

/// The cutting thread: cuts the blocks as they come, queues a hashing job per chunk,
/// and hashes chunks itself while it waits for blocks or the queue is long. Returns the
/// chunks it hashed, by index.
fn cut_blocks(
    mut cuts: CutStream,
    blocks: mpsc::Receiver<Arc<Block>>,
    jobs: &Jobs,
) -> Vec<(usize, ChunkRef)> {
    // Closes the queue even if this thread panics, so the reader stops waiting.
    let _close = CloseOnDrop(jobs);
    let mut hashed = Vec::new();
    let mut spans = ChunkSpans::default();
    loop {
        let block = match blocks.try_recv() {
            Ok(block) => block,
            Err(TryRecvError::Empty) => {
                if let Some(job) = jobs.take() {
                    hashed.push(job.run());
                    continue;
                }
                match blocks.recv() {
                    Ok(block) => block,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        let mut lens = Vec::new();
        cuts.push(block.bytes(), |c| lens.push(c.len()));
        spans.held.push_back(block);
        for len in lens {
            jobs.put(spans.job(len));
        }
        jobs.keep_short(&mut hashed);
    }
    let mut lens = Vec::new();
    cuts.finish(|c| lens.push(c.len()));
    for len in lens {
        jobs.put(spans.job(len));
    }
    jobs.close();
    while let Some(job) = jobs.take() {
        hashed.push(job.run());
    }
    hashed
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

/// Chunk hashing jobs shared by the two threads.
#[derive(Default)]
struct Jobs {
    state: Mutex<JobQueue>,
    ready: Condvar,
}

#[derive(Default)]
struct JobQueue {
    jobs: VecDeque<Job>,
    /// Bytes of the queued chunks.
    bytes: usize,
    /// No more jobs will come.
    closed: bool,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, JobQueue> {
        // A panic while holding the lock leaves only a queue behind: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, job: Job) {
        let mut q = self.lock();
        q.bytes += job.len;
        q.jobs.push_back(job);
        self.ready.notify_one();
    }

    fn take(&self) -> Option<Job> {
        let mut q = self.lock();
        let job = q.jobs.pop_front()?;
        q.bytes -= job.len;
        Some(job)
    }

    /// Waits for a job; `None` once the queue is closed and empty.
    fn take_wait(&self) -> Option<Job> {
        let mut q = self.lock();
        loop {
            if let Some(job) = q.jobs.pop_front() {
                q.bytes -= job.len;
                return Some(job);
            }
            if q.closed {
                return None;
            }
            q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Hashes queued chunks until at most a block's worth is left.
    fn keep_short(&self, hashed: &mut Vec<(usize, ChunkRef)>) {
        while self.lock().bytes > BLOCK {
            match self.take() {
                Some(job) => hashed.push(job.run()),
                None => break,
            }
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

struct CloseOnDrop<'a>(&'a Jobs);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
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
    fn block_sized_empty_and_tiny_files_build() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK] {
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
