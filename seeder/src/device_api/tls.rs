//! TLS for the device API: the seeder's certificate (generated on first start, or given
//! with `--cert/--key`), and the check of device certificates.
//!
//! A device presents a self-signed certificate whose public key is its ed25519 device
//! key. No CA is involved: the device's identity is that key, its id the key's BLAKE3,
//! and whether it may do anything is decided by the store (pending, accepted,
//! rejected), not by TLS. TLS proves possession of the key: the handshake signature is
//! checked against the certificate's key.

use crate::files::{PUBLIC_MODE, SECRET_MODE, read_capped, write_atomic};
use anyhow::{Context, Result, bail};
use quinn::crypto::rustls::QuicServerConfig;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use shoal_core::PublicKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The DER of an ed25519 SubjectPublicKeyInfo (RFC 8410) before its 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The ed25519 key a device certificate carries, if it is a well-formed X.509
/// certificate with an ed25519 public key.
pub fn device_key(cert: &CertificateDer<'_>) -> Option<PublicKey> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let bytes = spki.as_ref();
    let key = bytes.strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    let key: [u8; 32] = key.try_into().ok()?;
    let key = PublicKey(key);
    key.verifying_key().ok()?;
    Some(key)
}

/// Accepts any certificate that carries a usable ed25519 key and proves possession of
/// it; the device API then looks the key up.
#[derive(Debug)]
struct DeviceCertVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for DeviceCertVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match device_key(end_entity) {
            Some(_) => Ok(ClientCertVerified::assertion()),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ));
        }
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The seeder's certificate and key, with where the certificate lives.
pub struct ServerIdentity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub cert_path: PathBuf,
}

impl ServerIdentity {
    /// SHA-256 of the certificate, as `AB:CD:...`.
    pub fn fingerprint(&self) -> String {
        let d = Sha256::digest(self.cert.as_ref());
        d.iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The public key pin of the certificate (see [`spki_pin`]).
    pub fn spki_pin(&self) -> Result<String> {
        spki_pin(&self.cert)
            .context("the seeder certificate is not a well-formed X.509 certificate")
    }

    /// `--cert/--key` if given; else `DIR/tls/cert.pem` and `DIR/tls/key.pem`, made on
    /// first start.
    pub fn load_or_create(
        data: &Path,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<ServerIdentity> {
        match (cert, key) {
            (Some(c), Some(k)) => Self::load(c, k),
            (None, None) => {
                let dir = data.join("tls");
                let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
                if !c.exists() {
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("{}: cannot create", dir.display()))?;
                    let generated = rcgen::generate_simple_self_signed(vec![
                        "shoal-seeder".to_string(),
                        "localhost".to_string(),
                    ])
                    .context("cannot generate the seeder certificate")?;
                    write_atomic(
                        &k,
                        generated.signing_key.serialize_pem().as_bytes(),
                        SECRET_MODE,
                        true,
                    )?;
                    write_atomic(&c, generated.cert.pem().as_bytes(), PUBLIC_MODE, true)?;
                }
                Self::load(&c, &k)
            }
            _ => bail!("--cert and --key go together"),
        }
    }

    fn load(cert: &Path, key: &Path) -> Result<ServerIdentity> {
        let pem = read_capped(cert, 64 * 1024)?;
        let cert_der = CertificateDer::from_pem_slice(&pem)
            .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", cert.display()))?;
        let pem = read_capped(key, 64 * 1024)?;
        let key_der = PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| anyhow::anyhow!("{}: not a PEM private key: {e}", key.display()))?;
        Ok(ServerIdentity {
            cert: cert_der,
            key: key_der,
            cert_path: cert.to_path_buf(),
        })
    }

    /// The QUIC server configuration: this identity, device certificates required,
    /// ALPN `shoal-wan/1`, TLS 1.3.
    pub fn server_config(&self, transport: quinn::TransportConfig) -> Result<quinn::ServerConfig> {
        let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = DeviceCertVerifier {
            algorithms: provider.signature_verification_algorithms,
        };
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .context("the seeder certificate and key do not match")?;
        tls.alpn_protocols = vec![shoal_core::wan::ALPN.to_vec()];
        let quic = QuicServerConfig::try_from(tls)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
        config.transport_config(Arc::new(transport));
        Ok(config)
    }
}

/// A certificate's public key pin: base64 of SHA-256 of its SubjectPublicKeyInfo, the
/// form `curl --pinnedpubkey sha256//PIN` and Chromium's
/// `--ignore-certificate-errors-spki-list` take. `None` if it does not parse.
pub fn spki_pin(cert: &CertificateDer<'_>) -> Option<String> {
    use base64::Engine;
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let digest = Sha256::digest(parsed.subject_public_key_info().as_ref());
    Some(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// Reads a PEM certificate file (for the device side and tests).
pub fn read_cert_pem(path: &Path) -> Result<CertificateDer<'static>> {
    let pem = read_capped(path, 64 * 1024)?;
    CertificateDer::from_pem_slice(&pem)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_certificate_yields_its_key() {
        let key = shoal_core::SecretKey::from_seed([4; 32]);
        let cert = shoal_node::wan::tls::device_certificate(&key).unwrap();
        assert_eq!(device_key(&cert), Some(key.public()));
    }

    #[test]
    fn the_pin_is_the_public_key_s_not_the_certificate_s() {
        let key = rcgen::KeyPair::generate().unwrap();
        let one = rcgen::CertificateParams::new(vec!["a".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let two = rcgen::CertificateParams::new(vec!["b".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pin = spki_pin(one.der()).unwrap();
        assert_ne!(one.der(), two.der());
        assert_eq!(spki_pin(two.der()), Some(pin.clone()), "same key, same pin");
        // SHA-256 in base64: 44 characters, one '=' of padding
        assert_eq!((pin.len(), pin.ends_with('=')), (44, true));
        let other = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        assert_ne!(spki_pin(other.cert.der()), Some(pin));
        assert_eq!(spki_pin(&CertificateDer::from(vec![0x30, 0x00])), None);
    }

    // guards: a certificate with some other key type is not a device identity
    #[test]
    fn a_non_ed25519_certificate_is_no_device() {
        let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        assert_eq!(device_key(other.cert.der()), None);
        assert_eq!(
            device_key(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])),
            None
        );
    }
}
