//! Observability end to end: both daemons on loopback with metrics endpoints; traffic, forged
//! datagrams, a policy drop, the sender stopped (link down within 3 heartbeats) and restarted
//! (link up, sender restart), checked through `/metrics`, `/status.json`, the status page,
//! `weir status` and the named log events.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir::harness::collect::{TcpCollector, UdpCollector};
use weir::harness::drive::wait_for_log;
use weir::harness::process::Daemon;
use weir::harness::setup::{free_addr, scratch_dir, Conduit};
use weir::keys::LinkKey;
use weir::proto::send::{Sender, SenderConfig};

/// Datagrams sealed with a key the receiver does not have, under its key id.
fn forged(count: usize) -> Vec<Vec<u8>> {
    let now = Instant::now();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut tx = Sender::new(SenderConfig {
        key: LinkKey {
            id: 1,
            secret: [0x66; 32],
        },
        session: (secs << 32) | 7,
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
        let payload = i.to_be_bytes().repeat(100);
        let _ = tx.push(now, 1, 0, weir::proto::frame::MessageKind::Data, &payload);
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

/// The value of the sample whose name and labels are exactly `series`.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn get(addr: SocketAddr, path: &str) -> String {
    weir::status::get(&format!("http://{addr}{path}")).unwrap_or_default()
}

/// Polls `/metrics` until `series` satisfies `want`; returns the value and the time it took.
fn wait_metric(
    addr: SocketAddr,
    series: &str,
    timeout: Duration,
    want: impl Fn(f64) -> bool,
) -> (f64, Duration) {
    let start = Instant::now();
    loop {
        let text = get(addr, "/metrics");
        if let Some(v) = metric(&text, series).filter(|v| want(*v)) {
            return (v, start.elapsed());
        }
        assert!(
            start.elapsed() < timeout,
            "{series} never as wanted; metrics:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn(bin: &str, policy: &Path, log: PathBuf, ready: &str) -> Daemon {
    let d = Daemon::spawn(Path::new(bin), policy, &log, &["--log", "info"]).unwrap();
    assert!(
        wait_for_log(&log, ready, Duration::from_secs(20)),
        "{bin}:\n{}",
        d.log_text()
    );
    d
}

#[test]
fn metrics_status_and_health_events_follow_the_link() {
    let dir = scratch_dir("observe").unwrap();
    let listen = free_addr().unwrap();
    let (recv_metrics, send_metrics) = (free_addr().unwrap(), free_addr().unwrap());
    let deliver_metrics = free_addr().unwrap();
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
    let policy = conduit.write(&dir).unwrap();
    let text = conduit
        .policy_text_with("", "allow_from = [\"127.0.0.1\"]")
        .replacen("[send]\n", &format!("[send]\nmetrics = \"{send_metrics}\"\n"), 1)
        .replacen(
            "[recv]\n",
            &format!("[recv]\nmetrics = \"{recv_metrics}\"\ndeliver_metrics = \"{deliver_metrics}\"\n"),
            1,
        );
    std::fs::write(&policy, text).unwrap();
    let recv_bin = env!("CARGO_BIN_EXE_weir-recv");
    let deliver_bin = env!("CARGO_BIN_EXE_weir-deliver");
    let send_bin = env!("CARGO_BIN_EXE_weir-send");
    let mut recv = spawn(recv_bin, &policy, dir.join("recv.log"), "weir-recv ready");
    let mut deliver = spawn(
        deliver_bin,
        &policy,
        dir.join("deliver.log"),
        "weir-deliver ready",
    );
    let mut send = spawn(send_bin, &policy, dir.join("send.log"), "weir-send ready");

    // Traffic flows.
    let plant = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20u32 {
        plant.send_to(&i.to_be_bytes().repeat(50), conduit.udp.0).unwrap();
    }
    assert_eq!(udp_out.wait_for(20, Duration::from_secs(10)), 20);
    let wait = Duration::from_secs(5);
    // weir-deliver shows its sinks and the spool it reads.
    let sink = format!(
        "weir_sink_messages_total{{channel=\"datagrams\",sink=\"udp {}\"}}",
        conduit.udp.1
    );
    wait_metric(deliver_metrics, &sink, wait, |v| v == 20.0);
    wait_metric(
        deliver_metrics,
        "weir_spool_records_total{channel=\"datagrams\"}",
        wait,
        |v| v == 20.0,
    );
    let status = weir::status::get(&format!("http://{deliver_metrics}/status.json")).unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["side"], "deliver");
    assert_eq!(status["sinks"][1]["messages"], 20, "{status}");
    let page = weir::status::get(&format!("http://{deliver_metrics}/")).unwrap();
    assert!(page.contains("weir-deliver"));
    wait_metric(recv_metrics, "weir_link_up", wait, |v| v == 1.0);
    wait_metric(recv_metrics, "weir_policy_fingerprint_match", wait, |v| v == 1.0);
    wait_metric(
        recv_metrics,
        "weir_recv_channel_messages_total{channel=\"datagrams\"}",
        wait,
        |v| v == 20.0,
    );
    wait_metric(recv_metrics, "weir_recv_sender_datagrams_sent", wait, |v| v > 0.0);
    wait_metric(recv_metrics, "weir_recv_heartbeat_age_seconds", wait, |v| v < 1.0);
    wait_metric(
        send_metrics,
        "weir_send_channel_messages_total{channel=\"datagrams\"}",
        wait,
        |v| v == 20.0,
    );
    wait_metric(send_metrics, "weir_send_datagrams_total", wait, |v| v > 0.0);

    // Forged datagrams: counted by reason and logged as an authentication failure.
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in forged(5) {
        attacker.send_to(&d, listen).unwrap();
    }
    wait_metric(
        recv_metrics,
        "weir_recv_dropped_total{reason=\"forged\"}",
        wait,
        |v| v == 5.0,
    );
    assert!(
        wait_for_log(&dir.join("recv.log"), "auth_failure", wait),
        "{}",
        recv.log_text()
    );

    // A datagram from an address the channel does not allow: a policy drop on the OT side.
    UdpSocket::bind("127.0.0.2:0")
        .unwrap()
        .send_to(b"outsider", conduit.udp.0)
        .unwrap();
    wait_metric(
        send_metrics,
        "weir_send_dropped_total{channel=\"datagrams\",reason=\"not_allowed\"}",
        wait,
        |v| v == 1.0,
    );
    assert!(
        wait_for_log(&dir.join("send.log"), "policy_drop", wait),
        "{}",
        send.log_text()
    );

    // The sender stops: the link goes down within three heartbeats (600 ms) plus slack.
    send.stop(Duration::from_secs(10));
    let (_, took) = wait_metric(recv_metrics, "weir_link_up", Duration::from_secs(3), |v| v == 0.0);
    assert!(took < Duration::from_secs(3), "link down after {took:?}");
    assert!(
        wait_for_log(&dir.join("recv.log"), "link_down", wait),
        "{}",
        recv.log_text()
    );
    wait_metric(recv_metrics, "weir_recv_link_down_total", wait, |v| v == 1.0);
    let (age, _) = wait_metric(recv_metrics, "weir_recv_heartbeat_age_seconds", wait, |v| {
        v >= 0.6
    });
    assert!(age < 10.0);
    let status = weir::status::fetch(&format!("http://{recv_metrics}")).unwrap();
    assert_eq!(status["link"], "down");

    // It restarts: the link comes back and the new session is reported as a restart.
    std::thread::sleep(Duration::from_millis(1100)); // a later session start second
    let mut send = spawn(send_bin, &policy, dir.join("send2.log"), "weir-send ready");
    wait_metric(recv_metrics, "weir_link_up", Duration::from_secs(5), |v| v == 1.0);
    wait_metric(recv_metrics, "weir_recv_sender_restarts_total", wait, |v| {
        v == 1.0
    });
    assert!(
        wait_for_log(&dir.join("recv.log"), "sender_restart", wait),
        "{}",
        recv.log_text()
    );
    assert!(
        wait_for_log(&dir.join("recv.log"), "link_up", wait),
        "{}",
        recv.log_text()
    );

    // The status JSON, the page and `weir status` say the same.
    let status = weir::status::fetch(&format!("http://{recv_metrics}")).unwrap();
    assert_eq!(status["link"], "up");
    assert_eq!(status["fingerprint_match"], true);
    assert_eq!(status["drops"]["forged"], 5);
    let channel = status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "datagrams")
        .unwrap();
    assert_eq!(channel["messages"], 20);
    let page = get(recv_metrics, "/");
    assert!(page.contains("<svg") && page.contains("/status.json") && !page.contains("src=\"http"));
    let mut out = String::new();
    std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["status", "--url", &format!("http://{recv_metrics}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("link:               UP"), "{out}");
    assert!(out.contains("forged=5"), "{out}");
    assert!(out.contains("datagrams"), "{out}");

    browser_shows_what_metrics_say(recv_metrics, &dir);

    send.stop(Duration::from_secs(10));
    deliver.stop(Duration::from_secs(10));
    recv.stop(Duration::from_secs(10));
}

/// Loads the status page in headless Chromium (if installed) and compares what it shows with
/// `/metrics`.
fn browser_shows_what_metrics_say(addr: SocketAddr, dir: &Path) {
    let Some(browser) = ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        assert!(
            std::env::var_os("WEIR_REQUIRE_BROWSER").is_none(),
            "WEIR_REQUIRE_BROWSER is set but chromium is not installed"
        );
        eprintln!("SKIPPED: headless-browser check of the status page: chromium is not installed");
        return;
    };
    let profile = dir.join("chromium-profile");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("http://{addr}/"))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let metrics = get(addr, "/metrics");
    let up = metric(&metrics, "weir_link_up") == Some(1.0);
    assert!(
        dom.contains(if up { "class=\"up\">up<" } else { ">down<" }),
        "{dom}"
    );
    let fp = metric(&metrics, "weir_policy_fingerprint_match") == Some(1.0);
    assert!(dom.contains(if fp { ">match<" } else { ">MISMATCH<" }), "{dom}");
    let delivered = metric(
        &metrics,
        "weir_recv_channel_messages_total{channel=\"datagrams\"}",
    )
    .unwrap();
    assert!(
        dom.contains(&format!("<td>datagrams</td><td>{delivered}</td>")),
        "page and /metrics disagree on the datagrams channel ({delivered}):\n{dom}"
    );
    assert!(dom.contains("<polyline id=\"bytes\""), "{dom}");
}
