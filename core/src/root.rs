//! The `Root` document: the keys and thresholds of every role, and its own expiry.
//!
//! A device is provisioned with a root it trusts as given (v1). Every later root must
//! be signed by a threshold of the root keys of the version before it **and** by a
//! threshold of its own root keys, and its version must be exactly one more; a device
//! walks such a chain one step at a time, at most [`MAX_ROTATION_STEPS`] steps per
//! update. Only the newest root of a chain has to be unexpired: an old root may have
//! expired while the device was off, and rotation is how it recovers.

use crate::error::VerifyError;
use crate::hash::Hash;
use crate::keys::{KeyId, PublicKey};
use crate::signed::{DocKind, Document, Signed, document};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The largest encoded Root body.
pub const ROOT_BODY_CAP: usize = 64 * 1024;
/// At most this many keys per role.
pub const MAX_KEYS_PER_ROLE: usize = 32;
/// A device walks at most this many rotations in one go.
pub const MAX_ROTATION_STEPS: usize = 16;

/// The three roles of the trust model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Offline, k-of-n: signs roots.
    Root,
    /// Offline, k-of-n, never on the seeder: signs releases.
    Release,
    /// Held by the seeder: signs heads and admissions.
    Online,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Root => "root",
            Role::Release => "release",
            Role::Online => "online",
        })
    }
}

/// The keys of one role and how many of them must sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    pub keys: Vec<PublicKey>,
    pub threshold: u32,
}

/// The root of trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// 1 for the root a device is provisioned with; +1 per rotation.
    pub version: u64,
    /// Unix seconds after which this root no longer verifies anything.
    pub expires_at: u64,
    pub root: RoleKeys,
    pub release: RoleKeys,
    pub online: RoleKeys,
}

document!(Root, DocKind::Root, b"shoal/root/v1", ROOT_BODY_CAP);

impl Root {
    pub fn role(&self, role: Role) -> &RoleKeys {
        match role {
            Role::Root => &self.root,
            Role::Release => &self.release,
            Role::Online => &self.online,
        }
    }

    /// A fingerprint of one role: equal for two roots exactly when that role has the
    /// same distinct keys and the same threshold (key order and duplicates aside).
    /// A device keys the seq of the last head it accepted by the online role's epoch:
    /// after a rotation to new online keys, which may follow a compromise that pushed
    /// the seq to its maximum (the fast-forward attack), the seq starts over, as TUF
    /// clients drop their timestamp metadata when the timestamp keys rotate.
    pub fn role_epoch(&self, role: Role) -> Hash {
        let keys = self.role(role);
        let ids: BTreeSet<KeyId> = keys.keys.iter().map(PublicKey::key_id).collect();
        let mut bytes = b"shoal/role-epoch/v1".to_vec();
        bytes.extend_from_slice(&keys.threshold.to_le_bytes());
        for id in ids {
            bytes.extend_from_slice(&id.0);
        }
        Hash::of(&bytes)
    }

    /// Which role lists the key with this id, if any.
    pub fn role_of(&self, id: &KeyId) -> Option<Role> {
        [Role::Root, Role::Release, Role::Online]
            .into_iter()
            .find(|&r| self.role(r).keys.iter().any(|k| k.key_id() == *id))
    }

