//! What can go wrong in the store. Every message says what was expected and what was
//! found, so the management API can pass it on unchanged.

use shoal_core::{DeviceId, Hash};
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a store operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// redb refused: the file is locked by another process, damaged, or a disk failed.
    Db(String),
    /// A file or directory under the data folder could not be read or written.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Uploaded bytes do not hash to the hash they were sent under.
    ChunkMismatch {
        expected: Hash,
        found: Hash,
    },
    /// Uploaded bytes are over [`shoal_core::release::MAX_CHUNK_LEN`].
    ChunkTooLarge {
        len: usize,
        max: usize,
    },
    UnknownRelease(Hash),
    UnknownDevice(DeviceId),
    UnknownDeployment(u64),
    UnknownToken(u64),
    /// A deployment cannot go from its state to the one asked for (resume an aborted
    /// one, pause a complete one).
    DeploymentTransition {
        id: u64,
        from: &'static str,
        to: &'static str,
    },
    /// Publishing needs every chunk the release names.
    ReleaseIncomplete {
        id: Hash,
        missing: usize,
    },
    /// `name@version` already belongs to a release with another id.
    NameTaken {
        name: String,
        version: String,
    },
    /// The operation is only for accepted devices.
    NotAccepted(DeviceId),
    /// The operation is only for published releases.
    NotPublished(Hash),
    /// The bytes given to `add_release` are not a `Signed<Release>`.
    BadRelease(String),
    /// The bytes given to `add_release` are a release with another id.
    ReleaseIdMismatch {
        expected: Hash,
        found: Hash,
    },
    /// A root added out of order: roots are kept one version apart.
    RootVersion {
        expected: u64,
        found: u64,
    },
    /// What the store holds is not what it wrote: a record that does not decode, a
    /// chunk file whose bytes do not match its name, a dangling reference.
    Corrupt(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Db(e) => write!(f, "seeder database: {e}"),
            StoreError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            StoreError::ChunkMismatch { expected, found } => write!(
                f,
                "chunk bytes hash to {found}, expected {expected}; not stored"
            ),
            StoreError::ChunkTooLarge { len, max } => {
                write!(f, "a chunk of {len} bytes, at most {max}; not stored")
            }
            StoreError::UnknownRelease(id) => write!(f, "no release with id {id}"),
            StoreError::UnknownDevice(id) => write!(f, "no device with id {id}"),
            StoreError::UnknownDeployment(id) => write!(f, "no deployment {id}"),
            StoreError::UnknownToken(id) => write!(f, "no token {id}"),
            StoreError::DeploymentTransition { id, from, to } => write!(
                f,
                "deployment {id} is {from}; it cannot be {to} (expected an active or paused deployment)"
            ),
            StoreError::ReleaseIncomplete { id, missing } => write!(
                f,
                "release {id} is missing {missing} chunk(s); every chunk must be uploaded before it is published"
            ),
            StoreError::NameTaken { name, version } => write!(
                f,
                "{name}@{version} already names another release; expected a new name or version"
            ),
            StoreError::NotAccepted(id) => {
                write!(
                    f,
                    "device {id} is not accepted (pending, rejected or decommissioned)"
                )
            }
            StoreError::NotPublished(id) => {
                write!(
                    f,
                    "release {id} is still uploading; expected a published release"
                )
            }
            StoreError::BadRelease(e) => write!(f, "not a signed release: {e}"),
            StoreError::ReleaseIdMismatch { expected, found } => {
                write!(f, "the release bytes have id {found}, expected {expected}")
            }
            StoreError::RootVersion { expected, found } => write!(
                f,
                "root v{found} given, expected v{expected} (roots are kept one version apart)"
            ),
            StoreError::Corrupt(e) => write!(f, "the store is corrupt: {e}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// For `map_err`: an IO error on `path`.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |error| StoreError::Io {
        path: path.to_path_buf(),
        error,
    }
}

// redb has one error type per kind of operation; the store's callers only need the text.
macro_rules! from_redb {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(e: $ty) -> StoreError {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_was_expected_and_found() {
        let e = StoreError::ChunkMismatch {
            expected: Hash([1; 32]),
            found: Hash([2; 32]),
        };
        let text = e.to_string();
        assert!(text.contains(&Hash([1; 32]).to_hex()), "{text}");
        assert!(text.contains(&Hash([2; 32]).to_hex()), "{text}");
        let e = StoreError::ChunkTooLarge { len: 10, max: 5 };
        assert_eq!(e.to_string(), "a chunk of 10 bytes, at most 5; not stored");
    }
}
