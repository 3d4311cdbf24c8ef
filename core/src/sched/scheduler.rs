//! The state machine: [`Scheduler`]. The rules it follows are in the module doc of
//! [`crate::sched`]; this file says how it keeps them cheap.
//!
//! Per chunk it keeps the holder count, the requests in flight and its rendezvous
//! winner; per peer its have-map, load and speed. Every input does O(1) work except
//! the rare ones that change a have-map wholesale or the member set (O(chunks)). A poll
//! does nothing unless an input since the last empty poll could have made work.

use super::holders::Holders;
use super::peer::{Peer, PeerIndex, PeerState};
use super::rarity::Rarity;
use super::rendezvous::{self, Member, NOBODY, Ranking};
use super::requests::{self, Request, Requests};
use super::wan_queue::WanQueue;
use super::{Action, ChunkInfo, Config, Fault, LanOutcome, Stats, Time};
use crate::keys::DeviceId;
use crate::plan::Bitset;
use std::collections::VecDeque;

/// This node's slot in a [`Ranking`] (peer slots count up from zero).
const ME: u32 = u32::MAX - 1;

/// How many pool entries a poll sets aside (every holder busy) before it stops looking,
/// while something is in flight whose end will trigger another poll. Bounds a poll's
/// cost when one peer holds everything and is at its limit.
const SET_ASIDE_LIMIT: usize = 256;

/// One node's scheduler for one release.
#[derive(Debug)]
pub struct Scheduler {
    config: Config,
    me: DeviceId,
    me_key: u64,
    wan: bool,
    /// Chunk lengths (the hashes only matter for rendezvous keys, kept in `members`).
    lens: Vec<u32>,
    have: Bitset,
    have_count: usize,
    /// Active peers' have-maps, and how many hold each chunk.
    holders: Holders,
    /// LAN requests in flight per chunk (more than one only in the endgame).
    lan_flight: Vec<u8>,
    wan_flight: Vec<bool>,
    wan_count: usize,
    /// Missing chunks with no request in flight; zero means endgame.
    waiting: usize,
    peers: Vec<Peer>,
    slots: PeerIndex,
    /// Slots of `Active` peers, ascending.
    active: Vec<u32>,
    requests: Requests,
    /// Waiting chunks that some peer holds (lazily ordered by rarity).
    pool: Rarity,
    /// WAN members now (this node if `wan`, live WAN-capable peers).
    members: Ranking,
    /// Every WAN-capable node ever seen, silent, gone, dropped or banned included: who
    /// was first in order, for counting takeovers (ranked only when a WAN fetch is
    /// issued, a few times per node, instead of kept per chunk).
    known: Vec<Member>,
    /// Missing chunks this node is responsible for and is not fetching from the WAN.
    wan_queue: WanQueue,
    /// No member can go silent before this (a lower bound, refined on timeout).
    silence_at: Option<Time>,
    pending: VecDeque<Action>,
    /// Some input since the last empty poll may have made work.
    dirty: bool,
    stats: Stats,
    moved: Vec<(usize, u32)>,
}

impl Scheduler {
    /// `have` is what the node already holds (after the local copy); `wan` says whether
    /// this node can reach the seeder. A `have` of another length than `chunks` counts
    /// as holding nothing.
    pub fn new(
        config: Config,
        me: DeviceId,
        chunks: Vec<ChunkInfo>,
        have: Bitset,
        wan: bool,
    ) -> Scheduler {
        let n = chunks.len();
        let mut mine = Bitset::new(n);
        let mut have_count = 0;
        if have.len() == n {
            for i in (0..n).filter(|&i| have.get(i)) {
                mine.set(i);
                have_count += 1;
            }
        }
        let me_key = rendezvous::member_key(&me);
        let chunk_keys: Vec<u64> = chunks
            .iter()
            .map(|c| rendezvous::chunk_key(&c.hash))
            .collect();
        let tie = chunk_keys
            .iter()
            .map(|&k| rendezvous::mix64(k ^ me_key))
            .collect();
        let mut s = Scheduler {
            config,
            me,
            me_key,
            wan: false,
            have: mine,
            have_count,
            holders: Holders::new(n),
            lan_flight: vec![0; n],
            wan_flight: vec![false; n],
            wan_count: 0,
            waiting: n - have_count,
            peers: Vec::new(),
            slots: PeerIndex::default(),
            active: Vec::new(),
            requests: Requests::default(),
            pool: Rarity::new(tie),
            members: Ranking::new(chunk_keys),
            known: Vec::new(),
            wan_queue: WanQueue::default(),
            silence_at: None,
            pending: VecDeque::new(),
            dirty: true,
            stats: Stats::default(),
            moved: Vec::new(),
            lens: chunks.iter().map(|c| c.len).collect(),
        };
        s.handle_wan_reachable(Time(0), wan);
        s
    }

