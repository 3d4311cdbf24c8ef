//! Content-defined chunking: FastCDC v2020 with the profile pinned in the release, fed
//! by the caller a block at a time, so memory stays at one block plus one maximal chunk
//! whatever the file's size.
//!
//! The cut after a chunk start depends only on the bytes from that start up to `max`
//! further on, so a cut is final once `max` bytes are buffered (or the file has ended).

use crate::hash::Hash;
use crate::release::{ChunkRef, ChunkingProfile};
use fastcdc::v2020::{Normalization, cut, select_masks};

/// Finds chunk boundaries for one profile. Stateless between calls.
#[derive(Debug, Clone, Copy)]
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
}

impl Chunker {
    /// A chunker for `profile`; fails for a profile FastCDC does not accept.
    pub fn new(profile: ChunkingProfile) -> Result<Chunker, String> {
        profile.check()?;
        let (mask_s, mask_l) = select_masks(profile.avg as usize, Normalization::Level1);
        Ok(Chunker {
            min: profile.min as usize,
            avg: profile.avg as usize,
            max: profile.max as usize,
            mask_s,
            mask_l,
        })
    }

    /// The largest chunk this chunker cuts.
    pub fn max_len(&self) -> usize {
        self.max
    }

    /// The length of the chunk starting at `data[0]`, if it is decided: `data` holds at
    /// least a maximal chunk, or `at_end` says no more bytes follow. `None` for empty
    /// data or an undecided cut.
    pub fn next_cut(&self, data: &[u8], at_end: bool) -> Option<usize> {
        if data.is_empty() || (data.len() < self.max && !at_end) {
            return None;
        }
        let (_, len) = cut(
            data,
            self.min,
            self.avg,
            self.max,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
        );
        Some(len)
    }
}

/// Finds the cuts of one file pushed in blocks of any size. Each decided chunk is handed
/// to a callback as a slice, borrowed from the pushed block where it lies wholly inside
/// one, so most bytes are never copied.
#[derive(Debug)]
pub struct CutStream {
    chunker: Chunker,
    /// Bytes after the last decided cut: fewer than `max` between calls.
    pending: Vec<u8>,
    size: u64,
}

impl CutStream {
    pub fn new(profile: ChunkingProfile) -> Result<CutStream, String> {
        let chunker = Chunker::new(profile)?;
        Ok(CutStream {
            chunker,
            pending: Vec::with_capacity(3 * chunker.max_len()),
            size: 0,
        })
    }

    /// Feeds the next bytes of the file; `chunk` is called with every chunk decided.
    pub fn push(&mut self, mut data: &[u8], mut chunk: impl FnMut(&[u8])) {
        self.size += data.len() as u64;
        if !self.pending.is_empty() {
            // `pending` is the start of a chunk, shorter than `max`. Borrow enough of
            // `data` to decide every cut that starts inside `pending`; once a cut lands
            // past it, continue straight from `data`.
            let old = self.pending.len();
            let take = data.len().min(2 * self.chunker.max);
            self.pending.extend_from_slice(&data[..take]);
            let mut pos = 0;
            while pos < old {
                match self.chunker.next_cut(&self.pending[pos..], false) {
                    Some(len) => {
                        chunk(&self.pending[pos..pos + len]);
                        pos += len;
                    }
                    None => break,
                }
            }
            if pos < old {
                // Undecided: `data` was short and now lies wholly in `pending`.
                self.pending.drain(..pos);
                return;
            }
            self.pending.clear();
            data = &data[pos - old..];
        }
        let used = cut_slice(&self.chunker, data, false, &mut chunk);
        self.pending.extend_from_slice(&data[used..]);
    }

    /// Ends the file: hands over the last chunks and returns the file's size.
    pub fn finish(self, mut chunk: impl FnMut(&[u8])) -> u64 {
        cut_slice(&self.chunker, &self.pending, true, &mut chunk);
        self.size
    }
}

/// Cuts one file, pushed in blocks of any size, into hashed chunks.
#[derive(Debug)]
pub struct FileChunker {
    cuts: CutStream,
    chunks: Vec<ChunkRef>,
}

impl FileChunker {
    pub fn new(profile: ChunkingProfile) -> Result<FileChunker, String> {
        Ok(FileChunker {
            cuts: CutStream::new(profile)?,
            chunks: Vec::new(),
        })
    }

