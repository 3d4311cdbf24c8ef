//! # The WAN protocol, `shoal-wan/1`: device ↔ seeder
//!
//! ## Participants and goals
//! A device (node) talks to its seeder over QUIC. The device opens every connection (it
//! needs no open port toward the internet) and authenticates with a TLS client
//! certificate made from its device key; the seeder authenticates with its own
//! certificate, which the device pins. The seeder knows the device by the key id of the
//! certificate's public key: no request carries a device id, so no device can ask on
//! another's behalf.
//!
//! Goals: enrolment, the signed documents a device needs (admission, head, release),
//! chunks, and status reports. Non-goals: anything a device could use to install bytes
//! that the release keys did not sign. Every document the seeder sends is signed and
//! verified by the device against its root; every chunk is checked against the signed
//! manifest. The seeder is trusted for availability only.
//!
//! ## Message flow
//! One request per bidirectional QUIC stream. The device writes one frame holding a
//! [`Request`] and finishes its side; the seeder answers with one or more frames, each a
//! [`Response`], and finishes its side:
//!
//! | request | response frames |
//! |---|---|
//! | `Enrol` | `Enrolled` |
//! | `GetAdmission` | `Admission` or `Refused` |
//! | `GetHead` | `Head`, `NoDeployment` or `Refused` |
//! | `GetRelease` | `Release`, `NotFound` or `Refused` |
//! | `GetChunks` (at most [`MAX_CHUNKS_PER_REQUEST`]) | per hash, in order, `Chunk` or `NotFound`; then `End` |
//! | `ReportStatus` | `Ack` or `Refused` |
//! | `GetHeadFor { device }` (the LAN relay) | like `GetHead`, for that device of the asker's site |
//! | `GetRoots { after }` | `Roots` (oldest first, at most [`MAX_ROOTS_PER_ANSWER`]) or `Refused` |
//!
//! `GetRoots` is how a root rotation reaches devices: the seeder keeps every root it
//! has served, and answers with the signed roots of versions `after + 1, after + 2, …`
//! (none when the device is current). The device walks them one version at a time
//! (`crate::root::verify_root_chain`: each step signed by the old and the new root
//! threshold, the newest unexpired), trusts the newest only if the whole walk passes,
//! and asks again while an answer was full. The seeder is not trusted here either: it
//! can withhold a rotation (a freeze, bounded by expiry), not forge one.
//!
//! A device that is not accepted gets `Refused` to everything but `Enrol`. A malformed
//! request gets `Error` and the stream is closed. Several streams may be open at once
//! (the seeder caps how many); requests on different streams are independent, which is
//! how a device keeps several chunk requests in flight.
//!
//! ## Framing and caps
//! Frames are [`crate::frame`] frames: a `u32` little-endian length, then the encoded
//! message (the [`crate::codec`] encoding). A request frame is at most
//! [`REQUEST_CAP`] bytes; a response frame at most [`RESPONSE_CAP`] (a release manifest
//! at its cap, plus room). A length over the cap ends the stream before any buffer is
//! reserved for it. The seeder also caps the bytes of every chunk it is sent and the
//! device checks each `Chunk` against the length and hash its manifest names, so an
//! oversized chunk is cut off, not stored.
//!
//! ## Versioning
//! The version is in the ALPN (`shoal-wan/1`). Variant tags are the declaration order
//! (bincode writes a `u32`): new variants go at the end, a retired variant stays in
//! place renamed `Removed…`, and `tests::tags_are_stable` pins every tag. A change to
//! an existing message is a new protocol version.
//!
//! ## Example
//! `GetChunks { hashes: [h] }` is the frame `2c 00 00 00` (44 bytes), then `04 00 00 00`
//! (tag 4), `01 00 00 00 00 00 00 00` (one hash), then the 32 bytes of `h`.

use crate::codec::{self, DecodeError, EncodeError};
use crate::hash::Hash;
use crate::release::{MAX_CHUNK_LEN, RELEASE_BODY_CAP};
use crate::signed::ENVELOPE_OVERHEAD;
use serde::{Deserialize, Serialize};

