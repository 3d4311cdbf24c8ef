//! The LAN pool: missing chunks some peer holds, rarest first.
//!
//! A min-heap of `(holders, tie, index)` kept **lazily**: an announcement only bumps a
//! counter (it is the hottest input: every chunk landing anywhere on the site reaches
//! every node), and an entry whose count went up since it was pushed is re-pushed when
//! it reaches the top. Counts only fall when a have-map is forgotten (a peer gone,
//! dropped, banned or replaced), which is rare; the caller rebuilds the heap then.
//!
//! The tie-breaker is a per-node hash of the chunk, so nodes that see the same counts
//! still start on different chunks and the swarm holds more distinct chunks sooner.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Clone)]
pub(crate) struct Rarity {
    heap: BinaryHeap<Reverse<(u32, u64, u32)>>,
    queued: Vec<bool>,
    tie: Vec<u64>,
}

impl Rarity {
    pub fn new(tie: Vec<u64>) -> Rarity {
        Rarity {
            heap: BinaryHeap::new(),
            queued: vec![false; tie.len()],
            tie,
        }
    }

    /// Queues `index` with `holders` unless it is queued already.
    pub fn push(&mut self, index: usize, holders: u32) {
        let (Some(q), Some(&tie)) = (self.queued.get_mut(index), self.tie.get(index)) else {
            return;
        };
        if !*q {
            *q = true;
            self.heap.push(Reverse((holders, tie, index as u32)));
        }
    }

    /// The entry with the fewest holders (as pushed), then the lowest tie.
    pub fn pop(&mut self) -> Option<(usize, u32)> {
        let Reverse((holders, _, index)) = self.heap.pop()?;
        let index = index as usize;
        if let Some(q) = self.queued.get_mut(index) {
            *q = false;
        }
        Some((index, holders))
    }

    /// Empties the pool; the caller pushes back what belongs in it.
    pub fn clear(&mut self) {
        self.heap.clear();
        self.queued.iter_mut().for_each(|q| *q = false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_fewest_holders_first_then_by_tie_and_never_twice() {
        let mut r = Rarity::new(vec![5, 1, 9, 3]);
        r.push(0, 2);
        r.push(1, 2);
        r.push(2, 1);
        r.push(3, 7);
        r.push(3, 1);
        assert_eq!(r.pop(), Some((2, 1)));
        assert_eq!(r.pop(), Some((1, 2)));
        assert_eq!(r.pop(), Some((0, 2)));
        assert_eq!(r.pop(), Some((3, 7)));
        assert_eq!(r.pop(), None);
        r.push(99, 1);
        assert_eq!(r.pop(), None);
    }
}
