//! IT-side benchmark of the spool: how fast it writes (in-process [`ChannelLog`], shaped like
//! the spool writer thread, against a raw-file baseline), and the helpers the consumer
//! benchmarks (`bench_consumers`) share.
//!
//! Rates are of payload bytes, compared with the link's own goodput on this kind of machine
//! (see [`LINK_GBITS`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use weir::consumer::protocol::RecordKind;
use weir::harness::process::{usage, Usage};
use weir::harness::setup::scratch_dir;
use weir::harness::Pattern;
use weir::policy::limits;
use weir::spool::{ChannelLog, LogConfig, NewRecord};

/// The link's goodput measured at MTU 1500 (the link issue); at MTU 9000 it was 4.67 Gbit/s.
pub(super) const LINK_GBITS: f64 = 4.42;
/// The link's goodput at MTU 9000.
pub(super) const LINK_9000_GBITS: f64 = 4.67;
/// The spool writer's batch limits (`spool::writer::BATCH_RECORDS`, `spool::writer::BATCH_BYTES`).
pub(super) const BATCH_RECORDS: usize = 1024;
pub(super) const BATCH_BYTES: usize = 4 << 20;
/// Record sizes of the spool case: TCP stream chunks, then syslog-like messages.
pub(super) const SPOOL_SIZES: [usize; 3] = [256 << 10, 8 << 10, 1 << 10];
/// The record size of the pre-filled channel of the consumers case.
pub(super) const PREFILL_RECORD: usize = 256 << 10;
/// The identity granted the stream channel.
pub(super) const CONSUMER: &str = "bench.weir.test";
pub(super) const SEED: u64 = 7;
/// Longest wait for any one message from the consumer server.
pub(super) const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Where a production spool usually lives (only its filesystem is reported).
pub(super) const PRODUCTION_SPOOL: &str = "/var/lib/weir/spool";

/// The spool settings `weir-recv` uses when the policy sets none.
pub(super) fn daemon_config() -> LogConfig {
    LogConfig {
        segment_bytes: limits::DEFAULT_SEGMENT,
        fsync_interval: limits::DEFAULT_FSYNC,
        fsync_bytes: limits::DEFAULT_FSYNC_BYTES,
        retain_bytes: Some(limits::DEFAULT_RETAIN),
        retain_age: None,
    }
}

pub(super) fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(super) fn gbits(bytes: u64, secs: f64) -> f64 {
    bytes as f64 * 8.0 / secs.max(1e-9) / 1e9
}

pub(super) fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes % (1 << 30) == 0 {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// CPU used between two readings, as a percentage of `secs` of wall time (above 100 % when
/// several threads ran at once).
pub(super) fn cpu(a: Usage, b: Usage, secs: f64) -> f64 {
    (b.cpu_seconds - a.cpu_seconds) / secs.max(1e-9) * 100.0
}

pub(super) fn me() -> Usage {
    usage(std::process::id())
}

/// "ext4 on /dev/vda (mounted at /)" for the filesystem holding `path` (or its nearest existing
/// ancestor), from `/proc/mounts`.
pub(super) fn filesystem(path: &Path) -> (String, String) {
    let existing = path
        .ancestors()
        .find_map(|p| p.canonicalize().ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let best = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let mount = fields.next()?.replace("\\040", " ");
            let fs = fields.next()?;
            Some((device.to_owned(), mount, fs.to_owned()))
        })
        .filter(|(_, mount, _)| existing.starts_with(mount))
        .max_by_key(|(_, mount, _)| mount.len());
    match best {
        Some((device, mount, fs)) => (format!("{fs} on {device} (mounted at {mount})"), device),
        None => ("an unknown filesystem".to_owned(), String::new()),
    }
}

