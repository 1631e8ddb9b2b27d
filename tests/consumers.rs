//! The IT side's spool and mutual-TLS consumer server, end to end: both daemons on loopback,
//! consumers over TLS and QUIC with certificates from a throw-away PKI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{read, runtime, send_datagrams, spawn, start, wait_durable, Site, READER, SIEM};
use weir::consumer::client::{ClientError, Consumer, Transport};
use weir::consumer::protocol::{ErrorCode, Message, Record, RecordKind, StartAt, Subscription};
use weir::harness::drive::send_stream;
use weir::harness::pki::TestPki;
use weir::harness::Pattern;
use weir::pki::Validity;

fn refused(result: Result<(Consumer, Vec<weir::consumer::protocol::Start>), ClientError>) -> ClientError {
    match result {
        Ok(_) => panic!("the server accepted a consumer it must refuse"),
        Err(error) => error,
    }
}

#[test]
fn handshakes_without_a_valid_certificate_and_ungranted_channels_are_refused() {
    let site = start("consumer-refusals", "");
    let rt = runtime();
    let other_ca = TestPki::create(&site.dir.join("other-pki"), "weir test CA").unwrap();
    let reader = site.pki.client(READER).unwrap();
    let siem = site.pki.client(SIEM).unwrap();
    let foreign = other_ca.client(READER).unwrap();
    let expired = site
        .pki
        .client_with(
            "expired",
            READER,
            Validity {
                not_before: SystemTime::now() - Duration::from_secs(10 * 86_400),
                not_after: SystemTime::now() - Duration::from_secs(86_400),
            },
        )
        .unwrap();
    let subscribe = |channel: &str| {
        vec![Subscription {
            channel: channel.into(),
            from: StartAt::Earliest,
        }]
    };
    for transport in [Transport::Tls, Transport::Quic] {
        for (what, files) in [("another CA", &foreign), ("an expired certificate", &expired)] {
            let error = refused(rt.block_on(Consumer::connect(
                &site.options(files, transport),
                subscribe("stream"),
            )));
            assert!(
                matches!(error, ClientError::Connect { .. }),
                "{transport:?}, {what}: {error}"
            );
        }
        let error = refused(rt.block_on(Consumer::connect(
            &site.options(&siem, transport),
            subscribe("stream"),
        )));
        match error {
            ClientError::Refused { code, message } => {
                assert_eq!(code, ErrorCode::Forbidden, "{message}");
                assert!(message.contains(SIEM) && message.contains("stream"), "{message}");
            }
            other => panic!("{transport:?}: {other}"),
        }
        let error = refused(rt.block_on(Consumer::connect(
            &site.options(&reader, transport),
            subscribe("nope"),
        )));
        // An unknown channel is refused like an ungranted one: channel names are not disclosed.
        match &error {
            ClientError::Refused { code, message } => {
                assert_eq!(*code, ErrorCode::Forbidden);
                assert!(message.contains("nope"), "{message}");
            }
            other => panic!("{other}"),
        }
        // The same consumers are served what they are granted.
        rt.block_on(Consumer::connect(
            &site.options(&siem, transport),
            subscribe("datagrams"),
        ))
        .unwrap();
        rt.block_on(Consumer::connect(
            &site.options(&reader, transport),
            subscribe("stream"),
        ))
        .unwrap();
    }
    // No client certificate at all: a TLS client that offers none.
    let error = rt.block_on(no_certificate(&site));
    assert!(
        error.contains("CertificateRequired") || error.contains("certificate"),
        "{error}"
    );
    // The server logs a refusal when its side of the handshake ends, maybe after the client's.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = site.deliver.log_text();
    while log.matches("consumer_handshake_failed").count() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        log = site.deliver.log_text();
    }
    // 2 transports × (an ungranted channel, an unknown one).
    assert_eq!(log.matches("event=\"consumer_denied\"").count(), 4, "{log}");
    // 2 transports × (another CA, expired) + the client without a certificate.
    assert_eq!(log.matches("consumer_handshake_failed").count(), 5, "{log}");
    site.stop();
}

