//! The spool as its readers see it, in the writing process or in another: each channel's
//! [`LogStatus`] behind a watch, its writer's counters, and one tick for any change.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use tokio::sync::watch;

use super::LogStatus;

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
    /// Data records not stored because their stream had been cut by an earlier drop (its
    /// `Abort` is in the spool).
    pub drops_cut: AtomicU64,
    /// Whether the channel is refusing records for a full disk now.
    pub full: AtomicBool,
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
