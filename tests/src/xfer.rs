//! A bare `/shoal/xfer/1` client for the LAN tests: it connects with whatever device
//! key a test gives it, sends what the test tells it to in the order it is told (a
//! real node would never send some of it: that is the point), and reports every
//! response frame it gets back.

use shoal_core::lan::{REQUEST_CAP, RESPONSE_CAP, Request, Response};
use shoal_core::{Admission, Hash, SecretKey, Signed};
use shoal_node::wan::stream::{Frame, read_frame, write_frame};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// One connection to a node's xfer endpoint.
pub struct RawClient {
    // the connection lives only as long as its endpoint
    _endpoint: quinn::Endpoint,
    pub conn: quinn::Connection,
}

impl RawClient {
    /// Connects with a device certificate of `key`, and says nothing yet.
    pub async fn connect(addr: SocketAddr, key: &SecretKey) -> Result<RawClient, String> {
        let config = shoal_node::lan::tls::client_config(key).map_err(|e| e.to_string())?;
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let endpoint = quinn::Endpoint::client(local).map_err(|e| e.to_string())?;
        let conn = endpoint
            .connect_with(config, addr, "shoal-device")
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        Ok(RawClient {
            _endpoint: endpoint,
            conn,
        })
    }

    /// Opens a stream and writes `requests` on it, without waiting for any answer.
    pub async fn open(
        &self,
        requests: &[Request],
    ) -> Result<(quinn::SendStream, quinn::RecvStream), String> {
        let (mut send, recv) = self.conn.open_bi().await.map_err(|e| e.to_string())?;
        for r in requests {
            let body = r.encode().map_err(|e| e.to_string())?;
            write_frame(&mut send, &body, REQUEST_CAP)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok((send, recv))
    }

    /// `requests` on a stream of their own, finished, and every response to them
    /// within `wait` (see [`responses`]). A stream that cannot even be opened (the
    /// connection is gone) gets nothing.
    pub async fn ask(&self, requests: &[Request], wait: Duration) -> Vec<Response> {
        let Ok((mut send, mut recv)) = self.open(requests).await else {
            return Vec::new();
        };
        let _ = send.finish();
        responses(&mut recv, wait).await
    }

    /// The `Hello` with `admission` on a new control stream, and the first answer
    /// within `wait`; the stream stays open for more.
    pub async fn hello(
        &self,
        admission: Vec<u8>,
        wait: Duration,
    ) -> Result<(Option<Response>, quinn::SendStream, quinn::RecvStream), String> {
        let (send, mut recv) = self.open(&[Request::Hello { admission }]).await?;
        let first = next(&mut recv, wait).await;
        Ok((first, send, recv))
    }

    /// Waits up to `wait` for the connection to be closed; the reason, if it was.
    pub async fn closed_within(&self, wait: Duration) -> Option<quinn::ConnectionError> {
        tokio::time::timeout(wait, self.conn.closed()).await.ok()
    }
}

/// The next response on `recv` within `wait`: `None` at the stream's end, on an error
/// (the connection closed) or when `wait` passes.
pub async fn next(recv: &mut quinn::RecvStream, wait: Duration) -> Option<Response> {
    let read = read_frame(recv, RESPONSE_CAP, shoal_core::lan::chunk_head);
    match tokio::time::timeout(wait, read).await {
        Ok(Ok(Some(Frame::Chunk { hash, data }))) => Some(Response::Chunk {
            hash,
            data: data.to_vec(),
        }),
        Ok(Ok(Some(Frame::Body(b)))) => Response::decode(&b).ok(),
        _ => None,
    }
}

/// Every response on `recv` until the stream ends, the connection closes, or `wait`
/// passes (in all).
pub async fn responses(recv: &mut quinn::RecvStream, wait: Duration) -> Vec<Response> {
    let until = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        match next(recv, left).await {
            Some(r) => out.push(r),
            None => return out,
        }
    }
}

/// A secret key file's key (`online.key`, made by `keygen`).
pub fn secret_key(path: &Path) -> SecretKey {
    let text = std::fs::read_to_string(path).expect("a key file");
    SecretKey::from_text(&text).expect("a secret key")
}

/// An admission for `device`'s key at `site` until `expires_at` (unix seconds), signed
/// with `online`, encoded as a node sends it in its `Hello`.
pub fn admission(online: &SecretKey, device: &SecretKey, site: &str, expires_at: u64) -> Vec<u8> {
    let adm = Admission {
        device_id: device.key_id(),
        device_key: device.public(),
        site: site.to_string(),
        groups: vec!["g".into()],
        expires_at,
    };
    let mut signed = Signed::new(&adm).expect("an admission encodes");
    signed.sign(online);
    signed.to_bytes().expect("an envelope encodes")
}

/// The release in `path` (a `rel-*.shoal` file): its id and its distinct chunks, with
/// their lengths.
pub fn release_chunks(path: &Path) -> (Hash, Vec<(Hash, u32)>) {
    let bytes = std::fs::read(path).expect("a release file");
    let signed = shoal_core::release::decode_release(&bytes).expect("a release");
    let release = signed.decode_unverified().expect("a release body");
    let plan = shoal_core::plan::Plan::new(&release);
    let chunks = plan.chunks.iter().map(|c| (c.hash, c.len)).collect();
    (signed.body_hash(), chunks)
}

/// The unix time now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
