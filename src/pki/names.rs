//! Names in certificates: parsing the names `weir pki issue` is given, and reading the
//! identities the consumer server authorizes from a verified certificate.

use std::net::IpAddr;

use rcgen::SanType;
use x509_parser::extensions::GeneralName;

use super::{pem_contents, PkiError};

/// The DER bytes of the first certificate of a PEM text, e.g. [`Issued::cert_pem`](super::Issued::cert_pem), for
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
