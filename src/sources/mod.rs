//! OT-side sources: what `weir-send` reads from the plant, turned into channel messages.
//!
//! Every source applies its channel's [`Rules`] — allowed peers, content filter, rate limit —
//! and feeds an [`Outlet`] of the shared [`Intake`], the bounded queue toward the link thread.
//! The intake has one FIFO per priority level; the link thread always serves the highest
//! non-empty one first, so a bulk channel filling the link cannot hold telemetry behind it.
//! Stream sources (TCP) and datagram sources (UDP) each have their own byte budget of
//! `send.queue`: a stream source waits for room, so a saturated link back-pressures the plant
//! connection, and it can never take the room datagrams need; a datagram source cannot wait,
//! so it drops and counts.
//!
//! The rules are swapped whole on a policy reload ([`SharedRules`]); a source reads them once
//! per message.

pub mod limit;
pub mod tcp;
pub mod udp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::policy::Channel;
use crate::proto::frame::MessageKind;
use limit::ChannelLimiter;

/// Messages each priority queue holds at most, whatever their size.
pub const MAX_QUEUED_MESSAGES: usize = 65_536;
/// Priority levels: index 0 is served first.
pub const PRIORITY_LEVELS: usize = 3;

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
    /// Its priority queue (0 first).
    pub priority: usize,
    /// Holds the message's bytes against the queue bound until it is framed.
    _permit: OwnedSemaphorePermit,
}

