//! The link thread's side of the spool: a queue bounded in bytes and entries that never waits,
//! and the bookkeeping that turns every record it had to drop into a `Lost` record.
//!
//! Contract:
//! - [`SpoolFeed::offer`] never blocks. A record that does not fit is dropped and counted
//!   (`drops_queue`); the messages dropped in a row on one channel are one contiguous range of
//!   its sequence numbers, and as soon as the queue has room again a `Lost` record for that
//!   range is queued ahead of the next record (it is exempt from the byte bound), so consumers
//!   learn of the loss in order.
//! - One warning when a channel starts dropping, one when its loss record is queued.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::SpoolCounters;
use crate::spool::RecordKind;

/// What the link thread hands over: one record of one channel.
#[derive(Debug)]
pub(super) struct Input {
    pub channel: u32,
    pub seq: u64,
    pub stream: u32,
    pub kind: RecordKind,
    pub payload: Vec<u8>,
    /// A `Lost` record for messages the IT host dropped (not the link): it also cuts every
    /// stream open in the spool (see `cut.rs`).
    pub cuts_streams: bool,
}

impl Input {
    /// The link sequence numbers this record stands for, first and last.
    pub fn seq_range(&self) -> Option<(u64, u64)> {
        match self.kind {
            RecordKind::Lost => {
                let count = self
                    .payload
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_be_bytes);
                (count > 0).then(|| (self.seq, self.seq.saturating_add(count - 1)))
            }
            // A stream the receiver cut carries no sequence number of its own.
            RecordKind::Abort if self.seq == 0 => None,
            _ => Some((self.seq, self.seq)),
        }
    }

    /// A `Lost` record for `span`.
    pub fn lost(channel: u32, span: LossSpan) -> Input {
        Input {
            channel,
            seq: span.first,
            stream: 0,
            kind: RecordKind::Lost,
            payload: (span.last - span.first + 1).to_be_bytes().to_vec(),
            cuts_streams: true,
        }
    }
}

/// A range of sequence numbers that never reached the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LossSpan {
    pub first: u64,
    pub last: u64,
}

/// Widens `span` to cover what `input` stands for.
pub(super) fn widen(span: &mut Option<LossSpan>, input: &Input) {
    if let Some((first, last)) = input.seq_range() {
        *span = Some(match *span {
            None => LossSpan { first, last },
            Some(s) => LossSpan {
                first: s.first.min(first),
                last: s.last.max(last),
            },
        });
    }
}

#[derive(Debug)]
struct ChannelFeed {
    counters: Arc<SpoolCounters>,
    lost: Option<LossSpan>,
    dropping: bool,
}

/// The link thread's side of the spool.
#[derive(Debug)]
pub struct SpoolFeed {
    tx: flume::Sender<Input>,
    queued: Arc<AtomicUsize>,
    limit: usize,
    channels: HashMap<u32, ChannelFeed>,
}

impl SpoolFeed {
    pub(super) fn new(
        tx: flume::Sender<Input>,
        queued: Arc<AtomicUsize>,
        limit: usize,
        counters: HashMap<u32, Arc<SpoolCounters>>,
    ) -> SpoolFeed {
        let channels = counters
            .into_iter()
            .map(|(id, counters)| {
                let feed = ChannelFeed {
                    counters,
                    lost: None,
                    dropping: false,
                };
                (id, feed)
            })
            .collect();
        SpoolFeed {
            tx,
            queued,
            limit,
            channels,
        }
    }

