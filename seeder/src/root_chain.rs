//! The chain of roots a seeder serves. `serve --root R` names the newest root; the
//! store keeps every root the seeder has served, one version apart, so that devices
//! still on an older root can walk to R (`shoal-wan/1` `GetRoots`).
//!
//! Rotating, for an operator: `shoal-seeder root rotate --current root.shoal ... --out
//! root-v2.shoal` offline, then restart the seeder with `--root root-v2.shoal` (and,
//! when the online keys changed, `--online-key` the new one). At that start the seeder
//! checks that R is a rotation of the newest root it kept (signed by the threshold of
//! both) and keeps it. Devices pick it up at their next poll.

use crate::store::Store;
use anyhow::{Result, bail};
use shoal_core::{Root, Signed, verify_kept_root, verify_rotation};
use std::path::Path;

/// What [`keep`] did with the root it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The first root this seeder serves.
    First,
    /// The root it served already.
    Same,
    /// A rotation from the version it served before.
    Rotated { from: u64 },
}

/// Checks `signed` (root `root`, read from `path`) against the chain the store keeps
/// and adds it when it is the next version.
pub fn keep(store: &Store, path: &Path, signed: &Signed<Root>, root: &Root) -> Result<Kept> {
    let bytes = signed.to_bytes()?;
    let Some((newest, newest_bytes)) = store.newest_root()? else {
        store.add_root(root.version, &bytes)?;
        return Ok(Kept::First);
    };
    let v = root.version;
    let p = path.display();
    if v == newest {
        if newest_bytes != bytes {
            bail!(
                "{p}: root v{v} is not the root v{v} this seeder already serves; expected that one or a rotation to v{}",
                v + 1
            );
        }
        return Ok(Kept::Same);
    }
    if v < newest {
        bail!(
            "{p}: root v{v}, but this seeder already serves v{newest}: expected v{newest} or v{}",
            newest + 1
        );
    }
    if v > newest + 1 {
        bail!(
            "{p}: root v{v}, but this seeder serves v{newest}: start it with each root in between first (v{} next), so that devices can walk them",
            newest + 1
        );
    }
    let current = shoal_core::root::decode_root(&newest_bytes)
        .and_then(|s| verify_kept_root(&s))
        .map_err(|e| anyhow::anyhow!("the root v{newest} this seeder keeps: {e}"))?;
    verify_rotation(&current, signed).map_err(|e| {
        anyhow::anyhow!(
            "{p}: not a rotation of the root v{newest} this seeder serves ({e}); expected one signed by the root keys of v{newest} and of v{v}"
        )
    })?;
    store.add_root(v, &bytes)?;
    Ok(Kept::Rotated { from: newest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::{RoleKeys, SecretKey};

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_seed([seed; 32])
    }

    /// Root `version` with root key `root_seed`, signed by the keys of `signers`.
    fn root(version: u64, root_seed: u8, online_seed: u8, signers: &[u8]) -> (Signed<Root>, Root) {
        let one = |seed: u8| RoleKeys {
            keys: vec![key(seed).public()],
            threshold: 1,
        };
        let doc = Root {
            version,
            expires_at: u64::MAX,
            root: one(root_seed),
            release: one(50),
            online: one(online_seed),
        };
        let mut signed = Signed::new(&doc).unwrap();
        for &s in signers {
            signed.sign(&key(s));
        }
        (signed, doc)
    }

    fn keep_root(store: &Store, r: &(Signed<Root>, Root)) -> Result<Kept> {
        keep(store, Path::new("root.shoal"), &r.0, &r.1)
    }

    #[test]
    fn the_chain_grows_by_rotations_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let v1 = root(1, 1, 60, &[1]);
        assert_eq!(keep_root(&store, &v1).unwrap(), Kept::First);
        assert_eq!(keep_root(&store, &v1).unwrap(), Kept::Same);
        // another v1 (another online key) is not the one served
        let other = root(1, 1, 61, &[1]);
        let e = keep_root(&store, &other).unwrap_err().to_string();
        assert!(
            e.contains("is not the root v1 this seeder already serves"),
            "{e}"
        );
        // v3 before v2
        let e = keep_root(&store, &root(3, 1, 60, &[1]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("v2 next"), "{e}");
        // a v2 signed by its own new root key only: not a rotation
        let forged = root(2, 2, 61, &[2]);
        let e = keep_root(&store, &forged).unwrap_err().to_string();
        assert!(e.contains("not a rotation of the root v1"), "{e}");
        // signed by the old and the new root keys: kept
        let v2 = root(2, 2, 61, &[1, 2]);
        assert_eq!(keep_root(&store, &v2).unwrap(), Kept::Rotated { from: 1 });
        let e = keep_root(&store, &v1).unwrap_err().to_string();
        assert!(e.contains("already serves v2"), "{e}");
        assert_eq!(
            store.roots_after(0, 16).unwrap(),
            [v1.0.to_bytes().unwrap(), v2.0.to_bytes().unwrap()]
        );
    }
}
