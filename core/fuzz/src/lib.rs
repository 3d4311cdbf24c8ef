//! What the fuzz targets share: a fixed root built from fixed seeds, and the checks that
//! every signed document gets.
//!
//! The fuzzer cannot forge a signature, so a target that only fed hostile envelopes to
//! `verify_*` would never get past the tally. The targets therefore also countersign
//! whatever decodes with the fixed keys: the tally then runs over hostile signatures
//! next to valid ones, and the rules after it (structure, expiry, replay, ...) run on
//! hostile bodies.

use shoal_core::signed::Document;
use shoal_core::{Role, RoleKeys, Root, SecretKey, Signed};
use std::fmt::Debug;
use std::sync::OnceLock;

/// The `now` every target verifies at.
pub const NOW: u64 = 1_700_000_000;
/// When the fixed root expires (after `NOW`).
pub const ROOT_EXPIRES_AT: u64 = 2_000_000_000;
/// The site the admission target expects.
pub const SITE: &str = "site-a";
/// The device type the release target expects.
pub const DEVICE_TYPE: &str = "pump";

/// The key for `[seed; 32]`.
pub fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// A version-1 root with 2-of-3 root keys (seeds 1..=3), 2-of-3 release keys
/// (4..=6) and 1-of-2 online keys (7, 8); seed 9 is a device's key.
pub struct Fixture {
    pub root: Root,
    /// The root signed by two of its root keys.
    pub signed_root: Signed<Root>,
    pub root_keys: Vec<SecretKey>,
    pub release_keys: Vec<SecretKey>,
    pub online_keys: Vec<SecretKey>,
    pub device: SecretKey,
}

impl Fixture {
    /// The keys that meet `role`'s threshold of the fixed root.
    pub fn signers(&self, role: Role) -> &[SecretKey] {
        match role {
            Role::Root => &self.root_keys[..2],
            Role::Release => &self.release_keys[..2],
            Role::Online => &self.online_keys[..1],
        }
    }
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = |seeds: &[u8]| seeds.iter().map(|&s| key(s)).collect::<Vec<_>>();
        let role = |keys: &[SecretKey], threshold| RoleKeys {
            keys: keys.iter().map(SecretKey::public).collect(),
            threshold,
        };
        let root_keys = keys(&[1, 2, 3]);
        let release_keys = keys(&[4, 5, 6]);
        let online_keys = keys(&[7, 8]);
        let root = Root {
            version: 1,
            expires_at: ROOT_EXPIRES_AT,
            root: role(&root_keys, 2),
            release: role(&release_keys, 2),
            online: role(&online_keys, 1),
        };
        let mut signed_root = Signed::new(&root).expect("the fixed root encodes");
        for k in &root_keys[..2] {
            signed_root.sign(k);
        }
        let fx = Fixture {
            root,
            signed_root,
            root_keys,
            release_keys,
            online_keys,
            device: key(9),
        };
        shoal_core::verify_root(&fx.signed_root, NOW).expect("the fixed root verifies");
        fx
    })
}

/// Decodes `data` as an envelope of `T`. What decodes must re-encode to exactly
/// `data` (the codec is canonical), and so must a body that decodes. Returns the
/// envelope and, if its body decodes, the body.
pub fn envelope<T: Document + PartialEq + Debug>(data: &[u8]) -> Option<(Signed<T>, Option<T>)> {
    let signed = T::decode_envelope(data).ok()?;
    let again = signed.to_bytes().expect("a decoded envelope re-encodes");
    assert!(again == data, "envelope round trip changed the bytes");
    let doc = signed.decode_unverified().ok();
    if let Some(doc) = &doc {
        let body = doc.encode_body().expect("a decoded body re-encodes");
        assert!(body == signed.body, "body round trip changed the bytes");
    }
    Some((signed, doc))
}

/// Decodes `data` as a bare body of `T`; what decodes must re-encode to `data`.
pub fn body<T: Document + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let doc = T::decode_body(data).ok()?;
    let again = doc.encode_body().expect("a decoded body re-encodes");
    assert!(again == data, "body round trip changed the bytes");
    let twice = T::decode_body(&again).expect("a re-encoded body decodes");
    assert_eq!(twice, doc);
    Some(doc)
}

/// `signed` with valid signatures by `keys` appended after whatever it carries.
pub fn countersigned<T: Document>(signed: &Signed<T>, keys: &[SecretKey]) -> Signed<T> {
    let mut s = signed.clone();
    for k in keys {
        s.sign(k);
    }
    s
}

/// A fresh envelope around `doc`'s body, signed by `keys`.
pub fn signed_by<T: Document>(doc: &T, keys: &[SecretKey]) -> Signed<T> {
    let mut s = Signed::new(doc).expect("a decoded body re-encodes");
    for k in keys {
        s.sign(k);
    }
    s
}

/// Builds a `Signed<T>` envelope's bytes from a body and its signers, for seeds.
pub fn envelope_bytes<T: Document>(doc: &T, keys: &[SecretKey]) -> Vec<u8> {
    signed_by(doc, keys)
        .to_bytes()
        .expect("a seed envelope encodes")
}

/// How a decoded response looked to [`check_chunk_head`]: a chunk's hash and length,
/// another message, or nothing that decodes.
pub enum Decoded {
    Chunk(shoal_core::Hash, usize),
    Other,
    Refused,
}

/// A node's chunk fast path (`wan::chunk_head` or `lan::chunk_head`) must agree with
/// the full decode of `msg`: a frame it reads as a chunk decodes as that chunk, one it
/// passes over is not a chunk, and one it refuses does not decode.
pub fn check_chunk_head(
    msg: &[u8],
    chunk_head: fn(
        &[u8],
        usize,
    )
        -> Result<Option<(shoal_core::Hash, usize)>, shoal_core::codec::DecodeError>,
    decoded: Decoded,
) {
    let head_len = shoal_core::wan::CHUNK_FRAME_PREFIX - shoal_core::frame::HEADER_LEN;
    match (
        chunk_head(&msg[..msg.len().min(head_len)], msg.len()),
        decoded,
    ) {
        (Ok(Some(seen)), Decoded::Chunk(hash, len)) => {
            assert_eq!(seen, (hash, len), "chunk_head and decode disagree")
        }
        (Ok(Some(_)), _) => panic!("chunk_head saw a chunk that decode does not"),
        (Ok(None), Decoded::Chunk(..)) => panic!("chunk_head missed a chunk"),
        (Ok(None), _) => {}
        (Err(_), Decoded::Refused) => {}
        (Err(_), _) => panic!("chunk_head refused what decode accepts"),
    }
}