/// Connects with rustls offering no client certificate; returns how it failed.
async fn no_certificate(site: &Site) -> String {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for cert in weir::consumer::tls::load_certs(&site.pki.ca_cert).unwrap() {
        roots.add(cert).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(site.serve).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let result = async {
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let mut request = Vec::new();
        Message::Subscribe(vec![Subscription {
            channel: "datagrams".into(),
            from: StartAt::Earliest,
        }])
        .encode(&mut request);
        tls.write_all(&request).await?;
        let mut buf = [0u8; 64];
        tls.read(&mut buf).await
    }
    .await;
    match result {
        Err(error) => error.to_string(),
        Ok(n) => panic!("the server answered a client without a certificate ({n} bytes)"),
    }
}

#[test]
fn resuming_from_the_last_offset_delivers_every_record_once_and_a_restart_keeps_the_spool() {
    let mut site = start("consumer-resume", "");
    let rt = runtime();
    let reader = site.pki.client(READER).unwrap();
    let tls = site.options(&reader, Transport::Tls);
    send_datagrams(&site, 0, 1000);
    wait_durable(&site, "datagrams", 1000);

    // Read 337 records, disconnect, resume from the next offset.
    let first = rt.block_on(read(&tls, "datagrams", StartAt::Earliest, 337));
    assert_eq!(first.len(), 337);
    let next = first.last().unwrap().offset + 1;
    let rest = rt.block_on(read(&tls, "datagrams", StartAt::Offset(next), usize::MAX));
    let all: Vec<Record> = first.into_iter().chain(rest).collect();
    let texts: Vec<String> = all
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    let expected: Vec<String> = (0..1000).map(|i| format!("datagram {i}")).collect();
    assert_eq!(texts, expected, "every record exactly once, in order");
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, r)| r.offset == i as u64 && r.kind == RecordKind::Data));

    // A restart keeps the spool: the same records, then new ones after them.
    site.restart_recv();
    let again = rt.block_on(read(&tls, "datagrams", StartAt::Earliest, usize::MAX));
    assert_eq!(again, all, "the spool survived the restart unchanged");
    // A restarted receiver refuses the running session briefly (replay floor): restart the
    // sender too, as an operator would. Session ids start with the second they began in, and a
    // session of the floor's own second is refused after a restart: let that second pass.
    site.send.stop(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(1100));
    site.send = spawn(
        env!("CARGO_BIN_EXE_weir-send"),
        &site.policy,
        site.dir.join("send-2.log"),
        "weir-send ready",
    );
    send_datagrams(&site, 1000, 10);
    wait_durable(&site, "datagrams", 1010);
    let new = rt.block_on(read(&tls, "datagrams", StartAt::Offset(1000), usize::MAX));
    let texts: Vec<String> = new
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    assert_eq!(
        texts,
        (1000..1010).map(|i| format!("datagram {i}")).collect::<Vec<_>>()
    );
    assert_eq!(new.first().map(|r| r.offset), Some(1000));
    site.stop();
}

#[test]
fn tls_and_quic_deliver_identical_records() {
    let site = start("consumer-parity", "");
    let rt = runtime();
    let reader = site.pki.client(READER).unwrap();
    let sent = send_stream(site.conduit.tcp.0, 8 << 20, 5).unwrap();
    send_datagrams(&site, 0, 200);
    wait_durable(&site, "datagrams", 200);
    // The stream is complete once its End record is durable.
    let deadline = Instant::now() + Duration::from_secs(20);
    let over_tls = loop {
        let records = rt.block_on(read(
            &site.options(&reader, Transport::Tls),
            "stream",
            StartAt::Earliest,
            usize::MAX,
        ));
        if records.last().is_some_and(|r| r.kind == RecordKind::End) {
            break records;
        }
        assert!(Instant::now() < deadline, "the stream never ended in the spool");
        std::thread::sleep(Duration::from_millis(50));
    };
    let over_quic = rt.block_on(read(
        &site.options(&reader, Transport::Quic),
        "stream",
        StartAt::Earliest,
        usize::MAX,
    ));
    assert_eq!(over_tls.len(), over_quic.len());
    assert!(over_tls == over_quic, "TLS and QUIC records differ");
    let datagrams_tls = rt.block_on(read(
        &site.options(&reader, Transport::Tls),
        "datagrams",
        StartAt::Earliest,
        usize::MAX,
    ));
    let datagrams_quic = rt.block_on(read(
        &site.options(&reader, Transport::Quic),
        "datagrams",
        StartAt::Earliest,
        usize::MAX,
    ));
    assert_eq!(datagrams_tls.len(), 200);
    assert!(
        datagrams_tls == datagrams_quic,
        "TLS and QUIC datagram records differ"
    );
    // And they are what was sent: Open, the stream's bytes in order, End.
    assert_eq!(over_tls.first().map(|r| r.kind), Some(RecordKind::Open));
    let bytes: Vec<u8> = over_tls
        .iter()
        .filter(|r| r.kind == RecordKind::Data)
        .flat_map(|r| r.payload.iter().copied())
        .collect();
    assert_eq!(bytes.len() as u64, sent.bytes);
    let mut pattern = Pattern::new(5);
    assert!(
        pattern.check(&bytes),
        "the stream's bytes differ from what was sent"
    );
    site.stop();
}

