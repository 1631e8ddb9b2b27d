//! Never deliver damaged data as if it were whole, end to end: a block lost in the middle of a
//! message that spans many blocks, and a crash of the process that holds a TCP sink
//! (weir-deliver).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ring::digest::SHA256;
use weir::harness::collect::{TcpCollector, UdpCollector};
use weir::harness::drive::{connect_retry, send_datagrams, send_stream};
use weir::harness::process::Daemon;
use weir::harness::relay::{Impairment, Relay};
use weir::harness::setup::{free_addr, scratch_dir, Conduit};
use weir::harness::{hex, pattern_prefix_sha256, Pattern};
use weir::spool::RecordKind;
use weir::spool::{Cursor, Item};

/// Source symbols per block: small, so a 64 KiB message spans about six blocks.
const BLOCK_SYMBOLS: u64 = 8;
/// At 10 % repair a block of 8 source symbols has 2 repair symbols.
const DATAGRAMS_PER_BLOCK: u64 = BLOCK_SYMBOLS + 2;

struct Pair {
    dir: PathBuf,
    recv: Daemon,
    deliver: Daemon,
    _send: Daemon,
    conduit: Conduit,
    tcp_out: TcpCollector,
    udp_out: UdpCollector,
    _relay: Relay,
}

/// Both daemons with small blocks, 1 MiB stream messages and 60 KiB datagrams, a spool, and a
/// relay that drops `drop_run` (data datagrams) if given.
fn start(label: &str, drop_run: Option<(u64, u64)>) -> Pair {
    let dir = scratch_dir(label).unwrap();
    let listen = free_addr().unwrap();
    let imp = Impairment {
        drop_run,
        ..Impairment::default()
    };
    let relay = Relay::start("127.0.0.1:0".parse().unwrap(), listen, imp).unwrap();
    let tcp_out = TcpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let udp_out = UdpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conduit = Conduit {
        mtu: 1500,
        repair_percent: 10,
        bandwidth: "400 Mbit/s".into(),
        send_to: relay.listen,
        listen,
        tcp: (free_addr().unwrap(), tcp_out.addr),
        udp: (free_addr().unwrap(), udp_out.addr),
        flush: "1ms".into(),
    };
    let policy = conduit
        .policy_text_full("", "", "")
        .replace("[link]\n", &format!("[link]\nblock_symbols = {BLOCK_SYMBOLS}\n"))
        .replace("max_message = \"256 KiB\"", "max_message = \"1 MiB\"")
        .replace("max_message = \"16 KiB\"", "max_message = \"60 KiB\"");
    conduit.write(&dir).unwrap();
    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let recv = spawn(
        env!("CARGO_BIN_EXE_weir-recv"),
        &policy_path,
        &dir.join("recv.log"),
        "weir-recv ready",
    );
    let deliver = spawn(
        env!("CARGO_BIN_EXE_weir-deliver"),
        &policy_path,
        &dir.join("deliver.log"),
        "weir-deliver ready",
    );
    let send = spawn(
        env!("CARGO_BIN_EXE_weir-send"),
        &policy_path,
        &dir.join("send.log"),
        "weir-send ready",
    );
    Pair {
        dir,
        recv,
        deliver,
        _send: send,
        conduit,
        tcp_out,
        udp_out,
        _relay: relay,
    }
}

fn spawn(bin: &str, policy: &Path, log: &Path, ready: &str) -> Daemon {
    Daemon::spawn_ready(Path::new(bin), policy, log, &["--log", "info"], ready).unwrap()
}

