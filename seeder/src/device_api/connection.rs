//! One device connection: who it is, its limits, and one task per request stream.

use super::handler;
use super::{DeviceApi, Misbehave};
use shoal_core::PublicKey;
use shoal_core::frame::{FrameError, HEADER_LEN, encode_frame, frame_len};
use shoal_core::wan::{REQUEST_CAP, RESPONSE_CAP, Request, Response};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::{debug, info, warn};

/// Application close codes on the device connection.
pub mod close {
    pub const SHUTDOWN: u32 = 0;
    pub const TOO_MANY_CONNECTIONS: u32 = 1;
    pub const PROTOCOL_VIOLATION: u32 = 2;
    pub const NO_IDENTITY: u32 = 3;
}

/// Why a stream made us cut the whole connection off.
#[derive(Debug, thiserror::Error)]
enum Fault {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("{0} requests timed out on this connection")]
    TooSlow(u32),
}

pub async fn handle(api: Arc<DeviceApi>, incoming: quinn::Incoming) {
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            debug!("handshake failed: {e}");
            return;
        }
    };
    let Some(key) = peer_key(&conn) else {
        conn.close(close::NO_IDENTITY.into(), b"no device certificate");
        return;
    };
    let id = key.key_id();
    {
        let Ok(mut open) = api.open.lock() else {
            return;
        };
        let n = open.entry(id).or_default();
        if *n >= api.limits.connections_per_device {
            drop(open);
            info!(device = %id.short(), "refused: too many connections");
            api.counters.connections_cut.fetch_add(1, Ordering::Relaxed);
            conn.close(close::TOO_MANY_CONNECTIONS.into(), b"too many connections");
            return;
        }
        *n += 1;
    }
    debug!(device = %id.short(), remote = %conn.remote_address(), "connected");
    let timeouts = Arc::new(std::sync::atomic::AtomicU32::new(0));
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => break,
        };
        let api = Arc::clone(&api);
        let conn2 = conn.clone();
        let timeouts = Arc::clone(&timeouts);
        tokio::spawn(async move {
            if let Err(fault) = serve_stream(&api, key, send, recv, &timeouts).await {
                warn!(device = %key.key_id().short(), "cut off: {fault}");
                api.counters.connections_cut.fetch_add(1, Ordering::Relaxed);
                conn2.close(
                    close::PROTOCOL_VIOLATION.into(),
                    fault.to_string().as_bytes(),
                );
            }
        });
    }
    let stats = conn.stats();
    debug!(
        device = %id.short(),
        sent_bytes = stats.udp_tx.bytes,
        sent_datagrams = stats.udp_tx.datagrams,
        mtu = stats.path.current_mtu,
        probes_sent = stats.path.sent_plpmtud_probes,
        probes_lost = stats.path.lost_plpmtud_probes,
        black_holes = stats.path.black_holes_detected,
        lost_packets = stats.path.lost_packets,
        congestion_events = stats.path.congestion_events,
        "disconnected"
    );
    if let Ok(mut open) = api.open.lock()
        && let Some(n) = open.get_mut(&id)
    {
        *n -= 1;
        if *n == 0 {
            open.remove(&id);
        }
    }
}

fn peer_key(conn: &quinn::Connection) -> Option<PublicKey> {
    let identity = conn.peer_identity()?;
    let certs = identity
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    super::tls::device_key(certs.first()?)
}

/// Reads one request, answers it, finishes the stream. A request over its cap or
/// malformed is a fault that ends the connection; a slow or vanished client only ends
/// its own stream.
async fn serve_stream(
    api: &Arc<DeviceApi>,
    key: PublicKey,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    timeouts: &std::sync::atomic::AtomicU32,
) -> Result<(), Fault> {
    let frame =
        match tokio::time::timeout(api.limits.request_timeout, read_request(&mut recv)).await {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => {
                let _ = send.reset(0u32.into());
                return Ok(());
            }
            Err(_) => {
                // A stream held open without a whole request: fine once, but a device
                // that keeps doing it is holding slots others could use.
                let _ = send.reset(0u32.into());
                let n = timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                if n >= api.limits.timeouts_per_connection {
                    return Err(Fault::TooSlow(n));
                }
                return Ok(());
            }
            Ok(Err(fault)) => return Err(fault),
        };
    let request = match Request::decode(&frame) {
        Ok(r) => r,
        Err(e) => {
            let _ = write(
                &mut send,
                &Response::Error {
                    message: e.to_string(),
                },
            )
            .await;
            return Err(Fault::Malformed(e.to_string()));
        }
    };
    let now = crate::time::now();
    let outcome = match request {
        Request::GetChunks { hashes } => serve_chunks(api, key, hashes, &mut send).await,
        other => {
            let api2 = Arc::clone(api);
            let responses =
                tokio::task::spawn_blocking(move || handler::handle(&api2, key, other, now))
                    .await
                    .unwrap_or_else(|e| {
                        vec![Response::Error {
                            message: format!("internal error: {e}"),
                        }]
                    });
            let mut r = Ok(());
            for response in &responses {
                r = write(&mut send, response).await;
                if r.is_err() {
                    break;
                }
            }
            r
        }
    };
    if outcome.is_ok() {
        let _ = send.finish();
    }
    Ok(())
}

