//! Round-trip properties: every document, and its signed envelope, decodes to exactly
//! what was encoded, and its encoding is canonical (decode then encode gives the same
//! bytes). Truncating an encoding never decodes.

use proptest::prelude::*;
use shoal_core::{
    Admission, ChunkRef, ChunkingProfile, Document, FileEntry, Hash, Head, Install, KeyId,
    PublicKey, Release, RoleKeys, Root, SecretKey, Signature, Signed,
};

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(|seed| SecretKey::from_seed(seed).public())
}

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,24}"
}

fn role() -> impl Strategy<Value = RoleKeys> {
    (prop::collection::vec(key(), 0..4), any::<u32>())
        .prop_map(|(keys, threshold)| RoleKeys { keys, threshold })
}

fn root() -> impl Strategy<Value = Root> {
    (any::<u64>(), any::<u64>(), role(), role(), role()).prop_map(
        |(version, expires_at, root, release, online)| Root {
            version,
            expires_at,
            root,
            release,
            online,
        },
    )
}

fn install() -> impl Strategy<Value = Install> {
    prop_oneof![
        Just(Install::File),
        Just(Install::AbSlot),
        prop::collection::vec(".{0,12}", 0..3).prop_map(|args| Install::Command { args }),
    ]
}

fn file() -> impl Strategy<Value = FileEntry> {
    (
        "[a-z]{1,8}(/[a-z]{1,8}){0,2}",
        0u32..0o1000,
        any::<u64>(),
        hash(),
        prop::collection::vec(
            (hash(), any::<u32>()).prop_map(|(hash, len)| ChunkRef { hash, len }),
            0..5,
        ),
    )
        .prop_map(|(path, mode, size, blake3, chunks)| FileEntry {
            path,
            mode,
            size,
            blake3,
            chunks,
        })
}

fn release() -> impl Strategy<Value = Release> {
    (
        label(),
        label(),
        any::<u64>(),
        prop::collection::vec(label(), 0..3),
        any::<u64>(),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        install(),
        prop::collection::vec(file(), 0..4),
    )
        .prop_map(
            |(
                name,
                version,
                counter,
                device_types,
                created_at,
                (min, avg, max),
                install,
                files,
            )| {
                Release {
                    name,
                    version,
                    counter,
                    device_types,
                    created_at,
                    chunking: ChunkingProfile { min, avg, max },
                    install,
                    files,
                }
            },
        )
}

fn head() -> impl Strategy<Value = Head> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        hash(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(d, seq, release, counter, issued_at, expires_at)| Head {
            device_id: KeyId(d),
            seq,
            release,
            counter,
            issued_at,
            expires_at,
        })
}

fn admission() -> impl Strategy<Value = Admission> {
    (
        key(),
        label(),
        prop::collection::vec(label(), 0..3),
        any::<u64>(),
    )
        .prop_map(|(device_key, site, groups, expires_at)| Admission {
            device_id: device_key.key_id(),
            device_key,
            site,
            groups,
            expires_at,
        })
}

fn signatures() -> impl Strategy<Value = Vec<Signature>> {
    prop::collection::vec(
        (any::<[u8; 32]>(), prop::collection::vec(any::<u8>(), 64)).prop_map(|(id, sig)| {
            Signature {
                key_id: KeyId(id),
                sig: sig.try_into().expect("64 bytes"),
            }
        }),
        0..4,
    )
}

/// The properties every document must have.
fn check<T: Document + PartialEq + std::fmt::Debug>(doc: &T, sigs: Vec<Signature>) {
    let body = doc.encode_body().unwrap();
    let back = T::decode_body(&body).unwrap();
    assert_eq!(&back, doc);
    assert_eq!(back.encode_body().unwrap(), body, "encoding is canonical");
    for cut in [0, body.len() / 2, body.len().saturating_sub(1)] {
        if cut < body.len() {
            assert!(
                T::decode_body(&body[..cut]).is_err(),
                "a truncated body decoded"
            );
        }
    }
    let signed: Signed<T> = Signed::from_parts(body, sigs);
    let bytes = signed.to_bytes().unwrap();
    let again = T::decode_envelope(&bytes).unwrap();
    assert_eq!(again, signed);
    assert_eq!(again.to_bytes().unwrap(), bytes);
    assert_eq!(&again.decode_unverified().unwrap(), doc);
    let mut long = bytes.clone();
    long.push(0);
    assert!(T::decode_envelope(&long).is_err(), "trailing bytes decoded");
}

proptest! {
    #[test]
    fn root_round_trips(doc in root(), sigs in signatures()) { check(&doc, sigs) }

    #[test]
    fn release_round_trips(doc in release(), sigs in signatures()) { check(&doc, sigs) }

    #[test]
    fn head_round_trips(doc in head(), sigs in signatures()) { check(&doc, sigs) }

    #[test]
    fn admission_round_trips(doc in admission(), sigs in signatures()) { check(&doc, sigs) }

    #[test]
    fn signing_then_verifying_any_release_body_counts_each_key_once(
        doc in release(),
        seeds in prop::collection::vec(any::<[u8; 32]>(), 1..4),
    ) {
        let keys: Vec<SecretKey> = seeds.iter().map(|s| SecretKey::from_seed(*s)).collect();
        let mut signed = Signed::new(&doc).unwrap();
        for k in &keys {
            signed.sign(k);
            signed.sign(k);
        }
        for k in &keys {
            prop_assert!(signed.is_signed_by(&k.public()));
        }
        let distinct: std::collections::BTreeSet<_> = keys.iter().map(|k| k.key_id()).collect();
        let role = RoleKeys { keys: keys.iter().map(SecretKey::public).collect(), threshold: 1 };
        let root = Root { version: 1, expires_at: u64::MAX, root: role.clone(), release: role.clone(), online: role };
        let t = signed.tally(&root, shoal_core::Role::Release);
        prop_assert_eq!(t.valid, distinct.len());
        prop_assert_eq!(t.duplicate, 2 * keys.len() - distinct.len());
    }
}
