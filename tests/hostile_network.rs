//! The hostile-network suite: a running weir-recv is attacked on its link port while real
//! traffic flows through it. Each attack must be counted under its own reason, the real
//! traffic must arrive intact, and the receiver's memory must stay bounded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use weir::harness::collect::{TcpCollector, UdpCollector};
use weir::harness::drive::{send_datagrams, send_stream, wait_for_log};
use weir::harness::process::Daemon;
use weir::harness::relay::{Impairment, Relay};
use weir::harness::setup::{free_addr, scratch_dir, Conduit};
use weir::keys::LinkKey;
use weir::proto::send::{Sender, SenderConfig};

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Pair {
    dir: std::path::PathBuf,
    policy: std::path::PathBuf,
    recv: Daemon,
    _deliver: Daemon,
    _send: Daemon,
    conduit: Conduit,
    tcp_out: TcpCollector,
    udp_out: UdpCollector,
    relay: Relay,
}

fn start(label: &str, capture: usize) -> Pair {
    let dir = scratch_dir(label).unwrap();
    let listen = free_addr().unwrap();
    let relay = Relay::start_capturing(
        "127.0.0.1:0".parse().unwrap(),
        listen,
        Impairment::default(),
        capture,
    )
    .unwrap();
    let tcp_out = TcpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let udp_out = UdpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conduit = Conduit {
        mtu: 1500,
        repair_percent: 20,
        bandwidth: "1 Gbit/s".into(),
        send_to: relay.listen,
        listen,
        tcp: (free_addr().unwrap(), tcp_out.addr),
        udp: (free_addr().unwrap(), udp_out.addr),
        flush: "1ms".into(),
    };
    let policy = conduit.write(&dir).unwrap();
    let recv = spawn_recv(&policy, &dir.join("recv.log"));
    let deliver = Daemon::spawn_ready(
        Path::new(env!("CARGO_BIN_EXE_weir-deliver")),
        &policy,
        &dir.join("deliver.log"),
        &[],
        "weir-deliver ready",
    )
    .unwrap();
    let send = Daemon::spawn(
        Path::new(env!("CARGO_BIN_EXE_weir-send")),
        &policy,
        &dir.join("send.log"),
        &[],
    )
    .unwrap();
    assert!(
        wait_for_log(&send.log, "weir-send ready", Duration::from_secs(20)),
        "{}",
        send.log_text()
    );
    Pair {
        dir,
        policy,
        recv,
        _deliver: deliver,
        _send: send,
        conduit,
        tcp_out,
        udp_out,
        relay,
    }
}

fn spawn_recv(policy: &Path, log: &Path) -> Daemon {
    let recv = Daemon::spawn(Path::new(env!("CARGO_BIN_EXE_weir-recv")), policy, log, &[]).unwrap();
    assert!(
        wait_for_log(log, "weir-recv ready", Duration::from_secs(20)),
        "{}",
        recv.log_text()
    );
    recv
}

