//! TLS configuration of both ends of the consumer protocol, from PEM files.
//!
//! Contract:
//! - TLS 1.3 only, ring as the only crypto provider, ALPN [`ALPN`] on both transports.
//! - The server requires a client certificate that chains to `client_ca`; the client verifies
//!   the server against its `ca` and the name it dialled (a DNS name or an IP address).
//! - Every error names the file it is about and what to do; keys are never printed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::protocol::ALPN;

/// A TLS configuration that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A file cannot be read or holds no PEM object of the expected kind.
    #[error("{path}: {what}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the fix.
        what: String,
    },
    /// rustls refused the material (a key that does not match its certificate, say).
    #[error("{context}: {source}")]
    Rustls {
        /// Which files were being combined.
        context: String,
        /// rustls' reason.
        source: rustls::Error,
    },
}

fn file_error(path: &Path, what: impl Into<String>) -> TlsConfigError {
    TlsConfigError::File {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, format!("cannot read certificates: {e}")))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, format!("not a valid PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            path,
            "holds no certificate (expected -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        file_error(
            path,
            format!("cannot read a private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        )
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &Path) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| file_error(ca, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The server side: `cert`/`key` identify the server, consumers must present a certificate
/// signed by `client_ca`.
pub fn server_config(cert: &Path, key: &Path, client_ca: &Path) -> Result<ServerConfig, TlsConfigError> {
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_ca)?), provider())
        .build()
        .map_err(|e| file_error(client_ca, format!("cannot verify clients with it: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| TlsConfigError::Rustls {
            context: "TLS 1.3".to_owned(),
            source,
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|source| TlsConfigError::Rustls {
            context: format!("{} with {}", cert.display(), key.display()),
            source,
        })?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The consumer side: `cert`/`key` identify the consumer, the server must chain to `ca`.
pub fn client_config(cert: &Path, key: &Path, ca: &Path) -> Result<ClientConfig, TlsConfigError> {
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| TlsConfigError::Rustls {
            context: "TLS 1.3".to_owned(),
            source,
        })?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(chain, key_der)
        .map_err(|source| TlsConfigError::Rustls {
            context: format!("{} with {}", cert.display(), key.display()),
            source,
        })?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}