    /// The rules a root must satisfy whoever signed it: every threshold at least 1 and
    /// at most the number of distinct keys, every key a usable ed25519 key, no key in
    /// two roles (the online key on the seeder must never be a release key).
    pub fn check_structure(&self) -> Result<(), VerifyError> {
        let mut owner: Vec<(KeyId, Role)> = Vec::new();
        for role in [Role::Root, Role::Release, Role::Online] {
            let keys = self.role(role);
            if keys.keys.len() > MAX_KEYS_PER_ROLE {
                return Err(VerifyError::TooManyKeys {
                    role,
                    count: keys.keys.len(),
                    max: MAX_KEYS_PER_ROLE,
                });
            }
            if keys.threshold == 0 {
                return Err(VerifyError::ZeroThreshold { role });
            }
            let distinct: BTreeSet<KeyId> = keys.keys.iter().map(PublicKey::key_id).collect();
            if (keys.threshold as usize) > distinct.len() {
                return Err(VerifyError::UnsatisfiableThreshold {
                    role,
                    threshold: keys.threshold,
                    distinct_keys: distinct.len(),
                });
            }
            for key in &keys.keys {
                if key.verifying_key().is_err() {
                    return Err(VerifyError::BadKey {
                        role,
                        key: key.key_id(),
                    });
                }
            }
            for id in distinct {
                if let Some(&(_, first)) = owner.iter().find(|(k, _)| *k == id) {
                    return Err(VerifyError::KeyInTwoRoles {
                        key: id,
                        first,
                        second: role,
                    });
                }
                owner.push((id, role));
            }
        }
        Ok(())
    }

    /// Fails with `Expired` once `now` has reached `expires_at`.
    pub fn check_fresh(&self, now: u64) -> Result<(), VerifyError> {
        check_expiry(DocKind::Root, self.expires_at, now)
    }

    /// Checks a signed document's signatures against `role` of this root.
    pub fn check_signatures<T: Document>(
        &self,
        signed: &Signed<T>,
        role: Role,
    ) -> Result<(), VerifyError> {
        check_signature_count(signed)?;
        let keys = self.role(role);
        if keys.threshold == 0 {
            return Err(VerifyError::ZeroThreshold { role });
        }
        let tally = signed.tally(self, role);
        if tally.valid < keys.threshold as usize {
            return Err(VerifyError::ThresholdNotMet {
                doc: T::KIND,
                role,
                threshold: keys.threshold,
                tally,
            });
        }
        Ok(())
    }
}

pub(crate) fn check_signature_count<T: Document>(signed: &Signed<T>) -> Result<(), VerifyError> {
    if signed.signatures.len() > crate::signed::MAX_SIGNATURES {
        return Err(VerifyError::TooManySignatures {
            doc: T::KIND,
            count: signed.signatures.len(),
            max: crate::signed::MAX_SIGNATURES,
        });
    }
    Ok(())
}

pub(crate) fn check_expiry(doc: DocKind, expires_at: u64, now: u64) -> Result<(), VerifyError> {
    if now >= expires_at {
        return Err(VerifyError::Expired {
            doc,
            expires_at,
            now,
        });
    }
    Ok(())
}

pub(crate) fn malformed(doc: DocKind) -> impl Fn(crate::codec::DecodeError) -> VerifyError {
    move |reason| VerifyError::Malformed { doc, reason }
}

/// Decodes a root file's bytes.
pub fn decode_root(bytes: &[u8]) -> Result<Signed<Root>, VerifyError> {
    Root::decode_envelope(bytes).map_err(malformed(DocKind::Root))
}

/// Verifies a root that is trusted by provisioning (the device's first root, or the
/// root an operator hands a tool): well-formed, signed by a threshold of its own root
/// keys, and not expired at `now`.
pub fn verify_root(signed: &Signed<Root>, now: u64) -> Result<Root, VerifyError> {
    let root = signed
        .decode_unverified()
        .map_err(malformed(DocKind::Root))?;
    root.check_structure()?;
    root.check_signatures(signed, Role::Root)?;
    root.check_fresh(now)?;
    Ok(root)
}

/// Checks a root this device already trusts (the one it keeps on disk): well-formed and
/// signed by a threshold of its own root keys. Its expiry is not checked: a device
/// whose root expired while it was off recovers by walking a rotation from it
/// ([`verify_root_chain`] checks the newest root's expiry), and nothing else verifies
/// against an expired root.
pub fn verify_kept_root(signed: &Signed<Root>) -> Result<Root, VerifyError> {
    let root = signed
        .decode_unverified()
        .map_err(malformed(DocKind::Root))?;
    root.check_structure()?;
    root.check_signatures(signed, Role::Root)?;
    Ok(root)
}

