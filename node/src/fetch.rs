//! The fetch loop: drives `shoal_core::sched::Scheduler` with the WAN (the seeder) and
//! the LAN (peers) until every chunk of the release is in the staging files. Every
//! chunk, from either side, is checked by `Assembly::write_chunk` before it is written;
//! progress becomes durable in batches (`Assembly::commit`).

use crate::agent::Agent;
use crate::assemble::Assembly;
use crate::chunk_buf::ChunkBuf;
use crate::error::NodeError;
use crate::lan::peer::PeerError;
use crate::lan::{LanEvent, Pacer};
use crate::metrics::Metrics;
use crate::wan::stream::StreamError;
use crate::wan::{WanClient, WanError};
use shoal_core::sched::{Action, ChunkInfo, Config, LanOutcome, Scheduler, Time};
use shoal_core::{DeviceId, Hash};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info, warn};

/// Chunks per WAN request, and WAN requests in flight, without a rate limit.
const PER_REQUEST: usize = 8;
const IN_FLIGHT: usize = 4;
/// LAN chunk requests in flight to one peer (the scheduler's default of 8 left the
/// loopback benchmark waiting on round trips: docs/benchmarks.md).
const LAN_PER_PEER: usize = 32;
/// How often progress is made durable and shown while chunks arrive.
const COMMIT_EVERY: Duration = Duration::from_millis(250);
/// With nothing in flight and nothing heard for this long, the fetch gives up (and the
/// agent tries again later).
const STALL: Duration = Duration::from_secs(60);

/// A WAN answer: per hash asked, the bytes or `None` (not held).
type WanAnswer = Result<Vec<(Hash, Option<ChunkBuf>)>, WanError>;

/// A request's answer, back on the loop.
enum Done {
    Wan {
        indices: Vec<usize>,
        result: WanAnswer,
    },
    Lan {
        batch: u64,
        peer: DeviceId,
        index: usize,
        result: Result<Option<ChunkBuf>, LanOutcome>,
    },
    /// A LAN batch was stopped (every request it still carried was cancelled); this
    /// many of its chunks will never be answered.
    Stopped { unanswered: usize },
}

/// The LAN requests in flight by batch: one batch is one `GetChunks` stream to one
/// peer, answered in order, so a single request in it cannot be stopped; the stream is
/// stopped once every request it still carries was cancelled (an endgame loser, a
/// timeout), and the peer stops sending.
#[derive(Debug, Default)]
struct LanBatches {
    next: u64,
    /// Per batch: its stop signal, and the chunks it carries that are still wanted.
    open: HashMap<u64, (Arc<Notify>, BTreeSet<usize>)>,
    /// The batch that carries each request.
    by_request: HashMap<(DeviceId, usize), u64>,
}

impl LanBatches {
    /// A new batch of `indices` to `peer`: its id and its stop signal.
    fn add(&mut self, peer: DeviceId, indices: &[usize]) -> (u64, Arc<Notify>) {
        let id = self.next;
        self.next += 1;
        let stop = Arc::new(Notify::new());
        self.open
            .insert(id, (Arc::clone(&stop), indices.iter().copied().collect()));
        for &i in indices {
            self.by_request.insert((peer, i), id);
        }
        (id, stop)
    }

    /// Chunk `index` of `batch` was answered (or failed).
    fn answered(&mut self, batch: u64, peer: DeviceId, index: usize) {
        if self.by_request.get(&(peer, index)) == Some(&batch) {
            self.by_request.remove(&(peer, index));
        }
        if let Some((_, wanted)) = self.open.get_mut(&batch) {
            wanted.remove(&index);
            if wanted.is_empty() {
                self.open.remove(&batch);
            }
        }
    }

    /// The scheduler cancelled the request `(peer, index)`: the stop signal of its
    /// batch if nothing the batch still carries is wanted any more.
    fn cancel(&mut self, peer: DeviceId, index: usize) -> Option<Arc<Notify>> {
        let batch = self.by_request.remove(&(peer, index))?;
        let (_, wanted) = self.open.get_mut(&batch)?;
        wanted.remove(&index);
        if !wanted.is_empty() {
            return None;
        }
        self.open.remove(&batch).map(|(stop, _)| stop)
    }
}

/// How a failed LAN request counts against the peer: a broken frame or message is the
/// peer's doing (bad), a lost connection is not (failed).
fn lan_failure(e: &PeerError) -> LanOutcome {
    match e {
        PeerError::Protocol { .. }
        | PeerError::Stream(
            StreamError::Frame(_) | StreamError::Decode(_) | StreamError::Truncated,
        ) => LanOutcome::Bad,
        _ => LanOutcome::Failed,
    }
}