    /// A peer's full have-map for this release: it is now a site member working on the
    /// release. `wan` says whether it can reach the seeder. Ignored for a banned peer
    /// or a map of the wrong length; replaces an earlier map.
    pub fn handle_peer_have(&mut self, now: Time, peer: DeviceId, have: Bitset, wan: bool) {
        let n = self.lens.len();
        if have.len() != n || peer == self.me {
            return;
        }
        let slot = self.slot_for(peer);
        let s = slot as usize;
        let replaced = match self.peers[s].state {
            PeerState::Banned => return,
            PeerState::Active => {
                self.forget_map(slot);
                true
            }
            PeerState::Dropped => {
                self.peers[s].strikes = 0;
                false
            }
            PeerState::Gone => false,
        };
        let p = &mut self.peers[s];
        p.state = PeerState::Active;
        p.wan = wan;
        p.silent = false;
        p.heard = now;
        let mut count = 0;
        for i in (0..n).filter(|&i| have.get(i)) {
            self.holders.set(slot, i);
            self.wan_queue.held(i);
            count += 1;
            if !replaced && self.holders.count(i) == 1 && self.waiting_of(i) {
                self.pool.push(i, 1);
            }
        }
        self.peers[s].have_count = count;
        if replaced {
            self.rebuild_pool();
        }
        if wan && !self.peers[s].known {
            self.peers[s].known = true;
            let key = self.peers[s].key;
            self.known.push(Member { slot, key });
        }
        self.sync_member(now, slot);
        self.refresh_active();
        self.note_alive(now, slot);
        self.dirty = true;
    }

    /// A peer announced one more chunk. Ignored unless the peer has a have-map here.
    pub fn handle_peer_has(&mut self, now: Time, peer: DeviceId, index: usize) {
        let Some(slot) = self.slots.get(&peer, &self.peers) else {
            return;
        };
        if self.peers[slot as usize].state != PeerState::Active || !self.holders.set(slot, index) {
            return;
        }
        self.wan_queue.held(index);
        let p = &mut self.peers[slot as usize];
        p.have_count += 1;
        p.heard = p.heard.max(now);
        let was_silent = std::mem::replace(&mut p.silent, false);
        if self.waiting_of(index) {
            if self.holders.count(index) == 1 {
                self.pool.push(index, 1);
            }
            self.dirty = true;
        }
        if was_silent {
            self.sync_member(now, slot);
            self.dirty = true;
        }
        self.note_alive(now, slot);
    }

    /// A peer disconnected or left the release: its have-map is forgotten and its
    /// requests go back to the pool. It stays banned if it was.
    pub fn handle_peer_gone(&mut self, now: Time, peer: DeviceId) {
        let Some(slot) = self.slots.get(&peer, &self.peers) else {
            return;
        };
        if self.peers[slot as usize].state != PeerState::Active {
            return;
        }
        self.peers[slot as usize].state = PeerState::Gone;
        self.release_peer(now, slot);
    }

    /// Whether this node can reach the seeder now.
    pub fn handle_wan_reachable(&mut self, _now: Time, wan: bool) {
        if wan == self.wan {
            return;
        }
        self.wan = wan;
        let mut moved = std::mem::take(&mut self.moved);
        if self.config.fetch_only {
            // never a member: what changes is only whether it fetches the chunks that
            // have no member at all
            moved.extend(
                (0..self.lens.len())
                    .filter(|&c| self.members.winner(c) == NOBODY)
                    .map(|c| (c, NOBODY)),
            );
            self.apply_moves(&mut moved);
            self.moved = moved;
            self.dirty = true;
            return;
        }
        let me = Member {
            slot: ME,
            key: self.me_key,
        };
        if wan {
            self.members.join(me, &mut moved);
            if !self.known.iter().any(|m| m.slot == ME) {
                self.known.push(me);
            }
        } else {
            self.members.leave(ME, &mut moved);
        }
        self.apply_moves(&mut moved);
        self.moved = moved;
        self.dirty = true;
    }

