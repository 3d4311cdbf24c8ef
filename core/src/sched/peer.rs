//! What a scheduler knows of one peer: its have-map, its state, its load and speed.

use super::Time;
use crate::keys::DeviceId;
use std::cmp::Ordering;

/// Before the first completed request a peer is assumed this fast (1 Gbit/s), so new
/// peers get tried; the estimate then follows what they deliver.
pub(crate) const OPTIMISTIC_BYTES_PER_S: u64 = 125_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerState {
    /// Sent a have-map; usable.
    Active,
    /// Disconnected or left; may come back with a new have-map.
    Gone,
    /// Dropped by us (false claims, too slow); may come back with a new have-map.
    Dropped,
    /// Sent a bad chunk: never used again for this release.
    Banned,
}

#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub id: DeviceId,
    pub key: u64,
    pub state: PeerState,
    /// Chunks its have-map holds (the map itself is in `Holders`); 0 unless `Active`.
    pub have_count: usize,
    pub wan: bool,
    /// Announced nothing new for `takeover_after` while lacking chunks.
    pub silent: bool,
    /// Since when its silence clock runs: its last new announcement, or the last time
    /// the member set shrank (which may have handed it new work).
    pub heard: Time,
    /// Ever counted among the WAN-capable nodes that rank first for a chunk.
    pub known: bool,
    pub in_flight: usize,
    pub strikes: u32,
    /// Chunks it advertised and then did not serve, over the release (not reset when
    /// it comes back).
    pub false_claims: u32,
    /// Estimated bytes per second it delivers to us.
    pub speed: u64,
}

impl Peer {
    pub fn new(id: DeviceId, key: u64) -> Peer {
        Peer {
            id,
            key,
            state: PeerState::Gone,
            have_count: 0,
            wan: false,
            silent: false,
            heard: Time(0),
            known: false,
            in_flight: 0,
            strikes: 0,
            false_claims: 0,
            speed: OPTIMISTIC_BYTES_PER_S,
        }
    }

    /// Whether it should be in the WAN member set.
    pub fn is_member(&self) -> bool {
        self.state == PeerState::Active && self.wan && !self.silent
    }

    /// Whether it can go silent (a member that still lacks some of the `chunks`).
    pub fn can_go_silent(&self, chunks: usize) -> bool {
        self.is_member() && self.have_count < chunks
    }

    /// Folds in a completed request of `len` bytes issued `elapsed` ago while `sharing`
    /// requests (this one included) were in flight to the peer. Requests to one peer
    /// share its pipe, so one request's rate times the number sharing estimates the
    /// pipe. Smoothed over about four samples.
    pub fn sample_speed(&mut self, len: u32, elapsed_us: u64, sharing: usize) {
        let rate =
            u128::from(len) * 1_000_000 * sharing.max(1) as u128 / u128::from(elapsed_us.max(1));
        let rate = rate.min(u128::from(u64::MAX / 8)) as u64;
        self.speed = (self.speed / 4 * 3 + rate / 4).max(1);
    }

    /// Orders peers by expected wait for one more request, `(in_flight + 1) / speed`,
    /// lowest first; ties by device id so every run picks the same one.
    pub fn cheaper(&self, other: &Peer) -> Ordering {
        let a = (self.in_flight as u128 + 1) * u128::from(other.speed);
        let b = (other.in_flight as u128 + 1) * u128::from(self.speed);
        a.cmp(&b).then_with(|| self.id.cmp(&other.id))
    }
}

/// Finds a peer's slot by device id: a sorted list of (first 8 bytes of the id, slot),
/// 12 bytes a peer, so lookups (one per announcement, the hottest input) stay in
/// cache. Ids sharing a prefix (hand-made ones) are told apart by the full id.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerIndex {
    keys: Vec<(u64, u32)>,
}

fn prefix(id: &DeviceId) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&id.0[..8]);
    u64::from_le_bytes(w)
}

impl PeerIndex {
    pub fn get(&self, id: &DeviceId, peers: &[Peer]) -> Option<u32> {
        let k = prefix(id);
        let from = self.keys.partition_point(|&(p, _)| p < k);
        self.keys[from..]
            .iter()
            .take_while(|&&(p, _)| p == k)
            .map(|&(_, s)| s)
            .find(|&s| peers.get(s as usize).is_some_and(|p| p.id == *id))
    }

    pub fn insert(&mut self, id: &DeviceId, slot: u32) {
        let k = prefix(id);
        let at = self.keys.partition_point(|&(p, _)| p <= k);
        self.keys.insert(at, (k, slot));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> Peer {
        Peer::new(crate::keys::KeyId([n; 32]), 0)
    }

    #[test]
    fn the_less_loaded_or_faster_peer_is_cheaper() {
        let (mut a, mut b) = (peer(1), peer(2));
        assert_eq!(a.cheaper(&b), Ordering::Less, "tie goes to the lower id");
        a.in_flight = 1;
        assert_eq!(a.cheaper(&b), Ordering::Greater);
        a.speed = b.speed * 3;
        // (1+1)/3s < (0+1)/s
        assert_eq!(a.cheaper(&b), Ordering::Less);
        b.in_flight = 5;
        assert_eq!(b.cheaper(&a), Ordering::Greater);
    }

    #[test]
    fn the_index_finds_peers_even_with_a_shared_prefix() {
        let mut a = [7u8; 32];
        let mut b = [7u8; 32];
        a[31] = 1;
        b[31] = 2;
        let (a, b, c) = (
            crate::keys::KeyId(a),
            crate::keys::KeyId(b),
            crate::keys::KeyId([1; 32]),
        );
        let peers = vec![Peer::new(a, 0), Peer::new(b, 0), Peer::new(c, 0)];
        let mut ix = PeerIndex::default();
        for (s, p) in peers.iter().enumerate() {
            ix.insert(&p.id, s as u32);
        }
        assert_eq!(ix.get(&a, &peers), Some(0));
        assert_eq!(ix.get(&b, &peers), Some(1));
        assert_eq!(ix.get(&c, &peers), Some(2));
        assert_eq!(ix.get(&crate::keys::KeyId([9; 32]), &peers), None);
    }

    #[test]
    fn the_speed_estimate_moves_toward_what_the_peer_delivers() {
        let mut p = peer(1);
        for _ in 0..40 {
            // 64 KiB in 100 ms with 2 sharing: 1,310,720 B/s.
            p.sample_speed(65_536, 100_000, 2);
        }
        assert!((1_250_000..1_400_000).contains(&p.speed), "{}", p.speed);
        p.sample_speed(u32::MAX, 0, usize::MAX);
        assert!(p.speed > 0);
    }
}
