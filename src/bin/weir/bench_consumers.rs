//! IT-side benchmarks of the consumer server: how fast `weir-deliver` serves a stored channel
//! to consumers over TLS and QUIC, and the whole path while writing: OT stream → link →
//! weir-recv → spool → weir-deliver → consumer (and TCP sink). Rates are of payload bytes,
//! compared with the link's goodput ([`LINK_GBITS`](super::bench_spool::LINK_GBITS)).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use weir::consumer::client::{ClientOptions, Consumer, Transport};
use weir::consumer::protocol::{Message, RecordKind, StartAt, Subscription};
use weir::harness::collect::{Check, TcpCollector, UdpCollector};
use weir::harness::drive::send_stream_unhashed;
use weir::harness::pki::{ClientFiles, TestPki};
use weir::harness::process::{sibling_binary, Daemon};
use weir::harness::setup::{free_addr, scratch_dir, Conduit};
use weir::harness::Pattern;
use weir::policy::limits;
use weir::spool::{ChannelLog, NewRecord};

use super::bench_spool::*;

/// Writes `total` bytes of [`PREFILL_RECORD`]-byte records of the [`Pattern`] (`SEED`) into
/// channel directory `dir`, fsynced; returns the record count.
fn prefill(dir: &Path, total: u64) -> anyhow::Result<u64> {
    let per_batch = BATCH_BYTES / PREFILL_RECORD;
    let count = (total / PREFILL_RECORD as u64).max(1);
    let (mut log, _) = ChannelLog::open(dir, daemon_config()).context("opening the spool")?;
    let mut pattern = Pattern::new(SEED);
    let mut data = vec![0u8; per_batch * PREFILL_RECORD];
    let mut seq = 0u64;
    while seq < count {
        let n = usize::try_from(count - seq).unwrap_or(usize::MAX).min(per_batch);
        let chunk = data.get_mut(..n * PREFILL_RECORD).unwrap_or_default();
        pattern.fill(chunk);
        let time_ns = unix_ns();
        let records: Vec<NewRecord<'_>> = (seq..)
            .zip(chunk.chunks_exact(PREFILL_RECORD))
            .map(|(seq, payload)| NewRecord {
                seq,
                time_ns,
                stream: 1,
                kind: RecordKind::Data,
                payload,
            })
            .collect();
        let now = Instant::now();
        log.append_batch(&records, now).context("spool append")?;
        log.tick(now, time_ns).context("spool tick")?;
        seq += n as u64;
    }
    log.sync().context("spool sync")?;
    Ok(count)
}

/// A throw-away site: a PKI, a policy with a spool in `spool` and the consumer server on
/// loopback (TLS and QUIC on the same port), and collectors for the channels' own sinks.
/// `metrics` is weir-recv's (the spool's drop counters).
struct Site {
    policy: PathBuf,
    conduit: Conduit,
    serve: SocketAddr,
    metrics: SocketAddr,
    pki: TestPki,
    client: ClientFiles,
    tcp_out: TcpCollector,
    _udp_out: UdpCollector,
}

impl Site {
    fn create(dir: &Path, spool: &Path, bandwidth: &str) -> anyhow::Result<Site> {
        let pki = TestPki::create(&dir.join("pki"), "weir bench CA")?;
        let client = pki.client(CONSUMER)?;
        let tcp_out = TcpCollector::start_checking("127.0.0.1:0".parse()?, Check::Pattern(SEED))?;
        let udp_out = UdpCollector::start("127.0.0.1:0".parse()?)?;
        let listen = free_addr()?;
        let conduit = Conduit {
            mtu: 1500,
            repair_percent: 10,
            bandwidth: bandwidth.to_owned(),
            send_to: listen,
            listen,
            tcp: (free_addr()?, tcp_out.addr),
            udp: (free_addr()?, udp_out.addr),
            flush: "1ms".to_owned(),
        };
        // `free_addr` checks the port is free for both TCP and UDP.
        let serve = free_addr()?;
        let metrics = free_addr()?;
        let recv_extra = format!(
            "spool = \"{}\"\nmetrics = \"{metrics}\"\n{}",
            spool.display(),
            pki.serve_table(serve, "idle_timeout = \"30s\"\nmax_connections = 8"),
        );
        let policy = conduit.write_full(dir, &format!("consumers = [\"{CONSUMER}\"]"), "", &recv_extra)?;
        Ok(Site {
            policy,
            conduit,
            serve,
            metrics,
            pki,
            client,
            tcp_out,
            _udp_out: udp_out,
        })
    }

