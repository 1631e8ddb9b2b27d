//! A small X.509 toolkit for the mutual-TLS consumer service of the IT side: a development CA,
//! server and consumer (client) certificates, the files that hold them, and the consumer
//! identities the server authorizes.
//!
//! Contract:
//! - Every key is ECDSA P-256 (PKCS#8 PEM, `PRIVATE KEY`); every signature ECDSA-SHA256. The
//!   only crypto provider is `ring`.
//! - [`Ca::generate`] makes a self-signed CA: `CA:true, pathlen:0` (it signs end-entity
//!   certificates only), key usage `keyCertSign, cRLSign, digitalSignature`.
//!   [`Ca::issue`] signs an end-entity certificate: `CA:false`, key usage `digitalSignature`,
//!   extended key usage `serverAuth` ([`Usage::Server`]) or `clientAuth` ([`Usage::Client`]),
//!   every name as a subject-alternative name ([`parse_name`]), the first name as the subject
//!   common name.
//! - A consumer's identities are the DNS and URI subject-alternative names of its certificate,
//!   in certificate order ([`identities`]); IP addresses and the subject common name are not
//!   identities. A policy channel grants a consumer by listing one of them in `consumers`.
//! - Private keys are written by [`write_private`] with mode 0600 at creation and never
//!   overwritten; certificates by [`write_public`] with mode 0644. [`Ca::load`] refuses a CA key
//!   that group or others may access.
//! - Errors name the file they concern and never carry key material; `Debug` of [`Ca`] and
//!   [`Issued`] redacts the private key.
//! - The dev CA is for development and tests. Production uses the organisation's PKI; see
//!   `certs/README.md`.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use x509_parser::extensions::GeneralName;

/// Largest certificate or key file [`Ca::load`] reads, in bytes.
pub const MAX_PEM_FILE: u64 = 1 << 20;

/// How far back `not_before` is set by [`Validity::days_from_now`], to tolerate clock skew
/// between the host that issues and the hosts that verify.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60 * 60);

/// The latest `not_after` accepted: 9999-12-31T23:59:59Z, the last instant X.509 can encode.
const MAX_NOT_AFTER_SECS: u64 = 253_402_300_799;

/// Why a certificate could not be made, written, loaded or read. Variants that concern a file
/// name it; none carries key material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file to read does not exist.
    #[error("{path} does not exist", path = .path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A file to write exists already and was left alone.
    #[error("{path} already exists; refusing to overwrite it (remove it first, or choose another path)", path = .path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// A private key file lets group or others access it.
    #[error("private key {path} has mode {mode:04o}, which lets group or others access it (hint: chmod 600 {path})", path = .path.display())]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is not a regular file.
    #[error("{path} is not a regular file", path = .path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// The file is larger than [`MAX_PEM_FILE`].
    #[error("{path} is larger than {MAX_PEM_FILE} bytes; it is not a PEM certificate or key", path = .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing the file failed.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file does not hold what it should (a PEM certificate, a PKCS#8 key, a CA).
    #[error("{path}: {reason}", path = .path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA key is not the key of the CA certificate.
    #[error("{key} is not the private key of the certificate {cert} (hint: load the key that was generated with that certificate)", key = .key.display(), cert = .cert.display())]
    KeyMismatch {
        /// The CA certificate.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A certificate needs at least one name.
    #[error("a certificate needs at least one name (a DNS name, an IP address or a URI)")]
    NoNames,
    /// A name is not a valid DNS name, IP address or URI.
    #[error("{name:?} is not a valid {kind}: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// What it was taken for: `DNS name` or `URI`.
        kind: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `not_after` is not after `not_before`, or a time cannot be encoded in a certificate.
    #[error("invalid validity: {reason}")]
    BadValidity {
        /// What is wrong.
        reason: &'static str,
    },
    /// Bytes given as a DER certificate could not be parsed.
    #[error("not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// What the parser said.
        reason: String,
    },
    /// Key generation or signing failed.
    #[error("cannot {what}: {source}")]
    Rcgen {
        /// What was being done, e.g. `sign the certificate`.
        what: &'static str,
        /// The underlying error.
        source: rcgen::Error,
    },
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First instant of validity.
    pub not_before: SystemTime,
    /// Last instant of validity.
    pub not_after: SystemTime,
}

