//! TLS for the device: a self-signed certificate made from the device's ed25519 key (the
//! seeder knows the device by that key), and a verifier that accepts exactly the seeder
//! certificate the device was given (`--seeder-cert`), nothing else.

use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use shoal_core::SecretKey;
use std::sync::Arc;

/// PKCS#8 v1 of an ed25519 seed (RFC 8410): this prefix, then the 32 seed bytes.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot make the device certificate: {0}")]
    Certificate(String),
    #[error("cannot configure TLS: {0}")]
    Config(String),
}

/// The first certificate of a PEM file (the pinned seeder certificate).
pub fn cert_from_pem(pem: &[u8]) -> Result<CertificateDer<'static>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem)
        .map_err(|e| TlsError::Certificate(format!("not a PEM certificate: {e}")))
}

/// The device key as PKCS#8 DER.
pub fn pkcs8(key: &SecretKey) -> PrivatePkcs8KeyDer<'static> {
    let mut der = ED25519_PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&key.seed());
    PrivatePkcs8KeyDer::from(der)
}

/// A self-signed certificate whose public key is the device key.
pub fn device_certificate(key: &SecretKey) -> Result<CertificateDer<'static>, TlsError> {
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8(key), &rcgen::PKCS_ED25519)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec!["shoal-device".to_string()])
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, key.key_id().to_hex());
    let cert = params
        .self_signed(&pair)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    Ok(cert.der().clone())
}

/// The crypto provider of every TLS configuration of the node (aws-lc-rs, which
/// libp2p links in any case: its AES-GCM took a third of ring's share of the LAN
/// benchmark's profile), passed explicitly so no process-wide default is needed.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A QUIC client configuration for a device: its certificate from `key`, the seeder's
/// pinned certificate, ALPN `shoal-wan/1`, TLS 1.3.
pub fn client_config(
    key: &SecretKey,
    seeder_cert: CertificateDer<'static>,
) -> Result<quinn::ClientConfig, TlsError> {
    let provider = provider();
    let verifier = PinnedSeeder {
        cert: seeder_cert,
        algorithms: provider.signature_verification_algorithms,
    };
    device_client_config(
        key,
        provider,
        Arc::new(verifier),
        shoal_core::wan::ALPN,
        transport(),
    )
}

/// A QUIC client configuration that shows the device certificate of `key`, checks the
/// server's with `verifier`, speaks `alpn` over TLS 1.3 only, with `transport`: the
/// seeder's client (above) and the LAN's (`crate::lan::tls`) differ only in those.
pub fn device_client_config(
    key: &SecretKey,
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
    alpn: &[u8],
    transport: quinn::TransportConfig,
) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(
            vec![device_certificate(key)?],
            PrivateKeyDer::Pkcs8(pkcs8(key)),
        )
        .map_err(|e| TlsError::Config(e.to_string()))?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// The endpoint settings for both sides of `shoal-wan/1`: accept UDP payloads up to the
/// largest size, so that MTU discovery can use big packets where the path allows them
/// (loopback, jumbo frames); Ethernet-sized paths are unaffected.
pub fn endpoint_config() -> quinn::EndpointConfig {
    let mut c = quinn::EndpointConfig::default();
    // 65,527 is within quinn's allowed range (1200..=65,527), so this cannot fail.
    let _ = c.max_udp_payload_size(65_527);
    c
}

/// Socket buffers for bulk QUIC: big enough that a burst of large datagrams is not
/// dropped by the kernel (drops read as congestion, and quinn's black-hole detection
/// then falls back to the smallest MTU). Best effort: the OS may cap it
/// (`net.core.rmem_max`).
pub const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// A UDP socket for a QUIC endpoint, with [`SOCKET_BUFFER`]-sized buffers.
pub fn bind_udp(addr: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    let _ = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER);
    let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER);
    Ok(socket)
}

/// The device's QUIC transport: windows for several chunk requests in flight, and MTU
/// discovery up to the largest UDP payload (it costs nothing on an Ethernet-sized
/// path, and cuts the packet count on loopback and jumbo-frame LANs).
pub fn transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(65_527);
    t.mtu_discovery_config(Some(mtu));
    // See docs/decisions/0005-quic-gso-off.md.
    t.enable_segmentation_offload(false);
    // Windows bound what the seeder can push ahead of what the device has taken: enough
    // for the bandwidth-delay product of a site's WAN, and little to throw away when a
    // device restarts mid-download (what was in flight is fetched again).
    t.stream_receive_window((1024u32 * 1024).into());
    t.receive_window((4u32 * 1024 * 1024).into());
    t
}

/// Accepts the one seeder certificate the device was provisioned with.
#[derive(Debug)]
struct PinnedSeeder {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedSeeder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Pinning replaces name and chain checks: only this exact certificate is the
        // seeder, and the handshake signature below proves the peer holds its key.
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
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
