//! `weir bench`: goodput, CPU per daemon, peak RSS and small-message latency of the gateway on
//! loopback (weir-send → link → weir-recv → spool → weir-deliver → sinks), with and without
//! loss. Figures, not pass/fail: the machine is shared, so compare runs made together.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use weir::harness::collect::{Check, TcpCollector, UdpCollector};
use weir::harness::drive::{send_datagrams, send_stream_unhashed, DatagramSent};
use weir::harness::process::{sibling_binary, Daemon, Usage};
use weir::harness::relay::{Impairment, Relay};
use weir::harness::setup::{free_addr, scratch_dir, Conduit};
use weir::policy::limits;

/// Options of `weir bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Bytes streamed per throughput run.
    #[arg(long, default_value_t = 2 << 30)]
    bytes: u64,
    /// Run only this case (mtu1500, mtu9000, loss1, loss5, latency, pacing, priority, spool,
    /// consumers, live); default all.
    #[arg(long)]
    only: Option<String>,
    /// Pacing ceiling for every throughput run (default: each case's own; see `CASES`).
    #[arg(long)]
    bandwidth: Option<String>,
}

const STREAM_SEED: u64 = 3;

struct Case {
    name: &'static str,
    mtu: u16,
    loss: f64,
    repair: u16,
    /// The pacing ceiling (wire bytes, repair included). A one-way sender must be paced to
    /// what the receiver sustains: unpaced, it overflows the receiver's (or the relay's)
    /// kernel buffer whenever that process is descheduled, and the burst loss this causes is
    /// beyond any FEC. The `kdrops` column shows such drops.
    bandwidth: &'static str,
}

const CASES: [Case; 4] = [
    Case {
        name: "mtu1500",
        mtu: 1500,
        loss: 0.0,
        repair: 10,
        bandwidth: "5 Gbit/s",
    },
    Case {
        name: "mtu9000",
        mtu: 9000,
        loss: 0.0,
        repair: 10,
        bandwidth: "10 Gbit/s",
    },
    Case {
        name: "loss1",
        mtu: 1500,
        loss: 0.01,
        repair: 15,
        bandwidth: "4 Gbit/s",
    },
    Case {
        name: "loss5",
        mtu: 1500,
        loss: 0.05,
        repair: 30,
        bandwidth: "3 Gbit/s",
    },
];

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    println!(
        "{:<9} {:>9} {:>6} {:>7} {:>11} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "case",
        "bytes",
        "loss",
        "repair",
        "ceiling",
        "Gbit/s",
        "send cpu",
        "recv cpu",
        "dlvr cpu",
        "send rss",
        "recv rss",
        "dlvr rss",
        "intact",
        "kdrops"
    );
    for case in CASES
        .iter()
        .filter(|c| args.only.as_deref().is_none_or(|o| o == c.name))
    {
        throughput(case, &args)?;
    }
    if args.only.as_deref().is_none_or(|o| o == "latency") {
        latency()?;
    }
    if args.only.as_deref().is_none_or(|o| o == "pacing") {
        super::bench_flow::pacing()?;
    }
    if args.only.as_deref().is_none_or(|o| o == "priority") {
        super::bench_flow::priority()?;
    }
    if args.only.as_deref().is_none_or(|o| o == "spool") {
        super::bench_spool::spool(args.bytes)?;
    }
    if args.only.as_deref().is_none_or(|o| o == "consumers") {
        super::bench_consumers::consumers(args.bytes)?;
    }
    if args.only.as_deref().is_none_or(|o| o == "live") {
        super::bench_consumers::live(args.bytes)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The three daemons on loopback with collectors on the sinks. Dropping it stops them and
/// removes the spool (the logs stay in `dir`).
pub(crate) struct Pair {
    pub dir: PathBuf,
    pub recv: Daemon,
    pub deliver: Daemon,
    pub send: Daemon,
    pub tcp_in: std::net::SocketAddr,
    pub udp_in: std::net::SocketAddr,
    pub tcp_out: TcpCollector,
    pub udp_out: UdpCollector,
    pub relay: Option<Relay>,
}

impl Drop for Pair {
    fn drop(&mut self) {
        for daemon in [&mut self.send, &mut self.recv, &mut self.deliver] {
            if daemon.running() {
                daemon.stop(Duration::from_secs(3));
            }
        }
        let _ = std::fs::remove_dir_all(self.dir.join("spool"));
    }
}

/// How to start a pair for one benchmark case.
pub(crate) struct PairOptions<'a> {
    pub label: &'a str,
    pub mtu: u16,
    pub repair: u16,
    /// Random loss in the relay; the relay runs when this is above zero or `relay` is set.
    pub loss: f64,
    pub relay: bool,
    pub bandwidth: &'a str,
    pub flush: &'a str,
    pub stream_extra: &'a str,
    pub datagram_extra: &'a str,
    /// Extra `[recv]` lines, e.g. `sink_after = "write"`.
    pub recv_extra: &'a str,
}

