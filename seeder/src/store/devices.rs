//! Devices: enrolment (pending → accepted / rejected), preauthorized keys,
//! decommissioning.

use super::Store;
use super::error::StoreError;
use super::records::DeviceRecord;
use super::tables::{DEVICES, all_json, get_json, put_json};
use shoal_core::wan::Enrolment;
use shoal_core::{DeviceId, PublicKey};

impl Store {
    /// A device asks to join. A new key becomes `Pending`; a known one (preauthorized,
    /// or enrolled before) keeps its state and group, and its type, site and inventory
    /// are updated.
    pub fn enrol(
        &self,
        key: PublicKey,
        device_type: &str,
        site: &str,
        inventory: &[(String, String)],
        now: u64,
    ) -> Result<DeviceRecord, StoreError> {
        let id = key.key_id();
        self.write(|txn| {
            let mut devices = txn.open_table(DEVICES)?;
            let mut record = get_json(&devices, id.0, format_args!("device {id}"))?
                .unwrap_or_else(|| new_record(key, Enrolment::Pending));
            record.device_type = device_type.to_string();
            record.site = site.to_string();
            record.inventory = inventory.to_vec();
            record.enrolled_at.get_or_insert(now);
            record.last_seen = Some(now);
            put_json(&mut devices, id.0, &record)?;
            Ok(record)
        })
    }

    pub fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        self.read(|txn| {
            let devices = txn.open_table(DEVICES)?;
            get_json(&devices, id.0, format_args!("device {id}"))
        })
    }

    /// Every known device, by id.
    pub fn list_devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.read(|txn| all_json(&txn.open_table(DEVICES)?, "device"))
    }

    /// Admits the device; `group`, when given, replaces its group. Accepting a
    /// decommissioned device is the operator's explicit word and readmits it.
    pub fn accept(&self, id: DeviceId, group: Option<&str>) -> Result<DeviceRecord, StoreError> {
        self.update(id, |r| {
            r.state = Enrolment::Accepted;
            r.decommissioned = false;
            if let Some(g) = group {
                r.group = Some(g.to_string());
            }
        })
    }

    pub fn reject(&self, id: DeviceId) -> Result<DeviceRecord, StoreError> {
        self.update(id, |r| r.state = Enrolment::Rejected)
    }

    /// Revokes the device for good (until an operator accepts it again).
    pub fn decommission(&self, id: DeviceId) -> Result<DeviceRecord, StoreError> {
        self.update(id, |r| {
            r.state = Enrolment::Rejected;
            r.decommissioned = true;
        })
    }

    /// Admits a key before its device ever connects: when it enrols it is already
    /// `Accepted`, in `group`. For a known device this is `accept`.
    pub fn preauthorize(
        &self,
        key: PublicKey,
        group: Option<&str>,
    ) -> Result<DeviceRecord, StoreError> {
        let id = key.key_id();
        self.write(|txn| {
            let mut devices = txn.open_table(DEVICES)?;
            let mut record = get_json(&devices, id.0, format_args!("device {id}"))?
                .unwrap_or_else(|| new_record(key, Enrolment::Accepted));
            record.state = Enrolment::Accepted;
            record.decommissioned = false;
            if let Some(g) = group {
                record.group = Some(g.to_string());
            }
            put_json(&mut devices, id.0, &record)?;
            Ok(record)
        })
    }

    /// Records that the device was heard from at `now`.
    pub fn touch(&self, id: DeviceId, now: u64) -> Result<(), StoreError> {
        self.update(id, |r| r.last_seen = Some(now)).map(|_| ())
    }

    /// Reads, changes and writes one device record in one transaction.
    fn update(
        &self,
        id: DeviceId,
        change: impl FnOnce(&mut DeviceRecord),
    ) -> Result<DeviceRecord, StoreError> {
        self.write(|txn| {
            let mut devices = txn.open_table(DEVICES)?;
            let mut record: DeviceRecord = get_json(&devices, id.0, format_args!("device {id}"))?
                .ok_or(StoreError::UnknownDevice(id))?;
            change(&mut record);
            put_json(&mut devices, id.0, &record)?;
            Ok(record)
        })
    }
}

