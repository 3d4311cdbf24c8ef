//! Writes a starting corpus to `corpus/<target>/seed-*`: documents validly signed by
//! the fixture's keys (so the fuzzer starts from signatures it cannot forge), their bare
//! bodies, key files, digests, frames, paths and files to chunk.
//!
//! `cargo run --example seeds` from core/fuzz (no nightly flags needed).

use shoal_core::chunker::chunk_bytes;
use shoal_core::frame::encode_frame;
use shoal_core::lan;
use shoal_core::signed::Document;
use shoal_core::wan::{
    BytesBySource, DeviceState, Enrolment, Request, Response, SignedBytes, StatusReport,
};
use shoal_core::{
    Admission, ChunkRef, ChunkingProfile, FileEntry, Hash, Head, Install, Release, Role, RoleKeys,
    SecretKey,
};
use shoal_core_fuzz::{DEVICE_TYPE, NOW, SITE, envelope_bytes, fixture, key};
use std::fs;
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("create the corpus folder");
    fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
}

/// A document's envelope signed by `keys`, and its bare body.
fn doc<T: Document>(target: &str, name: &str, doc: &T, keys: &[SecretKey]) {
    write(
        target,
        &format!("{name}-envelope"),
        &envelope_bytes(doc, keys),
    );
    write(
        target,
        &format!("{name}-body"),
        &doc.encode_body().expect("a seed body encodes"),
    );
}

fn release(install: Install, files: Vec<FileEntry>) -> Release {
    Release {
        name: "pump-firmware".into(),
        version: "2.4.1".into(),
        counter: 7,
        device_types: vec![DEVICE_TYPE.into(), "valve".into()],
        created_at: NOW - 100,
        chunking: ChunkingProfile {
            min: 64,
            avg: 256,
            max: 1024,
        },
        install,
        files,
    }
}

fn file(path: &str, content: &[u8], profile: ChunkingProfile) -> FileEntry {
    let (blake3, chunks) = chunk_bytes(profile, content).expect("a valid profile");
    FileEntry {
        path: path.into(),
        mode: 0o644,
        size: content.len() as u64,
        blake3,
        chunks,
    }
}

