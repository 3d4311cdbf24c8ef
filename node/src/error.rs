//! What can go wrong on a device, each saying what was expected and what was found.

use shoal_core::{Hash, VerifyError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the node store: {0}")]
    Store(String),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Wan(#[from] crate::wan::WanError),
    #[error("{what} refused: {source}")]
    Verify {
        what: &'static str,
        source: VerifyError,
    },
    #[error("chunk {hash}: expected {expected} bytes with that BLAKE3, got {found} bytes that {}", if *.hash_ok { "match" } else { "do not match" })]
    BadChunk {
        hash: Hash,
        expected: u32,
        found: usize,
        hash_ok: bool,
    },
    #[error("the seeder has no chunk {0}")]
    MissingChunk(Hash),
    #[error("the seeder has no release {0}")]
    MissingRelease(Hash),
    #[error("file '{path}': assembled bytes hash to {found}, the release says {expected}")]
    BadFile {
        path: String,
        expected: Hash,
        found: Hash,
    },
    #[error("{0} chunks have no source: the seeder is unreachable and no LAN peer holds them")]
    NoSource(usize),
    #[error("no LAN peer could relay the head: {0}")]
    NoRelay(String),
    #[error("install failed: {0}")]
    Install(String),
    #[error("rolled back: {0}")]
    RolledBack(String),
}

impl NodeError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> NodeError {
        let path = path.into();
        move |source| NodeError::Io { path, source }
    }
}

impl From<redb::Error> for NodeError {
    fn from(e: redb::Error) -> NodeError {
        NodeError::Store(e.to_string())
    }
}

macro_rules! store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for NodeError {
            fn from(e: $t) -> NodeError {
                NodeError::Store(e.to_string())
            }
        }
    )*};
}
store_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
