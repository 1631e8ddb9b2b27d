//! One-way proof in network namespaces: `weir-send` in an "OT" namespace and `weir-recv` in an
//! "IT" namespace, joined by a veth pair that nftables makes one-way, with counters on both
//! ends that show what crossed — and that nothing ever came back.
//!
//! ```text
//!  OT namespace (weir-ot-<pid>)                         IT namespace (weir-it-<pid>)
//!  pusher ─▶ 127.0.0.1:7000 (tcp) ┐                   ┌─▶ 127.0.0.1:<tcp collector>
//!  pusher ─▶ 127.0.0.1:5514 (udp) ┴ weir-send         │   127.0.0.1:<udp collector>
//!                 10.231.0.1/30  wot<pid> ════veth════ wit<pid>  10.231.0.2/30 ── weir-recv
//!   netdev ingress: count ot_in, DROP                   netdev egress:  count it_out, DROP
//!   netdev egress:  count ot_out                        netdev ingress: count it_in
//! ```
//!
//! The link is kept free of traffic that is not weir's, so a counter above zero means weir
//! (or the kernel on its behalf) tried to talk back: IPv6 is off on both veth ends (no DAD,
//! router or MLD chatter) and both ends have static neighbour entries (no ARP, as across a
//! real diode). Before the daemons start, the test proves its own instruments: a probe sent
//! from IT to OT must be counted at OT's ingress while only the OT rules are loaded, and once
//! the IT rules are in, a second probe must be counted and dropped at IT's egress and never
//! reach OT. Only then does a missing count mean something.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables). Without them the test prints
//! `SKIPPED netns one-way test: <reason>` to stderr and returns, unless `WEIR_REQUIRE_NETNS=1`
//! is set (CI sets it when it runs as root): then it fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use weir::harness::collect::TcpCollector;
use weir::harness::drive::{send_datagrams, send_stream, wait_for_log};
use weir::harness::hex;
use weir::harness::setup::scratch_dir;

const OT_ADDR: &str = "10.231.0.1";
const IT_ADDR: &str = "10.231.0.2";
/// Locally administered MACs, so the static neighbour entries can be written up front.
const OT_MAC: &str = "02:77:65:69:72:01";
const IT_MAC: &str = "02:77:65:69:72:02";
const LINK_PORT: u16 = 5800;
/// The OT-side sources; the namespaces are fresh, so fixed ports are free.
const TCP_SOURCE: &str = "127.0.0.1:7000";
const UDP_SOURCE: &str = "127.0.0.1:5514";
const STREAM_BYTES: u64 = 16 << 20;
const DATAGRAMS: u64 = 500;
/// Datagrams a second: gentle enough for weir-send's UDP source buffer on a busy machine.
const DATAGRAM_RATE: u64 = 1000;
/// The probes go to the discard port of the OT veth address (inside our namespace).
const PROBE_PORT: u16 = 9;
const NAME_PREFIXES: [&str; 2] = ["weir-ot-", "weir-it-"];

/// Prints the loud skip line, or fails when the environment promised namespaces.
fn skip(reason: &str) {
    if std::env::var("WEIR_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("netns one-way test cannot run but WEIR_REQUIRE_NETNS=1: {reason}");
    }
    // Straight to the process's stderr, past the test harness's output capture, so the skip
    // shows in a plain `cargo test` run too.
    let _ = writeln!(io::stderr(), "SKIPPED netns one-way test: {reason}");
}

