//! The LAN swarm: devices of one site share chunks over `/shoal/xfer/1` (the spec is
//! `shoal_core::lan`'s module doc).
//!
//! - `discover`: libp2p (QUIC transport, mDNS, identify) finds peers on the LAN and
//!   learns each one's xfer address; `--peer` adds addresses by hand.
//! - `tls`: the device certificates both ends show.
//! - `serve`: the server side (admission first, have-maps, chunks, relay).
//! - `peer`: the client side, one connection per peer.
//! - `share`: what this node offers, shared with the agent.
//!
//! [`Lan`] ties them together for the agent: it keeps a connection to every admitted
//! peer it knows, and hands the agent their have-maps as [`LanEvent`]s. Which chunk to
//! ask whom for is the scheduler's call (`shoal_core::sched`); this module only moves
//! bytes, and never writes one: the agent checks every chunk against the manifest.

pub mod discover;
pub mod peer;
pub mod serve;
pub mod share;
pub mod tls;

use crate::agent::LanOptions;
use crate::error::NodeError;
use crate::wan::WanClient;
use peer::Peer;
use share::Shared;
use shoal_core::plan::Bitset;
use shoal_core::{DeviceId, Hash, Root, SecretKey};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info};

/// Connections a node serves at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections one admitted peer may hold to this node at once: it needs one; a second
/// covers a reconnect while the old connection has not timed out yet.
pub const MAX_CONNECTIONS_PER_PEER: usize = 2;
/// The application close code of a connection with a banned peer.
pub const BANNED: quinn::VarInt = quinn::VarInt::from_u32(2);
/// How often the dialer looks for peers to (re)connect.
const DIAL_EVERY: Duration = Duration::from_millis(250);
/// After a failed dial, wait this long before trying that address again (a site's
/// nodes start together and refuse each other until each has its admission).
const DIAL_BACKOFF: Duration = Duration::from_secs(1);
/// An address whose endpoint refused the connection itself (a `--no-serve` node) is
/// tried again this much later, in case it starts serving.
const NOT_SERVING_BACKOFF: Duration = Duration::from_secs(30);

/// What peers tell the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanEvent {
    HaveMap {
        peer: DeviceId,
        release: Hash,
        bits: Bitset,
        wan: bool,
    },
    Have {
        peer: DeviceId,
        release: Hash,
        index: usize,
    },
    /// The peer does not work on that release.
    Unknown {
        peer: DeviceId,
        release: Hash,
    },
    Gone {
        peer: DeviceId,
    },
}

/// Ways a hostile peer misbehaves, for tests only: no flag of `shoal-node` reaches
/// these (the test binary `shoal-hostile-peer` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehave {
    /// Every chunk served with one byte flipped.
    FlipByte,
    /// Every chunk served with 100 bytes too many.
    ExtraBytes,
    /// A chunk frame that claims 2 GiB, then bytes without end.
    Endless,
    /// A have-map claiming every chunk, and no chunk served.
    FalseHaveMap,
}

/// Paces bytes to a rate, over everything that shares it. Idle time earns no credit:
/// a node that served nothing for a minute still serves at its rate, not a minute's
/// worth of bytes at once.
#[derive(Debug)]
pub struct Pacer {
    rate: Option<u64>,
    /// When the bytes taken so far have had their time at the rate.
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(rate: Option<u64>) -> Pacer {
        Pacer {
            rate,
            next: Mutex::new(None),
        }
    }

