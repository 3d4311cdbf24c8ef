//! The LAN protocol `/shoal/xfer/1` and its discovery intro, on any bytes: what a
//! hostile peer can send. `lan::Request::decode` (what a serving node reads),
//! `lan::Response::decode` and its fast path `lan::chunk_head` (what a fetching node
//! reads), the have-map a response carries read as the node reads it
//! (`Bitset::from_bytes`), and `lan::Intro::decode`.
//!
//! Byte 0 picks the decoder (0 mod 3: request, 1: response, 2: intro); the rest is the
//! message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::frame::encode_frame;
use shoal_core::lan::{
    Intro, MAX_CHUNKS_PER_REQUEST, MAX_TEXT, RESPONSE_CAP, Request, Response, chunk_frame_prefix,
};
use shoal_core::plan::Bitset;
use shoal_core::release::MAX_CHUNK_LEN;
use shoal_core::{Admission, Head, Release};
use shoal_core_fuzz::{Decoded, check_chunk_head, envelope};

fuzz_target!(|data: &[u8]| {
    let Some((&which, msg)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => request(msg),
        1 => response(msg),
        _ => intro(msg),
    }
});

fn admission(bytes: &[u8]) {
    if let Some((_, Some(adm))) = envelope::<Admission>(bytes) {
        let _ = adm.check_structure();
    }
}

fn request(msg: &[u8]) {
    let Ok(r) = Request::decode(msg) else {
        return;
    };
    let again = r.encode().expect("a decoded request re-encodes");
    assert!(again == msg, "request round trip changed the bytes");
    match &r {
        Request::GetChunks { hashes, .. } => assert!(hashes.len() <= MAX_CHUNKS_PER_REQUEST),
        Request::Hello { admission: a } => admission(a),
        _ => {}
    }
}

fn response(msg: &[u8]) {
    let r = Response::decode(msg);
    check_chunk_head(
        msg,
        shoal_core::lan::chunk_head,
        match &r {
            Ok(Response::Chunk { hash, data }) => Decoded::Chunk(*hash, data.len()),
            Ok(_) => Decoded::Other,
            Err(_) => Decoded::Refused,
        },
    );
    let Ok(r) = r else {
        return;
    };
    let again = r.encode().expect("a decoded response re-encodes");
    assert!(again == msg, "response round trip changed the bytes");
    match &r {
        Response::Hello { admission: a } => admission(a),
        Response::Refused { reason } => assert!(reason.len() <= MAX_TEXT),
        Response::HaveMap { chunks, bits, .. } => {
            // what the node does with it: a map of exactly `chunks` bits
            let map = Bitset::from_bytes(bits, *chunks as usize)
                .expect("a have-map that decodes is one the node can read");
            assert_eq!(map.len(), *chunks as usize);
            assert_eq!(map.as_bytes(), &bits[..]);
        }
        Response::Head(b) => {
            let _ = envelope::<Head>(b);
        }
        Response::Release(b) => {
            if let Some((_, Some(rel))) = envelope::<Release>(b) {
                let _ = rel.check_structure();
            }
        }
        Response::Chunk { hash, data } => {
            assert!(data.len() <= MAX_CHUNK_LEN as usize);
            let mut sent = chunk_frame_prefix(hash, data.len()).to_vec();
            sent.extend_from_slice(data);
            assert_eq!(
                sent,
                encode_frame(msg, RESPONSE_CAP).expect("under the cap")
            );
        }
        _ => {}
    }
}

fn intro(msg: &[u8]) {
    let Ok(i) = Intro::decode(msg) else {
        return;
    };
    let again = i.encode().expect("a decoded intro re-encodes");
    assert!(again == msg, "intro round trip changed the bytes");
    admission(&i.admission);
}
