//! This node's WAN queue: the missing chunks it is responsible for and is not fetching
//! from the WAN, and among them the ones no peer holds, which are the only ones it may
//! fetch (a chunk some peer holds comes over the LAN).
//!
//! Picking is the hot path (every poll), so the held ones are kept out of `ready`
//! rather than skipped: a node whose peers hold most of its share would otherwise scan
//! that share on every poll. A chunk leaves `ready` when its first holder appears;
//! holders only disappear wholesale (a have-map forgotten), and then `ready` is rebuilt.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Default)]
pub(crate) struct WanQueue {
    all: BTreeSet<usize>,
    /// The members of `all` that no peer holds.
    ready: BTreeSet<usize>,
}

impl WanQueue {
    /// Queues `index`; `held` says whether some peer holds it.
    pub fn insert(&mut self, index: usize, held: bool) {
        self.all.insert(index);
        if !held {
            self.ready.insert(index);
        }
    }

    pub fn remove(&mut self, index: usize) {
        if self.all.remove(&index) {
            self.ready.remove(&index);
        }
    }

    /// A peer now holds `index`.
    pub fn held(&mut self, index: usize) {
        self.ready.remove(&index);
    }

    /// Holder counts fell: recomputes `ready` with `held`.
    pub fn rebuild(&mut self, held: impl Fn(usize) -> bool) {
        self.ready = self.all.iter().copied().filter(|&i| !held(i)).collect();
    }

    /// The lowest queued chunk no peer holds for which `ok` holds.
    pub fn first_ready(&self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        self.ready.iter().copied().find(|&i| ok(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_chunk_is_not_ready_until_its_holders_are_forgotten() {
        let mut q = WanQueue::default();
        q.insert(3, false);
        q.insert(1, true);
        q.insert(7, false);
        assert_eq!(q.first_ready(|_| true), Some(3));
        q.held(3);
        assert_eq!(q.first_ready(|_| true), Some(7));
        assert_eq!(q.first_ready(|i| i != 7), None);
        q.rebuild(|i| i == 7);
        assert_eq!(q.first_ready(|_| true), Some(1));
        q.remove(1);
        assert_eq!(q.first_ready(|_| true), Some(3));
    }
}
