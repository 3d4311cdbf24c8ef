//! One site: its nodes, each a real core `Scheduler`, over the flow model of `net`.

use super::Params;
use super::net::{Flow, Net, Source};
use super::release::Rng;
use shoal_core::KeyId;
use shoal_core::plan::Bitset;
use shoal_core::sched::{Action, ChunkInfo, Config, LanOutcome, Scheduler, Time};
use std::collections::BTreeMap;
use std::time::Duration;

/// What became of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeResult {
    pub bytes_wan: u64,
    pub bytes_lan: u64,
    pub bytes_local: u64,
    pub complete: bool,
    pub done_s: Option<f64>,
    pub hostile: bool,
    pub dead: bool,
    pub takeovers: u64,
    pub bans: u64,
    pub drops: u64,
}

/// What became of one site.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteResult {
    pub nodes: Vec<NodeResult>,
    /// Bytes that crossed the site's WAN link (partial transfers of dead nodes too).
    pub wan_bytes: u64,
    /// When the last live honest node completed; `None` if one never did.
    pub completion_s: Option<f64>,
    /// Every live honest node holds every chunk.
    pub all_verified: bool,
}

struct Node {
    id: KeyId,
    sched: Scheduler,
    alive: bool,
    hostile: bool,
    dies_at: Option<Time>,
    done_at: Option<Time>,
    next_timeout: Option<Time>,
    touched: bool,
    /// Chunks already announced to the peers.
    announced: Bitset,
}

struct Site<'a> {
    p: &'a Params,
    chunks: &'a [ChunkInfo],
    nodes: Vec<Node>,
    by_id: BTreeMap<KeyId, u32>,
    /// `cut[a * n + b]`: a and b no longer talk (a ban or drop).
    cut: Vec<bool>,
    net: Net,
    now: Time,
    wan_bytes: u64,
    /// Chunks landed this tick, to announce: (node, chunk).
    landed: Vec<(u32, usize)>,
}

/// The scheduler settings of the model: a LAN round trip is short, so a few requests
/// per peer fill a link; two WAN requests per node keep the site's WAN link full
/// without spreading it so thin that a chunk takes longer than `takeover_after`.
pub fn config(p: &Params) -> Config {
    Config {
        lan_per_peer: 4,
        lan_total: p.lan_in_flight,
        wan_in_flight: p.wan_in_flight,
        ..Config::default()
    }
}

pub fn run(p: &Params, site: u32, chunks: &[ChunkInfo]) -> SiteResult {
    let mut s = Site::new(p, site, chunks);
    s.run();
    s.result()
}

