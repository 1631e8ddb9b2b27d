//! OT-side sources: what `weir-send` reads from the plant, turned into channel messages.
//!
//! Every source feeds one [`Intake`], a FIFO queue toward the link thread. Stream sources
//! (TCP) and datagram sources (UDP) each have their own byte budget of `send.queue` (so the
//! queue holds at most twice that): a stream source waits for room, so a saturated link
//! back-pressures the plant-side connection, but it can never take the room datagrams need.
//! A datagram source cannot wait: when its budget is spent it drops the datagram and counts it.

pub mod tcp;
pub mod udp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::proto::frame::MessageKind;

/// Messages the intake queue holds at most, whatever their size.
pub const MAX_QUEUED_MESSAGES: usize = 65_536;

/// One message on its way to the link.
#[derive(Debug)]
pub struct Message {
    /// Channel id.
    pub channel: u32,
    /// Stream id; 0 on datagram channels.
    pub stream: u32,
    /// What the message means.
    pub kind: MessageKind,
    /// Its bytes.
    pub payload: Vec<u8>,
    /// Holds the message's bytes against the queue bound until it is framed.
    _permit: OwnedSemaphorePermit,
}

/// Drop and traffic counters of the sources, shared with the link thread.
#[derive(Debug, Default)]
pub struct SourceCounters {
    /// Messages queued toward the link.
    pub messages: AtomicU64,
    /// Bytes queued toward the link.
    pub bytes: AtomicU64,
    /// Datagrams dropped because the queue was full.
    pub drop_queue_full: AtomicU64,
    /// Datagrams dropped for exceeding `max_message`.
    pub drop_oversize: AtomicU64,
    /// TCP connections refused because the channel had its maximum of streams open.
    pub refused_stream_limit: AtomicU64,
    /// TCP connections accepted.
    pub connections: AtomicU64,
    /// TCP connections that ended with an error (sent as aborts).
    pub connections_aborted: AtomicU64,
}

impl SourceCounters {
    /// Messages dropped before the link, all reasons.
    pub fn dropped(&self) -> u64 {
        self.drop_queue_full.load(Ordering::Relaxed) + self.drop_oversize.load(Ordering::Relaxed)
    }
}

/// The queue was closed: the link thread is gone.
#[derive(Debug, thiserror::Error)]
#[error("link thread stopped")]
pub struct IntakeClosed;

/// The sending half of the queue toward the link.
#[derive(Debug, Clone)]
pub struct Intake {
    tx: flume::Sender<Message>,
    stream_budget: Arc<Semaphore>,
    datagram_budget: Arc<Semaphore>,
    budget_bytes: u32,
    /// Shared counters.
    pub counters: Arc<SourceCounters>,
}

impl Intake {
    /// A queue bounded to `queue_bytes` of stream payload plus `queue_bytes` of datagram
    /// payload (and [`MAX_QUEUED_MESSAGES`] messages).
    pub fn new(queue_bytes: usize) -> (Intake, flume::Receiver<Message>) {
        let (tx, rx) = flume::bounded(MAX_QUEUED_MESSAGES);
        let budget_bytes = u32::try_from(queue_bytes.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        let intake = Intake {
            tx,
            stream_budget: Arc::new(Semaphore::new(budget_bytes as usize)),
            datagram_budget: Arc::new(Semaphore::new(budget_bytes as usize)),
            budget_bytes,
            counters: Arc::new(SourceCounters::default()),
        };
        (intake, rx)
    }

    fn permits_for(&self, len: usize) -> u32 {
        u32::try_from(len.max(1))
            .unwrap_or(u32::MAX)
            .min(self.budget_bytes)
    }

    fn count(&self, len: usize) {
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// Queues a stream message, waiting for room.
    pub async fn send(
        &self,
        channel: u32,
        stream: u32,
        kind: MessageKind,
        payload: Vec<u8>,
    ) -> Result<(), IntakeClosed> {
        let permit = self
            .stream_budget
            .clone()
            .acquire_many_owned(self.permits_for(payload.len()))
            .await
            .map_err(|_| IntakeClosed)?;
        self.count(payload.len());
        let msg = Message {
            channel,
            stream,
            kind,
            payload,
            _permit: permit,
        };
        self.tx.send_async(msg).await.map_err(|_| IntakeClosed)
    }

    /// Queues a datagram message if there is room now; returns whether it was queued. A
    /// refusal is counted as `drop_queue_full`.
    pub fn try_send(&self, channel: u32, stream: u32, kind: MessageKind, payload: Vec<u8>) -> bool {
        let Ok(permit) = self
            .datagram_budget
            .clone()
            .try_acquire_many_owned(self.permits_for(payload.len()))
        else {
            self.counters.drop_queue_full.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let len = payload.len();
        match self.tx.try_send(Message {
            channel,
            stream,
            kind,
            payload,
            _permit: permit,
        }) {
            Ok(()) => {
                self.count(len);
                true
            }
            Err(_) => {
                self.counters.drop_queue_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}
