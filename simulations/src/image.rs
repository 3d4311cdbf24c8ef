//! The images the demo and the site ship: deterministic pseudo-random bytes (so every
//! run with a seed shows the same figures), and an update that changes a share of them
//! at scattered places.

/// `bytes` pseudo-random bytes from `seed` (xorshift64).
pub fn image(bytes: u64, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(bytes as usize + 8);
    while (out.len() as u64) < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(bytes as usize);
    out
}

/// Changes `pct` percent of `data` in `places` runs spread evenly over it (a patch
/// that touches a few modules of a firmware image); returns the bytes changed.
pub fn change_scattered(data: &mut [u8], pct: u64, places: usize) -> u64 {
    if data.is_empty() || pct == 0 {
        return 0;
    }
    let places = places.clamp(1, data.len());
    let run = (data.len() as u64 * pct / 100 / places as u64).max(1) as usize;
    let stride = data.len() / places;
    let mut changed = 0;
    for i in 0..places {
        let at = i * stride + stride / 2;
        let end = (at + run).min(data.len());
        for b in &mut data[at..end] {
            *b = b.wrapping_add(1);
        }
        changed += (end - at) as u64;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        assert_eq!(image(1000, 1), image(1000, 1));
        assert_ne!(image(1000, 1), image(1000, 2));
        assert_eq!(image(1001, 3).len(), 1001);
    }

    #[test]
    fn a_change_touches_about_the_share_asked_for() {
        let before = image(1 << 20, 7);
        let mut after = before.clone();
        let changed = change_scattered(&mut after, 10, 8);
        let differ = before.iter().zip(&after).filter(|(a, b)| a != b).count() as u64;
        assert_eq!(differ, changed);
        assert!(
            (changed as f64 - 0.1 * (1 << 20) as f64).abs() < 16.0,
            "{changed}"
        );
        // scattered: the first and last eighths are both touched
        assert_ne!(before[..1 << 17], after[..1 << 17]);
        assert_ne!(before[7 << 17..], after[7 << 17..]);
    }
}
