//! Rendezvous (highest-random-weight) hashing: which site member fetches a chunk from
//! the WAN. Every node computes the same ranking from the same member set, so no
//! coordination message is needed.
//!
//! A member's key is BLAKE3 of its device id once (to a `u64`); a chunk's key is the
//! first 8 bytes of its hash (already uniform). The score of a pair is a 64-bit mix of
//! the two keys: two multiplications per pair, so 10,000 schedulers × 1,000 chunks ×
//! 100 members stay cheap. Ties (2^-64) are broken by the member key.
//!
//! [`Ranking`] keeps, per chunk, the current winner over a set that changes one member
//! at a time: a join costs one score per chunk, a leave one full ranking per chunk the
//! leaver held (about 1/N of them), so responsibility is never recomputed from scratch.

use crate::hash::Hash;
use crate::keys::DeviceId;

/// Domain tag of a member key, so the key is not reusable as any other hash.
const MEMBER_TAG: &[u8] = b"shoal/rendezvous/v1";

/// A member's rendezvous key.
pub(crate) fn member_key(id: &DeviceId) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(MEMBER_TAG);
    h.update(&id.0);
    let out = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&out.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// A chunk's rendezvous key: its hash's first 8 bytes.
pub(crate) fn chunk_key(hash: &Hash) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.0[..8]);
    u64::from_le_bytes(first)
}

/// SplitMix64's finaliser: a bijective 64-bit mix with full avalanche.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The score of `member` for `chunk`; the highest wins.
pub(crate) fn score(member: u64, chunk: u64) -> u64 {
    // The chunk key goes through the mix once more so that a member key equal to a
    // chunk key (or their xor patterns) has no structure to exploit.
    mix64(member ^ mix64(chunk))
}

/// The member `members` would pick for `chunk`: the same rule every scheduler applies,
/// for drivers and tests that need to know who was first in order.
pub fn rendezvous_winner(members: &[DeviceId], chunk: &Hash) -> Option<DeviceId> {
    let c = chunk_key(chunk);
    members
        .iter()
        .map(|m| {
            let k = member_key(m);
            ((score(k, c), k), *m)
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, m)| m)
}

/// The slot of the first of `members` in rendezvous order for the chunk with key
/// `chunk` (the rule [`Ranking`] keeps per chunk, computed once).
pub(crate) fn first(members: &[Member], chunk: u64) -> Option<u32> {
    members
        .iter()
        .map(|m| ((score(m.key, chunk), m.key), m.slot))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, s)| s)
}

/// Marks "no member" in a [`Ranking`].
pub(crate) const NOBODY: u32 = u32::MAX;

/// A member of a ranking: a caller-chosen slot and its rendezvous key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub slot: u32,
    pub key: u64,
}

/// Per chunk, the winner over a changing member set.
#[derive(Debug, Clone)]
pub(crate) struct Ranking {
    chunk_keys: Vec<u64>,
    members: Vec<Member>,
    winner: Vec<u32>,
    /// `(score, member key)` of the winner; meaningless where `winner` is `NOBODY`.
    best: Vec<(u64, u64)>,
}

impl Ranking {
    pub fn new(chunk_keys: Vec<u64>) -> Ranking {
        let n = chunk_keys.len();
        Ranking {
            chunk_keys,
            members: Vec::new(),
            winner: vec![NOBODY; n],
            best: vec![(0, 0); n],
        }
    }

    /// The rendezvous key of chunk `chunk` (0 out of range).
    pub fn chunk_key(&self, chunk: usize) -> u64 {
        self.chunk_keys.get(chunk).copied().unwrap_or(0)
    }

    pub fn winner(&self, chunk: usize) -> u32 {
        self.winner.get(chunk).copied().unwrap_or(NOBODY)
    }

    pub fn contains(&self, slot: u32) -> bool {
        self.members.iter().any(|m| m.slot == slot)
    }

    /// Adds a member; `moved` gets every chunk whose winner changed, with its old one.
    pub fn join(&mut self, m: Member, moved: &mut Vec<(usize, u32)>) {
        if self.contains(m.slot) {
            return;
        }
        self.members.push(m);
        for (c, &ck) in self.chunk_keys.iter().enumerate() {
            let cand = (score(m.key, ck), m.key);
            if self.winner[c] == NOBODY || cand > self.best[c] {
                moved.push((c, self.winner[c]));
                self.winner[c] = m.slot;
                self.best[c] = cand;
            }
        }
    }

