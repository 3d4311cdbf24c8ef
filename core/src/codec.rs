//! The one place where shoal turns values into bytes and back.
//!
//! Every document and wire message is encoded with bincode 2.0.1 in one fixed
//! configuration: little-endian, fixed-width integers (`u32` is 4 bytes, `u64` 8 bytes),
//! sequence and string lengths as `u64`, enum variants as a `u32` tag. `docs/formats.md`
//! spells the layout out field by field.
//!
//! Every decode takes a cap. The input's length is compared with the cap before a
//! single byte is read, and the same cap bounds every length prefix inside the input,
//! so a claimed length of 2^60 fails as [`DecodeError::LimitExceeded`] instead of
//! allocating. A decode must also consume its whole input: trailing bytes are an error,
//! so one value has exactly one encoding.

use serde::{Serialize, de::DeserializeOwned};

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the cap for this kind of value; nothing was decoded.
    #[error("{len} bytes is over the cap of {cap} bytes")]
    TooLarge { len: usize, cap: usize },
    /// A length inside the input claims more than the cap allows; refused before
    /// anything of that length was allocated.
    #[error("a length inside the data claims more bytes than the data can hold (cap {cap} bytes)")]
    LimitExceeded { cap: usize },
    /// The input ended before the value did.
    #[error("the data ends early (truncated?)")]
    Truncated,
    /// The value ended before the input did.
    #[error("{extra} unexpected bytes after the end of the value")]
    TrailingBytes { extra: usize },
    /// The bytes are not a value of this type (a bad tag, bad UTF-8, a bad bool, ...).
    #[error("malformed: {0}")]
    Malformed(String),
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoding would be larger than the cap that its decoder enforces, so no peer
    /// could read it back.
    #[error("the encoding is {len} bytes, over the cap of {cap} bytes")]
    TooLarge { len: usize, cap: usize },
    #[error("cannot encode: {0}")]
    Other(String),
}

type Config<const CAP: usize> = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<CAP>,
>;

fn config<const CAP: usize>() -> Config<CAP> {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<CAP>()
}

/// Encodes `value`; fails if the encoding is longer than `CAP`, the cap its decoder
/// enforces.
pub fn encode<T: Serialize, const CAP: usize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let bytes = bincode::serde::encode_to_vec(value, config::<CAP>())
        .map_err(|e| EncodeError::Other(e.to_string()))?;
    if bytes.len() > CAP {
        return Err(EncodeError::TooLarge {
            len: bytes.len(),
            cap: CAP,
        });
    }
    Ok(bytes)
}

/// Decodes one whole value of type `T` from `bytes`, which must not exceed `CAP`.
///
/// bincode's limit is a const generic, so the decode runs under the smallest rung of a
/// ladder (1 KiB, 4 KiB, ... 256 MiB, each 4 times the last) that holds the input: a
/// length prefix inside the input can then claim at most about 4 times the input's own
/// size, never up to the cap, before anything is allocated for it.
pub fn decode<T: DeserializeOwned, const CAP: usize>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > CAP {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            cap: CAP,
        });
    }
    const K: usize = 1024;
    match bytes.len() {
        n if n <= K => decode_under::<T, K>(bytes, CAP),
        n if n <= 4 * K => decode_under::<T, { 4 * K }>(bytes, CAP),
        n if n <= 16 * K => decode_under::<T, { 16 * K }>(bytes, CAP),
        n if n <= 64 * K => decode_under::<T, { 64 * K }>(bytes, CAP),
        n if n <= 256 * K => decode_under::<T, { 256 * K }>(bytes, CAP),
        n if n <= K * K => decode_under::<T, { K * K }>(bytes, CAP),
        n if n <= 4 * K * K => decode_under::<T, { 4 * K * K }>(bytes, CAP),
        n if n <= 16 * K * K => decode_under::<T, { 16 * K * K }>(bytes, CAP),
        n if n <= 64 * K * K => decode_under::<T, { 64 * K * K }>(bytes, CAP),
        _ => decode_under::<T, { 256 * K * K }>(bytes, CAP),
    }
}