impl Validity {
    /// From [`CLOCK_SKEW`] (one hour) ago until `days` days from now.
    pub fn days_from_now(days: u32) -> Validity {
        let now = SystemTime::now();
        let length = Duration::from_secs(u64::from(days) * 24 * 60 * 60);
        Validity {
            not_before: now.checked_sub(CLOCK_SKEW).unwrap_or(now),
            // An unrepresentable end is caught when the certificate is made.
            not_after: now.checked_add(length).unwrap_or(now),
        }
    }

    /// Checks the times and writes them into `params`.
    fn apply(&self, params: &mut CertificateParams) -> Result<(), PkiError> {
        let encodable = |time: SystemTime| {
            time.duration_since(SystemTime::UNIX_EPOCH)
                .is_ok_and(|since| since.as_secs() <= MAX_NOT_AFTER_SECS)
        };
        if !encodable(self.not_before) || !encodable(self.not_after) {
            return Err(PkiError::BadValidity {
                reason: "times must lie between 1970 and the end of year 9999",
            });
        }
        if self.not_after <= self.not_before {
            return Err(PkiError::BadValidity {
                reason: "not_after must be later than not_before",
            });
        }
        // Both conversions are in range: checked above.
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
        Ok(())
    }
}

/// What an issued certificate is for: its extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A TLS / QUIC server (`serverAuth`): the consumer service of `weir-recv`.
    Server,
    /// A TLS / QUIC client (`clientAuth`): a consumer, identified by its DNS and URI names.
    Client,
}

/// A certificate and its private key, as PEM. `Debug` redacts the key.
#[derive(Clone)]
pub struct Issued {
    /// The certificate (`CERTIFICATE` PEM).
    pub cert_pem: String,
    /// The private key (PKCS#8 `PRIVATE KEY` PEM). Keep it secret: see [`write_private`].
    pub key_pem: String,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A certificate authority that signs server and client certificates. `Debug` redacts the key.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Ca {
    /// A new self-signed CA with a fresh ECDSA P-256 key, named `common_name`.
    pub fn generate(common_name: &str, validity: Validity) -> Result<Ca, PkiError> {
        let key = new_key()?;
        let mut params = CertificateParams::default();
        validity.apply(&mut params)?;
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, common_name);
        params.distinguished_name = subject;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(|source| PkiError::Rcgen {
            what: "sign the CA certificate",
            source,
        })?;
        let key_pem = key.serialize_pem();
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and key files. Refuses a key file that group or others
    /// may access, a certificate that is not a CA, and a key that does not belong to the
    /// certificate.
    pub fn load(cert_pem: &Path, key_pem: &Path) -> Result<Ca, PkiError> {
        let cert_text = read_pem_file(cert_pem, false)?;
        let key_text = read_pem_file(key_pem, true)?;
        let cert_der = pem_contents(&cert_text, "CERTIFICATE").map_err(|reason| PkiError::BadFile {
            path: cert_pem.to_path_buf(),
            reason,
        })?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|error| PkiError::BadFile {
                path: cert_pem.to_path_buf(),
                reason: format!("not a valid X.509 certificate: {error}"),
            })?;
        if !parsed.is_ca() {
            return Err(PkiError::BadFile {
                path: cert_pem.to_path_buf(),
                reason: "this certificate is not a CA (basicConstraints CA:true is missing)".to_owned(),
            });
        }
        let key = KeyPair::from_pem(&key_text).map_err(|error| PkiError::BadFile {
            path: key_pem.to_path_buf(),
            reason: format!(
                "not an unencrypted PKCS#8 `PRIVATE KEY` PEM that weir can use ({error}); convert an \
                 `EC PRIVATE KEY` with `openssl pkcs8 -topk8 -nocrypt`"
            ),
        })?;
        if key.subject_public_key_info() != parsed.public_key().raw {
            return Err(PkiError::KeyMismatch {
                cert: cert_pem.to_path_buf(),
                key: key_pem.to_path_buf(),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key).map_err(|error| {
            PkiError::BadFile {
                path: cert_pem.to_path_buf(),
                reason: format!("cannot sign with this CA: {error}"),
            }
        })?;
        Ok(Ca {
            issuer,
            cert_pem: cert_text,
            key_pem: key_text,
        })
    }

    /// The CA certificate, PEM: what a server trusts as `client_ca` and a client as its root.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PEM. Keep it secret: see [`write_private`].
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Signs a new end-entity certificate with a fresh ECDSA P-256 key for `usage`, carrying
    /// every name of `names` as a subject-alternative name (see [`parse_name`]) and the first
    /// as its common name.
    pub fn issue(&self, usage: Usage, names: &[String], validity: Validity) -> Result<Issued, PkiError> {
        let first = names.first().ok_or(PkiError::NoNames)?;
        let mut params = CertificateParams::default();
        validity.apply(&mut params)?;
        params.subject_alt_names = names
            .iter()
            .map(|name| parse_name(name))
            .collect::<Result<_, _>>()?;
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, first.as_str());
        params.distinguished_name = subject;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        let key = new_key()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| PkiError::Rcgen {
                what: "sign the certificate",
                source,
            })?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn new_key() -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| PkiError::Rcgen {
        what: "generate an ECDSA P-256 key",
        source,
    })
}