impl<'a> Site<'a> {
    fn new(p: &'a Params, site: u32, chunks: &'a [ChunkInfo]) -> Site<'a> {
        let n = p.devices_per_site as usize;
        let mut rng = Rng::derive(p.seed, "site", u64::from(site));
        let lower_bound_us = p.lower_bound_s(chunks) * 1e6;
        let config = config(p);
        // Exactly round(P × N) hostile nodes, then round(P × N) of the others die:
        // the first ones of a seeded shuffle.
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let hostile_n = (p.hostile * n as f64).round() as usize;
        let dead_n = ((p.churn * n as f64).round() as usize).min(n - hostile_n.min(n));
        let mut role = vec![0u8; n];
        for (k, &i) in order.iter().enumerate() {
            role[i] = if k < hostile_n {
                1
            } else if k < hostile_n + dead_n {
                2
            } else {
                0
            };
        }
        let nodes: Vec<Node> = (0..n)
            .map(|i| {
                let mut id = [0u8; 32];
                let h = shoal_core::Hash::of(
                    &[
                        &p.seed.to_le_bytes()[..],
                        &site.to_le_bytes(),
                        &(i as u64).to_le_bytes(),
                    ]
                    .concat(),
                );
                id.copy_from_slice(&h.0);
                let hostile = role[i] == 1;
                let dies = role[i] == 2;
                let dies_at = dies.then(|| Time((rng.unit() * lower_bound_us) as u64));
                let id = KeyId(id);
                Node {
                    id,
                    sched: Scheduler::new(
                        config.clone(),
                        id,
                        chunks.to_vec(),
                        Bitset::new(chunks.len()),
                        true,
                    ),
                    alive: true,
                    hostile,
                    dies_at,
                    done_at: None,
                    next_timeout: None,
                    touched: true,
                    announced: Bitset::new(chunks.len()),
                }
            })
            .collect();
        let by_id = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id, i as u32))
            .collect();
        Site {
            p,
            chunks,
            nodes,
            by_id,
            cut: vec![false; n * n],
            net: Net::new(n, p.wan_bytes_per_s(), p.lan_bytes_per_s()),
            now: Time(0),
            wan_bytes: 0,
            landed: Vec::new(),
        }
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        !self.cut[a * self.nodes.len() + b]
    }

    fn finished(&self) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.alive && !n.hostile)
            .all(|n| n.sched.is_complete())
    }

    fn run(&mut self) {
        // Everyone joins at time zero with an empty have-map.
        let n = self.nodes.len();
        let empty = Bitset::new(self.chunks.len());
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let id = self.nodes[j].id;
                    self.nodes[i]
                        .sched
                        .handle_peer_have(Time(0), id, empty.clone(), true);
                }
            }
        }
        let tick = Duration::from_micros(self.p.tick_us.max(1));
        let give_up = Time((self.p.lower_bound_s(self.chunks) * 1e6 * 50.0) as u64 + 60_000_000);
        self.poll_touched();
        while !self.finished() && self.now < give_up {
            let next = if self.net.any_active() {
                self.now.plus(tick)
            } else {
                // Nothing moving: jump to the next thing that happens.
                let candidates = [
                    self.net.next_start(),
                    self.nodes
                        .iter()
                        .filter(|n| n.alive)
                        .filter_map(|n| n.next_timeout)
                        .min(),
                    self.nodes
                        .iter()
                        .filter(|n| n.alive)
                        .filter_map(|n| n.dies_at)
                        .min(),
                ];
                match candidates.into_iter().flatten().min() {
                    Some(t) => t.max(self.now.plus(Duration::from_micros(1))),
                    None => break, // stalled: nothing in flight, nothing due
                }
            };
            let dt = next.since(self.now).as_secs_f64();
            let done = self.net.advance(dt);
            self.now = next;
            for f in done {
                self.deliver(f);
            }
            self.announce();
            self.deaths();
            self.net.activate(self.now);
            self.timeouts();
            self.poll_touched();
        }
    }

    fn deliver(&mut self, f: Flow) {
        let now = self.now;
        let to = f.to as usize;
        let index = f.index as usize;
        match f.source {
            Source::Wan => {
                self.wan_bytes += u64::from(f.len);
                self.nodes[to].sched.handle_wan_done(now, index, true);
            }
            Source::Lan(from) => {
                let outcome = if self.nodes[from as usize].hostile {
                    LanOutcome::Bad
                } else {
                    LanOutcome::Ok
                };
                let from_id = self.nodes[from as usize].id;
                self.nodes[to]
                    .sched
                    .handle_lan_done(now, from_id, index, outcome);
            }
        }
        self.nodes[to].touched = true;
        // A chunk that landed is announced to every peer still talking to it (at the
        // end of the tick, receiver by receiver: the same order of calls per receiver,
        // and one scheduler's state stays in cache for the tick's announcements).
        if self.nodes[to].sched.have().get(index) && !self.nodes[to].announced.get(index) {
            self.nodes[to].announced.set(index);
            self.landed.push((to as u32, index));
        }
        if self.nodes[to].done_at.is_none() && self.nodes[to].sched.is_complete() {
            self.nodes[to].done_at = Some(now);
        }
    }

    fn announce(&mut self) {
        if self.landed.is_empty() {
            return;
        }
        let now = self.now;
        let landed = std::mem::take(&mut self.landed);
        for j in 0..self.nodes.len() {
            if !self.nodes[j].alive {
                continue;
            }
            for &(from, index) in &landed {
                let from = from as usize;
                if from != j && self.linked(j, from) {
                    let id = self.nodes[from].id;
                    self.nodes[j].sched.handle_peer_has(now, id, index);
                    self.nodes[j].touched = true;
                }
            }
        }
        self.landed = landed;
        self.landed.clear();
    }

    fn deaths(&mut self) {
        let now = self.now;
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if !n.alive || n.dies_at.is_none_or(|t| t > now) {
                continue;
            }
            self.nodes[i].alive = false;
            let gone = self
                .net
                .take_where(|f| f.to as usize == i || f.source == Source::Lan(i as u32));
            for f in gone {
                if f.source == Source::Wan {
                    self.wan_bytes += f.transferred();
                }
            }
            let id = self.nodes[i].id;
            for j in 0..self.nodes.len() {
                if j != i && self.nodes[j].alive {
                    self.nodes[j].sched.handle_peer_gone(now, id);
                    self.nodes[j].touched = true;
                }
            }
        }
    }

    fn timeouts(&mut self) {
        let now = self.now;
        for n in self.nodes.iter_mut().filter(|n| n.alive) {
            if n.next_timeout.is_some_and(|t| t <= now) {
                n.sched.handle_timeout(now);
                n.touched = true;
            }
        }
    }

    fn poll_touched(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].touched || !self.nodes[i].alive {
                continue;
            }
            self.nodes[i].touched = false;
            while let Some(a) = self.nodes[i].sched.poll_action(self.now) {
                self.execute(i, a);
            }
            self.nodes[i].next_timeout = self.nodes[i].sched.poll_timeout();
        }
    }

    fn execute(&mut self, i: usize, a: Action) {
        let now = self.now;
        match a {
            Action::FetchLan { peer, index } => {
                let Some(&j) = self.by_id.get(&peer) else {
                    return;
                };
                let len = self.chunks[index].len;
                let at = now.plus(Duration::from_micros(self.p.lan_latency_us));
                self.net
                    .start(Source::Lan(j), i as u32, index as u32, len, at);
            }
            Action::FetchWan { index } => {
                let len = self.chunks[index].len;
                let at = now.plus(Duration::from_micros(self.p.wan_rtt_us));
                self.net.start(Source::Wan, i as u32, index as u32, len, at);
            }
            Action::Cancel { peer, index } => {
                if let Some(&j) = self.by_id.get(&peer) {
                    let (to, idx) = (i as u32, index as u32);
                    self.net
                        .take_where(|f| f.to == to && f.index == idx && f.source == Source::Lan(j));
                }
            }
            Action::Ban { peer, .. } | Action::Drop { peer, .. } => {
                let Some(&j) = self.by_id.get(&peer) else {
                    return;
                };
                let (j, n) = (j as usize, self.nodes.len());
                self.cut[i * n + j] = true;
                self.cut[j * n + i] = true;
                let (a, b) = (i as u32, j as u32);
                self.net.take_where(|f| {
                    (f.to == a && f.source == Source::Lan(b))
                        || (f.to == b && f.source == Source::Lan(a))
                });
                if self.nodes[j].alive {
                    let id = self.nodes[i].id;
                    self.nodes[j].sched.handle_peer_gone(now, id);
                    self.nodes[j].touched = true;
                }
            }
        }
    }

    fn result(&self) -> SiteResult {
        let nodes: Vec<NodeResult> = self
            .nodes
            .iter()
            .map(|n| {
                let st = n.sched.stats();
                NodeResult {
                    bytes_wan: st.wan_bytes,
                    bytes_lan: st.lan_bytes,
                    bytes_local: 0,
                    complete: n.sched.is_complete(),
                    done_s: n.done_at.map(|t| t.as_micros() as f64 / 1e6),
                    hostile: n.hostile,
                    dead: !n.alive,
                    takeovers: st.takeovers,
                    bans: st.bans,
                    drops: st.drops,
                }
            })
            .collect();
        let honest: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|n| n.alive && !n.hostile)
            .collect();
        let all_verified = honest
            .iter()
            .all(|n| n.sched.have().count() == self.chunks.len());
        let completion_s = if all_verified {
            Some(
                honest
                    .iter()
                    .filter_map(|n| n.done_at)
                    .max()
                    .unwrap_or(Time(0))
                    .as_micros() as f64
                    / 1e6,
            )
        } else {
            None
        };
        SiteResult {
            nodes,
            wan_bytes: self.wan_bytes,
            completion_s,
            all_verified,
        }
    }
}
