//! A synthetic release: chunk sizes and hashes drawn from the seed.

use shoal_core::Hash;
use shoal_core::sched::ChunkInfo;

/// SplitMix64: the simulation's only source of randomness, seeded from `--seed`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A stream for one purpose, independent of how much the others drew.
    pub fn derive(seed: u64, purpose: &str, n: u64) -> Rng {
        let h = Hash::of(
            &[
                &seed.to_le_bytes()[..],
                purpose.as_bytes(),
                &n.to_le_bytes(),
            ]
            .concat(),
        );
        let mut first = [0u8; 8];
        first.copy_from_slice(&h.0[..8]);
        Rng(u64::from_le_bytes(first))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`, from 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const KIB: u64 = 1024;

/// Chunks of about `image_bytes` in all. Sizes follow FastCDC's default profile
/// loosely: 16 KiB plus two uniform draws of up to 48 KiB (a triangle around
/// 64 KiB), and one chunk in 16 uniform in 112..256 KiB for the long tail; the last
/// chunk takes what is left.
pub fn chunks(seed: u64, image_bytes: u64) -> Vec<ChunkInfo> {
    let mut rng = Rng::derive(seed, "chunks", 0);
    let mut out = Vec::new();
    let mut total = 0u64;
    while total < image_bytes {
        let len = if rng.below(16) == 0 {
            112 * KIB + rng.below(144 * KIB + 1)
        } else {
            16 * KIB + rng.below(48 * KIB + 1) + rng.below(48 * KIB + 1)
        };
        let len = len.min(image_bytes - total);
        let hash = Hash::of(&[&seed.to_le_bytes()[..], &(out.len() as u64).to_le_bytes()].concat());
        out.push(ChunkInfo {
            hash,
            len: len as u32,
        });
        total += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_add_up_and_sit_in_the_profile() {
        let c = chunks(9, 64 << 20);
        let total: u64 = c.iter().map(|c| u64::from(c.len)).sum();
        assert_eq!(total, 64 << 20);
        assert!(
            c[..c.len() - 1]
                .iter()
                .all(|c| (16 * 1024..=256 * 1024).contains(&c.len))
        );
        let mean = total / c.len() as u64;
        assert!((60 * 1024..80 * 1024).contains(&mean), "mean {mean}");
        assert_eq!(c, chunks(9, 64 << 20));
        assert_ne!(c, chunks(10, 64 << 20));
    }
}
