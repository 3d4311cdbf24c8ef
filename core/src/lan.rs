//! # The LAN protocol, `/shoal/xfer/1`: node ↔ node on one site
//!
//! ## Participants and goals
//! Devices of one site fetch chunks from each other so that each chunk crosses the
//! site's WAN link about once. Every participant is a device with an ed25519 device key
//! and a signed [`crate::Admission`] for its site. Peers are **untrusted**: a peer can
//! lie about what it holds, send wrong or endless bytes, or stall. What it cannot do is
//! make a device store a byte that the signed manifest does not name: every chunk is
//! checked (length, BLAKE3) before it is written, and every document a peer relays
//! (head, release) is a signed document checked against the device's root, exactly as if
//! the seeder had sent it.
//!
//! Goals: have-maps (which chunks of a release a peer holds), chunk transfer with several
//! requests in flight, and the relay of signed heads and releases for a device that
//! cannot reach the seeder. Non-goals: discovery (mDNS and identify, in the node, find
//! the peers; the static peer list covers networks that block multicast), any trust in
//! peers, and serving anything to a device outside the site.
//!
//! ## Connections and roles
//! QUIC with mutual TLS: each side's certificate is self-signed and carries its device
//! key, so the TLS handshake proves who the peer is (the ALPN is [`ALPN`]). A
//! connection has a **client** (the device that fetches) and a **server** (the device
//! that serves); two devices that fetch from each other hold two connections, one each
//! way. A device that serves nothing (`--no-serve`) accepts no connection: its endpoint
//! refuses each one at once (QUIC `CONNECTION_REFUSED`, before any handshake), so a
//! dialer that knows its address from a peer list stops waiting for it, and tries it
//! again only now and then. It sends no have-map to anyone, so it is no WAN member
//! (`crate::sched`).
//!
//! ## Discovery
//! Peers find each other with libp2p (QUIC, mDNS, identify); the libp2p identity is the
//! device key. On every libp2p connection the dialer sends an [`Intro`] on
//! `/shoal/intro/1` ([`INTRO_PROTOCOL`]) and the listener answers with its own: each
//! carries the sender's admission and the UDP port of its xfer endpoint, or 0 if it
//! serves nothing (`--no-serve`). A node checks the admission against the libp2p
//! peer's key and its site before it dials that port (never port 0), and disconnects a
//! peer whose intro fails. A static peer list (`--peer`) skips discovery and dials xfer
//! addresses directly.
//!
//! ## Admission first
//! The client opens one bidirectional stream, the **control stream**, and writes
//! `Hello` with its encoded `Signed<Admission>`. The server checks it: signed by the
//! site's online keys under its root, unexpired, naming the key of the TLS certificate,
//! for the same site. If that fails, the server answers `Refused` with the reason and
//! closes the connection; it has sent no have-map, no chunk and no document. If it
//! holds, it answers `Hello` with its own admission, which the client checks the same
//! way (and closes on failure). Until both hellos are through, the server serves no
//! other stream: a first message other than `Hello` is answered `Refused` and the
//! connection closed, and a client that sends no `Hello` within 5 s is closed. An
//! admission holds for the connection only until it expires: the server then closes
//! the connection (application code 4, "admission expired"); the client connects
//! again with a fresh one. A server keeps the last reason it refused each peer for,
//! by the key of the peer's certificate.
//!
//! Close codes: 1 not admitted (after a `Refused`), 2 banned, 3 dropped by the
//! client's scheduler, 4 admission expired; 0 for an ordinary close.
//!
//! ## Message flow
//! On the control stream, after the hellos, the client writes `Subscribe { release }`
//! whenever it starts on a release. The server answers with one `HaveMap` (the whole
//! bitfield: `chunks.div_ceil(8)` bytes, least significant bit first, the bits past
//! the last chunk zero; and whether the server can reach the seeder) if it works on
//! that release (downloading or installed), else `Unknown`, and then pushes a
//! `Have { index }` for each chunk it completes, and a fresh `HaveMap` when its WAN
//! reachability changes or it starts on the release later. Every other request has a
//! stream of its own:
//!
//! | request | response frames |
//! |---|---|
//! | `GetChunks { release, hashes }` (≤ [`MAX_CHUNKS_PER_REQUEST`]) | per hash, in order, `Chunk` or `NotFound`; then `End` |
//! | `GetHead` (the client's own head, relayed) | `Head`, `NoHead` or `Refused` |
//! | `GetRelease { id }` | `Release` or `NotFound` |
//!
//! `GetHead` asks the server to fetch the *client's* signed head from the seeder on
//! its behalf (the seeder checks that both are accepted devices of one site); the head
//! names the device it is for, so a relayed head is no more trusted than a direct one.
//!
//! ## Errors and hostile peers
//! A frame over its cap, a malformed message, or a chunk whose length or hash is wrong
//! ends the stream; the scheduler (`crate::sched`) bans a peer for the release after
//! one bad chunk, drops a peer that advertised a chunk and answered `NotFound` (and
//! bans it when it comes back and does so again), and drops one whose requests keep
//! missing their deadline. A ban closes every connection with the peer, both ways,
//! and its new connections are refused.
//!
//! A server holds at most 256 connections, at most 2 per admitted peer (one, and one
//! more across a reconnect; a third is refused after the `Hello`), and at most 32 open
//! streams on each. With a LAN rate (`--lan-rate`) a node sends chunks and asks for
//! them no faster than that rate; idle time earns no credit.
//!
//! ## Framing and caps
//! Frames as in [`crate::frame`]: a `u32` little-endian length, then the message in the
//! [`crate::codec`] encoding. Requests are capped at [`REQUEST_CAP`], responses at
//! [`RESPONSE_CAP`]; a `Chunk` carries at most [`crate::release::MAX_CHUNK_LEN`] bytes.
//! A `Chunk` frame is laid out like `shoal-wan/1`'s (tag, hash, length, data), so a
//! receiver reads the data straight into its own buffer ([`chunk_frame_prefix`]).
//!
//! ## Versioning
//! The version is in the ALPN. Variant tags are the declaration order and never change
//! (`tests::tags_are_stable`); new variants go at the end; a retired one stays, renamed
//! `Removed…`.
//!
//! ## Example
//! `Subscribe { release: r }` is the frame `24 00 00 00` (36 bytes), `01 00 00 00`
//! (tag 1), then the 32 bytes of `r`; the answer might be `HaveMap { release: r, wan:
//! true, chunks: 3, bits: [05] }`: chunks 0 and 2 held.

