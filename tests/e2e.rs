//! End to end: weir-send and weir-recv as processes on loopback, with the seeded impairment
//! relay between them, IT-side consumers standing in as collectors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;

use std::path::Path;
use std::time::Duration;

use weir::harness::collect::{TcpCollector, UdpCollector};
use weir::harness::drive::{connect_retry, send_datagrams, send_stream, wait_for_log};
use weir::harness::pattern_prefix_sha256;
use weir::harness::process::Daemon;
use weir::harness::relay::{Impairment, Relay};
use weir::harness::setup::{free_addr, scratch_dir, Conduit};

struct Pair {
    recv: Daemon,
    _deliver: Daemon,
    send: Daemon,
    conduit: Conduit,
    tcp_out: TcpCollector,
    udp_out: UdpCollector,
    relay: Relay,
}

/// The tests run one at a time: each runs two daemons, a relay and collectors, and on a
/// two-core machine running them together starves the daemons into kernel buffer overflows
/// that are not what these tests are about.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn start(label: &str, imp: Impairment, repair: u16) -> Pair {
    let dir = scratch_dir(label).unwrap();
    let listen = free_addr().unwrap();
    let relay = Relay::start("127.0.0.1:0".parse().unwrap(), listen, imp).unwrap();
    let tcp_out = TcpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let udp_out = UdpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conduit = Conduit {
        mtu: 1500,
        repair_percent: repair,
        bandwidth: "2 Gbit/s".into(),
        send_to: relay.listen,
        listen,
        tcp: (free_addr().unwrap(), tcp_out.addr),
        udp: (free_addr().unwrap(), udp_out.addr),
        flush: "1ms".into(),
    };
    let policy = conduit.write(&dir).unwrap();
    let recv = spawn(
        env!("CARGO_BIN_EXE_weir-recv"),
        &policy,
        &dir.join("recv.log"),
        "weir-recv ready",
    );
    let deliver = spawn(
        env!("CARGO_BIN_EXE_weir-deliver"),
        &policy,
        &dir.join("deliver.log"),
        "weir-deliver ready",
    );
    let send = spawn(
        env!("CARGO_BIN_EXE_weir-send"),
        &policy,
        &dir.join("send.log"),
        "weir-send ready",
    );
    Pair {
        recv,
        _deliver: deliver,
        send,
        conduit,
        tcp_out,
        udp_out,
        relay,
    }
}

fn spawn(bin: &str, policy: &Path, log: &Path, ready: &str) -> Daemon {
    let d = Daemon::spawn(Path::new(bin), policy, log, &["--log", "info"]).unwrap();
    assert!(
        wait_for_log(log, ready, Duration::from_secs(20)),
        "{bin} did not start:\n{}",
        d.log_text()
    );
    d
}

#[test]
fn lossy_link_delivers_a_64_mib_stream_and_every_datagram_intact() {
    let imp = Impairment {
        loss: 0.01,
        burst: 1.0,
        reorder: 0.005,
        duplicate: 0.005,
        corrupt: 0.002,
        seed: 2026,
        drop_run: None,
    };
    let _serial = serial();
    let mut pair = start("lossy", imp, 25);
    let udp_in = pair.conduit.udp.0;
    // Datagrams flow while the stream does, sharing its blocks.
    let datagrams = std::thread::spawn(move || send_datagrams(udp_in, 2000, 1..=1400, 4000, 9).unwrap());
    let sent = send_stream(pair.conduit.tcp.0, 64 << 20, 1).unwrap();
    let datagrams = datagrams.join().unwrap();

    let got = pair.tcp_out.wait_for(1, Duration::from_secs(120));
    assert_eq!(
        got.len(),
        1,
        "stream did not arrive; recv log:\n{}",
        pair.recv.log_text()
    );
    assert_eq!(got[0].bytes, sent.bytes);
    assert_eq!(got[0].sha256, sent.sha256);
    assert!(got[0].clean, "a complete stream must end cleanly");

    pair.udp_out.wait_for(2000, Duration::from_secs(20));
    let seen = pair.udp_out.seen.lock().unwrap().clone();
    let missing = datagrams.iter().filter(|d| !seen.contains_key(&d.sha256)).count();
    assert_eq!(missing, 0, "datagrams lost within FEC capacity");
    assert!(
        seen.values().all(|(n, _)| *n == 1),
        "a datagram was delivered twice"
    );
    assert_eq!(
        seen.len(),
        datagrams.len(),
        "something that was never sent was delivered"
    );

    // The impairments happened and were counted by the receiver under their reasons.
    let c = &pair.relay.counters;
    use std::sync::atomic::Ordering::Relaxed;
    assert!(
        c.dropped.load(Relaxed) > 100 && c.corrupted.load(Relaxed) > 10 && c.duplicated.load(Relaxed) > 10
    );
    pair.send.stop(Duration::from_secs(5));
    pair.recv.stop(Duration::from_secs(5));
    let log = pair.recv.log_text();
    assert!(
        log.contains("forged="),
        "corrupted datagrams must be counted as forged:\n{log}"
    );
    assert!(
        log.contains("replay="),
        "duplicates must be counted as replays:\n{log}"
    );
    assert!(log.contains("messages_lost=0"), "{log}");
}

