//! The server side of `/shoal/xfer/1`: admission first, then have-maps on the control
//! stream, chunks and relayed documents on streams of their own. The protocol is
//! specified in `shoal_core::lan`.

use super::share::Change;
use super::{Ctx, Misbehave};
use crate::wan::stream::{Frame, StreamError, read_frame, write_frame};
use shoal_core::lan::{REQUEST_CAP, RESPONSE_CAP, Request, Response, chunk_frame_prefix};
use shoal_core::{DeviceId, Hash};
use std::sync::Arc;
use tracing::{debug, info};

/// How long a client has to present its admission.
const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The application close code of a connection whose peer's admission expired.
pub const ADMISSION_EXPIRED: quinn::VarInt = quinn::VarInt::from_u32(4);
/// The longest the expiry timer sleeps before it looks at the wall clock again.
const EXPIRY_CHECK: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long until an admission that expires at `expires_at` (unix seconds) has, at
/// most [`EXPIRY_CHECK`].
fn until_expiry(expires_at: u64) -> std::time::Duration {
    let left = expires_at.saturating_sub(super::now_secs());
    std::time::Duration::from_secs(left).min(EXPIRY_CHECK)
}

/// Accepts connections until the endpoint closes.
pub async fn accept_loop(ctx: Arc<Ctx>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        if !ctx.serve || ctx.connections() >= super::MAX_CONNECTIONS {
            // CONNECTION_REFUSED, at once and before any handshake: the dialer learns
            // that it need not wait for this node
            incoming.refuse();
            continue;
        }
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            let _guard = ctx.count_connection();
            if let Err(e) = serve_connection(&ctx, &conn).await {
                debug!(peer = %conn.remote_address(), "LAN connection ended: {e}");
            }
        });
    }
}

/// Answers `Refused` on the control stream and closes the connection; the refusal is
/// counted and kept under the device id of the peer's certificate.
async fn refuse(ctx: &Ctx, send: &mut quinn::SendStream, conn: &quinn::Connection, reason: String) {
    info!(peer = %conn.remote_address(), "refused a LAN peer: {reason}");
    let id = super::tls::peer_key(conn).map(|k| k.key_id());
    ctx.counters.refusal(id, &reason);
    if let Ok(body) = (Response::Refused { reason }).encode() {
        let _ = write_frame(send, &body, RESPONSE_CAP).await;
    }
    let _ = send.finish();
    // let the refusal reach the peer before the connection goes
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), send.stopped()).await;
    conn.close(1u32.into(), b"not admitted");
}

async fn read_request(recv: &mut quinn::RecvStream) -> Result<Option<Request>, StreamError> {
    match read_frame(recv, REQUEST_CAP, |_, _| Ok(None)).await? {
        None => Ok(None),
        Some(Frame::Body(b)) => Ok(Some(Request::decode(&b)?)),
        Some(Frame::Chunk { .. }) => Ok(None),
    }
}

