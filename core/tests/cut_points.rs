//! The chunker's cut points against the `fastcdc` crate's own v2020 chunkers
//! (`FastCDC` over a slice, `StreamCDC` over a reader), on random inputs of random
//! lengths, under random profiles, pushed in random blocks. The release format pins
//! these cut points, so the tile scanner must never move one.

use fastcdc::v2020::{FastCDC, StreamCDC};
use proptest::prelude::*;
use shoal_core::ChunkingProfile;
use shoal_core::chunker::{CutStream, chunk_bytes};

/// Inputs that cut often and in every way: random bytes, bytes from a small alphabet
/// (hashes pass masks more often), long runs of one byte (only `max` cuts them), and
/// mixes of these.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40_000),
        (prop::collection::vec(0u8..4, 0..20_000)),
        (any::<u8>(), 0usize..30_000).prop_map(|(b, n)| vec![b; n]),
    ];
    prop::collection::vec(piece, 1..6).prop_map(|v| v.concat())
}

/// Any profile the release accepts, mostly small so that inputs hold many chunks.
fn profile() -> impl Strategy<Value = ChunkingProfile> {
    // halves, so that sizes are even
    prop_oneof![
        Just((8192u32, 32768u32, 131072u32)),
        (32u32..=1024, 128u32..=4096, 512u32..=16384),
        (32u32..=16384, 128u32..=65536, 512u32..=262144),
    ]
    .prop_filter_map("outside the accepted bounds", |(min, avg, max)| {
        let (min, avg, max) = (min * 2, avg * 2, max * 2);
        let p = ChunkingProfile {
            min,
            avg: avg.max(min),
            max: max.max(avg.max(min)),
        };
        p.check().ok().map(|_| p)
    })
}

fn reference(p: ChunkingProfile, data: &[u8]) -> Vec<usize> {
    FastCDC::new(data, p.min as usize, p.avg as usize, p.max as usize)
        .map(|c| c.length)
        .collect()
}

fn streamed(p: ChunkingProfile, data: &[u8], blocks: &[usize]) -> Vec<usize> {
    let mut c = CutStream::new(p).unwrap();
    let mut lens = Vec::new();
    let mut rest = data;
    let mut sizes = blocks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).min(rest.len());
        c.push(&rest[..n], |chunk| lens.push(chunk.len()));
        rest = &rest[n..];
    }
    let size = c.finish(|chunk| lens.push(chunk.len()));
    assert_eq!(size, data.len() as u64);
    lens
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn cuts_match_fastcdc(
        p in profile(),
        data in input(),
        blocks in prop::collection::vec(prop_oneof![1usize..200, 1usize..70_000], 1..8),
    ) {
        let want = reference(p, &data);
        let (_, whole) = chunk_bytes(p, &data).unwrap();
        let whole: Vec<usize> = whole.iter().map(|c| c.len as usize).collect();
        prop_assert_eq!(&whole, &want, "in one piece");
        prop_assert_eq!(&streamed(p, &data, &blocks), &want, "in blocks {:?}", blocks);
        let from_reader: Vec<usize> =
            StreamCDC::new(&data[..], p.min as usize, p.avg as usize, p.max as usize).map(|c| c.unwrap().length).collect();
        prop_assert_eq!(&from_reader, &want);
    }
}

// guards: a block boundary at every offset around a cut, its minimum size, the end of
// the 63 bytes hashed per chunk, and the lanes' warm-up
#[test]
fn a_block_boundary_anywhere_keeps_the_cuts() {
    let mut x = 0x1234_5678_9abc_def1u64;
    let data: Vec<u8> = (0..400_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as u8 & 7
        })
        .collect();
    let p = ChunkingProfile {
        min: 2048,
        avg: 8192,
        max: 32768,
    };
    let want = reference(p, &data);
    let first = want[0];
    let mut points: Vec<usize> = Vec::new();
    for at in [first, first + p.min as usize, first + p.min as usize + 63] {
        points.extend(at.saturating_sub(80)..at + 80);
    }
    for split in points {
        assert_eq!(
            streamed(p, &data, &[split, 1 << 20]),
            want,
            "split at {split}"
        );
    }
}