/// `--only spool`: appends `bytes` of records of each size to a fresh [`ChannelLog`] with the
/// daemon's defaults, in batches shaped like the spool writer's, ticking after every batch as the
/// writer thread does, and a final sync.
pub fn spool(bytes: u64) -> anyhow::Result<()> {
    let total = bytes.clamp(16 << 20, 32 << 30);
    let dir = scratch_dir("spool")?;
    let (fs, device) = filesystem(&dir);
    let (_, production_device) = filesystem(Path::new(PRODUCTION_SPOOL));
    let c = daemon_config();
    println!();
    println!(
        "spool     ChannelLog in {} on {fs}{}; segment {}, fsync {:?} or {}, retain {}; \
         batches of up to {BATCH_RECORDS} records / {}; link {LINK_GBITS} Gbit/s at MTU 1500, \
         {LINK_9000_GBITS} at MTU 9000",
        dir.display(),
        if device == production_device {
            format!(", the same disk as {PRODUCTION_SPOOL}")
        } else {
            format!(", NOT the disk of {PRODUCTION_SPOOL}")
        },
        size_label(c.segment_bytes),
        c.fsync_interval,
        size_label(c.fsync_bytes),
        size_label(c.retain_bytes.unwrap_or(0)),
        size_label(BATCH_BYTES as u64),
    );
    println!(
        "{:<9} {:>8} {:>9} {:>8} {:>8} {:>7} {:>10} {:>5} {:>7} {:>9} {:>21}",
        "case",
        "record",
        "bytes",
        "batch",
        "MB/s",
        "Gbit/s",
        "records/s",
        "cpu",
        "fsync≈",
        "max stall",
        "× link (4.42 Gbit/s)"
    );
    let result = raw_write(&dir.join("raw"), total).and_then(|()| {
        SPOOL_SIZES
            .iter()
            .try_for_each(|&size| spool_size(&dir.join(format!("r{size}")), size, total))
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The baseline: the same bytes written to one file in 4 MiB `write`s with an fdatasync every
/// `recv.fsync_bytes` (its default), no spool: what the disk and the page cache allow.
fn raw_write(path: &Path, total: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut data = vec![0u8; BATCH_BYTES];
    Pattern::new(SEED).fill(&mut data);
    let mut file = std::fs::File::create(path).context("creating the baseline file")?;
    let cpu_before = me();
    let started = Instant::now();
    let (mut written, mut unsynced, mut fsync) = (0u64, 0u64, Duration::ZERO);
    while written < total {
        let n = usize::try_from(total - written)
            .unwrap_or(usize::MAX)
            .min(data.len());
        file.write_all(data.get(..n).unwrap_or_default())?;
        written += n as u64;
        unsynced += n as u64;
        if unsynced >= limits::DEFAULT_FSYNC_BYTES || written == total {
            let t = Instant::now();
            file.sync_data()?;
            fsync += t.elapsed();
            unsynced = 0;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = me();
    drop(file);
    let _ = std::fs::remove_file(path);
    let rate = gbits(written, secs);
    println!(
        "{:<9} {:>8} {:>9} {:>8} {:>8.0} {:>7.2} {:>10} {:>4.0}% {:>6.0}% {:>9} {:>20.2}×",
        "raw file",
        "-",
        size_label(written),
        size_label(data.len() as u64),
        written as f64 / secs / 1e6,
        rate,
        "-",
        cpu(cpu_before, cpu_after, secs),
        fsync.as_secs_f64() / secs * 100.0,
        "-",
        rate / LINK_GBITS,
    );
    Ok(())
}

fn spool_size(dir: &Path, size: usize, total: u64) -> anyhow::Result<()> {
    let per_batch = BATCH_RECORDS.min(BATCH_BYTES.div_ceil(size)).max(1);
    let mut data = vec![0u8; per_batch * size];
    Pattern::new(SEED).fill(&mut data);
    let count = (total / size as u64).max(1);
    let (mut log, _) = ChannelLog::open(dir, daemon_config()).context("opening the spool")?;
    let cpu_before = me();
    let started = Instant::now();
    // Time in appends that fsynced (every `fsync_bytes`, and at each roll) and in the others,
    // to estimate what the fsyncs cost.
    let (mut synced, mut synced_calls, mut plain, mut plain_calls) =
        (Duration::ZERO, 0u32, Duration::ZERO, 0u32);
    let mut ticks = Duration::ZERO;
    // The longest the writer thread was away from its queue for one batch (append + tick).
    let mut stall = Duration::ZERO;
    let mut seq = 0u64;
    while seq < count {
        let n = usize::try_from(count - seq).unwrap_or(usize::MAX).min(per_batch);
        let time_ns = unix_ns();
        let records: Vec<NewRecord<'_>> = (seq..)
            .zip(data.chunks_exact(size).take(n))
            .map(|(seq, payload)| NewRecord {
                seq,
                time_ns,
                stream: 1,
                kind: RecordKind::Data,
                payload,
            })
            .collect();
        let durable = log.status().durable;
        let t0 = Instant::now();
        log.append_batch(&records, t0).context("spool append")?;
        if log.status().durable == durable {
            plain += t0.elapsed();
            plain_calls += 1;
        } else {
            synced += t0.elapsed();
            synced_calls += 1;
        }
        let t = Instant::now();
        log.tick(t, unix_ns()).context("spool tick")?;
        ticks += t.elapsed();
        stall = stall.max(t0.elapsed());
        seq += n as u64;
    }
    let t = Instant::now();
    log.sync().context("final spool sync")?;
    let last_sync = t.elapsed();
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = me();
    let status = log.status();
    drop(log);
    if status.durable != count {
        bail!(
            "spool: {} of {count} records durable after the final sync",
            status.durable
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    let bytes = count * size as u64;
    let mean_plain = plain.as_secs_f64() / f64::from(plain_calls.max(1));
    let fsync = (synced.as_secs_f64() - f64::from(synced_calls) * mean_plain).max(0.0)
        + ticks.as_secs_f64()
        + last_sync.as_secs_f64();
    let rate = gbits(bytes, secs);
    println!(
        "{:<9} {:>8} {:>9} {:>8} {:>8.0} {:>7.2} {:>10.0} {:>4.0}% {:>6.0}% {:>9} {:>20.2}×",
        "spool",
        size_label(size as u64),
        size_label(bytes),
        format!("{per_batch} rec"),
        bytes as f64 / secs / 1e6,
        rate,
        count as f64 / secs,
        cpu(cpu_before, cpu_after, secs),
        fsync / secs * 100.0,
        format!("{:.0?}", stall),
        rate / LINK_GBITS,
    );
    Ok(())
}
