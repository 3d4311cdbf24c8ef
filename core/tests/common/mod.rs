//! Fixtures shared by core's integration tests: fixed keys, a root, a release, a head
//! and an admission, all valid at [`NOW`].

#![allow(dead_code)]

use shoal_core::{
    Admission, ChunkRef, ChunkingProfile, FileEntry, Hash, Head, Install, PublicKey, Release,
    RoleKeys, Root, SecretKey, Signed,
};

/// The verification time of every fixture (2027-01-15).
pub const NOW: u64 = 1_800_000_000;
pub const DAY: u64 = 86_400;

pub struct Keys {
    pub root: Vec<SecretKey>,
    pub release: Vec<SecretKey>,
    pub online: SecretKey,
}

pub fn keys() -> Keys {
    Keys {
        root: vec![SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32])],
        release: vec![SecretKey::from_seed([3; 32]), SecretKey::from_seed([4; 32])],
        online: SecretKey::from_seed([5; 32]),
    }
}

pub fn pubs(keys: &[SecretKey]) -> Vec<PublicKey> {
    keys.iter().map(SecretKey::public).collect()
}

/// Root v1: root 2-of-2, release 2-of-2, online 1-of-1.
pub fn root_doc(k: &Keys) -> Root {
    Root {
        version: 1,
        expires_at: NOW + 365 * DAY,
        root: RoleKeys {
            keys: pubs(&k.root),
            threshold: 2,
        },
        release: RoleKeys {
            keys: pubs(&k.release),
            threshold: 2,
        },
        online: RoleKeys {
            keys: vec![k.online.public()],
            threshold: 1,
        },
    }
}

pub fn sign<T: shoal_core::Document>(doc: &T, signers: &[&SecretKey]) -> Signed<T> {
    let mut s = Signed::new(doc).expect("fixture encodes");
    for k in signers {
        s.sign(k);
    }
    s
}

pub fn signed_root(k: &Keys) -> Signed<Root> {
    sign(&root_doc(k), &[&k.root[0], &k.root[1]])
}

pub fn release_doc() -> Release {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (blake3, chunks) = shoal_core::chunker::chunk_bytes(ChunkingProfile::DEFAULT, &data)
        .expect("default profile is valid");
    Release {
        name: "pump-firmware".into(),
        version: "1.0.0".into(),
        counter: 5,
        device_types: vec!["pump".into()],
        created_at: NOW - DAY,
        chunking: ChunkingProfile::DEFAULT,
        install: Install::File,
        files: vec![FileEntry {
            path: "firmware.bin".into(),
            mode: 0o644,
            size: data.len() as u64,
            blake3,
            chunks,
        }],
    }
}

pub fn signed_release(k: &Keys) -> Signed<Release> {
    sign(&release_doc(), &[&k.release[0], &k.release[1]])
}

pub fn device() -> SecretKey {
    SecretKey::from_seed([9; 32])
}

pub fn head_doc(release: Hash, counter: u64, seq: u64) -> Head {
    Head {
        device_id: device().key_id(),
        seq,
        release,
        counter,
        issued_at: NOW - 60,
        expires_at: NOW + 3600,
    }
}

pub fn admission_doc() -> Admission {
    let d = device();
    Admission {
        device_id: d.key_id(),
        device_key: d.public(),
        site: "plant-7".into(),
        groups: vec!["line-a".into()],
        expires_at: NOW + 30 * DAY,
    }
}

/// A chunk list entry for tests that build manifests by hand.
pub fn chunk(len: u32) -> ChunkRef {
    ChunkRef {
        hash: Hash::of(&len.to_le_bytes()),
        len,
    }
}
