//! Who holds what: every peer's have-map as one chunk-major bit matrix, plus the
//! holder count per chunk.
//!
//! Chunk-major because both hot questions are about one chunk: "does this peer hold
//! it yet" (every announcement) and "which peers hold it" (every pick, usually a
//! rare chunk with few holders). A row is `ceil(peer slots / 64)` words, so the whole
//! matrix of a 1,000-chunk release with 100 peers is 16 KB and stays in cache.

#[derive(Debug, Clone)]
pub(crate) struct Holders {
    chunks: usize,
    /// Words per chunk row.
    words: usize,
    bits: Vec<u64>,
    count: Vec<u32>,
}

impl Holders {
    pub fn new(chunks: usize) -> Holders {
        Holders {
            chunks,
            words: 1,
            bits: vec![0; chunks],
            count: vec![0; chunks],
        }
    }

    /// Makes room for peer slot `slot`.
    pub fn fit(&mut self, slot: u32) {
        let need = slot as usize / 64 + 1;
        if need <= self.words {
            return;
        }
        let words = need.max(self.words * 2);
        let mut bits = vec![0; self.chunks * words];
        for c in 0..self.chunks {
            bits[c * words..c * words + self.words]
                .copy_from_slice(&self.bits[c * self.words..(c + 1) * self.words]);
        }
        self.bits = bits;
        self.words = words;
    }

    fn at(&self, slot: u32, index: usize) -> Option<(usize, u64)> {
        let w = slot as usize / 64;
        (index < self.chunks && w < self.words)
            .then(|| (index * self.words + w, 1u64 << (slot % 64)))
    }

    #[cfg(test)]
    pub fn has(&self, slot: u32, index: usize) -> bool {
        self.at(slot, index)
            .is_some_and(|(at, bit)| self.bits[at] & bit != 0)
    }

    /// Records that `slot` holds `index`; false if it was known (or out of range).
    pub fn set(&mut self, slot: u32, index: usize) -> bool {
        let Some((at, bit)) = self.at(slot, index) else {
            return false;
        };
        if self.bits[at] & bit != 0 {
            return false;
        }
        self.bits[at] |= bit;
        self.count[index] += 1;
        true
    }

    /// Forgets everything `slot` holds.
    pub fn clear(&mut self, slot: u32) {
        let w = slot as usize / 64;
        if w >= self.words {
            return;
        }
        let bit = 1u64 << (slot % 64);
        for c in 0..self.chunks {
            let word = &mut self.bits[c * self.words + w];
            if *word & bit != 0 {
                *word &= !bit;
                self.count[c] -= 1;
            }
        }
    }

    pub fn count(&self, index: usize) -> u32 {
        self.count.get(index).copied().unwrap_or(0)
    }

    /// The slots holding `index`, ascending.
    pub fn of(&self, index: usize) -> impl Iterator<Item = u32> + '_ {
        let row: &[u64] = if index < self.chunks {
            &self.bits[index * self.words..(index + 1) * self.words]
        } else {
            &[]
        };
        row.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let b = rest.trailing_zeros();
                rest &= rest - 1;
                Some(w as u32 * 64 + b)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_count_list_clear_and_grow() {
        let mut h = Holders::new(5);
        h.fit(3);
        assert!(h.set(3, 2));
        assert!(!h.set(3, 2));
        assert!(!h.set(3, 9));
        h.fit(130); // grows the rows; what was there stays
        assert!(h.has(3, 2));
        assert!(h.set(130, 2));
        assert!(h.set(64, 2));
        assert!(h.set(130, 4));
        assert_eq!(h.count(2), 3);
        assert_eq!(h.of(2).collect::<Vec<_>>(), vec![3, 64, 130]);
        h.clear(130);
        assert_eq!(h.count(2), 2);
        assert_eq!(h.count(4), 0);
        assert!(!h.has(130, 4));
        assert!(!h.has(999, 0));
        assert_eq!(h.of(77).count(), 0);
        h.clear(999);
    }
}
