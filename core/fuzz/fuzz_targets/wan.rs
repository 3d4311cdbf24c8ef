//! The WAN protocol messages: `wan::Request::decode`, `wan::Response::decode` and its
//! fast path `wan::chunk_head` on any bytes, and the signed documents a response
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
use shoal_core::wan::{MAX_ROOTS_PER_ANSWER, ROOT_ENVELOPE_CAP};
use shoal_core::{Admission, Head, Release, Root};
use shoal_core_fuzz::{Decoded, check_chunk_head, envelope};

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
    check_chunk_head(
        msg,
        shoal_core::wan::chunk_head,
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
        Response::Roots(roots) => {
            assert!(roots.len() <= MAX_ROOTS_PER_ANSWER);
            // what a device does with them: decode each, walk them from the fixed root
            let mut chain = Vec::new();
            for r in roots {
                assert!(r.0.len() <= ROOT_ENVELOPE_CAP);
                if let Ok(s) = shoal_core::root::decode_root(&r.0) {
                    chain.push(s);
                }
                let _ = envelope::<Root>(&r.0);
            }
            let fx = shoal_core_fuzz::fixture();
            if let Ok(newest) =
                shoal_core::verify_root_chain(&fx.root, &chain, shoal_core_fuzz::NOW)
            {
                assert_eq!(newest.version, fx.root.version + chain.len() as u64);
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
