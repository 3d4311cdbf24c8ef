//! Buffers for chunk bytes, reused from a small pool.
//!
//! Every chunk a node serves is read into a buffer that QUIC holds until the peer
//! acknowledges it, and every chunk it fetches is received into one that lives until
//! it is written: about 13,000 buffers of 16 to 256 KiB per GiB each way. Fresh
//! allocations of that size come from the kernel as fresh pages, so each cost a page
//! fault per 4 KiB and the zeroing of `vec![0; n]` (measured on the LAN benchmark: a
//! sixth of the fetching side's CPU time went to page faults on chunk buffers, and 5%
//! of the serving side's to zeroing them). A buffer returns to the pool when its
//! last owner drops it, and is handed out again with its old bytes: whoever fills it
//! overwrites every byte it exposes (`with_len` documents that contract).

use std::sync::{Mutex, OnceLock};

/// Buffers are pooled by capacity: powers of two from this up.
const SMALLEST: usize = 4 * 1024;
/// Larger chunks (possible in profiles with a larger max) are not pooled.
const LARGEST: usize = 1024 * 1024;
const CLASSES: usize = (LARGEST / SMALLEST).trailing_zeros() as usize + 1;
/// The bytes the pool keeps at most, so that a burst does not stay resident.
const POOL_BYTES: usize = 32 * 1024 * 1024;

#[derive(Default)]
struct Pool {
    free: [Vec<Vec<u8>>; CLASSES],
    bytes: usize,
}

fn pool() -> &'static Mutex<Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    POOL.get_or_init(Mutex::default)
}

fn class(capacity: usize) -> Option<usize> {
    (capacity.is_power_of_two() && (SMALLEST..=LARGEST).contains(&capacity))
        .then(|| (capacity / SMALLEST).trailing_zeros() as usize)
}

/// The bytes of one chunk, in a pooled buffer.
pub struct ChunkBuf {
    /// Always fully initialised; `len` of it are the chunk's.
    buf: Vec<u8>,
    len: usize,
}

impl ChunkBuf {
    /// A buffer of `len` bytes whose content is unspecified (old bytes of another
    /// chunk, or zeros): the caller must overwrite all `len` of them before it shows
    /// them to anyone, or drop the buffer.
    pub fn with_len(len: usize) -> ChunkBuf {
        let capacity = len.next_power_of_two().max(SMALLEST);
        let reused = class(capacity).and_then(|c| {
            let mut p = pool().lock().unwrap_or_else(|e| e.into_inner());
            let buf = p.free[c].pop()?;
            p.bytes -= buf.len();
            Some(buf)
        });
        let buf = reused.unwrap_or_else(|| vec![0u8; capacity.max(len)]);
        ChunkBuf { buf, len }
    }

    /// A buffer holding a copy of `bytes`.
    pub fn copy_of(bytes: &[u8]) -> ChunkBuf {
        let mut b = ChunkBuf::with_len(bytes.len());
        b.as_mut_slice().copy_from_slice(bytes);
        b
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

impl std::ops::Deref for ChunkBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl AsRef<[u8]> for ChunkBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for ChunkBuf {
    fn eq(&self, other: &ChunkBuf) -> bool {
        self[..] == other[..]
    }
}

impl Eq for ChunkBuf {}

impl std::fmt::Debug for ChunkBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkBuf({} bytes)", self.len)
    }
}

impl From<ChunkBuf> for bytes::Bytes {
    /// Hands the buffer to QUIC without a copy; it comes back to the pool once the
    /// peer has acknowledged its bytes.
    fn from(b: ChunkBuf) -> bytes::Bytes {
        bytes::Bytes::from_owner(b)
    }
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        let Some(c) = class(self.buf.len()) else {
            return;
        };
        let mut p = pool().lock().unwrap_or_else(|e| e.into_inner());
        if p.bytes + self.buf.len() <= POOL_BYTES {
            p.bytes += self.buf.len();
            p.free[c].push(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_shows_its_length_and_is_reused() {
        let mut a = ChunkBuf::with_len(70_000);
        assert_eq!(a.len(), 70_000);
        a.as_mut_slice().fill(7);
        let at = a.buf.as_ptr();
        drop(a);
        // the same class (128 KiB): the pooled buffer comes back, with its old bytes
        let b = ChunkBuf::with_len(100_000);
        assert_eq!(b.len(), 100_000);
        assert_eq!(b.buf.len(), 128 * 1024);
        assert_eq!(b.buf.as_ptr(), at);
        assert_eq!(ChunkBuf::copy_of(b"abc")[..], b"abc"[..]);
    }

    #[test]
    fn huge_and_empty_buffers_work_unpooled() {
        let big = ChunkBuf::with_len(3 * 1024 * 1024);
        assert_eq!(big.len(), 3 * 1024 * 1024);
        assert_eq!(class(big.buf.len()), None);
        let empty = ChunkBuf::with_len(0);
        assert!(empty.is_empty());
    }
}
