//! The `Signed<T>` envelope: a document's encoded body and the signatures over it.
//!
//! Each signature covers the document's domain tag followed by the body bytes
//! (`b"shoal/release/v1" || body`), so a signature made for one kind of document never
//! verifies as another. No tag is a prefix of another. Signatures are checked over the
//! raw body bytes *before* the body is decoded: unsigned bytes never reach the parser.
//!
//! Counting rule: a role's threshold counts distinct public keys of that role whose
//! signature verifies with `verify_strict`. A second signature by the same key, a key
//! listed twice, a key of another role and an unknown key all add nothing.

use crate::codec::{self, DecodeError, EncodeError};
use crate::hash::Hash;
use crate::keys::{KeyId, PublicKey, SecretKey};
use crate::root::{Role, RoleKeys, Root};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

/// At most this many signatures in one envelope; more is malformed (each one costs a
/// signature check).
pub const MAX_SIGNATURES: usize = 32;
/// What an envelope adds to its body: two `u64` lengths and the signatures.
pub const ENVELOPE_OVERHEAD: usize = 16 + MAX_SIGNATURES * (32 + 64);

/// The four kinds of signed document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    Root,
    Release,
    Head,
    Admission,
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DocKind::Root => "root",
            DocKind::Release => "release",
            DocKind::Head => "head",
            DocKind::Admission => "admission",
        })
    }
}

/// A document type that can be signed: its kind, domain tag and size caps.
pub trait Document: Serialize + DeserializeOwned {
    const KIND: DocKind;
    /// Prefixed to the body before signing.
    const DOMAIN: &'static [u8];
    /// Decodes a body, refusing one over this document's cap.
    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError>;
    /// Encodes a body, refusing one over this document's cap.
    fn encode_body(&self) -> Result<Vec<u8>, EncodeError>;
    /// Decodes a whole envelope, refusing one over the body cap plus the envelope's.
    fn decode_envelope(bytes: &[u8]) -> Result<Signed<Self>, DecodeError>;
    /// Encodes a whole envelope, refusing one its decoder would refuse.
    fn encode_envelope(signed: &Signed<Self>) -> Result<Vec<u8>, EncodeError>;
}

/// Implements [`Document`] with the caps given as constants (bincode's limit is a
/// const generic, so each document names its own).
macro_rules! document {
    ($ty:ty, $kind:expr, $domain:expr, $body_cap:expr) => {
        impl $crate::signed::Document for $ty {
            const KIND: $crate::signed::DocKind = $kind;
            const DOMAIN: &'static [u8] = $domain;
            fn decode_body(bytes: &[u8]) -> Result<Self, $crate::codec::DecodeError> {
                $crate::codec::decode::<Self, { $body_cap }>(bytes)
            }
            fn encode_body(&self) -> Result<Vec<u8>, $crate::codec::EncodeError> {
                $crate::codec::encode::<Self, { $body_cap }>(self)
            }
            fn decode_envelope(
                bytes: &[u8],
            ) -> Result<$crate::signed::Signed<Self>, $crate::codec::DecodeError> {
                $crate::codec::decode::<
                    $crate::signed::Signed<Self>,
                    { $body_cap + $crate::signed::ENVELOPE_OVERHEAD },
                >(bytes)
            }
            fn encode_envelope(
                signed: &$crate::signed::Signed<Self>,
            ) -> Result<Vec<u8>, $crate::codec::EncodeError> {
                $crate::codec::encode::<
                    $crate::signed::Signed<Self>,
                    { $body_cap + $crate::signed::ENVELOPE_OVERHEAD },
                >(signed)
            }
        }
    };
}
pub(crate) use document;

/// One signature: who signed, and the 64 signature bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub key_id: KeyId,
    #[serde(with = "codec::fixed")]
    pub sig: [u8; 64],
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(by {})", self.key_id.short())
    }
}

/// A document's body bytes with the signatures over them. `T` says what the body
/// decodes to; it is not decoded until the signatures have been counted.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Signed<T> {
    #[serde(with = "codec::bytes")]
    pub body: Vec<u8>,
    pub signatures: Vec<Signature>,
    #[serde(skip)]
    _kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Signed {
            body: self.body.clone(),
            signatures: self.signatures.clone(),
            _kind: PhantomData,
        }
    }
}