use crate::codec::{self, DecodeError, EncodeError};
use crate::hash::Hash;
use crate::release::{MAX_CHUNK_LEN, RELEASE_BODY_CAP};
use crate::signed::ENVELOPE_OVERHEAD;
use serde::{Deserialize, Serialize};

/// The ALPN protocol name.
pub const ALPN: &[u8] = b"/shoal/xfer/1";
/// The largest request frame (an admission is well below).
pub const REQUEST_CAP: usize = 16 * 1024;
/// The largest response frame: a release at its cap, with room around it.
pub const RESPONSE_CAP: usize = RELEASE_BODY_CAP + ENVELOPE_OVERHEAD + 4096;
/// At most this many chunks in one `GetChunks`.
pub const MAX_CHUNKS_PER_REQUEST: usize = 64;
/// The longest reason in `Refused`.
pub const MAX_TEXT: usize = 1024;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Tag 0. First on the control stream: the client's `Signed<Admission>`, encoded.
    Hello {
        #[serde(with = "codec::bytes")]
        admission: Vec<u8>,
    },
    /// Tag 1. On the control stream: the client works on this release now.
    Subscribe { release: Hash },
    /// Tag 2. Chunks of a release, by hash, answered in order.
    GetChunks { release: Hash, hashes: Vec<Hash> },
    /// Tag 3. The client's own signed head, fetched from the seeder on its behalf.
    GetHead,
    /// Tag 4. A signed release by id.
    GetRelease { id: Hash },
}

