//! Policy enforcement by the running daemons: allow-lists, content filters and reload.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use weir::harness::collect::{TcpCollector, UdpCollector};
use weir::harness::drive::wait_for_log;
use weir::harness::process::Daemon;
use weir::harness::setup::{free_addr, scratch_dir, Conduit};

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Pair {
    dir: PathBuf,
    conduit: Conduit,
    recv: Daemon,
    _deliver: Daemon,
    send: Daemon,
    tcp_out: TcpCollector,
    udp_out: UdpCollector,
}

fn start(label: &str, stream_extra: &str, datagram_extra: &str) -> Pair {
    let dir = scratch_dir(label).unwrap();
    let listen = free_addr().unwrap();
    let tcp_out = TcpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let udp_out = UdpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conduit = Conduit {
        mtu: 1500,
        repair_percent: 10,
        bandwidth: "1 Gbit/s".into(),
        send_to: listen,
        listen,
        tcp: (free_addr().unwrap(), tcp_out.addr),
        udp: (free_addr().unwrap(), udp_out.addr),
        flush: "1ms".into(),
    };
    let policy = conduit.write_with(&dir, stream_extra, datagram_extra).unwrap();
    let spawn = |bin: &str, log: &str, ready: &str| {
        let log = dir.join(log);
        let d = Daemon::spawn(
            Path::new(bin),
            &policy,
            &log,
            &["--log", "info,weir::sources=debug"],
        )
        .unwrap();
        assert!(
            wait_for_log(&log, ready, Duration::from_secs(20)),
            "{bin}:\n{}",
            d.log_text()
        );
        d
    };
    let recv = spawn(env!("CARGO_BIN_EXE_weir-recv"), "recv.log", "weir-recv ready");
    let deliver = spawn(
        env!("CARGO_BIN_EXE_weir-deliver"),
        "deliver.log",
        "weir-deliver ready",
    );
    let send = spawn(env!("CARGO_BIN_EXE_weir-send"), "send.log", "weir-send ready");
    Pair {
        dir,
        conduit,
        recv,
        _deliver: deliver,
        send,
        tcp_out,
        udp_out,
    }
}

fn tcp_from(local: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&local.parse::<SocketAddr>().unwrap().into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

fn udp_from(local: &str, to: SocketAddr, payload: &[u8]) {
    UdpSocket::bind(local).unwrap().send_to(payload, to).unwrap();
}

/// Whether the peer closed the connection without taking data (refused after accept).
fn closed_by_peer(mut conn: TcpStream) -> bool {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = conn.write_all(b"hello");
    let mut buf = [0u8; 1];
    matches!(conn.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn allow_from_refuses_other_addresses_end_to_end() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let pair = start(
        "allow",
        "allow_from = [\"127.0.0.1/32\"]",
        "allow_from = [\"127.0.0.1\"]",
    );
    let (tcp_in, udp_in) = (pair.conduit.tcp.0, pair.conduit.udp.0);

    // From 127.0.0.2: refused and dropped.
    assert!(closed_by_peer(tcp_from("127.0.0.2:0", tcp_in).unwrap()));
    udp_from("127.0.0.2:0", udp_in, b"from outside");
    // From 127.0.0.1: carried.
    let mut ok = tcp_from("127.0.0.1:0", tcp_in).unwrap();
    ok.write_all(b"from inside").unwrap();
    drop(ok);
    udp_from("127.0.0.1:0", udp_in, b"from inside");

    let got = pair.tcp_out.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "only the allowed connection crosses");
    assert_eq!(got[0].bytes, 11);
    assert_eq!(pair.udp_out.wait_for(1, Duration::from_secs(5)), 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        pair.udp_out.count(),
        1,
        "the datagram from outside must not cross"
    );
    let log = pair.send.log_text();
    assert!(
        log.contains("connection refused: peer not in allow_from"),
        "{log}"
    );
    assert!(
        log.contains("reason=\"not_allowed\"") || log.contains("reason=not_allowed"),
        "{log}"
    );
}

#[test]
fn a_pattern_filter_drops_and_counts_what_does_not_match() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let pair = start("filter", "", "filter = { utf8 = true, pattern = '^<\\d{1,3}>' }");
    let udp_in = pair.conduit.udp.0;
    udp_from("127.0.0.1:0", udp_in, b"<13>Nov 21 pump 3 started");
    udp_from("127.0.0.1:0", udp_in, b"no priority prefix");
    udp_from("127.0.0.1:0", udp_in, b"<13>\xff\xfe not utf-8");
    assert_eq!(pair.udp_out.wait_for(1, Duration::from_secs(5)), 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pair.udp_out.count(), 1);
    let log = pair.send.log_text();
    assert!(
        log.contains("filter_pattern") && log.contains("filter_utf8"),
        "{log}"
    );
}

#[test]
fn reload_applies_a_valid_policy_without_loss_and_keeps_the_old_one_otherwise() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let pair = start("reload", "", "allow_from = [\"127.0.0.1\"]");
    let udp_in = pair.conduit.udp.0;
    let policy = pair.dir.join("policy.toml");
    // A stream is open across both reloads; it must arrive whole.
    let mut stream = tcp_from("127.0.0.1:0", pair.conduit.tcp.0).unwrap();
    stream.write_all(&[1u8; 100_000]).unwrap();

    // 1. Invalid: refused, old policy stays (127.0.0.2 still refused).
    std::fs::write(&policy, pair.conduit.policy_text_with("", "allow_from = []")).unwrap();
    pair.send.signal("HUP").unwrap();
    assert!(
        wait_for_log(&pair.send.log, "reload refused", Duration::from_secs(5)),
        "{}",
        pair.send.log_text()
    );
    udp_from("127.0.0.2:0", udp_in, b"still refused");
    // 2. A change that needs a restart: refused too.
    let mut moved = pair.conduit.clone();
    moved.udp.0 = free_addr().unwrap();
    std::fs::write(
        &policy,
        moved.policy_text_with("", "allow_from = [\"127.0.0.2\"]"),
    )
    .unwrap();
    pair.send.signal("HUP").unwrap();
    assert!(
        wait_for_log(&pair.send.log, "need a restart", Duration::from_secs(5)),
        "{}",
        pair.send.log_text()
    );
    udp_from("127.0.0.2:0", udp_in, b"refused again");
    // 3. Valid: 127.0.0.2 is now allowed.
    std::fs::write(
        &policy,
        pair.conduit
            .policy_text_with("", "allow_from = [\"127.0.0.0/8\"]"),
    )
    .unwrap();
    pair.send.signal("HUP").unwrap();
    assert!(
        wait_for_log(&pair.send.log, "policy reloaded", Duration::from_secs(5)),
        "{}",
        pair.send.log_text()
    );
    udp_from("127.0.0.2:0", udp_in, b"now allowed");
    stream.write_all(&[2u8; 100_000]).unwrap();
    drop(stream);

    assert_eq!(pair.udp_out.wait_for(1, Duration::from_secs(5)), 1);
    std::thread::sleep(Duration::from_millis(300));
    let seen = pair.udp_out.seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        1,
        "only the datagram sent after the valid reload crosses"
    );
    let got = pair.tcp_out.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert!(
        got[0].clean && got[0].bytes == 200_000,
        "the stream across the reloads is whole: {:?}",
        got[0]
    );
    // The receiver learns the new fingerprint from the sender's heartbeats: a mismatch until
    // it reloads too.
    pair.recv.signal("HUP").unwrap();
    assert!(
        wait_for_log(&pair.recv.log, "policy reloaded", Duration::from_secs(5)),
        "{}",
        pair.recv.log_text()
    );
}
