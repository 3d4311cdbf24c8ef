//! Releases: a manifest is added as `Uploading`, then published once every chunk it
//! names is stored.

use super::Store;
use super::error::StoreError;
use super::records::{ReleaseRecord, ReleaseState};
use super::tables::{
    MANIFESTS, RELEASE_CHUNKS, RELEASE_NAMES, RELEASES, all_json, get_json, put_json,
};
use redb::{ReadTransaction, ReadableTable};
use shoal_core::release::decode_release;
use shoal_core::{Hash, Release};

impl Store {
    /// Stores a release manifest as `Uploading`. `signed_bytes` is the `Signed<Release>`
    /// envelope as uploaded, `release` its body and `id` the body's hash: the caller has
    /// verified them against the root; the store checks they agree with each other.
    ///
    /// Adding the same id again returns the stored record unchanged; another id under
    /// the same name and version is [`StoreError::NameTaken`].
    pub fn add_release(
        &self,
        signed_bytes: &[u8],
        release: &Release,
        id: Hash,
        now: u64,
    ) -> Result<ReleaseRecord, StoreError> {
        let signed =
            decode_release(signed_bytes).map_err(|e| StoreError::BadRelease(e.to_string()))?;
        let found = signed.body_hash();
        if found != id {
            return Err(StoreError::ReleaseIdMismatch {
                expected: id,
                found,
            });
        }
        // The chunk list stored below is what uploads are checked against, so it must be
        // the signed one, not whatever the caller passed beside it.
        let body = signed
            .decode_unverified()
            .map_err(|e| StoreError::BadRelease(e.to_string()))?;
        if body != *release {
            return Err(StoreError::BadRelease(format!(
                "the manifest given with release {id} is not its signed body"
            )));
        }
        self.write(|txn| {
            let mut releases = txn.open_table(RELEASES)?;
            if let Some(existing) = get_json(&releases, id.0, format_args!("release {id}"))? {
                return Ok(existing);
            }
            let mut names = txn.open_table(RELEASE_NAMES)?;
            let name_key = (release.name.as_str(), release.version.as_str());
            if names.get(name_key)?.is_some() {
                return Err(StoreError::NameTaken {
                    name: release.name.clone(),
                    version: release.version.clone(),
                });
            }
            let record = ReleaseRecord::new(release, id, now);
            put_json(&mut releases, id.0, &record)?;
            names.insert(name_key, id.0)?;
            txn.open_table(MANIFESTS)?.insert(id.0, signed_bytes)?;
            let mut chunks = txn.open_table(RELEASE_CHUNKS)?;
            for c in release.files.iter().flat_map(|f| &f.chunks) {
                chunks.insert((id.0, c.hash.0), c.len)?;
            }
            Ok(record)
        })
    }

    /// The distinct chunks the release names that are not stored yet.
    pub fn missing_chunks(&self, id: Hash) -> Result<Vec<Hash>, StoreError> {
        self.read(|txn| {
            require_release(txn, id)?;
            let chunks = txn.open_table(RELEASE_CHUNKS)?;
            let mut missing = Vec::new();
            for entry in chunks.range((id.0, [0u8; 32])..=(id.0, [0xff; 32]))? {
                let (key, _) = entry?;
                let hash = Hash(key.value().1);
                if !self.chunks.has(hash) {
                    missing.push(hash);
                }
            }
            Ok(missing)
        })
    }

    /// The manifest's length for `chunk`, if release `id` names it: an upload of a chunk
    /// no release names, or of another length, is refused by the caller.
    pub fn chunk_len_in(&self, id: Hash, chunk: Hash) -> Result<Option<u32>, StoreError> {
        self.read(|txn| {
            require_release(txn, id)?;
            let chunks = txn.open_table(RELEASE_CHUNKS)?;
            Ok(chunks.get((id.0, chunk.0))?.map(|g| g.value()))
        })
    }

