//! Chunking: `FileChunker` fed the input in fuzzer-chosen blocks must cut exactly the
//! chunks that `chunk_bytes` cuts from the whole input, and both exactly the chunks of
//! the fastcdc crate's own v2020 chunker (the format pins its cut points).
//!
//! Input: byte 0 is the number of blocks (mod 64) and, in its top bit, the profile;
//! then two bytes (little-endian, mod 4096) per block length; the rest is the file. A
//! small profile (64 / 256 / 1024) gives the fuzzer many cuts per input; a larger one
//! (64 / 4096 / 65536) lets chunks run past the scanner's tiles (8 KiB), where the
//! small one only reaches its tail path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::chunker::{FileChunker, chunk_bytes};
use shoal_core::{ChunkingProfile, Hash};

const SMALL: ChunkingProfile = ChunkingProfile {
    min: 64,
    avg: 256,
    max: 1024,
};
const TILED: ChunkingProfile = ChunkingProfile {
    min: 64,
    avg: 4096,
    max: 65536,
};

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let profile = if n & 0x80 == 0 { SMALL } else { TILED };
    let n = usize::from(n % 64).min(rest.len() / 2);
    let (lens, file) = rest.split_at(2 * n);

    let (hash, whole) = chunk_bytes(profile, file).expect("the profile is valid");
    assert_eq!(hash, Hash::of(file));
    let reference: Vec<usize> = fastcdc::v2020::FastCDC::new(
        file,
        profile.min as usize,
        profile.avg as usize,
        profile.max as usize,
    )
    .map(|c| c.length)
    .collect();
    let cut: Vec<usize> = whole.iter().map(|c| c.len as usize).collect();
    assert_eq!(cut, reference, "cut points differ from fastcdc's v2020");

    let mut c = FileChunker::new(profile).expect("the profile is valid");
    let mut left = file;
    for l in lens.chunks_exact(2) {
        let len = usize::from(u16::from_le_bytes([l[0], l[1]]) % 4096).min(left.len());
        let (block, tail) = left.split_at(len);
        c.push(block);
        left = tail;
    }
    c.push(left);
    let (size, chunks) = c.finish();
    assert_eq!(size, file.len() as u64);
    assert_eq!(chunks, whole, "the blocks changed the cuts");

    let mut off = 0usize;
    for (i, ch) in whole.iter().enumerate() {
        let len = ch.len as usize;
        assert!(len >= 1 && ch.len <= profile.max);
        if i + 1 < whole.len() {
            assert!(ch.len >= profile.min, "a short chunk before the last");
        }
        assert_eq!(ch.hash, Hash::of(&file[off..off + len]));
        off += len;
    }
    assert_eq!(off, file.len());
});