impl<T> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.body == other.body && self.signatures == other.signatures
    }
}

impl<T> Eq for Signed<T> {}

impl<T: Document> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("kind", &T::KIND)
            .field("body_len", &self.body.len())
            .field("signatures", &self.signatures)
            .finish()
    }
}

impl<T: Document> Signed<T> {
    /// An envelope with no signatures yet.
    pub fn new(doc: &T) -> Result<Signed<T>, EncodeError> {
        Ok(Signed::from_parts(doc.encode_body()?, Vec::new()))
    }

    /// An envelope from raw parts, as read off the wire (nothing is checked).
    pub fn from_parts(body: Vec<u8>, signatures: Vec<Signature>) -> Signed<T> {
        Signed {
            body,
            signatures,
            _kind: PhantomData,
        }
    }

    /// The bytes a signature covers: the domain tag, then the body.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(T::DOMAIN.len() + self.body.len());
        m.extend_from_slice(T::DOMAIN);
        m.extend_from_slice(&self.body);
        m
    }

    /// Adds one signature by `key`. A key that has signed already adds a second,
    /// identical signature, which counts once.
    pub fn sign(&mut self, key: &SecretKey) {
        let sig = key.sign(&self.signing_message());
        self.signatures.push(Signature {
            key_id: key.key_id(),
            sig,
        });
    }

    /// Whether `key` has a signature here that verifies.
    pub fn is_signed_by(&self, key: &PublicKey) -> bool {
        let message = self.signing_message();
        let id = key.key_id();
        self.signatures
            .iter()
            .any(|s| s.key_id == id && key.verify(&message, &s.sig))
    }

    /// BLAKE3 of the body: the document's id (a release's id is this hash, so adding a
    /// signature does not change it).
    pub fn body_hash(&self) -> Hash {
        Hash::of(&self.body)
    }

    /// Decodes the body without checking any signature: for inspecting, never for
    /// trusting.
    pub fn decode_unverified(&self) -> Result<T, DecodeError> {
        T::decode_body(&self.body)
    }

    /// The whole envelope's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        T::encode_envelope(self)
    }

    /// Counts the signatures over this envelope for `role` of `root`.
    pub fn tally(&self, root: &Root, role: Role) -> Tally {
        tally(
            &self.signing_message(),
            &self.signatures,
            root.role(role),
            |id| root.role_of(id),
        )
    }
}

/// What the signatures on an envelope amount to for one role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Distinct keys of the role with a signature that verifies: what counts.
    pub valid: usize,
    /// Further signatures by a key already counted, or by a key listed twice.
    pub duplicate: usize,
    /// Signatures by keys that the root does not list at all.
    pub unknown_key: usize,
    /// Signatures by keys that the root lists for another role.
    pub other_role: usize,
    /// Signatures by a key of the role that do not verify (wrong domain, changed body,
    /// forged).
    pub bad_signature: usize,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} valid; ignored: {} duplicate, {} by unknown keys, {} by keys of another role, {} that do not verify",
            self.valid, self.duplicate, self.unknown_key, self.other_role, self.bad_signature
        )
    }
}

/// The counting rule in one place, for envelopes of every kind.
pub(crate) fn tally(
    message: &[u8],
    signatures: &[Signature],
    role: &RoleKeys,
    role_of: impl Fn(&KeyId) -> Option<Role>,
) -> Tally {
    let mut t = Tally::default();
    let mut counted: BTreeSet<KeyId> = BTreeSet::new();
    for s in signatures {
        let Some(key) = role.keys.iter().find(|k| k.key_id() == s.key_id) else {
            if role_of(&s.key_id).is_some() {
                t.other_role += 1;
            } else {
                t.unknown_key += 1;
            }
            continue;
        };
        if counted.contains(&s.key_id) {
            t.duplicate += 1;
        } else if key.verify(message, &s.sig) {
            counted.insert(s.key_id);
        } else {
            t.bad_signature += 1;
        }
    }
    t.valid = counted.len();
    t
}
