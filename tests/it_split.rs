//! The IT side in two processes: weir-recv (link → spool) and weir-deliver (spool → consumers
//! and sinks), as separate users; sinks as spool cursors with durable offsets that survive a
//! consumer that is away, a restart and a `kill -9` of weir-deliver; bad offset files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir::harness::collect::TcpCollector;
use weir::harness::drive::{send_stream, wait_for_log};
use weir::harness::process::Daemon;
use weir::harness::setup::{free_addr, scratch_dir, Conduit};

const RECV: &str = env!("CARGO_BIN_EXE_weir-recv");
const DELIVER: &str = env!("CARGO_BIN_EXE_weir-deliver");
const SEND: &str = env!("CARGO_BIN_EXE_weir-send");

struct Site {
    dir: PathBuf,
    policy: PathBuf,
    conduit: Conduit,
    recv: Daemon,
    deliver: Daemon,
    _send: Daemon,
    restarts: u32,
}

/// One test at a time: each runs three daemons, and on two cores several at once starve each
/// other into timeouts that are not what these tests are about.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ready(bin: &str, policy: &Path, log: &Path, extra: &[&str]) -> Daemon {
    let name = Path::new(bin).file_name().unwrap().to_string_lossy().into_owned();
    Daemon::spawn_ready(Path::new(bin), policy, log, extra, &format!("{name} ready")).unwrap()
}

/// The three daemons with the given sinks' addresses and extra `[recv]` lines.
fn start(label: &str, tcp_sink: SocketAddr, udp_sink: SocketAddr, recv_extra: &str) -> Site {
    let dir = scratch_dir(label).unwrap();
    let listen = free_addr().unwrap();
    let conduit = Conduit {
        mtu: 1500,
        repair_percent: 10,
        bandwidth: "1 Gbit/s".into(),
        send_to: listen,
        listen,
        tcp: (free_addr().unwrap(), tcp_sink),
        udp: (free_addr().unwrap(), udp_sink),
        flush: "1ms".into(),
    };
    let policy = conduit.write_full(&dir, "", "", recv_extra).unwrap();
    let recv = ready(RECV, &policy, &dir.join("recv.log"), &[]);
    let deliver = ready(DELIVER, &policy, &dir.join("deliver.log"), &[]);
    let send = ready(SEND, &policy, &dir.join("send.log"), &[]);
    Site {
        dir,
        policy,
        conduit,
        recv,
        deliver,
        _send: send,
        restarts: 0,
    }
}

impl Site {
    fn restart_deliver(&mut self, signal: &str) {
        self.deliver.signal(signal).unwrap();
        while self.deliver.running() {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.restarts += 1;
        let log = self.dir.join(format!("deliver-{}.log", self.restarts));
        self.deliver = ready(DELIVER, &self.policy, &log, &[]);
    }
}

/// Records every datagram's payload, in arrival order.
fn udp_recorder() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(8 << 20);
    let addr = socket.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = socket.recv(&mut buf) {
            sink.lock().unwrap().push(buf[..n].to_vec());
        }
    });
    (addr, got)
}