/// One rotation step: `next` must be version `current.version + 1`, well-formed, and
/// signed by a threshold of `current`'s root keys and of its own. Expiry is not checked
/// here (see [`verify_root_chain`]).
pub fn verify_rotation(current: &Root, next: &Signed<Root>) -> Result<Root, VerifyError> {
    // Signatures by the keys we already trust come first: a root that the current root
    // keys did not sign is not even parsed.
    current.check_signatures(next, Role::Root)?;
    let root = next.decode_unverified().map_err(malformed(DocKind::Root))?;
    if root.version != current.version.saturating_add(1) {
        return Err(VerifyError::RotationVersion {
            expected: current.version.saturating_add(1),
            found: root.version,
        });
    }
    root.check_structure()?;
    root.check_signatures(next, Role::Root)?;
    Ok(root)
}

/// Walks `chain` from `trusted`, one version at a time, and returns the newest root,
/// which must not be expired at `now`. Nothing is trusted unless the whole walk passes.
pub fn verify_root_chain(
    trusted: &Root,
    chain: &[Signed<Root>],
    now: u64,
) -> Result<Root, VerifyError> {
    if chain.len() > MAX_ROTATION_STEPS {
        return Err(VerifyError::RotationChainTooLong {
            steps: chain.len(),
            max: MAX_ROTATION_STEPS,
        });
    }
    let mut current = trusted.clone();
    for next in chain {
        current = verify_rotation(&current, next)?;
    }
    current.check_fresh(now)?;
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    fn root(online: &[u8], threshold: u32) -> Root {
        let keys = |seeds: &[u8]| {
            seeds
                .iter()
                .map(|&s| SecretKey::from_seed([s; 32]).public())
                .collect::<Vec<_>>()
        };
        Root {
            version: 1,
            expires_at: 100,
            root: RoleKeys {
                keys: keys(&[1]),
                threshold: 1,
            },
            release: RoleKeys {
                keys: keys(&[2]),
                threshold: 1,
            },
            online: RoleKeys {
                keys: keys(online),
                threshold,
            },
        }
    }

    #[test]
    fn a_role_epoch_follows_its_distinct_keys_and_threshold_only() {
        let e = |r: &Root| r.role_epoch(Role::Online);
        assert_eq!(e(&root(&[7, 8], 1)), e(&root(&[8, 7], 1)), "key order");
        assert_eq!(e(&root(&[7, 8], 1)), e(&root(&[7, 8, 7], 1)), "duplicates");
        assert_ne!(e(&root(&[7, 8], 1)), e(&root(&[7, 9], 1)), "a new key");
        assert_ne!(e(&root(&[7, 8], 1)), e(&root(&[7, 8], 2)), "the threshold");
        assert_ne!(e(&root(&[7], 1)), root(&[7], 1).role_epoch(Role::Root));
        let mut later = root(&[7, 8], 1);
        later.version = 5;
        later.expires_at = 500;
        assert_eq!(e(&root(&[7, 8], 1)), e(&later), "version and expiry aside");
    }

    // guards: a device whose kept root expired while it was off must still be able to
    // walk a rotation from it; nothing verifies against it meanwhile
    #[test]
    fn a_kept_root_loads_after_its_expiry_and_verifies_nothing() {
        let doc = root(&[7], 1);
        let mut signed = Signed::new(&doc).unwrap();
        signed.sign(&SecretKey::from_seed([1; 32]));
        assert!(matches!(
            verify_root(&signed, 200),
            Err(VerifyError::Expired { .. })
        ));
        let kept = verify_kept_root(&signed).unwrap();
        assert!(kept.check_fresh(200).is_err());
        // and it is still checked: signed by a key that is not its root key, it fails
        let mut forged = Signed::new(&doc).unwrap();
        forged.sign(&SecretKey::from_seed([9; 32]));
        assert!(verify_kept_root(&forged).is_err());
    }
}
