//! Ed25519 keys, key ids, and the text files they live in.
//!
//! A key id is BLAKE3 of the 32-byte public key; a device id is the key id of the
//! device's key. Key files are one line of text, so an operator can read, diff and copy
//! them:
//!
//! ```text
//! shoal-secret-key-v1 <64 hex digits: the 32-byte ed25519 seed>
//! shoal-public-key-v1 <64 hex digits: the 32-byte ed25519 public key>
//! ```
//!
//! Core only turns keys into text and back; the binaries write secret key files with
//! mode 0600. Core never generates randomness: a new key comes from a seed the caller
//! drew from the operating system.

use crate::hash::{HexError, from_hex_array, to_hex};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The first word of a secret key file.
pub const SECRET_KEY_HEADER: &str = "shoal-secret-key-v1";
/// The first word of a public key file.
pub const PUBLIC_KEY_HEADER: &str = "shoal-public-key-v1";
/// Key files are one short line; anything longer is not a key file.
pub const KEY_FILE_CAP: usize = 1024;

/// BLAKE3 of a public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyId(pub [u8; 32]);

/// A device is named by the key id of its device key.
pub type DeviceId = KeyId;

impl KeyId {
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn from_hex(text: &str) -> Result<KeyId, HexError> {
        Ok(KeyId(from_hex_array(text)?))
    }

    /// The first 16 hex digits, for tables and logs.
    pub fn short(&self) -> String {
        to_hex(&self.0[..8])
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.short())
    }
}

/// An ed25519 public key as it appears in documents: 32 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn key_id(&self) -> KeyId {
        KeyId(*blake3::hash(&self.0).as_bytes())
    }

    /// The key as a curve point; fails for bytes that are not a point, and for weak
    /// (small-order) keys, which could verify signatures their owner never made.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::NotAPoint)?;
        if key.is_weak() {
            return Err(KeyError::Weak);
        }
        Ok(key)
    }

    /// Checks `sig` over `message` with `verify_strict` (no malleable signatures, no
    /// small-order keys).
    pub fn verify(&self, message: &[u8], sig: &[u8; 64]) -> bool {
        let Ok(key) = self.verifying_key() else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        key.verify_strict(message, &sig).is_ok()
    }

    /// The public key file's text.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_KEY_HEADER} {}\n", to_hex(&self.0))
    }

    /// Reads a public key file's text.
    pub fn from_text(text: &str) -> Result<PublicKey, KeyError> {
        let key = PublicKey(parse_key_line(text, PUBLIC_KEY_HEADER)?);
        key.verifying_key()?;
        Ok(key)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(id {})", self.key_id().short())
    }
}

/// An ed25519 signing key. It never leaves the process except through
/// [`SecretKey::to_text`], which the binaries write with mode 0600.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// The key for a 32-byte seed. Draw the seed from the operating system's random
    /// source; tests use fixed seeds.
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn key_id(&self) -> KeyId {
        self.public().key_id()
    }

    /// An ed25519 signature over `message` (deterministic).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The 32-byte seed, for the libraries (TLS, libp2p) that need the key itself.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The secret key file's text.
    pub fn to_text(&self) -> String {
        format!("{SECRET_KEY_HEADER} {}\n", to_hex(&self.0.to_bytes()))
    }

    /// Reads a secret key file's text.
    pub fn from_text(text: &str) -> Result<SecretKey, KeyError> {
        Ok(SecretKey::from_seed(parse_key_line(
            text,
            SECRET_KEY_HEADER,
        )?))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(id {})", self.key_id().short())
    }
}

/// Why a key or key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("{len} bytes is too long for a key file (at most {KEY_FILE_CAP})")]
    TooLarge { len: usize },
    #[error("expected a line starting with '{expected}', found '{found}'")]
    WrongHeader {
        expected: &'static str,
        found: String,
    },
    #[error("expected '<header> <64 hex digits>' on one line")]
    BadLayout,
    #[error("bad key digits")]
    BadHex(#[from] HexError),
    #[error("the bytes are not an ed25519 public key")]
    NotAPoint,
    #[error("the key is a weak (small-order) ed25519 key")]
    Weak,
}

fn parse_key_line(text: &str, header: &'static str) -> Result<[u8; 32], KeyError> {
    if text.len() > KEY_FILE_CAP {
        return Err(KeyError::TooLarge { len: text.len() });
    }
    let line = text.trim_end_matches(['\n', '\r']);
    if line.contains('\n') {
        return Err(KeyError::BadLayout);
    }
    let mut words = line.split(' ');
    let first = words.next().unwrap_or_default();
    if first != header {
        let other = if header == SECRET_KEY_HEADER {
            PUBLIC_KEY_HEADER
        } else {
            SECRET_KEY_HEADER
        };
        let found = if first == other {
            first.to_string()
        } else {
            first.chars().take(24).collect()
        };
        return Err(KeyError::WrongHeader {
            expected: header,
            found,
        });
    }
    let (Some(digits), None) = (words.next(), words.next()) else {
        return Err(KeyError::BadLayout);
    };
    Ok(from_hex_array(digits)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip() {
        let sk = SecretKey::from_seed([7; 32]);
        let back = SecretKey::from_text(&sk.to_text()).unwrap();
        assert_eq!(back.public(), sk.public());
        let pk = PublicKey::from_text(&sk.public().to_text()).unwrap();
        assert_eq!(pk, sk.public());
        assert_eq!(pk.key_id().0, *blake3::hash(&pk.0).as_bytes());
    }

    #[test]
    fn a_public_key_file_is_not_a_secret_key() {
        let sk = SecretKey::from_seed([7; 32]);
        let err = SecretKey::from_text(&sk.public().to_text()).unwrap_err();
        assert!(matches!(err, KeyError::WrongHeader { .. }), "{err}");
    }

    #[test]
    fn signatures_verify_only_for_their_message() {
        let sk = SecretKey::from_seed([1; 32]);
        let sig = sk.sign(b"hello");
        assert!(sk.public().verify(b"hello", &sig));
        assert!(!sk.public().verify(b"hellp", &sig));
        assert!(
            !SecretKey::from_seed([2; 32])
                .public()
                .verify(b"hello", &sig)
        );
    }

    // guards: a small-order public key would accept forged signatures
    #[test]
    fn weak_public_key_is_refused() {
        // the identity point (y = 1) has small order
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey(identity).verifying_key().unwrap_err(),
            KeyError::Weak
        );
        let text = format!("{PUBLIC_KEY_HEADER} {}\n", to_hex(&identity));
        assert_eq!(PublicKey::from_text(&text).unwrap_err(), KeyError::Weak);
    }

    #[test]
    fn garbage_key_files_are_refused() {
        for text in [
            "",
            "shoal-secret-key-v1",
            "shoal-secret-key-v1 00",
            "shoal-secret-key-v1 zz00000000000000000000000000000000000000000000000000000000000000",
            "shoal-secret-key-v1 0000000000000000000000000000000000000000000000000000000000000000 extra",
        ] {
            assert!(SecretKey::from_text(text).is_err(), "{text:?}");
        }
        assert!(matches!(
            SecretKey::from_text(&"x".repeat(5000)),
            Err(KeyError::TooLarge { .. })
        ));
    }
}