async fn serve_connection(ctx: &Arc<Ctx>, conn: &quinn::Connection) -> Result<(), StreamError> {
    let (mut send, mut recv) = match tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(s)) => s,
        _ => {
            let id = super::tls::peer_key(conn).map(|k| k.key_id());
            ctx.counters.refusal(id, "no stream for the Hello");
            conn.close(1u32.into(), b"no hello");
            return Ok(());
        }
    };
    let hello = tokio::time::timeout(HELLO_TIMEOUT, read_request(&mut recv)).await;
    let admitted = match hello {
        Ok(Ok(Some(Request::Hello { admission }))) => match ctx.check_peer(conn, &admission) {
            Ok(a) => a,
            Err(reason) => {
                refuse(ctx, &mut send, conn, reason).await;
                return Ok(());
            }
        },
        Ok(Ok(_)) => {
            refuse(
                ctx,
                &mut send,
                conn,
                "the first message must be Hello".into(),
            )
            .await;
            return Ok(());
        }
        _ => {
            refuse(ctx, &mut send, conn, "no valid Hello".into()).await;
            return Ok(());
        }
    };
    let peer = admitted.id;
    // held for as long as the connection is served
    let Some(_slot) = ctx
        .per_peer
        .take(peer, conn.clone(), super::MAX_CONNECTIONS_PER_PEER)
    else {
        refuse(
            ctx,
            &mut send,
            conn,
            format!(
                "{} already holds {} connections to this node",
                peer.short(),
                super::MAX_CONNECTIONS_PER_PEER
            ),
        )
        .await;
        return Ok(());
    };
    // a ban between the check and the slot: `Ctx::ban` did not see this connection
    if ctx.is_banned(&peer) {
        refuse(ctx, &mut send, conn, format!("{} is banned", peer.short())).await;
        return Ok(());
    }
    let Some(mine) = ctx.shared.admission() else {
        refuse(
            ctx,
            &mut send,
            conn,
            "this node has no admission yet".into(),
        )
        .await;
        return Ok(());
    };
    write_frame(
        &mut send,
        &(Response::Hello { admission: mine })
            .encode()
            .map_err(enc)?,
        RESPONSE_CAP,
    )
    .await?;
    debug!(peer = %peer.short(), "LAN peer admitted");
    {
        let ctx = Arc::clone(ctx);
        tokio::spawn(async move {
            let _ = control(&ctx, send, recv).await;
        });
    }
    // The admission was checked once, at the Hello; a connection must not outlive it.
    let expiry = tokio::time::sleep(until_expiry(admitted.expires_at));
    tokio::pin!(expiry);
    loop {
        let (send, recv) = tokio::select! {
            s = conn.accept_bi() => match s {
                Ok(s) => s,
                Err(_) => return Ok(()),
            },
            () = &mut expiry => {
                if super::now_secs() < admitted.expires_at {
                    // a long admission wakes us now and then; or the clock went back
                    let left = until_expiry(admitted.expires_at);
                    expiry.as_mut().reset(tokio::time::Instant::now() + left);
                    continue;
                }
                info!(peer = %peer.short(), "a LAN peer's admission expired: closed");
                conn.close(ADMISSION_EXPIRED, b"admission expired");
                return Ok(());
            }
        };
        if ctx.is_banned(&peer) {
            conn.close(super::BANNED, b"banned");
            return Ok(());
        }
        // the wall clock may have jumped past the expiry without the timer seeing it
        if super::now_secs() >= admitted.expires_at {
            conn.close(ADMISSION_EXPIRED, b"admission expired");
            return Ok(());
        }
        let ctx = Arc::clone(ctx);
        tokio::spawn(async move {
            if let Err(e) = request(&ctx, peer, send, recv).await {
                debug!(peer = %peer.short(), "LAN request failed: {e}");
            }
        });
    }
}

fn enc(e: shoal_core::codec::EncodeError) -> StreamError {
    StreamError::Decode(shoal_core::codec::DecodeError::Malformed(e.to_string()))
}

async fn send_msg(send: &mut quinn::SendStream, r: &Response) -> Result<(), StreamError> {
    write_frame(send, &r.encode().map_err(enc)?, RESPONSE_CAP).await
}

/// The have-map of `release` as this node states it (a hostile node may lie).
fn have_map(ctx: &Ctx, release: Hash) -> Response {
    match ctx.shared.have_map(release) {
        Some((chunks, mut bits, wan)) => {
            if ctx.misbehave == Some(Misbehave::FalseHaveMap) {
                bits.iter_mut().for_each(|b| *b = 0xff);
                if chunks % 8 != 0
                    && let Some(last) = bits.last_mut()
                {
                    *last = (1u8 << (chunks % 8)) - 1;
                }
            }
            Response::HaveMap {
                release,
                wan,
                chunks,
                bits,
            }
        }
        None => Response::Unknown { release },
    }
}

