//! The client side of `/shoal/xfer/1`: one connection to one peer. Admission both ways
//! first, then the control stream (subscriptions out, have-maps in) and one stream per
//! chunk request or relayed document.

use super::{Ctx, LanEvent};
use crate::chunk_buf::ChunkBuf;
use crate::wan::stream::{Answer, StreamError, read_answer, write_frame};
use shoal_core::lan::{REQUEST_CAP, RESPONSE_CAP, Request, Response, chunk_head};
use shoal_core::plan::Bitset;
use shoal_core::{DeviceId, Hash};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Why a peer could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("the peer refused us: {0}")]
    Refused(String),
    #[error("the peer's admission is not valid here: {0}")]
    Admission(String),
    #[error("the peer broke the protocol: expected {expected}, got {found}")]
    Protocol {
        expected: &'static str,
        found: String,
    },
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("that address is this node")]
    Myself,
    #[error("the peer accepts no connection (it serves nothing, or is full)")]
    NotServing,
}

/// An admitted connection to a peer that serves us.
#[derive(Debug, Clone)]
pub struct Peer {
    pub id: DeviceId,
    pub conn: quinn::Connection,
    subscribe: mpsc::UnboundedSender<Hash>,
}

async fn read_any(recv: &mut quinn::RecvStream) -> Result<Option<Answer<Response>>, StreamError> {
    read_answer(recv, RESPONSE_CAP, chunk_head, Response::decode).await
}

/// Reads one answer where no chunk is expected (a chunk shows as what it is).
async fn read(recv: &mut quinn::RecvStream) -> Result<Option<Response>, StreamError> {
    Ok(read_any(recv).await?.map(|answer| match answer {
        Answer::Message(r) => r,
        Answer::Chunk { hash, data } => Response::Chunk {
            hash,
            data: data.to_vec(),
        },
    }))
}

fn encode(r: &Request) -> Result<Vec<u8>, PeerError> {
    r.encode().map_err(|e| PeerError::Protocol {
        expected: "an encodable request",
        found: e.to_string(),
    })
}

fn unexpected(expected: &'static str, found: &Response) -> PeerError {
    let mut found = format!("{found:?}");
    found.truncate(120);
    PeerError::Protocol { expected, found }
}

impl Peer {
    /// Connects, exchanges admissions, and starts the control stream, whose have-maps
    /// come out of `events`.
    pub async fn connect(
        ctx: &Arc<Ctx>,
        endpoint: &quinn::Endpoint,
        addr: std::net::SocketAddr,
        events: mpsc::UnboundedSender<LanEvent>,
    ) -> Result<Peer, PeerError> {
        // without an admission the peer will refuse us; ask anyway, so that the
        // refusal (and its reason) is seen on both sides
        let admission = ctx.shared.admission().unwrap_or_default();
        let conn = endpoint
            .connect_with(ctx.client.clone(), addr, "shoal-device")
            .map_err(|e| PeerError::Connect(e.to_string()))?
            .await
            .map_err(|e| match e {
                // an endpoint that refuses every connection: a `--no-serve` node
                quinn::ConnectionError::ConnectionClosed(c)
                    if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
                {
                    PeerError::NotServing
                }
                e => PeerError::Connect(e.to_string()),
            })?;
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| PeerError::Connect(e.to_string()))?;
        write_frame(
            &mut send,
            &encode(&Request::Hello { admission })?,
            REQUEST_CAP,
        )
        .await?;
        let id = match read(&mut recv).await {
            Ok(Some(Response::Hello { admission })) => {
                ctx.check_peer(&conn, &admission)
                    .map_err(|reason| {
                        let id = super::tls::peer_key(&conn).map(|k| k.key_id());
                        ctx.counters.refusal(id, &reason);
                        conn.close(1u32.into(), b"not admitted");
                        PeerError::Admission(reason)
                    })?
                    .id
            }
            Ok(Some(Response::Refused { reason })) => return Err(PeerError::Refused(reason)),
            Ok(Some(other)) => return Err(unexpected("Hello", &other)),
            Ok(None) => return Err(PeerError::Refused("the connection was closed".into())),
            Err(e) => {
                // a refusal closes the connection; say so rather than "stream reset"
                if let Some(reason) = conn.close_reason() {
                    return Err(PeerError::Refused(reason.to_string()));
                }
                return Err(e.into());
            }
        };
        if id == ctx.me {
            conn.close(0u32.into(), b"self");
            return Err(PeerError::Myself);
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Hash>();
        let peer = Peer {
            id,
            conn: conn.clone(),
            subscribe: tx,
        };
        tokio::spawn(async move {
            let mut send = send;
            while let Some(release) = rx.recv().await {
                let Ok(body) = (Request::Subscribe { release }).encode() else {
                    continue;
                };
                if write_frame(&mut send, &body, REQUEST_CAP).await.is_err() {
                    return;
                }
            }
        });
        tokio::spawn(async move {
            loop {
                let event = match read(&mut recv).await {
                    Ok(Some(Response::HaveMap {
                        release,
                        wan,
                        chunks,
                        bits,
                    })) => match Bitset::from_bytes(&bits, chunks as usize) {
                        Some(bits) => LanEvent::HaveMap {
                            peer: id,
                            release,
                            bits,
                            wan,
                        },
                        None => break,
                    },
                    Ok(Some(Response::Have { release, index })) => LanEvent::Have {
                        peer: id,
                        release,
                        index: index as usize,
                    },
                    Ok(Some(Response::Unknown { release })) => {
                        LanEvent::Unknown { peer: id, release }
                    }
                    _ => break,
                };
                if events.send(event).is_err() {
                    return;
                }
            }
            conn.close(0u32.into(), b"control stream ended");
            let _ = events.send(LanEvent::Gone { peer: id });
        });
        Ok(peer)
    }