/// `name` on PATH or in the sbin directories (not on every user's PATH).
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs a command to completion; its stdout, or an error naming it with its stderr.
fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let describe = || format!("{} {}", program.display(), args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", describe()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("`{}`: writing stdin: {e}", describe()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{}`: {e}", describe()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            describe(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The two namespaces; deleting them (on every path, by `Drop`) also deletes the veth pair.
struct Namespaces {
    ip: PathBuf,
    nft: PathBuf,
    ot: String,
    it: String,
    ot_dev: String,
    it_dev: String,
    created: Vec<String>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in self.created.iter().rev() {
            if let Err(e) = run(&self.ip, &["netns", "del", name], None) {
                eprintln!("netns test: cleanup: {e}");
            }
        }
    }
}

impl Namespaces {
    fn ip(&self, args: &[&str]) -> Result<String, String> {
        run(&self.ip, args, None)
    }

    /// `nft` run inside namespace `ns`.
    fn nft(&self, ns: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let nft = self.nft.to_string_lossy().into_owned();
        let mut all = vec!["netns", "exec", ns, nft.as_str()];
        all.extend_from_slice(args);
        run(&self.ip, &all, stdin)
    }

    /// Packets and bytes of the named counter of table `netdev <table>` in `ns`.
    fn counter(&self, ns: &str, table: &str, name: &str) -> Counter {
        let text = self
            .nft(ns, &["list", "counter", "netdev", table, name], None)
            .unwrap_or_else(|e| panic!("cannot read counter {name}: {e}"));
        parse_counter(&text).unwrap_or_else(|| panic!("no counter values in:\n{text}"))
    }

    fn ot_in(&self) -> Counter {
        self.counter(&self.ot, "weir_ot", "ot_in")
    }
    fn ot_out(&self) -> Counter {
        self.counter(&self.ot, "weir_ot", "ot_out")
    }
    fn it_in(&self) -> Counter {
        self.counter(&self.it, "weir_it", "it_in")
    }
    fn it_out(&self) -> Counter {
        self.counter(&self.it, "weir_it", "it_out")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counter {
    packets: u64,
    bytes: u64,
}

/// Reads `packets N bytes M` out of `nft list counter` output.
fn parse_counter(text: &str) -> Option<Counter> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let after = |key: &str| {
        let at = words.iter().position(|w| *w == key)?;
        words.get(at + 1)?.parse::<u64>().ok()
    };
    Some(Counter {
        packets: after("packets")?,
        bytes: after("bytes")?,
    })
}

/// Runs `f` on a thread that has entered network namespace `ns` first: every socket it (or a
/// thread it spawns) creates lives in that namespace. The test's own thread never moves.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let path = format!("/var/run/netns/{ns}");
    let handle = std::thread::spawn(move || {
        let file = File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns({path}): {e}"))?;
        Ok(f())
    });
    match handle.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Deletes namespaces left by an earlier run of this test that was killed before its cleanup
/// (their names end with the pid of a process that no longer exists).
fn reap_stale_namespaces(ip: &Path) {
    let Ok(list) = run(ip, &["netns", "list"], None) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = NAME_PREFIXES.iter().find_map(|p| name.strip_prefix(p)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(ip, &["netns", "del", name], None);
        }
    }
}

/// IT → OT probe datagram, sent from the IT namespace to the OT veth address.
fn probe(ns: &Namespaces) {
    in_netns(&ns.it, || {
        let socket = UdpSocket::bind((IT_ADDR, 0)).expect("bind the probe socket");
        // Once the IT egress rule is in, the kernel may report the drop (ENOBUFS/EPERM):
        // the counters, not this result, say what happened.
        let _ = socket.send_to(b"weir netns probe", (OT_ADDR, PROBE_PORT));
    })
    .expect("enter the IT namespace");
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Creates the namespaces, the veth link and the one-way rules, and proves the counters work.
/// An `Err` means the environment cannot do it (not root, tools or kernel support missing,
/// e.g. no nftables egress hook before Linux 5.16); a calibration that goes wrong panics.
fn one_way_link() -> Result<Namespaces, String> {
    let ip = find_tool("ip").ok_or("`ip` (iproute2) not found; scripts/setup installs it")?;
    let nft = find_tool("nft").ok_or("`nft` (nftables) not found; scripts/setup installs it")?;
    reap_stale_namespaces(&ip);
    let pid = std::process::id();
    let mut ns = Namespaces {
        ip,
        nft,
        ot: format!("weir-ot-{pid}"),
        it: format!("weir-it-{pid}"),
        ot_dev: format!("wot{pid}"),
        it_dev: format!("wit{pid}"),
        created: Vec::new(),
    };
    for name in [ns.ot.clone(), ns.it.clone()] {
        ns.ip(&["netns", "add", &name])?;
        ns.created.push(name);
    }
    let (ot, it, ot_dev, it_dev) = (ns.ot.clone(), ns.it.clone(), ns.ot_dev.clone(), ns.it_dev.clone());
    ns.ip(&[
        "link", "add", &ot_dev, "address", OT_MAC, "netns", &ot, "type", "veth", "peer", "name", &it_dev,
        "address", IT_MAC, "netns", &it,
    ])?;
    for (name, dev, addr, peer, peer_mac) in [
        (&ot, &ot_dev, OT_ADDR, IT_ADDR, IT_MAC),
        (&it, &it_dev, IT_ADDR, OT_ADDR, OT_MAC),
    ] {
        // No IPv6 on the link: its address autoconfiguration would talk on it.
        let sysctl = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
        in_netns(name, move || match std::fs::write(&sysctl, "1") {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(format!("{sysctl}: {e}")),
            _ => Ok(()),
        })??;
        ns.ip(&["-n", name, "link", "set", "lo", "up"])?;
        ns.ip(&["-n", name, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
        ns.ip(&[
            "-n",
            name,
            "neigh",
            "replace",
            peer,
            "lladdr",
            peer_mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ])?;
        ns.ip(&["-n", name, "link", "set", dev, "up"])?;
    }

    // OT: count and drop everything that arrives on the link; count what leaves.
    let ot_rules = format!(
        "table netdev weir_ot {{\n\
         \x20 counter ot_in {{ }}\n\
         \x20 counter ot_out {{ }}\n\
         \x20 chain ingress {{ type filter hook ingress device \"{ot_dev}\" priority 0; policy accept; counter name \"ot_in\" drop; }}\n\
         \x20 chain egress {{ type filter hook egress device \"{ot_dev}\" priority 0; policy accept; counter name \"ot_out\" accept; }}\n\
         }}\n"
    );
    ns.nft(&ot, &["-f", "-"], Some(&ot_rules))?;

    // Calibration 1: with only the OT rules, an IT → OT probe crosses and is counted at OT.
    probe(&ns);
    // From here on the environment has everything the test needs: a failure is a failure.
    assert!(
        wait_until(Duration::from_secs(3), || ns.ot_in().packets == 1),
        "calibration: the IT → OT probe was not counted at the OT ingress (ot_in = {:?})",
        ns.ot_in()
    );

    // IT: count and drop everything that would leave on the link; count what arrives.
    let it_rules = format!(
        "table netdev weir_it {{\n\
         \x20 counter it_out {{ }}\n\
         \x20 counter it_in {{ }}\n\
         \x20 chain egress {{ type filter hook egress device \"{it_dev}\" priority 0; policy accept; counter name \"it_out\" drop; }}\n\
         \x20 chain ingress {{ type filter hook ingress device \"{it_dev}\" priority 0; policy accept; counter name \"it_in\" accept; }}\n\
         }}\n"
    );
    ns.nft(&it, &["-f", "-"], Some(&it_rules))?;

    // Calibration 2: now the same probe is counted and dropped at IT and never reaches OT.
    probe(&ns);
    std::thread::sleep(Duration::from_millis(200));
    let (it_out, ot_in) = (ns.it_out(), ns.ot_in());
    assert!(
        it_out.packets == 1 && ot_in.packets == 1,
        "calibration: the one-way rule did not stop the probe at IT: it_out = {it_out:?}, ot_in = {ot_in:?}"
    );
    Ok(ns)
}

/// A daemon started with `ip netns exec NS binary --policy POLICY`. `ip netns exec` execs the
/// binary in place, so the child is the daemon itself. Stopped (SIGTERM, then SIGKILL) on drop.
struct NsDaemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl NsDaemon {
    fn start(
        ns: &Namespaces,
        netns: &str,
        name: &'static str,
        binary: &str,
        policy: &Path,
        dir: &Path,
    ) -> NsDaemon {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).unwrap();
        let child = Command::new(&ns.ip)
            .args(["netns", "exec", netns, binary, "--log", "info", "--policy"])
            .arg(policy)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut daemon = NsDaemon { name, child, log };
        let ready = format!("{name} ready");
        let started = wait_for_log(&daemon.log, &ready, Duration::from_secs(20));
        assert!(
            started && daemon.running(),
            "{name} did not start in {netns}:\n{}",
            daemon.log_text()
        );
        daemon
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL.
    fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "netns test: {} ignored SIGTERM for {grace:?}; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// The IT-side UDP consumer: counts each distinct payload by SHA-256, like the harness's
/// `UdpCollector`, but with a forced 8 MiB kernel buffer (the test runs as root), so that a test
/// thread starved of CPU does not drop what weir-recv re-emits and fail the test for it.
struct UdpSink {
    addr: SocketAddr,
    seen: Arc<Mutex<HashMap<String, u32>>>,
}

impl UdpSink {
    /// Binds 127.0.0.1 in the calling thread's namespace.
    fn start() -> io::Result<UdpSink> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &(8 << 20))
            .map_err(io::Error::from)?;
        let addr = socket.local_addr()?;
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let counts = seen.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = socket.recv(&mut buf) {
                let digest = ring::digest::digest(&ring::digest::SHA256, &buf[..n]);
                *counts.lock().unwrap().entry(hex(digest.as_ref())).or_insert(0) += 1;
            }
        });
        Ok(UdpSink { addr, seen })
    }

    fn count(&self) -> u64 {
        self.seen.lock().unwrap().values().map(|n| u64::from(*n)).sum()
    }
}

fn policy_text(tcp_sink: SocketAddr, udp_sink: SocketAddr) -> String {
    format!(
        r#"# weir conduit across a veth pair between two network namespaces (tests/netns.rs)
[link]
key_file = "link.key"
mtu = 1500
repair = "10%"
bandwidth = "1 Gbit/s"
heartbeat = "200ms"
flush = "1ms"

[send]
to = "{IT_ADDR}:{LINK_PORT}"

[recv]
listen = "{IT_ADDR}:{LINK_PORT}"
state = "recv.state"
spool = "spool"
deliver_state = "deliver-state"

[[channel]]
name = "stream"
source = {{ tcp = "{TCP_SOURCE}" }}
max_message = "256 KiB"
sinks = [{{ tcp = "{tcp_sink}" }}]

[[channel]]
name = "datagrams"
source = {{ udp = "{UDP_SOURCE}" }}
max_message = "16 KiB"
sinks = [{{ udp = "{udp_sink}" }}]
"#
    )
}

#[test]
fn the_link_carries_ot_to_it_and_nothing_back() {
    let began = Instant::now();
    let ns = match one_way_link() {
        Ok(ns) => ns,
        Err(reason) => return skip(&reason),
    };
    eprintln!(
        "netns test: {} ⇄ {} one-way link ready and calibrated in {:?}",
        ns.ot,
        ns.it,
        began.elapsed()
    );

    // IT-side consumers, on the IT namespace's loopback.
    let tcp_out = in_netns(&ns.it, || TcpCollector::start("127.0.0.1:0".parse().unwrap()))
        .unwrap()
        .unwrap();
    let udp_out = in_netns(&ns.it, UdpSink::start).unwrap().unwrap();

    let dir = scratch_dir("netns").unwrap();
    weir::keys::generate(&dir.join("link.key"), 1).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, policy_text(tcp_out.addr, udp_out.addr)).unwrap();

    let mut recv = NsDaemon::start(
        &ns,
        &ns.it,
        "weir-recv",
        env!("CARGO_BIN_EXE_weir-recv"),
        &policy,
        &dir,
    );
    let mut deliver = NsDaemon::start(
        &ns,
        &ns.it,
        "weir-deliver",
        env!("CARGO_BIN_EXE_weir-deliver"),
        &policy,
        &dir,
    );
    let mut send = NsDaemon::start(
        &ns,
        &ns.ot,
        "weir-send",
        env!("CARGO_BIN_EXE_weir-send"),
        &policy,
        &dir,
    );

    // OT-side traffic, from the OT namespace's loopback into weir-send's sources.
    let tcp_in: SocketAddr = TCP_SOURCE.parse().unwrap();
    let udp_in: SocketAddr = UDP_SOURCE.parse().unwrap();
    let pushed = Instant::now();
    let (stream_sent, datagrams_sent) = in_netns(&ns.ot, move || {
        // Spawned from a thread inside the OT namespace, so inside it too.
        let datagrams =
            std::thread::spawn(move || send_datagrams(udp_in, DATAGRAMS, 1..=1400, DATAGRAM_RATE, 11));
        let stream = send_stream(tcp_in, STREAM_BYTES, 42);
        (stream, datagrams.join().expect("datagram pusher panicked"))
    })
    .unwrap();
    let stream_sent = stream_sent.expect("push the stream into the OT source");
    let datagrams_sent = datagrams_sent.expect("push datagrams into the OT source");

    // Everything arrived on the IT side, intact.
    let streams = tcp_out.wait_for(1, Duration::from_secs(30));
    assert_eq!(
        streams.len(),
        1,
        "the stream did not arrive; weir-recv log:\n{}\nweir-send log:\n{}",
        recv.log_text(),
        send.log_text()
    );
    assert_eq!(streams[0].bytes, STREAM_BYTES);
    assert_eq!(
        streams[0].sha256, stream_sent.sha256,
        "the stream arrived altered"
    );
    assert!(streams[0].clean, "a complete stream must end cleanly");
    wait_until(Duration::from_secs(10), || udp_out.count() >= DATAGRAMS);
    let seen = udp_out.seen.lock().unwrap().clone();
    let missing = datagrams_sent
        .iter()
        .filter(|d| !seen.contains_key(&d.sha256))
        .count();
    assert_eq!(
        missing,
        0,
        "datagrams did not arrive; weir-recv log:\n{}",
        recv.log_text()
    );
    assert_eq!(
        seen.len(),
        datagrams_sent.len(),
        "something never sent was delivered"
    );
    assert!(seen.values().all(|n| *n == 1), "a datagram was delivered twice");
    let delivered = pushed.elapsed();

    // Stop the sender first (it sends its last heartbeat), then the receiver; both cleanly.
    let send_status = send.stop(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let deliver_status = deliver.stop(Duration::from_secs(10));
    let recv_status = recv.stop(Duration::from_secs(10));
    assert!(
        deliver_status.is_some_and(|s| s.success()),
        "weir-deliver did not exit cleanly ({deliver_status:?}):\n{}",
        deliver.log_text()
    );
    assert!(
        send_status.is_some_and(|s| s.success()),
        "weir-send did not exit cleanly ({send_status:?}):\n{}",
        send.log_text()
    );
    assert!(
        recv_status.is_some_and(|s| s.success()),
        "weir-recv did not exit cleanly ({recv_status:?}):\n{}",
        recv.log_text()
    );

    // The counters: traffic went OT → IT over the link, and nothing came back. Each of
    // it_out and ot_in holds exactly the one calibration probe counted before the daemons ran.
    let (ot_out, it_in, it_out, ot_in) = (ns.ot_out(), ns.it_in(), ns.it_out(), ns.ot_in());
    eprintln!(
        "netns test: OT→IT ot_out={ot_out:?} it_in={it_in:?}; IT→OT it_out={it_out:?} ot_in={ot_in:?} \
         (calibration probe included); delivered in {delivered:?}, total {:?}",
        began.elapsed()
    );
    assert_eq!(
        it_out.packets,
        1,
        "the IT side sent {} packet(s) toward the OT side on the link",
        it_out.packets.saturating_sub(1)
    );
    assert_eq!(
        ot_in.packets,
        1,
        "{} packet(s) arrived at the OT side on the link",
        ot_in.packets.saturating_sub(1)
    );
    // GSO may carry several datagrams in one counted packet, so bytes are the measure: at
    // least the stream itself crossed, as counted at both ends.
    assert!(
        ot_out.packets > 0 && it_in.packets > 0,
        "nothing crossed the link"
    );
    assert!(
        ot_out.bytes >= STREAM_BYTES && it_in.bytes >= STREAM_BYTES,
        "less than the stream crossed the link: ot_out={ot_out:?} it_in={it_in:?}"
    );
    // Logs and the state file are kept when a test fails, for the post-mortem.
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn counters_parse_from_nft_output() {
    let text = "table netdev weir_it {\n\tcounter it_out {\n\t\tpackets 12 bytes 3456\n\t}\n}\n";
    assert_eq!(
        parse_counter(text),
        Some(Counter {
            packets: 12,
            bytes: 3456
        })
    );
    assert_eq!(parse_counter("table netdev weir_it {\n}\n"), None);
}
