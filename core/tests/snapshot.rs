//! The encoding of one signed Release, checked in as an annotated hexdump
//! (`snapshots/release.hex`). An accidental change of the format (a field reordered,
//! an integer width changed, a new serde attribute) fails this test.
//!
//! The test builds the expected bytes field by field from the layout documented in
//! `docs/formats.md`, checks that the codec produces exactly those bytes, and checks
//! the checked-in file against them. After an *intended* format change, regenerate the
//! file with `SHOAL_BLESS=1 cargo test -p shoal-core --test snapshot` and say why in
//! the commit.

use shoal_core::{
    ChunkRef, ChunkingProfile, Document, FileEntry, Hash, Install, Release, SecretKey, Signed,
};

const SNAPSHOT: &str = "tests/snapshots/release.hex";

fn release() -> Release {
    let data = b"hello shoal\n";
    Release {
        name: "demo".into(),
        version: "1.0".into(),
        counter: 7,
        device_types: vec!["pump".into()],
        created_at: 1_800_000_000,
        chunking: ChunkingProfile::DEFAULT,
        install: Install::Command {
            args: vec!["-v".into()],
        },
        files: vec![FileEntry {
            path: "bin/app".into(),
            mode: 0o755,
            size: data.len() as u64,
            blake3: Hash::of(data),
            chunks: vec![ChunkRef {
                hash: Hash::of(data),
                len: data.len() as u32,
            }],
        }],
    }
}

fn signer() -> SecretKey {
    SecretKey::from_seed([3; 32])
}

/// The expected bytes, one annotated field at a time.
fn segments() -> Vec<(Vec<u8>, String)> {
    let r = release();
    let mut body: Vec<(Vec<u8>, String)> = Vec::new();
    let u32 = |v: u32| v.to_le_bytes().to_vec();
    let u64 = |v: u64| v.to_le_bytes().to_vec();
    let text = |field: &str, s: &str, out: &mut Vec<(Vec<u8>, String)>| {
        out.push((
            u64(s.len() as u64),
            format!("{field}: length {} (u64)", s.len()),
        ));
        out.push((s.as_bytes().to_vec(), format!("{field}: {s:?}")));
    };
    text("name", &r.name, &mut body);
    text("version", &r.version, &mut body);
    body.push((u64(r.counter), format!("counter: {} (u64)", r.counter)));
    body.push((u64(1), "device_types: 1 entry (u64)".into()));
    text("device_types[0]", "pump", &mut body);
    body.push((
        u64(r.created_at),
        format!("created_at: {} (u64, unix seconds)", r.created_at),
    ));
    body.push((u32(r.chunking.min), "chunking.min: 16384 (u32)".into()));
    body.push((u32(r.chunking.avg), "chunking.avg: 65536 (u32)".into()));
    body.push((u32(r.chunking.max), "chunking.max: 262144 (u32)".into()));
    body.push((u32(2), "install: tag 2 = Command (u32)".into()));
    body.push((u64(1), "install.args: 1 entry (u64)".into()));
    text("install.args[0]", "-v", &mut body);
    body.push((u64(1), "files: 1 entry (u64)".into()));
    let f = &r.files[0];
    text("files[0].path", &f.path, &mut body);
    body.push((u32(f.mode), "files[0].mode: 0o755 (u32)".into()));
    body.push((u64(f.size), format!("files[0].size: {} (u64)", f.size)));
    body.push((f.blake3.0.to_vec(), "files[0].blake3: 32 bytes".into()));
    body.push((u64(1), "files[0].chunks: 1 entry (u64)".into()));
    body.push((
        f.chunks[0].hash.0.to_vec(),
        "files[0].chunks[0].hash: 32 bytes".into(),
    ));
    body.push((
        u32(f.chunks[0].len),
        format!("files[0].chunks[0].len: {} (u32)", f.chunks[0].len),
    ));

    let body_bytes: Vec<u8> = body.iter().flat_map(|(b, _)| b.clone()).collect();
    let mut message = Release::DOMAIN.to_vec();
    message.extend_from_slice(&body_bytes);
    let sig = signer().sign(&message);

    let mut out = vec![(
        u64(body_bytes.len() as u64),
        format!(
            "Signed.body: length {} (u64); the Release body follows",
            body_bytes.len()
        ),
    )];
    out.extend(body);
    out.push((u64(1), "Signed.signatures: 1 entry (u64)".into()));
    out.push((
        signer().key_id().0.to_vec(),
        "signatures[0].key_id: BLAKE3 of the public key, 32 bytes".into(),
    ));
    out.push((
        sig.to_vec(),
        "signatures[0].sig: ed25519 over b\"shoal/release/v1\" || body, 64 bytes".into(),
    ));
    out
}

fn render(segments: &[(Vec<u8>, String)]) -> String {
    let mut s = String::from(
        "# A Signed<Release> as shoal encodes it (bincode 2, little-endian, fixed-width\n\
         # integers). Checked by core/tests/snapshot.rs; see docs/formats.md.\n",
    );
    for (bytes, note) in segments {
        for (i, row) in bytes.chunks(16).enumerate() {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            let hex = hex.join(" ");
            if i == 0 {
                s.push_str(&format!("{hex:<48}  # {note}\n"));
            } else {
                s.push_str(&format!("{hex}\n"));
            }
        }
    }
    s
}

fn parse(text: &str) -> Vec<u8> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split_whitespace())
        .map(|h| u8::from_str_radix(h, 16).expect("hex byte in snapshot"))
        .collect()
}

#[test]
fn release_encoding_matches_the_documented_layout() {
    let mut signed = Signed::new(&release()).unwrap();
    signed.sign(&signer());
    let encoded = signed.to_bytes().unwrap();
    let segs = segments();
    let expected: Vec<u8> = segs.iter().flat_map(|(b, _)| b.clone()).collect();
    assert_eq!(
        encoded, expected,
        "the codec no longer follows docs/formats.md"
    );

    if std::env::var_os("SHOAL_BLESS").is_some() {
        std::fs::write(SNAPSHOT, render(&segs)).unwrap();
    }
    let checked_in =
        std::fs::read_to_string(SNAPSHOT).expect("core/tests/snapshots/release.hex is checked in");
    assert_eq!(
        parse(&checked_in),
        encoded,
        "the encoding changed: if intended, regenerate with SHOAL_BLESS=1 and explain why"
    );
    // the snapshot decodes back to the same release
    let back = shoal_core::release::decode_release(&parse(&checked_in)).unwrap();
    assert_eq!(back.decode_unverified().unwrap(), release());
}
