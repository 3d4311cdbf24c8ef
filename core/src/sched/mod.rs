//! The transfer scheduler: which chunk of a release this node fetches next, and from
//! where. Sans-IO, after quinn-proto: inputs are `handle_*(now, ..)`, outputs are drained
//! with [`Scheduler::poll_action`], and [`Scheduler::poll_timeout`] is the one earliest
//! deadline. The node's agent, the scale simulation and the tests drive the same code.
//!
//! (Skeleton: the API is fixed; the bodies and the full spec come with the scheduler.)

use crate::hash::Hash;
use crate::keys::DeviceId;
use crate::plan::Bitset;
use std::time::Duration;

/// A point on the driver's clock, in microseconds since an origin the driver picks.
/// Core never reads a clock; a node converts from `std::time::Instant`, a simulation
/// uses its virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    pub fn from_micros(us: u64) -> Time {
        Time(us)
    }

    pub fn as_micros(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Time {
        Time(
            self.0
                .saturating_add(d.as_micros().min(u128::from(u64::MAX)) as u64),
        )
    }

    /// `self - earlier`, zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// One distinct chunk of the release, as the scheduler sees it (index = plan index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    pub hash: Hash,
    pub len: u32,
}

/// Tunables. The defaults suit a node on a real LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// LAN requests in flight to one peer.
    pub lan_per_peer: usize,
    /// LAN requests in flight in all.
    pub lan_total: usize,
    /// WAN chunk requests in flight.
    pub wan_in_flight: usize,
    /// A responsible member that announced no new chunk for this long, while it still
    /// lacks some, is silent: the next member in rendezvous order takes over.
    pub takeover_after: Duration,
    /// A LAN request slower than this many bytes per second (after the grace) fails.
    pub floor_bytes_per_s: u64,
    /// Added to every LAN request's deadline.
    pub request_grace: Duration,
    /// Failed (timed-out or refused) LAN requests before a peer is dropped.
    pub max_strikes: u32,
    /// In the endgame, how many extra peers a chunk in flight is also asked from.
    pub endgame_duplicates: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            lan_per_peer: 8,
            lan_total: 64,
            wan_in_flight: 8,
            takeover_after: Duration::from_secs(10),
            floor_bytes_per_s: 64 * 1024,
            request_grace: Duration::from_secs(2),
            max_strikes: 3,
            endgame_duplicates: 1,
        }
    }
}

/// Why a peer was banned or dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// It sent bytes whose length or BLAKE3 did not match the manifest.
    BadChunk { index: usize },
    /// It advertised a chunk and then did not serve it.
    FalseClaim { index: usize },
    /// Its requests kept missing their deadlines.
    TooSlow,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask `peer` for chunk `index` on the LAN.
    FetchLan { peer: DeviceId, index: usize },
    /// Fetch chunk `index` from the seeder.
    FetchWan { index: usize },
    /// A duplicate request to `peer` for `index` is no longer needed.
    Cancel { peer: DeviceId, index: usize },
    /// Ban `peer` for this release (it sent a bad chunk): disconnect, serve it nothing.
    Ban { peer: DeviceId, reason: Fault },
    /// Drop `peer` (false claims, too slow); it may come back later.
    Drop { peer: DeviceId, reason: Fault },
}

/// How a LAN request ended, as the driver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LanOutcome {
    /// The bytes matched the manifest and are durable.
    Ok,
    /// Wrong length or BLAKE3.
    Bad,
    /// The peer said it does not have the chunk.
    NotServed,
    /// The stream or connection failed.
    Failed,
}

/// Counters for reports and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub lan_chunks: u64,
    pub lan_bytes: u64,
    pub wan_chunks: u64,
    pub wan_bytes: u64,
    /// WAN fetches of chunks whose first-choice responsible member was another node.
    pub takeovers: u64,
    pub bans: u64,
    pub drops: u64,
    /// Endgame duplicate requests sent.
    pub duplicates: u64,
}

/// One node's scheduler for one release.
#[derive(Debug)]
pub struct Scheduler {
    _private: (),
}

impl Scheduler {
    /// `have` is what the node already holds (after the local copy); `wan` says whether
    /// this node can reach the seeder.
    pub fn new(
        _config: Config,
        _me: DeviceId,
        _chunks: Vec<ChunkInfo>,
        _have: Bitset,
        _wan: bool,
    ) -> Scheduler {
        todo!("scheduler")
    }

    /// A peer's full have-map for this release: it is now a site member working on the
    /// release. `wan` says whether it can reach the seeder.
    pub fn handle_peer_have(&mut self, _now: Time, _peer: DeviceId, _have: Bitset, _wan: bool) {
        todo!("scheduler")
    }

    /// A peer announced one more chunk.
    pub fn handle_peer_has(&mut self, _now: Time, _peer: DeviceId, _index: usize) {
        todo!("scheduler")
    }

    /// A peer disconnected or left the release.
    pub fn handle_peer_gone(&mut self, _now: Time, _peer: DeviceId) {
        todo!("scheduler")
    }

    /// Whether this node can reach the seeder now.
    pub fn handle_wan_reachable(&mut self, _now: Time, _wan: bool) {
        todo!("scheduler")
    }

    /// A LAN request issued by `FetchLan` ended.
    pub fn handle_lan_done(
        &mut self,
        _now: Time,
        _peer: DeviceId,
        _index: usize,
        _outcome: LanOutcome,
    ) {
        todo!("scheduler")
    }

    /// A WAN request issued by `FetchWan` ended (`ok`: verified and durable).
    pub fn handle_wan_done(&mut self, _now: Time, _index: usize, _ok: bool) {
        todo!("scheduler")
    }

    /// The chunk arrived some other way (a local copy found late, an import).
    pub fn handle_have(&mut self, _now: Time, _index: usize) {
        todo!("scheduler")
    }

    /// Deadlines up to `now` fire: request timeouts, takeovers.
    pub fn handle_timeout(&mut self, _now: Time) {
        todo!("scheduler")
    }

    /// The next thing to do, or `None` until an input changes or the deadline passes.
    pub fn poll_action(&mut self, _now: Time) -> Option<Action> {
        todo!("scheduler")
    }

    /// The earliest deadline, if any.
    pub fn poll_timeout(&self) -> Option<Time> {
        todo!("scheduler")
    }

    pub fn have(&self) -> &Bitset {
        todo!("scheduler")
    }

    pub fn is_complete(&self) -> bool {
        todo!("scheduler")
    }

    pub fn stats(&self) -> &Stats {
        todo!("scheduler")
    }
}
