//! Content-defined chunking: FastCDC v2020 with the profile pinned in the release, fed
//! by the caller a block at a time, so memory stays at one block plus one maximal chunk
//! whatever the file's size.
//!
//! The cut after a chunk start depends only on the bytes from that start up to `max`
//! further on, so a cut is final once `max` bytes are buffered (or the file has ended).
//!
//! The cut points are FastCDC v2020's (`fastcdc::v2020::cut`, normalization level 1),
//! byte for byte: from a chunk start `s`, the first position `i` in `s+min..s+lim`
//! whose gear hash `h` (hashing from `s+min`) has `h & mask == 0`, with `mask_s` for
//! `i - s < avg` and `mask_l` after, cutting the chunk to length `i - s`; `lim` is
//! `min(max, bytes left)` rounded down to even (FastCDC tests positions in pairs), and
//! without such a position the chunk is `min(max, bytes left)` long. Nothing before
//! `s+min` is hashed for the chunk. The first 63 positions after `s+min`, whose hash
//! does not yet span a full window, are hashed here; from there on the window hash is
//! the gear hash, and [`crate::gear`] scans tiles of it until the cut is found. A cut
//! found is final whatever follows, so a chunk is decided as soon as its cut is among
//! the bytes pushed; a chunk still open when a block ends keeps how far it was
//! scanned.

use crate::gear::{self, Candidate, GEAR, WINDOW};
use crate::hash::Hash;
use crate::release::{ChunkRef, ChunkingProfile};
use fastcdc::v2020::{Normalization, select_masks};

/// The cut rule of one profile. Stateless.
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

    /// Keeps every window hash that could be a cut under either mask.
    fn filter(&self) -> u64 {
        self.mask_s & self.mask_l
    }

    fn mask(&self, offset: usize) -> u64 {
        if offset < self.avg {
            self.mask_s
        } else {
            self.mask_l
        }
    }

    /// The length of the chunk that starts with `data`, if it is decided: its cut is
    /// among `data`'s bytes, or `data` holds a maximal chunk, or `at_end` says no more
    /// bytes follow. `scanned` is how far into `data` earlier calls for this chunk
    /// found no cut (0 for a new chunk); it is advanced when the chunk stays open.
    fn next_cut(
        &self,
        data: &[u8],
        at_end: bool,
        scanned: &mut usize,
        found: &mut Vec<Candidate>,
    ) -> Option<usize> {
        if data.is_empty() {
            return None;
        }
        let known_len = at_end || data.len() >= self.max;
        let len = data.len().min(self.max);
        if known_len && len <= self.min {
            return Some(len);
        }
        // Positions below `bound` may be cut. FastCDC tests positions in pairs, below
        // an even limit: if more bytes may follow, the limit is at least this one.
        let bound = len & !1;
        // Until the hash spans a full window it differs from the scanned window hash.
        let full = self.min + WINDOW - 1;
        if *scanned < full {
            if !known_len && bound < full {
                return None;
            }
            let mut h = 0u64;
            for (i, &b) in data[self.min..full.min(bound)].iter().enumerate() {
                h = (h << 1).wrapping_add(GEAR[usize::from(b)]);
                let offset = self.min + i;
                if h & self.mask(offset) == 0 {
                    return Some(offset);
                }
            }
            if bound <= full {
                return Some(len);
            }
            *scanned = full;
        }
        let is_cut = |offset: usize, hash: u64| hash & self.mask(offset) == 0;
        match gear::scan_tiles(data, *scanned, bound, self.filter(), found, is_cut) {
            Ok(offset) => return Some(offset),
            Err(end) => *scanned = end,
        }
        if !known_len {
            return None;
        }
        Some(gear::scan_tail(data, *scanned, bound, self.filter(), is_cut).unwrap_or(len))
    }
}

/// How many bytes of a pushed block an open chunk borrows at a time: about the
/// distance to its cut, so that little is copied.
const LEND: usize = 32 * 1024;

/// Finds the cuts of one file pushed in blocks of any size. Each decided chunk is handed
/// to a callback as a slice, borrowed from the pushed block where it lies wholly inside
/// one, so most bytes are never copied.
#[derive(Debug)]
pub struct CutStream {
    chunker: Chunker,
    /// Bytes after the last decided cut: fewer than `max` between calls.
    pending: Vec<u8>,
    /// The file offset of `pending[0]`.
    decided: u64,
    size: u64,
    /// How far the open chunk (at `decided`) was scanned without finding its cut.
    scanned: usize,
    found: Vec<Candidate>,
}

impl CutStream {
    pub fn new(profile: ChunkingProfile) -> Result<CutStream, String> {
        let chunker = Chunker::new(profile)?;
        Ok(CutStream {
            chunker,
            pending: Vec::with_capacity(3 * chunker.max_len()),
            decided: 0,
            size: 0,
            scanned: 0,
            found: Vec::new(),
        })
    }

    /// Feeds the next bytes of the file; `chunk` is called with every chunk decided.
    pub fn push(&mut self, data: &[u8], mut chunk: impl FnMut(&[u8])) {
        self.size += data.len() as u64;
        let mut rest = data;
        let mut lent = 0;
        // `pending` is the start of an open chunk, shorter than `max`: lend it the
        // bytes of `data` a step at a time until a cut lands among those lent; from
        // there on, cut straight from `data`.
        while !self.pending.is_empty() {
            let cut =
                self.chunker
                    .next_cut(&self.pending, false, &mut self.scanned, &mut self.found);
            let Some(len) = cut else {
                if rest.is_empty() {
                    return;
                }
                let step = rest.len().min(LEND);
                self.pending.extend_from_slice(&rest[..step]);
                rest = &rest[step..];
                lent += step;
                continue;
            };
            chunk(&self.pending[..len]);
            self.decided += len as u64;
            self.scanned = 0;
            let after = self.pending.len() - len;
            if after <= lent {
                rest = &data[lent - after..];
                self.pending.clear();
            } else {
                self.pending.drain(..len);
            }
        }
        let used = self.cut_slice(rest, false, &mut chunk);
        self.pending.extend_from_slice(&rest[used..]);
    }

    /// Ends the file: hands over the last chunks and returns the file's size.
    pub fn finish(mut self, mut chunk: impl FnMut(&[u8])) -> u64 {
        let pending = std::mem::take(&mut self.pending);
        self.cut_slice(&pending, true, &mut chunk);
        self.size
    }

    /// Hands every decided chunk from the start of `data` (at file offset
    /// `self.decided`) to `chunk`; returns how many bytes they cover.
    fn cut_slice(&mut self, data: &[u8], at_end: bool, chunk: &mut impl FnMut(&[u8])) -> usize {
        let mut pos = 0;
        while let Some(len) =
            self.chunker
                .next_cut(&data[pos..], at_end, &mut self.scanned, &mut self.found)
        {
            chunk(&data[pos..pos + len]);
            pos += len;
            self.decided += len as u64;
            self.scanned = 0;
        }
        pos
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
