//! Frames on QUIC streams: a `u32` length, then the message (`shoal_core::frame`). The
//! length is checked against the cap before a byte of the body is read.

use crate::chunk_buf::ChunkBuf;
use shoal_core::Hash;
use shoal_core::codec::DecodeError;
use shoal_core::frame::{FrameError, HEADER_LEN, encode_frame, frame_len};
use shoal_core::wan::{CHUNK_FRAME_PREFIX, Response};

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
    #[error("the other end sent a malformed message: {0}")]
    Decode(#[from] shoal_core::codec::DecodeError),
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

/// Reads `len` more bytes onto `out`.
async fn read_onto(
    recv: &mut quinn::RecvStream,
    out: &mut Vec<u8>,
    len: usize,
) -> Result<(), StreamError> {
    let end = out.len() + len;
    while out.len() < end {
        match recv.read_chunk(end - out.len(), true).await? {
            Some(chunk) => out.extend_from_slice(&chunk.bytes),
            None => return Err(StreamError::Truncated),
        }
    }
    Ok(())
}

/// Reads exactly `out.len()` bytes into `out`.
async fn read_into(recv: &mut quinn::RecvStream, out: &mut [u8]) -> Result<(), StreamError> {
    let mut got = 0;
    while got < out.len() {
        match recv.read(&mut out[got..]).await? {
            Some(n) => got += n,
            None => return Err(StreamError::Truncated),
        }
    }
    Ok(())
}

/// One frame: a chunk, read straight into a pooled buffer, or any other message's body.
#[derive(Debug)]
pub enum Frame {
    Chunk { hash: Hash, data: ChunkBuf },
    Body(Vec<u8>),
}

/// How a protocol recognises its chunk frames (`shoal_core::wan::chunk_head`,
/// `shoal_core::lan::chunk_head`).
pub type ChunkHead = fn(&[u8], usize) -> Result<Option<(Hash, usize)>, DecodeError>;

/// Reads one frame, or `None` at the stream's clean end. A chunk's data is read
/// straight into a pooled buffer (chunks are most of the bytes: no second copy, and no
/// fresh pages).
pub async fn read_frame(
    recv: &mut quinn::RecvStream,
    cap: usize,
    chunk_head: ChunkHead,
) -> Result<Option<Frame>, StreamError> {
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
    const HEAD: usize = CHUNK_FRAME_PREFIX - HEADER_LEN;
    let mut head = Vec::with_capacity(len.min(HEAD));
    read_onto(recv, &mut head, len.min(HEAD)).await?;
    if let Some((hash, data_len)) = chunk_head(&head, len)? {
        // every byte is overwritten before the buffer is handed on (or it is dropped)
        let mut data = ChunkBuf::with_len(data_len);
        read_into(recv, data.as_mut_slice()).await?;
        return Ok(Some(Frame::Chunk { hash, data }));
    }
    let rest = len - head.len();
    read_onto(recv, &mut head, rest).await?;
    Ok(Some(Frame::Body(head)))
}

/// A response as the node reads it: a chunk's bytes stay in their pooled buffer, any
/// other message is decoded.
#[derive(Debug)]
pub enum Answer<R> {
    Chunk { hash: Hash, data: ChunkBuf },
    Message(R),
}

/// Reads one response of a protocol (its chunk frames recognised by `chunk_head`, its
/// other messages decoded by `decode`), or `None` at the stream's clean end.
pub async fn read_answer<R>(
    recv: &mut quinn::RecvStream,
    cap: usize,
    chunk_head: ChunkHead,
    decode: impl FnOnce(&[u8]) -> Result<R, DecodeError>,
) -> Result<Option<Answer<R>>, StreamError> {
    Ok(match read_frame(recv, cap, chunk_head).await? {
        None => None,
        Some(Frame::Chunk { hash, data }) => Some(Answer::Chunk { hash, data }),
        Some(Frame::Body(body)) => Some(Answer::Message(decode(&body)?)),
    })
}

/// Reads one `shoal-wan/1` response, or `None` at the stream's clean end.
pub async fn read_response(
    recv: &mut quinn::RecvStream,
    cap: usize,
) -> Result<Option<Answer<Response>>, StreamError> {
    read_answer(recv, cap, shoal_core::wan::chunk_head, Response::decode).await
}