impl Default for PairOptions<'_> {
    fn default() -> Self {
        PairOptions {
            label: "bench",
            mtu: 1500,
            repair: 10,
            loss: 0.0,
            relay: false,
            bandwidth: "1 Gbit/s",
            flush: "1ms",
            stream_extra: "",
            datagram_extra: "",
            recv_extra: "",
        }
    }
}

pub(crate) fn start_pair(o: &PairOptions<'_>) -> anyhow::Result<Pair> {
    let dir = scratch_dir(o.label)?;
    let listen = free_addr()?;
    let relay = (o.loss > 0.0 || o.relay)
        .then(|| {
            let imp = Impairment {
                loss: o.loss,
                seed: 42,
                ..Impairment::default()
            };
            Relay::start("127.0.0.1:0".parse()?, listen, imp).map_err(anyhow::Error::from)
        })
        .transpose()?;
    let tcp_out = TcpCollector::start_checking("127.0.0.1:0".parse()?, Check::Pattern(STREAM_SEED))?;
    let udp_out = UdpCollector::start("127.0.0.1:0".parse()?)?;
    let conduit = Conduit {
        mtu: o.mtu,
        repair_percent: o.repair,
        bandwidth: o.bandwidth.to_owned(),
        send_to: relay.as_ref().map_or(listen, |r| r.listen),
        listen,
        tcp: (free_addr()?, tcp_out.addr),
        udp: (free_addr()?, udp_out.addr),
        flush: o.flush.to_owned(),
    };
    let policy = conduit.write_full(&dir, o.stream_extra, o.datagram_extra, o.recv_extra)?;
    // weir-recv publishes the spool's status files when it starts; weir-deliver reads them,
    // and its sinks (no stored offset yet) start at the spool's end.
    let start = |name: &str, log: &str| {
        Daemon::spawn_ready(
            &sibling_binary(name)?,
            &policy,
            &dir.join(log),
            &[],
            &format!("{name} ready"),
        )
        .with_context(|| format!("{name} did not start"))
    };
    let recv = start("weir-recv", "recv.log")?;
    let deliver = start("weir-deliver", "deliver.log")?;
    let send = start("weir-send", "send.log")?;
    Ok(Pair {
        dir,
        recv,
        deliver,
        send,
        tcp_in: conduit.tcp.0,
        udp_in: conduit.udp.0,
        tcp_out,
        udp_out,
        relay,
    })
}

