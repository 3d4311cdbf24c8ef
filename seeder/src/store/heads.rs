//! Head sequence numbers: a device accepts a `Head` only with a `seq` above the last
//! one it accepted, so the seeder keeps, per device, the seq of the last head it issued
//! and the release it named.

use super::Store;
use super::error::StoreError;
use super::records::DeviceRecord;
use super::tables::{DEVICES, HEADS, get_json};
use redb::{ReadableTable, Table};
use shoal_core::{DeviceId, Hash};

impl Store {
    /// The seq for a head naming `release` for `device`: the stored one if the stored
    /// head names the same release (so a re-issued head, with a new expiry, is still
    /// accepted), otherwise the next one, stored together with `release` in one
    /// transaction. Starts at 1. Only for accepted devices.
    pub fn next_head_seq(&self, device: DeviceId, release: Hash) -> Result<u64, StoreError> {
        // Most calls are a device polling an unchanged target: answer from a snapshot
        // without a write (and its fsync).
        let current = self.read(|txn| {
            check_admitted(&txn.open_table(DEVICES)?, device)?;
            Ok(txn.open_table(HEADS)?.get(device.0)?.map(|g| g.value()))
        })?;
        if let Some((seq, r)) = current
            && r == release.0
        {
            return Ok(seq);
        }
        self.write(|txn| {
            check_admitted(&txn.open_table(DEVICES)?, device)?;
            let mut heads: Table<'_, [u8; 32], (u64, [u8; 32])> = txn.open_table(HEADS)?;
            let current = heads.get(device.0)?.map(|g| g.value());
            match current {
                Some((seq, r)) if r == release.0 => Ok(seq),
                other => {
                    let last = other.map_or(0, |(seq, _)| seq);
                    let seq = last.checked_add(1).ok_or_else(|| {
                        StoreError::Corrupt(format!("head seq of device {device} at {last}"))
                    })?;
                    heads.insert(device.0, (seq, release.0))?;
                    Ok(seq)
                }
            }
        })
    }
}

fn check_admitted(
    devices: &impl ReadableTable<[u8; 32], &'static [u8]>,
    device: DeviceId,
) -> Result<(), StoreError> {
    let record: DeviceRecord = get_json(devices, device.0, format_args!("device {device}"))?
        .ok_or(StoreError::UnknownDevice(device))?;
    if record.is_admitted() {
        Ok(())
    } else {
        Err(StoreError::NotAccepted(device))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::key;
    use super::*;

    #[test]
    fn seq_stays_for_the_same_target_and_rises_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let dev = s.preauthorize(key(1), Some("g")).unwrap().id;
        let (a, b) = (Hash([1; 32]), Hash([2; 32]));
        assert_eq!(s.next_head_seq(dev, a).unwrap(), 1);
        assert_eq!(s.next_head_seq(dev, a).unwrap(), 1);
        assert_eq!(s.next_head_seq(dev, b).unwrap(), 2);
        assert_eq!(s.next_head_seq(dev, b).unwrap(), 2);
        // back to an earlier release is a change too: the device needs a higher seq
        assert_eq!(s.next_head_seq(dev, a).unwrap(), 3);
        // per device
        let other = s.preauthorize(key(2), Some("g")).unwrap().id;
        assert_eq!(s.next_head_seq(other, b).unwrap(), 1);
        assert_eq!(s.next_head_seq(dev, a).unwrap(), 3);
    }

    #[test]
    fn only_accepted_devices_get_heads() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let pending = s.enrol(key(1), "pump", "a", &[], 1).unwrap().id;
        let h = Hash([1; 32]);
        assert!(
            matches!(s.next_head_seq(pending, h), Err(StoreError::NotAccepted(d)) if d == pending)
        );
        let unknown = key(2).key_id();
        assert!(matches!(
            s.next_head_seq(unknown, h),
            Err(StoreError::UnknownDevice(_))
        ));
        s.accept(pending, None).unwrap();
        assert_eq!(s.next_head_seq(pending, h).unwrap(), 1);
        s.decommission(pending).unwrap();
        assert!(matches!(
            s.next_head_seq(pending, h),
            Err(StoreError::NotAccepted(_))
        ));
    }
}