/// How long a fetch waits, at most, for the peers it knows of to connect and send
/// their have-maps before its first WAN request: a node that starts alone would
/// otherwise take every chunk as its own to fetch.
const WARM_UP: Duration = Duration::from_secs(3);

impl Agent {
    /// Feeds the have-maps of the peers connected now to the scheduler, waiting up to
    /// [`WARM_UP`] for all of them to answer.
    async fn warm_up(&mut self, sched: &mut Scheduler, id: Hash, start: Instant, n: usize) {
        let Some(lan) = self.lan.as_mut() else { return };
        let now = || Time::from_micros(start.elapsed().as_micros() as u64);
        let mut answered = std::collections::BTreeSet::new();
        let until = tokio::time::Instant::now() + WARM_UP;
        loop {
            // every peer the dialer knows is connected and has answered
            let connected: Vec<DeviceId> = lan.peers().iter().map(|p| p.id).collect();
            if connected.len() >= lan.expected_peers()
                && connected.iter().all(|p| answered.contains(p))
            {
                break;
            }
            let event = match tokio::time::timeout_at(until, lan.next_event()).await {
                Ok(Some(e)) => e,
                _ => break,
            };
            match event {
                LanEvent::HaveMap {
                    peer,
                    release,
                    bits,
                    wan,
                } if release == id && bits.len() == n => {
                    sched.handle_peer_have(now(), peer, bits, wan);
                    answered.insert(peer);
                }
                LanEvent::Have {
                    peer,
                    release,
                    index,
                } if release == id && index < n => {
                    sched.handle_peer_has(now(), peer, index);
                }
                // a peer of the site that has not started on the release yet is
                // likely to within moments (the same deployment): wait for it
                LanEvent::Unknown { .. } => {}
                LanEvent::Gone { peer } => {
                    sched.handle_peer_gone(now(), peer);
                    answered.insert(peer);
                }
                _ => {}
            }
        }
    }

    /// WAN chunks per request and in flight: without a rate limit, enough to fill a
    /// fast link; under one, about two round trips' worth and no more, since what is in
    /// flight when the device restarts is fetched again.
    fn wan_window(&self, client: &WanClient, asm: &Assembly) -> (usize, usize) {
        match self.options.wan_rate {
            None => (PER_REQUEST, PER_REQUEST * IN_FLIGHT),
            Some(rate) => {
                let rtt = client.connection().rtt().as_secs_f64();
                let avg = (asm.plan.unique_bytes() / asm.plan.chunks.len().max(1) as u64).max(1);
                let chunks = ((rate as f64 * rtt * 2.0) / avg as f64).ceil() as usize;
                let chunks = chunks.clamp(1, PER_REQUEST * IN_FLIGHT);
                (chunks.div_ceil(2).clamp(1, PER_REQUEST), chunks)
            }
        }
    }