#[test]
fn an_aborted_source_connection_is_reset_at_the_consumer() {
    let _serial = serial();
    let pair = start("abort", Impairment::default(), 10);
    let mut conn = connect_retry(pair.conduit.tcp.0, Duration::from_secs(10)).unwrap();
    conn.write_all(&[7u8; 100_000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SO_LINGER 0 then close: the OT-side peer resets the connection.
    socket2::SockRef::from(&conn)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(conn);
    let got = pair.tcp_out.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1);
    assert!(
        !got[0].clean,
        "an aborted stream must reach the consumer as a reset"
    );
    assert_eq!(got[0].bytes, 100_000, "bytes before the abort are delivered");

    // A clean stream right after on the same channel ends cleanly.
    let sent = send_stream(pair.conduit.tcp.0, 1 << 20, 3).unwrap();
    let got = pair.tcp_out.wait_for(2, Duration::from_secs(20));
    assert_eq!(got.len(), 2);
    assert!(got[1].clean);
    assert_eq!(got[1].sha256, sent.sha256);
}

#[test]
fn loss_beyond_fec_resets_the_stream_and_never_splices_it() {
    let imp = Impairment {
        loss: 0.15,
        burst: 4.0,
        seed: 77,
        ..Impairment::default()
    };
    let _serial = serial();
    let pair = start("beyond", imp, 5);
    let seed = 5;
    let _ = send_stream(pair.conduit.tcp.0, 32 << 20, seed).unwrap();
    let got = pair.tcp_out.wait_for(1, Duration::from_secs(60));
    assert_eq!(got.len(), 1, "recv log:\n{}", pair.recv.log_text());
    assert!(!got[0].clean, "a stream with a hole must be reset, not closed");
    // Whatever arrived is exactly the start of what was sent: no splice across the gap.
    assert_eq!(got[0].sha256, pattern_prefix_sha256(seed, got[0].bytes));
    assert!(got[0].bytes < 32 << 20);
    std::thread::sleep(Duration::from_secs(6));
    let log = pair.recv.log_text();
    assert!(
        log.contains("messages lost"),
        "the loss must be named in the log:\n{log}"
    );
    assert!(log.contains("blocks_lost="), "{log}");
}

fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    // Real, effective, saved and filesystem uids: all must have changed.
    let uids: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(uids.iter().all(|u| *u == uids[0]), "uids differ: {line}");
    uids[0]
}

#[test]
fn daemons_started_as_root_drop_to_the_given_user() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED privilege-drop test: not running as root");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody");
    let _serial = serial();
    let dir = scratch_dir("privdrop").unwrap();
    let listen = free_addr().unwrap();
    let tcp_out = TcpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conduit = Conduit {
        mtu: 1500,
        repair_percent: 10,
        bandwidth: "1 Gbit/s".into(),
        send_to: listen,
        listen,
        tcp: (free_addr().unwrap(), tcp_out.addr),
        udp: (free_addr().unwrap(), free_addr().unwrap()),
        flush: "1ms".into(),
    };
    let policy = conduit.write(&dir).unwrap();
    // The key stays root-only (0600): it is read before the switch. The state file's
    // directory must be writable by the new user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let start = |bin: &str, log: &str, ready: &str| {
        let log = dir.join(log);
        let d = Daemon::spawn(Path::new(bin), &policy, &log, &["--user", "nobody"]).unwrap();
        assert!(
            wait_for_log(&log, ready, Duration::from_secs(20)),
            "{bin}:\n{}",
            d.log_text()
        );
        d
    };
    let recv = start(env!("CARGO_BIN_EXE_weir-recv"), "recv.log", "weir-recv ready");
    let deliver = start(
        env!("CARGO_BIN_EXE_weir-deliver"),
        "deliver.log",
        "weir-deliver ready",
    );
    let send = start(env!("CARGO_BIN_EXE_weir-send"), "send.log", "weir-send ready");
    assert_eq!(uid_of(recv.pid()), nobody.uid.as_raw());
    assert_eq!(uid_of(deliver.pid()), nobody.uid.as_raw());
    assert_eq!(uid_of(send.pid()), nobody.uid.as_raw());
    // And they still work: a stream crosses, and the receiver could write its state file.
    let sent = send_stream(conduit.tcp.0, 1 << 20, 9).unwrap();
    let got = tcp_out.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].sha256, sent.sha256);
    assert!(dir.join("recv.state").exists(), "{}", recv.log_text());
}
