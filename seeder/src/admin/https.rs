//! The operator commands' HTTPS client: a `ureq` agent whose TLS trusts either exactly
//! one pinned certificate (`--cert PATH` or `SHOAL_CERT`: the seeder's
//! `DIR/tls/cert.pem`) or, without one, the system's roots with the usual name checks
//! (for a seeder given a CA-issued certificate with `serve --cert/--key`).
//!
//! Plain `http://` is refused before anything is sent: the bearer token would cross
//! the network readable (`docs/decisions/0015-management-api-https-only.md`).
//! Redirects are not followed, so a token is only ever sent to the URL given.

use anyhow::{Context, Result, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

/// How the client knows the seeder.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Exactly this certificate, whatever name or address the URL uses.
    Pinned(CertificateDer<'static>),
    /// The system's roots and the URL's host name.
    SystemRoots,
}

impl Trust {
    /// `Pinned` from a PEM file, or `SystemRoots` when there is none.
    pub fn from_flag(cert: Option<&Path>) -> Result<Trust> {
        match cert {
            Some(path) => Ok(Trust::Pinned(
                crate::device_api::tls::read_cert_pem(path)
                    .context("--cert (SHOAL_CERT) must name the seeder's PEM certificate")?,
            )),
            None => Ok(Trust::SystemRoots),
        }
    }
}

/// Refuses a URL that is not `https://`, saying what was expected.
pub fn require_https(url: &str) -> Result<()> {
    if url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        return Ok(());
    }
    bail!(
        "--url {url}: the management API speaks HTTPS only; expected https://HOST:PORT (nothing was sent)"
    )
}

/// The rustls configuration for `trust`: TLS 1.3, ring, HTTP/1.1.
pub fn client_config(trust: &Trust) -> Result<ClientConfig> {
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut config = match trust {
        Trust::Pinned(cert) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCert {
                cert: cert.clone(),
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        Trust::SystemRoots => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                bail!(
                    "no system root certificates found ({} error(s) reading them); pass --cert with the seeder's certificate (DIR/tls/cert.pem)",
                    found.errors.len()
                );
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// An agent for the management API: HTTPS only, with `trust`; error statuses are
/// answers (their JSON says why), redirects are not followed.
pub fn agent(trust: &Trust) -> Result<ureq::Agent> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .https_only(true)
        .build();
    let tls = TlsConnector {
        config: Arc::new(client_config(trust)?),
        hint: match trust {
            Trust::Pinned(_) => "",
            Trust::SystemRoots => {
                " (checked against the system's roots: for the seeder's own certificate pass --cert DIR/tls/cert.pem or set SHOAL_CERT)"
            }
        },
    };
    let connector = ().chain(TcpConnector::default()).chain(tls);
    Ok(ureq::Agent::with_parts(
        config,
        connector,
        DefaultResolver::default(),
    ))
}

/// Accepts the one certificate the operator pinned.
#[derive(Debug)]
struct PinnedCert {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The pin replaces name and chain checks (the URL may be any address of the
        // seeder); the handshake signature below proves the peer holds its key.
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the seeder's certificate is not the pinned one (--cert / SHOAL_CERT)".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // the configuration offers TLS 1.3 only
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// ureq's TLS step with our rustls configuration (ureq's own takes only root
/// certificates, not a pin).
struct TlsConnector {
    config: Arc<ClientConfig>,
    /// Added to a failed handshake's message.
    hint: &'static str,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnector")
    }
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> ureq::Error {
    ureq::Error::Io(std::io::Error::other(format!("TLS {what}: {e}")))
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .host()
            .ok_or_else(|| tls_error("setup", "the URL has no host"))?;
        // an IPv6 literal comes bracketed
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| tls_error("setup", format!("'{host}' is no server name: {e}")))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| tls_error("setup", e))?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)
            .map_err(|e| tls_error("handshake", format!("{e}{}", self.hint)))?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// One TLS connection, as ureq's transport.
pub struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_are_taken() {
        assert!(require_https("https://127.0.0.1:7480").is_ok());
        assert!(require_https("HTTPS://seeder.example:7480").is_ok());
        for url in ["http://127.0.0.1:7480", "127.0.0.1:7480", "", "https:/x"] {
            let e = require_https(url).unwrap_err().to_string();
            assert!(e.contains("HTTPS only"), "{url}: {e}");
        }
    }
}
