//! A connection to the seeder and the requests of `shoal-wan/1`, one per QUIC stream.

use super::stream::{Answer, StreamError, read_response, write_frame};
use super::tls::{TlsError, client_config};
use crate::chunk_buf::ChunkBuf;
use rustls::pki_types::CertificateDer;
use shoal_core::codec::DecodeError;
use shoal_core::wan::{Enrolment, REQUEST_CAP, RESPONSE_CAP, Request, Response, StatusReport};
use shoal_core::{Hash, SecretKey};
use std::net::SocketAddr;

/// Why a request to the seeder failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WanError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot connect to the seeder at {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("the connection to the seeder failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("the seeder sent a malformed message: {0}")]
    Decode(#[from] DecodeError),
    #[error("cannot encode the request: {0}")]
    Encode(#[from] shoal_core::codec::EncodeError),
    #[error("the seeder refused: the device is {}", match .0 { Some(s) => format!("{s:?}").to_lowercase(), None => "unknown".into() })]
    Refused(Option<Enrolment>),
    #[error("the seeder answered {found} where {expected} was expected")]
    Unexpected {
        expected: &'static str,
        found: String,
    },
    #[error("the seeder reported an error: {0}")]
    Seeder(String),
}

/// One QUIC connection to the seeder, as one device. Clones share the connection (each
/// request is its own stream).
#[derive(Clone)]
pub struct WanClient {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
}

impl WanClient {
    /// Connects to the seeder at `addr`, which must present `seeder_cert`.
    pub async fn connect(
        addr: SocketAddr,
        key: &SecretKey,
        seeder_cert: CertificateDer<'static>,
    ) -> Result<WanClient, WanError> {
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().expect("a valid literal")
        } else {
            "0.0.0.0:0".parse().expect("a valid literal")
        };
        let connect_err = |reason: String| WanError::Connect { addr, reason };
        let socket = super::tls::bind_udp(bind).map_err(|e| connect_err(e.to_string()))?;
        let mut endpoint = quinn::Endpoint::new(
            super::tls::endpoint_config(),
            None,
            socket,
            std::sync::Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| connect_err(e.to_string()))?;
        endpoint.set_default_client_config(client_config(key, seeder_cert)?);
        let conn = endpoint
            .connect(addr, "shoal-seeder")
            .map_err(|e| connect_err(e.to_string()))?
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        Ok(WanClient { endpoint, conn })
    }

    /// The underlying connection (tests use it to misbehave).
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Sends one request and collects every response frame until the seeder finishes
    /// the stream.
    pub async fn request(&self, request: &Request) -> Result<Vec<Response>, WanError> {
        let mut out = Vec::new();
        self.request_each(request, |r| {
            out.push(r);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Sends one request and hands each response to `each` as it arrives.
    pub async fn request_each(
        &self,
        request: &Request,
        mut each: impl FnMut(Response) -> Result<(), WanError>,
    ) -> Result<(), WanError> {
        self.request_capped(request, RESPONSE_CAP, |answer| {
            each(match answer {
                Answer::Message(r) => r,
                // not asked for: shown to `each` as what it is
                Answer::Chunk { hash, data } => Response::Chunk {
                    hash,
                    data: data.to_vec(),
                },
            })
        })
        .await
    }

    /// `request_each` with a cap on every response frame: a frame announcing more is
    /// refused at its header.
    async fn request_capped(
        &self,
        request: &Request,
        cap: usize,
        mut each: impl FnMut(Answer<Response>) -> Result<(), WanError>,
    ) -> Result<(), WanError> {
        let (mut send, mut recv) = self.conn.open_bi().await?;
        write_frame(&mut send, &request.encode()?, REQUEST_CAP).await?;
        send.finish().map_err(StreamError::from)?;
        while let Some(answer) = read_response(&mut recv, cap).await? {
            match answer {
                Answer::Message(Response::Refused { state }) => {
                    return Err(WanError::Refused(state));
                }
                Answer::Message(Response::Error { message }) => {
                    return Err(WanError::Seeder(message));
                }
                other => each(other)?,
            }
        }
        Ok(())
    }

    async fn one(&self, request: &Request) -> Result<Response, WanError> {
        let mut all = self.request(request).await?;
        match (all.pop(), all.is_empty()) {
            (Some(r), true) => Ok(r),
            (r, _) => Err(WanError::Unexpected {
                expected: "one response",
                found: format!("{r:?} after {} others", all.len()),
            }),
        }
    }

    pub async fn enrol(
        &self,
        device_type: &str,
        site: &str,
        inventory: Vec<(String, String)>,
    ) -> Result<Enrolment, WanError> {
        let request = Request::Enrol {
            device_type: device_type.into(),
            site: site.into(),
            inventory,
        };
        match self.one(&request).await? {
            Response::Enrolled(state) => Ok(state),
            other => Err(unexpected("Enrolled", &other)),
        }
    }

    /// The encoded `Signed<Admission>`.
    pub async fn admission(&self) -> Result<Vec<u8>, WanError> {
        match self.one(&Request::GetAdmission).await? {
            Response::Admission(bytes) => Ok(bytes),
            other => Err(unexpected("Admission", &other)),
        }
    }

    /// Another device's head, for a peer that cannot reach the seeder (the LAN relay).
    pub async fn head_for(
        &self,
        device: shoal_core::DeviceId,
    ) -> Result<Option<Vec<u8>>, WanError> {
        match self.one(&Request::GetHeadFor { device }).await? {
            Response::Head(bytes) => Ok(Some(bytes)),
            Response::NoDeployment => Ok(None),
            other => Err(unexpected("Head", &other)),
        }
    }

    /// The encoded `Signed<Head>`, or `None` when the device is in no deployment.
    pub async fn head(&self) -> Result<Option<Vec<u8>>, WanError> {
        match self.one(&Request::GetHead).await? {
            Response::Head(bytes) => Ok(Some(bytes)),
            Response::NoDeployment => Ok(None),
            other => Err(unexpected("Head", &other)),
        }
    }

    /// The encoded `Signed<Root>`s after version `after`, oldest first (at most
    /// `shoal_core::wan::MAX_ROOTS_PER_ANSWER`; empty when this device is current).
    pub async fn roots(&self, after: u64) -> Result<Vec<Vec<u8>>, WanError> {
        match self.one(&Request::GetRoots { after }).await? {
            Response::Roots(roots) => Ok(roots.into_iter().map(|r| r.0).collect()),
            other => Err(unexpected("Roots", &other)),
        }
    }

    /// The encoded `Signed<Release>`, or `None` if the seeder has no such release.
    pub async fn release(&self, id: Hash) -> Result<Option<Vec<u8>>, WanError> {
        match self.one(&Request::GetRelease { id }).await? {
            Response::Release(bytes) => Ok(Some(bytes)),
            Response::NotFound { .. } => Ok(None),
            other => Err(unexpected("Release", &other)),
        }
    }

    /// Chunks by hash: for each, in order, `Some(bytes)` or `None` when the seeder has
    /// none. The bytes are as the seeder sent them: the caller checks them.
    pub async fn chunks(&self, hashes: &[Hash]) -> Result<Vec<(Hash, Option<ChunkBuf>)>, WanError> {
        let mut out = Vec::with_capacity(hashes.len());
        let mut ended = false;
        // No chunk frame is larger than the largest chunk and its head: a seeder that
        // announces more is cut off before anything is buffered.
        let cap = shoal_core::release::MAX_CHUNK_LEN as usize + shoal_core::wan::CHUNK_FRAME_PREFIX;
        self.request_capped(
            &Request::GetChunks {
                hashes: hashes.to_vec(),
            },
            cap,
            |answer| {
                match answer {
                    Answer::Chunk { hash, data } => out.push((hash, Some(data))),
                    Answer::Message(Response::NotFound { hash }) => out.push((hash, None)),
                    Answer::Message(Response::End) => ended = true,
                    Answer::Message(other) => return Err(unexpected("Chunk", &other)),
                }
                Ok(())
            },
        )
        .await?;
        if !ended {
            return Err(WanError::Unexpected {
                expected: "End",
                found: "the stream's end".into(),
            });
        }
        Ok(out)
    }

    pub async fn report(&self, report: StatusReport) -> Result<(), WanError> {
        match self.one(&Request::ReportStatus(report)).await? {
            Response::Ack => Ok(()),
            other => Err(unexpected("Ack", &other)),
        }
    }

    /// Closes the connection and waits until the seeder has been told.
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"bye");
        self.endpoint.wait_idle().await;
    }
}

fn unexpected(expected: &'static str, found: &Response) -> WanError {
    let name = format!("{found:?}");
    WanError::Unexpected {
        expected,
        found: name.chars().take(80).collect(),
    }
}