    /// Offers a record of `channel` without waiting; drops and counts it when the queue is full.
    pub fn offer(&mut self, channel: u32, seq: u64, stream: u32, kind: RecordKind, payload: Vec<u8>) {
        // Every declared channel has a feed; the receiver drops (and counts) frames of any
        // other id before they become events, so nothing reaches this `return`.
        let Some(feed) = self.channels.get_mut(&channel) else {
            return;
        };
        let input = Input {
            channel,
            seq,
            stream,
            kind,
            payload,
            cuts_streams: false,
        };
        if let Some(span) = feed.lost {
            if self.tx.try_send(Input::lost(channel, span)).is_err() {
                return drop_input(feed, input);
            }
            feed.lost = None;
            tracing::warn!(
                channel,
                first_seq = span.first,
                count = span.last - span.first + 1,
                "spool queue has room again: a loss record for the dropped messages was stored"
            );
        }
        let len = input.payload.len();
        if self.queued.load(Ordering::Relaxed) + len > self.limit || self.tx.is_full() {
            return drop_input(feed, input);
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        feed.dropping = false;
        if let Err(flume::TrySendError::Full(input) | flume::TrySendError::Disconnected(input)) =
            self.tx.try_send(input)
        {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            drop_input(feed, input);
        }
    }
}

fn drop_input(feed: &mut ChannelFeed, input: Input) {
    feed.counters.drops_queue.fetch_add(1, Ordering::Relaxed);
    widen(&mut feed.lost, &input);
    if !feed.dropping {
        feed.dropping = true;
        tracing::warn!(
            channel = input.channel,
            seq = input.seq,
            "spool queue full (the disk is not keeping up): records are dropped, counted and \
             recorded as lost"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn feed(limit: usize, capacity: usize) -> (SpoolFeed, flume::Receiver<Input>, Arc<SpoolCounters>) {
        let (tx, rx) = flume::bounded(capacity);
        let counters = Arc::new(SpoolCounters::default());
        let feed = SpoolFeed::new(tx, Arc::default(), limit, HashMap::from([(7, counters.clone())]));
        (feed, rx, counters)
    }

    #[test]
    fn dropped_records_become_one_lost_record_ahead_of_the_next() {
        let (mut feed, rx, counters) = feed(1 << 20, 2);
        for seq in 1..=5 {
            feed.offer(7, seq, 0, RecordKind::Data, vec![0; 10]);
        }
        // Two fit; 3, 4 and 5 were dropped.
        assert_eq!(counters.drops_queue.load(Ordering::Relaxed), 3);
        let queued: Vec<u64> = rx.drain().map(|i| i.seq).collect();
        assert_eq!(queued, [1, 2]);
        feed.offer(7, 6, 0, RecordKind::Data, vec![0; 10]);
        let next: Vec<Input> = rx.drain().collect();
        assert_eq!(next.len(), 2);
        let lost = next.first().unwrap();
        assert_eq!(
            (lost.kind, lost.seq, lost.seq_range()),
            (RecordKind::Lost, 3, Some((3, 5)))
        );
        assert_eq!(next.get(1).unwrap().seq, 6);
    }

    #[test]
    fn a_link_loss_dropped_too_widens_the_range() {
        let (mut feed, rx, counters) = feed(1 << 20, 2);
        feed.offer(7, 1, 0, RecordKind::Data, vec![0; 10]);
        feed.offer(7, 2, 0, RecordKind::Data, vec![0; 10]);
        feed.offer(7, 3, 0, RecordKind::Data, vec![0; 10]);
        // Messages 4, 5 and 6 were lost on the link; their loss record is dropped as well.
        feed.offer(7, 4, 0, RecordKind::Lost, 3u64.to_be_bytes().to_vec());
        assert_eq!(counters.drops_queue.load(Ordering::Relaxed), 2);
        assert_eq!(rx.drain().map(|i| i.seq).collect::<Vec<_>>(), [1, 2]);
        feed.offer(7, 7, 0, RecordKind::Data, vec![0; 10]);
        let next: Vec<(RecordKind, Option<(u64, u64)>)> =
            rx.drain().map(|i| (i.kind, i.seq_range())).collect();
        assert_eq!(
            next,
            [(RecordKind::Lost, Some((3, 6))), (RecordKind::Data, Some((7, 7)))]
        );
    }

    #[test]
    fn the_byte_bound_drops() {
        let (mut feed, rx, counters) = feed(100, 64);
        feed.offer(7, 1, 0, RecordKind::Data, vec![0; 80]);
        feed.offer(7, 2, 0, RecordKind::Data, vec![0; 80]);
        assert_eq!(counters.drops_queue.load(Ordering::Relaxed), 1);
        assert_eq!(rx.drain().count(), 1);
    }
}