/// What a server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Tag 0. The server's `Signed<Admission>`, encoded: the client was admitted.
    Hello {
        #[serde(with = "codec::bytes")]
        admission: Vec<u8>,
    },
    /// Tag 1. Not served, and why (no valid admission, another site, banned).
    Refused { reason: String },
    /// Tag 2. The chunks of `release` the server holds: bit `i` of `bits` (least
    /// significant first) is chunk `i` of the release's plan; `wan` says whether the
    /// server can reach the seeder.
    HaveMap {
        release: Hash,
        wan: bool,
        chunks: u32,
        #[serde(with = "codec::bytes")]
        bits: Vec<u8>,
    },
    /// Tag 3. The server now holds chunk `index` of `release`.
    Have { release: Hash, index: u32 },
    /// Tag 4. The server does not work on that release.
    Unknown { release: Hash },
    /// Tag 5. One chunk's bytes.
    Chunk {
        hash: Hash,
        #[serde(with = "codec::bytes")]
        data: Vec<u8>,
    },
    /// Tag 6. The server does not hold that chunk or release.
    NotFound { hash: Hash },
    /// Tag 7. The end of a `GetChunks` answer.
    End,
    /// Tag 8. A `Signed<Head>`, encoded.
    Head(#[serde(with = "codec::bytes")] Vec<u8>),
    /// Tag 9. The seeder has no deployment for the client, or cannot be reached.
    NoHead,
    /// Tag 10. A `Signed<Release>`, encoded.
    Release(#[serde(with = "codec::bytes")] Vec<u8>),
}

/// The libp2p protocol that carries [`Intro`].
pub const INTRO_PROTOCOL: &str = "/shoal/intro/1";
/// The largest encoded [`Intro`].
pub const INTRO_CAP: usize = 16 * 1024;

/// What a node says of itself on a libp2p connection: who admitted it, and where its
/// xfer endpoint listens (same IP as the libp2p connection; port 0: it serves nothing,
/// do not dial it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intro {
    #[serde(with = "codec::bytes")]
    pub admission: Vec<u8>,
    pub xfer_port: u16,
}

impl Intro {
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        codec::encode::<Self, INTRO_CAP>(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Intro, DecodeError> {
        codec::decode::<Self, INTRO_CAP>(bytes)
    }
}

/// The tag of `Response::Chunk`, the same as `shoal-wan/1`'s.
const CHUNK_TAG: u32 = 5;

impl Request {
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        codec::encode::<Self, REQUEST_CAP>(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        let r: Request = codec::decode::<Self, REQUEST_CAP>(bytes)?;
        if let Request::GetChunks { hashes, .. } = &r
            && hashes.len() > MAX_CHUNKS_PER_REQUEST
        {
            return Err(DecodeError::Malformed(format!(
                "{} chunks in one request, at most {MAX_CHUNKS_PER_REQUEST}",
                hashes.len()
            )));
        }
        Ok(r)
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
            Response::Refused { reason } if reason.len() > MAX_TEXT => Err(DecodeError::Malformed(
                format!("a reason of {} bytes, at most {MAX_TEXT}", reason.len()),
            )),
            Response::HaveMap { chunks, bits, .. }
                if !crate::plan::canonical_bits(bits, *chunks as usize) =>
            {
                Err(DecodeError::Malformed(format!(
                    "a have-map of {} bytes for {chunks} chunks (expected {}, no bit past the last chunk)",
                    bits.len(),
                    (*chunks as usize).div_ceil(8)
                )))
            }
            _ => Ok(r),
        }
    }
}

/// The bytes that precede a chunk's data in a `Response::Chunk` frame; see
/// [`crate::wan::chunk_frame_prefix`], whose layout this shares.
pub fn chunk_frame_prefix(hash: &Hash, data_len: usize) -> [u8; crate::wan::CHUNK_FRAME_PREFIX] {
    crate::wan::tagged_chunk_frame_prefix(CHUNK_TAG, hash, data_len)
}

