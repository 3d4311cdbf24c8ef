//! HTTPS for the management API: TLS 1.3 with the seeder's certificate (the device
//! API's, `DIR/tls/cert.pem` or `serve --cert/--key`), under axum's server.
//!
//! Bearer tokens and the dashboard's cookie cross the network in every request, so
//! the API has no plain-HTTP mode (`docs/decisions/0015-management-api-https-only.md`):
//! a client that speaks plain HTTP to this port fails the handshake and is never
//! answered, and its request is never read.
//!
//! Handshakes run in their own tasks, so one slow or silent client does not hold up
//! the accepts of others; at most [`HANDSHAKES`] run at once, each for at most
//! [`HANDSHAKE_TIMEOUT`].

use crate::device_api::tls::ServerIdentity;
use anyhow::{Context, Result};
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Handshakes in progress at most; further connections wait to be accepted.
pub const HANDSHAKES: usize = 128;
/// A client has this long to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The rustls configuration of the management API: the seeder's certificate, TLS 1.3,
/// HTTP/1.1 (the server speaks nothing else), no client certificates (tokens
/// authenticate).
pub fn server_config(identity: &ServerIdentity) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .context("the seeder certificate and key do not match")?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// A TCP listener whose connections come out TLS-wrapped, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` (a task on the current runtime; it ends when the
    /// listener is dropped).
    pub fn new(tcp: TcpListener, config: rustls::ServerConfig) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(HANDSHAKES);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(Arc::new(config)), tx));
        Ok(TlsListener { ready, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(HANDSHAKES));
    loop {
        // the semaphore is never closed, so this cannot fail
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            a = tcp.accept() => a,
            () = ready.closed() => return,
        };
        let (stream, from) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // out of file descriptors and the like: wait, rather than spin
                tracing::warn!("management API: cannot accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, from)).await;
                }
                Ok(Err(e)) => tracing::debug!("management API: {from}: TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(
                    "management API: {from}: no TLS handshake within {HANDSHAKE_TIMEOUT:?}"
                ),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // the accept task holds the sender until this listener is dropped
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The client's address, for the audit log (`ConnectInfo<Client>`).
#[derive(Debug, Clone, Copy)]
pub struct Client(pub SocketAddr);

impl Connected<IncomingStream<'_, TlsListener>> for Client {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Client {
        Client(*stream.remote_addr())
    }
}
