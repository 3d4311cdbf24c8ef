//! What a device must do to hold a release: each distinct chunk once, written to every
//! place it occurs, from the cheapest source that has it.
//!
//! The plan is sans-IO: it knows the manifest and what the caller says it already holds
//! (chunks of the installed release, at their offsets); it does not read or fetch.
//! Sources are an enum so that LAN peers slot in beside the local copy and the WAN.

use crate::hash::Hash;
use crate::release::Release;
use std::collections::BTreeMap;

/// Where one chunk's bytes go: file index in the release, byte offset in that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub file: usize,
    pub offset: u64,
}

/// One distinct chunk of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    pub hash: Hash,
    pub len: u32,
    /// Every place it occurs in the release (a repeated chunk is fetched once).
    pub placements: Vec<Placement>,
}

/// A release's distinct chunks, in manifest order of first occurrence. The index of a
/// chunk here is its index in the device's progress bitset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub chunks: Vec<Needed>,
}

impl Plan {
    pub fn new(release: &Release) -> Plan {
        let mut index: BTreeMap<Hash, usize> = BTreeMap::new();
        let mut chunks: Vec<Needed> = Vec::new();
        for (file, entry) in release.files.iter().enumerate() {
            let mut offset = 0u64;
            for c in &entry.chunks {
                let at = Placement { file, offset };
                match index.get(&c.hash) {
                    Some(&i) => chunks[i].placements.push(at),
                    None => {
                        index.insert(c.hash, chunks.len());
                        chunks.push(Needed {
                            hash: c.hash,
                            len: c.len,
                            placements: vec![at],
                        });
                    }
                }
                offset += u64::from(c.len);
            }
        }
        Plan { chunks }
    }

    /// The bytes of all distinct chunks.
    pub fn unique_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.len)).sum()
    }
}

/// Where a device's copy of a chunk already is: a file of the installed release and the
/// offset of the chunk in it.
pub type LocalIndex = BTreeMap<Hash, (usize, u64, u32)>;

/// Indexes the chunks of the installed release by hash: `(file index, offset, len)`.
pub fn local_index(installed: &Release) -> LocalIndex {
    let mut out = LocalIndex::new();
    for (file, entry) in installed.files.iter().enumerate() {
        let mut offset = 0u64;
        for c in &entry.chunks {
            out.entry(c.hash).or_insert((file, offset, c.len));
            offset += u64::from(c.len);
        }
    }
    out
}

/// A fixed-size set of chunk indices: the device's progress on one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitset {
    bits: Vec<u8>,
    len: usize,
}

impl Bitset {
    pub fn new(len: usize) -> Bitset {
        Bitset {
            bits: vec![0; len.div_ceil(8)],
            len,
        }
    }

    /// From stored or received bytes; `None` if they do not fit `len` bits, or set a
    /// bit past `len` (which `count` and `is_full` would otherwise count).
    pub fn from_bytes(bytes: &[u8], len: usize) -> Option<Bitset> {
        canonical_bits(bytes, len).then(|| Bitset {
            bits: bytes.to_vec(),
            len,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bits[i / 8] & (1 << (i % 8)) != 0
    }

    pub fn set(&mut self, i: usize) {
        if i < self.len {
            self.bits[i / 8] |= 1 << (i % 8);
        }
    }

    pub fn count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    pub fn is_full(&self) -> bool {
        self.count() == self.len
    }
}

/// Whether `bytes` hold exactly `len` bits: `len.div_ceil(8)` bytes, with the bits of
/// the last byte past `len` clear.
pub fn canonical_bits(bytes: &[u8], len: usize) -> bool {
    bytes.len() == len.div_ceil(8)
        && (len.is_multiple_of(8) || bytes.last().is_none_or(|&b| b >> (len % 8) == 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{ChunkRef, ChunkingProfile, FileEntry, Install};

    fn h(n: u8) -> Hash {
        Hash([n; 32])
    }

    fn release(files: Vec<Vec<(u8, u32)>>) -> Release {
        Release {
            name: "r".into(),
            version: "1".into(),
            counter: 1,
            device_types: vec!["t".into()],
            created_at: 0,
            chunking: ChunkingProfile::DEFAULT,
            install: Install::File,
            files: files
                .into_iter()
                .enumerate()
                .map(|(i, cs)| FileEntry {
                    path: format!("f{i}"),
                    mode: 0o644,
                    size: cs.iter().map(|(_, l)| u64::from(*l)).sum(),
                    blake3: h(0),
                    chunks: cs
                        .into_iter()
                        .map(|(n, len)| ChunkRef { hash: h(n), len })
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn repeated_chunks_are_fetched_once_and_placed_everywhere() {
        let r = release(vec![vec![(1, 10), (2, 20), (1, 10)], vec![(2, 20), (3, 5)]]);
        let p = Plan::new(&r);
        assert_eq!(p.chunks.len(), 3);
        assert_eq!(p.unique_bytes(), 35);
        assert_eq!(
            p.chunks[0].placements,
            vec![
                Placement { file: 0, offset: 0 },
                Placement {
                    file: 0,
                    offset: 30
                }
            ]
        );
        assert_eq!(
            p.chunks[1].placements,
            vec![
                Placement {
                    file: 0,
                    offset: 10
                },
                Placement { file: 1, offset: 0 }
            ]
        );
        let local = local_index(&r);
        assert_eq!(local[&h(3)], (1, 20, 5));
    }

    #[test]
    fn bitsets_round_trip_and_count() {
        let mut b = Bitset::new(10);
        b.set(0);
        b.set(9);
        b.set(10); // out of range: ignored
        assert_eq!(b.count(), 2);
        assert!(b.get(9) && !b.get(5) && !b.get(10));
        let back = Bitset::from_bytes(b.as_bytes(), 10).unwrap();
        assert_eq!(back, b);
        assert!(Bitset::from_bytes(b.as_bytes(), 20).is_none());
        let mut full = Bitset::new(3);
        (0..3).for_each(|i| full.set(i));
        assert!(full.is_full());
    }

    // guards: a peer's have-map of 3 chunks with bits 0, 1 and the padding bit 3 set:
    // it counted 3 of 3, "full", while it lacked chunk 2
    #[test]
    fn bits_past_the_length_are_refused() {
        assert!(Bitset::from_bytes(&[0b1011], 3).is_none());
        assert!(Bitset::from_bytes(&[0b1000_0000], 7).is_none());
        assert!(Bitset::from_bytes(&[0b0111_1111], 7).unwrap().is_full());
        assert!(Bitset::from_bytes(&[0xff, 0xff], 16).unwrap().is_full());
        assert!(Bitset::from_bytes(&[], 0).unwrap().is_full());
    }
}
