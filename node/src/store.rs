//! The device's state in redb (one file, `DIR/node.redb`): the last accepted head seq,
//! the installed release and counter, and download progress per release. Values change
//! only after the step they record is complete and durable. Only this module knows redb.

use crate::error::NodeError;
use redb::{Database, ReadableDatabase, TableDefinition};
use shoal_core::Hash;
use shoal_core::plan::Bitset;
use std::path::Path;

/// Named numbers: `last_head_seq`, `installed_counter`, `active_slot` (0 or 1).
const NUMBERS: TableDefinition<&str, u64> = TableDefinition::new("numbers");
/// Named documents: `installed` (the installed release's `Signed<Release>` bytes),
/// `head_target` (the release id of the last accepted head, 32 bytes), `head_epoch`
/// (the online role's epoch when that head was accepted, 32 bytes), `rolled_back`
/// (the id of a release whose install was rolled back: not tried again).
const DOCS: TableDefinition<&str, &[u8]> = TableDefinition::new("docs");
/// Release id -> progress bitset over the release's distinct chunks.
const PROGRESS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("progress");

pub struct NodeStore {
    db: Database,
}

/// What the device has installed.
#[derive(Debug, Clone)]
pub struct Installed {
    pub counter: u64,
    pub release_bytes: Vec<u8>,
}

impl NodeStore {
    pub fn open(path: &Path) -> Result<NodeStore, NodeError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(NUMBERS)?;
        txn.open_table(DOCS)?;
        txn.open_table(PROGRESS)?;
        txn.commit()?;
        Ok(NodeStore { db })
    }

    fn number(&self, key: &str) -> Result<Option<u64>, NodeError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(NUMBERS)?;
        Ok(t.get(key)?.map(|v| v.value()))
    }

    fn doc(&self, key: &str) -> Result<Option<Vec<u8>>, NodeError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(DOCS)?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    /// The seq and release of the last head accepted under the online keys whose epoch
    /// is `epoch` (`Root::role_epoch(Role::Online)`). `None` when no head was accepted,
    /// or when it was accepted under other online keys: a root rotation to new online
    /// keys starts the seq over, which is how a device recovers from a stolen online key
    /// that pushed its seq to the maximum (the fast-forward attack). A head kept before
    /// epochs were recorded counts as of the current epoch.
    pub fn last_head(&self, epoch: Hash) -> Result<Option<(u64, Hash)>, NodeError> {
        let seq = self.number("last_head_seq")?;
        let target = self.doc("head_target")?;
        if let Some(kept) = self.doc("head_epoch")?
            && kept != epoch.0
        {
            return Ok(None);
        }
        Ok(match (seq, target) {
            (Some(s), Some(t)) if t.len() == 32 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(&t);
                Some((s, Hash(h)))
            }
            _ => None,
        })
    }

    /// Records a head, accepted under the online keys of `epoch`, once it passed every
    /// check.
    pub fn accept_head(&self, seq: u64, release: Hash, epoch: Hash) -> Result<(), NodeError> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(NUMBERS)?.insert("last_head_seq", seq)?;
            let mut docs = txn.open_table(DOCS)?;
            docs.insert("head_target", release.0.as_slice())?;
            docs.insert("head_epoch", epoch.0.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn installed(&self) -> Result<Option<Installed>, NodeError> {
        let counter = self.number("installed_counter")?;
        let bytes = self.doc("installed")?;
        Ok(match (counter, bytes) {
            (Some(counter), Some(release_bytes)) => Some(Installed {
                counter,
                release_bytes,
            }),
            _ => None,
        })
    }

    /// Records an install, after it succeeded, and drops that release's progress.
    pub fn set_installed(
        &self,
        counter: u64,
        release_bytes: &[u8],
        id: Hash,
    ) -> Result<(), NodeError> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(NUMBERS)?
                .insert("installed_counter", counter)?;
            txn.open_table(DOCS)?.insert("installed", release_bytes)?;
            txn.open_table(PROGRESS)?.remove(id.0)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The release whose install was last rolled back, if any.
    pub fn rolled_back(&self) -> Result<Option<Hash>, NodeError> {
        Ok(self.doc("rolled_back")?.and_then(|b| {
            let b: [u8; 32] = b.try_into().ok()?;
            Some(Hash(b))
        }))
    }

    /// Remembers a release whose install was rolled back, across restarts.
    pub fn set_rolled_back(&self, id: Hash) -> Result<(), NodeError> {
        let txn = self.db.begin_write()?;
        txn.open_table(DOCS)?
            .insert("rolled_back", id.0.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// The `ab-slot` slot in use (0 when none was ever switched to).
    pub fn active_slot(&self) -> Result<usize, NodeError> {
        Ok(self.number("active_slot")?.unwrap_or(0) as usize)
    }

    /// Records an `ab-slot` install: the new slot, counter and release, together.
    pub fn set_installed_slot(
        &self,
        slot: usize,
        counter: u64,
        release_bytes: &[u8],
        id: Hash,
    ) -> Result<(), NodeError> {
        let txn = self.db.begin_write()?;
        {
            let mut numbers = txn.open_table(NUMBERS)?;
            numbers.insert("active_slot", slot as u64)?;
            numbers.insert("installed_counter", counter)?;
            txn.open_table(DOCS)?.insert("installed", release_bytes)?;
            txn.open_table(PROGRESS)?.remove(id.0)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn progress(&self, id: Hash, len: usize) -> Result<Bitset, NodeError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(PROGRESS)?;
        Ok(t.get(id.0)?
            .and_then(|v| Bitset::from_bytes(v.value(), len))
            .unwrap_or_else(|| Bitset::new(len)))
    }

    /// Records progress; call only after the bytes it marks are durable.
    pub fn set_progress(&self, id: Hash, bits: &Bitset) -> Result<(), NodeError> {
        let txn = self.db.begin_write()?;
        txn.open_table(PROGRESS)?.insert(id.0, bits.as_bytes())?;
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // guards: the fast-forward attack's recovery. A seq pushed to u64::MAX under a
    // stolen online key must not outlive a rotation to new online keys.
    #[test]
    fn a_head_seq_counts_only_under_the_online_keys_it_was_accepted_with() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(&dir.path().join("node.redb")).unwrap();
        let (old, new) = (Hash([1; 32]), Hash([2; 32]));
        let release = Hash([9; 32]);
        assert_eq!(store.last_head(old).unwrap(), None);
        store.accept_head(u64::MAX, release, old).unwrap();
        assert_eq!(store.last_head(old).unwrap(), Some((u64::MAX, release)));
        assert_eq!(store.last_head(new).unwrap(), None, "other online keys");
        store.accept_head(1, release, new).unwrap();
        assert_eq!(store.last_head(new).unwrap(), Some((1, release)));
        assert_eq!(store.last_head(old).unwrap(), None);
        // kept across a reopen
        drop(store);
        let store = NodeStore::open(&dir.path().join("node.redb")).unwrap();
        assert_eq!(store.last_head(new).unwrap(), Some((1, release)));
    }

    #[test]
    fn a_head_kept_before_epochs_counts_as_of_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(&dir.path().join("node.redb")).unwrap();
        let txn = store.db.begin_write().unwrap();
        {
            txn.open_table(NUMBERS)
                .unwrap()
                .insert("last_head_seq", 7)
                .unwrap();
            txn.open_table(DOCS)
                .unwrap()
                .insert("head_target", [3u8; 32].as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(
            store.last_head(Hash([5; 32])).unwrap(),
            Some((7, Hash([3; 32])))
        );
    }
}