    /// Asks for the peer's have-map of `release` (and its increments from then on).
    pub fn subscribe(&self, release: Hash) {
        let _ = self.subscribe.send(release);
    }

    /// Asks for chunks; each answer (the bytes, or `None` for not held) goes to `out`
    /// as it arrives. The caller checks every chunk against the manifest.
    pub async fn chunks(
        &self,
        release: Hash,
        hashes: Vec<Hash>,
        mut each: impl FnMut(Hash, Option<ChunkBuf>),
    ) -> Result<(), PeerError> {
        let (mut send, mut recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| PeerError::Connect(e.to_string()))?;
        let expected = hashes.clone();
        write_frame(
            &mut send,
            &encode(&Request::GetChunks { release, hashes })?,
            REQUEST_CAP,
        )
        .await?;
        let _ = send.finish();
        for want in expected {
            match read_any(&mut recv).await? {
                Some(Answer::Chunk { hash, data }) if hash == want => each(hash, Some(data)),
                Some(Answer::Message(Response::NotFound { hash })) if hash == want => {
                    each(hash, None)
                }
                Some(Answer::Chunk { hash, data }) => {
                    return Err(PeerError::Protocol {
                        expected: "the chunk asked for",
                        found: format!("chunk {} ({} bytes)", hash.short(), data.len()),
                    });
                }
                Some(Answer::Message(other)) => {
                    return Err(unexpected("the chunk asked for", &other));
                }
                None => {
                    return Err(PeerError::Protocol {
                        expected: "a chunk",
                        found: "the end of the stream".into(),
                    });
                }
            }
        }
        Ok(())
    }

    async fn one(&self, request: &Request) -> Result<Response, PeerError> {
        let (mut send, mut recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| PeerError::Connect(e.to_string()))?;
        write_frame(&mut send, &encode(request)?, REQUEST_CAP).await?;
        let _ = send.finish();
        read(&mut recv).await?.ok_or(PeerError::Protocol {
            expected: "an answer",
            found: "the end of the stream".into(),
        })
    }

    /// This node's head, fetched by the peer from the seeder.
    pub async fn head(&self) -> Result<Option<Vec<u8>>, PeerError> {
        match self.one(&Request::GetHead).await? {
            Response::Head(b) => Ok(Some(b)),
            Response::NoHead => Ok(None),
            other => Err(unexpected("Head", &other)),
        }
    }

    /// A signed release, from the peer.
    pub async fn release(&self, id: Hash) -> Result<Option<Vec<u8>>, PeerError> {
        match self.one(&Request::GetRelease { id }).await? {
            Response::Release(b) => Ok(Some(b)),
            Response::NotFound { .. } => Ok(None),
            other => Err(unexpected("Release", &other)),
        }
    }
}