#[test]
fn kill_9_during_heavy_writes_loses_no_fsynced_record_and_serves_no_corrupt_one() {
    let mut site = start("consumer-crash", "segment = \"1 MiB\"\nretain = \"1 GiB\"");
    let rt = runtime();
    let reader = site.pki.client(READER).unwrap();
    let input = site.conduit.tcp.0;
    let writer = std::thread::spawn(move || {
        let _ = send_stream(input, 512 << 20, 9);
    });
    // Wait until a good amount is durable, note the durable offset, and kill the receiver
    // while the writes go on.
    let deadline = Instant::now() + Duration::from_secs(30);
    while site.durable("stream") < 200 {
        assert!(
            Instant::now() < deadline,
            "nothing became durable:\n{}",
            site.recv.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let durable_seen = site.durable("stream");
    site.recv.signal("KILL").unwrap();
    site.send.stop(Duration::from_secs(5));
    let _ = writer.join();
    std::thread::sleep(Duration::from_millis(1100));
    site.send = spawn(
        env!("CARGO_BIN_EXE_weir-send"),
        &site.policy,
        site.dir.join("send-2.log"),
        "weir-send ready",
    );
    site.restart_recv();
    let records = rt.block_on(read(
        &site.options(&reader, Transport::Tls),
        "stream",
        StartAt::Earliest,
        usize::MAX,
    ));
    assert!(
        records.len() as u64 >= durable_seen,
        "{} records after the crash, {durable_seen} were durable before it",
        records.len()
    );
    assert!(
        records.iter().enumerate().all(|(i, r)| r.offset == i as u64),
        "no hole in the offsets"
    );
    // Every record is intact: the data records continue the sent pattern, byte for byte.
    let mut pattern = Pattern::new(9);
    for record in records.iter().filter(|r| r.kind == RecordKind::Data) {
        assert!(
            pattern.check(&record.payload),
            "record {} is corrupt",
            record.offset
        );
    }
    site.stop();
}

#[test]
fn weir_sub_writes_records_and_resumes_from_the_offset_it_printed() {
    let site = start("consumer-cli", "");
    let reader = site.pki.client(READER).unwrap();
    send_datagrams(&site, 0, 50);
    wait_durable(&site, "datagrams", 50);
    let out = site.dir.join("out.jsonl");
    let sub = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("sub")
            .args(["--server", &site.serve.to_string(), "--server-name", "localhost"])
            .arg("--ca")
            .arg(&site.pki.ca_cert)
            .arg("--cert")
            .arg(&reader.cert)
            .arg("--key")
            .arg(&reader.key)
            .args(["--channel", "datagrams", "--format", "json", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stderr).unwrap()
    };
    let first = sub(&["--count", "20"]);
    assert!(
        first.contains("next offset 20 (resume with --from 20)"),
        "{first}"
    );
    let second = sub(&["--from", "20", "--quic", "--stop-at-end"]);
    assert!(second.contains("next offset 50"), "{second}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        (0..50)
            .map(|i| format!("datagram {i}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert!(lines.iter().enumerate().all(|(i, l)| l["offset"] == i as u64));
    // A channel the certificate is not granted: a clear refusal and a failing exit code.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("sub")
        .args(["--server", &site.serve.to_string(), "--server-name", "localhost"])
        .arg("--ca")
        .arg(&site.pki.ca_cert)
        .arg("--cert")
        .arg(&site.pki.client(SIEM).unwrap().cert)
        .arg("--key")
        .arg(&site.pki.client(SIEM).unwrap().key)
        .args(["--channel", "stream"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is granted to") && stderr.contains(SIEM),
        "{stderr}"
    );
    site.stop();
}

#[test]
fn weir_pki_makes_a_ca_and_certificates_the_server_accepts() {
    let dir = weir::harness::setup::scratch_dir("pki-cli").unwrap();
    let pki_dir = dir.join("pki");
    let weir = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("pki")
            .args(args)
            .arg("--dir")
            .arg(&pki_dir)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    assert!(weir(&["init"]).0);
    let (ok, again) = weir(&["init"]);
    assert!(!ok && again.contains("already exists"), "{again}");
    assert!(weir(&["issue", "server", "localhost", "127.0.0.1"]).0);
    let (ok, client) = weir(&["issue", "client", READER]);
    assert!(
        ok && client.contains(&format!("consumers = [\"{READER}\"]")),
        "{client}"
    );
    use std::os::unix::fs::PermissionsExt;
    for key in ["ca.key", "server.key", &format!("{READER}.key")] {
        let mode = std::fs::metadata(pki_dir.join(key)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    // The files load as the server and consumer TLS configurations, and carry the identity.
    let server = weir::consumer::tls::server_config(
        &pki_dir.join("server.pem"),
        &pki_dir.join("server.key"),
        &pki_dir.join("ca.pem"),
    );
    let client = weir::consumer::tls::client_config(
        &pki_dir.join(format!("{READER}.pem")),
        &pki_dir.join(format!("{READER}.key")),
        &pki_dir.join("ca.pem"),
    );
    assert!(server.is_ok() && client.is_ok());
    let der = weir::consumer::tls::load_certs(&pki_dir.join(format!("{READER}.pem"))).unwrap();
    assert_eq!(
        weir::pki::identities(der[0].as_ref()).unwrap(),
        vec![READER.to_owned()]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reload_grants_and_revokes_channels_for_new_subscriptions() {
    let site = start("consumer-reload", "");
    let rt = runtime();
    let reader = site.pki.client(READER).unwrap();
    let siem = site.pki.client(SIEM).unwrap();
    let subscribe = |files, channel: &str| {
        rt.block_on(Consumer::connect(
            &site.options(files, Transport::Tls),
            vec![Subscription {
                channel: channel.into(),
                from: StartAt::Latest,
            }],
        ))
    };
    assert!(subscribe(&siem, "stream").is_err(), "not granted yet");
    let streaming = subscribe(&reader, "datagrams").unwrap();
    // Grant the stream to the SIEM and revoke the datagrams from the reader, then SIGHUP.
    let text = std::fs::read_to_string(&site.policy).unwrap();
    let stream_grant = format!("consumers = [\"{READER}\"]");
    let datagram_grant = format!("consumers = [\"{READER}\", \"{SIEM}\"]");
    assert!(text.contains(&stream_grant) && text.contains(&datagram_grant));
    let text = text
        .replace(&datagram_grant, &format!("consumers = [\"{SIEM}\"]"))
        .replace(&stream_grant, &format!("consumers = [\"{READER}\", \"{SIEM}\"]"));
    std::fs::write(&site.policy, text).unwrap();
    site.deliver.signal("HUP").unwrap();
    assert!(
        weir::harness::drive::wait_for_log(
            &site.dir.join("deliver.log"),
            "policy reloaded",
            Duration::from_secs(10)
        ),
        "{}",
        site.deliver.log_text()
    );
    subscribe(&siem, "stream").unwrap();
    match subscribe(&reader, "datagrams") {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Forbidden),
        other => panic!("the revoked grant still works: {other:?}"),
    }
    // A session that was already streaming keeps what it was granted (restart to cut it).
    let (mut streaming, _) = streaming;
    send_datagrams(&site, 0, 1);
    let next = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), streaming.next()).await });
    assert!(
        matches!(
            next,
            Ok(Ok(Some(Message::Record(_)) | Some(Message::CaughtUp { .. })))
        ),
        "{next:?}"
    );
    site.stop();
}