/// Chunks are read one at a time and written as they are read, so one request holds
/// at most one chunk in memory.
async fn serve_chunks(
    api: &Arc<DeviceApi>,
    key: PublicKey,
    hashes: Vec<shoal_core::Hash>,
    send: &mut quinn::SendStream,
) -> Result<(), ()> {
    let id = key.key_id();
    let api2 = Arc::clone(api);
    let admitted = tokio::task::spawn_blocking(move || handler::admitted(&api2, id))
        .await
        .unwrap_or(Err(Response::Error {
            message: "internal error".into(),
        }));
    if let Err(refusal) = admitted {
        return write(send, &refusal).await;
    }
    for hash in hashes {
        // Read inline rather than on the blocking pool: a chunk is at most 4 MiB and
        // normally in the page cache, and a hop to the pool per chunk cost more (in
        // thread wake-ups) than the read itself.
        let data = api.store.serve_chunk(hash);
        let response = match data {
            Ok(Some(mut data)) => {
                match api.misbehave {
                    Some(Misbehave::FlipByte) if !data.is_empty() => data[0] ^= 1,
                    Some(Misbehave::LongChunk) => data.extend_from_slice(&[0u8; 100]),
                    Some(Misbehave::EndlessChunk) => return endless(send, &hash).await,
                    _ => {}
                }
                api.counters
                    .chunk_bytes_served
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                api.counters.chunks_served.fetch_add(1, Ordering::Relaxed);
                // The frame's head, then the data handed over without a copy.
                let prefix = shoal_core::wan::chunk_frame_prefix(&hash, data.len());
                send.write_all(&prefix).await.map_err(|_| ())?;
                send.write_chunk(bytes::Bytes::from(data))
                    .await
                    .map_err(|_| ())?;
                continue;
            }
            Ok(None) => Response::NotFound { hash },
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        };
        write(send, &response).await?;
    }
    write(send, &Response::End).await
}

/// A chunk frame announcing 2 GiB, then zeros until the device gives up (hostile
/// tests only).
async fn endless(send: &mut quinn::SendStream, hash: &shoal_core::Hash) -> Result<(), ()> {
    let mut prefix = shoal_core::wan::chunk_frame_prefix(hash, 0);
    prefix[..4].copy_from_slice(&(2u32 << 30).to_le_bytes());
    send.write_all(&prefix).await.map_err(|_| ())?;
    let zeros = vec![0u8; 64 * 1024];
    loop {
        send.write_all(&zeros).await.map_err(|_| ())?;
    }
}

async fn read_request(recv: &mut quinn::RecvStream) -> Result<Option<Vec<u8>>, Fault> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match recv.read(&mut header[got..]).await {
            Ok(Some(n)) => got += n,
            Ok(None) | Err(_) => return Ok(None),
        }
    }
    // The cap is checked here, before anything is reserved for the body.
    let len = frame_len(header, REQUEST_CAP)?;
    let mut body = Vec::with_capacity(len);
    while body.len() < len {
        match recv.read_chunk(len - body.len(), true).await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk.bytes),
            Ok(None) | Err(_) => return Ok(None),
        }
    }
    Ok(Some(body))
}

async fn write(send: &mut quinn::SendStream, response: &Response) -> Result<(), ()> {
    let body = response.encode().map_err(|_| ())?;
    let frame = encode_frame(&body, RESPONSE_CAP).map_err(|_| ())?;
    send.write_all(&frame).await.map_err(|_| ())
}