    /// Waits until `n` more bytes fit the rate: until they have had their time after
    /// what was taken before, or, if the pacer was idle, after now.
    pub async fn take(&self, n: u64) {
        let Some(rate) = self.rate else { return };
        let due = {
            let mut next = locked(&self.next);
            let now = Instant::now();
            let from = next.map_or(now, |t| t.max(now));
            let due = from + Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
            *next = Some(due);
            due
        };
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Refused peers whose reason is kept (by device id); more are only counted, so that a
/// peer coming with ever new keys cannot grow the status without end.
pub const REFUSALS_KEPT: usize = 64;

/// What the server counts, for status and tests.
#[derive(Debug, Default)]
pub struct Counters {
    served: AtomicU64,
    refused: AtomicU64,
    served_to: Mutex<BTreeMap<DeviceId, u64>>,
    /// The last reason each refused peer was given, by the device id of its TLS
    /// certificate (the key it proved it holds, whatever its admission said).
    refusals: Mutex<BTreeMap<DeviceId, String>>,
}

impl Counters {
    pub fn served(&self, peer: DeviceId, n: u64) {
        self.served.fetch_add(n, Ordering::Relaxed);
        self.served_to(peer, n);
    }

    pub fn served_bytes(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// A peer was refused (a connection, or an intro), and why; `peer` is who it
    /// proved to be, if known.
    pub fn refusal(&self, peer: Option<DeviceId>, reason: &str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let Some(id) = peer else { return };
        let mut kept = locked(&self.refusals);
        if kept.len() < REFUSALS_KEPT || kept.contains_key(&id) {
            kept.insert(id, reason.to_string());
        }
    }

    /// The last reason each refused peer was given, by device id.
    pub fn refusals(&self) -> BTreeMap<DeviceId, String> {
        locked(&self.refusals).clone()
    }

    fn served_to(&self, peer: DeviceId, n: u64) {
        *self
            .served_to
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(peer)
            .or_default() += n;
    }

    /// Bytes served per peer.
    pub fn per_peer(&self) -> BTreeMap<DeviceId, u64> {
        self.served_to
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Everything the server and the peer connections share.
pub struct Ctx {
    pub me: DeviceId,
    /// Whether this node serves peers (`--no-serve` turns it off).
    pub serve: bool,
    /// Replaced when the device walks a root rotation (`Lan::set_root`).
    root: Mutex<Root>,
    site: String,
    pub shared: Arc<Shared>,
    pub client: quinn::ClientConfig,
    pub misbehave: Option<Misbehave>,
    pub pacer: Arc<Pacer>,
    pub counters: Counters,
    banned: Mutex<BTreeSet<DeviceId>>,
    relay: Mutex<Option<WanClient>>,
    connections: AtomicUsize,
    /// Served connections per admitted peer.
    pub per_peer: PerPeer,
    /// Why a peer last refused this node.
    last_refusal: Mutex<Option<String>>,
    /// Wakes the dialer (this node's admission came).
    dial_now: tokio::sync::Notify,
    /// Addresses the dialer knows that are not this node nor banned and that accept
    /// connections: how many peers there should be.
    expected: Mutex<usize>,
    /// Addresses whose endpoint refuses every connection (fetch-only nodes).
    not_serving: Mutex<BTreeSet<SocketAddr>>,
}

/// A peer whose admission checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub id: DeviceId,
    /// When its admission expires (unix seconds): a connection ends then.
    pub expires_at: u64,
}

/// Decrements the connection count when a served connection ends.
pub struct ConnectionGuard<'a>(&'a AtomicUsize);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Served connections per admitted peer: at most [`MAX_CONNECTIONS_PER_PEER`], and
/// all of them closed when the peer is banned. `C` is the connection (`quinn`'s; any
/// value in tests).
#[derive(Debug)]
pub struct PerPeer<C = quinn::Connection> {
    held: Mutex<BTreeMap<DeviceId, Vec<(u64, C)>>>,
    next: AtomicU64,
}

impl<C> Default for PerPeer<C> {
    fn default() -> PerPeer<C> {
        PerPeer {
            held: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        }
    }
}

/// One of a peer's connections; gives its place back when dropped.
#[derive(Debug)]
pub struct PeerSlot<'a, C = quinn::Connection> {
    of: &'a PerPeer<C>,
    id: DeviceId,
    n: u64,
}

impl<C: Clone> PerPeer<C> {
    /// A place for one more connection of `id`, unless it holds `max` already.
    pub fn take(&self, id: DeviceId, conn: C, max: usize) -> Option<PeerSlot<'_, C>> {
        let mut map = locked(&self.held);
        let list = map.entry(id).or_default();
        if list.len() >= max {
            if list.is_empty() {
                map.remove(&id);
            }
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        list.push((n, conn));
        Some(PeerSlot { of: self, id, n })
    }

    pub fn held(&self, id: &DeviceId) -> usize {
        locked(&self.held).get(id).map_or(0, Vec::len)
    }

    /// The connections `id` holds now.
    pub fn of(&self, id: &DeviceId) -> Vec<C> {
        locked(&self.held)
            .get(id)
            .map(|l| l.iter().map(|(_, c)| c.clone()).collect())
            .unwrap_or_default()
    }
}

impl<C> Drop for PeerSlot<'_, C> {
    fn drop(&mut self) {
        let mut map = locked(&self.of.held);
        if let Some(list) = map.get_mut(&self.id) {
            list.retain(|(n, _)| *n != self.n);
            if list.is_empty() {
                map.remove(&self.id);
            }
        }
    }
}

/// The wall clock, in unix seconds (admissions expire by it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ctx {
    /// Checks a peer's admission against the TLS identity of `conn`: signed under our
    /// root, unexpired, for that key, for our site, and the peer not banned. Returns who
    /// the peer is and until when, or why not (the caller counts the refusal).
    pub fn check_peer(
        &self,
        conn: &quinn::Connection,
        admission: &[u8],
    ) -> Result<Admitted, String> {
        match tls::peer_key(conn) {
            Some(key) => self.check_admission(admission, Some(key)),
            None => Err("no device certificate".into()),
        }
    }

