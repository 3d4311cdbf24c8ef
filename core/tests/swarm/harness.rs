//! A deterministic, virtual-time swarm of schedulers, after quinn-proto's test `Pair`.
//!
//! Every node is a real [`Scheduler`]; the network is in memory:
//! - each node has a WAN downlink and a LAN uplink, each a FIFO pipe at its own rate
//!   (a transfer starts one `latency` after its request, or when the pipe frees up,
//!   and takes `len / rate`);
//! - the seeder serves every WAN request and counts how often each chunk crossed;
//! - a node that lands a chunk announces it to every connected peer (`latency` later);
//! - `Ban`/`Drop` cut the link both ways (the other side gets `handle_peer_gone`); with
//!   `reconnect_after`, a dropped link comes back after that long and both sides send
//!   their have-maps again (a banned one never comes back: the node refuses it);
//! - a fetch-only node (`--no-serve`) fetches from its peers, but none sees its
//!   have-map or its announcements, so none asks it for anything.
//!
//! The clock jumps to the next event or scheduler deadline. Faults: a node can die
//! (peers get `handle_peer_gone`), go silent (connected, does nothing), serve corrupt
//! bytes, claim chunks it does not have, or trickle (a very slow uplink).
//!
//! Randomness (chunk sizes, node ids) comes from a tiny PRNG seeded from
//! `SHOAL_TEST_SEED` or a default; a failing test prints its seed.

#![allow(dead_code)]

use shoal_core::plan::Bitset;
use shoal_core::sched::{Action, ChunkInfo, Config, LanOutcome, Scheduler, Time};
use shoal_core::{DeviceId, Hash, KeyId};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