/// If a frame's first bytes are those of a `Response::Chunk`, its hash and data length;
/// see [`crate::wan::chunk_head`].
pub fn chunk_head(head: &[u8], frame_len: usize) -> Result<Option<(Hash, usize)>, DecodeError> {
    crate::wan::tagged_chunk_head(CHUNK_TAG, head, frame_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(bytes: &[u8]) -> u32 {
        u32::from_le_bytes(bytes[..4].try_into().unwrap())
    }

    #[test]
    fn tags_are_stable() {
        let h = Hash([1; 32]);
        let requests = [
            Request::Hello { admission: vec![] },
            Request::Subscribe { release: h },
            Request::GetChunks {
                release: h,
                hashes: vec![],
            },
            Request::GetHead,
            Request::GetRelease { id: h },
        ];
        for (i, r) in requests.iter().enumerate() {
            assert_eq!(tag(&r.encode().unwrap()), i as u32, "{r:?}");
        }
        let responses = [
            Response::Hello { admission: vec![] },
            Response::Refused { reason: "x".into() },
            Response::HaveMap {
                release: h,
                wan: true,
                chunks: 0,
                bits: vec![],
            },
            Response::Have {
                release: h,
                index: 0,
            },
            Response::Unknown { release: h },
            Response::Chunk {
                hash: h,
                data: vec![],
            },
            Response::NotFound { hash: h },
            Response::End,
            Response::Head(vec![]),
            Response::NoHead,
            Response::Release(vec![]),
        ];
        for (i, r) in responses.iter().enumerate() {
            assert_eq!(tag(&r.encode().unwrap()), i as u32, "{r:?}");
        }
    }

    #[test]
    fn the_example_in_the_module_doc_holds() {
        let r = Hash([7; 32]);
        let body = Request::Subscribe { release: r }.encode().unwrap();
        assert_eq!(body.len(), 36);
        assert_eq!(&body[..4], &[1, 0, 0, 0]);
        let map = Response::HaveMap {
            release: r,
            wan: true,
            chunks: 3,
            bits: vec![0b101],
        };
        assert_eq!(Response::decode(&map.encode().unwrap()).unwrap(), map);
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
        let head = &frame[crate::frame::HEADER_LEN..crate::wan::CHUNK_FRAME_PREFIX];
        assert_eq!(
            chunk_head(head, body.len()).unwrap(),
            Some((hash, data.len()))
        );
    }

    #[test]
    fn an_intro_round_trips_and_its_cap_holds() {
        let i = Intro {
            admission: vec![1, 2, 3],
            xfer_port: 7700,
        };
        assert_eq!(Intro::decode(&i.encode().unwrap()).unwrap(), i);
        let big = Intro {
            admission: vec![0; INTRO_CAP],
            xfer_port: 1,
        };
        assert!(big.encode().is_err());
    }

    // guards: a have-map whose bitfield does not fit its chunk count
    #[test]
    fn a_have_map_of_the_wrong_length_is_refused() {
        let bad = Response::HaveMap {
            release: Hash([0; 32]),
            wan: false,
            chunks: 100,
            bits: vec![0; 3],
        };
        assert!(Response::decode(&bad.encode().unwrap()).is_err());
        // the right length, but a bit set for a chunk 3 of 3 chunks (0..=2)
        let padded = Response::HaveMap {
            release: Hash([0; 32]),
            wan: false,
            chunks: 3,
            bits: vec![0b1011],
        };
        assert!(Response::decode(&padded.encode().unwrap()).is_err());
    }

    // guards: a request for more chunks than a server answers in one go
    #[test]
    fn too_many_chunks_in_one_request_are_refused() {
        let r = Request::GetChunks {
            release: Hash([0; 32]),
            hashes: vec![Hash([0; 32]); MAX_CHUNKS_PER_REQUEST + 1],
        };
        assert!(Request::decode(&r.encode().unwrap()).is_err());
    }
}