    /// Checks an admission: signed under our root, unexpired, for our site, for `key`
    /// if given, and not banned. Returns who it admits and until when, or why not.
    pub fn check_admission(
        &self,
        admission: &[u8],
        key: Option<shoal_core::PublicKey>,
    ) -> Result<Admitted, String> {
        if admission.is_empty() {
            return Err("no admission (the seeder has not admitted it, or not yet)".into());
        }
        let signed =
            match <shoal_core::Admission as shoal_core::Document>::decode_envelope(admission) {
                Ok(s) => s,
                Err(e) => return Err(format!("a malformed admission: {e}")),
            };
        let adm = match shoal_core::verify_admission(
            &locked(&self.root),
            &signed,
            Some(&self.site),
            key.map(|k| k.key_id()),
            now_secs(),
        ) {
            Ok(a) => a,
            Err(e) => return Err(format!("admission: {e}")),
        };
        if self.is_banned(&adm.device_id) {
            return Err(format!(
                "{} is banned (a bad chunk, or chunks claimed and not served)",
                adm.device_id.short()
            ));
        }
        Ok(Admitted {
            id: adm.device_id,
            expires_at: adm.expires_at,
        })
    }

    /// Bans `id` and closes the connections it opened to us: whatever it asked is
    /// answered no further (the server also checks the ban after it counts a new
    /// connection, so one accepted meanwhile does not slip through).
    pub fn ban(&self, id: DeviceId) {
        locked(&self.banned).insert(id);
        for conn in self.per_peer.of(&id) {
            conn.close(BANNED, b"banned");
        }
    }

    pub fn is_banned(&self, id: &DeviceId) -> bool {
        locked(&self.banned).contains(id)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn count_connection(&self) -> ConnectionGuard<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(&self.connections)
    }

    fn relay_client(&self) -> Option<WanClient> {
        locked(&self.relay).clone()
    }

    /// Another device's head, from the seeder (the relay for peers without WAN).
    pub async fn relay_head(&self, peer: DeviceId) -> Option<Vec<u8>> {
        let client = self.relay_client()?;
        client.head_for(peer).await.ok().flatten()
    }

    pub async fn relay_release(&self, id: Hash) -> Option<Vec<u8>> {
        let client = self.relay_client()?;
        client.release(id).await.ok().flatten()
    }
}

/// The swarm as the agent sees it.
pub struct Lan {
    ctx: Arc<Ctx>,
    peers: Arc<Mutex<BTreeMap<DeviceId, Peer>>>,
    events: mpsc::UnboundedReceiver<LanEvent>,
    /// The release the agent works on; new peers are subscribed to it.
    want: Arc<Mutex<Option<Hash>>>,
    pub local_addr: SocketAddr,
}

