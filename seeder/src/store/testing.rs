//! Fixtures for the store's tests.

use shoal_core::{
    ChunkRef, ChunkingProfile, FileEntry, Hash, Install, PublicKey, Release, SecretKey, Signed,
};

/// A device key from a one-byte seed.
pub(crate) fn key(n: u8) -> PublicKey {
    SecretKey::from_seed([n; 32]).public()
}

/// A release of one file made of `chunks`, as uploaded: the envelope bytes (unsigned;
/// the store checks no signatures), the release and its id.
pub(crate) fn release_with(
    name: &str,
    version: &str,
    counter: u64,
    chunks: &[&[u8]],
) -> (Vec<u8>, Release, Hash) {
    let whole: Vec<u8> = chunks.concat();
    let release = Release {
        name: name.into(),
        version: version.into(),
        counter,
        device_types: vec!["pump".into()],
        created_at: 1,
        chunking: ChunkingProfile::DEFAULT,
        install: Install::File,
        files: vec![FileEntry {
            path: "fw.bin".into(),
            mode: 0o644,
            size: whole.len() as u64,
            blake3: Hash::of(&whole),
            chunks: chunks
                .iter()
                .map(|c| ChunkRef {
                    hash: Hash::of(c),
                    len: c.len() as u32,
                })
                .collect(),
        }],
    };
    let signed = Signed::new(&release).unwrap();
    let id = signed.body_hash();
    (signed.to_bytes().unwrap(), release, id)
}
