//! Deployments: a published release to a group. The newest deployment to a group is
//! what its accepted devices should run.

use super::Store;
use super::error::StoreError;
use super::records::{DeploymentRecord, DeviceRecord, ReleaseRecord, ReleaseState};
use super::tables::{
    COUNTERS, DEPLOYMENTS, DEVICES, GROUP_DEPLOYMENTS, LAST_DEPLOYMENT, RELEASES, all_json,
    get_json, put_json,
};
use redb::ReadableTable;
use shoal_core::{DeviceId, Hash};

impl Store {
    /// Deploys a published release to `group`. Ids are 1, 2, 3, ... and never reused.
    pub fn create_deployment(
        &self,
        release: Hash,
        group: &str,
        now: u64,
    ) -> Result<DeploymentRecord, StoreError> {
        self.write(|txn| {
            let releases = txn.open_table(RELEASES)?;
            let rel: ReleaseRecord =
                get_json(&releases, release.0, format_args!("release {release}"))?
                    .ok_or(StoreError::UnknownRelease(release))?;
            if rel.state != ReleaseState::Published {
                return Err(StoreError::NotPublished(release));
            }
            let mut counters = txn.open_table(COUNTERS)?;
            let last = counters.get(LAST_DEPLOYMENT)?.map_or(0, |g| g.value());
            let id = last
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt(format!("deployment counter at {last}")))?;
            counters.insert(LAST_DEPLOYMENT, id)?;
            let record = DeploymentRecord {
                id,
                release,
                release_name: rel.name,
                release_version: rel.version,
                group: group.to_string(),
                created_at: now,
            };
            put_json(&mut txn.open_table(DEPLOYMENTS)?, id, &record)?;
            txn.open_table(GROUP_DEPLOYMENTS)?.insert((group, id), ())?;
            Ok(record)
        })
    }

    pub fn deployment(&self, id: u64) -> Result<Option<DeploymentRecord>, StoreError> {
        self.read(|txn| {
            get_json(
                &txn.open_table(DEPLOYMENTS)?,
                id,
                format_args!("deployment {id}"),
            )
        })
    }

    /// Every deployment, oldest first.
    pub fn list_deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        self.read(|txn| all_json(&txn.open_table(DEPLOYMENTS)?, "deployment"))
    }

    /// What the device should run: the newest deployment to its group, with its
    /// release. `None` for a device that is not accepted, has no group, or whose group
    /// has no deployment.
    pub fn target(
        &self,
        device: DeviceId,
    ) -> Result<Option<(DeploymentRecord, ReleaseRecord)>, StoreError> {
        self.read(|txn| {
            let dev: DeviceRecord = get_json(
                &txn.open_table(DEVICES)?,
                device.0,
                format_args!("device {device}"),
            )?
            .ok_or(StoreError::UnknownDevice(device))?;
            let Some(group) = dev.group.as_deref().filter(|_| dev.is_admitted()) else {
                return Ok(None);
            };
            let index = txn.open_table(GROUP_DEPLOYMENTS)?;
            let newest = index.range((group, 0)..=(group, u64::MAX))?.next_back();
            let Some(entry) = newest else {
                return Ok(None);
            };
            let id = entry?.0.value().1;
            let dep: DeploymentRecord = get_json(
                &txn.open_table(DEPLOYMENTS)?,
                id,
                format_args!("deployment {id}"),
            )?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "group {group} lists deployment {id}, which is not stored"
                ))
            })?;
            let rel: ReleaseRecord = get_json(
                &txn.open_table(RELEASES)?,
                dep.release.0,
                format_args!("release {}", dep.release),
            )?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "deployment {id} names release {}, which is not stored",
                    dep.release
                ))
            })?;
            Ok(Some((dep, rel)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{key, release_with};
    use super::*;

    /// A store with two published releases and one uploading, returned by id.
    fn store() -> (tempfile::TempDir, Store, [Hash; 3]) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut ids = [Hash([0; 32]); 3];
        for (i, chunk) in [&b"v1"[..], b"v2", b"v3"].into_iter().enumerate() {
            let (b, r, id) = release_with("fw", &format!("{}", i + 1), i as u64 + 1, &[chunk]);
            s.add_release(&b, &r, id, 1).unwrap();
            if i < 2 {
                s.put_chunk(Hash::of(chunk), chunk).unwrap();
                s.publish_release(id).unwrap();
            }
            ids[i] = id;
        }
        (dir, s, ids)
    }

    #[test]
    fn only_published_releases_are_deployed() {
        let (_d, s, [r1, _, r3]) = store();
        let d = s.create_deployment(r1, "g", 10).unwrap();
        assert_eq!(d.id, 1);
        assert_eq!(
            (d.release_name.as_str(), d.release_version.as_str()),
            ("fw", "1")
        );
        assert!(
            matches!(s.create_deployment(r3, "g", 11), Err(StoreError::NotPublished(h)) if h == r3)
        );
        let unknown = Hash([7; 32]);
        assert!(
            matches!(s.create_deployment(unknown, "g", 11), Err(StoreError::UnknownRelease(h)) if h == unknown)
        );
        // the refusals used no id
        assert_eq!(s.create_deployment(r1, "h", 12).unwrap().id, 2);
        assert_eq!(
            s.list_deployments()
                .unwrap()
                .iter()
                .map(|d| d.id)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(s.deployment(2).unwrap().unwrap().group, "h");
        assert_eq!(s.deployment(3).unwrap(), None);
    }

    #[test]
    fn target_is_the_newest_deployment_to_the_devices_group() {
        let (_d, s, [r1, r2, _]) = store();
        let dev = s.preauthorize(key(1), Some("line-1")).unwrap().id;
        assert_eq!(s.target(dev).unwrap(), None);
        s.create_deployment(r1, "line-1", 10).unwrap();
        let newest = s.create_deployment(r2, "line-1", 11).unwrap();
        // a later deployment to another group does not count, nor does a group that
        // sorts right after this one
        s.create_deployment(r1, "line-2", 12).unwrap();
        s.create_deployment(r1, "line-1x", 13).unwrap();
        let (dep, rel) = s.target(dev).unwrap().unwrap();
        assert_eq!(dep, newest);
        assert_eq!(rel.id, r2);
        // moving the device moves its target
        s.accept(dev, Some("line-2")).unwrap();
        assert_eq!(s.target(dev).unwrap().unwrap().0.id, 3);
    }

    #[test]
    fn devices_not_accepted_have_no_target() {
        let (_d, s, [r1, _, _]) = store();
        s.create_deployment(r1, "g", 10).unwrap();
        let pending = s.enrol(key(1), "pump", "a", &[], 1).unwrap().id;
        assert_eq!(s.target(pending).unwrap(), None);
        let dev = s.preauthorize(key(2), Some("g")).unwrap().id;
        assert!(s.target(dev).unwrap().is_some());
        s.decommission(dev).unwrap();
        assert_eq!(s.target(dev).unwrap(), None);
        // accepted but in no group
        let loose = s.preauthorize(key(3), None).unwrap().id;
        assert_eq!(s.target(loose).unwrap(), None);
        let unknown = key(4).key_id();
        assert!(matches!(
            s.target(unknown),
            Err(StoreError::UnknownDevice(_))
        ));
    }
}