    /// Feeds the next bytes of the file.
    pub fn push(&mut self, data: &[u8]) {
        let chunks = &mut self.chunks;
        self.cuts.push(data, |bytes| chunks.push(chunk_ref(bytes)));
    }

    /// Ends the file: returns the size and the chunk list.
    pub fn finish(mut self) -> (u64, Vec<ChunkRef>) {
        let chunks = &mut self.chunks;
        let size = self.cuts.finish(|bytes| chunks.push(chunk_ref(bytes)));
        (size, self.chunks)
    }
}

/// The manifest entry of one chunk's bytes.
pub fn chunk_ref(bytes: &[u8]) -> ChunkRef {
    ChunkRef {
        hash: Hash::of(bytes),
        // A chunk is at most the profile's max, which ChunkingProfile::check keeps
        // within u32.
        len: bytes.len() as u32,
    }
}

/// Hands every decided chunk from the start of `data` to `chunk`; returns how many
/// bytes they cover.
fn cut_slice(chunker: &Chunker, data: &[u8], at_end: bool, chunk: &mut impl FnMut(&[u8])) -> usize {
    let mut pos = 0;
    while let Some(len) = chunker.next_cut(&data[pos..], at_end) {
        chunk(&data[pos..pos + len]);
        pos += len;
    }
    pos
}

/// Chunks a whole in-memory file: its size, BLAKE3 and chunk list.
pub fn chunk_bytes(profile: ChunkingProfile, data: &[u8]) -> Result<(Hash, Vec<ChunkRef>), String> {
    let mut c = FileChunker::new(profile)?;
    c.push(data);
    let (_, chunks) = c.finish();
    Ok((Hash::of(data), chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn chunks_cover_the_file_within_the_profile() {
        let data = pseudo_random(3_000_000, 1);
        let p = ChunkingProfile::DEFAULT;
        let (_, chunks) = chunk_bytes(p, &data).unwrap();
        let total: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
        assert_eq!(total, data.len() as u64);
        for c in &chunks[..chunks.len() - 1] {
            assert!(c.len >= p.min && c.len <= p.max, "{}", c.len);
        }
        let mut off = 0usize;
        for c in &chunks {
            assert_eq!(Hash::of(&data[off..off + c.len as usize]), c.hash);
            off += c.len as usize;
        }
    }

    // guards: the cut points must not depend on how the caller splits its reads
    #[test]
    fn block_size_does_not_change_the_chunks() {
        let data = pseudo_random(2_000_000, 2);
        let p = ChunkingProfile::DEFAULT;
        let (_, whole) = chunk_bytes(p, &data).unwrap();
        for block in [1usize, 7, 4096, 65_536, 300_000, 1 << 20] {
            let mut c = FileChunker::new(p).unwrap();
            for piece in data.chunks(block.max(1)) {
                c.push(piece);
                if block == 1 {
                    // one byte at a time is slow; one pass over a prefix is enough
                    if c.cuts.size > 600_000 {
                        break;
                    }
                }
            }
            if block == 1 {
                let (_, prefix) = chunk_bytes(p, &data[..c.cuts.size as usize]).unwrap();
                let (_, got) = c.finish();
                assert_eq!(got, prefix);
                continue;
            }
            let (size, chunks) = c.finish();
            assert_eq!(size, data.len() as u64);
            assert_eq!(chunks, whole, "block {block}");
        }
    }

    #[test]
    fn a_local_change_keeps_most_chunks() {
        let a = pseudo_random(4_000_000, 3);
        let mut b = a.clone();
        b[2_000_000] ^= 0xff;
        let p = ChunkingProfile::DEFAULT;
        let (_, ca) = chunk_bytes(p, &a).unwrap();
        let (_, cb) = chunk_bytes(p, &b).unwrap();
        let same = cb.iter().filter(|c| ca.contains(c)).count();
        assert!(same + 2 >= cb.len(), "{same} of {}", cb.len());
    }

    #[test]
    fn empty_and_tiny_files() {
        let p = ChunkingProfile::DEFAULT;
        assert_eq!(chunk_bytes(p, &[]).unwrap().1, vec![]);
        let (_, c) = chunk_bytes(p, b"x").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].len, 1);
    }
}
