//! BLAKE3 digests and their text form.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A BLAKE3 digest: the id of a chunk, a file, a release body or a key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// BLAKE3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// The first 16 hex digits, for logs.
    pub fn short(&self) -> String {
        to_hex(&self.0[..8])
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Hash, HexError> {
        Ok(Hash(from_hex_array(text)?))
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Hash {
        Hash(*h.as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short form: enough to tell hashes apart in logs and test failures.
        write!(f, "Hash({}..)", &self.to_hex()[..12])
    }
}

/// Why a hex string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    #[error("expected {expected} hex digits, found {found}")]
    WrongLength { expected: usize, found: usize },
    #[error("'{found}' is not a hex digit")]
    NotHex { found: char },
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Exactly `N` bytes from `2 * N` hex digits (either case).
pub fn from_hex_array<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    if text.len() != 2 * N {
        return Err(HexError::WrongLength {
            expected: 2 * N,
            found: text.chars().count(),
        });
    }
    let digit = |c: u8| -> Result<u8, HexError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(HexError::NotHex { found: c as char }),
        }
    };
    let mut out = [0u8; N];
    let bytes = text.as_bytes();
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = (digit(bytes[2 * i])? << 4) | digit(bytes[2 * i + 1])?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = Hash::of(b"shoal");
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert_eq!(h.to_hex(), blake3::hash(b"shoal").to_hex().as_str());
    }

    #[test]
    fn bad_hex_is_refused() {
        assert_eq!(
            Hash::from_hex("abc"),
            Err(HexError::WrongLength {
                expected: 64,
                found: 3
            })
        );
        let bad = "g".repeat(64);
        assert_eq!(Hash::from_hex(&bad), Err(HexError::NotHex { found: 'g' }));
        // a multi-byte character must not be split or panic
        let mut odd = "é".to_string();
        odd.push_str(&"0".repeat(62));
        assert!(Hash::from_hex(&odd).is_err());
    }
}