/// Drop counts by reason, summed over the receiver's periodic and final reports, plus the
/// datagrams the kernel dropped on its socket (under "kernel").
fn drops_in(log: &str) -> BTreeMap<String, u64> {
    let mut total = BTreeMap::new();
    for line in log.lines() {
        if let Some(rest) = line
            .split("drops=")
            .nth(1)
            .filter(|_| line.contains("dropped since the last report"))
        {
            for pair in rest.split_whitespace() {
                if let Some((name, n)) = pair.split_once('=') {
                    *total.entry(name.to_owned()).or_insert(0) += n.parse::<u64>().unwrap_or(0);
                }
            }
        }
        if line.contains("link socket overflowed") {
            let n = line
                .split("dropped=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap();
            *total.entry("kernel".to_owned()).or_insert(0) += n.parse::<u64>().unwrap();
        }
    }
    total
}

fn peak_rss(pid: u32) -> u64 {
    weir::harness::process::usage(pid).peak_rss
}

/// Datagrams sealed with a key the receiver does not have, under its key id.
fn forged(count: usize) -> Vec<Vec<u8>> {
    let now = Instant::now();
    let session = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        << 32)
        | 7;
    let mut tx = Sender::new(SenderConfig {
        key: LinkKey {
            id: 1,
            secret: [0x66; 32],
        },
        session,
        datagram_budget: 1472,
        max_source_symbols: 64,
        repair_percent: 10,
        flush: Duration::from_millis(1),
        heartbeat: Duration::from_secs(1),
        fingerprint: [0; 16],
        channels: vec![],
        max_message: 1 << 16,
    })
    .unwrap();
    let mut out = Vec::new();
    let mut i = 0u32;
    while out.len() < count {
        let _ = tx.push(
            now,
            1,
            0,
            weir::proto::frame::MessageKind::Data,
            &i.to_be_bytes().repeat(100),
        );
        i += 1;
        tx.flush();
        let mut d = Vec::new();
        while tx.poll_transmit(now, &mut d).is_some() {
            out.push(std::mem::take(&mut d));
        }
    }
    out.truncate(count);
    out
}

fn send_all(to: SocketAddr, datagrams: &[Vec<u8>]) -> u64 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sent = 0;
    for d in datagrams {
        if socket.send_to(d, to).is_ok() {
            sent += 1;
        }
    }
    sent
}

#[test]
fn attacks_on_the_link_port_are_counted_and_real_traffic_survives() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let pair = start("hostile", 2000);
    let target = pair.conduit.listen;
    let (tcp_in, udp_in) = (pair.conduit.tcp.0, pair.conduit.udp.0);
    let stream = std::thread::spawn(move || send_stream(tcp_in, 16 << 20, 21).unwrap());
    let datagrams = std::thread::spawn(move || send_datagrams(udp_in, 1000, 1..=1200, 1000, 22).unwrap());

    // 1. Well-formed datagrams forged with the wrong key.
    let forged = forged(3000);
    let forged_sent = send_all(target, &forged);
    // 2. Random bytes as fast as this thread can send them, for two seconds.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut flood_sent = 0u64;
    let until = Instant::now() + Duration::from_secs(2);
    let mut buf = vec![0u8; 1500];
    while Instant::now() < until {
        let len = rng.random_range(0..1500);
        rng.fill(&mut buf[..len]);
        if flood.send_to(&buf[..len], target).is_ok() {
            flood_sent += 1;
        }
    }
    // 3. One datagram of every length from 0 to 65507 bytes.
    let mut lengths_sent = 0u64;
    let mut big = vec![0u8; 65_507];
    rng.fill(&mut big[..]);
    for len in 0..=65_507usize {
        if flood.send_to(&big[..len], target).is_ok() {
            lengths_sent += 1;
        }
        if len % 2048 == 0 {
            std::thread::sleep(Duration::from_millis(1)); // let the receiver keep up
        }
    }
    let sent = stream.join().unwrap();
    let datagrams = datagrams.join().unwrap();
    // 4. Replays of captured real traffic, after it was delivered.
    let got = pair.tcp_out.wait_for(1, Duration::from_secs(60));
    pair.udp_out.wait_for(1000, Duration::from_secs(10));
    let captured = pair.relay.captured.lock().unwrap().clone();
    assert_eq!(captured.len(), 2000);
    let replays_sent = send_all(target, &captured);
    std::thread::sleep(Duration::from_millis(500));

    // The real traffic arrived intact, once.
    assert_eq!(got.len(), 1, "{}", pair.recv.log_text());
    assert_eq!(
        (got[0].bytes, &got[0].sha256, got[0].clean),
        (sent.bytes, &sent.sha256, true)
    );
    let seen = pair.udp_out.seen.lock().unwrap().clone();
    assert!(
        datagrams
            .iter()
            .all(|d| seen.get(&d.sha256).map(|s| s.0) == Some(1)),
        "datagrams lost or doubled"
    );
    assert_eq!(seen.len(), datagrams.len());
    assert_eq!(
        pair.tcp_out.results.lock().unwrap().len(),
        1,
        "a replay opened a second stream"
    );

    let rss = peak_rss(pair.recv.pid());
    let mut recv = pair.recv;
    recv.stop(Duration::from_secs(5));
    let drops = drops_in(&recv.log_text());
    eprintln!("sent: forged {forged_sent}, flood {flood_sent}, lengths {lengths_sent}, replays {replays_sent}; receiver counted {drops:?}; peak RSS {} MiB", rss >> 20);
    // Each attack under its own reason.
    let get = |k: &str| drops.get(k).copied().unwrap_or(0);
    let kernel = get("kernel");
    assert!(
        get("forged") + kernel >= forged_sent,
        "forged datagrams must count as forged"
    );
    assert!(
        get("replay") + get("too_old") + kernel >= replays_sent,
        "replays must count as replays"
    );
    assert!(
        get("short") > 0 && get("version") > 0,
        "random datagrams must count as short / bad version"
    );
    // Every hostile datagram read was dropped and counted; none was taken for real traffic.
    let counted: u64 = drops.iter().filter(|(k, _)| *k != "kernel").map(|(_, n)| n).sum();
    let hostile = forged_sent + flood_sent + lengths_sent + replays_sent;
    assert!(
        counted <= hostile,
        "more drops than hostile datagrams: real traffic was dropped"
    );
    assert!(
        counted + kernel >= hostile,
        "hostile datagrams neither counted nor kernel-dropped: {counted} + {kernel} < {hostile}"
    );
    assert!(rss < 128 << 20, "receiver peak RSS {} MiB", rss >> 20);
}