/// Sends `"n <i>"` for i in `range` into the UDP source, 2 per millisecond.
fn numbered(to: SocketAddr, range: std::ops::Range<u32>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in range {
        socket.send_to(format!("n {i}").as_bytes(), to).unwrap();
        if i % 2 == 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn numbers(got: &Mutex<Vec<Vec<u8>>>) -> Vec<u32> {
    got.lock()
        .unwrap()
        .iter()
        .map(|d| std::str::from_utf8(d).unwrap()[2..].parse().unwrap())
        .collect()
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn a_udp_sink_restarted_mid_flow_gets_every_datagram_once_in_order() {
    let _serial = serial();
    let (udp, got) = udp_recorder();
    let mut site = start("split-udp-restart", free_addr().unwrap(), udp, "");
    let source = site.conduit.udp.0;
    let flow = std::thread::spawn(move || numbered(source, 0..3000));
    std::thread::sleep(Duration::from_millis(500));
    site.restart_deliver("TERM");
    flow.join().unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || got.lock().unwrap().len() >= 3000),
        "{} of 3000 arrived; deliver log:\n{}",
        got.lock().unwrap().len(),
        site.deliver.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        numbers(&got),
        (0..3000).collect::<Vec<_>>(),
        "each once, in order"
    );
}

#[test]
fn kill_9_of_weir_deliver_repeats_only_the_last_moments_and_loses_nothing() {
    let _serial = serial();
    let (udp, got) = udp_recorder();
    let tcp_out = TcpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut site = start("split-kill", tcp_out.addr, udp, "");
    let source = site.conduit.udp.0;
    let flow = std::thread::spawn(move || numbered(source, 0..3000));
    // A stream in flight when the delivery process dies.
    let stream_in = site.conduit.tcp.0;
    let mut conn = weir::harness::drive::connect_retry(stream_in, Duration::from_secs(5)).unwrap();
    let mut pattern = weir::harness::Pattern::new(3);
    let mut first_half = vec![0u8; 4 << 20];
    pattern.fill(&mut first_half);
    conn.write_all(&first_half).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    site.restart_deliver("KILL");
    let mut second_half = vec![0u8; 4 << 20];
    pattern.fill(&mut second_half);
    conn.write_all(&second_half).unwrap();
    drop(conn);
    flow.join().unwrap();

    // The stream: the connection cut by the kill was reset, then the whole stream came again.
    let streams = tcp_out.wait_for(2, Duration::from_secs(30));
    assert_eq!(streams.len(), 2, "deliver log:\n{}", site.deliver.log_text());
    assert!(
        !streams[0].clean,
        "the connection of the killed process must be a reset"
    );
    let mut whole = first_half;
    whole.extend_from_slice(&second_half);
    assert!(streams[1].clean);
    assert_eq!(streams[1].bytes, whole.len() as u64);
    assert_eq!(
        streams[1].sha256,
        weir::harness::hex(ring::digest::digest(&ring::digest::SHA256, &whole).as_ref())
    );

    // The datagrams: every one at least once; repeats only in one run just before the kill.
    assert!(wait_until(Duration::from_secs(20), || {
        let mut seen = numbers(&got);
        seen.sort_unstable();
        seen.dedup();
        seen.len() == 3000
    }));
    std::thread::sleep(Duration::from_millis(300));
    let order = numbers(&got);
    let repeats = order.len() - 3000;
    // At 2 datagrams a millisecond, a 100 ms save interval repeats at most ~200 (plus what was
    // in flight in the sink's last batch).
    assert!(repeats <= 400, "{repeats} datagrams repeated");
    // Each repeat is a replay of a contiguous run: after removing it, the order is 0..3000.
    let restart_at = order.windows(2).position(|w| w[1] <= w[0]);
    if let Some(at) = restart_at {
        let resumed_from = order[at + 1];
        assert!(order[..=at].iter().copied().eq(0..=order[at]));
        assert!(order[at + 1..].iter().copied().eq(resumed_from..3000));
    } else {
        assert_eq!(order, (0..3000).collect::<Vec<_>>());
    }
}

#[test]
fn a_tcp_sink_away_for_5_s_gets_the_whole_stream_when_it_returns_even_across_a_restart() {
    let _serial = serial();
    // Reserve the consumer's port, then close it: nobody listens for 5 s.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut site = start("split-away", port, free_addr().unwrap(), "");
    let sent = send_stream(site.conduit.tcp.0, 16 << 20, 5).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // weir-deliver restarted meanwhile: the stream it was waiting to open is not skipped.
    site.restart_deliver("TERM");
    std::thread::sleep(Duration::from_secs(3));
    assert!(site
        .deliver
        .log_text()
        .contains("cannot reach the consumer; retrying"));
    let back = TcpCollector::start(port).unwrap();
    let got = back.wait_for(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1, "deliver log:\n{}", site.deliver.log_text());
    assert_eq!(got[0].bytes, sent.bytes);
    assert_eq!(got[0].sha256, sent.sha256);
    assert!(got[0].clean, "a whole stream ends with a FIN");
}

#[test]
fn a_tcp_sink_whose_records_retention_removed_gets_a_reset_and_a_logged_gap() {
    let _serial = serial();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let site = start(
        "split-retention",
        port,
        free_addr().unwrap(),
        "segment = \"256 KiB\"\nretain = \"1 MiB\"\nfsync = \"20ms\"",
    );
    let _ = send_stream(site.conduit.tcp.0, 16 << 20, 6).unwrap();
    // Retention passes the sink, stuck at the stream's start while the consumer is away.
    std::thread::sleep(Duration::from_secs(3));
    let back = TcpCollector::start(port).unwrap();
    let got = back.wait_for(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1, "deliver log:\n{}", site.deliver.log_text());
    assert!(!got[0].clean, "a stream with a hole is reset, never closed");
    assert!(got[0].bytes < 16 << 20);
    assert!(
        wait_for_log(&site.dir.join("deliver.log"), "gap", Duration::from_secs(5)),
        "{}",
        site.deliver.log_text()
    );
}

#[test]
fn a_damaged_or_overtaken_offset_file_stops_weir_deliver_with_the_file_named() {
    let _serial = serial();
    let (udp, got) = udp_recorder();
    let mut site = start("split-offsets", free_addr().unwrap(), udp, "");
    numbered(site.conduit.udp.0, 0..20);
    assert!(wait_until(Duration::from_secs(10), || got.lock().unwrap().len() == 20));
    site.deliver.stop(Duration::from_secs(10));
    let offsets = site.dir.join("deliver-state");
    let file = std::fs::read_dir(&offsets)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("datagrams.udp-"))
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let run = |label: &str| {
        let out = Command::new(DELIVER)
            .arg("--policy")
            .arg(&site.policy)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{label}: started anyway");
        assert!(err.contains(&*file.to_string_lossy()), "{label}: {err}");
        assert!(!err.contains("panicked"), "{label}: {err}");
        err
    };
    std::fs::write(&file, text.replace("offset = 20", "offset = 21")).unwrap();
    assert!(run("edited").contains("does not match"));
    let check = format!(
        "{:08x}",
        crc32c::crc32c(format!("datagrams|udp {udp}|99999").as_bytes())
    );
    let past = text
        .lines()
        .map(|l| {
            if l.starts_with("offset") {
                "offset = 99999".to_owned()
            } else if l.starts_with("check") {
                format!("check = \"{check}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, past).unwrap();
    assert!(run("past the end").contains("past the spool's end"));
    site.recv.stop(Duration::from_secs(10));
}

/// The user named `name` (created with `group` as its primary group if missing).
fn system_user(name: &str, group: &str) -> nix::unistd::User {
    let _ = Command::new("groupadd").args(["-f", "-r", group]).status();
    if nix::unistd::User::from_name(name).unwrap().is_none() {
        let status = Command::new("useradd")
            .args(["-r", "-M", "-g", group, "-s", "/usr/sbin/nologin", name])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name}");
    }
    nix::unistd::User::from_name(name).unwrap().unwrap()
}

/// The pid listening on `port` (`proto` "tcp" or "udp"), from `ss`.
fn listener_pid(proto: &str, port: u16) -> Option<u32> {
    let flag = if proto == "tcp" { "-ltnpH" } else { "-lunpH" };
    let out = Command::new("ss").arg(flag).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| {
        l.split_whitespace()
            .nth(3)
            .is_some_and(|a| a.ends_with(&format!(":{port}")))
    })?;
    let at = line.find("pid=")? + 4;
    line[at..].split(',').next()?.parse().ok()
}

fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_link_and_the_consumers_are_served_by_different_processes_and_users() {
    let _serial = serial();
    if !nix::unistd::Uid::effective().is_root() {
        assert!(
            std::env::var_os("WEIR_REQUIRE_ROOT").is_none(),
            "WEIR_REQUIRE_ROOT is set but this test does not run as root"
        );
        eprintln!("SKIPPED two-user test: not running as root");
        return;
    }
    let recv_user = system_user("weirtest-recv", "weirtest");
    let deliver_user = system_user("weirtest-deliver", "weirtest");
    let dir = scratch_dir("split-users").unwrap();
    let pki = weir::harness::pki::TestPki::create(&dir.join("pki"), "weir split CA").unwrap();
    let tcp_out = TcpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let listen = free_addr().unwrap();
    let serve = free_addr().unwrap();
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
    // The layout of dist/README.md: weir-recv owns the key, its state and the spool (group
    // readable); weir-deliver owns its offsets and the TLS key.
    use std::os::unix::fs::{chown, PermissionsExt};
    let recv_dir = dir.join("recv");
    let deliver_dir = dir.join("deliver");
    for (d, user, mode) in [
        (&recv_dir, &recv_user, 0o750),
        (&deliver_dir, &deliver_user, 0o700),
    ] {
        std::fs::create_dir_all(d).unwrap();
        chown(d, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let recv_extra = format!(
        "state = \"recv/recv.state\"\nspool = \"recv/spool\"\ndeliver_state = \"deliver/offsets\"\n{}",
        pki.serve_table(serve, "")
    );
    let text = conduit
        .policy_text_full("", "", &recv_extra)
        .replace("state = \"recv.state\"\ndeliver_state = \"deliver-state\"\n", "")
        .replace("key_file = \"link.key\"", "key_file = \"recv/link.key\"");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, text).unwrap();
    let key = recv_dir.join("link.key");
    weir::keys::generate(&key, 1).unwrap();
    chown(&key, Some(recv_user.uid.as_raw()), Some(recv_user.gid.as_raw())).unwrap();
    let tls_key = dir.join("pki").join("server.key");
    chown(
        &tls_key,
        Some(deliver_user.uid.as_raw()),
        Some(deliver_user.gid.as_raw()),
    )
    .unwrap();

    let recv = ready(RECV, &policy, &dir.join("recv.log"), &["--user", "weirtest-recv"]);
    let deliver = ready(
        DELIVER,
        &policy,
        &dir.join("deliver.log"),
        &["--user", "weirtest-deliver"],
    );
    let _send = ready(SEND, &policy, &dir.join("send.log"), &[]);

    // Different processes, different users: the link port is weir-recv's, the consumer port
    // weir-deliver's.
    assert_eq!(uid_of(recv.pid()), recv_user.uid.as_raw());
    assert_eq!(uid_of(deliver.pid()), deliver_user.uid.as_raw());
    assert_ne!(recv_user.uid, deliver_user.uid);
    assert_eq!(listener_pid("udp", listen.port()), Some(recv.pid()));
    assert_eq!(listener_pid("tcp", serve.port()), Some(deliver.pid()));
    assert_ne!(listener_pid("tcp", serve.port()), Some(recv.pid()));
    // weir-recv listens on no TCP port at all (it has no metrics address here).
    let ss = Command::new("ss").arg("-ltnpH").output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ss.stdout).contains(&format!("pid={},", recv.pid())),
        "weir-recv listens on TCP"
    );
    // The delivery user cannot open the link key.
    let cat = Command::new("cat")
        .arg(&key)
        .uid(deliver_user.uid.as_raw())
        .gid(deliver_user.gid.as_raw())
        .output()
        .unwrap();
    assert!(!cat.status.success(), "the delivery user read the link key");
    assert!(String::from_utf8_lossy(&cat.stderr).contains("Permission denied"));

    // And data flows through both: a stream reaches the sink whole.
    let sent = send_stream(conduit.tcp.0, 1 << 20, 8).unwrap();
    let got = tcp_out.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "deliver log:\n{}", deliver.log_text());
    assert_eq!(got[0].sha256, sent.sha256);
    assert!(got[0].clean);
}