/// The value of `name=N` in the last line of `log` that has it.
fn last_counter(log: &str, name: &str) -> Option<u64> {
    let key = format!("{name}=");
    log.lines().rev().find_map(|line| {
        let at = line.find(&key)? + key.len();
        let digits: String = line[at..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// Every record of one channel's spool (its stopped writer synced them all).
fn spool_records(dir: &Path) -> Vec<weir::spool::Record> {
    let (log, _) = weir::spool::ChannelLog::open(dir, weir::spool::LogConfig::default()).unwrap();
    let mut cursor = Cursor::new(dir, 0);
    let mut items = Vec::new();
    cursor.read(log.status().end, usize::MAX, &mut items).unwrap();
    items
        .into_iter()
        .map(|item| match item {
            Item::Record(record) => record,
            gap @ Item::Gap { .. } => panic!("{gap:?} in the spool of {}", dir.display()),
        })
        .collect()
}

#[test]
fn a_block_lost_inside_a_long_stream_message_cuts_the_stream_at_an_exact_prefix() {
    // Two blocks' worth of consecutive data datagrams, about 2.3 MB into the stream: at least
    // one whole block goes, in the middle of a message of many blocks.
    let mut pair = start("cut-stream", Some((2000, 2 * DATAGRAMS_PER_BLOCK)));
    let seed = 11;
    let total = 4_000_000;
    send_stream(pair.conduit.tcp.0, total, seed).unwrap();
    let got = pair.tcp_out.wait_for(1, Duration::from_secs(60));
    assert_eq!(got.len(), 1, "recv log:\n{}", pair.recv.log_text());
    let got = &got[0];
    assert!(!got.clean, "a stream with a hole must be reset, not closed");
    assert!(got.bytes < total, "{} bytes arrived of {total}", got.bytes);
    assert_eq!(
        got.sha256,
        pattern_prefix_sha256(seed, got.bytes),
        "the sink got bytes that are not a prefix of the stream: spliced"
    );

    // The receiver named the loss; stop it so the spool is synced.
    std::thread::sleep(Duration::from_millis(600));
    pair.recv.stop(Duration::from_secs(10));
    let log = pair.recv.log_text();
    assert!(log.contains("blocks lost beyond FEC repair"), "{log}");
    assert!(
        log.contains("a fragment of it is missing") || log.contains("messages lost"),
        "{log}"
    );
    assert!(
        last_counter(&log, "messages_lost").is_some_and(|n| n >= 1),
        "{log}"
    );
    assert!(
        last_counter(&log, "streams_broken").is_some_and(|n| n >= 1),
        "{log}"
    );

    // The spool holds an exact prefix, then the loss and the stream's abort; never an end.
    let records = spool_records(&pair.dir.join("spool").join("stream"));
    let kinds: Vec<RecordKind> = records.iter().map(|r| r.kind).collect();
    assert_eq!(kinds.first(), Some(&RecordKind::Open));
    assert!(!kinds.contains(&RecordKind::End), "{kinds:?}");
    let lost_at = kinds
        .iter()
        .position(|k| *k == RecordKind::Lost)
        .expect("a lost record");
    let abort_at = kinds
        .iter()
        .position(|k| *k == RecordKind::Abort)
        .expect("an abort record");
    assert!(lost_at < abort_at, "{kinds:?}");
    let mut stored = Vec::new();
    for record in &records[..lost_at] {
        if record.kind == RecordKind::Data {
            stored.extend_from_slice(&record.payload);
        }
    }
    assert_eq!(
        hex(ring::digest::digest(&SHA256, &stored).as_ref()),
        pattern_prefix_sha256(seed, stored.len() as u64),
        "the spool holds bytes that are not a prefix of the stream"
    );
    assert_eq!(stored.len() as u64, got.bytes, "the sink and the spool agree");
}

#[test]
fn a_block_lost_inside_a_long_datagram_loses_that_datagram_whole() {
    // Datagrams of 60,000 bytes, 10 ms apart: each is flushed on its own as five full blocks of
    // 10 datagrams and a last block of 3 + 2, so datagram m is data datagrams 55m .. 55m + 55.
    // Dropping 20 from 55 × 30 + 12 takes out block 1 (8 of its 10) and block 2 of datagram 30
    // and 2 of block 3 (repaired): the loss lies strictly inside one datagram.
    let mut pair = start("cut-datagram", Some((55 * 30 + 12, 20)));
    let count = 60;
    let sent = send_datagrams(pair.conduit.udp.0, count, 60_000..=60_000, 100, 5).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let seen = pair.udp_out.seen.lock().unwrap().clone();
    let intact = sent.iter().filter(|d| seen.contains_key(&d.sha256)).count() as u64;
    assert_eq!(
        seen.len() as u64,
        intact,
        "the sink got a datagram that was never sent: spliced"
    );
    assert!(seen.values().all(|(n, _)| *n == 1));
    assert!(intact < count, "the dropped run lost nothing");
    // Exactly one unless a stalled sender packed two datagrams into one block.
    assert!(
        intact >= count - 2,
        "more than the hit datagrams lost: {intact} of {count}"
    );
    let lost = count - intact;
    pair.recv.stop(Duration::from_secs(10));
    let log = pair.recv.log_text();
    assert!(log.contains("blocks lost beyond FEC repair"), "{log}");
    assert_eq!(
        last_counter(&log, "messages_lost"),
        Some(lost),
        "every datagram that did not arrive is counted lost, no other:\n{log}"
    );
}

/// Writes the seeded pattern to `addr` until `stop`, 256 KiB at a time with short pauses.
fn trickle(addr: std::net::SocketAddr, seed: u64, stop: Arc<AtomicBool>) -> u64 {
    let mut conn = connect_retry(addr, Duration::from_secs(10)).unwrap();
    let mut pattern = Pattern::new(seed);
    let mut buf = vec![0u8; 256 << 10];
    let mut written = 0;
    while !stop.load(Ordering::Relaxed) {
        pattern.fill(&mut buf);
        if conn.write_all(&buf).is_err() {
            break;
        }
        written += buf.len() as u64;
        std::thread::sleep(Duration::from_millis(5));
    }
    written
}

#[test]
fn a_killed_delivery_process_resets_its_tcp_sink_streams() {
    let pair = start("kill-sink", None);
    let stop = Arc::new(AtomicBool::new(false));
    let addr = pair.conduit.tcp.0;
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || trickle(addr, 21, stop))
    };
    // Let some megabytes reach the sink, then kill the process that holds it.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        pair.tcp_out.results.lock().unwrap().is_empty(),
        "the stream ended early"
    );
    pair.deliver.signal("KILL").unwrap();
    let got = pair.tcp_out.wait_for(1, Duration::from_secs(20));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].bytes > 0, "nothing reached the sink before the kill");
    assert!(
        !got[0].clean,
        "weir-deliver killed mid-stream ended its sink connection with a FIN after {} bytes",
        got[0].bytes
    );
    assert_eq!(got[0].sha256, pattern_prefix_sha256(21, got[0].bytes));
}
