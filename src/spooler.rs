//! The spool's writer thread: takes what the link thread delivers, appends it to each channel's
//! log ([`crate::spool`]), fsyncs on schedule, applies retention, and publishes each log's
//! [`LogStatus`] to the consumer server.
//!
//! Contract:
//! - The link thread never waits on the disk: [`SpoolFeed::offer`] queues without blocking, in
//!   a queue bounded in bytes (`recv.queue`) and in entries; what does not fit is dropped and
//!   counted per channel (`drops_queue`) with a warning.
//! - A channel whose disk is full refuses records (`drops_full`, an `event="spool_full"` error
//!   once, then a summary when it recovers); the others go on. Records already stored are
//!   never touched by a failed write (the log truncates back to its last whole record).
//! - Consumers see a record only once it is fsynced: the published `durable` offset only moves
//!   after an fsync. [`SpoolView::changed`] ticks whenever any channel's status moved.
//! - The receive time of a record is taken when the writer thread appends it (wall clock).
//! - When the feed is dropped (the link thread stopped), the thread syncs every log and ends.
//! - A spool directory that does not exist is created with mode 0700 (it holds data in clear).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::policy::Spooling;
use crate::spool::{AppendError, ChannelLog, LogConfig, LogStatus, NewRecord, RecordKind, SpoolError};

/// Entries the spool queue holds at most, whatever their size.
pub const MAX_QUEUED_RECORDS: usize = 65_536;
/// Most records appended in one write.
const BATCH_RECORDS: usize = 1024;
/// Most payload bytes appended in one write.
const BATCH_BYTES: usize = 4 << 20;
/// Longest sleep of the writer thread when nothing is due.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// Counters of one channel's spool.
#[derive(Debug, Default)]
pub struct SpoolCounters {
    /// Records stored.
    pub records: AtomicU64,
    /// Payload bytes stored.
    pub bytes: AtomicU64,
    /// Records refused because the disk was full.
    pub drops_full: AtomicU64,
    /// Records dropped because the spool queue was full (the disk could not keep up).
    pub drops_queue: AtomicU64,
    /// Records lost to another write error.
    pub drops_error: AtomicU64,
    /// Whether the channel is refusing records for a full disk now.
    pub full: AtomicBool,
}

/// What the link thread hands over: one record of one channel.
#[derive(Debug)]
struct Input {
    channel: u32,
    seq: u64,
    stream: u32,
    kind: RecordKind,
    payload: Vec<u8>,
}

/// The link thread's side of the spool.
#[derive(Debug)]
pub struct SpoolFeed {
    tx: flume::Sender<Input>,
    queued: Arc<AtomicUsize>,
    limit: usize,
    counters: HashMap<u32, Arc<SpoolCounters>>,
}

impl SpoolFeed {
    /// Offers a record of `channel` without waiting; drops and counts it when the queue is full.
    pub fn offer(&self, channel: u32, seq: u64, stream: u32, kind: RecordKind, payload: Vec<u8>) {
        let Some(counters) = self.counters.get(&channel) else {
            return;
        };
        let len = payload.len();
        let queued = self.queued.load(Ordering::Relaxed);
        if queued + len > self.limit || self.tx.is_full() {
            counters.drops_queue.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(channel, seq, queued, "spool queue full: record dropped");
            return;
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        let input = Input {
            channel,
            seq,
            stream,
            kind,
            payload,
        };
        if self.tx.try_send(input).is_err() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            counters.drops_queue.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(channel, seq, "spool writer gone: record dropped");
        }
    }
}

/// One channel as the consumer server sees it.
#[derive(Debug, Clone)]
pub struct ChannelView {
    /// The channel's name.
    pub name: String,
    /// Its log's directory.
    pub dir: PathBuf,
    /// Its log's status, updated after every write, fsync and retention pass.
    pub status: watch::Receiver<LogStatus>,
    /// Its counters.
    pub counters: Arc<SpoolCounters>,
}

/// The spool as the consumer server and the metrics see it.
#[derive(Debug, Clone)]
pub struct SpoolView {
    /// Every channel, by name.
    pub channels: BTreeMap<String, ChannelView>,
    /// Ticks whenever any channel's status changed.
    pub changed: watch::Receiver<u64>,
}

struct Channel {
    name: String,
    log: ChannelLog,
    status: watch::Sender<LogStatus>,
    counters: Arc<SpoolCounters>,
    refused_since_full: u64,
}