/// Writes a private key PEM to a new file: mode 0600 at creation (never readable by others, not
/// even for an instant), refusing to overwrite an existing file.
pub fn write_private(path: &Path, pem: &str) -> Result<(), PkiError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| create_error(path, error))?;
    fill(file, path, pem)
}

/// Writes a certificate PEM with mode 0644. Refuses to overwrite an existing file unless
/// `overwrite`; an overwrite replaces the file atomically (a reader sees the old or the new
/// certificate, never half of one).
pub fn write_public(path: &Path, pem: &str, overwrite: bool) -> Result<(), PkiError> {
    let open = |target: &Path| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(target)
            .map_err(|error| create_error(target, error))
    };
    if !overwrite {
        return fill(open(path)?, path, pem);
    }
    let name = path.file_name().ok_or_else(|| PkiError::NotAFile {
        path: path.to_path_buf(),
    })?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".tmp-{}", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    fill(open(&temporary)?, &temporary, pem)?;
    fs::rename(&temporary, path).map_err(|source| {
        let _ = fs::remove_file(&temporary);
        PkiError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn create_error(path: &Path, error: io::Error) -> PkiError {
    match error.kind() {
        io::ErrorKind::AlreadyExists => PkiError::AlreadyExists {
            path: path.to_path_buf(),
        },
        _ => PkiError::Io {
            path: path.to_path_buf(),
            source: error,
        },
    }
}

/// Writes `text` into the freshly created `file`; removes the file if that fails, so a retry
/// can create it.
fn fill(mut file: fs::File, path: &Path, text: &str) -> Result<(), PkiError> {
    let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(PkiError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

/// Reads a PEM file of at most [`MAX_PEM_FILE`] bytes; a `secret` one must not be accessible to
/// group or others.
fn read_pem_file(path: &Path, secret: bool) -> Result<String, PkiError> {
    let io_error = |error: io::Error| match error.kind() {
        io::ErrorKind::NotFound => PkiError::Missing {
            path: path.to_path_buf(),
        },
        _ => PkiError::Io {
            path: path.to_path_buf(),
            source: error,
        },
    };
    let file = fs::File::open(path).map_err(io_error)?;
    // Check the file we opened, not the path, so it cannot be swapped in between.
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(PkiError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if secret && mode & 0o077 != 0 {
        return Err(PkiError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|error| match error.kind() {
            io::ErrorKind::InvalidData => PkiError::BadFile {
                path: path.to_path_buf(),
                reason: "not PEM text (not even UTF-8)".to_owned(),
            },
            _ => io_error(error),
        })?;
    if text.len() as u64 > MAX_PEM_FILE {
        return Err(PkiError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

/// The DER contents of the first PEM block of `text`, which must be labelled `label`.
fn pem_contents(text: &str, label: &str) -> Result<Vec<u8>, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes())
        .map_err(|error| format!("not a PEM file ({error})"))?;
    if pem.label != label {
        return Err(format!("expected a PEM `{label}` block, found `{}`", pem.label));
    }
    Ok(pem.contents)
}

/// The DER bytes of the first certificate of a PEM text, e.g. [`Issued::cert_pem`], for
/// [`identities`].
pub fn cert_der(cert_pem: &str) -> Result<Vec<u8>, PkiError> {
    pem_contents(cert_pem, "CERTIFICATE").map_err(|reason| PkiError::BadCertificate { reason })
}

/// Parses a subject-alternative name argument:
/// - an IP address literal (`127.0.0.1`, `::1`) is an IP address name;
/// - a name that contains `://` or starts with `urn:` or `spiffe:` is a URI name
///   (`spiffe://corp.example/historian`); it must be ASCII made of the characters RFC 3986
///   allows, after a scheme;
/// - anything else is a DNS name: dot-separated labels of letters, digits and inner hyphens, at
///   most 63 bytes each and 253 in all, the last label not all digits. No wildcards.
pub fn parse_name(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    if name.contains("://") || name.starts_with("urn:") || name.starts_with("spiffe:") {
        let bad = |reason: String| PkiError::BadName {
            name: name.to_owned(),
            kind: "URI",
            reason,
        };
        check_uri(name).map_err(bad)?;
        let ia5 = name.try_into().map_err(|_| bad("not ASCII".to_owned()))?;
        return Ok(SanType::URI(ia5));
    }
    let bad = |reason: String| PkiError::BadName {
        name: name.to_owned(),
        kind: "DNS name",
        reason,
    };
    check_dns_name(name).map_err(bad)?;
    let ia5 = name.try_into().map_err(|_| bad("not ASCII".to_owned()))?;
    Ok(SanType::DnsName(ia5))
}

fn check_uri(uri: &str) -> Result<(), String> {
    let (scheme, rest) = uri
        .split_once(':')
        .ok_or_else(|| "a URI starts with a scheme and `:`".to_owned())?;
    let mut scheme_chars = scheme.chars();
    let scheme_ok = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(format!(
            "the scheme {scheme:?} must be a letter followed by letters, digits, `+`, `-` or `.`"
        ));
    }
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    if rest.is_empty() {
        return Err("nothing follows the scheme".to_owned());
    }
    if let Some(c) = uri.chars().find(|&c| !uri_char(c)) {
        return Err(format!(
            "it contains {c:?}, which a URI cannot hold (percent-encode it, e.g. a space as %20)"
        ));
    }
    Ok(())
}

/// The characters RFC 3986 allows in a URI: unreserved, reserved and `%`.
fn uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if name.len() > 253 {
        return Err(format!(
            "it is {} bytes long; at most 253 are allowed",
            name.len()
        ));
    }
    if name.starts_with('*') {
        return Err("wildcard names are not supported: list each name".to_owned());
    }
    if name.ends_with('.') {
        return Err("remove the trailing dot".to_owned());
    }
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (two dots in a row, or a leading dot)".to_owned());
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 bytes"));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(format!(
                "the label {label:?} contains {c:?}; only letters, digits and `-` are allowed \
                 (a URI needs a scheme, e.g. spiffe://…)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with `-`"));
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err("its last label is all digits: is it a mistyped IP address?".to_owned());
    }
    Ok(())
}

/// The identities a consumer certificate (DER) carries, as the consumer server authorizes
/// them: every DNS and URI subject-alternative name, in certificate order. IP address names
/// and the subject common name are not identities; a certificate without DNS or URI names has
/// none. Call it only on a certificate the TLS layer has verified.
pub fn identities(cert_der: &[u8]) -> Result<Vec<String>, PkiError> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|error| PkiError::BadCertificate {
            reason: error.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(PkiError::BadCertificate {
            reason: format!("{} bytes follow the certificate", rest.len()),
        });
    }
    let names = cert
        .subject_alternative_name()
        .map_err(|error| PkiError::BadCertificate {
            reason: format!("subject alternative names: {error}"),
        })?;
    let Some(names) = names else {
        return Ok(Vec::new());
    };
    Ok(names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            // DNS names and URIs share one namespace in the policy, told apart by `:`: a DNS SAN
            // with a `:` or a URI SAN without one could pose as the other kind, so neither counts.
            GeneralName::DNSName(dns) if !dns.contains(':') => Some((*dns).to_owned()),
            GeneralName::URI(uri) if uri.contains(':') => Some((*uri).to_owned()),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{CertificateError, RootCertStore};

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weir-pki-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from(cert_der(pem).unwrap())
    }

    fn roots(ca: &Ca) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(der(ca.cert_pem())).unwrap();
        Arc::new(roots)
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// What the consumer server does with a client certificate.
    fn verify_client(ca: &Ca, cert_pem: &str) -> Result<(), rustls::Error> {
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca), provider())
            .build()
            .unwrap();
        verifier
            .verify_client_cert(&der(cert_pem), &[], UnixTime::now())
            .map(|_| ())
    }

    /// What a consumer does with the server's certificate.
    fn verify_server(ca: &Ca, cert_pem: &str, name: &str) -> Result<(), rustls::Error> {
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots(ca), provider())
            .build()
            .unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier
            .verify_server_cert(&der(cert_pem), &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    fn invalid(result: Result<(), rustls::Error>) -> CertificateError {
        match result {
            Err(rustls::Error::InvalidCertificate(error)) => error,
            other => panic!("expected an invalid certificate, got {other:?}"),
        }
    }

    fn dev_ca() -> Ca {
        Ca::generate("weir test CA", Validity::days_from_now(30)).unwrap()
    }

    #[test]
    fn issued_chain_verifies_with_rustls() {
        let ca = dev_ca();
        let server = ca
            .issue(
                Usage::Server,
                &names(&["localhost", "127.0.0.1", "::1"]),
                Validity::days_from_now(2),
            )
            .unwrap();
        let client = ca
            .issue(
                Usage::Client,
                &names(&["historian-replica.corp.example"]),
                Validity::days_from_now(2),
            )
            .unwrap();
        verify_client(&ca, &client.cert_pem).unwrap();
        for name in ["localhost", "127.0.0.1", "::1"] {
            verify_server(&ca, &server.cert_pem, name).unwrap();
        }
        let wrong_name = invalid(verify_server(&ca, &server.cert_pem, "other.example"));
        assert!(
            matches!(
                wrong_name,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            "{wrong_name:?}"
        );
        assert!(client.key_pem.contains("BEGIN PRIVATE KEY"));
        assert!(ca.key_pem().contains("BEGIN PRIVATE KEY"));
        assert!(ca.cert_pem().contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn usages_are_not_interchangeable() {
        let ca = dev_ca();
        let server = ca
            .issue(Usage::Server, &names(&["localhost"]), Validity::days_from_now(2))
            .unwrap();
        let client = ca
            .issue(Usage::Client, &names(&["localhost"]), Validity::days_from_now(2))
            .unwrap();
        for error in [
            invalid(verify_client(&ca, &server.cert_pem)),
            invalid(verify_server(&ca, &client.cert_pem, "localhost")),
        ] {
            assert!(
                matches!(
                    error,
                    CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
                ),
                "{error:?}"
            );
        }
    }

    #[test]
    fn a_certificate_from_another_ca_is_rejected() {
        let ca = dev_ca();
        let other = Ca::generate("another CA", Validity::days_from_now(30)).unwrap();
        let client = other
            .issue(
                Usage::Client,
                &names(&["intruder.example"]),
                Validity::days_from_now(2),
            )
            .unwrap();
        let server = other
            .issue(Usage::Server, &names(&["localhost"]), Validity::days_from_now(2))
            .unwrap();
        assert_eq!(
            invalid(verify_client(&ca, &client.cert_pem)),
            CertificateError::UnknownIssuer
        );
        assert_eq!(
            invalid(verify_server(&ca, &server.cert_pem, "localhost")),
            CertificateError::UnknownIssuer
        );
        // Another CA with the same name (two dev CAs made with the default name): the
        // signature gives it away.
        let twin = dev_ca();
        let client = twin
            .issue(
                Usage::Client,
                &names(&["intruder.example"]),
                Validity::days_from_now(2),
            )
            .unwrap();
        assert_eq!(
            invalid(verify_client(&ca, &client.cert_pem)),
            CertificateError::BadSignature
        );
        // A CA certificate is not a client certificate, even its own.
        assert!(verify_client(&ca, ca.cert_pem()).is_err());
    }

    #[test]
    fn an_expired_certificate_is_rejected_as_expired() {
        let ca = dev_ca();
        let now = SystemTime::now();
        let expired = Validity {
            not_before: now - Duration::from_secs(10 * 86_400),
            not_after: now - Duration::from_secs(86_400),
        };
        let client = ca
            .issue(Usage::Client, &names(&["late.example"]), expired)
            .unwrap();
        let error = invalid(verify_client(&ca, &client.cert_pem));
        assert!(
            matches!(
                error,
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ),
            "{error:?}"
        );
        let future = Validity {
            not_before: now + Duration::from_secs(86_400),
            not_after: now + Duration::from_secs(2 * 86_400),
        };
        let early = ca
            .issue(Usage::Client, &names(&["early.example"]), future)
            .unwrap();
        let error = invalid(verify_client(&ca, &early.cert_pem));
        assert!(
            matches!(
                error,
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn invalid_validity_is_refused() {
        let ca = dev_ca();
        let now = SystemTime::now();
        let backwards = Validity {
            not_before: now,
            not_after: now - Duration::from_secs(1),
        };
        assert!(matches!(
            ca.issue(Usage::Client, &names(&["a.example"]), backwards),
            Err(PkiError::BadValidity { .. })
        ));
        assert!(matches!(
            Ca::generate("x", Validity::days_from_now(u32::MAX)),
            Err(PkiError::BadValidity { .. })
        ));
        // Zero days still leaves the hour of skew allowance: not_before < not_after.
        assert!(Ca::generate("x", Validity::days_from_now(0)).is_ok());
        let before_1970 = Validity {
            not_before: SystemTime::UNIX_EPOCH - Duration::from_secs(1),
            not_after: now,
        };
        assert!(matches!(
            Ca::generate("x", before_1970),
            Err(PkiError::BadValidity { .. })
        ));
        let validity = Validity::days_from_now(825);
        let length = validity.not_after.duration_since(validity.not_before).unwrap();
        assert_eq!(length.as_secs(), 825 * 86_400 + 3600);
    }

    #[test]
    fn issue_needs_valid_names() {
        let ca = dev_ca();
        assert!(matches!(
            ca.issue(Usage::Server, &[], Validity::days_from_now(1)),
            Err(PkiError::NoNames)
        ));
        let error = ca
            .issue(
                Usage::Server,
                &names(&["ok.example", "bad name"]),
                Validity::days_from_now(1),
            )
            .unwrap_err();
        assert!(
            error.to_string().contains("\"bad name\" is not a valid DNS name"),
            "{error}"
        );
    }

    #[test]
    fn load_round_trips_and_signs_for_the_same_ca() {
        let dir = temp_dir("load");
        let ca = dev_ca();
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        write_public(&cert, ca.cert_pem(), false).unwrap();
        write_private(&key, ca.key_pem()).unwrap();
        let loaded = Ca::load(&cert, &key).unwrap();
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        assert_eq!(loaded.key_pem(), ca.key_pem());
        let client = loaded
            .issue(
                Usage::Client,
                &names(&["siem.corp.example"]),
                Validity::days_from_now(1),
            )
            .unwrap();
        verify_client(&ca, &client.cert_pem).unwrap();
        // Debug never shows a private key.
        for text in [format!("{loaded:?}"), format!("{client:?}")] {
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn load_refuses_bad_files_naming_them() {
        let dir = temp_dir("load-bad");
        let ca = dev_ca();
        let other = dev_ca();
        let (cert, key, other_key) = (dir.join("ca.pem"), dir.join("ca.key"), dir.join("other.key"));
        write_public(&cert, ca.cert_pem(), false).unwrap();
        write_private(&key, ca.key_pem()).unwrap();
        write_private(&other_key, other.key_pem()).unwrap();

        let error = Ca::load(&dir.join("missing.pem"), &key).unwrap_err();
        assert!(matches!(error, PkiError::Missing { .. }), "{error:?}");
        assert!(error.to_string().contains("missing.pem"));

        let error = Ca::load(&cert, &other_key).unwrap_err();
        assert!(matches!(error, PkiError::KeyMismatch { .. }), "{error:?}");
        assert!(error.to_string().contains("other.key"), "{error}");

        fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
        let error = Ca::load(&cert, &key).unwrap_err();
        assert!(
            matches!(error, PkiError::Permissions { mode: 0o640, .. }),
            "{error:?}"
        );
        assert!(error
            .to_string()
            .contains(&format!("chmod 600 {}", key.display())));
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();

        // A leaf certificate is not a CA; a key in the certificate's place is not a certificate.
        let leaf = ca
            .issue(Usage::Server, &names(&["localhost"]), Validity::days_from_now(1))
            .unwrap();
        let leaf_path = dir.join("leaf.pem");
        write_public(&leaf_path, &leaf.cert_pem, false).unwrap();
        let error = Ca::load(&leaf_path, &key).unwrap_err();
        assert!(error.to_string().contains("not a CA"), "{error}");
        let error = Ca::load(&other_key, &key).unwrap_err();
        assert!(matches!(error, PkiError::BadFile { .. }), "{error:?}");
        assert!(!error.to_string().contains("BEGIN"), "{error}");
        let garbage = dir.join("garbage.key");
        write_private(&garbage, "not a key\n").unwrap();
        let error = Ca::load(&cert, &garbage).unwrap_err();
        assert!(matches!(error, PkiError::BadFile { .. }), "{error:?}");
        assert!(error.to_string().contains("garbage.key"), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn write_private_is_0600_and_never_overwrites() {
        let dir = temp_dir("private");
        let path = dir.join("server.key");
        write_private(&path, "secret one\n").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let error = write_private(&path, "secret two\n").unwrap_err();
        assert!(matches!(error, PkiError::AlreadyExists { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("already exists"), "{message}");
        assert!(!message.contains("secret"), "{message}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "secret one\n");
        let error = write_private(&dir.join("no/such/dir.key"), "x").unwrap_err();
        assert!(matches!(error, PkiError::Io { .. }), "{error:?}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn write_public_is_0644_and_overwrites_only_when_asked() {
        let dir = temp_dir("public");
        let path = dir.join("server.pem");
        write_public(&path, "one\n", false).unwrap();
        assert!(matches!(
            write_public(&path, "two\n", false),
            Err(PkiError::AlreadyExists { .. })
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "one\n");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        write_public(&path, "two\n", true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        // umask may only take bits away; it never grants write to others.
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o644, 0, "{mode:o}");
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        write_public(&dir.join("fresh.pem"), "three\n", true).unwrap();
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            2,
            "no temporary file left behind"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn parse_name_sorts_ip_uri_and_dns() {
        let ip = |text: &str| SanType::IpAddress(text.parse().unwrap());
        assert_eq!(parse_name("127.0.0.1").unwrap(), ip("127.0.0.1"));
        assert_eq!(parse_name("::1").unwrap(), ip("::1"));
        assert_eq!(parse_name("fd00::5").unwrap(), ip("fd00::5"));
        for uri in [
            "spiffe://corp.example/historian",
            "https://corp.example/consumers/siem",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "spiffe:short",
        ] {
            assert_eq!(
                parse_name(uri).unwrap(),
                SanType::URI(uri.try_into().unwrap()),
                "{uri}"
            );
        }
        for dns in [
            "localhost",
            "historian-replica.corp.example",
            "a",
            "x1.example",
            "Mixed.Case.Example",
            "123.example",
        ] {
            assert_eq!(
                parse_name(dns).unwrap(),
                SanType::DnsName(dns.try_into().unwrap()),
                "{dns}"
            );
        }
    }

    #[test]
    fn parse_name_says_what_is_wrong() {
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = ["abcdefghij"; 26].join(".");
        let cases = [
            ("", "DNS name", "empty"),
            ("bad name", "DNS name", "' '"),
            ("under_score.example", "DNS name", "'_'"),
            ("*.corp.example", "DNS name", "wildcard"),
            ("corp.example.", "DNS name", "trailing dot"),
            ("a..example", "DNS name", "empty label"),
            (".example", "DNS name", "empty label"),
            ("-a.example", "DNS name", "`-`"),
            ("a-.example", "DNS name", "`-`"),
            (long_label.as_str(), "DNS name", "63"),
            (long_name.as_str(), "DNS name", "253"),
            ("10.0.0.256", "DNS name", "IP address"),
            ("1.2.3", "DNS name", "IP address"),
            ("bücher.example", "DNS name", "'ü'"),
            ("host:8443", "DNS name", "':'"),
            ("https://", "URI", "nothing follows"),
            ("urn:", "URI", "nothing follows"),
            ("1http://x", "URI", "scheme"),
            ("://x", "URI", "scheme"),
            ("spiffe://corp/a b", "URI", "' '"),
            ("spiffe://corp/\"q\"", "URI", "'\"'"),
            ("spiffe://corp/ä", "URI", "'ä'"),
        ];
        for (name, kind, expected) in cases {
            match parse_name(name) {
                Err(error @ PkiError::BadName { kind: k, .. }) => {
                    assert_eq!(k, kind, "{name}");
                    let message = error.to_string();
                    assert!(
                        message.contains(&format!("{name:?} is not a valid {kind}")),
                        "{message}"
                    );
                    assert!(message.contains(expected), "{name}: {message}");
                }
                other => panic!("{name}: expected BadName, got {other:?}"),
            }
        }
    }

    fn identities_of(list: &[&str], usage: Usage) -> Vec<String> {
        let issued = dev_ca()
            .issue(usage, &names(list), Validity::days_from_now(1))
            .unwrap();
        identities(&cert_der(&issued.cert_pem).unwrap()).unwrap()
    }

    #[test]
    fn identities_are_dns_and_uri_names_in_order() {
        assert_eq!(
            identities_of(&["historian-replica.corp.example"], Usage::Client),
            ["historian-replica.corp.example"]
        );
        assert_eq!(
            identities_of(&["spiffe://corp.example/siem"], Usage::Client),
            ["spiffe://corp.example/siem"]
        );
        assert_eq!(
            identities_of(
                &[
                    "b.corp.example",
                    "10.20.0.9",
                    "urn:example:consumer:7",
                    "::1",
                    "a.corp.example"
                ],
                Usage::Client
            ),
            ["b.corp.example", "urn:example:consumer:7", "a.corp.example"]
        );
        // IP-only: the common name is "10.20.0.9" but it is no identity.
        assert!(identities_of(&["10.20.0.9"], Usage::Client).is_empty());
        assert!(identities_of(&["10.20.0.9", "::1"], Usage::Client).is_empty());
        // Server certificates are read the same way.
        assert_eq!(
            identities_of(&["localhost", "127.0.0.1"], Usage::Server),
            ["localhost"]
        );
    }

    #[test]
    fn a_dns_name_with_a_colon_or_a_uri_without_one_is_no_identity() {
        // Either could pose as the other kind of identity in a policy's `consumers`.
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = vec![
            SanType::DnsName("spiffe://corp.example/siem".try_into().unwrap()),
            SanType::URI("siem.corp.example".try_into().unwrap()),
            SanType::DnsName("ok.corp.example".try_into().unwrap()),
            SanType::URI("spiffe://corp.example/ok".try_into().unwrap()),
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            identities(cert.der()).unwrap(),
            ["ok.corp.example", "spiffe://corp.example/ok"]
        );
    }

    #[test]
    fn identities_ignore_the_common_name_and_a_ca_has_none() {
        // The CA certificate has a common name and no subject-alternative names.
        let ca = dev_ca();
        assert!(identities(&cert_der(ca.cert_pem()).unwrap()).unwrap().is_empty());
    }

    #[test]
    fn identities_refuse_what_is_not_one_certificate() {
        let issued = dev_ca()
            .issue(Usage::Client, &names(&["a.example"]), Validity::days_from_now(1))
            .unwrap();
        let der = cert_der(&issued.cert_pem).unwrap();
        for bad in [
            Vec::new(),
            b"not a certificate".to_vec(),
            der[..der.len() - 1].to_vec(),
            [der.as_slice(), &[0]].concat(),
        ] {
            assert!(
                matches!(identities(&bad), Err(PkiError::BadCertificate { .. })),
                "{} bytes",
                bad.len()
            );
        }
        assert!(matches!(
            cert_der(&issued.key_pem),
            Err(PkiError::BadCertificate { .. })
        ));
        assert!(matches!(cert_der("junk"), Err(PkiError::BadCertificate { .. })));
    }
}