fn decode_under<T: DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
    cap: usize,
) -> Result<T, DecodeError> {
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(bytes, config::<LIMIT>())
        .map_err(|e| map_decode_error(e, cap))?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

fn map_decode_error(e: bincode::error::DecodeError, cap: usize) -> DecodeError {
    use bincode::error::DecodeError as B;
    match e {
        B::UnexpectedEnd { .. } => DecodeError::Truncated,
        B::LimitExceeded | B::OutsideUsizeRange(_) => DecodeError::LimitExceeded { cap },
        other => DecodeError::Malformed(other.to_string()),
    }
}

/// `#[serde(with = "codec::bytes")]` for `Vec<u8>` fields: a `u64` length, then the raw
/// bytes, read in one copy (serde's default would visit byte by byte).
pub mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
        }
        // bincode's byte_buf path checks the claimed length against its limit before
        // it allocates.
        d.deserialize_byte_buf(V)
    }
}

/// `#[serde(with = "codec::fixed")]` for `[u8; N]` fields: exactly N raw bytes, no
/// length prefix (serde itself stops at 32-byte arrays).
pub mod fixed {
    use serde::{Deserializer, Serializer, ser::SerializeTuple};

    pub fn serialize<S: Serializer, const N: usize>(
        value: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(N)?;
        for b in value {
            t.serialize_element(b)?;
        }
        t.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        struct V<const N: usize>;
        impl<'de, const N: usize> serde::de::Visitor<'de> for V<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{N} bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<[u8; N], A::Error> {
                let mut out = [0u8; N];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = a
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        d.deserialize_tuple(N, V::<N>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Blob {
        #[serde(with = "bytes")]
        data: Vec<u8>,
        #[serde(with = "fixed")]
        sig: [u8; 64],
    }

    #[test]
    fn round_trip_uses_raw_bytes() {
        let b = Blob {
            data: vec![1, 2, 3],
            sig: [7; 64],
        };
        let enc = encode::<_, 1024>(&b).unwrap();
        // u64 length (8) + 3 bytes + 64 raw bytes
        assert_eq!(enc.len(), 8 + 3 + 64);
        assert_eq!(decode::<Blob, 1024>(&enc).unwrap(), b);
    }

    // guards: an input over the cap is refused before decoding starts
    #[test]
    fn input_over_cap_is_refused_unread() {
        let err = decode::<Blob, 1000>(&[0u8; 2000]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLarge {
                len: 2000,
                cap: 1000
            }
        );
    }

    // guards: a few bytes claiming a length just under the cap must not allocate it
    #[test]
    fn claims_are_bounded_by_the_input_not_only_the_cap() {
        const CAP: usize = 64 * 1024 * 1024;
        let mut enc = ((CAP - 1000) as u64).to_le_bytes().to_vec();
        enc.extend_from_slice(&[0u8; 64]);
        assert_eq!(
            decode::<Blob, CAP>(&enc).unwrap_err(),
            DecodeError::LimitExceeded { cap: CAP }
        );
    }

    // guards: a length prefix of 2^60 must fail, not allocate 2^60 bytes
    #[test]
    fn huge_claimed_length_fails_without_allocating() {
        let mut enc = (1u64 << 60).to_le_bytes().to_vec();
        enc.extend_from_slice(&[0u8; 64]);
        let err = decode::<Blob, 1024>(&enc).unwrap_err();
        assert_eq!(err, DecodeError::LimitExceeded { cap: 1024 });
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let b = Blob {
            data: vec![],
            sig: [0; 64],
        };
        let mut enc = encode::<_, 1024>(&b).unwrap();
        enc.push(0);
        assert_eq!(
            decode::<Blob, 1024>(&enc).unwrap_err(),
            DecodeError::TrailingBytes { extra: 1 }
        );
    }

    #[test]
    fn encode_over_cap_is_refused() {
        let b = Blob {
            data: vec![0; 100],
            sig: [0; 64],
        };
        assert!(matches!(
            encode::<_, 50>(&b),
            Err(EncodeError::TooLarge { len: 172, cap: 50 })
        ));
    }
}
