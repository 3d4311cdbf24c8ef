//! The cut points of FastCDC v2020 as the release format pins them, checked in as a
//! list of chunk lengths (`snapshots/cuts.txt`) for a fixed pseudo-random input under
//! several profiles. A scanner change that moves a single cut fails this test: devices
//! and seeders must agree on chunk boundaries byte for byte, or deltas stop matching.
//!
//! The input mixes random bytes with a long run of zeros (which only the max length
//! cuts) and a short odd tail. After an *intended* change of the cut points (which
//! would be a new format version), regenerate with
//! `SHOAL_BLESS=1 cargo test -p shoal-core --test cut_snapshot`.

use shoal_core::ChunkingProfile;
use shoal_core::chunker::chunk_bytes;

const SNAPSHOT: &str = "tests/snapshots/cuts.txt";

fn input() -> Vec<u8> {
    let mut x: u64 = 0x5eed_c0de_0000_0001;
    let mut data: Vec<u8> = (0..6_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    data[2_000_000..2_700_000].fill(0);
    data.truncate(6_000_000 - 77);
    data
}

fn profiles() -> [ChunkingProfile; 4] {
    let p = |min, avg, max| ChunkingProfile { min, avg, max };
    [
        ChunkingProfile::DEFAULT,
        p(64, 256, 1024),
        p(4096, 16384, 65536),
        p(65536, 262144, 1048576),
    ]
}

fn render() -> String {
    let data = input();
    let mut s = String::from(
        "# Chunk lengths cut by FastCDC v2020 (normalization level 1) from the input in\n\
         # core/tests/cut_snapshot.rs, one profile per line: min/avg/max: lengths.\n",
    );
    for p in profiles() {
        // small profiles on a slice that still reaches into the run of zeros
        let data = if p.avg < 4096 {
            &data[1_950_000..2_050_001]
        } else {
            &data[..]
        };
        let (_, chunks) = chunk_bytes(p, data).unwrap();
        let lens: Vec<String> = chunks.iter().map(|c| c.len.to_string()).collect();
        s.push_str(&format!(
            "{}/{}/{}: {}\n",
            p.min,
            p.avg,
            p.max,
            lens.join(" ")
        ));
    }
    s
}

#[test]
fn cut_points_match_the_checked_in_snapshot() {
    let now = render();
    if std::env::var_os("SHOAL_BLESS").is_some() {
        std::fs::write(SNAPSHOT, &now).unwrap();
    }
    let checked_in =
        std::fs::read_to_string(SNAPSHOT).expect("core/tests/snapshots/cuts.txt is checked in");
    for (want, got) in checked_in.lines().zip(now.lines()) {
        assert_eq!(
            got, want,
            "the cut points changed: the release format pins them"
        );
    }
    assert_eq!(checked_in.lines().count(), now.lines().count());
}
