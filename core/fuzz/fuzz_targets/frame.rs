//! Frames: `FrameReader` fed a stream cut at fuzzer-chosen points, and `frame_len`.
//!
//! Input: byte 0 picks the cap, byte 1 the number of cuts, then one byte per piece
//! length (0 is an empty push); the rest is the stream. The frames that come out must
//! be those a one-shot parse of the whole stream finds, and the reader must never hold
//! much more than the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::frame::{FrameReader, HEADER_LEN, encode_frame, frame_len};

const CAPS: [usize; 4] = [4096, 255, 16, 0];
/// Slack allowed over the cap in `buffered()`: the header, and `Vec`'s smallest
/// growth step.
const SLACK: usize = 16;

/// The most `buffered()` may report: the cap, plus `SLACK` for the header bytes.
fn bound(cap: usize) -> usize {
    cap + SLACK
}

/// What a one-shot parse finds: the whole frames, and whether a header over the cap
/// ends the stream.
fn reference(mut s: &[u8], cap: usize) -> (Vec<Vec<u8>>, bool) {
    let mut frames = Vec::new();
    while s.len() >= HEADER_LEN {
        let len = u32::from_le_bytes(s[..HEADER_LEN].try_into().unwrap()) as usize;
        if len > cap {
            return (frames, true);
        }
        if s.len() - HEADER_LEN < len {
            break;
        }
        frames.push(s[HEADER_LEN..HEADER_LEN + len].to_vec());
        s = &s[HEADER_LEN + len..];
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cap = CAPS[usize::from(data[0] & 3)];
    let cuts = usize::from(data[1] % 32).min(data.len() - 2);
    let (pieces, stream) = data[2..].split_at(cuts);

    if stream.len() >= HEADER_LEN {
        let h: [u8; HEADER_LEN] = stream[..HEADER_LEN].try_into().unwrap();
        let want = u32::from_le_bytes(h) as usize;
        match frame_len(h, cap) {
            Ok(len) => assert!(len == want && len <= cap),
            Err(_) => assert!(want > cap),
        }
    }

    let (expected, refused) = reference(stream, cap);
    let mut reader = FrameReader::new(cap);
    let mut got = Vec::new();
    let mut rest = stream;
    let mut failed = false;
    let mut i = 0;
    loop {
        // The listed piece lengths, then the remainder in one push.
        let n = match pieces.get(i) {
            Some(&n) => usize::from(n).min(rest.len()),
            None => rest.len(),
        };
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        let r = reader.push(piece);
        assert!(
            reader.buffered() <= bound(cap),
            "buffered {} with cap {cap}",
            reader.buffered()
        );
        while let Some(f) = reader.pop() {
            got.push(f);
        }
        if r.is_err() {
            failed = true;
            break;
        }
        if i >= pieces.len() {
            break;
        }
        i += 1;
    }
    assert_eq!(
        failed, refused,
        "refused a stream that fits, or the reverse"
    );
    assert_eq!(got, expected);
    for f in &got {
        let enc = encode_frame(f, cap).expect("a frame read under the cap encodes under it");
        assert_eq!(enc.len(), HEADER_LEN + f.len());
    }
});