    /// A LAN request issued by `FetchLan` ended. Outcomes of requests not in flight
    /// (cancelled, timed out) still count when they carry proof: an `Ok` chunk is kept,
    /// a `Bad` one bans the peer.
    pub fn handle_lan_done(
        &mut self,
        now: Time,
        peer: DeviceId,
        index: usize,
        outcome: LanOutcome,
    ) {
        let Some(slot) = self.slots.get(&peer, &self.peers) else {
            return;
        };
        if index >= self.lens.len() {
            return;
        }
        let s = slot as usize;
        let req = self.requests.take(slot, index);
        if let Some(r) = &req {
            if outcome == LanOutcome::Ok {
                let sharing = self.peers[s].in_flight;
                let elapsed = now.since(r.issued).as_micros().min(u128::from(u64::MAX)) as u64;
                self.peers[s].sample_speed(self.lens[index], elapsed, sharing);
            }
            self.end_request(r);
        }
        if outcome != LanOutcome::Ok && req.is_some() {
            self.stats.lan_failures += 1;
        }
        match outcome {
            LanOutcome::Ok => {
                if !self.have.get(index) {
                    self.stats.lan_chunks += 1;
                    self.stats.lan_bytes += u64::from(self.lens[index]);
                    self.acquire(index);
                }
            }
            LanOutcome::Bad => self.ban_peer(now, slot, Fault::BadChunk { index }),
            LanOutcome::NotServed => {
                if req.is_some() {
                    let p = &mut self.peers[s];
                    p.false_claims = p.false_claims.saturating_add(1);
                    // a new have-map resets its strikes, not this: a liar that comes
                    // back and lies again is banned
                    if p.false_claims >= self.config.max_false_claims.max(1) {
                        self.ban_peer(now, slot, Fault::FalseClaim { index });
                    } else {
                        self.drop_peer(now, slot, Fault::FalseClaim { index });
                    }
                }
            }
            LanOutcome::Failed => {
                if req.is_some() {
                    self.strike(now, slot);
                }
            }
        }
        self.requeue(index);
        self.dirty = true;
    }

    /// A WAN request issued by `FetchWan` ended (`ok`: verified and durable). A failed
    /// one goes back to this node's WAN queue while it is still responsible.
    pub fn handle_wan_done(&mut self, _now: Time, index: usize, ok: bool) {
        if index >= self.lens.len() {
            return;
        }
        let was = self.wan_flight[index];
        if was {
            self.track(index, |s| s.wan_flight[index] = false);
            self.wan_count -= 1;
        }
        if ok {
            if was {
                self.stats.wan_chunks += 1;
                self.stats.wan_bytes += u64::from(self.lens[index]);
            }
            if !self.have.get(index) {
                self.acquire(index);
            }
        } else if was && !self.have.get(index) && self.is_mine(index) {
            self.wan_queue.insert(index, self.holders.count(index) > 0);
        }
        self.requeue(index);
        self.dirty = true;
    }

    /// The chunk arrived some other way (a local copy found late, an import).
    pub fn handle_have(&mut self, _now: Time, index: usize) {
        if index < self.lens.len() && !self.have.get(index) {
            self.acquire(index);
        }
    }

    /// Deadlines up to `now` fire: request timeouts (the request is cancelled and
    /// requeued, the peer gets a strike), then silent members (the next member in
    /// rendezvous order takes their chunks over).
    pub fn handle_timeout(&mut self, now: Time) {
        let expired = self.requests.take_where(|r| r.deadline <= now);
        for r in &expired {
            self.stats.timeouts += 1;
            self.stats.cancels += 1;
            self.end_request(r);
            self.requeue(r.index);
            let p = &self.peers[r.peer as usize];
            self.pending.push_back(Action::Cancel {
                peer: p.id,
                index: r.index,
            });
            if p.state == PeerState::Active {
                self.strike(now, r.peer);
            }
            self.dirty = true;
        }
        if self.silence_at.is_some_and(|at| at <= now) {
            self.find_silent(now);
        }
    }