    /// Publishes the release once every chunk it names is stored; publishing a
    /// published release returns it unchanged.
    pub fn publish_release(&self, id: Hash) -> Result<ReleaseRecord, StoreError> {
        // Checked outside the write transaction, so a release of a million chunks does
        // not hold up other writers while its files are looked at. Still sound: chunks
        // are never deleted and the chunk list never changes, so what is present now
        // is present at the commit.
        let missing = self.missing_chunks(id)?.len();
        if missing > 0 {
            return Err(StoreError::ReleaseIncomplete { id, missing });
        }
        let now = crate::time::now();
        self.write(|txn| {
            let mut releases = txn.open_table(RELEASES)?;
            let mut record: ReleaseRecord =
                get_json(&releases, id.0, format_args!("release {id}"))?
                    .ok_or(StoreError::UnknownRelease(id))?;
            if record.state == ReleaseState::Published {
                return Ok(record);
            }
            record.state = ReleaseState::Published;
            record.published_at = Some(now);
            put_json(&mut releases, id.0, &record)?;
            Ok(record)
        })
    }

    /// The release, uploading or published.
    pub fn release(&self, id: Hash) -> Result<Option<ReleaseRecord>, StoreError> {
        self.read(|txn| {
            let releases = txn.open_table(RELEASES)?;
            get_json(&releases, id.0, format_args!("release {id}"))
        })
    }

    /// The release named `name@version`, uploading or published.
    pub fn release_by_name(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<ReleaseRecord>, StoreError> {
        self.read(|txn| {
            let names = txn.open_table(RELEASE_NAMES)?;
            let Some(id) = names.get((name, version))?.map(|g| Hash(g.value())) else {
                return Ok(None);
            };
            require_release(txn, id).map(Some).map_err(|_| {
                StoreError::Corrupt(format!(
                    "{name}@{version} names release {id}, which is not stored"
                ))
            })
        })
    }

    /// The `Signed<Release>` bytes of a published release; `None` while it uploads.
    pub fn release_bytes(&self, id: Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|txn| {
            let releases = txn.open_table(RELEASES)?;
            let record: Option<ReleaseRecord> =
                get_json(&releases, id.0, format_args!("release {id}"))?;
            if record.is_none_or(|r| r.state != ReleaseState::Published) {
                return Ok(None);
            }
            let manifests = txn.open_table(MANIFESTS)?;
            match manifests.get(id.0)? {
                Some(bytes) => Ok(Some(bytes.value().to_vec())),
                None => Err(StoreError::Corrupt(format!(
                    "release {id} is published but its manifest is not stored"
                ))),
            }
        })
    }

    /// Published releases, oldest first.
    pub fn list_releases(&self) -> Result<Vec<ReleaseRecord>, StoreError> {
        self.read(|txn| {
            let releases = txn.open_table(RELEASES)?;
            let mut out: Vec<ReleaseRecord> = all_json(&releases, "release")?;
            out.retain(|r| r.state == ReleaseState::Published);
            out.sort_by_key(|r| (r.published_at, r.added_at, r.id));
            Ok(out)
        })
    }
}

/// The release's record, or [`StoreError::UnknownRelease`].
pub(crate) fn require_release(
    txn: &ReadTransaction,
    id: Hash,
) -> Result<ReleaseRecord, StoreError> {
    let releases = txn.open_table(RELEASES)?;
    get_json(&releases, id.0, format_args!("release {id}"))?.ok_or(StoreError::UnknownRelease(id))
}

#[cfg(test)]
mod tests {
    use super::super::testing::release_with;
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    const A: &[u8] = b"chunk a";
    const B: &[u8] = b"chunk b, a little longer";

    #[test]
    fn publish_waits_for_every_chunk() {
        let (_d, s) = store();
        // B twice: a repeated chunk is one missing chunk, not two
        let (bytes, rel, id) = release_with("fw", "1", 1, &[A, B, B]);
        let rec = s.add_release(&bytes, &rel, id, 5).unwrap();
        assert_eq!(rec.state, ReleaseState::Uploading);
        assert_eq!(
            (rec.unique_chunks, rec.total_bytes),
            (2, (A.len() + 2 * B.len()) as u64)
        );
        let mut want = vec![Hash::of(A), Hash::of(B)];
        want.sort();
        assert_eq!(s.missing_chunks(id).unwrap(), want);

        s.put_chunk(Hash::of(A), A).unwrap();
        let err = s.publish_release(id).unwrap_err();
        assert!(
            matches!(err, StoreError::ReleaseIncomplete { id: i, missing: 1 } if i == id),
            "{err}"
        );
        assert_eq!(
            s.release(id).unwrap().unwrap().state,
            ReleaseState::Uploading
        );
        assert_eq!(s.release_bytes(id).unwrap(), None);

        s.put_chunk(Hash::of(B), B).unwrap();
        assert_eq!(s.missing_chunks(id).unwrap(), vec![]);
        let rec = s.publish_release(id).unwrap();
        assert_eq!(rec.state, ReleaseState::Published);
        assert!(rec.published_at.is_some());
        assert_eq!(s.release_bytes(id).unwrap(), Some(bytes));
        // again: unchanged
        assert_eq!(s.publish_release(id).unwrap(), rec);
    }

