//! What `audit verify` (and the seeder opening its log) can find wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("line {line} of the audit log is not an entry: {reason}")]
    Malformed { line: usize, reason: String },
    #[error(
        "line {line} of the audit log: expected entry {expected}, found entry {found} (an entry was removed or moved)"
    )]
    Sequence {
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error(
        "entry {seq}: expected prev {expected} (the hash of the entry before), found {found} (an entry before it was changed, removed or moved)"
    )]
    Chain {
        seq: u64,
        expected: String,
        found: String,
    },
    #[error("entry {seq}: its fields hash to {computed}, the entry says {stated} (it was edited)")]
    Hash {
        seq: u64,
        computed: String,
        stated: String,
    },
    #[error(
        "the audit head is missing but the log has {entries} entries (expected {head} beside the log)"
    )]
    HeadMissing { entries: u64, head: &'static str },
    #[error(
        "the audit head names entry {head_seq} ({head_hash}); the log ends at entry {log_seq} ({log_hash}) (entries were cut off the end, or the head was changed)"
    )]
    Head {
        head_seq: u64,
        head_hash: String,
        log_seq: u64,
        log_hash: String,
    },
}

impl AuditError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
        move |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
