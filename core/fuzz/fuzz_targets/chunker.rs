//! Chunking: `FileChunker` fed the input in fuzzer-chosen blocks must cut exactly the
//! chunks that `chunk_bytes` cuts from the whole input.
//!
//! Input: byte 0 is the number of blocks, then two bytes (little-endian, mod 4096) per
//! block length; the rest is the file. A small profile (64 / 256 / 1024) gives the
//! fuzzer many cuts per input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::chunker::{FileChunker, chunk_bytes};
use shoal_core::{ChunkingProfile, Hash};

const PROFILE: ChunkingProfile = ChunkingProfile {
    min: 64,
    avg: 256,
    max: 1024,
};

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 64).min(rest.len() / 2);
    let (lens, file) = rest.split_at(2 * n);

    let (hash, whole) = chunk_bytes(PROFILE, file).expect("the profile is valid");
    assert_eq!(hash, Hash::of(file));

    let mut c = FileChunker::new(PROFILE).expect("the profile is valid");
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
        assert!(len >= 1 && ch.len <= PROFILE.max);
        if i + 1 < whole.len() {
            assert!(ch.len >= PROFILE.min, "a short chunk before the last");
        }
        assert_eq!(ch.hash, Hash::of(&file[off..off + len]));
        off += len;
    }
    assert_eq!(off, file.len());
});