    /// Starts daemon `name` and waits for its "ready" line.
    fn spawn(&self, name: &str, dir: &Path) -> anyhow::Result<Daemon> {
        Daemon::spawn_ready(
            &sibling_binary(name)?,
            &self.policy,
            &dir.join(format!("{name}.log")),
            &[],
            &format!("{name} ready"),
        )
        .with_context(|| format!("{name} did not start"))
    }

    /// The IT side: weir-recv (it publishes the spool's status files when it starts), then
    /// weir-deliver, which reads them.
    fn spawn_it(&self, dir: &Path) -> anyhow::Result<(Daemon, Daemon)> {
        let recv = self.spawn("weir-recv", dir)?;
        let deliver = self.spawn("weir-deliver", dir)?;
        Ok((recv, deliver))
    }

    fn options(&self, transport: Transport) -> ClientOptions {
        self.pki.client_options(&self.client, self.serve, transport)
    }

    /// Records of the stream channel the spool could not store, from the metrics: the total
    /// and the non-zero reasons.
    fn spool_drops(&self) -> (u64, String) {
        let text = weir::status::get(&format!("http://{}/metrics", self.metrics)).unwrap_or_default();
        let mut total = 0;
        let mut reasons = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("weir_spool_dropped_total{channel=\"stream\",reason=\"")
            else {
                continue;
            };
            let Some((reason, value)) = rest.split_once("\"}") else {
                continue;
            };
            let value = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
            if value > 0 {
                reasons.push(format!("{value} {reason}"));
                total += value;
            }
        }
        (total, reasons.join(", "))
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn subscribe(from: StartAt) -> Vec<Subscription> {
    vec![Subscription {
        channel: "stream".to_owned(),
        from,
    }]
}

/// What one consumer read.
struct Read {
    records: u64,
    bytes: u64,
    /// Offsets consecutive from the first, no gap.
    in_order: bool,
    started: Instant,
    done: Instant,
}

impl Read {
    fn gbits(&self) -> f64 {
        gbits(self.bytes, self.done.duration_since(self.started).as_secs_f64())
    }
}

/// Reads the stream channel from the oldest record until the server says it caught up.
async fn read_to_end(options: ClientOptions) -> anyhow::Result<Read> {
    let started = Instant::now();
    let (mut consumer, _) = Consumer::connect(&options, subscribe(StartAt::Earliest)).await?;
    let (mut records, mut bytes, mut in_order) = (0u64, 0u64, true);
    loop {
        match tokio::time::timeout(MESSAGE_TIMEOUT, consumer.next()).await {
            Ok(Ok(Some(Message::Record(record)))) => {
                in_order &= record.offset == records;
                records += 1;
                bytes += record.payload.len() as u64;
            }
            Ok(Ok(Some(Message::CaughtUp { .. }))) => break,
            Ok(Ok(Some(Message::Gap { .. }))) => in_order = false,
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => bail!("the server closed the session after {records} records"),
            Ok(Err(error)) => return Err(error).context(format!("after {records} records")),
            Err(_) => bail!("no message for {MESSAGE_TIMEOUT:?} after {records} records"),
        }
    }
    Ok(Read {
        records,
        bytes,
        in_order,
        started,
        done: Instant::now(),
    })
}

/// `--only consumers`: pre-fills a channel with `min(bytes, 1 GiB)` of 256 KiB records, then
/// reads it from `earliest` to `CaughtUp` over TLS, over QUIC, and with two TLS consumers at once.
pub fn consumers(bytes: u64) -> anyhow::Result<()> {
    let total = bytes.clamp(64 << 20, 1 << 30);
    let dir = scratch_dir("consumers")?;
    let result = consumers_in(&dir, total);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn consumers_in(dir: &Path, total: u64) -> anyhow::Result<()> {
    let spool = dir.join("spool");
    let t = Instant::now();
    let records = prefill(&spool.join("stream"), total)?;
    let fill_secs = t.elapsed().as_secs_f64();
    let payload = records * PREFILL_RECORD as u64;
    let site = Site::create(dir, &spool, "1 Gbit/s")?;
    let (recv, deliver) = site.spawn_it(dir)?;
    let (fs, _) = filesystem(&spool);
    println!();
    println!(
        "consumers {} of {} records pre-filled in {:.1} s on {fs} (still in the page cache); \
         weir-deliver serves it on loopback (weir-recv runs idle), read from earliest to CaughtUp",
        size_label(payload),
        size_label(PREFILL_RECORD as u64),
        fill_secs,
    );
    println!(
        "{:<9} {:>9} {:>9} {:>9} {:>6} {:>7} {:>13} {:>8} {:>9} {:>9} {:>21} {:>7}",
        "case",
        "transport",
        "consumers",
        "bytes",
        "secs",
        "Gbit/s",
        "per consumer",
        "dlvr cpu",
        "dlvr rss",
        "bench cpu",
        "× link (4.42 Gbit/s)",
        "intact"
    );
    let rt = runtime()?;
    for (transport, name, n) in [
        (Transport::Tls, "tls", 1),
        (Transport::Quic, "quic", 1),
        (Transport::Tls, "tls", 2),
    ] {
        let before = (deliver.usage(), me());
        let started = Instant::now();
        let reads: Vec<Read> = rt.block_on(async {
            let tasks: Vec<_> = (0..n)
                .map(|_| tokio::spawn(read_to_end(site.options(transport))))
                .collect();
            let mut reads = Vec::new();
            for task in tasks {
                reads.push(task.await??);
            }
            Ok::<_, anyhow::Error>(reads)
        })?;
        let secs = reads
            .iter()
            .map(|r| r.done)
            .max()
            .unwrap_or(started)
            .duration_since(started)
            .as_secs_f64();
        let after = (deliver.usage(), me());
        let sum: u64 = reads.iter().map(|r| r.bytes).sum();
        let intact = reads
            .iter()
            .all(|r| r.in_order && r.records == records && r.bytes == payload);
        let per = reads
            .iter()
            .map(|r| format!("{:.2}", r.gbits()))
            .collect::<Vec<_>>()
            .join(" / ");
        let rate = gbits(sum, secs);
        println!(
            "{:<9} {:>9} {:>9} {:>9} {:>6.2} {:>7.2} {:>13} {:>7.0}% {:>9} {:>8.0}% {:>20.2}× {:>7}",
            "consumers",
            name,
            n,
            size_label(sum),
            secs,
            rate,
            per,
            cpu(before.0, after.0, secs),
            // Peak since start: the spool is far larger, the server's memory is not.
            size_label_mib(after.0.peak_rss),
            cpu(before.1, after.1, secs),
            rate / LINK_GBITS,
            if intact { "intact" } else { "CORRUPT" },
        );
    }
    drop((deliver, recv));
    Ok(())
}

/// What the following consumer saw of the stream.
struct Follow {
    bytes: u64,
    /// Data records whose link sequence number did not follow the previous one's.
    seq_gaps: u64,
    pattern_ok: bool,
    lost: u64,
    end: Option<Instant>,
}

/// Follows the stream channel until the stream's End (or Abort) record, checking the bytes.
async fn follow(mut consumer: Consumer) -> anyhow::Result<Follow> {
    let mut pattern = Pattern::new(SEED);
    let mut last_seq: Option<u64> = None;
    let mut seen = Follow {
        bytes: 0,
        seq_gaps: 0,
        pattern_ok: true,
        lost: 0,
        end: None,
    };
    loop {
        match tokio::time::timeout(MESSAGE_TIMEOUT, consumer.next()).await {
            Ok(Ok(Some(Message::Record(record)))) => match record.kind {
                RecordKind::Data => {
                    if last_seq.is_some_and(|last| record.seq != last.wrapping_add(1)) {
                        seen.seq_gaps += 1;
                    }
                    last_seq = Some(record.seq);
                    seen.pattern_ok &= pattern.check(&record.payload);
                    seen.bytes += record.payload.len() as u64;
                }
                RecordKind::End | RecordKind::Abort => {
                    seen.pattern_ok &= record.kind == RecordKind::End;
                    seen.end = Some(Instant::now());
                    return Ok(seen);
                }
                RecordKind::Lost => seen.lost += 1,
                RecordKind::Open => {}
            },
            Ok(Ok(Some(Message::Gap { .. }))) => seen.lost += 1,
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => bail!("the server closed the session after {} bytes", seen.bytes),
            Ok(Err(error)) => return Err(error).context(format!("after {} bytes", seen.bytes)),
            Err(_) => return Ok(seen),
        }
    }
}

/// The pacing ceilings of the live case: the mtu1500 case's, then one this VM's disk keeps up
/// with (see the spool case), to tell the spool's limit from the consumer path's.
const LIVE_CEILINGS: [&str; 2] = ["5 Gbit/s", "2 Gbit/s"];

/// `--only live`: all three daemons; a TCP stream of `bytes` into the OT side while a consumer
/// follows the channel over TLS from `latest` (weir-deliver's server) and weir-deliver's TCP
/// sink re-emits it; once at each of [`LIVE_CEILINGS`].
pub fn live(bytes: u64) -> anyhow::Result<()> {
    let total = bytes.max(16 << 20);
    let (fs, _) = filesystem(&std::env::temp_dir());
    println!();
    println!(
        "live      weir-send → weir-recv → spool → weir-deliver, MTU 1500, spool in {} on {fs} (daemon \
         defaults, recv.spool_queue {}, recv.sink_after fsync); a TCP stream into weir-send, weir-deliver's TCP \
         sink and one TLS consumer following from latest; lag = end of sending → End record",
        std::env::temp_dir().display(),
        size_label(limits::DEFAULT_SPOOL_QUEUE),
    );
    println!(
        "{:<9} {:>9} {:>9} {:>11} {:>8} {:>15} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>11} {:>7} {:>8}",
        "case",
        "bytes",
        "ceiling",
        "link Gbit/s",
        "sink lag",
        "consumer Gbit/s",
        "lag",
        "send cpu",
        "recv cpu",
        "dlvr cpu",
        "dlvr rss",
        "bench cpu",
        "spool drops",
        "sink",
        "consumer"
    );
    for ceiling in LIVE_CEILINGS {
        let dir = scratch_dir("live")?;
        let result = live_in(&dir, total, ceiling);
        // Keep the logs of a failed run; the spool itself is large.
        let _ = std::fs::remove_dir_all(dir.join("spool"));
        if matches!(result, Ok(true)) {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result?;
    }
    Ok(())
}

/// Runs the live case in `dir` at pacing ceiling `ceiling`; true when the consumer's copy is
/// intact.
fn live_in(dir: &Path, total: u64, ceiling: &str) -> anyhow::Result<bool> {
    let spool = dir.join("spool");
    let site = Site::create(dir, &spool, ceiling)?;
    let (recv, deliver) = site.spawn_it(dir)?;
    let send = site.spawn("weir-send", dir)?;
    let rt = runtime()?;
    let (consumer, _) = rt
        .block_on(Consumer::connect(
            &site.options(Transport::Tls),
            subscribe(StartAt::Latest),
        ))
        .context("subscribing")?;
    let following = rt.spawn(follow(consumer));
    let before = (send.usage(), recv.usage(), deliver.usage(), me());
    let sent = send_stream_unhashed(site.conduit.tcp.0, total, SEED).context("streaming into weir-send")?;
    let got = site.tcp_out.wait_for(1, Duration::from_secs(600));
    let seen = rt.block_on(following)??;
    let after = (send.usage(), recv.usage(), deliver.usage(), me());
    let (drops, reasons) = site.spool_drops();
    let Some(stream) = got.first() else {
        bail!("live: nothing arrived at the TCP sink; logs in {}", dir.display());
    };
    let link_secs = stream.ended.duration_since(sent.started).as_secs_f64();
    let Some(end) = seen.end else {
        bail!(
            "live: the consumer never saw the stream's End ({} of {} bytes; {drops} spool drops); logs in {}",
            seen.bytes,
            sent.bytes,
            dir.display()
        );
    };
    let secs = end.duration_since(sent.started).as_secs_f64();
    let lag = end.saturating_duration_since(sent.finished);
    let link_lag = stream.ended.saturating_duration_since(sent.finished);
    let intact = seen.pattern_ok && seen.lost == 0 && seen.bytes == sent.bytes;
    let link_intact = stream.pattern_ok == Some(true) && stream.bytes == sent.bytes && stream.clean;
    println!(
        "{:<9} {:>9} {:>9} {:>11.2} {:>8} {:>15.2} {:>7} {:>7.0}% {:>7.0}% {:>7.0}% {:>8} {:>8.0}% {:>11} {:>7} {:>8}",
        "live",
        size_label(sent.bytes),
        ceiling,
        gbits(stream.bytes, link_secs),
        format!("{:.0?}", link_lag),
        gbits(seen.bytes, secs),
        format!("{:.0?}", lag),
        cpu(before.0, after.0, secs),
        cpu(before.1, after.1, secs),
        cpu(before.2, after.2, secs),
        size_label_mib(after.2.peak_rss),
        cpu(before.3, after.3, secs),
        drops,
        if link_intact { "intact" } else { "CORRUPT" },
        if intact { "intact" } else { "CORRUPT" },
    );
    drop((send, recv, deliver));
    if !intact {
        println!(
            "          (consumer got {} of {} bytes, {} jumps in the link sequence, {} loss notices; \
             spool dropped: {}; logs in {})",
            seen.bytes,
            sent.bytes,
            seen.seq_gaps,
            seen.lost,
            if reasons.is_empty() { "none" } else { &reasons },
            dir.display()
        );
    }
    Ok(intact)
}

/// Peak memory in whole MiB ("37 MiB"): [`size_label`] prints exact sizes only.
fn size_label_mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}
