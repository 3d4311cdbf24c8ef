//! The device API: `shoal-wan/1` over QUIC (spec: `shoal_core::wan`).
//!
//! `serve` accepts connections until shutdown; each connection is one device (its key
//! from the TLS certificate), each bidirectional stream one request. The limits below
//! keep one device from starving the others: a device that breaks them is cut off, and
//! the seeder goes on serving everyone else.

pub mod connection;
pub mod handler;
pub mod tls;

use crate::store::Store;
use shoal_core::{Root, SecretKey};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Limits of the device API.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections one device may hold at once.
    pub connections_per_device: usize,
    /// Connections in all.
    pub connections: usize,
    /// Bidirectional streams (requests) in flight on one connection; QUIC flow control
    /// holds a client that opens more until earlier ones finish.
    pub streams_per_connection: u32,
    /// How long a device has to send its whole request frame.
    pub request_timeout: Duration,
    /// Streams per connection that may time out before the connection is cut off.
    pub timeouts_per_connection: u32,
    /// How long a connection may sit idle.
    pub idle_timeout: Duration,
    /// How long a signed head stays valid.
    pub head_ttl_secs: u64,
    /// How long a signed admission stays valid.
    pub admission_ttl_secs: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections_per_device: 4,
            connections: 20_000,
            streams_per_connection: 32,
            request_timeout: Duration::from_secs(10),
            timeouts_per_connection: 8,
            idle_timeout: Duration::from_secs(60),
            head_ttl_secs: 3600,
            admission_ttl_secs: 7 * 86_400,
        }
    }
}

impl Limits {
    /// The QUIC transport settings these limits imply.
    pub fn transport(&self) -> quinn::TransportConfig {
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_bidi_streams(self.streams_per_connection.into());
        t.max_concurrent_uni_streams(0u8.into());
        if let Ok(idle) = self.idle_timeout.try_into() {
            t.max_idle_timeout(Some(idle));
        }
        t.mtu_discovery_config(Some(shoal_node_mtu()));
        // See docs/decisions/0005-quic-gso-off.md: with segmentation offload, large
        // datagrams were lost and quinn fell back to 1,200-byte packets.
        t.enable_segmentation_offload(false);

        // Room for a few maximal chunks in flight on one connection.
        t.stream_receive_window((8u32 * 1024 * 1024).into());
        t.receive_window((32u32 * 1024 * 1024).into());
        t.send_window(32 * 1024 * 1024);
        t
    }
}

/// MTU discovery may search up to the largest UDP payload: it costs nothing where the
/// path is Ethernet-sized, and on loopback or jumbo-frame LANs it cuts the packet count.
fn shoal_node_mtu() -> quinn::MtuDiscoveryConfig {
    let mut m = quinn::MtuDiscoveryConfig::default();
    m.upper_bound(65_527);
    m
}

/// Counters an operator (and the tests) read.
#[derive(Debug, Default)]
pub struct Counters {
    /// Chunk bytes sent to devices.
    pub chunk_bytes_served: AtomicU64,
    pub chunks_served: AtomicU64,
    /// Connections cut off for breaking a limit or the protocol.
    pub connections_cut: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.chunk_bytes_served.load(Ordering::Relaxed),
            self.chunks_served.load(Ordering::Relaxed),
            self.connections_cut.load(Ordering::Relaxed),
        )
    }
}

/// Ways to misbehave on purpose, for the hostile-seeder tests of the node
/// (`tests/src/bin/hostile_seeder.rs` sets one; `serve` never does, and no flag of
/// `shoal-seeder` reaches it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehave {
    /// Every chunk with one byte flipped.
    FlipByte,
    /// Every chunk with 100 bytes more than its manifest entry.
    LongChunk,
    /// A chunk frame that announces 2 GiB and never ends.
    EndlessChunk,
    /// Heads name the group's oldest deployment instead of its newest.
    OldHead,
    /// Heads that expired an hour ago.
    ExpiredHead,
    /// Releases re-signed by the online key alone.
    OnlineSignedRelease,
    /// Heads with seq `u64::MAX`: what a stolen online key does to freeze devices
    /// (the fast-forward attack).
    MaxSeqHead,
}

/// Everything the device API needs.
pub struct DeviceApi {
    pub store: Arc<Store>,
    pub root: Root,
    pub online_key: SecretKey,
    pub limits: Limits,
    pub counters: Arc<Counters>,
    /// Open connections per device key id.
    open: Mutex<HashMap<shoal_core::KeyId, usize>>,
    /// Set only by the hostile-seeder tests.
    pub misbehave: Option<Misbehave>,
    /// Where rollouts that move by themselves (a report over a threshold) are logged.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
}

impl DeviceApi {
    pub fn new(
        store: Arc<Store>,
        root: Root,
        online_key: SecretKey,
        limits: Limits,
        counters: Arc<Counters>,
    ) -> DeviceApi {
        DeviceApi {
            store,
            root,
            online_key,
            limits,
            counters,
            open: Mutex::new(HashMap::new()),
            misbehave: None,
            audit: None,
        }
    }

    fn total_open(&self) -> usize {
        self.open
            .lock()
            .map(|m| m.values().sum())
            .unwrap_or(usize::MAX)
    }
}

/// Accepts connections on `endpoint` until `shutdown` resolves, then closes them.
pub async fn serve(
    endpoint: quinn::Endpoint,
    api: Arc<DeviceApi>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                if api.total_open() >= api.limits.connections {
                    incoming.refuse();
                    continue;
                }
                let api = Arc::clone(&api);
                tokio::spawn(async move {
                    connection::handle(api, incoming).await;
                });
            }
        }
    }
    endpoint.close(0u32.into(), b"seeder shutting down");
}