/// Opens (and recovers) every channel's log under `dir` and starts the writer thread.
/// `channels` are (id, name); each log lives in `dir/<name>`.
pub fn start(
    dir: &Path,
    spooling: &Spooling,
    channels: &[(u32, String)],
    queue_limit: usize,
) -> Result<(SpoolFeed, SpoolView, JoinHandle<()>), SpoolError> {
    let config = || LogConfig {
        segment_bytes: spooling.segment,
        fsync_interval: spooling.fsync,
        fsync_bytes: spooling.fsync_bytes,
        retain_bytes: spooling.retain,
        retain_age: spooling.retain_age,
    };
    if !dir.exists() {
        // The spool holds the data in clear: only the daemon's user may read it.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| SpoolError::Io {
                path: dir.to_path_buf(),
                op: "create directory",
                source,
            })?;
    }
    let mut logs = HashMap::new();
    let mut views = BTreeMap::new();
    let mut feed_counters = HashMap::new();
    for (id, name) in channels {
        let channel_dir = dir.join(name);
        let (log, recovery) = ChannelLog::open(&channel_dir, config())?;
        let status = log.status();
        tracing::info!(
            channel = %name,
            dir = %channel_dir.display(),
            segments = recovery.segments,
            start = status.start,
            end = status.end,
            truncated_bytes = recovery.truncated_bytes,
            "spool opened"
        );
        if recovery.truncated_bytes > 0 {
            tracing::warn!(
                channel = %name,
                truncated_bytes = recovery.truncated_bytes,
                "spool: a torn tail (records never fsynced, from a crash) was cut off"
            );
        }
        let (tx, rx) = watch::channel(status);
        let counters = Arc::new(SpoolCounters::default());
        feed_counters.insert(*id, counters.clone());
        views.insert(
            name.clone(),
            ChannelView {
                name: name.clone(),
                dir: channel_dir,
                status: rx,
                counters: counters.clone(),
            },
        );
        logs.insert(
            *id,
            Channel {
                name: name.clone(),
                log,
                status: tx,
                counters,
                refused_since_full: 0,
            },
        );
    }
    let (tx, rx) = flume::bounded(MAX_QUEUED_RECORDS);
    let (changed_tx, changed_rx) = watch::channel(0u64);
    let queued = Arc::new(AtomicUsize::new(0));
    let writer_queued = queued.clone();
    let thread = std::thread::Builder::new()
        .name("spool".into())
        .spawn(move || writer(logs, rx, writer_queued, changed_tx))
        .map_err(|source| SpoolError::Io {
            path: dir.to_path_buf(),
            op: "start the writer thread",
            source,
        })?;
    let feed = SpoolFeed {
        tx,
        queued,
        limit: queue_limit,
        counters: feed_counters,
    };
    let view = SpoolView {
        channels: views,
        changed: changed_rx,
    };
    Ok((feed, view, thread))
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn writer(
    mut logs: HashMap<u32, Channel>,
    rx: flume::Receiver<Input>,
    queued: Arc<AtomicUsize>,
    changed: watch::Sender<u64>,
) {
    let mut batch: Vec<Input> = Vec::with_capacity(BATCH_RECORDS);
    let mut open = true;
    while open {
        let now = Instant::now();
        let deadline = logs
            .values()
            .filter_map(|c| c.log.poll_timeout())
            .min()
            .unwrap_or(now + IDLE_WAKE)
            .min(now + IDLE_WAKE);
        match rx.recv_deadline(deadline) {
            Ok(first) => {
                let mut bytes = first.payload.len();
                batch.push(first);
                while batch.len() < BATCH_RECORDS && bytes < BATCH_BYTES {
                    match rx.try_recv() {
                        Ok(input) => {
                            bytes += input.payload.len();
                            batch.push(input);
                        }
                        Err(_) => break,
                    }
                }
                append(&mut logs, &mut batch);
                queued.fetch_sub(bytes, Ordering::Relaxed);
            }
            Err(flume::RecvTimeoutError::Timeout) => {}
            Err(flume::RecvTimeoutError::Disconnected) => open = false,
        }
        let (now, now_unix) = (Instant::now(), unix_ns());
        let mut any_changed = false;
        for channel in logs.values_mut() {
            if !open {
                if let Err(error) = channel.log.sync() {
                    tracing::error!(channel = %channel.name, %error, "spool: final fsync failed");
                }
            }
            if let Err(error) = channel.log.tick(now, now_unix) {
                tracing::error!(channel = %channel.name, %error, "spool: fsync or retention failed");
            }
            any_changed |= publish(channel);
        }
        if any_changed {
            changed.send_modify(|generation| *generation = generation.wrapping_add(1));
        }
    }
    tracing::info!("spool writer stopped; every log synced");
}

/// Publishes a channel's status if it moved; true when it did.
fn publish(channel: &mut Channel) -> bool {
    let status = channel.log.status();
    let was_full = channel.counters.full.swap(status.full, Ordering::Relaxed);
    if was_full && !status.full {
        tracing::warn!(
            event = "spool_resumed",
            channel = %channel.name,
            refused = channel.refused_since_full,
            "spool: space is available again; the channel accepts records"
        );
        channel.refused_since_full = 0;
    }
    channel.status.send_if_modified(|old| {
        let moved = *old != status;
        *old = status;
        moved
    })
}

fn append(logs: &mut HashMap<u32, Channel>, batch: &mut Vec<Input>) {
    let time_ns = unix_ns();
    let now = Instant::now();
    // Records of one channel keep their order; channels are written one after the other.
    batch.sort_by_key(|input| input.channel);
    let mut rest = batch.as_slice();
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|input| input.channel == first.channel)
            .count();
        let (group, tail) = rest.split_at(same);
        rest = tail;
        let Some(channel) = logs.get_mut(&first.channel) else {
            continue;
        };
        let records: Vec<NewRecord<'_>> = group
            .iter()
            .map(|input| NewRecord {
                seq: input.seq,
                time_ns,
                stream: input.stream,
                kind: input.kind,
                payload: &input.payload,
            })
            .collect();
        let count = records.len() as u64;
        match channel.log.append_batch(&records, now) {
            Ok(_) => {
                channel.counters.records.fetch_add(count, Ordering::Relaxed);
                let bytes: usize = group.iter().map(|input| input.payload.len()).sum();
                channel.counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            Err(AppendError::Full(error)) => {
                channel.counters.drops_full.fetch_add(count, Ordering::Relaxed);
                if channel.refused_since_full == 0 {
                    tracing::error!(
                        event = "spool_full",
                        channel = %channel.name,
                        %error,
                        "spool: the disk is full; this channel's records are dropped and counted \
                         until space is freed"
                    );
                }
                channel.refused_since_full += count;
            }
            Err(error) => {
                channel.counters.drops_error.fetch_add(count, Ordering::Relaxed);
                tracing::error!(channel = %channel.name, %error, records = count, "spool: write failed; records dropped");
            }
        }
    }
    batch.clear();
}
