//! Tests of the dev PKI: chains verified by rustls, validity, files, names and identities.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use rcgen::SanType;
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
