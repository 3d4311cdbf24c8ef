//! Management API tokens, kept by BLAKE3 of their secret: the store never holds a
//! secret, so a copy of `seeder.redb` lets nobody in (docs/decisions/0008-api-tokens.md).

use super::Store;
use super::error::StoreError;
use super::records::{Role, TokenRecord};
use super::tables::{COUNTERS, LAST_TOKEN, TOKEN_IDS, TOKENS, get_json, put_json};
use redb::ReadableTable;
use shoal_core::Hash;

impl Store {
    /// Stores a new token under `secret_hash`; ids are 1, 2, 3, ... and never reused.
    pub fn add_token(
        &self,
        secret_hash: Hash,
        role: Role,
        groups: &[String],
        created_by: &str,
        now: u64,
    ) -> Result<TokenRecord, StoreError> {
        self.write(|txn| {
            let mut tokens = txn.open_table(TOKENS)?;
            if tokens.get(secret_hash.0)?.is_some() {
                return Err(StoreError::Corrupt(
                    "a new token's secret is already stored (the OS gave the same random bytes twice?)"
                        .into(),
                ));
            }
            let mut counters = txn.open_table(COUNTERS)?;
            let last = counters.get(LAST_TOKEN)?.map_or(0, |g| g.value());
            let id = last
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt(format!("token counter at {last}")))?;
            counters.insert(LAST_TOKEN, id)?;
            let record = TokenRecord {
                id,
                role,
                groups: groups.to_vec(),
                created_by: created_by.to_string(),
                created_at: now,
                revoked_at: None,
            };
            put_json(&mut tokens, secret_hash.0, &record)?;
            txn.open_table(TOKEN_IDS)?.insert(id, secret_hash.0)?;
            Ok(record)
        })
    }

    /// The live (not revoked) token whose secret hashes to `secret_hash`.
    pub fn token(&self, secret_hash: Hash) -> Result<Option<TokenRecord>, StoreError> {
        self.read(|txn| {
            let record: Option<TokenRecord> = get_json(
                &txn.open_table(TOKENS)?,
                secret_hash.0,
                format_args!("a token"),
            )?;
            Ok(record.filter(|t| t.revoked_at.is_none()))
        })
    }

    /// Every token, revoked ones too, by id.
    pub fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.read(|txn| {
            let ids = txn.open_table(TOKEN_IDS)?;
            let tokens = txn.open_table(TOKENS)?;
            let mut out = Vec::new();
            for entry in ids.iter()? {
                let (id, hash) = entry?;
                let id = id.value();
                let record = get_json(&tokens, hash.value(), format_args!("token {id}"))?
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("token {id} is listed but not stored"))
                    })?;
                out.push(record);
            }
            Ok(out)
        })
    }

    /// Revokes token `id` at `now`; revoking it again keeps the first time.
    pub fn revoke_token(&self, id: u64, now: u64) -> Result<TokenRecord, StoreError> {
        self.write(|txn| {
            let hash = txn
                .open_table(TOKEN_IDS)?
                .get(id)?
                .map(|g| g.value())
                .ok_or(StoreError::UnknownToken(id))?;
            let mut tokens = txn.open_table(TOKENS)?;
            let mut record: TokenRecord = get_json(&tokens, hash, format_args!("token {id}"))?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("token {id} is listed but not stored"))
                })?;
            record.revoked_at.get_or_insert(now);
            put_json(&mut tokens, hash, &record)?;
            Ok(record)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_by_secret_hash_until_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let (a, b) = (Hash::of(b"secret a"), Hash::of(b"secret b"));
        let ta = s
            .add_token(a, Role::Viewer, &[], "token 0 (admin)", 5)
            .unwrap();
        let groups = vec!["line-a".to_string()];
        let tb = s.add_token(b, Role::Deployer, &groups, "x", 6).unwrap();
        assert_eq!((ta.id, tb.id), (1, 2));
        assert_eq!(s.token(b).unwrap().unwrap().groups, groups);
        assert_eq!(s.token(Hash::of(b"other")).unwrap(), None);
        let r = s.revoke_token(1, 9).unwrap();
        assert_eq!(r.revoked_at, Some(9));
        assert_eq!(s.token(a).unwrap(), None, "a revoked token lets nobody in");
        assert_eq!(s.revoke_token(1, 20).unwrap().revoked_at, Some(9));
        assert!(matches!(
            s.revoke_token(7, 1),
            Err(StoreError::UnknownToken(7))
        ));
        let all = s.list_tokens().unwrap();
        assert_eq!(all.iter().map(|t| t.id).collect::<Vec<_>>(), vec![1, 2]);
    }
}