#[test]
fn captured_traffic_replayed_after_a_receiver_restart_is_refused() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let pair = start("restart", 5000);
    let sent = send_stream(pair.conduit.tcp.0, 4 << 20, 31).unwrap();
    let datagrams = send_datagrams(pair.conduit.udp.0, 200, 1..=1000, 2000, 32).unwrap();
    let got = pair.tcp_out.wait_for(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].sha256, sent.sha256);
    assert_eq!(pair.udp_out.wait_for(200, Duration::from_secs(10)), 200);
    let captured = pair.relay.captured.lock().unwrap().clone();
    assert!(captured.len() > 1000);

    let mut recv = pair.recv;
    recv.stop(Duration::from_secs(5));
    assert!(pair.dir.join("recv.state").exists(), "the floor must be on disk");
    let recv = spawn_recv(&pair.policy, &pair.dir.join("recv2.log"));
    let replays_sent = send_all(pair.conduit.listen, &captured);
    std::thread::sleep(Duration::from_millis(500));
    let mut recv = recv;
    recv.stop(Duration::from_secs(5));
    let drops = drops_in(&recv.log_text());
    eprintln!("replayed {replays_sent} after the restart; receiver counted {drops:?}");
    let get = |k: &str| drops.get(k).copied().unwrap_or(0);
    // Every replayed datagram is below the floor. So are the real sender's heartbeats that
    // arrive meanwhile: after a restart the running session's next FLOOR_STEP packets are
    // refused too (the price of the floor), which is why the count may be a little higher.
    let refused = get("replay") + get("stale_session") + get("kernel");
    assert!(
        refused >= replays_sent && refused <= replays_sent + 50,
        "{drops:?}"
    );
    assert!(
        !recv.log_text().contains("sender session started"),
        "a replay started a session"
    );
    assert_eq!(
        pair.tcp_out.results.lock().unwrap().len(),
        1,
        "a replayed stream was delivered again"
    );
    let seen = pair.udp_out.seen.lock().unwrap().clone();
    assert!(
        datagrams
            .iter()
            .all(|d| seen.get(&d.sha256).map(|s| s.0) == Some(1)),
        "a datagram was delivered twice"
    );
}