    /// Removes a member; `moved` gets every chunk whose winner changed, with its old one.
    pub fn leave(&mut self, slot: u32, moved: &mut Vec<(usize, u32)>) {
        let before = self.members.len();
        self.members.retain(|m| m.slot != slot);
        if self.members.len() == before {
            return;
        }
        for c in 0..self.winner.len() {
            if self.winner[c] != slot {
                continue;
            }
            let ck = self.chunk_keys[c];
            moved.push((c, slot));
            match first(&self.members, ck) {
                Some(s) => {
                    let key = self
                        .members
                        .iter()
                        .find(|m| m.slot == s)
                        .map_or(0, |m| m.key);
                    self.winner[c] = s;
                    self.best[c] = (score(key, ck), key);
                }
                None => self.winner[c] = NOBODY,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> DeviceId {
        crate::keys::KeyId(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    fn chunk(n: u32) -> Hash {
        Hash::of(&n.to_be_bytes())
    }

    fn ranking(chunks: u32) -> Ranking {
        Ranking::new((0..chunks).map(|c| chunk_key(&chunk(c))).collect())
    }

    fn member(slot: u32) -> Member {
        Member {
            slot,
            key: member_key(&id(slot)),
        }
    }

    #[test]
    fn a_join_moves_about_one_nth_of_the_chunks_and_only_to_the_newcomer() {
        let (chunks, members) = (10_000u32, 20u32);
        let mut r = ranking(chunks);
        let mut moved = Vec::new();
        for s in 0..members {
            r.join(member(s), &mut moved);
        }
        let before: Vec<u32> = (0..chunks as usize).map(|c| r.winner(c)).collect();
        moved.clear();
        r.join(member(members), &mut moved);
        let changed: Vec<usize> = (0..chunks as usize)
            .filter(|&c| r.winner(c) != before[c])
            .collect();
        assert_eq!(changed.len(), moved.len());
        assert!(changed.iter().all(|&c| r.winner(c) == members));
        // Expected chunks / (members + 1) = 476; allow a wide statistical margin.
        let expect = chunks as usize / (members as usize + 1);
        assert!(
            changed.len() > expect / 2 && changed.len() < expect * 2,
            "{} chunks moved, expected about {expect}",
            changed.len()
        );
    }

    #[test]
    fn a_leave_moves_only_the_leavers_chunks_and_a_rejoin_restores_them() {
        let mut r = ranking(2_000);
        let mut moved = Vec::new();
        for s in 0..10 {
            r.join(member(s), &mut moved);
        }
        let before: Vec<u32> = (0..2_000).map(|c| r.winner(c)).collect();
        moved.clear();
        r.leave(3, &mut moved);
        for (c, &was) in before.iter().enumerate() {
            if was == 3 {
                assert_ne!(r.winner(c), 3);
            } else {
                assert_eq!(r.winner(c), was, "chunk {c} moved without cause");
            }
        }
        assert_eq!(moved.len(), before.iter().filter(|&&w| w == 3).count());
        r.join(member(3), &mut moved);
        let after: Vec<u32> = (0..2_000).map(|c| r.winner(c)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn the_ranking_matches_the_public_rule_and_ignores_join_order() {
        let ids: Vec<DeviceId> = (0..7).map(id).collect();
        let mut a = ranking(500);
        let mut b = ranking(500);
        let mut moved = Vec::new();
        for s in 0..7 {
            a.join(member(s), &mut moved);
            b.join(member(6 - s), &mut moved);
        }
        for c in 0..500u32 {
            let w = rendezvous_winner(&ids, &chunk(c));
            assert_eq!(Some(ids[a.winner(c as usize) as usize]), w);
            assert_eq!(a.winner(c as usize), b.winner(c as usize));
        }
    }

    #[test]
    fn every_member_gets_a_fair_share() {
        let mut r = ranking(20_000);
        let mut moved = Vec::new();
        for s in 0..10 {
            r.join(member(s), &mut moved);
        }
        for s in 0..10 {
            let got = (0..20_000).filter(|&c| r.winner(c) == s).count();
            assert!(
                (1_600..2_400).contains(&got),
                "member {s} got {got} of 20000"
            );
        }
    }

    #[test]
    fn first_agrees_with_the_ranking() {
        let mut r = ranking(300);
        let mut moved = Vec::new();
        let members: Vec<Member> = (0..9).map(member).collect();
        for m in &members {
            r.join(*m, &mut moved);
        }
        for c in 0..300 {
            assert_eq!(first(&members, r.chunk_key(c)), Some(r.winner(c)));
        }
        assert_eq!(first(&[], 5), None);
    }

    #[test]
    fn an_empty_set_has_no_winner_and_leaving_twice_is_harmless() {
        let mut r = ranking(10);
        let mut moved = Vec::new();
        assert_eq!(r.winner(0), NOBODY);
        assert_eq!(r.winner(99), NOBODY);
        r.join(member(1), &mut moved);
        r.leave(1, &mut moved);
        r.leave(1, &mut moved);
        assert!((0..10).all(|c| r.winner(c) == NOBODY));
        assert_eq!(rendezvous_winner(&[], &chunk(0)), None);
    }
}
