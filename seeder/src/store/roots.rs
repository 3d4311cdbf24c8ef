//! The roots this seeder has served, by version. A device provisioned with an older
//! root asks for the ones after its own (`shoal-wan/1` `GetRoots`) and walks them one
//! version at a time. The service checks that a new root is a rotation of the newest
//! kept one before it adds it (the store checks no signatures); the store keeps the
//! versions contiguous.

use super::Store;
use super::error::StoreError;
use super::tables::ROOTS;
use redb::ReadableTable;

impl Store {
    /// The newest root kept: its version and signed bytes.
    pub fn newest_root(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(ROOTS)?
                .last()?
                .map(|(k, v)| (k.value(), v.value().to_vec())))
        })
    }

    /// Keeps root `version`: the first root kept may have any version; after that,
    /// each must be the newest + 1.
    pub fn add_root(&self, version: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut t = txn.open_table(ROOTS)?;
            if let Some((newest, _)) = t.last()? {
                let expected = newest.value().saturating_add(1);
                if version != expected {
                    return Err(StoreError::RootVersion {
                        expected,
                        found: version,
                    });
                }
            }
            t.insert(version, bytes)?;
            Ok(())
        })
    }

    /// The roots after version `after`, oldest first, at most `max`.
    pub fn roots_after(&self, after: u64, max: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.read(|txn| {
            txn.open_table(ROOTS)?
                .range(first..)?
                .take(max)
                .map(|e| Ok(e?.1.value().to_vec()))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_kept_one_version_apart_and_listed_after_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.newest_root().unwrap(), None);
        assert!(s.roots_after(0, 16).unwrap().is_empty());
        s.add_root(1, b"v1").unwrap();
        s.add_root(2, b"v2").unwrap();
        assert!(matches!(
            s.add_root(4, b"v4"),
            Err(StoreError::RootVersion {
                expected: 3,
                found: 4
            })
        ));
        assert!(matches!(
            s.add_root(2, b"again"),
            Err(StoreError::RootVersion { .. })
        ));
        s.add_root(3, b"v3").unwrap();
        assert_eq!(s.newest_root().unwrap(), Some((3, b"v3".to_vec())));
        assert_eq!(
            s.roots_after(1, 16).unwrap(),
            [b"v2".to_vec(), b"v3".to_vec()]
        );
        assert_eq!(s.roots_after(1, 1).unwrap(), [b"v2".to_vec()]);
        assert!(s.roots_after(3, 16).unwrap().is_empty());
        assert!(s.roots_after(u64::MAX, 16).unwrap().is_empty());
        // kept across a reopen
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.roots_after(0, 16).unwrap().len(), 3);
    }
}