fn new_record(key: PublicKey, state: Enrolment) -> DeviceRecord {
    DeviceRecord {
        id: key.key_id(),
        public_key: key,
        device_type: String::new(),
        site: String::new(),
        group: None,
        state,
        decommissioned: false,
        inventory: Vec::new(),
        enrolled_at: None,
        last_seen: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::key;
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    fn inv() -> Vec<(String, String)> {
        vec![("os".into(), "6.1".into())]
    }

    #[test]
    fn a_new_device_is_pending() {
        let (_d, s) = store();
        let r = s.enrol(key(1), "pump", "depot", &inv(), 100).unwrap();
        assert_eq!(r.state, Enrolment::Pending);
        assert_eq!(r.id, key(1).key_id());
        assert_eq!((r.enrolled_at, r.last_seen), (Some(100), Some(100)));
        assert_eq!(r.group, None);
        assert_eq!(s.device(r.id).unwrap(), Some(r.clone()));
        assert_eq!(s.list_devices().unwrap(), vec![r]);
    }

    #[test]
    fn a_preauthorized_key_enrols_accepted_in_its_group() {
        let (_d, s) = store();
        let pre = s.preauthorize(key(2), Some("line-1")).unwrap();
        assert_eq!(pre.state, Enrolment::Accepted);
        assert_eq!(pre.enrolled_at, None);
        let r = s.enrol(key(2), "pump", "depot", &inv(), 7).unwrap();
        assert_eq!(r.state, Enrolment::Accepted);
        assert_eq!(r.group.as_deref(), Some("line-1"));
        assert_eq!((r.device_type.as_str(), r.site.as_str()), ("pump", "depot"));
        assert_eq!(r.enrolled_at, Some(7));
        // another device is unaffected
        assert_eq!(
            s.enrol(key(3), "pump", "depot", &[], 7).unwrap().state,
            Enrolment::Pending
        );
    }

    #[test]
    fn enrolling_again_updates_details_and_keeps_state() {
        let (_d, s) = store();
        let id = s.enrol(key(1), "pump", "a", &[], 1).unwrap().id;
        s.accept(id, Some("g")).unwrap();
        let r = s.enrol(key(1), "pump-v2", "b", &inv(), 9).unwrap();
        assert_eq!(r.state, Enrolment::Accepted);
        assert_eq!(r.group.as_deref(), Some("g"));
        assert_eq!((r.device_type.as_str(), r.site.as_str()), ("pump-v2", "b"));
        assert_eq!(r.inventory, inv());
        assert_eq!((r.enrolled_at, r.last_seen), (Some(1), Some(9)));
    }

    #[test]
    fn accept_keeps_the_group_unless_given() {
        let (_d, s) = store();
        let id = s.enrol(key(1), "pump", "a", &[], 1).unwrap().id;
        assert_eq!(
            s.accept(id, Some("g1")).unwrap().group.as_deref(),
            Some("g1")
        );
        assert_eq!(s.accept(id, None).unwrap().group.as_deref(), Some("g1"));
        assert_eq!(
            s.accept(id, Some("g2")).unwrap().group.as_deref(),
            Some("g2")
        );
    }

    #[test]
    fn reject_and_decommission() {
        let (_d, s) = store();
        let id = s.enrol(key(1), "pump", "a", &[], 1).unwrap().id;
        let r = s.reject(id).unwrap();
        assert_eq!((r.state, r.decommissioned), (Enrolment::Rejected, false));
        s.accept(id, Some("g")).unwrap();
        let r = s.decommission(id).unwrap();
        assert_eq!((r.state, r.decommissioned), (Enrolment::Rejected, true));
        assert!(!r.is_admitted());
        // a decommissioned device enrolling again stays out
        let r = s.enrol(key(1), "pump", "a", &[], 2).unwrap();
        assert_eq!((r.state, r.decommissioned), (Enrolment::Rejected, true));
        assert_eq!(s.device(id).unwrap().unwrap().state, Enrolment::Rejected);
    }

    #[test]
    fn unknown_devices_are_named_in_the_error() {
        let (_d, s) = store();
        let id = key(5).key_id();
        for result in [s.accept(id, None), s.reject(id), s.decommission(id)] {
            assert!(matches!(result, Err(StoreError::UnknownDevice(x)) if x == id));
        }
        assert!(matches!(s.touch(id, 1), Err(StoreError::UnknownDevice(_))));
        assert_eq!(s.device(id).unwrap(), None);
    }

    #[test]
    fn touch_sets_last_seen() {
        let (_d, s) = store();
        let id = s.enrol(key(1), "pump", "a", &[], 1).unwrap().id;
        s.touch(id, 50).unwrap();
        assert_eq!(s.device(id).unwrap().unwrap().last_seen, Some(50));
    }
}
