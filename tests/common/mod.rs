//! The fixture of the consumer tests: the three daemons on loopback with a spool and
//! `[recv.serve]` (served by weir-deliver), and a throw-away PKI.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use weir::consumer::client::{ClientOptions, Consumer, Transport};
use weir::consumer::protocol::{Message, Record, StartAt, Subscription};
use weir::harness::collect::{TcpCollector, UdpCollector};
use weir::harness::drive::wait_for_log;
use weir::harness::pki::{ClientFiles, TestPki};
use weir::harness::process::Daemon;
use weir::harness::setup::{free_addr, free_port, scratch_dir, Conduit};

/// Identity granted both channels.
pub const READER: &str = "reader.weir.test";
/// Identity granted only the datagram channel.
pub const SIEM: &str = "siem.weir.test";

pub struct Site {
    pub dir: PathBuf,
    pub policy: PathBuf,
    pub pki: TestPki,
    pub conduit: Conduit,
    pub serve: SocketAddr,
    pub metrics: SocketAddr,
    pub deliver_metrics: SocketAddr,
    pub recv: Daemon,
    pub deliver: Daemon,
    pub send: Daemon,
    pub _tcp_out: TcpCollector,
    pub _udp_out: UdpCollector,
}

pub fn spawn(bin: &str, policy: &Path, log: PathBuf, ready: &str) -> Daemon {
    let d = Daemon::spawn(Path::new(bin), policy, &log, &["--log", "info"]).unwrap();
    assert!(
        wait_for_log(&log, ready, Duration::from_secs(20)),
        "{bin}:\n{}",
        d.log_text()
    );
    d
}

pub fn start(label: &str, spool_extra: &str) -> Site {
    start_prepared(label, spool_extra, |_| {})
}

/// Like [`start`], running `prepare` on the site's directory before the daemons start.
pub fn start_prepared(label: &str, spool_extra: &str, prepare: impl FnOnce(&Path)) -> Site {
    let dir = scratch_dir(label).unwrap();
    prepare(&dir);
    let pki = TestPki::create(&dir.join("pki"), "weir test CA").unwrap();
    let listen = free_addr().unwrap();
    let tcp_out = TcpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let udp_out = UdpCollector::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let conduit = Conduit {
        mtu: 1500,
        repair_percent: 10,
        bandwidth: "2 Gbit/s".into(),
        send_to: listen,
        listen,
        tcp: (free_addr().unwrap(), tcp_out.addr),
        udp: (free_addr().unwrap(), udp_out.addr),
        flush: "1ms".into(),
    };
    let serve = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let metrics = free_addr().unwrap();
    let deliver_metrics = free_addr().unwrap();
    let recv_extra = format!(
        "metrics = \"{metrics}\"\ndeliver_metrics = \"{deliver_metrics}\"\nfsync = \"20ms\"\n\
         {spool_extra}\n{}",
        pki.serve_table(
            serve,
            "handshake_timeout = \"2s\"\nidle_timeout = \"5s\"\nmax_connections = 8"
        ),
    );
    let policy = conduit
        .write_full(
            &dir,
            &format!("consumers = [\"{READER}\"]"),
            &format!("consumers = [\"{READER}\", \"{SIEM}\"]"),
            &recv_extra,
        )
        .unwrap();
    let recv = spawn(
        env!("CARGO_BIN_EXE_weir-recv"),
        &policy,
        dir.join("recv.log"),
        "weir-recv ready",
    );
    let deliver = spawn(
        env!("CARGO_BIN_EXE_weir-deliver"),
        &policy,
        dir.join("deliver.log"),
        "weir-deliver ready",
    );
    let send = spawn(
        env!("CARGO_BIN_EXE_weir-send"),
        &policy,
        dir.join("send.log"),
        "weir-send ready",
    );
    Site {
        dir,
        policy,
        pki,
        conduit,
        serve,
        metrics,
        deliver_metrics,
        recv,
        deliver,
        send,
        _tcp_out: tcp_out,
        _udp_out: udp_out,
    }
}

impl Site {
    pub fn options(&self, files: &ClientFiles, transport: Transport) -> ClientOptions {
        self.pki.client_options(files, self.serve, transport)
    }

    pub fn restart_recv(&mut self) {
        self.recv.stop(Duration::from_secs(10));
        let log = self
            .dir
            .join(format!("recv-{}.log", std::process::id() ^ rand_suffix()));
        self.recv = spawn(
            env!("CARGO_BIN_EXE_weir-recv"),
            &self.policy,
            log,
            "weir-recv ready",
        );
    }

    /// The value of the sample whose name and labels are exactly `series` on `/metrics` of
    /// weir-deliver (the spool as consumers see it, and the consumer server), else of
    /// weir-recv; NaN when there is none.
    pub fn metric(&self, series: &str) -> f64 {
        [self.deliver_metrics, self.metrics]
            .into_iter()
            .find_map(|addr| {
                let text = weir::status::get(&format!("http://{addr}/metrics")).unwrap_or_default();
                text.lines()
                    .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            })
            .unwrap_or(f64::NAN)
    }

    pub fn durable(&self, channel: &str) -> u64 {
        let value = self.metric(&format!("weir_spool_durable_offset{{channel=\"{channel}\"}}"));
        if value.is_nan() {
            0
        } else {
            value as u64
        }
    }

    pub fn stop(mut self) {
        self.send.stop(Duration::from_secs(5));
        self.deliver.stop(Duration::from_secs(5));
        self.recv.stop(Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Sends `count` datagrams `"datagram <i>"` into the datagram channel, paced.
pub fn send_datagrams(site: &Site, first: u64, count: u64) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in first..first + count {
        socket
            .send_to(format!("datagram {i}").as_bytes(), site.conduit.udp.0)
            .unwrap();
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Waits until the spool holds `count` durable records of `channel`.
pub fn wait_durable(site: &Site, channel: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while site.durable(channel) < count {
        assert!(
            Instant::now() < deadline,
            "{channel}: {} of {count} records durable; recv log:\n{}",
            site.durable(channel),
            site.recv.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `channel` from `from` until caught up (or `limit` records), returning the records.
pub async fn read(options: &ClientOptions, channel: &str, from: StartAt, limit: usize) -> Vec<Record> {
    let subscription = vec![Subscription {
        channel: channel.into(),
        from,
    }];
    let (mut consumer, _) = Consumer::connect(options, subscription).await.unwrap();
    let mut records = Vec::new();
    while records.len() < limit {
        match tokio::time::timeout(Duration::from_secs(20), consumer.next()).await {
            Ok(Ok(Some(Message::Record(record)))) => records.push(record),
            Ok(Ok(Some(Message::CaughtUp { .. }))) => break,
            Ok(Ok(Some(Message::Keepalive))) => {}
            other => panic!("{channel}: unexpected {other:?} after {} records", records.len()),
        }
    }
    records
}