fn throughput(case: &Case, args: &BenchArgs) -> anyhow::Result<()> {
    let bandwidth = args.bandwidth.as_deref().unwrap_or(case.bandwidth);
    let pair = start_pair(&PairOptions {
        label: case.name,
        mtu: case.mtu,
        repair: case.repair,
        loss: case.loss,
        bandwidth,
        ..PairOptions::default()
    })?;
    let before = (pair.send.usage(), pair.recv.usage(), pair.deliver.usage());
    let kernel_before = udp_receive_buffer_errors();
    let sent =
        send_stream_unhashed(pair.tcp_in, args.bytes, STREAM_SEED).context("streaming into weir-send")?;
    let got = pair.tcp_out.wait_for(1, Duration::from_secs(600));
    let after = (pair.send.usage(), pair.recv.usage(), pair.deliver.usage());
    let kernel_drops = udp_receive_buffer_errors().saturating_sub(kernel_before);
    let Some(stream) = got.first() else {
        bail!("{}: nothing arrived; logs in {}", case.name, pair.dir.display());
    };
    let secs = stream.ended.duration_since(sent.started).as_secs_f64();
    let cpu = |a: Usage, b: Usage| (b.cpu_seconds - a.cpu_seconds) / secs * 100.0;
    let intact = stream.pattern_ok == Some(true) && stream.bytes == sent.bytes && stream.clean;
    println!(
        "{:<9} {:>9} {:>5.1}% {:>6}% {:>11} {:>7.2} {:>8.0}% {:>8.0}% {:>8.0}% {:>5} MiB {:>5} MiB {:>5} MiB {:>7} {:>7}",
        case.name,
        format!("{} MiB", stream.bytes >> 20),
        case.loss * 100.0,
        case.repair,
        bandwidth,
        stream.bytes as f64 * 8.0 / secs / 1e9,
        cpu(before.0, after.0),
        cpu(before.1, after.1),
        cpu(before.2, after.2),
        after.0.peak_rss >> 20,
        after.1.peak_rss >> 20,
        after.2.peak_rss >> 20,
        if intact { "yes" } else { "NO" },
        kernel_drops,
    );
    if !intact {
        println!("          (stream cut short; logs in {})", pair.dir.display());
    }
    Ok(())
}

/// 100-byte datagrams at 1000/s from the OT UDP source to the IT UDP sink (re-emitted by
/// weir-deliver), once with `recv.sink_after = "write"` and once with `"fsync"` (the default,
/// `recv.fsync` at its default too): p50, p99 and max of send → arrival.
fn latency() -> anyhow::Result<()> {
    println!();
    for after in ["write", "fsync"] {
        let recv_extra = format!("sink_after = \"{after}\"");
        let pair = start_pair(&PairOptions {
            label: "latency",
            recv_extra: &recv_extra,
            ..PairOptions::default()
        })?;
        let count = 10_000;
        let sent = send_datagrams(pair.udp_in, count, 100..=100, 1000, 5)?;
        pair.udp_out.wait_for(count, Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(100));
        let lat = latencies(&pair.udp_out, &sent);
        let pct = |p: f64| percentile(&lat, p);
        let setting = match after {
            "fsync" => format!("after = fsync (recv.fsync {:?})", limits::DEFAULT_FSYNC),
            _ => format!("after = {after}"),
        };
        println!(
            "latency   {setting}: {} of {} 100-byte datagrams at 1000/s arrived; p50 {:?}, p99 {:?}, max {:?}{}",
            lat.len(),
            count,
            pct(0.50),
            pct(0.99),
            lat.last().copied().unwrap_or_default(),
            if after == "write" {
                format!(
                    " (target p99 ≤ 2ms: {})",
                    if pct(0.99) <= Duration::from_millis(2) && lat.len() as u64 == count {
                        "met"
                    } else {
                        "MISSED"
                    }
                )
            } else {
                String::new()
            },
        );
    }
    Ok(())
}

/// Send-to-arrival times of the `sent` datagrams that `collector` received, sorted.
pub(crate) fn latencies(collector: &UdpCollector, sent: &[DatagramSent]) -> Vec<Duration> {
    let seen = collector.seen.lock().map(|m| m.clone()).unwrap_or_default();
    let mut lat: Vec<Duration> = sent
        .iter()
        .filter_map(|d| {
            seen.get(&d.sha256)
                .map(|(_, at)| at.saturating_duration_since(d.at))
        })
        .collect();
    lat.sort_unstable();
    lat
}

/// The `p` quantile (0..=1) of sorted `lat`; zero when empty.
pub(crate) fn percentile(lat: &[Duration], p: f64) -> Duration {
    let i = ((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1));
    lat.get(i).copied().unwrap_or_default()
}

/// All UDP datagrams this host's kernel dropped for full receive buffers (`RcvbufErrors` in
/// `/proc/net/snmp`): the daemons', the relay's and the collectors'.
fn udp_receive_buffer_errors() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}
