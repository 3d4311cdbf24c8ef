//! Frames on QUIC streams: a `u32` length, then the message (`shoal_core::frame`). The
//! length is checked against the cap before a byte of the body is read.

use shoal_core::frame::{FrameError, HEADER_LEN, encode_frame, frame_len};

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the stream ended inside a frame")]
    Truncated,
    #[error("stream read failed: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("stream write failed: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
}

/// Writes one frame.
pub async fn write_frame(
    send: &mut quinn::SendStream,
    body: &[u8],
    cap: usize,
) -> Result<(), StreamError> {
    let frame = encode_frame(body, cap)?;
    send.write_all(&frame).await?;
    Ok(())
}

/// Reads one frame's body, or `None` if the stream ended cleanly before a new frame.
pub async fn read_frame(
    recv: &mut quinn::RecvStream,
    cap: usize,
) -> Result<Option<Vec<u8>>, StreamError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match recv.read(&mut header[got..]).await? {
            Some(n) => got += n,
            None if got == 0 => return Ok(None),
            None => return Err(StreamError::Truncated),
        }
    }
    let len = frame_len(header, cap)?;
    // Grow with what arrives, not with what the header claims.
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    while body.len() < len {
        match recv.read_chunk(len - body.len(), true).await? {
            Some(chunk) => body.extend_from_slice(&chunk.bytes),
            None => return Err(StreamError::Truncated),
        }
    }
    Ok(Some(body))
}
