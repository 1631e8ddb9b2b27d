//! The consumer server under pressure: a slow consumer overtaken by retention, connection
//! limits and timeouts, and a real, independent TLS client (`openssl s_client`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{read, runtime, send_datagrams, start, wait_durable, Site, READER};
use weir::consumer::client::{ClientError, Consumer, Transport};
use weir::consumer::protocol::{GapReason, Message, RecordKind, StartAt, Subscription};

fn subscribe(channel: &str, from: StartAt) -> Vec<Subscription> {
    vec![Subscription {
        channel: channel.into(),
        from,
    }]
}

#[test]
fn a_stalled_consumer_holds_nobody_up_and_gets_a_gap_when_retention_passes_it() {
    // Small segments and retention, so that retention overtakes the stalled consumer.
    let site = start("consumer-slow", "segment = \"64 KiB\"\nretain = \"1 MiB\"");
    let rt = runtime();
    let reader = site.pki.client(READER).unwrap();
    let options = site.options(&reader, Transport::Tls);
    send_datagrams(&site, 0, 10);
    wait_durable(&site, "datagrams", 10);
    // The slow consumer reads one record, then stops reading.
    let (mut slow, _) = rt
        .block_on(Consumer::connect(
            &options,
            subscribe("datagrams", StartAt::Earliest),
        ))
        .unwrap();
    match rt.block_on(slow.next()).unwrap() {
        Some(Message::Record(record)) => assert_eq!(record.offset, 0),
        other => panic!("{other:?}"),
    }
    // 16 MiB more, in 8 KiB datagrams: far more than retention and the socket buffers hold.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = vec![0x5a; 8 << 10];
    for i in 0..2048u32 {
        socket.send_to(&payload, site.conduit.udp.0).unwrap();
        if i % 64 == 63 {
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    wait_durable(&site, "datagrams", 2058);
    // Ingestion did not wait for the stalled consumer, and a fast consumer reads the tail.
    assert_eq!(
        site.metric("weir_spool_dropped_total{channel=\"datagrams\",reason=\"queue_full\"}"),
        0.0
    );
    let start_offset = site.metric("weir_spool_start_offset{channel=\"datagrams\"}");
    assert!(
        start_offset > 100.0,
        "retention deleted old segments (start {start_offset})"
    );
    let tail = rt.block_on(read(&options, "datagrams", StartAt::Latest, usize::MAX));
    assert!(tail.is_empty(), "latest starts at the end");
    let fast = rt.block_on(read(
        &options,
        "datagrams",
        StartAt::Offset(start_offset as u64),
        usize::MAX,
    ));
    assert_eq!(fast.len() as f64, 2058.0 - start_offset);
    // The stalled consumer wakes up: what it can still get, then an explicit gap, then the rest.
    let mut gap = None;
    let mut last = 0;
    rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), slow.next()).await {
                Ok(Ok(Some(Message::Record(record)))) => {
                    assert!(record.offset > last, "in order");
                    if gap.is_none() {
                        assert_eq!(record.offset, last + 1, "no silent hole");
                    }
                    last = record.offset;
                }
                Ok(Ok(Some(Message::Gap { from, to, reason, .. }))) => {
                    assert_eq!(reason, GapReason::Retention);
                    assert_eq!(from, last + 1, "the gap starts where the consumer was");
                    gap = Some((from, to));
                    last = to - 1;
                }
                // It may catch up with the writer several times; the end is offset 2058.
                Ok(Ok(Some(Message::CaughtUp { next: 2058, .. }))) => break,
                Ok(Ok(Some(Message::CaughtUp { next, .. }))) => assert_eq!(next, last + 1),
                Ok(Ok(Some(Message::Keepalive))) => {}
                other => panic!("after offset {last}: {other:?}"),
            }
        }
    });
    let (from, to) = gap.expect("the stalled consumer got a gap notice");
    assert!(
        to as f64 <= start_offset + 1.0 && from < to,
        "gap {from}..{to}, start {start_offset}"
    );
    assert!(site.metric("weir_consumer_gaps_total") >= 1.0);
    site.stop();
}