/// The ALPN protocol name.
pub const ALPN: &[u8] = b"shoal-wan/1";
/// The largest request frame.
pub const REQUEST_CAP: usize = 64 * 1024;
/// The largest response frame: a release at its cap, with room for the message around it.
pub const RESPONSE_CAP: usize = RELEASE_BODY_CAP + ENVELOPE_OVERHEAD + 4096;
/// At most this many chunks in one `GetChunks`.
pub const MAX_CHUNKS_PER_REQUEST: usize = 256;
/// The longest free text in a request (device type, site, inventory values, reasons).
pub const MAX_TEXT: usize = 1024;
/// At most this many inventory entries.
pub const MAX_INVENTORY: usize = 64;
/// At most this many roots in one `Roots` answer: the steps a device walks at once.
pub const MAX_ROOTS_PER_ANSWER: usize = crate::root::MAX_ROTATION_STEPS;
/// The largest encoded `Signed<Root>` in a `Roots` answer.
pub const ROOT_ENVELOPE_CAP: usize = crate::root::ROOT_BODY_CAP + ENVELOPE_OVERHEAD;

/// What a device sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Tag 0. Ask to join: the device key comes from the TLS certificate.
    Enrol {
        device_type: String,
        site: String,
        inventory: Vec<(String, String)>,
    },
    /// Tag 1. The device's signed admission.
    GetAdmission,
    /// Tag 2. The signed head of the device's current deployment.
    GetHead,
    /// Tag 3. A signed release by id.
    GetRelease { id: Hash },
    /// Tag 4. Chunks by hash, answered in order.
    GetChunks { hashes: Vec<Hash> },
    /// Tag 5. The device's state and progress.
    ReportStatus(StatusReport),
    /// Tag 6. The signed head of another device of the same site, for a peer that
    /// cannot reach the seeder (the LAN relay). Answered like `GetHead`; `Refused` unless
    /// both devices are accepted and of one site.
    GetHeadFor { device: crate::keys::DeviceId },
    /// Tag 7. The signed roots after version `after`, oldest first.
    GetRoots { after: u64 },
}

/// Where a device stands with the seeder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Enrolment {
    /// Tag 0. Known, waiting for an operator.
    Pending,
    /// Tag 1. Admitted.
    Accepted,
    /// Tag 2. Refused by an operator, or decommissioned.
    Rejected,
}

/// A device's state, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceState {
    /// Tag 0.
    Idle,
    /// Tag 1.
    Downloading,
    /// Tag 2.
    Verifying,
    /// Tag 3.
    Installing,
    /// Tag 4.
    Rebooting,
    /// Tag 5.
    Success,
    /// Tag 6.
    Failure,
    /// Tag 7.
    RolledBack,
}

/// Bytes by where they came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BytesBySource {
    pub local: u64,
    pub wan: u64,
    pub lan: u64,
}

/// A status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub state: DeviceState,
    /// The release being worked on or installed, if any.
    pub release: Option<Hash>,
    /// Bytes of that release in place, and its total.
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub bytes: BytesBySource,
    /// Why, for failures and rollbacks.
    pub error: Option<String>,
    /// Unix seconds at the device when the head it acts on expires (for staleness).
    pub head_expires_at: Option<u64>,
    pub inventory: Vec<(String, String)>,
}

