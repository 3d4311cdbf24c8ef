//! The seeder's store: release manifests, devices, deployments, heads and status in
//! redb; chunk bytes in a content-addressed directory.
//!
//! ## Layout
//! Under the data folder `DIR`:
//! - `DIR/seeder.redb`: the metadata, one table per kind of record (see `tables`).
//! - `DIR/chunks/<first 2 hex>/<64 hex>`: one file per chunk, named by BLAKE3 of its
//!   bytes (see `chunks`).
//!
//! ## Lifecycle of a release
//! `add_release` stores the signed manifest as `Uploading`, with the length of every
//! chunk it names; `put_chunk` stores chunks (any order, any number of times);
//! `publish_release` flips it to `Published` once every named chunk is stored. Only
//! published releases are listed, served (`release_bytes`) or deployed.
//!
//! ## Crash consistency
//! The service may be killed at any instruction. What makes that safe:
//! - every method that changes metadata does so in one redb write transaction,
//!   committed (durably: redb's default) before it returns;
//! - a chunk file is complete and verified, or absent (temp file, fsync, rename,
//!   directory fsync); `open` deletes temporary files a crash left;
//! - chunks are never deleted and a release's chunk list never changes, so once
//!   `publish_release` has seen every chunk on disk it stays there: a `Published`
//!   release always has all its chunks.
//!
//! ## Concurrency
//! `Store` is `Send + Sync` and every method takes `&self`. redb runs one write
//! transaction at a time and gives readers snapshots; chunk uploads use per-call
//! temporary names. Methods block on disk IO: call them from `spawn_blocking` in async
//! code. The database is locked by one process at a time; a second `open` of the same
//! folder fails with [`StoreError::Db`].
//!
//! ## What the store does not do
//! It checks no signatures (it has no root): the caller verifies a release before
//! `add_release`. It checks chunk bytes against their hash, and the release bytes
//! against the release and id it is given.

mod chunks;
mod deployments;
mod devices;
mod error;
mod heads;
mod hex;
mod records;
mod releases;
mod roots;
mod status;
mod tables;
#[cfg(test)]
mod testing;
mod tokens;

pub use chunks::ChunkAudit;
pub use deployments::{Control, PhaseProgress, Plan, RolloutChange};
pub use error::StoreError;
pub use records::{
    DeploymentRecord, DeploymentState, DeviceRecord, ReleaseRecord, ReleaseState, Role,
    StatusRecord, TokenRecord,
};

use chunks::ChunkDir;
use error::io;
use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};
use shoal_core::Hash;
use std::path::Path;

/// The metadata file's name under the data folder.
pub const DB_FILE: &str = "seeder.redb";
/// The chunk directory's name under the data folder.
pub const CHUNK_DIR: &str = "chunks";

/// The seeder's store. See the module doc.
pub struct Store {
    db: Database,
    chunks: ChunkDir,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        // The database first: its lock keeps a second seeder out before temporary chunk
        // files, which could be that seeder's uploads in progress, are deleted.
        let db = Database::create(dir.join(DB_FILE))?;
        tables::create_all(&db)?;
        let chunks = ChunkDir::open(dir.join(CHUNK_DIR))?;
        Ok(Store { db, chunks })
    }

    /// Stores a chunk whose bytes hash to `hash`, at most
    /// [`shoal_core::release::MAX_CHUNK_LEN`] bytes. Storing it again is a no-op.
    pub fn put_chunk(&self, hash: Hash, bytes: &[u8]) -> Result<(), StoreError> {
        self.chunks.put(hash, bytes)
    }

    /// The chunk's bytes, checked against `hash` on the way out.
    pub fn get_chunk(&self, hash: Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.chunks.get(hash)
    }

    /// The chunk's bytes, not re-hashed: for the device API, whose devices check every
    /// chunk against the signed manifest anyway (see docs/decisions/0005). Corruption at
    /// rest is found by `check_chunks`.
    pub fn serve_chunk(&self, hash: Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.chunks.get_unchecked(hash)
    }

    pub fn has_chunk(&self, hash: Hash) -> bool {
        self.chunks.has(hash)
    }

    /// Re-hashes every chunk file and lists those that do not match their name.
    pub fn check_chunks(&self) -> Result<ChunkAudit, StoreError> {
        self.chunks.audit()
    }

    /// Runs `f` on a snapshot.
    fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read()?;
        f(&txn)
    }

    /// Runs `f` in one write transaction and commits it if `f` succeeds; on an error
    /// the transaction is dropped, which rolls it back.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write()?;
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{key, release_with};
    use super::*;

    #[test]
    fn the_store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }

    #[test]
    fn a_second_open_of_the_same_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        assert!(matches!(Store::open(dir.path()), Err(StoreError::Db(_))));
    }

    // guards: anything kept only in memory, or a write left uncommitted
    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let chunks: [&[u8]; 2] = [b"first chunk", b"second chunk"];
        let (bytes, release, id) = release_with("pump-fw", "1.0", 1, &chunks);
        let dev = key(1);
        let (dep, seq) = {
            let s = Store::open(dir.path()).unwrap();
            s.add_release(&bytes, &release, id, 10).unwrap();
            for c in chunks {
                s.put_chunk(Hash::of(c), c).unwrap();
            }
            s.publish_release(id).unwrap();
            s.preauthorize(dev, Some("line-1")).unwrap();
            s.enrol(dev, "pump", "depot", &[], 20).unwrap();
            let dep = s.create_deployment(id, "line-1", 30).unwrap();
            let seq = s.next_head_seq(dev.key_id(), id).unwrap();
            (dep, seq)
        };
        let s = Store::open(dir.path()).unwrap();
        let rec = s.release(id).unwrap().unwrap();
        assert_eq!(rec.state, ReleaseState::Published);
        assert_eq!(s.list_releases().unwrap(), vec![rec]);
        assert_eq!(s.release_bytes(id).unwrap(), Some(bytes));
        for c in chunks {
            assert_eq!(s.get_chunk(Hash::of(c)).unwrap().as_deref(), Some(c));
        }
        let d = s.device(dev.key_id()).unwrap().unwrap();
        assert_eq!(d.state, shoal_core::wan::Enrolment::Accepted);
        assert_eq!(d.site, "depot");
        assert_eq!(s.deployment(dep.id).unwrap(), Some(dep.clone()));
        assert_eq!(s.target(dev.key_id()).unwrap().map(|(d, _)| d), Some(dep));
        assert_eq!(s.next_head_seq(dev.key_id(), id).unwrap(), seq);
        // the deployment counter survived too: no id is handed out twice
        assert_eq!(s.create_deployment(id, "line-2", 40).unwrap().id, 2);
    }
}
