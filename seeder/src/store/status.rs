//! The last status each device reported.

use super::Store;
use super::deployments::RolloutChange;
use super::error::StoreError;
use super::records::{DeviceRecord, StatusRecord};
use super::tables::{DEVICES, STATUS, get_json, put_json};
use shoal_core::DeviceId;
use shoal_core::wan::StatusReport;

impl Store {
    /// Stores the device's report as its status, received at `now`. A report is also a
    /// sign of life (`last_seen`), when it carries an inventory the device's inventory,
    /// and the moment its group's active deployments advance or pause, all in one
    /// transaction. Returns the deployments that moved. Only accepted devices report (the protocol
    /// answers others `Refused`).
    pub fn put_status(
        &self,
        device: DeviceId,
        report: &StatusReport,
        now: u64,
    ) -> Result<Vec<RolloutChange>, StoreError> {
        self.write(|txn| {
            let mut devices = txn.open_table(DEVICES)?;
            let mut record: DeviceRecord =
                get_json(&devices, device.0, format_args!("device {device}"))?
                    .ok_or(StoreError::UnknownDevice(device))?;
            if !record.is_admitted() {
                return Err(StoreError::NotAccepted(device));
            }
            record.last_seen = Some(now);
            if !report.inventory.is_empty() {
                record.inventory = report.inventory.clone();
            }
            put_json(&mut devices, device.0, &record)?;
            let status = StatusRecord::new(device, report, now);
            put_json(&mut txn.open_table(STATUS)?, device.0, &status)?;
            // a report may carry a phase over a threshold: decide in the same transaction
            match &record.group {
                Some(group) => super::deployments::evaluate_group(txn, group, now),
                None => Ok(Vec::new()),
            }
        })
    }

    /// The device's last report, if it sent one.
    pub fn status(&self, device: DeviceId) -> Result<Option<StatusRecord>, StoreError> {
        self.read(|txn| {
            get_json(
                &txn.open_table(STATUS)?,
                device.0,
                format_args!("status of {device}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::key;
    use super::*;
    use shoal_core::Hash;
    use shoal_core::wan::{BytesBySource, DeviceState};

    fn report(state: DeviceState, done: u64) -> StatusReport {
        StatusReport {
            state,
            release: Some(Hash([4; 32])),
            done_bytes: done,
            total_bytes: 100,
            bytes: BytesBySource {
                local: 1,
                wan: 2,
                lan: 3,
            },
            error: None,
            head_expires_at: Some(500),
            inventory: vec![("os".into(), "7".into())],
        }
    }

    #[test]
    fn the_last_report_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let dev = s.preauthorize(key(1), Some("g")).unwrap().id;
        assert_eq!(s.status(dev).unwrap(), None);
        s.put_status(dev, &report(DeviceState::Downloading, 10), 20)
            .unwrap();
        s.put_status(dev, &report(DeviceState::Installing, 100), 30)
            .unwrap();
        let st = s.status(dev).unwrap().unwrap();
        assert_eq!(
            (st.state, st.done_bytes, st.received_at),
            (DeviceState::Installing, 100, 30)
        );
        assert_eq!((st.bytes_local, st.bytes_wan, st.bytes_lan), (1, 2, 3));
        let d = s.device(dev).unwrap().unwrap();
        assert_eq!(d.last_seen, Some(30));
        assert_eq!(d.inventory, vec![("os".to_string(), "7".to_string())]);
    }

    #[test]
    fn reports_from_devices_not_accepted_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let pending = s.enrol(key(1), "pump", "a", &[], 1).unwrap().id;
        let r = report(DeviceState::Idle, 0);
        assert!(matches!(
            s.put_status(pending, &r, 5),
            Err(StoreError::NotAccepted(_))
        ));
        assert_eq!(s.status(pending).unwrap(), None);
        // and the refused report changed nothing
        assert_eq!(s.device(pending).unwrap().unwrap().last_seen, Some(1));
        assert!(matches!(
            s.put_status(key(2).key_id(), &r, 5),
            Err(StoreError::UnknownDevice(_))
        ));
    }
}