    /// The next thing to do, or `None` until an input changes or the deadline passes.
    pub fn poll_action(&mut self, now: Time) -> Option<Action> {
        if let Some(a) = self.pending.pop_front() {
            return Some(a);
        }
        if !self.dirty || self.is_complete() {
            return None;
        }
        if let Some(a) = self.next_wan() {
            return Some(a);
        }
        let (lan, truncated) = self.next_lan(now);
        if lan.is_some() {
            return lan;
        }
        if let Some(a) = self.next_duplicate(now) {
            return Some(a);
        }
        self.dirty = truncated;
        None
    }

    /// The earliest deadline, if any: a LAN request's, or the next instant a member
    /// may turn silent (never while this node is complete). The silence instant is
    /// kept as a cheap lower bound, so a node may wake once early; `handle_timeout`
    /// then finds nothing due and this names the exact instant.
    pub fn poll_timeout(&self) -> Option<Time> {
        let req = self.requests.earliest();
        let silence = self.silence_at.filter(|_| !self.is_complete());
        match (req, silence) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn have(&self) -> &Bitset {
        &self.have
    }

    pub fn is_complete(&self) -> bool {
        self.have_count == self.lens.len()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The member this node expects to fetch chunk `index` from the WAN now, by
    /// rendezvous order over the live members, or this node if it is fetch-only and
    /// there is no member; `None` if nobody will (or there is no such chunk).
    pub fn responsible(&self, index: usize) -> Option<DeviceId> {
        if index >= self.lens.len() {
            return None;
        }
        match self.members.winner(index) {
            NOBODY if self.is_mine(index) => Some(self.me),
            NOBODY => None,
            ME => Some(self.me),
            slot => self.peers.get(slot as usize).map(|p| p.id),
        }
    }

    /// LAN requests in flight, endgame duplicates included.
    pub fn lan_in_flight(&self) -> usize {
        self.requests.len()
    }

    /// WAN requests in flight.
    pub fn wan_in_flight(&self) -> usize {
        self.wan_count
    }

    // --- picking -------------------------------------------------------------------

    /// A chunk this node is responsible for that no peer holds.
    fn next_wan(&mut self) -> Option<Action> {
        if !self.wan || self.wan_count >= self.config.wan_in_flight {
            return None;
        }
        let index = self.wan_queue.first_ready(|i| self.lan_flight[i] == 0)?;
        self.wan_queue.remove(index);
        self.track(index, |s| s.wan_flight[index] = true);
        self.wan_count += 1;
        // with no member ever seen, a fetch-only node fetches in nobody's place
        if rendezvous::first(&self.known, self.members.chunk_key(index)).is_some_and(|s| s != ME) {
            self.stats.takeovers += 1;
        }
        Some(Action::FetchWan { index })
    }

    /// The rarest waiting chunk that a peer with room holds. The second value says the
    /// search stopped early (see `SET_ASIDE_LIMIT`).
    fn next_lan(&mut self, now: Time) -> (Option<Action>, bool) {
        if self.requests.len() >= self.config.lan_total {
            return (None, false);
        }
        let per_peer = self.config.lan_per_peer;
        if !self
            .active
            .iter()
            .any(|&s| self.peers[s as usize].in_flight < per_peer)
        {
            return (None, false);
        }
        let limit = if self.requests.len() + self.wan_count > 0 {
            SET_ASIDE_LIMIT
        } else {
            usize::MAX
        };
        let mut aside = Vec::new();
        let mut found = None;
        let mut truncated = false;
        while let Some((i, count)) = self.pool.pop() {
            let holders = self.holders.count(i);
            if holders == 0 || !self.waiting_of(i) {
                continue;
            }
            if count != holders {
                self.pool.push(i, holders);
                continue;
            }
            if let Some(slot) = self.best_peer(i, false) {
                found = Some((i, slot));
                break;
            }
            aside.push(i);
            if aside.len() >= limit {
                truncated = true;
                break;
            }
        }
        for i in aside {
            self.pool.push(i, self.holders.count(i));
        }
        (
            found.map(|(i, slot)| self.issue_lan(now, slot, i)),
            truncated,
        )
    }

    /// Endgame: every missing chunk is in flight; ask one more peer for one of them.
    fn next_duplicate(&mut self, now: Time) -> Option<Action> {
        let dups = self.config.endgame_duplicates;
        if dups == 0 || self.waiting > 0 || self.requests.len() >= self.config.lan_total {
            return None;
        }
        let cap = dups.saturating_add(1).min(usize::from(u8::MAX));
        let candidates: Vec<usize> = self
            .requests
            .iter()
            .map(|r| r.index)
            .filter(|&i| usize::from(self.lan_flight[i]) < cap)
            .collect();
        for i in candidates {
            if let Some(slot) = self.best_peer(i, true) {
                self.stats.duplicates += 1;
                return Some(self.issue_lan(now, slot, i));
            }
        }
        None
    }

    /// The cheapest active peer holding `index` with room; with `fresh`, only one not
    /// already asked for it.
    fn best_peer(&self, index: usize, fresh: bool) -> Option<u32> {
        let per_peer = self.config.lan_per_peer;
        self.holders
            .of(index)
            .filter(|&s| {
                let p = &self.peers[s as usize];
                p.state == PeerState::Active
                    && p.in_flight < per_peer
                    && !(fresh && self.requests.asked(s, index))
            })
            .min_by(|&a, &b| self.peers[a as usize].cheaper(&self.peers[b as usize]))
    }

    fn issue_lan(&mut self, now: Time, slot: u32, index: usize) -> Action {
        let c = &self.config;
        let deadline =
            requests::deadline(now, self.lens[index], c.floor_bytes_per_s, c.request_grace);
        self.requests.insert(Request {
            peer: slot,
            index,
            issued: now,
            deadline,
        });
        self.stats.lan_requests += 1;
        let p = &mut self.peers[slot as usize];
        p.in_flight += 1;
        let peer = p.id;
        self.track(index, |s| {
            s.lan_flight[index] = s.lan_flight[index].saturating_add(1)
        });
        Action::FetchLan { peer, index }
    }

    // --- bookkeeping ---------------------------------------------------------------

    /// Whether this node is the one to fetch chunk `i` from the WAN: it ranks first
    /// among the members, or it is fetch-only, reaches the seeder and no member is.
    fn is_mine(&self, i: usize) -> bool {
        match self.members.winner(i) {
            ME => true,
            NOBODY => self.config.fetch_only && self.wan,
            _ => false,
        }
    }

    fn waiting_of(&self, i: usize) -> bool {
        !self.have.get(i) && self.lan_flight[i] == 0 && !self.wan_flight[i]
    }

    /// Runs `f` and keeps `waiting` true to chunk `i`'s change.
    fn track(&mut self, i: usize, f: impl FnOnce(&mut Scheduler)) {
        let before = self.waiting_of(i);
        f(self);
        match (before, self.waiting_of(i)) {
            (true, false) => self.waiting -= 1,
            (false, true) => self.waiting += 1,
            _ => {}
        }
    }

    /// The chunk is here: stop every other request for it.
    fn acquire(&mut self, index: usize) {
        self.track(index, |s| s.have.set(index));
        self.have_count += 1;
        self.wan_queue.remove(index);
        for r in self.requests.take_where(|r| r.index == index) {
            self.stats.cancels += 1;
            self.end_request(&r);
            self.pending.push_back(Action::Cancel {
                peer: self.peers[r.peer as usize].id,
                index,
            });
        }
        self.dirty = true;
    }

    /// A LAN request left the table: free its slot.
    fn end_request(&mut self, r: &Request) {
        let p = &mut self.peers[r.peer as usize];
        p.in_flight = p.in_flight.saturating_sub(1);
        let i = r.index;
        self.track(i, |s| s.lan_flight[i] = s.lan_flight[i].saturating_sub(1));
    }

    /// Back to the pool if it is waiting and some peer holds it (the WAN queue does not
    /// depend on in-flight state, so it needs nothing).
    fn requeue(&mut self, index: usize) {
        if self.waiting_of(index) && self.holders.count(index) > 0 {
            self.pool.push(index, self.holders.count(index));
        }
    }

    fn rebuild_pool(&mut self) {
        self.pool.clear();
        for i in 0..self.lens.len() {
            if self.holders.count(i) > 0 && self.waiting_of(i) {
                self.pool.push(i, self.holders.count(i));
            }
        }
    }

    fn slot_for(&mut self, peer: DeviceId) -> u32 {
        if let Some(slot) = self.slots.get(&peer, &self.peers) {
            return slot;
        }
        let slot = self.peers.len() as u32;
        let key = rendezvous::member_key(&peer);
        self.peers.push(Peer::new(peer, key));
        self.holders.fit(slot);
        self.slots.insert(&peer, slot);
        slot
    }

    fn refresh_active(&mut self) {
        self.active.clear();
        for (s, p) in self.peers.iter().enumerate() {
            if p.state == PeerState::Active {
                self.active.push(s as u32);
            }
        }
    }

    /// Subtracts a peer's have-map from the holder counts and clears it. The caller
    /// rebuilds the pool.
    fn forget_map(&mut self, slot: u32) {
        self.holders.clear(slot);
        let holders = &self.holders;
        self.wan_queue.rebuild(|i| holders.count(i) > 0);
        self.peers[slot as usize].have_count = 0;
    }

    /// The peer left the usable set (gone, dropped, banned): forget its map, requeue
    /// its requests, take it out of the member set.
    fn release_peer(&mut self, now: Time, slot: u32) {
        self.forget_map(slot);
        for r in self.requests.take_where(|r| r.peer == slot) {
            self.end_request(&r);
        }
        self.peers[slot as usize].in_flight = 0;
        self.rebuild_pool();
        self.sync_member(now, slot);
        self.refresh_active();
        self.dirty = true;
    }

    /// Never used again for this release, and its new have-maps are ignored.
    fn ban_peer(&mut self, now: Time, slot: u32, reason: Fault) {
        let p = &mut self.peers[slot as usize];
        if p.state == PeerState::Banned {
            return;
        }
        p.state = PeerState::Banned;
        self.stats.bans += 1;
        self.pending.push_back(Action::Ban { peer: p.id, reason });
        self.release_peer(now, slot);
    }

    fn drop_peer(&mut self, now: Time, slot: u32, reason: Fault) {
        let p = &mut self.peers[slot as usize];
        if p.state != PeerState::Active {
            return;
        }
        p.state = PeerState::Dropped;
        self.stats.drops += 1;
        self.pending.push_back(Action::Drop { peer: p.id, reason });
        self.release_peer(now, slot);
    }

    fn strike(&mut self, now: Time, slot: u32) {
        let p = &mut self.peers[slot as usize];
        p.strikes = p.strikes.saturating_add(1);
        if p.strikes >= self.config.max_strikes {
            self.drop_peer(now, slot, Fault::TooSlow);
        }
    }

    /// Puts the peer in or out of the member set as its state says.
    fn sync_member(&mut self, now: Time, slot: u32) {
        let p = &self.peers[slot as usize];
        let should = p.is_member();
        let is = self.members.contains(slot);
        let mut moved = std::mem::take(&mut self.moved);
        if should && !is {
            self.members.join(Member { slot, key: p.key }, &mut moved);
        } else if !should && is {
            self.members.leave(slot, &mut moved);
            self.members_shrank(now);
        }
        self.apply_moves(&mut moved);
        self.moved = moved;
    }

    /// Keeps the WAN queue true to the chunks whose winner changed.
    fn apply_moves(&mut self, moved: &mut Vec<(usize, u32)>) {
        for (c, _) in moved.drain(..) {
            if self.is_mine(c) && !self.have.get(c) && !self.wan_flight[c] {
                let held = self.holders.count(c) > 0;
                self.wan_queue.insert(c, held);
            } else {
                self.wan_queue.remove(c);
            }
        }
        self.dirty = true;
    }

    /// A member left, so the others may have new work: their silence clocks restart,
    /// or a member that had nothing to do would look silent the moment it got some.
    fn members_shrank(&mut self, now: Time) {
        let after = now.plus(self.config.takeover_after);
        let n = self.lens.len();
        for p in self.peers.iter_mut().filter(|p| p.can_go_silent(n)) {
            p.heard = p.heard.max(now);
            self.silence_at = Some(self.silence_at.map_or(after, |t| t.min(after)));
        }
    }

    /// The peer just spoke: make sure a silence check is scheduled for it.
    fn note_alive(&mut self, now: Time, slot: u32) {
        if self.peers[slot as usize].can_go_silent(self.lens.len()) {
            let at = now.plus(self.config.takeover_after);
            self.silence_at = Some(self.silence_at.map_or(at, |t| t.min(at)));
        }
    }

    /// Marks members silent whose clock ran out; schedules the next check.
    fn find_silent(&mut self, now: Time) {
        let after = self.config.takeover_after;
        let n = self.lens.len();
        let mut next: Option<Time> = None;
        let mut silent = Vec::new();
        for (s, p) in self.peers.iter_mut().enumerate() {
            if !p.can_go_silent(n) {
                continue;
            }
            let due = p.heard.plus(after);
            if due <= now {
                p.silent = true;
                silent.push(s as u32);
            } else {
                next = Some(next.map_or(due, |t| t.min(due)));
            }
        }
        self.silence_at = next;
        for slot in silent {
            self.sync_member(now, slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;

    fn chunks(n: u32) -> Vec<ChunkInfo> {
        (0..n)
            .map(|i| ChunkInfo {
                hash: Hash::of(&i.to_le_bytes()),
                len: 1_000,
            })
            .collect()
    }

    fn full(n: usize) -> Bitset {
        let mut b = Bitset::new(n);
        (0..n).for_each(|i| b.set(i));
        b
    }

    fn drain(s: &mut Scheduler, now: Time) -> Vec<Action> {
        std::iter::from_fn(|| s.poll_action(now)).collect()
    }

    const ME: KeyId = KeyId([1; 32]);
    const PEER: KeyId = KeyId([2; 32]);
    use crate::keys::KeyId;

    #[test]
    fn a_banned_peer_stays_banned_and_a_dropped_one_may_come_back() {
        let mut s = Scheduler::new(Config::default(), ME, chunks(2), Bitset::new(2), false);
        s.handle_peer_have(Time(0), PEER, full(2), false);
        let asked = drain(&mut s, Time(0));
        assert_eq!(asked.len(), 2);
        s.handle_lan_done(Time(1), PEER, 0, LanOutcome::NotServed);
        assert_eq!(
            drain(&mut s, Time(1)),
            vec![Action::Drop {
                peer: PEER,
                reason: Fault::FalseClaim { index: 0 }
            }]
        );
        // Its late answer for chunk 1 still counts: the bytes were verified.
        s.handle_lan_done(Time(2), PEER, 1, LanOutcome::Ok);
        assert!(s.have().get(1));
        // Back with a new have-map: asked again.
        s.handle_peer_have(Time(3), PEER, full(2), false);
        assert_eq!(
            drain(&mut s, Time(3)),
            vec![Action::FetchLan {
                peer: PEER,
                index: 0
            }]
        );
        s.handle_lan_done(Time(4), PEER, 0, LanOutcome::Bad);
        assert_eq!(
            drain(&mut s, Time(4)),
            vec![Action::Ban {
                peer: PEER,
                reason: Fault::BadChunk { index: 0 }
            }]
        );
        // Banned: a new map is ignored; nothing to ask anyone.
        s.handle_peer_have(Time(5), PEER, full(2), false);
        s.handle_peer_has(Time(5), PEER, 0);
        assert!(drain(&mut s, Time(5)).is_empty());
        assert_eq!((s.stats().drops, s.stats().bans), (1, 1));
    }

    // guards: a peer that claims chunks it does not serve, is dropped, comes back with
    // a new have-map and lies again (it could do so for ever)
    #[test]
    fn a_peer_that_lies_again_after_coming_back_is_banned() {
        let mut s = Scheduler::new(Config::default(), ME, chunks(2), Bitset::new(2), false);
        s.handle_peer_have(Time(0), PEER, full(2), false);
        assert_eq!(drain(&mut s, Time(0)).len(), 2);
        s.handle_lan_done(Time(1), PEER, 0, LanOutcome::NotServed);
        // its second denial was already asked before the drop: it does not count twice
        s.handle_lan_done(Time(1), PEER, 1, LanOutcome::NotServed);
        assert_eq!(
            drain(&mut s, Time(1)),
            vec![Action::Drop {
                peer: PEER,
                reason: Fault::FalseClaim { index: 0 }
            }]
        );
        s.handle_peer_have(Time(2), PEER, full(2), false);
        let asked = drain(&mut s, Time(2));
        assert_eq!(asked.len(), 2, "back and believed once more: {asked:?}");
        s.handle_lan_done(Time(3), PEER, 1, LanOutcome::NotServed);
        assert_eq!(
            drain(&mut s, Time(3)),
            vec![Action::Ban {
                peer: PEER,
                reason: Fault::FalseClaim { index: 1 }
            }]
        );
        s.handle_peer_have(Time(4), PEER, full(2), false);
        assert!(
            drain(&mut s, Time(4)).is_empty(),
            "a banned liar is not asked"
        );
        assert_eq!((s.stats().drops, s.stats().bans), (1, 1));
    }

    // guards: a fetch-only node counting itself a WAN member (its peers never see its
    // have-map, so its share was fetched twice), and one that never fetches when alone
    #[test]
    fn a_fetch_only_node_fetches_from_the_wan_only_while_the_site_has_no_member() {
        let config = Config {
            fetch_only: true,
            wan_in_flight: 8,
            ..Config::default()
        };
        let mut s = Scheduler::new(config, ME, chunks(4), Bitset::new(4), true);
        // Alone: every chunk is its to fetch, none a takeover.
        let alone = drain(&mut s, Time(0));
        assert_eq!(alone.len(), 4);
        assert!(alone.iter().all(|a| matches!(a, Action::FetchWan { .. })));
        assert_eq!(s.responsible(0), Some(ME));
        s.handle_wan_done(Time(1), 0, true);
        // A member arrives: the chunks in flight still land; nothing new goes out and
        // the member is responsible for everything.
        s.handle_peer_have(Time(1), PEER, Bitset::new(4), true);
        assert!(drain(&mut s, Time(1)).is_empty());
        assert!((0..4).all(|c| s.responsible(c) == Some(PEER)));
        for c in 1..3 {
            s.handle_wan_done(Time(2), c, false);
        }
        assert!(
            drain(&mut s, Time(2)).is_empty(),
            "a failed fetch is the member's now"
        );
        // The member goes: its chunks come back, counted as takeovers.
        s.handle_peer_gone(Time(3), PEER);
        let back = drain(&mut s, Time(3));
        assert_eq!(
            back,
            vec![Action::FetchWan { index: 1 }, Action::FetchWan { index: 2 }]
        );
        assert_eq!(s.stats().takeovers, 2);
        // Without the seeder it fetches nothing from it.
        s.handle_wan_reachable(Time(4), false);
        s.handle_wan_done(Time(4), 1, false);
        s.handle_wan_done(Time(4), 2, false);
        assert!(drain(&mut s, Time(4)).is_empty());
        assert_eq!(s.responsible(1), None);
    }

    #[test]
    fn inputs_that_do_not_fit_are_ignored() {
        let mut s = Scheduler::new(Config::default(), ME, chunks(3), Bitset::new(7), true);
        assert_eq!(
            s.have().count(),
            0,
            "a have of the wrong length holds nothing"
        );
        s.handle_peer_have(Time(0), PEER, full(4), true);
        s.handle_peer_has(Time(0), PEER, 1);
        s.handle_peer_have(Time(0), ME, full(3), true);
        s.handle_lan_done(Time(0), PEER, 0, LanOutcome::Bad);
        s.handle_lan_done(Time(0), KeyId([9; 32]), 99, LanOutcome::Ok);
        s.handle_wan_done(Time(0), 99, true);
        s.handle_have(Time(0), 99);
        s.handle_peer_gone(Time(0), KeyId([9; 32]));
        // Only member: every chunk is this node's to fetch; no peer was ever taken in.
        let all = drain(&mut s, Time(0));
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|a| matches!(a, Action::FetchWan { .. })));
        assert_eq!(s.stats().bans, 0);
        assert_eq!(s.responsible(0), Some(ME));
        assert_eq!(s.responsible(99), None);
    }

    #[test]
    fn a_lan_request_times_out_at_its_deadline_not_before() {
        let mut s = Scheduler::new(Config::default(), ME, chunks(1), Bitset::new(1), false);
        s.handle_peer_have(Time(0), PEER, full(1), false);
        assert_eq!(drain(&mut s, Time(0)).len(), 1);
        // 1,000 bytes at 64 KiB/s is 15,258 µs, plus 2 s of grace.
        let due = Time(2_015_258);
        assert_eq!(s.poll_timeout(), Some(due));
        s.handle_timeout(Time(due.0 - 1));
        assert!(drain(&mut s, Time(due.0 - 1)).is_empty());
        s.handle_timeout(due);
        assert_eq!(
            drain(&mut s, due),
            vec![
                Action::Cancel {
                    peer: PEER,
                    index: 0
                },
                Action::FetchLan {
                    peer: PEER,
                    index: 0
                }
            ]
        );
        assert_eq!(s.stats().timeouts, 1);
    }
}