fn main() {
    let fx = fixture();
    let online = fx.signers(Role::Online);

    // root: the fixed root, and a valid rotation to version 2 (new root key 10).
    write(
        "root",
        "fixed-envelope",
        &fx.signed_root.to_bytes().unwrap(),
    );
    write("root", "fixed-body", &fx.root.encode_body().unwrap());
    let mut v2 = fx.root.clone();
    v2.version = 2;
    v2.root = RoleKeys {
        keys: vec![fx.root_keys[0].public(), key(10).public()],
        threshold: 2,
    };
    let signers = [
        fx.root_keys[0].clone_key(),
        fx.root_keys[1].clone_key(),
        key(10),
    ];
    doc("root", "rotation", &v2, &signers);

    // release: a few install models, signed by the release keys, plus a wrong signer.
    let p = release(Install::File, vec![]).chunking;
    let content: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let files = vec![
        file("bin/app", &content, p),
        file("etc/app.toml", b"x = 1\n", p),
    ];
    let rel = release(Install::File, files.clone());
    doc("release", "file", &rel, fx.signers(Role::Release));
    let slot = release(Install::AbSlot, vec![file("slot.img", &content, p)]);
    doc("release", "ab-slot", &slot, fx.signers(Role::Release));
    let cmd = release(
        Install::Command {
            args: vec!["--apply".into(), "x".into()],
        },
        files,
    );
    doc("release", "command", &cmd, fx.signers(Role::Release));
    doc("release", "by-online-key", &rel, online);
    let chunky = release(
        Install::File,
        vec![FileEntry {
            path: "a".into(),
            mode: 0o755,
            size: 3,
            blake3: Hash::of(b"abc"),
            chunks: vec![ChunkRef {
                hash: Hash::of(b"abc"),
                len: 3,
            }],
        }],
    );
    doc("release", "small", &chunky, fx.signers(Role::Release));

    // head and admission: valid for the fixture's device, and by a wrong role.
    let head = Head {
        device_id: fx.device.key_id(),
        seq: 6,
        release: Hash::of(b"release body"),
        counter: 7,
        issued_at: NOW - 10,
        expires_at: NOW + 300,
    };
    doc("head", "valid", &head, online);
    doc("head", "by-release-key", &head, fx.signers(Role::Release));
    doc("head", "both-online-keys", &head, &fx.online_keys);
    let adm = Admission {
        device_id: fx.device.key_id(),
        device_key: fx.device.public(),
        site: SITE.into(),
        groups: vec!["ward-3".into(), "icu".into()],
        expires_at: NOW + 86_400,
    };
    doc("admission", "valid", &adm, online);
    doc("admission", "by-root-key", &adm, fx.signers(Role::Root));

    // key files, digests, paths.
    let sk = key(42);
    write("key_text", "secret", sk.to_text().as_bytes());
    write("key_text", "public", sk.public().to_text().as_bytes());
    write(
        "key_text",
        "public-crlf",
        sk.public().to_text().replace('\n', "\r\n").as_bytes(),
    );
    write("hex", "hash", Hash::of(b"shoal").to_hex().as_bytes());
    write(
        "hex",
        "upper",
        Hash::of(b"x").to_hex().to_uppercase().as_bytes(),
    );
    for (i, p) in [
        "bin/app",
        "etc/app/config.toml",
        "..a/b.c",
        "a/../b",
        "/etc/passwd",
    ]
    .iter()
    .enumerate()
    {
        write("path", &i.to_string(), p.as_bytes());
    }

    // frames: cap selector 0 (4096), two cuts of 3 and 5 bytes, then a stream.
    let mut stream = vec![0u8, 2, 3, 5];
    stream.extend(encode_frame(b"hello", 4096).unwrap());
    stream.extend(encode_frame(b"", 4096).unwrap());
    stream.extend(encode_frame(&[9; 300], 4096).unwrap());
    write("frame", "three", &stream);
    let mut refused = vec![2u8, 0];
    refused.extend(encode_frame(b"0123456789", 16).unwrap());
    refused.extend(100u32.to_le_bytes());
    write("frame", "over-cap", &refused);

    // wan: byte 0 even for a request, odd for a response, then the message.
    let wan = |name: &str, which: u8, msg: Vec<u8>| {
        let mut b = vec![which];
        b.extend(msg);
        write("wan", name, &b);
    };
    let requests = [
        Request::Enrol {
            device_type: DEVICE_TYPE.into(),
            site: SITE.into(),
            inventory: vec![("os".into(), "1.2".into())],
        },
        Request::GetAdmission,
        Request::GetHead,
        Request::GetRoots { after: 1 },
        Request::GetRelease { id: Hash::of(b"r") },
        Request::GetChunks {
            hashes: vec![Hash::of(b"a"), Hash::of(b"b")],
        },
        Request::ReportStatus(StatusReport {
            state: DeviceState::Failure,
            release: Some(Hash::of(b"r")),
            done_bytes: 10,
            total_bytes: 20,
            bytes: BytesBySource {
                local: 1,
                wan: 2,
                lan: 3,
            },
            error: Some("disk full".into()),
            head_expires_at: Some(NOW + 60),
            inventory: vec![],
        }),
    ];
    for (i, r) in requests.iter().enumerate() {
        wan(&format!("request-{i}"), 0, r.encode().unwrap());
    }
    let responses = [
        Response::Enrolled(Enrolment::Pending),
        Response::Admission(envelope_bytes(&adm, online)),
        Response::Head(envelope_bytes(&head, online)),
        Response::NoDeployment,
        Response::Release(envelope_bytes(&rel, fx.signers(Role::Release))),
        Response::Chunk {
            hash: Hash::of(b"abc"),
            data: b"abc".to_vec(),
        },
        Response::NotFound {
            hash: Hash::of(b"x"),
        },
        Response::End,
        Response::Ack,
        Response::Refused {
            state: Some(Enrolment::Rejected),
        },
        Response::Error {
            message: "no".into(),
        },
        Response::Roots(vec![SignedBytes(envelope_bytes(&v2, &signers))]),
        Response::Roots(vec![]),
    ];
    for (i, r) in responses.iter().enumerate() {
        wan(&format!("response-{i}"), 1, r.encode().unwrap());
    }

    // lan: byte 0 picks request (0), response (1) or intro (2), then the message.
    let lan = |name: &str, which: u8, msg: Vec<u8>| {
        let mut b = vec![which];
        b.extend(msg);
        write("lan", name, &b);
    };
    let r = Hash::of(b"r");
    let adm_bytes = envelope_bytes(&adm, online);
    let lan_requests = [
        lan::Request::Hello {
            admission: adm_bytes.clone(),
        },
        lan::Request::Subscribe { release: r },
        lan::Request::GetChunks {
            release: r,
            hashes: vec![Hash::of(b"a"), Hash::of(b"b")],
        },
        lan::Request::GetHead,
        lan::Request::GetRelease { id: r },
    ];
    for (i, q) in lan_requests.iter().enumerate() {
        lan(&format!("request-{i}"), 0, q.encode().unwrap());
    }
    let lan_responses = [
        lan::Response::Hello {
            admission: adm_bytes.clone(),
        },
        lan::Response::Refused {
            reason: "another site".into(),
        },
        lan::Response::HaveMap {
            release: r,
            wan: true,
            chunks: 11,
            bits: vec![0b1010_0101, 0b101],
        },
        lan::Response::Have {
            release: r,
            index: 3,
        },
        lan::Response::Unknown { release: r },
        lan::Response::Chunk {
            hash: Hash::of(b"abc"),
            data: b"abc".to_vec(),
        },
        lan::Response::NotFound {
            hash: Hash::of(b"x"),
        },
        lan::Response::End,
        lan::Response::Head(envelope_bytes(&head, online)),
        lan::Response::NoHead,
        lan::Response::Release(envelope_bytes(&rel, fx.signers(Role::Release))),
    ];
    for (i, q) in lan_responses.iter().enumerate() {
        lan(&format!("response-{i}"), 1, q.encode().unwrap());
    }
    let intro = lan::Intro {
        admission: adm_bytes,
        xfer_port: 7700,
    };
    lan("intro", 2, intro.encode().unwrap());

    // chunker: three blocks (1, 700, 1500 bytes), then the file.
    let mut chunked = vec![3u8];
    for len in [1u16, 700, 1500] {
        chunked.extend(len.to_le_bytes());
    }
    chunked.extend(&content);
    write("chunker", "blocks", &chunked);
    // the larger profile (top bit), over 40 KiB: chunks that span several tiles
    let mut tiled = vec![0x80 | 3u8];
    for len in [4000u16, 100, 3000] {
        tiled.extend(len.to_le_bytes());
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    tiled.extend((0..40_000).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 32) as u8
    }));
    write("chunker", "tiled", &tiled);
}

trait CloneKey {
    fn clone_key(&self) -> SecretKey;
}

impl CloneKey for SecretKey {
    fn clone_key(&self) -> SecretKey {
        SecretKey::from_seed(self.seed())
    }
}