    /// Fetches every missing chunk of `asm` from the seeder (`wan`, if reachable) and
    /// from LAN peers, as the scheduler decides.
    pub(crate) async fn fetch(
        &mut self,
        wan: Option<&WanClient>,
        id: Hash,
        asm: &mut Assembly,
    ) -> Result<(), NodeError> {
        let start = Instant::now();
        let now = || Time::from_micros(start.elapsed().as_micros() as u64);
        let (per_request, wan_in_flight) = match wan {
            Some(c) => self.wan_window(c, asm),
            None => (PER_REQUEST, 0),
        };
        let config = Config {
            wan_in_flight: wan_in_flight.max(1),
            lan_per_peer: LAN_PER_PEER,
            lan_total: 4 * LAN_PER_PEER,
            // peers never see the have-map of a node that serves nothing
            fetch_only: self.lan.is_some() && !self.options.lan.serve,
            ..Config::default()
        };
        let chunks: Vec<ChunkInfo> = asm
            .plan
            .chunks
            .iter()
            .map(|c| ChunkInfo {
                hash: c.hash,
                len: c.len,
            })
            .collect();
        let mut sched = Scheduler::new(
            config,
            self.key.key_id(),
            chunks,
            asm.bits.clone(),
            wan.is_some(),
        );
        let wan = wan.map(|c| Arc::new(c.clone()));
        let mut wan_up = wan.is_some();
        if let Some(lan) = &mut self.lan {
            lan.drain();
            lan.shared().set_wan(wan_up);
            lan.want(id);
        }
        self.warm_up(&mut sched, id, start, asm.plan.chunks.len())
            .await;
        let wan_pacer = Arc::new(Pacer::new(self.options.wan_rate));
        let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
        let mut dones: Vec<Done> = Vec::new();
        let mut in_flight = 0usize;
        let mut batches = LanBatches::default();
        // chunks of stopped LAN streams that never came
        let mut stopped_chunks = 0u64;
        let mut since_commit = 0usize;
        let mut last_commit = Instant::now();
        let mut last_news = Instant::now();
        loop {
            // Act on everything the scheduler wants now.
            let mut wan_batch: Vec<usize> = Vec::new();
            let mut lan_batches: BTreeMap<DeviceId, Vec<usize>> = BTreeMap::new();
            while let Some(action) = sched.poll_action(now()) {
                match action {
                    Action::FetchWan { index } => wan_batch.push(index),
                    Action::FetchLan { peer, index } => {
                        lan_batches.entry(peer).or_default().push(index)
                    }
                    Action::Cancel { peer, index } => {
                        if let Some(stop) = batches.cancel(peer, index) {
                            stop.notify_one();
                        }
                    }
                    Action::Ban { peer, reason } => {
                        Metrics::add(&self.metrics.bans, 1);
                        warn!(peer = %peer.short(), ?reason, "banned a LAN peer for this release");
                        if let Some(lan) = &self.lan {
                            lan.ban(peer);
                        }
                        if !self.status.lan_banned.contains(&peer.to_hex()) {
                            self.status.lan_banned.push(peer.to_hex());
                        }
                    }
                    Action::Drop { peer, reason } => {
                        info!(peer = %peer.short(), ?reason, "dropped a LAN peer");
                        if !self.status.lan_dropped.contains(&peer.to_hex()) {
                            self.status.lan_dropped.push(peer.to_hex());
                        }
                        if let Some(lan) = &self.lan {
                            lan.drop_peer(peer);
                        }
                    }
                }
            }
            if let Some(client) = &wan {
                for batch in wan_batch.chunks(per_request) {
                    let hashes: Vec<Hash> =
                        batch.iter().map(|&i| asm.plan.chunks[i].hash).collect();
                    let bytes: u64 = batch
                        .iter()
                        .map(|&i| u64::from(asm.plan.chunks[i].len))
                        .sum();
                    let (client, pacer, tx, indices) = (
                        Arc::clone(client),
                        Arc::clone(&wan_pacer),
                        tx.clone(),
                        batch.to_vec(),
                    );
                    in_flight += 1;
                    tokio::spawn(async move {
                        pacer.take(bytes).await;
                        let result = client.chunks(&hashes).await;
                        let _ = tx.send(Done::Wan { indices, result });
                    });
                }
            } else {
                for index in wan_batch {
                    sched.handle_wan_done(now(), index, false);
                }
            }
            for (peer, indices) in lan_batches {
                let Some(p) = self.lan.as_ref().and_then(|l| l.peer(&peer)) else {
                    for index in indices {
                        sched.handle_lan_done(now(), peer, index, LanOutcome::Failed);
                    }
                    continue;
                };
                for batch in indices.chunks(shoal_core::lan::MAX_CHUNKS_PER_REQUEST) {
                    let hashes: Vec<Hash> =
                        batch.iter().map(|&i| asm.plan.chunks[i].hash).collect();
                    let bytes: u64 = batch
                        .iter()
                        .map(|&i| u64::from(asm.plan.chunks[i].len))
                        .sum();
                    let pacer = self.lan.as_ref().map(|l| l.pacer());
                    let (tx, p, batch) = (tx.clone(), p.clone(), batch.to_vec());
                    let (batch_id, stop) = batches.add(peer, &batch);
                    in_flight += batch.len();
                    tokio::spawn(async move {
                        let by_hash: Vec<(Hash, usize)> =
                            hashes.iter().copied().zip(batch.iter().copied()).collect();
                        let mut answered = 0usize;
                        let fetch = async {
                            if let Some(pacer) = pacer {
                                pacer.take(bytes).await;
                            }
                            p.chunks(id, hashes, |hash, data| {
                                let index = by_hash[answered].1;
                                debug_assert_eq!(by_hash[answered].0, hash);
                                answered += 1;
                                let _ = tx.send(Done::Lan {
                                    batch: batch_id,
                                    peer: p.id,
                                    index,
                                    result: Ok(data),
                                });
                            })
                            .await
                        };
                        // dropping the request stops its stream: the peer is told
                        // (STOP_SENDING) and sends no more of it
                        let result = tokio::select! {
                            r = fetch => Some(r),
                            () = stop.notified() => None,
                        };
                        match result {
                            None => {
                                let unanswered = by_hash.len() - answered;
                                let _ = tx.send(Done::Stopped { unanswered });
                            }
                            Some(Err(e)) => {
                                let outcome = lan_failure(&e);
                                debug!(peer = %p.id.short(), "LAN request failed: {e}");
                                for &(_, index) in &by_hash[answered..] {
                                    let _ = tx.send(Done::Lan {
                                        batch: batch_id,
                                        peer: p.id,
                                        index,
                                        result: Err(outcome),
                                    });
                                }
                            }
                            Some(Ok(())) => {}
                        }
                    });
                }
            }
            if sched.is_complete() {
                break;
            }
            // Wait for an answer, a peer's news, the scheduler's deadline or a commit.
            let deadline = sched
                .poll_timeout()
                .map(|t| start + Duration::from_micros(t.as_micros()));
            let commit_at = last_commit + COMMIT_EVERY;
            let wake = deadline.map_or(commit_at, |d| d.min(commit_at));
            let lan = self.lan.as_mut();
            tokio::select! {
                _ = rx.recv_many(&mut dones, 256) => {
                    last_news = Instant::now();
                    // everything that arrived together, before the next poll: the
                    // requests that refill the freed slots then go out in batches
                    for done in dones.drain(..) {
                        match done {
                            Done::Wan { indices, result } => {
                                in_flight -= 1;
                                match result {
                                    Ok(got) => {
                                        for (&i, (hash, data)) in indices.iter().zip(got) {
                                            let Some(data) = data else {
                                                return Err(NodeError::MissingChunk(hash));
                                            };
                                            if sched.have().get(i) {
                                                sched.handle_wan_done(now(), i, true);
                                                continue;
                                            }
                                            // a bad chunk from the seeder is a definite failure
                                            Metrics::add(&self.metrics.bytes_wan, data.len() as u64);
                                            if let Err(e) = asm.write_chunk(i, &data) {
                                                Metrics::add(&self.metrics.chunks_rejected, 1);
                                                return Err(e);
                                            }
                                            Metrics::add(&self.metrics.chunks_verified, 1);
                                            self.status.bytes_wan += data.len() as u64;
                                            if let Some(lan) = &self.lan {
                                                lan.shared().have(id, i);
                                            }
                                            sched.handle_wan_done(now(), i, true);
                                        }
                                        // WAN bytes are the scarce ones: durable after every answer
                                        asm.commit(&self.store)?;
                                        since_commit = 0;
                                        last_commit = Instant::now();
                                        self.status.done_bytes = asm.done_bytes();
                                        self.set_state("downloading", None);
                                    }
                                    Err(e) => {
                                        let has_peers = self.lan.as_ref().is_some_and(|l| !l.peers().is_empty());
                                        if !has_peers {
                                            return Err(e.into());
                                        }
                                        warn!("the seeder is unreachable ({e}); going on with LAN peers");
                                        for &i in &indices {
                                            sched.handle_wan_done(now(), i, false);
                                        }
                                        if wan_up {
                                            wan_up = false;
                                            sched.handle_wan_reachable(now(), false);
                                            if let Some(lan) = &self.lan {
                                                lan.shared().set_wan(false);
                                            }
                                        }
                                    }
                                }
                            }
                            Done::Stopped { unanswered } => {
                                in_flight -= unanswered;
                                stopped_chunks += unanswered as u64;
                            }
                            Done::Lan { batch, peer, index, result } => {
                                in_flight -= 1;
                                batches.answered(batch, peer, index);
                                let outcome = match result {
                                    Ok(Some(_)) if sched.have().get(index) => LanOutcome::Ok,
                                    Ok(Some(data)) => match asm.write_chunk(index, &data) {
                                        Ok(()) => {
                                            Metrics::add(&self.metrics.chunks_verified, 1);
                                            Metrics::add(&self.metrics.bytes_lan, data.len() as u64);
                                            self.status.bytes_lan += data.len() as u64;
                                            if let Some(lan) = &self.lan {
                                                lan.shared().have(id, index);
                                            }
                                            since_commit += 1;
                                            LanOutcome::Ok
                                        }
                                        Err(NodeError::BadChunk { .. }) => {
                                            Metrics::add(&self.metrics.chunks_rejected, 1);
                                            LanOutcome::Bad
                                        }
                                        Err(e) => return Err(e),
                                    },
                                    Ok(None) => LanOutcome::NotServed,
                                    Err(o) => o,
                                };
                                sched.handle_lan_done(now(), peer, index, outcome);
                            }
                        }
                    }
                }
                Some(event) = async { match lan { Some(l) => l.next_event().await, None => None } } => {
                    last_news = Instant::now();
                    let n = asm.plan.chunks.len();
                    match event {
                        LanEvent::HaveMap { peer, release, bits, wan } if release == id && bits.len() == n => {
                            sched.handle_peer_have(now(), peer, bits, wan);
                        }
                        LanEvent::Have { peer, release, index } if release == id && index < n => {
                            sched.handle_peer_has(now(), peer, index);
                        }
                        LanEvent::Unknown { peer, release } if release == id => sched.handle_peer_gone(now(), peer),
                        LanEvent::Gone { peer } => sched.handle_peer_gone(now(), peer),
                        _ => {}
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            sched.handle_timeout(now());
            if since_commit > 0 && last_commit.elapsed() >= COMMIT_EVERY {
                asm.commit(&self.store)?;
                since_commit = 0;
                last_commit = Instant::now();
                self.status.done_bytes = asm.done_bytes();
                self.set_state("downloading", None);
            } else if since_commit == 0 {
                last_commit = Instant::now();
            }
            if in_flight == 0 && last_news.elapsed() > STALL {
                asm.commit(&self.store)?;
                let missing = asm.plan.chunks.len() - sched.have().count();
                return Err(NodeError::NoSource(missing));
            }
        }
        asm.commit(&self.store)?;
        self.status.done_bytes = asm.done_bytes();
        self.status.last_fetch_ms = Some(start.elapsed().as_millis() as u64);
        if let Some(lan) = &self.lan {
            for p in lan.peers() {
                let path = p.conn.stats().path;
                debug!(
                    peer = %p.id.short(),
                    mtu = path.current_mtu,
                    rtt_us = path.rtt.as_micros() as u64,
                    lost = path.lost_packets,
                    congestion_events = path.congestion_events,
                    "LAN path"
                );
            }
        }
        let stats = sched.stats();
        self.status.fetch_wan_chunks = stats.wan_chunks;
        self.status.fetch_lan_chunks = stats.lan_chunks;
        self.status.fetch_takeovers = stats.takeovers;
        info!(
            wan_chunks = stats.wan_chunks,
            lan_chunks = stats.lan_chunks,
            takeovers = stats.takeovers,
            bans = stats.bans,
            cancels = stats.cancels,
            stopped_chunks,
            "fetched"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> DeviceId {
        shoal_core::KeyId([n; 32])
    }

    // guards: cancelled requests (endgame losers, timeouts) that kept downloading
    #[test]
    fn a_batch_stops_once_everything_it_still_carries_is_cancelled() {
        let mut b = LanBatches::default();
        let (first, _) = b.add(peer(1), &[1, 2, 3]);
        let (_, _) = b.add(peer(2), &[1, 4]);
        // chunk 1 arrived from peer 1; peer 2's copy of it is cancelled, but the
        // batch still carries chunk 4
        b.answered(first, peer(1), 1);
        assert!(b.cancel(peer(2), 1).is_none());
        // peer 1's batch: 2 is cancelled, 3 still wanted; then 3 is cancelled too
        assert!(b.cancel(peer(1), 2).is_none());
        assert!(b.cancel(peer(1), 3).is_some(), "nothing left to want");
        assert!(b.cancel(peer(1), 3).is_none(), "stopped once");
        // a cancel for a request no batch carries (answered already) is ignored
        assert!(b.cancel(peer(1), 1).is_none());
        assert!(b.cancel(peer(2), 4).is_some());
        assert!(b.open.is_empty() && b.by_request.is_empty());
    }

    #[test]
    fn a_request_asked_again_belongs_to_its_new_batch() {
        let mut b = LanBatches::default();
        let (old, _) = b.add(peer(1), &[7]);
        // timed out: cancelled (the old stream stops), then asked again of the same peer
        assert!(b.cancel(peer(1), 7).is_some());
        let (new, _) = b.add(peer(1), &[7]);
        // the old stream's late answer does not touch the new request
        b.answered(old, peer(1), 7);
        assert_eq!(b.by_request.get(&(peer(1), 7)), Some(&new));
        assert!(b.cancel(peer(1), 7).is_some());
    }
}
