//! The IT side's delivery process, `weir-deliver`: everything that leaves the IT host, read
//! from the spool that `weir-recv` writes.
//!
//! - [`watch`] mirrors the spool's per-channel status files into a
//!   [`SpoolView`](crate::spool::view::SpoolView), the one interface between the two IT
//!   processes; the consumer server ([`crate::serve`]) and the sinks read through it.
//! - [`tcp`] and [`udp`] re-emit a channel: each sink is a spool cursor ([`Follow`]) with a
//!   durable offset ([`offsets`]), so a sink that is down, slow or restarted resumes where it
//!   stopped, and whatever retention removed before it was read is a logged, counted gap.
//!
//! This process never reads the link key and opens the spool read-only.

pub mod offsets;
pub mod tcp;
pub mod udp;
pub mod watch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch as tokio_watch;

use crate::policy::SinkAfter;
use crate::spool::view::ChannelView;
use crate::spool::{Cursor, Item};

/// How long a sink waits before reading again after a spool read failed.
pub const READ_RETRY: Duration = Duration::from_secs(1);

/// Payload bytes a sink reads from the spool at once.
pub const READ_BATCH: usize = 1 << 20;

/// Counters of one sink.
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Messages written out.
    pub messages: AtomicU64,
    /// Bytes written out.
    pub bytes: AtomicU64,
    /// Messages that could not be written (consumer unreachable, write failed).
    pub drop_unreachable: AtomicU64,
    /// Records of streams this sink does not carry (opened before its resume point, or
    /// already reset), skipped.
    pub skipped: AtomicU64,
    /// Spool offsets that could not be read (retention removed them first, or corrupt).
    pub gap_records: AtomicU64,
    /// Streams reset toward the consumer (loss, OT-side abort, gap, failure, stop).
    pub streams_reset: AtomicU64,
    /// Streams closed cleanly.
    pub streams_closed: AtomicU64,
    /// The spool offset the sink has reached.
    pub position: AtomicU64,
}

impl SinkCounters {
    /// Counts one message of `bytes` written out.
    pub fn wrote(&self, bytes: usize) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// A sink's reader of one channel: from a position, up to what `after` allows, waiting for
/// weir-recv to write more.
#[derive(Debug)]
pub struct Follow {
    view: ChannelView,
    /// `None` until the position is known (see [`Follow::from_end`]).
    cursor: Option<Cursor>,
    position: u64,
    known: bool,
    after: SinkAfter,
}

impl Follow {
    /// Reads `view` from offset `from`.
    pub fn new(view: ChannelView, from: u64, after: SinkAfter) -> Follow {
        let cursor = Some(Cursor::new(&view.dir, from));
        Follow {
            view,
            cursor,
            position: from,
            known: true,
            after,
        }
    }

    /// Reads `view` from the end the spool has when weir-recv first publishes its status (a
    /// sink that never ran starts with what arrives next, not with the whole history).
    pub fn from_end(view: ChannelView, after: SinkAfter) -> Follow {
        Follow {
            view,
            cursor: None,
            position: 0,
            known: false,
            after,
        }
    }

    /// The next offset to read; `None` while a sink started with [`Follow::from_end`] waits for
    /// the spool's first status.
    pub fn position(&self) -> Option<u64> {
        self.known.then_some(self.position)
    }

    /// The next items, waiting until there are some; `None` when `stop` says so or weir-recv's
    /// view is gone. A read that fails is logged and tried again after [`READ_RETRY`].
    pub async fn next(&mut self, stop: &mut tokio_watch::Receiver<bool>) -> Option<Vec<Item>> {
        loop {
            if *stop.borrow() {
                return None;
            }
            let status = *self.view.status.borrow_and_update();
            // A published status always counts its segment header bytes.
            if !self.known && status.bytes > 0 {
                self.known = true;
                self.position = status.end;
                self.cursor = Some(Cursor::new(&self.view.dir, status.end));
                tracing::info!(channel = %self.view.name, offset = status.end, "sink starts at the spool's end");
            }
            if self.known && status.bytes > 0 && status.end < self.position {
                // weir-recv crashed with records written but not fsynced, and sink_after =
                // "write" sent some of them: they are no longer in the spool.
                tracing::error!(
                    channel = %self.view.name,
                    sent_up_to = self.position,
                    spool_end = status.end,
                    "the spool lost records this sink had already sent (weir-recv restarted \
                     after a crash; sink_after = \"write\"); continuing from the spool's end"
                );
                self.position = status.end;
                self.cursor = Some(Cursor::new(&self.view.dir, status.end));
            }
            let limit = match self.after {
                SinkAfter::Write => status.end,
                SinkAfter::Fsync => status.durable,
            };
            let readable = self.position < limit && self.cursor.is_some();
            if let Some(mut cursor) = self.cursor.take_if(|_| readable) {
                let read = tokio::task::spawn_blocking(move || {
                    let mut items = Vec::new();
                    let result = cursor.read(limit, READ_BATCH, &mut items);
                    (cursor, items, result)
                })
                .await;
                let Ok((cursor, items, result)) = read else {
                    // The blocking task panicked or was cancelled: the runtime is stopping.
                    return None;
                };
                self.position = cursor.position();
                self.cursor = Some(cursor);
                if let Err(error) = result {
                    tracing::error!(channel = %self.view.name, %error, "spool read failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(READ_RETRY) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
                // Only a read that returned something is progress: an emptied directory must
                // not spin.
                if !items.is_empty() {
                    return Some(items);
                }
            }
            tokio::select! {
                changed = self.view.status.changed() => if changed.is_err() { return None },
                _ = stop.changed() => {}
            }
        }
    }
}