impl Lan {
    /// Binds the xfer endpoint, starts serving (unless `--no-serve`), dialing and
    /// discovery.
    pub fn start(
        options: &LanOptions,
        key: &SecretKey,
        root: Root,
        site: String,
        misbehave: Option<Misbehave>,
    ) -> Result<Lan, NodeError> {
        // libp2p brings aws-lc-rs beside ring: pick one before any TLS config is built
        // (ours name theirs explicitly: `wan::tls::provider`)
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let tls_err = |e: crate::wan::tls::TlsError| NodeError::Config(format!("LAN TLS: {e}"));
        let listen = options
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let socket = crate::wan::tls::bind_udp(listen).map_err(|e| {
            NodeError::Config(format!("cannot listen on {listen} for the LAN: {e}"))
        })?;
        // a fetch-only node accepts no connection, but refuses each one explicitly
        // (`serve::accept_loop`): without a server config quinn would not answer, and
        // its dialers would wait for it until their connection attempt timed out
        let server = Some(tls::server_config(key).map_err(tls_err)?);
        let runtime = quinn::default_runtime()
            .ok_or_else(|| NodeError::Config("no async runtime for the LAN".into()))?;
        let endpoint =
            quinn::Endpoint::new(crate::wan::tls::endpoint_config(), server, socket, runtime)
                .map_err(|e| NodeError::Config(format!("cannot start the LAN endpoint: {e}")))?;
        let local_addr = endpoint
            .local_addr()
            .map_err(|e| NodeError::Config(format!("the LAN endpoint has no address: {e}")))?;
        let ctx = Arc::new(Ctx {
            me: key.key_id(),
            serve: options.serve,
            root: Mutex::new(root),
            site: site.clone(),
            shared: Arc::new(Shared::default()),
            client: tls::client_config(key).map_err(tls_err)?,
            misbehave,
            pacer: Arc::new(Pacer::new(options.rate)),
            counters: Counters::default(),
            banned: Mutex::new(BTreeSet::new()),
            relay: Mutex::new(None),
            connections: AtomicUsize::new(0),
            per_peer: PerPeer::default(),
            last_refusal: Mutex::new(None),
            dial_now: tokio::sync::Notify::new(),
            expected: Mutex::new(options.peers.len()),
            not_serving: Mutex::new(BTreeSet::new()),
        });
        tokio::spawn(serve::accept_loop(Arc::clone(&ctx), endpoint.clone()));
        let (events_tx, events) = mpsc::unbounded_channel();
        let (found_tx, found_rx) = mpsc::unbounded_channel();
        for &p in &options.peers {
            let _ = found_tx.send(p);
        }
        if options.mdns {
            let ip = listen.ip();
            // port 0 in the intro: nothing to dial here
            let xfer_port = if options.serve { local_addr.port() } else { 0 };
            discover::start(Arc::clone(&ctx), key, ip, xfer_port, found_tx.clone())?;
        }
        let lan = Lan {
            ctx: Arc::clone(&ctx),
            peers: Arc::new(Mutex::new(BTreeMap::new())),
            events,
            want: Arc::new(Mutex::new(None)),
            local_addr,
        };
        tokio::spawn(dial_loop(
            ctx,
            endpoint,
            Arc::clone(&lan.peers),
            Arc::clone(&lan.want),
            found_rx,
            events_tx,
        ));
        info!(addr = %local_addr, serve = options.serve, "LAN swarm up");
        Ok(lan)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.ctx.shared
    }

    /// The LAN rate limit, shared by what this node sends and asks for.
    pub fn pacer(&self) -> Arc<Pacer> {
        Arc::clone(&self.ctx.pacer)
    }

    pub fn counters(&self) -> &Counters {
        &self.ctx.counters
    }

    /// The seeder connection used to relay heads and releases for peers.
    pub fn set_relay(&self, client: Option<WanClient>) {
        *locked(&self.ctx.relay) = client;
    }

    /// The agent starts on `release`: every peer, now and later, is asked for its
    /// have-map of it.
    pub fn want(&self, release: Hash) {
        *locked(&self.want) = Some(release);
        for p in locked(&self.peers).values() {
            p.subscribe(release);
        }
    }

    pub fn peer(&self, id: &DeviceId) -> Option<Peer> {
        locked(&self.peers).get(id).cloned()
    }

    pub fn peers(&self) -> Vec<Peer> {
        locked(&self.peers).values().cloned().collect()
    }

    /// The next event, or `None` if the swarm stopped.
    pub async fn next_event(&mut self) -> Option<LanEvent> {
        self.events.recv().await
    }

    /// Events that came while nobody listened.
    pub fn drain(&mut self) {
        while self.events.try_recv().is_ok() {}
    }

    /// Bans a peer (it sent a bad chunk, or lied about its chunks): every connection
    /// with it closed, both the one we opened and the ones it opened to us, and it is
    /// never served or asked again.
    pub fn ban(&self, id: DeviceId) {
        self.ctx.ban(id);
        self.drop_peer(id);
    }

