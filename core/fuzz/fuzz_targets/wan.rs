//! The WAN protocol messages: `wan::Request::decode`, `wan::Response::decode` and its
//! fast path `Response::decode_owned` on any bytes, and the signed documents a response
//! carries.
//!
//! Byte 0 picks the decoder (even: request, odd: response); the rest is the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::frame::encode_frame;
use shoal_core::release::MAX_CHUNK_LEN;
use shoal_core::wan::{
    MAX_CHUNKS_PER_REQUEST, RESPONSE_CAP, Request, Response, chunk_frame_prefix,
};
use shoal_core::{Admission, Head, Release};
use shoal_core_fuzz::envelope;

fuzz_target!(|data: &[u8]| {
    let Some((&which, msg)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        request(msg);
    } else {
        response(msg);
    }
});

fn request(msg: &[u8]) {
    let Ok(r) = Request::decode(msg) else {
        return;
    };
    let again = r.encode().expect("a decoded request re-encodes");
    assert!(again == msg, "request round trip changed the bytes");
    if let Request::GetChunks { hashes } = &r {
        assert!(hashes.len() <= MAX_CHUNKS_PER_REQUEST);
    }
}

fn response(msg: &[u8]) {
    let r = Response::decode(msg);
    // The fast path must accept exactly what the codec accepts, as the same value.
    let owned = Response::decode_owned(msg.to_vec());
    match (&r, &owned) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("decode and decode_owned disagree: {r:?} / {owned:?}"),
    }
    let Ok(r) = r else {
        return;
    };
    let again = r.encode().expect("a decoded response re-encodes");
    assert!(again == msg, "response round trip changed the bytes");
    // What a device does next with the documents inside.
    match &r {
        Response::Admission(b) => {
            if let Some((_, Some(adm))) = envelope::<Admission>(b) {
                let _ = adm.check_structure();
            }
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
            // The zero-copy sender's prefix plus the data is the encoded frame.
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
