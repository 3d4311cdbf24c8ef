//! Serde helpers: hashes and keys are hex strings in every record, so the JSON the
//! management API returns reads the same as the command line and the logs. (The core
//! types serialize as byte arrays, which suits bincode, not people.)

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};
use shoal_core::hash::{from_hex_array, to_hex};
use shoal_core::{Hash, KeyId, PublicKey};

/// A 32-byte value written as 64 hex digits.
pub(crate) trait Hex32: Sized {
    fn bytes(&self) -> &[u8; 32];
    fn from_bytes(bytes: [u8; 32]) -> Self;
}

impl Hex32 for Hash {
    fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
    fn from_bytes(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }
}

impl Hex32 for KeyId {
    fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
    fn from_bytes(bytes: [u8; 32]) -> Self {
        KeyId(bytes)
    }
}

impl Hex32 for PublicKey {
    fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
    fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }
}

pub(crate) fn serialize<S: Serializer, T: Hex32>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_hex(value.bytes()))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Hex32>(d: D) -> Result<T, D::Error> {
    let text = String::deserialize(d)?;
    from_hex_array(&text)
        .map(T::from_bytes)
        .map_err(D::Error::custom)
}

/// The same for an optional value (`null` when absent).
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: Hex32>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_some(&to_hex(v.bytes())),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Hex32>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => from_hex_array(&text)
                .map(|b| Some(T::from_bytes(b)))
                .map_err(D::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use shoal_core::Hash;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        #[serde(with = "super")]
        h: Hash,
        #[serde(with = "super::option")]
        o: Option<Hash>,
    }

    #[test]
    fn hashes_are_hex_in_json_and_round_trip() {
        let p = Probe {
            h: Hash([0xab; 32]),
            o: None,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            format!("{{\"h\":\"{}\",\"o\":null}}", "ab".repeat(32))
        );
        assert_eq!(serde_json::from_str::<Probe>(&json).unwrap(), p);
        let q = Probe {
            h: Hash([1; 32]),
            o: Some(Hash([2; 32])),
        };
        let back: Probe = serde_json::from_str(&serde_json::to_string(&q).unwrap()).unwrap();
        assert_eq!(back, q);
    }

    #[test]
    fn short_hex_is_refused() {
        assert!(serde_json::from_str::<Probe>(r#"{"h":"abcd","o":null}"#).is_err());
    }
}