/// Why a source refused a message or a connection; each has a counter per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The peer is not in `allow_from`.
    NotAllowed,
    /// Larger than `max_message`.
    Oversize,
    /// Not valid UTF-8 where `filter.utf8` asks for it.
    FilterUtf8,
    /// Does not match `filter.pattern`.
    FilterPattern,
    /// Not well-formed JSON where `filter.json` asks for it.
    FilterJson,
    /// Over the channel's rate limit.
    Rate,
    /// The queue toward the link was full.
    QueueFull,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 7] = [
        DropReason::NotAllowed,
        DropReason::Oversize,
        DropReason::FilterUtf8,
        DropReason::FilterPattern,
        DropReason::FilterJson,
        DropReason::Rate,
        DropReason::QueueFull,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NotAllowed => "not_allowed",
            DropReason::Oversize => "oversize",
            DropReason::FilterUtf8 => "filter_utf8",
            DropReason::FilterPattern => "filter_pattern",
            DropReason::FilterJson => "filter_json",
            DropReason::Rate => "rate",
            DropReason::QueueFull => "queue_full",
        }
    }

    fn index(self) -> usize {
        DropReason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Traffic and drop counters of one channel's source.
#[derive(Debug)]
pub struct ChannelCounters {
    /// The channel's name.
    pub name: String,
    /// Messages queued toward the link.
    pub messages: AtomicU64,
    /// Bytes queued toward the link.
    pub bytes: AtomicU64,
    /// TCP connections accepted.
    pub connections: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
}

impl ChannelCounters {
    /// Zeroed counters for channel `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            drops: Default::default(),
        }
    }

    /// Counts one drop.
    pub fn count_drop(&self, reason: DropReason) {
        if let Some(c) = self.drops.get(reason.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drops counted for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops
            .get(reason.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Drops counted for every reason.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// A channel's rules as a source applies them: the validated policy entry and its limiter.
#[derive(Debug)]
pub struct Rules {
    /// The channel, as the policy in force declares it.
    pub channel: Channel,
    /// Its rate limiter, if it has a rate.
    pub limiter: Option<ChannelLimiter>,
    /// Priority queue index (0 first).
    pub priority: usize,
}

impl Rules {
    /// Rules for `channel`, with a fresh limiter.
    pub fn new(channel: Channel) -> Self {
        let limiter = channel.rate.as_ref().map(|r| {
            ChannelLimiter::new(
                r.bytes_per_sec.map(|b| (b, r.burst_bytes)),
                r.messages_per_sec.map(|m| (m, r.burst_messages)),
            )
        });
        let priority = channel.priority.index().min(PRIORITY_LEVELS - 1);
        Rules {
            channel,
            limiter,
            priority,
        }
    }
}

/// Rules that a reload can replace while the source runs.
pub type SharedRules = Arc<RwLock<Arc<Rules>>>;

/// The current rules (a clone of the `Arc`, so a reload never waits on a source).
pub fn current(rules: &SharedRules) -> Arc<Rules> {
    match rules.read() {
        Ok(r) => r.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// What a source task works with.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The channel id on the wire.
    pub id: u32,
    /// The channel's rules, replaced on reload.
    pub rules: SharedRules,
    /// The channel's counters.
    pub counters: Arc<ChannelCounters>,
    /// The queues toward the link.
    pub intake: Intake,
    /// Turns true when the daemon stops.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// Logs, every `every`, the drops of each channel that moved since the last report: one
/// warning line per channel, so a flood of refused traffic is visible but cannot flood the log.
pub async fn report_drops(channels: Vec<Arc<ChannelCounters>>, every: std::time::Duration) {
    let mut last: Vec<[u64; DropReason::ALL.len()]> = vec![[0; DropReason::ALL.len()]; channels.len()];
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        for (ch, seen) in channels.iter().zip(last.iter_mut()) {
            let mut moved = Vec::new();
            for (reason, before) in DropReason::ALL.iter().zip(seen.iter_mut()) {
                let now = ch.drops(*reason);
                if now > *before {
                    moved.push(format!("{}={}", reason.name(), now - *before));
                }
                *before = now;
            }
            if !moved.is_empty() {
                tracing::warn!(channel = %ch.name, drops = %moved.join(" "), "messages refused by policy or dropped at the source");
            }
        }
    }
}

/// The queue was closed: the link thread is gone.
#[derive(Debug, thiserror::Error)]
#[error("link thread stopped")]
pub struct IntakeClosed;

/// The sending half of the queues toward the link.
#[derive(Debug, Clone)]
pub struct Intake {
    tx: Vec<flume::Sender<Message>>,
    stream_budget: Arc<Semaphore>,
    datagram_budget: Arc<Semaphore>,
    budget_bytes: u32,
}

/// The link thread's half: one queue per priority.
#[derive(Debug)]
pub struct IntakeReceiver {
    rx: Vec<flume::Receiver<Message>>,
}

/// Outcome of [`IntakeReceiver::try_recv`].
#[derive(Debug)]
pub enum Received {
    /// The next message, highest priority first.
    Message(Message),
    /// Nothing queued.
    Empty,
    /// Every source is gone and every queue is empty.
    Closed,
}

impl IntakeReceiver {
    /// The next message of the highest non-empty priority.
    pub fn try_recv(&self) -> Received {
        let mut open = false;
        for rx in &self.rx {
            match rx.try_recv() {
                Ok(m) => return Received::Message(m),
                Err(flume::TryRecvError::Empty) => open = true,
                Err(flume::TryRecvError::Disconnected) => {}
            }
        }
        if open {
            Received::Empty
        } else {
            Received::Closed
        }
    }

    /// Waits until a message is queued (returning it, highest priority first), `deadline`
    /// passes ([`Received::Empty`]) or every source is gone.
    pub fn recv_deadline(&self, deadline: Instant) -> Received {
        match self.try_recv() {
            Received::Empty => {}
            other => return other,
        }
        let mut selector = flume::Selector::new();
        let mut armed = false;
        for rx in self.rx.iter().filter(|rx| !rx.is_disconnected()) {
            selector = selector.recv(rx, |r| r.ok());
            armed = true;
        }
        if !armed {
            return self.try_recv();
        }
        match selector.wait_deadline(deadline) {
            Ok(Some(message)) => Received::Message(message),
            // A queue's last sender went away: look again (that queue is skipped next time).
            Ok(None) => self.try_recv(),
            Err(_) => Received::Empty,
        }
    }
}

impl Intake {
    /// Queues bounded to `queue_bytes` of stream payload plus `queue_bytes` of datagram
    /// payload (and [`MAX_QUEUED_MESSAGES`] messages per priority).
    pub fn new(queue_bytes: usize) -> (Intake, IntakeReceiver) {
        let (tx, rx) = (0..PRIORITY_LEVELS)
            .map(|_| flume::bounded(MAX_QUEUED_MESSAGES))
            .unzip();
        let budget_bytes = u32::try_from(queue_bytes.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        let intake = Intake {
            tx,
            stream_budget: Arc::new(Semaphore::new(budget_bytes as usize)),
            datagram_budget: Arc::new(Semaphore::new(budget_bytes as usize)),
            budget_bytes,
        };
        (intake, IntakeReceiver { rx })
    }

    fn permits_for(&self, len: usize) -> u32 {
        u32::try_from(len.max(1))
            .unwrap_or(u32::MAX)
            .min(self.budget_bytes)
    }

    fn queue(&self, priority: usize) -> Option<&flume::Sender<Message>> {
        self.tx.get(priority).or(self.tx.last())
    }

    /// Queues a stream message at `priority`, waiting for room.
    pub async fn send(
        &self,
        priority: usize,
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
        let msg = Message {
            channel,
            stream,
            kind,
            payload,
            priority,
            _permit: permit,
        };
        self.queue(priority)
            .ok_or(IntakeClosed)?
            .send_async(msg)
            .await
            .map_err(|_| IntakeClosed)
    }

    /// Queues a datagram message at `priority` if there is room now; returns whether it was
    /// queued.
    pub fn try_send(&self, priority: usize, channel: u32, payload: Vec<u8>) -> bool {
        let Ok(permit) = self
            .datagram_budget
            .clone()
            .try_acquire_many_owned(self.permits_for(payload.len()))
        else {
            return false;
        };
        let msg = Message {
            channel,
            stream: 0,
            kind: MessageKind::Data,
            payload,
            priority,
            _permit: permit,
        };
        self.queue(priority).is_some_and(|q| q.try_send(msg).is_ok())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn higher_priority_is_served_first_and_closing_is_seen() {
        let (intake, rx) = Intake::new(1 << 20);
        intake
            .send(2, 1, 1, MessageKind::Data, vec![2; 10])
            .await
            .unwrap();
        assert!(intake.try_send(0, 7, vec![0; 10]));
        intake
            .send(1, 3, 1, MessageKind::Data, vec![1; 10])
            .await
            .unwrap();
        let order: Vec<u32> = (0..3)
            .map(|_| match rx.try_recv() {
                Received::Message(m) => m.channel,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(order, [7, 3, 1]);
        assert!(matches!(rx.try_recv(), Received::Empty));
        let deadline = Instant::now() + std::time::Duration::from_millis(20);
        assert!(matches!(rx.recv_deadline(deadline), Received::Empty));
        assert!(Instant::now() >= deadline);
        drop(intake);
        assert!(matches!(rx.try_recv(), Received::Closed));
    }

    #[test]
    fn datagram_budget_is_separate_and_bounded() {
        let (intake, _rx) = Intake::new(100);
        assert!(intake.try_send(1, 1, vec![0; 60]));
        assert!(!intake.try_send(1, 1, vec![0; 60]), "over the datagram budget");
        // Streams have their own budget.
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(intake.send(1, 2, 1, MessageKind::Data, vec![0; 100]))
            .unwrap();
    }
}