#[test]
fn connections_are_bounded_and_silent_ones_are_closed() {
    let site = start("consumer-limits", "");
    let rt = runtime();
    let reader = site.pki.client(READER).unwrap();
    // The fixture allows 8 connections.
    let mut open = Vec::new();
    for i in 0..8 {
        let transport = if i % 2 == 0 {
            Transport::Tls
        } else {
            Transport::Quic
        };
        let (consumer, _) = rt
            .block_on(Consumer::connect(
                &site.options(&reader, transport),
                subscribe("datagrams", StartAt::Latest),
            ))
            .unwrap();
        open.push(consumer);
    }
    for transport in [Transport::Tls, Transport::Quic] {
        let refused = rt.block_on(Consumer::connect(
            &site.options(&reader, transport),
            subscribe("datagrams", StartAt::Latest),
        ));
        assert!(
            matches!(refused, Err(ClientError::Connect { .. })),
            "{transport:?}: {refused:?}"
        );
    }
    assert_eq!(site.metric("weir_consumer_refused_busy_total"), 2.0);
    assert_eq!(site.metric("weir_consumer_connections"), 8.0);
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    while site.metric("weir_consumer_connections") > 7.0 {
        assert!(
            Instant::now() < deadline,
            "a closed consumer's slot was never released"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.block_on(Consumer::connect(
        &site.options(&reader, Transport::Tls),
        subscribe("datagrams", StartAt::Latest),
    ))
    .unwrap();
    drop(open);
    // Wait for every slot to be free, or the next connection would be refused as busy.
    let deadline = Instant::now() + Duration::from_secs(10);
    while site.metric("weir_consumer_connections") > 0.0 {
        assert!(
            Instant::now() < deadline,
            "closed consumers' slots were never released"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A TCP connection that never starts its handshake is closed after handshake_timeout (2 s).
    let mut silent = std::net::TcpStream::connect(site.serve).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let n = silent.read(&mut [0u8; 16]).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    site.stop();
}

/// `openssl s_client`, with the given extra arguments, sending a subscription to `datagrams`;
/// returns (what it printed on stdout, stderr).
fn s_client(site: &Site, extra: &[&str]) -> (Vec<u8>, String) {
    let mut request = Vec::new();
    Message::Subscribe(subscribe("datagrams", StartAt::Earliest)).encode(&mut request);
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &site.serve.to_string(),
            "-tls1_3",
            "-quiet",
            "-verify_return_error",
        ])
        .arg("-CAfile")
        .arg(&site.pki.ca_cert)
        .args(["-verify_hostname", "localhost"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&request).unwrap();
    // Keep stdin open while the server answers, then close it: s_client ends the session.
    std::thread::sleep(Duration::from_millis(1500));
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn openssl_s_client_is_refused_without_a_certificate_and_served_with_one() {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var_os("WEIR_REQUIRE_OPENSSL").is_none(),
            "openssl is required (WEIR_REQUIRE_OPENSSL is set) but not installed"
        );
        eprintln!("skipped: openssl is not installed (scripts/setup installs it)");
        return;
    }
    let site = start("consumer-openssl", "");
    send_datagrams(&site, 0, 3);
    wait_durable(&site, "datagrams", 3);
    let reader = site.pki.client(READER).unwrap();

    let (stdout, stderr) = s_client(&site, &[]);
    assert!(
        stdout.is_empty(),
        "no data without a client certificate, got {} bytes; stderr:\n{stderr}",
        stdout.len()
    );
    assert!(stderr.contains("certificate required"), "stderr:\n{stderr}");

    let cert = reader.cert.to_str().unwrap().to_owned();
    let key = reader.key.to_str().unwrap().to_owned();
    let (stdout, stderr) = s_client(&site, &["-cert", &cert, "-key", &key]);
    // The answer: Subscribed, then the three records, then CaughtUp.
    let mut frames = Vec::new();
    let mut rest = stdout.as_slice();
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let Some(frame) = rest.get(4..4 + len) else { break };
        frames.push(Message::decode(frame).unwrap());
        rest = &rest[4 + len..];
    }
    assert!(
        matches!(frames.first(), Some(Message::Subscribed(_))),
        "{frames:?}\nstderr:\n{stderr}"
    );
    let records: Vec<Vec<u8>> = frames
        .iter()
        .filter_map(|m| match m {
            Message::Record(r) => Some(r.payload.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        records,
        (0..3)
            .map(|i| format!("datagram {i}").into_bytes())
            .collect::<Vec<_>>(),
        "stderr:\n{stderr}"
    );
    site.stop();
}

/// Unmounts (lazily) on drop, so a failing test does not leave a mount behind.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn padded(i: u64) -> Vec<u8> {
    let mut payload = format!("datagram {i} ").into_bytes();
    payload.resize(4 << 10, b'.');
    payload
}

#[test]
fn a_full_disk_stops_the_channel_with_counted_drops_and_it_resumes_when_space_is_freed() {
    if !nix::unistd::Uid::effective().is_root() {
        assert!(
            std::env::var_os("WEIR_REQUIRE_ROOT").is_none(),
            "WEIR_REQUIRE_ROOT is set but the test does not run as root"
        );
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let mut mount = None;
    let site = common::start_prepared("consumer-full", "segment = \"64 KiB\"", |dir| {
        let spool = dir.join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&spool)
            .status()
            .unwrap();
        assert!(mounted.success(), "mount tmpfs");
        mount = Some(Mount(spool.clone()));
        std::fs::write(spool.join("filler"), vec![0u8; 256 << 10]).unwrap();
    });
    let _mount = mount;
    let rt = runtime();
    let reader = site.pki.client(READER).unwrap();
    let options = site.options(&reader, Transport::Tls);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..400 {
        socket.send_to(&padded(i), site.conduit.udp.0).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
    let full = "weir_spool_full{channel=\"datagrams\"}";
    let dropped = "weir_spool_dropped_total{channel=\"datagrams\",reason=\"disk_full\"}";
    let deadline = Instant::now() + Duration::from_secs(10);
    while site.metric(dropped) + site.metric("weir_spool_records_total{channel=\"datagrams\"}") < 400.0 {
        assert!(
            Instant::now() < deadline,
            "not every datagram was stored or counted:\n{}",
            site.recv.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(site.metric(full), 1.0);
    // `weir status` shows it too.
    let status = weir::status::fetch(&format!("http://{}", site.metrics)).unwrap();
    let text = weir::status::render(&status);
    assert!(text.contains("FULL"), "{text}");
    let refused = site.metric(dropped);
    assert!(refused > 0.0, "the disk never filled");
    assert!(site.recv.log_text().contains("event=\"spool_full\""));
    // What was stored before the disk filled is intact, in order, with no hole.
    let stored = rt.block_on(read(&options, "datagrams", StartAt::Earliest, usize::MAX));
    assert_eq!(stored.len() as f64, 400.0 - refused);
    for (i, record) in stored.iter().enumerate() {
        assert_eq!(record.payload, padded(i as u64), "record {i}");
    }
    // Free space: after the retry interval the channel accepts records again.
    std::fs::remove_file(site.dir.join("spool/filler")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    for i in 1000..1010 {
        socket.send_to(&padded(i), site.conduit.udp.0).unwrap();
    }
    let end = stored.len() as u64;
    // One loss record for what the full disk refused, then the new records.
    wait_durable(&site, "datagrams", end + 11);
    assert_eq!(site.metric(full), 0.0);
    assert!(site.recv.log_text().contains("event=\"spool_resumed\""));
    let mut resumed = rt.block_on(read(&options, "datagrams", StartAt::Offset(end), usize::MAX));
    let lost = resumed.remove(0);
    assert_eq!(lost.kind, RecordKind::Lost);
    let last_stored_seq = stored.last().unwrap().seq;
    assert_eq!(
        lost.seq,
        last_stored_seq + 1,
        "the loss starts after the last stored message"
    );
    assert_eq!(
        lost.payload,
        (refused as u64).to_be_bytes(),
        "every refused message is in it"
    );
    let payloads: Vec<Vec<u8>> = resumed.into_iter().map(|r| r.payload).collect();
    assert_eq!(payloads, (1000..1010).map(padded).collect::<Vec<_>>());
    site.stop();
}

#[test]
fn a_consumer_that_accepts_nothing_for_the_idle_timeout_is_disconnected() {
    let site = start("consumer-idle", "");
    let rt = runtime();
    let reader = site.pki.client(READER).unwrap();
    // Subscribed, then never reads again while far more than the socket buffers hold arrives.
    let (stalled, _) = rt
        .block_on(Consumer::connect(
            &site.options(&reader, Transport::Tls),
            subscribe("datagrams", StartAt::Earliest),
        ))
        .unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = vec![0x33; 8 << 10];
    for i in 0..4096u32 {
        socket.send_to(&payload, site.conduit.udp.0).unwrap();
        if i % 64 == 63 {
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    // The fixture's idle_timeout is 5 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    while site.metric("weir_consumer_connections") > 0.0 {
        assert!(
            Instant::now() < deadline,
            "the stalled consumer was never disconnected"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        site.deliver.log_text().contains("idle timeout"),
        "{}",
        site.deliver.log_text()
    );
    drop(stalled);
    site.stop();
}
