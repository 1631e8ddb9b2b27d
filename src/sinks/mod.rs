//! IT-side sinks: where `weir-recv` re-emits what crossed the link.
//!
//! Each (channel, sink) pair runs as its own task behind a [`SinkHandle`], a queue bounded in
//! bytes (`recv.queue` in the policy). The link thread never waits on a sink: a datagram that
//! does not fit is dropped and counted, and a stream whose data does not fit is reset (never
//! continued with a hole in it). One slow sink therefore cannot stall the link or the others.

pub mod tcp;
pub mod udp;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::proto::frame::MessageKind;

/// Events a sink queue holds at most, whatever their size.
pub const MAX_QUEUED_EVENTS: usize = 65_536;

/// What a sink task is told.
#[derive(Debug)]
pub enum SinkEvent {
    /// A message of the channel.
    Message {
        /// Stream id (0 for datagrams).
        stream: u32,
        /// What it means.
        kind: MessageKind,
        /// Its bytes.
        payload: Vec<u8>,
    },
    /// The stream lost data: reset its connection.
    Broken {
        /// Stream id.
        stream: u32,
    },
}

/// Counters of one sink.
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Messages written out.
    pub messages: AtomicU64,
    /// Bytes written out.
    pub bytes: AtomicU64,
    /// Messages dropped because the sink's queue was full.
    pub drop_queue_full: AtomicU64,
    /// Messages dropped because the sink could not be reached or written.
    pub drop_unreachable: AtomicU64,
    /// Streams reset toward the consumer (loss, OT-side abort, overflow, failure).
    pub streams_reset: AtomicU64,
    /// Streams closed cleanly.
    pub streams_closed: AtomicU64,
}

/// Byte accounting shared between a handle and its task.
#[derive(Debug, Default)]
pub struct Queued(AtomicUsize);

impl Queued {
    /// Marks `bytes` as written out (or dropped) by the task.
    pub fn release(&self, bytes: usize) {
        self.0.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The link thread's side of one sink.
#[derive(Debug)]
pub struct SinkHandle {
    name: String,
    streams: bool,
    limit: usize,
    tx: mpsc::Sender<SinkEvent>,
    queued: Arc<Queued>,
    overflowed: BTreeSet<u32>,
    /// This sink's counters.
    pub counters: Arc<SinkCounters>,
}

impl SinkHandle {
    /// A handle and the receiving end for its task.
    pub fn new(
        name: String,
        streams: bool,
        limit: usize,
    ) -> (SinkHandle, mpsc::Receiver<SinkEvent>, Arc<Queued>) {
        let (tx, rx) = mpsc::channel(MAX_QUEUED_EVENTS);
        let queued = Arc::new(Queued::default());
        let handle = SinkHandle {
            name,
            streams,
            limit,
            tx,
            queued: queued.clone(),
            overflowed: BTreeSet::new(),
            counters: Arc::new(SinkCounters::default()),
        };
        (handle, rx, queued)
    }

    /// Offers an event without waiting.
    pub fn offer(&mut self, event: SinkEvent) {
        let (stream, len) = match &event {
            SinkEvent::Message {
                stream,
                kind,
                payload,
            } => {
                if self.overflowed.contains(stream) {
                    // The stream was reset for overflow; the rest of it goes nowhere.
                    if matches!(kind, MessageKind::End | MessageKind::Abort) {
                        self.overflowed.remove(stream);
                    }
                    self.counters.drop_queue_full.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                (*stream, payload.len())
            }
            SinkEvent::Broken { stream } => (*stream, 0),
        };
        let queued = self.queued.0.load(Ordering::Relaxed);
        if queued + len > self.limit || self.tx.capacity() == 0 {
            self.counters.drop_queue_full.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(sink = %self.name, stream, queued, "sink queue full: message dropped");
            if self.streams {
                if self.overflowed.len() >= MAX_QUEUED_EVENTS {
                    self.overflowed.clear();
                }
                self.overflowed.insert(stream);
                // Resets are exempt from the byte bound so the consumer always learns of the cut.
                let _ = self.tx.try_send(SinkEvent::Broken { stream });
            }
            return;
        }
        self.queued.0.fetch_add(len, Ordering::Relaxed);
        if self.tx.try_send(event).is_err() {
            self.queued.release(len);
            self.counters.drop_queue_full.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(sink = %self.name, stream, "sink task gone: message dropped");
        }
    }
}