/// SplitMix64: enough randomness for a test, fully reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability 1/`k`.
    pub fn one_in(&mut self, k: u64) -> bool {
        self.next_u64().is_multiple_of(k.max(1))
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// The test's seed: `SHOAL_TEST_SEED` or `default`. Keep the guard alive for the whole
/// test: it prints the seed if the test fails.
pub fn seed(default: u64) -> (u64, SeedGuard) {
    let seed = std::env::var("SHOAL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    (seed, SeedGuard(seed))
}

pub struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("swarm test failed with SHOAL_TEST_SEED={}", self.0);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Does its job.
    Honest,
    /// Removed: processes nothing; its peers were told it is gone.
    Dead,
    /// Connected but does nothing: answers no request, announces nothing.
    Silent,
    /// Fetches honestly, serves bytes that fail verification.
    Corrupt,
    /// Claims every chunk in its have-map, serves only what it has.
    Liar,
}

pub struct Node {
    pub id: DeviceId,
    pub sched: Scheduler,
    /// What it really holds (the scheduler's view for honest nodes).
    pub holds: Bitset,
    pub mode: Mode,
    pub wan: bool,
    /// LAN uplink, bytes per second.
    pub lan_rate: u64,
    /// WAN downlink, bytes per second.
    pub wan_rate: u64,
    /// Serves nobody: its scheduler runs with `Config::fetch_only`.
    pub fetch_only: bool,
    up_free: Time,
    wan_free: Time,
}

impl Node {
    pub fn processing(&self) -> bool {
        !matches!(self.mode, Mode::Dead | Mode::Silent)
    }
}

#[derive(Debug, Clone)]
enum Event {
    LanDone {
        to: usize,
        from: usize,
        index: usize,
        outcome: LanOutcome,
        req: u64,
    },
    WanDone {
        node: usize,
        index: usize,
    },
    Has {
        to: usize,
        from: usize,
        index: usize,
    },
    /// A dropped link comes back: both ends exchange have-maps.
    Reconnect {
        a: usize,
        b: usize,
    },
}

/// How a swarm is set up before [`Swarm::start`].
#[derive(Debug, Clone)]
pub struct Setup {
    pub nodes: usize,
    pub chunks: usize,
    pub seed: u64,
    pub config: Config,
    pub lan_rate: u64,
    pub wan_rate: u64,
    pub latency: Duration,
}

impl Setup {
    pub fn new(nodes: usize, chunks: usize, seed: u64) -> Setup {
        Setup {
            nodes,
            chunks,
            seed,
            config: Config::default(),
            lan_rate: 50_000_000,
            wan_rate: 2_000_000,
            latency: Duration::from_millis(1),
        }
    }
}

pub struct Swarm {
    pub now: Time,
    pub nodes: Vec<Node>,
    pub chunks: Vec<ChunkInfo>,
    pub latency: Duration,
    /// If set, a link cut by a `Drop` comes back after this long.
    pub reconnect_after: Option<Duration>,
    /// How many times each chunk crossed the WAN (counted when the seeder serves it).
    pub wan_crossings: Vec<u32>,
    /// Every WAN fetch: (time, node, chunk).
    pub wan_log: Vec<(Time, usize, usize)>,
    /// Every action any node emitted: (time, node, action).
    pub actions: Vec<(Time, usize, Action)>,
    /// Every bad chunk delivered: (time, to, from, chunk).
    pub bad_deliveries: Vec<(Time, usize, usize, usize)>,
    /// Every chunk a node landed: (time, node, chunk).
    pub landed: Vec<(Time, usize, usize)>,
    /// Every good LAN delivery: (time, server, client, chunk).
    pub served: Vec<(Time, usize, usize, usize)>,
    events: BinaryHeap<Reverse<(Time, u64)>>,
    pending: BTreeMap<u64, Event>,
    seq: u64,
    cut: BTreeSet<(usize, usize)>,
    /// Links cut by a ban: never restored.
    banned: BTreeSet<(usize, usize)>,
    requests: BTreeMap<(usize, usize, usize), u64>,
    claims_all: BTreeSet<usize>,
    by_id: BTreeMap<DeviceId, usize>,
    started: bool,
    pub steps: u64,
}

impl Swarm {
    /// `setup.nodes` empty honest nodes, all with WAN, and a release of `setup.chunks`
    /// chunks of 16..256 KiB. Adjust nodes (`holds_all`, `mode`, rates) before `start`.
    pub fn new(setup: &Setup) -> Swarm {
        let mut rng = Rng::new(setup.seed);
        let chunks: Vec<ChunkInfo> = (0..setup.chunks)
            .map(|i| ChunkInfo {
                hash: Hash::of(&[&setup.seed.to_le_bytes()[..], &i.to_le_bytes()[..]].concat()),
                len: rng.range(16 * 1024, 256 * 1024) as u32,
            })
            .collect();
        let nodes: Vec<Node> = (0..setup.nodes)
            .map(|_| {
                let mut id = [0u8; 32];
                for part in id.chunks_mut(8) {
                    part.copy_from_slice(&rng.next_u64().to_le_bytes());
                }
                Node {
                    id: KeyId(id),
                    sched: Scheduler::new(
                        setup.config.clone(),
                        KeyId([0; 32]),
                        Vec::new(),
                        Bitset::new(0),
                        false,
                    ),
                    holds: Bitset::new(setup.chunks),
                    mode: Mode::Honest,
                    wan: true,
                    lan_rate: setup.lan_rate,
                    wan_rate: setup.wan_rate,
                    fetch_only: false,
                    up_free: Time(0),
                    wan_free: Time(0),
                }
            })
            .collect();
        let by_id = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        let mut swarm = Swarm {
            now: Time(0),
            nodes,
            chunks,
            latency: setup.latency,
            reconnect_after: None,
            wan_crossings: vec![0; setup.chunks],
            wan_log: Vec::new(),
            actions: Vec::new(),
            bad_deliveries: Vec::new(),
            landed: Vec::new(),
            served: Vec::new(),
            events: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            banned: BTreeSet::new(),
            requests: BTreeMap::new(),
            claims_all: BTreeSet::new(),
            by_id,
            started: false,
            steps: 0,
        };
        swarm.configure(setup.config.clone());
        swarm
    }

    fn configure(&mut self, config: Config) {
        for n in &mut self.nodes {
            let config = Config {
                fetch_only: n.fetch_only,
                ..config.clone()
            };
            n.sched = Scheduler::new(config, n.id, self.chunks.clone(), n.holds.clone(), n.wan);
        }
    }

    pub fn holds_all(&mut self, i: usize) {
        for c in 0..self.chunks.len() {
            self.nodes[i].holds.set(c);
        }
    }

    /// Node `i` claims every chunk in its have-map (a liar).
    pub fn claims_all(&mut self, i: usize) {
        self.nodes[i].mode = Mode::Liar;
        self.claims_all.insert(i);
    }

    /// Builds every scheduler from the nodes' current settings and exchanges the
    /// have-maps at time zero.
    pub fn start(&mut self, config: &Config) {
        assert!(!self.started, "start once");
        self.started = true;
        self.configure(config.clone());
        for i in 0..self.nodes.len() {
            for j in 0..self.nodes.len() {
                if i != j {
                    self.send_map(j, i);
                }
            }
        }
    }

    /// Node `to` receives node `from`'s have-map as `from` states it (a liar claims
    /// every chunk; a fetch-only node states nothing: nobody can ask it).
    fn send_map(&mut self, from: usize, to: usize) {
        let n = &self.nodes[from];
        if n.fetch_only {
            return;
        }
        let mut map = n.holds.clone();
        if self.claims_all.contains(&from) {
            for c in 0..self.chunks.len() {
                map.set(c);
            }
        }
        let (id, wan) = (n.id, n.wan);
        self.nodes[to]
            .sched
            .handle_peer_have(self.now, id, map, wan);
    }

    pub fn index_of(&self, id: &DeviceId) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn ids(&self) -> Vec<DeviceId> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Node `i` dies: it does nothing more and every peer is told it is gone.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].mode = Mode::Dead;
        let id = self.nodes[i].id;
        for (j, n) in self.nodes.iter_mut().enumerate() {
            if j != i && n.processing() {
                n.sched.handle_peer_gone(self.now, id);
            }
        }
    }

    /// Node `i` stays connected and stops doing anything.
    pub fn silence(&mut self, i: usize) {
        self.nodes[i].mode = Mode::Silent;
    }

    /// Nodes that must finish: honest ones.
    pub fn done(&self) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.mode == Mode::Honest)
            .all(|n| n.sched.is_complete())
    }

    /// Runs until every honest node is complete; false if the swarm stalled or hit
    /// `max_steps`.
    pub fn drive(&mut self, max_steps: u64) -> bool {
        self.drive_while(max_steps, |s| !s.done())
    }

    /// Runs while `go` holds (checked between steps); false if the swarm stalled or hit
    /// `max_steps` first.
    pub fn drive_while(&mut self, max_steps: u64, mut go: impl FnMut(&Swarm) -> bool) -> bool {
        for _ in 0..max_steps {
            self.poll_all();
            if !go(self) {
                return true;
            }
            if !self.step() {
                return false;
            }
        }
        false
    }

    /// Jumps to the next event or deadline and processes everything due then.
    fn step(&mut self) -> bool {
        self.steps += 1;
        let next_event = self.events.peek().map(|Reverse((t, _))| *t);
        let next_timeout = self
            .nodes
            .iter()
            .filter(|n| n.processing())
            .filter_map(|n| n.sched.poll_timeout())
            .min();
        let Some(next) = [next_event, next_timeout].into_iter().flatten().min() else {
            return false;
        };
        self.now = self.now.max(next);
        while let Some(Reverse((t, seq))) = self.events.peek().copied() {
            if t > self.now {
                break;
            }
            self.events.pop();
            if let Some(e) = self.pending.remove(&seq) {
                self.deliver(e);
            }
        }
        let now = self.now;
        for n in self.nodes.iter_mut().filter(|n| n.processing()) {
            if n.sched.poll_timeout().is_some_and(|t| t <= now) {
                n.sched.handle_timeout(now);
            }
        }
        true
    }

    fn push(&mut self, at: Time, e: Event) {
        self.seq += 1;
        self.pending.insert(self.seq, e);
        self.events.push(Reverse((at, self.seq)));
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        !self.cut.contains(&(a, b))
    }

    fn deliver(&mut self, e: Event) {
        let now = self.now;
        match e {
            Event::LanDone {
                to,
                from,
                index,
                outcome,
                req,
            } => {
                if !self.nodes[to].processing() || !self.linked(to, from) {
                    return;
                }
                if self.requests.get(&(to, from, index)) != Some(&req) {
                    return; // cancelled
                }
                self.requests.remove(&(to, from, index));
                match outcome {
                    LanOutcome::Ok => {
                        self.served.push((now, from, to, index));
                        self.land(to, index);
                    }
                    LanOutcome::Bad => self.bad_deliveries.push((now, to, from, index)),
                    _ => {}
                }
                let from_id = self.nodes[from].id;
                self.nodes[to]
                    .sched
                    .handle_lan_done(now, from_id, index, outcome);
            }
            Event::WanDone { node, index } => {
                if !self.nodes[node].processing() {
                    return;
                }
                self.land(node, index);
                self.nodes[node].sched.handle_wan_done(now, index, true);
            }
            Event::Has { to, from, index } => {
                if !self.nodes[to].processing() || !self.linked(to, from) {
                    return;
                }
                let from_id = self.nodes[from].id;
                self.nodes[to].sched.handle_peer_has(now, from_id, index);
            }
            Event::Reconnect { a, b } => {
                if self.banned.contains(&(a, b)) || self.banned.contains(&(b, a)) {
                    return;
                }
                self.cut.remove(&(a, b));
                self.cut.remove(&(b, a));
                for (from, to) in [(a, b), (b, a)] {
                    if self.nodes[to].processing() && self.nodes[from].mode != Mode::Dead {
                        self.send_map(from, to);
                    }
                }
            }
        }
    }

    /// Node `i` now really holds chunk `index`: tell its peers.
    fn land(&mut self, i: usize, index: usize) {
        if self.nodes[i].holds.get(index) {
            return;
        }
        self.nodes[i].holds.set(index);
        self.landed.push((self.now, i, index));
        if self.nodes[i].fetch_only {
            return;
        }
        let at = self.now.plus(self.latency);
        for j in 0..self.nodes.len() {
            if j != i && self.nodes[j].mode != Mode::Dead && self.linked(j, i) {
                self.push(
                    at,
                    Event::Has {
                        to: j,
                        from: i,
                        index,
                    },
                );
            }
        }
    }

    fn poll_all(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].processing() {
                continue;
            }
            while let Some(a) = self.nodes[i].sched.poll_action(self.now) {
                self.actions.push((self.now, i, a.clone()));
                self.execute(i, a);
            }
        }
    }

    fn transfer_time(len: u32, rate: u64) -> Duration {
        Duration::from_micros(u64::from(len) * 1_000_000 / rate.max(1))
    }

    fn execute(&mut self, i: usize, a: Action) {
        let now = self.now;
        match a {
            Action::FetchLan { peer, index } => {
                let Some(j) = self.index_of(&peer) else {
                    panic!("node {i} asked an unknown peer {peer:?}");
                };
                self.seq += 1;
                let req = self.seq;
                self.requests.insert((i, j, index), req);
                let server = &mut self.nodes[j];
                match server.mode {
                    Mode::Dead | Mode::Silent => {} // never answers
                    _ if !server.holds.get(index) => {
                        let at = now.plus(self.latency * 2);
                        self.push_lan(at, i, j, index, LanOutcome::NotServed, req);
                    }
                    mode => {
                        let len = self.chunks[index].len;
                        let start = now.plus(self.latency).max(server.up_free);
                        let done = start.plus(Swarm::transfer_time(len, server.lan_rate));
                        server.up_free = done;
                        let outcome = if mode == Mode::Corrupt {
                            LanOutcome::Bad
                        } else {
                            LanOutcome::Ok
                        };
                        self.push_lan(done, i, j, index, outcome, req);
                    }
                }
            }
            Action::FetchWan { index } => {
                self.wan_crossings[index] += 1;
                self.wan_log.push((now, i, index));
                let n = &mut self.nodes[i];
                let start = now.plus(self.latency).max(n.wan_free);
                let done = start.plus(Swarm::transfer_time(self.chunks[index].len, n.wan_rate));
                n.wan_free = done;
                self.push(done, Event::WanDone { node: i, index });
            }
            Action::Cancel { peer, index } => {
                if let Some(j) = self.index_of(&peer) {
                    self.requests.remove(&(i, j, index));
                }
            }
            Action::Ban { peer, .. } | Action::Drop { peer, .. } => {
                let Some(j) = self.index_of(&peer) else {
                    return;
                };
                self.cut.insert((i, j));
                self.cut.insert((j, i));
                let id = self.nodes[i].id;
                if self.nodes[j].processing() {
                    self.nodes[j].sched.handle_peer_gone(now, id);
                }
                if matches!(a, Action::Ban { .. }) {
                    self.banned.insert((i, j));
                } else if let Some(after) = self.reconnect_after {
                    self.push(now.plus(after), Event::Reconnect { a: i, b: j });
                }
            }
        }
    }

    fn push_lan(
        &mut self,
        at: Time,
        to: usize,
        from: usize,
        index: usize,
        o: LanOutcome,
        req: u64,
    ) {
        self.push(
            at,
            Event::LanDone {
                to,
                from,
                index,
                outcome: o,
                req,
            },
        );
    }

    // --- views for asserts ---------------------------------------------------------

    /// The actions node `i` emitted that match `f`.
    pub fn actions_of(&self, i: usize, f: impl Fn(&Action) -> bool) -> Vec<Action> {
        self.actions
            .iter()
            .filter(|(_, n, a)| *n == i && f(a))
            .map(|(_, _, a)| a.clone())
            .collect()
    }

    pub fn total_wan_crossings(&self) -> u64 {
        self.wan_crossings.iter().map(|&c| u64::from(c)).sum()
    }

    pub fn sum_stats(&self, f: impl Fn(&shoal_core::sched::Stats) -> u64) -> u64 {
        self.nodes.iter().map(|n| f(n.sched.stats())).sum()
    }
}
