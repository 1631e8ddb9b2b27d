//! The spool's writer thread: takes what the link thread delivers, appends it to each channel's
//! log ([`crate::spool`]), fsyncs on schedule, applies retention, and publishes each log's
//! [`LogStatus`]: in process (weir-recv's metrics) and in each channel's status file, which
//! weir-deliver reads.
//!
//! Contract:
//! - The link thread never waits on the disk: [`SpoolFeed::offer`] queues without blocking, in
//!   a queue bounded in bytes (`recv.spool_queue`) and in entries; what does not fit is dropped and
//!   counted per channel (`drops_queue`), with one warning per run of drops (see `feed.rs`).
//! - A channel whose disk is full refuses records (`drops_full`, an `event="spool_full"` error
//!   once, then a summary when it recovers); the others go on. Records already stored are
//!   never touched by a failed write (the log truncates back to its last whole record). Other
//!   write errors count as `drops_error` (`event="spool_write_failed"`, once per run).
//! - Every message dropped on the way (queue, disk, write error) is stored as a `Lost` record
//!   for its sequence range as soon as the channel stores again, ahead of what follows, and
//!   every stream open in the spool then gets an `Abort` record: a stream never continues, or
//!   ends cleanly, across a hole (`cut.rs`).
//! - Consumers see a record only once it is fsynced: the published `durable` offset only moves
//!   after an fsync. [`SpoolView::changed`] ticks whenever any channel's status moved.
//! - The receive time of a record is taken when the writer thread appends it (wall clock).
//! - When the feed is dropped (the link thread stopped), the thread syncs every log and ends.
//! - A spool directory that does not exist is created with mode 0750 (it holds data in clear:
//!   only this daemon's user writes it, only its group — the delivery process — reads it).
//! - Each channel's status and counters are also written to its status file
//!   ([`crate::spool::published`]) whenever they move: the delivery process learns from it how
//!   far it may read.

mod cut;
mod feed;
mod thread;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::policy::Spooling;
use crate::spool::published::{self, StatusWriter};
use crate::spool::{ChannelLog, LogConfig, LogStatus, SpoolError};
use feed::LossSpan;
pub use feed::SpoolFeed;

/// Entries the spool queue holds at most, whatever their size.
pub const MAX_QUEUED_RECORDS: usize = 65_536;
/// Most records appended in one write.
pub(crate) const BATCH_RECORDS: usize = 1024;
/// Most payload bytes appended in one write.
pub(crate) const BATCH_BYTES: usize = 4 << 20;
/// Longest sleep of the writer thread when nothing is due.
pub(crate) const IDLE_WAKE: Duration = Duration::from_secs(1);

pub use crate::spool::view::{ChannelView, SpoolCounters, SpoolView};

struct Channel {
    name: String,
    log: ChannelLog,
    status: watch::Sender<LogStatus>,
    counters: Arc<SpoolCounters>,
    refused_since_full: u64,
    /// Messages the writer could not store (disk full, write error), recorded as lost with the
    /// next record it stores.
    lost: Option<LossSpan>,
    /// Writes are failing (not for a full disk): logged once, until one succeeds.
    failing: bool,
    /// Streams open in this channel's log (see `cut.rs`).
    open_streams: BTreeSet<u32>,
    /// The status file the delivery process reads.
    published: StatusWriter,
    /// Writing the status file failed: logged once, until it succeeds.
    publish_failed: bool,
}

/// Opens (and recovers) every channel's log under `dir` and starts the writer thread.
/// `channels` are (id, name); each log lives in `dir/<name>`.
pub fn start(
    dir: &Path,
    spooling: &Spooling,
    channels: &[(u32, String)],
) -> Result<(SpoolFeed, SpoolView, JoinHandle<()>), SpoolError> {
    let config = || LogConfig {
        segment_bytes: spooling.segment,
        fsync_interval: spooling.fsync,
        fsync_bytes: spooling.fsync_bytes,
        retain_bytes: spooling.retain,
        retain_age: spooling.retain_age,
    };
    if !dir.exists() {
        // The spool holds the data in clear: only the daemon's user writes it, and only its
        // group (the delivery process) reads it.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
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
        // Published at once: weir-deliver learns where the spool ends before anything new.
        let status_error = |op| {
            let path = channel_dir.join(published::STATUS_FILE);
            move |source| SpoolError::Io { path, op, source }
        };
        let mut published = StatusWriter::create(&channel_dir).map_err(status_error("create"))?;
        let first = published::Published {
            status,
            counters: published::PublishedCounters::default(),
        };
        published.write(&first).map_err(status_error("write"))?;
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
                lost: None,
                open_streams: BTreeSet::new(),
                failing: false,
                published,
                publish_failed: false,
            },
        );
    }
    let (tx, rx) = flume::bounded(MAX_QUEUED_RECORDS);
    let (changed_tx, changed_rx) = watch::channel(0u64);
    let queued = Arc::new(AtomicUsize::new(0));
    let writer_queued = queued.clone();
    let thread = std::thread::Builder::new()
        .name("spool".into())
        .spawn(move || thread::run(logs, rx, writer_queued, changed_tx))
        .map_err(|source| SpoolError::Io {
            path: dir.to_path_buf(),
            op: "start the writer thread",
            source,
        })?;
    let feed = SpoolFeed::new(tx, queued, spooling.queue, feed_counters);
    let view = SpoolView {
        channels: views,
        changed: changed_rx,
    };
    Ok((feed, view, thread))
}