/// What the seeder answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Tag 0. The device's enrolment state.
    Enrolled(Enrolment),
    /// Tag 1. A `Signed<Admission>`, encoded.
    Admission(#[serde(with = "codec::bytes")] Vec<u8>),
    /// Tag 2. A `Signed<Head>`, encoded.
    Head(#[serde(with = "codec::bytes")] Vec<u8>),
    /// Tag 3. The device is in no deployment.
    NoDeployment,
    /// Tag 4. A `Signed<Release>`, encoded.
    Release(#[serde(with = "codec::bytes")] Vec<u8>),
    /// Tag 5. One chunk's bytes.
    Chunk {
        hash: Hash,
        #[serde(with = "codec::bytes")]
        data: Vec<u8>,
    },
    /// Tag 6. The seeder has no such release or chunk.
    NotFound { hash: Hash },
    /// Tag 7. The end of a `GetChunks` answer.
    End,
    /// Tag 8. The report was stored.
    Ack,
    /// Tag 9. The device is not admitted (pending, rejected or unknown).
    Refused { state: Option<Enrolment> },
    /// Tag 10. The request was malformed or could not be served.
    Error { message: String },
    /// Tag 11. `Signed<Root>`s, encoded, one version apart, oldest first (empty: the
    /// device has the newest).
    Roots(Vec<SignedBytes>),
}

/// One encoded signed document in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBytes(#[serde(with = "codec::bytes")] pub Vec<u8>);

impl Request {
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        codec::encode::<Self, REQUEST_CAP>(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        let r: Request = codec::decode::<Self, REQUEST_CAP>(bytes)?;
        r.check()?;
        Ok(r)
    }

    /// The limits the types cannot express.
    fn check(&self) -> Result<(), DecodeError> {
        let text = |s: &str| {
            if s.len() > MAX_TEXT {
                Err(DecodeError::Malformed(format!(
                    "a text field of {} bytes, at most {MAX_TEXT}",
                    s.len()
                )))
            } else {
                Ok(())
            }
        };
        let inventory = |inv: &[(String, String)]| {
            if inv.len() > MAX_INVENTORY {
                return Err(DecodeError::Malformed(format!(
                    "{} inventory entries, at most {MAX_INVENTORY}",
                    inv.len()
                )));
            }
            inv.iter().try_for_each(|(k, v)| text(k).and(text(v)))
        };
        match self {
            Request::Enrol {
                device_type,
                site,
                inventory: inv,
            } => {
                text(device_type)?;
                text(site)?;
                inventory(inv)
            }
            Request::GetChunks { hashes } if hashes.len() > MAX_CHUNKS_PER_REQUEST => {
                Err(DecodeError::Malformed(format!(
                    "{} chunks in one request, at most {MAX_CHUNKS_PER_REQUEST}",
                    hashes.len()
                )))
            }
            Request::ReportStatus(r) => {
                if let Some(e) = &r.error {
                    text(e)?;
                }
                inventory(&r.inventory)
            }
            _ => Ok(()),
        }
    }
}

impl Response {
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        codec::encode::<Self, RESPONSE_CAP>(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Response, DecodeError> {
        let r: Response = codec::decode::<Self, RESPONSE_CAP>(bytes)?;
        match &r {
            Response::Chunk { data, .. } if data.len() > MAX_CHUNK_LEN as usize => {
                Err(DecodeError::Malformed(format!(
                    "a chunk of {} bytes, at most {MAX_CHUNK_LEN}",
                    data.len()
                )))
            }
            Response::Roots(roots) if roots.len() > MAX_ROOTS_PER_ANSWER => {
                Err(DecodeError::Malformed(format!(
                    "{} roots in one answer, at most {MAX_ROOTS_PER_ANSWER}",
                    roots.len()
                )))
            }
            Response::Roots(roots) if roots.iter().any(|r| r.0.len() > ROOT_ENVELOPE_CAP) => Err(
                DecodeError::Malformed(format!("a root over {ROOT_ENVELOPE_CAP} bytes")),
            ),
            _ => Ok(r),
        }
    }
}

/// The bytes that precede a chunk's data in the frame of `Response::Chunk`: the frame
/// length, the tag, the hash and the data length. Sending this and then the data is the
/// same as sending the encoded frame, without copying the data into it.
pub fn chunk_frame_prefix(hash: &Hash, data_len: usize) -> [u8; CHUNK_FRAME_PREFIX] {
    tagged_chunk_frame_prefix(CHUNK_TAG, hash, data_len)
}

/// [`chunk_frame_prefix`] for a protocol whose chunk message has tag `tag` and the same
/// fields (`crate::lan` shares the layout).
pub(crate) fn tagged_chunk_frame_prefix(
    tag: u32,
    hash: &Hash,
    data_len: usize,
) -> [u8; CHUNK_FRAME_PREFIX] {
    let mut p = [0u8; CHUNK_FRAME_PREFIX];
    let body_len = (CHUNK_FRAME_PREFIX - crate::frame::HEADER_LEN + data_len) as u32;
    p[..4].copy_from_slice(&body_len.to_le_bytes());
    p[4..8].copy_from_slice(&tag.to_le_bytes());
    p[8..40].copy_from_slice(&hash.0);
    p[40..48].copy_from_slice(&(data_len as u64).to_le_bytes());
    p
}

/// If `head` (the first bytes of a frame body of `frame_len` bytes) starts a `Chunk`,
/// its hash and data length, checked: the data must be exactly the rest of the frame
/// and at most [`MAX_CHUNK_LEN`]. `None` for any other message.
pub fn chunk_head(head: &[u8], frame_len: usize) -> Result<Option<(Hash, usize)>, DecodeError> {
    tagged_chunk_head(CHUNK_TAG, head, frame_len)
}

/// [`chunk_head`] for a chunk message with tag `tag`.
pub(crate) fn tagged_chunk_head(
    tag: u32,
    head: &[u8],
    frame_len: usize,
) -> Result<Option<(Hash, usize)>, DecodeError> {
    const HEAD: usize = CHUNK_FRAME_PREFIX - crate::frame::HEADER_LEN;
    if head.len() < HEAD || head[..4] != tag.to_le_bytes() {
        return Ok(None);
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&head[4..36]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[36..44]);
    let len = u64::from_le_bytes(len);
    let rest = (frame_len - HEAD) as u64;
    if len != rest {
        return Err(if len > rest {
            DecodeError::Truncated
        } else {
            DecodeError::TrailingBytes {
                extra: (rest - len) as usize,
            }
        });
    }
    if len > u64::from(MAX_CHUNK_LEN) {
        return Err(DecodeError::Malformed(format!(
            "a chunk of {len} bytes, at most {MAX_CHUNK_LEN}"
        )));
    }
    Ok(Some((Hash(hash), len as usize)))
}

/// Length of [`chunk_frame_prefix`].
pub const CHUNK_FRAME_PREFIX: usize = 48;
/// The tag of `Response::Chunk`.
const CHUNK_TAG: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(bytes: &[u8]) -> u32 {
        u32::from_le_bytes(bytes[..4].try_into().unwrap())
    }

    fn report() -> StatusReport {
        StatusReport {
            state: DeviceState::Downloading,
            release: None,
            done_bytes: 0,
            total_bytes: 0,
            bytes: BytesBySource::default(),
            error: None,
            head_expires_at: None,
            inventory: vec![],
        }
    }

    // guards: a reordered or inserted variant would silently change the wire format
    #[test]
    fn tags_are_stable() {
        let h = Hash([0; 32]);
        let requests = [
            (
                Request::Enrol {
                    device_type: "a".into(),
                    site: "b".into(),
                    inventory: vec![],
                },
                0,
            ),
            (Request::GetAdmission, 1),
            (Request::GetHead, 2),
            (Request::GetRelease { id: h }, 3),
            (Request::GetChunks { hashes: vec![h] }, 4),
            (Request::ReportStatus(report()), 5),
            (
                Request::GetHeadFor {
                    device: crate::keys::KeyId([0; 32]),
                },
                6,
            ),
            (Request::GetRoots { after: 1 }, 7),
        ];
        for (r, t) in requests {
            assert_eq!(tag(&r.encode().unwrap()), t, "{r:?}");
        }
        let responses = [
            (Response::Enrolled(Enrolment::Accepted), 0),
            (Response::Admission(vec![]), 1),
            (Response::Head(vec![]), 2),
            (Response::NoDeployment, 3),
            (Response::Release(vec![]), 4),
            (
                Response::Chunk {
                    hash: h,
                    data: vec![],
                },
                5,
            ),
            (Response::NotFound { hash: h }, 6),
            (Response::End, 7),
            (Response::Ack, 8),
            (Response::Refused { state: None }, 9),
            (
                Response::Error {
                    message: String::new(),
                },
                10,
            ),
            (Response::Roots(vec![]), 11),
        ];
        for (r, t) in responses {
            assert_eq!(tag(&r.encode().unwrap()), t, "{r:?}");
        }
    }

    // guards: a seeder (or a man in the middle) answering with more roots than a device
    // walks at once, or a root over the root cap
    #[test]
    fn a_roots_answer_over_its_caps_is_refused() {
        let one = SignedBytes(vec![1, 2, 3]);
        let ok = Response::Roots(vec![one.clone(); MAX_ROOTS_PER_ANSWER]);
        assert_eq!(Response::decode(&ok.encode().unwrap()).unwrap(), ok);
        let many = Response::Roots(vec![one; MAX_ROOTS_PER_ANSWER + 1]);
        assert!(Response::decode(&many.encode().unwrap()).is_err());
        let big = Response::Roots(vec![SignedBytes(vec![0; ROOT_ENVELOPE_CAP + 1])]);
        assert!(Response::decode(&big.encode().unwrap()).is_err());
    }

    #[test]
    fn the_module_doc_example_is_the_encoding() {
        let h = Hash([7; 32]);
        let body = Request::GetChunks { hashes: vec![h] }.encode().unwrap();
        let frame = crate::frame::encode_frame(&body, REQUEST_CAP).unwrap();
        let mut want = vec![0x2c, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&[7; 32]);
        assert_eq!(frame, want);
    }

    #[test]
    fn the_chunk_frame_prefix_matches_the_encoding() {
        let hash = Hash([9; 32]);
        let data = vec![7u8; 1000];
        let body = Response::Chunk {
            hash,
            data: data.clone(),
        }
        .encode()
        .unwrap();
        let frame = crate::frame::encode_frame(&body, RESPONSE_CAP).unwrap();
        let mut ours = chunk_frame_prefix(&hash, data.len()).to_vec();
        ours.extend_from_slice(&data);
        assert_eq!(ours, frame);
    }

    // guards: the device's chunk fast path (`chunk_head`) must accept exactly the
    // chunk frames the codec accepts, with the same hash and length
    #[test]
    fn chunk_head_agrees_with_the_codec() {
        const HEAD: usize = CHUNK_FRAME_PREFIX - crate::frame::HEADER_LEN;
        let hash = Hash([3; 32]);
        let body = Response::Chunk {
            hash,
            data: vec![1, 2, 3],
        }
        .encode()
        .unwrap();
        assert_eq!(
            chunk_head(&body[..HEAD], body.len()).unwrap(),
            Some((hash, 3))
        );
        assert!(Response::decode(&body).is_ok());
        // one byte more or less than the chunk's own length field: both refuse
        let mut long = body.clone();
        long.push(0);
        assert!(chunk_head(&long[..HEAD], long.len()).is_err());
        assert!(Response::decode(&long).is_err());
        let short = &body[..body.len() - 1];
        assert!(chunk_head(&short[..HEAD], short.len()).is_err());
        assert!(Response::decode(short).is_err());
        // any other message is not a chunk
        let other = Response::End.encode().unwrap();
        assert_eq!(chunk_head(&other, other.len()).unwrap(), None);
    }

    #[test]
    fn oversized_fields_are_refused() {
        let many = Request::GetChunks {
            hashes: vec![Hash([0; 32]); MAX_CHUNKS_PER_REQUEST + 1],
        };
        assert!(Request::decode(&many.encode().unwrap()).is_err());
        let long = Request::Enrol {
            device_type: "x".repeat(MAX_TEXT + 1),
            site: "s".into(),
            inventory: vec![],
        };
        assert!(Request::decode(&long.encode().unwrap()).is_err());
        let big = Response::Chunk {
            hash: Hash([0; 32]),
            data: vec![0; MAX_CHUNK_LEN as usize + 1],
        };
        assert!(Response::decode(&big.encode().unwrap()).is_err());
    }
}
