//! The transfer scheduler: which chunk of a release this node fetches next, and from
//! where. Sans-IO, after quinn-proto: inputs are `handle_*(now, ..)`, outputs are drained
//! with [`Scheduler::poll_action`], and [`Scheduler::poll_timeout`] is the one earliest
//! deadline. The node's agent, the scale simulation and the tests drive the same code.
//!
//! This doc is the scheduler's spec; `core/tests/swarm.rs` checks it on a virtual-time
//! swarm.
//!
//! # Participants
//!
//! - **this node**: one [`Scheduler`] per release it is fetching. It knows the release's
//!   distinct chunks ([`ChunkInfo`], index = plan index) and what it holds.
//! - **peers**: other nodes of the same site working on the same release. A peer
//!   counts once it sent its full have-map ([`Scheduler::handle_peer_have`]); after that
//!   it announces one chunk at a time ([`Scheduler::handle_peer_has`]). Peers are
//!   **untrusted**: their claims are hints, their bytes are checked by the driver.
//! - **the seeder**, over the WAN: has every chunk, but the site's WAN link is the
//!   scarce resource.
//! - **the driver** (node agent, simulation, test): does the IO, verifies every chunk
//!   against the manifest, feeds outcomes back, keeps the clock.
//!
//! # Goals
//!
//! - Each chunk crosses the site's WAN link about **once**, and the WAN link is kept
//!   busy: the site finishes close to `unique bytes ÷ WAN rate`.
//! - The LAN does the rest: rarest chunks first (so the swarm holds many distinct
//!   chunks early), from the least loaded, fastest peer, several requests in flight.
//! - A dead, silent, slow, lying or hostile peer costs time, never correctness.
//! - Deterministic: the same inputs give the same outputs (no clock, no randomness, no
//!   hash-map order), so simulations and tests replay exactly.
//! - Cheap: O(1) per announcement, O(chunks) per membership change, nothing per poll
//!   when nothing changed; 10,000 schedulers run in one simulation process.
//!
//! # Non-goals
//!
//! - Copying local chunks (the caller does it first and passes the result as `have`).
//! - Verifying bytes, talking to the network, rate limiting, WAN retries and backoff
//!   (the driver's; a WAN failure is simply requeued).
//! - Agreement between nodes: each node decides alone from what it has heard. Views
//!   that differ briefly (a have-map still on its way) cost a duplicate WAN fetch at
//!   worst, never a missing chunk.
//!
//! # Inputs and outputs
//!
//! | input | meaning |
//! |---|---|
//! | [`Scheduler::new`] | chunks, what is held, whether this node reaches the seeder; [`Config`] (limits, deadlines, `fetch_only`) |
//! | `handle_peer_have(now, peer, map, wan)` | a peer joined (or re-joined) with its full have-map |
//! | `handle_peer_has(now, peer, i)` | a peer announced chunk `i` |
//! | `handle_peer_gone(now, peer)` | a peer disconnected or left the release |
//! | `handle_wan_reachable(now, wan)` | this node gained or lost the seeder |
//! | `handle_lan_done(now, peer, i, outcome)` | a `FetchLan` ended: [`LanOutcome`] |
//! | `handle_wan_done(now, i, ok)` | a `FetchWan` ended |
//! | `handle_have(now, i)` | chunk `i` arrived some other way |
//! | `handle_timeout(now)` | the deadline from `poll_timeout` passed |
//!
//! Outputs, one at a time from `poll_action(now)` until it returns `None`: [`Action`]s
//! `FetchLan`, `FetchWan`, `Cancel`, `Ban`, `Drop`. `poll_timeout()` is the earliest
//! instant at which `handle_timeout` has work. [`Scheduler::stats`] counts chunks and
//! bytes per source, requests, timeouts, failures, cancels, endgame duplicates,
//! takeovers, bans and drops. Bad input never panics: a peer that never
//! sent a have-map, a chunk index out of range, a have-map of the wrong length, an
//! outcome for a request that is not in flight are ignored (or, for `Ok`/`Bad` outcomes
//! of cancelled requests, taken as the proof they are).
//!
//! # Rules
//!
//! **LAN.** The pool is every missing chunk with no request in flight that at least
//! one usable peer (have-map received, not gone, dropped or banned) holds. The next
//! request takes the chunk with the fewest holders (ties: a hash of the chunk and this
//! node's id, so nodes start on different chunks), and the peer holding it with the
//! lowest `(in flight + 1) / speed`. Speed starts optimistic (1 Gbit/s) and follows
//! completed requests: `len × requests sharing the peer ÷ time since issued`,
//! smoothed. At most `lan_per_peer` requests per peer and `lan_total` in all.
//!
//! **Endgame.** When every missing chunk is in flight, a chunk in flight on the LAN is
//! also asked from up to `endgame_duplicates` other peers holding it (counted in
//! `Stats::duplicates`). The first copy to land wins; the others get `Cancel`.
//!
//! **WAN once per site.** The members of the release's site are this node (if it
//! reaches the seeder and is not fetch-only) and every peer that sent a have-map with
//! `wan`, that is not gone, dropped or banned, and not silent. For each chunk,
//! rendezvous hashing over the members (score = 64-bit mix of BLAKE3(member id) and the
//! chunk hash; highest wins) names the one responsible member. This node asks the
//! seeder (`FetchWan`, at most `wan_in_flight` at once) only for missing chunks that
//! **no peer holds** and that it is responsible for; any other missing chunk waits for
//! an announcement. A LAN failure never sends a chunk to the WAN: it goes back to the
//! pool. Only when every holder is gone, dropped or banned does a chunk count as held
//! by nobody again.
//!
//! **Fetch-only.** A node that serves nobody (`Config::fetch_only`, the node's
//! `--no-serve`) sends no have-map, so no peer counts it as a member, and it does not
//! count itself either: a share it fetched would be fetched again by the members, who
//! never hear that it holds it. It takes everything a member fetches over the LAN, and
//! asks the seeder only for the chunks no member is responsible for, that is, all of
//! them while there is no member (it is alone; its peers cannot reach the seeder, are
//! silent, or serve nobody either). Such a fetch counts as a takeover only if some
//! member was ever first in order for the chunk.
//!
//! **Takeover.** A member is **silent** when it still lacks chunks and announced
//! nothing new for `takeover_after` (its clock restarts whenever a member leaves, since
//! that may hand it new work). Silent and gone members leave the member set, so the
//! next in rendezvous order takes their chunks over; a silent member that announces
//! again rejoins. A `FetchWan` for a chunk whose first member in order — over every
//! WAN-capable node ever seen, silent, gone, dropped and banned ones included — is not
//! this node counts in `Stats::takeovers`.
//!
//! **Untrusted peers.** `LanOutcome::Bad` → `Ban { peer, BadChunk }`: its have-map is
//! forgotten, its requests requeued, it is never chosen again nor a member, and a new
//! have-map from it is ignored. `NotServed` for a chunk it advertised is a false claim:
//! → `Drop { peer, FalseClaim }`, and the `max_false_claims`-th (2 by default, counted
//! over the release, whatever have-maps came in between) → `Ban { peer, FalseClaim }`,
//! so a liar that reconnects and lies again is banned, while an honest peer that once
//! lost a race (it left the release as the request arrived) is only dropped. A
//! request's later answers count once: after a drop the peer's other denials are of
//! requests no longer in flight. A LAN request still in flight at
//! `issued + len ÷ floor_bytes_per_s + request_grace` is cancelled by `handle_timeout`
//! (`Cancel`, requeued, a strike); `Failed` is a strike too; the `max_strikes`-th strike
//! (counted over the release) → `Drop { peer, TooSlow }`. A dropped peer's map and
//! requests go as for a ban, but a new have-map brings it back with no strikes (its
//! false claims stay).
//!
//! # Example
//!
//! ```
//! use shoal_core::sched::{Action, ChunkInfo, Config, LanOutcome, Scheduler, Time};
//! use shoal_core::{Hash, KeyId, plan::Bitset};
//! use std::time::Duration;
//!
//! let chunks: Vec<ChunkInfo> =
//!     (0..3u8).map(|i| ChunkInfo { hash: Hash::of(&[i]), len: 1000 }).collect();
//! let (me, peer) = (KeyId([1; 32]), KeyId([2; 32]));
//! // This node holds chunk 0 already (local copy) and reaches the seeder.
//! let mut have = Bitset::new(3);
//! have.set(0);
//! let mut s = Scheduler::new(Config::default(), me, chunks, have, true);
//! let t0 = Time::from_micros(0);
//!
//! // A peer without WAN access holds chunk 1. This node is then the only member, so it
//! // is responsible for chunk 2 (nobody holds it) and fetches chunk 1 on the LAN.
//! let mut theirs = Bitset::new(3);
//! theirs.set(1);
//! s.handle_peer_have(t0, peer, theirs, false);
//! assert_eq!(s.poll_action(t0), Some(Action::FetchWan { index: 2 }));
//! assert_eq!(s.poll_action(t0), Some(Action::FetchLan { peer, index: 1 }));
//! assert_eq!(s.poll_action(t0), None); // nothing else to do until an input
//!
//! // The LAN request must end by issue + 1000 B ÷ 64 KiB/s + 2 s grace.
//! assert_eq!(s.poll_timeout(), Some(Time::from_micros(2_015_258)));
//!
//! // The peer answers with bytes that fail the manifest check: it is banned and its
//! // have-map forgotten.
//! let t1 = t0.plus(Duration::from_millis(5));
//! s.handle_lan_done(t1, peer, 1, LanOutcome::Bad);
//! assert_eq!(
//!     s.poll_action(t1),
//!     Some(Action::Ban { peer, reason: shoal_core::sched::Fault::BadChunk { index: 1 } })
//! );
//! // With the peer's map forgotten nobody holds chunk 1: this node, responsible, asks
//! // the seeder.
//! assert_eq!(s.poll_action(t1), Some(Action::FetchWan { index: 1 }));
//! s.handle_wan_done(t1, 2, true);
//! s.handle_wan_done(t1, 1, true);
//! assert!(s.is_complete());
//! assert_eq!(s.stats().wan_chunks, 2);
//! assert_eq!(s.stats().bans, 1);
//! ```

