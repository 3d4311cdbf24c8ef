//! The device's status: kept current in `DIR/status.json` by `run` (atomically), read
//! by `shoal-node status` while `run` holds the store, and reported to the seeder.

use crate::config::replace_file;
use crate::error::NodeError;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// idle, waiting-for-acceptance, downloading, verifying, waiting-for-window,
    /// installing, success, failure, rolled-back.
    pub state: String,
    pub device_id: String,
    /// The release being worked on (hex id), if any.
    pub release: Option<String>,
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub bytes_local: u64,
    pub bytes_wan: u64,
    pub bytes_lan: u64,
    pub error: Option<String>,
    /// The installed release, as `NAME VERSION (counter C)`.
    pub installed: Option<String>,
    pub installed_counter: Option<u64>,
    /// When the last accepted head expires (unix seconds).
    pub head_expires_at: Option<u64>,
    /// Set once a head was seen past its expiry: since when the head is stale.
    pub stale_head_since: Option<u64>,
    pub updated_at: u64,
    /// The LAN: where the xfer endpoint listens, peers connected, bytes served to
    /// peers (in all and per device id), connections refused, peers banned.
    #[serde(default)]
    pub lan_addr: Option<String>,
    #[serde(default)]
    pub lan_peers: usize,
    #[serde(default)]
    pub lan_served: u64,
    #[serde(default)]
    pub lan_served_to: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub lan_refused: u64,
    /// Refused peers by device id (the key of their TLS certificate), each with the
    /// last reason it was given; at most 64 kept.
    #[serde(default)]
    pub lan_refusals: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub lan_banned: Vec<String>,
    /// Peers dropped (false claims, too slow), by device id.
    #[serde(default)]
    pub lan_dropped: Vec<String>,
    /// How long the last fetch took (from its start to the last chunk), in ms.
    #[serde(default)]
    pub last_fetch_ms: Option<u64>,
    /// The last fetch's scheduler counts: chunks from the seeder and from peers, and
    /// WAN fetches of chunks another member was responsible for (takeovers).
    #[serde(default)]
    pub fetch_wan_chunks: u64,
    #[serde(default)]
    pub fetch_lan_chunks: u64,
    #[serde(default)]
    pub fetch_takeovers: u64,
    /// Why a peer last refused this node, if one did.
    #[serde(default)]
    pub lan_error: Option<String>,
    /// Peer addresses whose endpoint refuses every connection (fetch-only nodes): not
    /// waited for, dialed again every 30 s.
    #[serde(default)]
    pub lan_not_serving: Vec<String>,
}

impl Status {
    pub fn save(&self, path: &Path) -> Result<(), NodeError> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| NodeError::Config(format!("cannot encode the status: {e}")))?;
        // Replaced atomically but not synced: it is written after every WAN answer, it
        // is only a view (the store holds the state that matters), and an fsync there
        // would sit on the transfer's hot path.
        replace_file(path, &json)
    }

    pub fn load(path: &Path) -> Result<Status, NodeError> {
        let text = std::fs::read_to_string(path).map_err(NodeError::io(path))?;
        serde_json::from_str(&text)
            .map_err(|e| NodeError::Config(format!("{}: not a status file: {e}", path.display())))
    }
}
