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
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PublicKeyData,
};

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

mod names;
#[cfg(test)]
mod tests;

pub use names::{cert_der, identities, parse_name};