mod holders;
mod peer;
mod rarity;
mod rendezvous;
mod requests;
mod scheduler;
mod wan_queue;

pub use rendezvous::rendezvous_winner;
pub use scheduler::Scheduler;

use crate::hash::Hash;
use crate::keys::DeviceId;
use std::time::Duration;

/// A point on the driver's clock, in microseconds since an origin the driver picks.
/// Core never reads a clock; a node converts from `std::time::Instant`, a simulation
/// uses its virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    /// "No deadline", inside the crate.
    pub(crate) const NEVER: Time = Time(u64::MAX);

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
    /// Chunks a peer advertised and then did not serve (over the release) before it is
    /// banned; each one before only drops it. One is forgiven because an honest peer
    /// can lose a race: it moved on from the release as the request arrived.
    pub max_false_claims: u32,
    /// This node serves nobody (`--no-serve`): no peer sees its have-map, so it is no
    /// WAN member, not even in its own ranking. It fetches from the WAN only the
    /// chunks no member is responsible for: every chunk while the site has no member
    /// (it is alone, or its peers cannot reach the seeder or serve nobody either).
    pub fetch_only: bool,
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
            max_false_claims: 2,
            fetch_only: false,
        }
    }
}

/// Why a peer was banned or dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// It sent bytes whose length or BLAKE3 did not match the manifest.
    BadChunk { index: usize },
    /// It advertised a chunk and then did not serve it (a drop; a ban at the
    /// `max_false_claims`-th time over the release).
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
    /// The request to `peer` for `index` is no longer needed: a copy arrived from
    /// elsewhere (endgame) or it passed its deadline. Stop it; if it still ends, report
    /// it anyway (an `Ok` chunk is kept, a `Bad` one still bans).
    Cancel { peer: DeviceId, index: usize },
    /// Ban `peer` for this release (it sent a bad chunk, or kept claiming chunks it
    /// does not serve): disconnect every connection with it, serve it nothing.
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
    /// Chunks (and their bytes) this node got from a peer, each counted once.
    pub lan_chunks: u64,
    pub lan_bytes: u64,
    /// WAN requests that ended `ok` (and their bytes).
    pub wan_chunks: u64,
    pub wan_bytes: u64,
    /// WAN fetches of chunks whose first-choice responsible member was another node.
    pub takeovers: u64,
    pub bans: u64,
    pub drops: u64,
    /// Endgame duplicate requests sent.
    pub duplicates: u64,
    /// LAN requests issued (duplicates included).
    pub lan_requests: u64,
    /// LAN requests that passed their deadline.
    pub timeouts: u64,
    /// LAN requests that ended `Failed`, `NotServed` or `Bad`.
    pub lan_failures: u64,
    /// `Cancel` actions emitted (endgame losers and timeouts).
    pub cancels: u64,
}