    /// Drops the connection to a peer; the dialer may connect again later.
    pub fn drop_peer(&self, id: DeviceId) {
        if let Some(p) = locked(&self.peers).remove(&id) {
            p.conn.close(3u32.into(), b"dropped");
        }
    }

    /// This node's admission: peers can now be asked (again).
    pub fn set_admission(&self, bytes: Vec<u8>) {
        self.ctx.shared.set_admission(bytes);
        self.ctx.dial_now.notify_one();
    }

    /// How many peers the dialer knows of (connected or not).
    pub fn expected_peers(&self) -> usize {
        *locked(&self.ctx.expected)
    }

    /// Checks peers' admissions against `root` from now on (after a root rotation).
    pub fn set_root(&self, root: Root) {
        *locked(&self.ctx.root) = root;
    }

    /// Peer addresses that refuse every connection (fetch-only nodes): not waited for.
    pub fn not_serving(&self) -> Vec<SocketAddr> {
        locked(&self.ctx.not_serving).iter().copied().collect()
    }

    pub fn last_refusal(&self) -> Option<String> {
        locked(&self.ctx.last_refusal).clone()
    }

    pub fn banned(&self) -> Vec<DeviceId> {
        locked(&self.ctx.banned).iter().copied().collect()
    }
}

/// What the dialer knows of one address.
#[derive(Debug, Clone, Copy)]
struct Target {
    /// The peer it turned out to be.
    id: Option<DeviceId>,
    /// When it may be tried next.
    next: Instant,
    /// Its endpoint refused the connection itself: a fetch-only node, not waited for.
    not_serving: bool,
}

impl Target {
    fn new() -> Target {
        Target {
            id: None,
            next: Instant::now(),
            not_serving: false,
        }
    }

    /// Whether a fetch should wait for this address to answer.
    fn expected(&self, ctx: &Ctx) -> bool {
        !self.not_serving && self.id.is_none_or(|id| id != ctx.me && !ctx.is_banned(&id))
    }
}