    #[test]
    fn list_hides_uploading_releases() {
        let (_d, s) = store();
        let (b1, r1, id1) = release_with("fw", "1", 1, &[A]);
        let (b2, r2, id2) = release_with("fw", "2", 2, &[B]);
        s.add_release(&b1, &r1, id1, 1).unwrap();
        s.add_release(&b2, &r2, id2, 2).unwrap();
        assert_eq!(s.list_releases().unwrap(), vec![]);
        s.put_chunk(Hash::of(A), A).unwrap();
        s.publish_release(id1).unwrap();
        let listed: Vec<Hash> = s.list_releases().unwrap().iter().map(|r| r.id).collect();
        assert_eq!(listed, vec![id1]);
        // the uploading one is still there for whoever asks by id or name
        assert_eq!(s.release_by_name("fw", "2").unwrap().unwrap().id, id2);
    }

    #[test]
    fn a_name_and_version_belong_to_one_release() {
        let (_d, s) = store();
        let (b1, r1, id1) = release_with("fw", "1", 1, &[A]);
        let first = s.add_release(&b1, &r1, id1, 1).unwrap();
        // the same release again: idempotent, the first record stays
        assert_eq!(s.add_release(&b1, &r1, id1, 99).unwrap(), first);
        // other content under the same name@version
        let (b2, r2, id2) = release_with("fw", "1", 2, &[B]);
        assert_ne!(id1, id2);
        let err = s.add_release(&b2, &r2, id2, 2).unwrap_err();
        assert!(
            matches!(&err, StoreError::NameTaken { name, version } if name == "fw" && version == "1"),
            "{err}"
        );
        assert_eq!(s.release(id2).unwrap(), None);
        assert_eq!(s.release_by_name("fw", "1").unwrap().unwrap().id, id1);
    }

    #[test]
    fn chunk_len_in_answers_from_the_manifest() {
        let (_d, s) = store();
        let (b, r, id) = release_with("fw", "1", 1, &[A, B]);
        s.add_release(&b, &r, id, 1).unwrap();
        assert_eq!(
            s.chunk_len_in(id, Hash::of(B)).unwrap(),
            Some(B.len() as u32)
        );
        assert_eq!(s.chunk_len_in(id, Hash::of(b"nope")).unwrap(), None);
        let other = Hash([9; 32]);
        assert!(
            matches!(s.chunk_len_in(other, Hash::of(A)), Err(StoreError::UnknownRelease(h)) if h == other)
        );
        assert!(matches!(
            s.publish_release(other),
            Err(StoreError::UnknownRelease(_))
        ));
    }

    // guards: a caller storing a chunk list other than the signed one
    #[test]
    fn bytes_that_disagree_with_the_release_or_id_are_refused() {
        let (_d, s) = store();
        let (b, r, id) = release_with("fw", "1", 1, &[A]);
        let (_, r2, id2) = release_with("fw", "1", 1, &[B]);
        assert!(matches!(
            s.add_release(&b, &r, id2, 1),
            Err(StoreError::ReleaseIdMismatch { expected, found }) if expected == id2 && found == id
        ));
        assert!(matches!(
            s.add_release(&b, &r2, id, 1),
            Err(StoreError::BadRelease(_))
        ));
        assert!(matches!(
            s.add_release(b"garbage", &r, id, 1),
            Err(StoreError::BadRelease(_))
        ));
        assert_eq!(s.release(id).unwrap(), None);
    }
}
