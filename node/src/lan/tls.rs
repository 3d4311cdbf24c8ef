//! TLS for `/shoal/xfer/1`: both sides present a self-signed certificate carrying their
//! device key (the same certificate the device shows the seeder), and both accept any
//! peer certificate that carries a usable ed25519 key and proves possession of it. Who
//! the peer *is* comes from that key; whether it may be served is decided by its signed
//! admission, checked on the control stream (see `shoal_core::lan`).

use crate::wan::tls::{
    TlsError, device_certificate, device_client_config, pkcs8, provider, transport,
};
use quinn::crypto::rustls::QuicServerConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use shoal_core::{PublicKey, SecretKey};
use std::sync::Arc;

/// The DER of an ed25519 SubjectPublicKeyInfo (RFC 8410) before its 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Streams a peer may have open on one connection: a control stream and requests.
const MAX_STREAMS: u32 = 32;

/// The ed25519 key a device certificate carries, if it is a well-formed X.509
/// certificate with an ed25519 public key.
pub fn device_key(cert: &CertificateDer<'_>) -> Option<PublicKey> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let key = spki.as_ref().strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    let key = PublicKey(key.try_into().ok()?);
    key.verifying_key().ok()?;
    Some(key)
}

/// The device key of the other end of an established connection.
pub fn peer_key(conn: &quinn::Connection) -> Option<PublicKey> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    device_key(certs.first()?)
}

fn lan_transport() -> quinn::TransportConfig {
    let mut t = transport();
    t.max_concurrent_bidi_streams(MAX_STREAMS.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.keep_alive_interval(Some(std::time::Duration::from_secs(2)));
    // a silent peer is noticed within seconds, not the default 30 s
    if let Ok(idle) = std::time::Duration::from_secs(8).try_into() {
        t.max_idle_timeout(Some(idle));
    }
    t
}

/// The server side: our certificate, and any device certificate from clients.
pub fn server_config(key: &SecretKey) -> Result<quinn::ServerConfig, TlsError> {
    let provider = provider();
    let verifier = AnyDevice {
        algorithms: provider.signature_verification_algorithms,
    };
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            vec![device_certificate(key)?],
            PrivateKeyDer::Pkcs8(pkcs8(key)),
        )
        .map_err(|e| TlsError::Config(e.to_string()))?;
    tls.alpn_protocols = vec![shoal_core::lan::ALPN.to_vec()];
    let quic = QuicServerConfig::try_from(tls).map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(Arc::new(lan_transport()));
    Ok(config)
}

/// The client side: our certificate, and any device certificate from servers.
pub fn client_config(key: &SecretKey) -> Result<quinn::ClientConfig, TlsError> {
    let provider = provider();
    let verifier = AnyDevice {
        algorithms: provider.signature_verification_algorithms,
    };
    device_client_config(
        key,
        provider,
        Arc::new(verifier),
        shoal_core::lan::ALPN,
        lan_transport(),
    )
}

/// Accepts a certificate that carries a usable ed25519 key; the handshake signature
/// proves the peer holds it.
#[derive(Debug)]
struct AnyDevice {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyDevice {
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        device_key(cert)
            .map(|_| ())
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            ))
    }

    fn signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ));
        }
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

fn tls12() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

impl ClientCertVerifier for AnyDevice {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ServerCertVerifier for AnyDevice {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_certificate_yields_its_key() {
        let key = SecretKey::from_seed([4; 32]);
        let cert = device_certificate(&key).unwrap();
        assert_eq!(device_key(&cert), Some(key.public()));
    }

    // guards: a certificate with another key type is no device identity
    #[test]
    fn a_non_ed25519_certificate_is_no_device() {
        let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        assert_eq!(device_key(other.cert.der()), None);
    }
}