/// Keeps a connection to every address it has heard of, except this node's own,
/// banned peers, and peers already connected under another address.
async fn dial_loop(
    ctx: Arc<Ctx>,
    endpoint: quinn::Endpoint,
    peers: Arc<Mutex<BTreeMap<DeviceId, Peer>>>,
    want: Arc<Mutex<Option<Hash>>>,
    mut found: mpsc::UnboundedReceiver<SocketAddr>,
    events: mpsc::UnboundedSender<LanEvent>,
) {
    let mut targets: HashMap<SocketAddr, Target> = HashMap::new();
    let (done_tx, mut done_rx) =
        mpsc::unbounded_channel::<(SocketAddr, Result<Peer, peer::PeerError>)>();
    let mut dialing: BTreeSet<SocketAddr> = BTreeSet::new();
    let mut tick = tokio::time::interval(DIAL_EVERY);
    loop {
        let round = tokio::select! {
            Some(addr) = found.recv() => {
                targets.entry(addr).or_insert_with(Target::new);
                true
            },
            Some((addr, result)) = done_rx.recv() => {
                dialing.remove(&addr);
                let t = targets.entry(addr).or_insert_with(Target::new);
                t.not_serving = false;
                match result {
                    Ok(p) => {
                        let id = p.id;
                        t.id = Some(id);
                        t.next = Instant::now() + DIAL_BACKOFF;
                        let mut map = locked(&peers);
                        if map.get(&id).is_some_and(|old| old.conn.close_reason().is_none()) {
                            p.conn.close(0u32.into(), b"already connected");
                        } else {
                            if let Some(r) = *locked(&want) {
                                p.subscribe(r);
                            }
                            debug!(peer = %id.short(), %addr, "LAN peer connected");
                            map.insert(id, p);
                        }
                    }
                    Err(peer::PeerError::Myself) => t.id = Some(ctx.me),
                    Err(peer::PeerError::NotServing) => {
                        debug!(%addr, "a LAN peer that serves nothing");
                        t.not_serving = true;
                        t.next = Instant::now() + NOT_SERVING_BACKOFF;
                    }
                    Err(e) => {
                        debug!(%addr, "LAN dial failed: {e}");
                        if matches!(e, peer::PeerError::Refused(_) | peer::PeerError::Admission(_)) {
                            *locked(&ctx.last_refusal) = Some(format!("{addr}: {e}"));
                        }
                        t.next = Instant::now() + DIAL_BACKOFF;
                    }
                }
                *locked(&ctx.not_serving) = targets
                    .iter()
                    .filter(|(_, t)| t.not_serving)
                    .map(|(a, _)| *a)
                    .collect();
                false
            }
            _ = ctx.dial_now.notified() => {
                // this node's admission just came: peers that refused us may not now
                let now = Instant::now();
                targets.values_mut().filter(|t| !t.not_serving).for_each(|t| t.next = now);
                true
            }
            _ = tick.tick() => true,
        };
        if !round {
            continue;
        }
        let now = Instant::now();
        locked(&peers).retain(|_, p| p.conn.close_reason().is_none());
        let connected: BTreeSet<DeviceId> = locked(&peers).keys().copied().collect();
        *locked(&ctx.expected) = targets.values().filter(|t| t.expected(&ctx)).count();
        for (addr, t) in targets.iter() {
            let skip = dialing.contains(addr)
                || t.next > now
                || t.id.is_some_and(|id| {
                    id == ctx.me || connected.contains(&id) || ctx.is_banned(&id)
                });
            if skip {
                continue;
            }
            dialing.insert(*addr);
            let (ctx, endpoint, events, done) = (
                Arc::clone(&ctx),
                endpoint.clone(),
                events.clone(),
                done_tx.clone(),
            );
            let addr = *addr;
            tokio::spawn(async move {
                let r = Peer::connect(&ctx, &endpoint, addr, events).await;
                let _ = done.send((addr, r));
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // guards: a rate limit that let idle time pile up as credit (the bytes a node had
    // not sent since it started went out at once)
    #[test]
    fn the_pacer_gives_no_credit_for_idle_time() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let pacer = Pacer::new(Some(1_000_000));
            std::thread::sleep(Duration::from_millis(400));
            let start = Instant::now();
            for _ in 0..3 {
                pacer.take(100_000).await;
            }
            // 300 kB at 1 MB/s: 0.3 s, however long it was idle (a limit only makes it
            // slower, so the bound is one-sided)
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(290), "{took:?}");
            assert!(futures::FutureExt::now_or_never(Pacer::new(None).take(u64::MAX)).is_some());
        });
    }

    // guards: a peer that connects with ever new keys growing the status without end
    #[test]
    fn refusals_are_kept_by_device_up_to_a_bound_and_all_counted() {
        let c = Counters::default();
        let id = |n: usize| shoal_core::KeyId(*blake3::hash(&n.to_le_bytes()).as_bytes());
        c.refusal(Some(id(0)), "first");
        c.refusal(Some(id(0)), "second");
        c.refusal(None, "an intro");
        assert_eq!(c.refusals().get(&id(0)).map(String::as_str), Some("second"));
        for n in 1..REFUSALS_KEPT * 2 {
            c.refusal(Some(id(n)), "x");
        }
        assert_eq!(c.refusals().len(), REFUSALS_KEPT);
        c.refusal(Some(id(0)), "third");
        assert_eq!(c.refusals().get(&id(0)).map(String::as_str), Some("third"));
        assert_eq!(c.refused(), 3 + (REFUSALS_KEPT * 2 - 1) as u64 + 1);
    }

    #[test]
    fn a_peer_holds_at_most_its_connections_and_gets_them_back_when_they_end() {
        let per_peer = PerPeer::<&str>::default();
        let (a, b) = (shoal_core::KeyId([1; 32]), shoal_core::KeyId([2; 32]));
        let first = per_peer.take(a, "a1", 2).expect("a first connection");
        let second = per_peer.take(a, "a2", 2).expect("a second connection");
        assert!(per_peer.take(a, "a3", 2).is_none(), "a third is refused");
        let other = per_peer
            .take(b, "b1", 2)
            .expect("another peer is not affected");
        assert_eq!(per_peer.of(&a), vec!["a1", "a2"]);
        drop(first);
        assert_eq!(per_peer.held(&a), 1);
        let third = per_peer.take(a, "a4", 2).expect("a place came back");
        assert_eq!(per_peer.of(&a), vec!["a2", "a4"], "what a ban closes");
        drop((second, third, other));
        assert_eq!((per_peer.held(&a), per_peer.held(&b)), (0, 0));
        assert!(per_peer.take(b, "b2", 0).is_none());
        assert!(
            locked(&per_peer.held).is_empty(),
            "no entry kept for gone peers"
        );
    }
}
