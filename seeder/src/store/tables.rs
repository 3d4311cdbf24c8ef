//! The redb tables and how records go in and out of them.
//!
//! Records are JSON (the same form the management API returns), so a field added later
//! with `#[serde(default)]` reads old records. Keys are fixed-size binary.

use super::error::StoreError;
use redb::{Database, Key, ReadableTable, Table, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Borrow;
use std::fmt;

/// Release id -> `ReleaseRecord`.
pub(crate) const RELEASES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("releases");
/// Release id -> the `Signed<Release>` bytes as uploaded.
pub(crate) const MANIFESTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("manifests");
/// (name, version) -> release id: one release per name@version.
pub(crate) const RELEASE_NAMES: TableDefinition<(&str, &str), [u8; 32]> =
    TableDefinition::new("release_names");
/// (release id, chunk hash) -> the chunk's length in the manifest. Kept beside the
/// manifest so an upload check or a publish does not decode a 64 MiB manifest.
pub(crate) const RELEASE_CHUNKS: TableDefinition<([u8; 32], [u8; 32]), u32> =
    TableDefinition::new("release_chunks");
/// Device id -> `DeviceRecord`.
pub(crate) const DEVICES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("devices");
/// Deployment id -> `DeploymentRecord`.
pub(crate) const DEPLOYMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("deployments");
/// (group, deployment id) -> (): the newest deployment of a group is the last key of
/// its range.
pub(crate) const GROUP_DEPLOYMENTS: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("group_deployments");
/// Device id -> (head seq, release id of that head).
pub(crate) const HEADS: TableDefinition<[u8; 32], (u64, [u8; 32])> = TableDefinition::new("heads");
/// Device id -> `StatusRecord`.
pub(crate) const STATUS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("status");
/// (deployment id, device id) -> the phase (0-based) that releases the device: the
/// group's accepted devices when the deployment was made.
pub(crate) const DEPLOYMENT_MEMBERS: TableDefinition<(u64, [u8; 32]), u32> =
    TableDefinition::new("deployment_members");
/// BLAKE3 of a token's secret -> `TokenRecord`.
pub(crate) const TOKENS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("tokens");
/// Token id -> BLAKE3 of its secret (for list and revoke by id).
pub(crate) const TOKEN_IDS: TableDefinition<u64, [u8; 32]> = TableDefinition::new("token_ids");
/// Root version -> the `Signed<Root>` bytes: every root this seeder has served, one
/// version apart, so that a device on an older root can walk to the newest.
pub(crate) const ROOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("roots");
/// Named counters (the last deployment id, the last token id).
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

pub(crate) const LAST_DEPLOYMENT: &str = "last_deployment";
pub(crate) const LAST_TOKEN: &str = "last_token";

/// Creates every table, so read transactions never meet a missing one.
pub(crate) fn create_all(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(RELEASES)?;
    txn.open_table(MANIFESTS)?;
    txn.open_table(RELEASE_NAMES)?;
    txn.open_table(RELEASE_CHUNKS)?;
    txn.open_table(DEVICES)?;
    txn.open_table(DEPLOYMENTS)?;
    txn.open_table(GROUP_DEPLOYMENTS)?;
    txn.open_table(HEADS)?;
    txn.open_table(STATUS)?;
    txn.open_table(DEPLOYMENT_MEMBERS)?;
    txn.open_table(TOKENS)?;
    txn.open_table(TOKEN_IDS)?;
    txn.open_table(COUNTERS)?;
    txn.open_table(ROOTS)?;
    txn.commit()?;
    Ok(())
}

/// Reads and decodes the record at `key`; `what` names it in a corruption message.
pub(crate) fn get_json<'a, K, T>(
    table: &impl ReadableTable<K, &'static [u8]>,
    key: impl Borrow<K::SelfType<'a>>,
    what: fmt::Arguments<'_>,
) -> Result<Option<T>, StoreError>
where
    K: Key + 'static,
    T: DeserializeOwned,
{
    match table.get(key)? {
        Some(guard) => decode(guard.value(), what).map(Some),
        None => Ok(None),
    }
}

/// Every record of a table, in key order.
pub(crate) fn all_json<K, T>(
    table: &impl ReadableTable<K, &'static [u8]>,
    what: &str,
) -> Result<Vec<T>, StoreError>
where
    K: Key + 'static,
    T: DeserializeOwned,
{
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (_, value) = entry?;
        out.push(decode(value.value(), format_args!("a {what} record"))?);
    }
    Ok(out)
}

/// Encodes `value` and stores it at `key`.
pub(crate) fn put_json<'k, K, T>(
    table: &mut Table<'_, K, &'static [u8]>,
    key: impl Borrow<K::SelfType<'k>>,
    value: &T,
) -> Result<(), StoreError>
where
    K: Key + 'static,
    T: Serialize,
{
    // Records are plain structs with string keys only, which JSON always encodes; an
    // error here would be a bug in a record type, reported rather than panicked on.
    let bytes = serde_json::to_vec(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a record: {e}")))?;
    table.insert(key, bytes.as_slice())?;
    Ok(())
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: fmt::Arguments<'_>) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("{what} does not decode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    #[test]
    fn a_record_that_does_not_decode_is_reported_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        create_all(&db).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(DEVICES).unwrap();
            t.insert([1; 32], b"{not json".as_slice()).unwrap();
            put_json(&mut t, [2; 32], &vec![1u8, 2]).unwrap();
        }
        txn.commit().unwrap();
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(DEVICES).unwrap();
        let bad = get_json::<_, Vec<u8>>(&t, [1; 32], format_args!("device 1"));
        assert!(
            matches!(&bad, Err(StoreError::Corrupt(m)) if m.starts_with("device 1")),
            "{bad:?}"
        );
        let good: Option<Vec<u8>> = get_json(&t, [2; 32], format_args!("device 2")).unwrap();
        assert_eq!(good, Some(vec![1, 2]));
        let absent: Option<Vec<u8>> = get_json(&t, [3; 32], format_args!("device 3")).unwrap();
        assert_eq!(absent, None);
    }
}
