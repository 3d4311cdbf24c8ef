//! The audit log: every change asked of the management API, every refusal, and every
//! rollout step the seeder takes by itself (a report over a threshold), in an
//! append-only file where each entry names the hash of the one before.
//!
//! ## Files
//! - `DIR/audit.log`: one JSON object per line (an [`Entry`]), oldest first.
//! - `DIR/audit.head`: `{"seq": N, "hash": "<hex>"}`, the last entry, replaced
//!   atomically after each append. It is what catches entries cut off the end, which
//!   a chain alone cannot show.
//!
//! ## The chain
//! `hash = BLAKE3("shoal/audit/v1\n" || JSON of the entry without its hash)`, where the
//! JSON is the entry's fields in the order below, compact; `prev` is the hash of the
//! entry before (64 zeros for the first) and `seq` counts from 1. Editing an entry
//! breaks its own hash; removing or reordering entries breaks `seq` and `prev`; cutting
//! the end breaks the head. The chain holds against anyone who changes the file
//! without recomputing hashes; against someone who can rewrite the whole file and the
//! head, keep the head somewhere else too (`audit verify` prints it). See
//! docs/decisions/0009-audit-chain.md.
//!
//! ## Concurrency and crashes
//! The seeder appends under an exclusive `flock` of `audit.log`; `audit verify` and
//! `audit show` read under a shared one, so they never see half an append. A crash
//! between the line and the head leaves the head one entry behind: `open` repairs that
//! (the line is intact and chained); a torn last line (no newline) is cut off. Any
//! other mismatch keeps the seeder from starting.
//!
//! An entry is written after its request was answered, with the outcome: a crash in
//! between loses that entry (the change itself is in the store).

mod error;
mod log;
mod verify;

pub use error::AuditError;
pub use log::{AuditLog, Record};
pub use verify::{Summary, read_entries, verify};

use serde::{Deserialize, Serialize};

/// The log's file name under the data folder.
pub const LOG_FILE: &str = "audit.log";
/// The head's file name under the data folder.
pub const HEAD_FILE: &str = "audit.head";
/// Domain tag of entry hashes.
const DOMAIN: &[u8] = b"shoal/audit/v1\n";
/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// 1, 2, 3, ...
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// Who: `token 3 (deployer)`, `token 0 (admin)` for the bootstrap token, or
    /// `unauthenticated`.
    pub actor: String,
    /// The client's address.
    pub from: String,
    /// `POST /api/v1/deployments`.
    pub action: String,
    /// `ok`, `refused` (401, 403) or `failed` (any other error).
    pub outcome: String,
    /// The HTTP status answered.
    pub status: u16,
    /// What was done or why not.
    pub detail: String,
    /// The hash of the entry before.
    pub prev: String,
    /// This entry's hash (see the module doc).
    pub hash: String,
}

/// The fields that are hashed, in order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    time: u64,
    actor: &'a str,
    from: &'a str,
    action: &'a str,
    outcome: &'a str,
    status: u16,
    detail: &'a str,
    prev: &'a str,
}

impl Entry {
    /// The hash this entry's fields give.
    pub fn compute_hash(&self) -> String {
        let hashed = Hashed {
            seq: self.seq,
            time: self.time,
            actor: &self.actor,
            from: &self.from,
            action: &self.action,
            outcome: &self.outcome,
            status: self.status,
            detail: &self.detail,
            prev: &self.prev,
        };
        let mut h = blake3::Hasher::new();
        h.update(DOMAIN);
        // A struct of strings and integers always encodes; the fallback (an empty body)
        // would make every later check fail loudly rather than pass.
        h.update(&serde_json::to_vec(&hashed).unwrap_or_default());
        h.finalize().to_hex().to_string()
    }
}

/// `audit.head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}