/// The control stream: subscriptions in, have-maps and increments out.
async fn control(
    ctx: &Ctx,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), StreamError> {
    let mut changes = ctx.shared.subscribe();
    let mut subscribed: Option<Hash> = None;
    loop {
        tokio::select! {
            r = read_request(&mut recv) => match r? {
                Some(Request::Subscribe { release }) => {
                    subscribed = Some(release);
                    send_msg(&mut send, &have_map(ctx, release)).await?;
                }
                Some(_) => return Ok(()),
                None => return Ok(()),
            },
            c = changes.recv() => {
                let Some(release) = subscribed else { continue };
                match c {
                    Ok(Change::Have { release: r, index }) if r == release => {
                        if ctx.misbehave != Some(Misbehave::FalseHaveMap) {
                            send_msg(&mut send, &Response::Have { release, index }).await?;
                        }
                    }
                    Ok(Change::Have { .. }) => {}
                    Ok(Change::Offers) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        send_msg(&mut send, &have_map(ctx, release)).await?;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        }
    }
}

async fn request(
    ctx: &Ctx,
    peer: DeviceId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), StreamError> {
    let Some(req) = read_request(&mut recv).await? else {
        return Ok(());
    };
    match req {
        Request::GetChunks { release, hashes } => {
            for hash in hashes {
                chunk(ctx, &mut send, peer, release, hash).await?;
            }
            send_msg(&mut send, &Response::End).await?;
        }
        Request::GetRelease { id } => {
            let r = match ctx.shared.release_bytes(id) {
                Some(b) => Response::Release(b.to_vec()),
                None => match ctx.relay_release(id).await {
                    Some(b) => Response::Release(b),
                    None => Response::NotFound { hash: id },
                },
            };
            send_msg(&mut send, &r).await?;
        }
        Request::GetHead => {
            let r = match ctx.relay_head(peer).await {
                Some(b) => Response::Head(b),
                None => Response::NoHead,
            };
            send_msg(&mut send, &r).await?;
        }
        Request::Hello { .. } | Request::Subscribe { .. } => {
            send_msg(
                &mut send,
                &Response::Refused {
                    reason: "Hello and Subscribe belong on the control stream".into(),
                },
            )
            .await?;
        }
    }
    let _ = send.finish();
    Ok(())
}

/// Serves one chunk (or says it is not held), paced by the LAN rate.
async fn chunk(
    ctx: &Ctx,
    send: &mut quinn::SendStream,
    peer: DeviceId,
    release: Hash,
    hash: Hash,
) -> Result<(), StreamError> {
    // An install moves the staging files to where they are installed, and the offer
    // follows a moment later: a chunk the offer holds but cannot read yet is tried
    // again for a while rather than denied (a denial of an advertised chunk gets this
    // node dropped).
    let mut tries = 0;
    let data = loop {
        match ctx.shared.chunk(release, &hash).map(|s| s.read()) {
            Some(Ok(d)) => break d,
            Some(Err(_)) if tries < 30 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            _ => return send_msg(send, &Response::NotFound { hash }).await,
        }
    };
    ctx.pacer.take(data.len() as u64).await;
    let len = data.len() as u64;
    match ctx.misbehave {
        Some(Misbehave::FlipByte) => {
            let mut data = data;
            data.as_mut_slice()[0] ^= 0x01;
            send.write_all(&chunk_frame_prefix(&hash, data.len()))
                .await?;
            send.write_all(&data).await?;
        }
        Some(Misbehave::ExtraBytes) => {
            let mut data = data.to_vec();
            data.extend_from_slice(&[0u8; 100]);
            send.write_all(&chunk_frame_prefix(&hash, data.len()))
                .await?;
            send.write_all(&data).await?;
        }
        Some(Misbehave::Endless) => {
            // a frame that claims 2 GiB, then bytes until the peer gives up
            let mut prefix = chunk_frame_prefix(&hash, data.len());
            prefix[..4].copy_from_slice(&(2u32 << 30).to_le_bytes());
            send.write_all(&prefix).await?;
            loop {
                send.write_all(&data).await?;
            }
        }
        Some(Misbehave::FalseHaveMap) => {
            // it claims everything and serves nothing
            send_msg(send, &Response::NotFound { hash }).await?;
        }
        None => {
            send.write_all(&chunk_frame_prefix(&hash, data.len()))
                .await?;
            // handed to quinn without a copy; the buffer returns to its pool once the
            // peer has acknowledged it
            send.write_chunk(bytes::Bytes::from(data)).await?;
        }
    }
    // counted once written: a chunk of a stream the peer stopped is not served
    ctx.counters.served(peer, len);
    Ok(())
}
