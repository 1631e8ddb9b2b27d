//! Per-channel ordering, reassembly, loss accounting and stream state on the receiving side.
//!
//! Frames arrive in block order, so within a session a channel's sequence numbers only rise.
//! Every sequence number that is skipped becomes one `Lost` range: exact loss accounting by
//! channel and sequence. A gap also breaks every stream open on the channel, because the lost
//! messages may have belonged to any of them: a stream is never spliced across a gap.
//!
//! A message is delivered only if its fragments chain: the first at offset 0, each next one at
//! the offset where the bytes held so far end. A fragment that does not continue the message
//! (one in between was in a block that was given up) makes the message lost, as a skipped
//! sequence number does; nothing here relies on being told which blocks were given up.

use std::collections::{BTreeSet, HashMap};

use super::{Counters, Event};
use crate::proto::frame::{FrameHeader, MessageKind};

/// Streams that may be open at once on one channel; the sender enforces the same bound.
pub const MAX_STREAMS_PER_CHANNEL: usize = 256;

/// What the receiver knows about a channel from its policy.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    /// The channel id.
    pub id: u32,
    /// Whether the channel carries streams (TCP) rather than datagrams.
    pub streams: bool,
    /// Largest message accepted.
    pub max_message: usize,
}

struct Partial {
    stream: u32,
    kind: MessageKind,
    bytes: Vec<u8>,
    /// Bytes of the message received so far (also counted once it is oversize and dropped).
    received: usize,
    oversize: bool,
}

struct ChannelRx {
    spec: ChannelSpec,
    /// The sequence number of the next message not yet delivered or declared lost.
    expected: u64,
    partial: Option<Partial>,
    /// The message last reported lost for a missing fragment: its later fragments are expected.
    abandoned: Option<u64>,
    open: BTreeSet<u32>,
    /// Streams whose messages are being discarded (their open or part of them was lost);
    /// each was reported broken once.
    dead: BTreeSet<u32>,
}

/// Dead streams remembered per channel; past this the set is cleared (and a stream may be
/// reported broken a second time, which sinks ignore).
const MAX_DEAD_STREAMS: usize = 1024;

/// The channels of one session.
pub struct Channels {
    channels: HashMap<u32, ChannelRx>,
}

impl Channels {
    /// Trackers for `specs`, each expecting sequence number 0.
    pub fn new(specs: &[ChannelSpec]) -> Self {
        let channels = specs
            .iter()
            .map(|spec| {
                (
                    spec.id,
                    ChannelRx {
                        spec: spec.clone(),
                        expected: 0,
                        partial: None,
                        abandoned: None,
                        open: BTreeSet::new(),
                        dead: BTreeSet::new(),
                    },
                )
            })
            .collect();
        Self { channels }
    }

    /// Handles one frame.
    pub fn on_frame(
        &mut self,
        header: FrameHeader,
        bytes: &[u8],
        events: &mut Vec<Event>,
        counters: &mut Counters,
    ) {
        let Some(ch) = self.channels.get_mut(&header.channel) else {
            counters.drop_unknown_channel += 1;
            tracing::debug!(
                channel = header.channel,
                "frame for a channel not in the policy dropped"
            );
            return;
        };
        if header.seq < ch.expected {
            if ch.abandoned != Some(header.seq) || header.first() {
                counters.drop_stale_frame += 1;
            }
            // Else: a later fragment of a message already reported lost, already accounted.
            return;
        }
        if header.seq > ch.expected {
            ch.lose_up_to(header.seq, events, counters);
        }
        if header.first() {
            if ch.partial.is_some() {
                // A second start of the message being assembled: the sender never does this.
                ch.lose_fragmented(header, 0, events, counters);
                return;
            }
            ch.partial = Some(Partial {
                stream: header.stream,
                kind: header.kind,
                bytes: Vec::with_capacity(if header.last { bytes.len() } else { 0 }),
                received: 0,
                oversize: false,
            });
        }
        let Some(partial) = ch.partial.as_mut() else {
            // The start of this message was in a block this receiver never had.
            ch.lose_fragmented(header, 0, events, counters);
            return;
        };
        if usize::try_from(header.offset).ok() != Some(partial.received) {
            let held = partial.received;
            ch.lose_fragmented(header, held, events, counters);
            return;
        }
        partial.received += bytes.len();
        if partial.received > ch.spec.max_message {
            partial.oversize = true;
            partial.bytes = Vec::new();
        } else if !partial.oversize {
            partial.bytes.extend_from_slice(bytes);
        }
        if header.last {
            if let Some(done) = ch.partial.take() {
                ch.expected = header.seq + 1;
                if done.oversize {
                    counters.drop_oversize += 1;
                    tracing::warn!(
                        channel = header.channel,
                        seq = header.seq,
                        "message over max_message dropped"
                    );
                    ch.break_streams(events, counters);
                } else {
                    ch.deliver(header.seq, done, events, counters);
                }
            }
        }
    }

    /// Declares lost every message of `channel` below `next_seq` not yet delivered (the sender
    /// said, in a heartbeat, that they were all sent).
    pub fn sent_below(
        &mut self,
        channel: u32,
        next_seq: u64,
        events: &mut Vec<Event>,
        counters: &mut Counters,
    ) {
        if let Some(ch) = self.channels.get_mut(&channel) {
            if next_seq > ch.expected {
                ch.lose_up_to(next_seq, events, counters);
            }
        }
    }

    /// Takes new `max_message` limits for the channels it knows.
    pub fn update_limits(&mut self, specs: &[ChannelSpec]) {
        for spec in specs {
            if let Some(ch) = self.channels.get_mut(&spec.id) {
                ch.spec.max_message = spec.max_message;
            }
        }
    }

    /// Breaks every open stream (the session ended).
    pub fn close_all(&mut self, events: &mut Vec<Event>, counters: &mut Counters) {
        for ch in self.channels.values_mut() {
            ch.break_streams(events, counters);
        }
    }
}

impl ChannelRx {
    /// The message of `header` lost a fragment (its bytes end at `held` where `header` starts
    /// elsewhere): reports it lost, so the rest of its fragments are stale.
    fn lose_fragmented(
        &mut self,
        header: FrameHeader,
        held: usize,
        events: &mut Vec<Event>,
        counters: &mut Counters,
    ) {
        tracing::warn!(
            channel = format_args!("{:08x}", self.spec.id),
            seq = header.seq,
            stream = header.stream,
            held,
            offset = header.offset,
            "message lost: a fragment of it is missing"
        );
        self.lose_up_to(header.seq + 1, events, counters);
        self.abandoned = Some(header.seq);
    }

    fn lose_up_to(&mut self, next: u64, events: &mut Vec<Event>, counters: &mut Counters) {
        let count = next.saturating_sub(self.expected);
        if count == 0 {
            return;
        }
        counters.messages_lost = counters.messages_lost.saturating_add(count);
        tracing::warn!(
            channel = format_args!("{:08x}", self.spec.id),
            first_seq = self.expected,
            last_seq = next - 1,
            count,
            "messages lost"
        );
        events.push(Event::Lost {
            channel: self.spec.id,
            first_seq: self.expected,
            count,
        });
        self.expected = next;
        self.partial = None;
        self.break_streams(events, counters);
    }

    fn break_streams(&mut self, events: &mut Vec<Event>, counters: &mut Counters) {
        for stream in std::mem::take(&mut self.open) {
            self.mark_dead(stream, events, counters);
        }
    }

    fn mark_dead(&mut self, stream: u32, events: &mut Vec<Event>, counters: &mut Counters) {
        if self.dead.len() >= MAX_DEAD_STREAMS {
            self.dead.clear();
        }
        if self.dead.insert(stream) {
            counters.streams_broken += 1;
            events.push(Event::StreamBroken {
                channel: self.spec.id,
                stream,
            });
        }
    }

    fn deliver(&mut self, seq: u64, msg: Partial, events: &mut Vec<Event>, counters: &mut Counters) {
        let channel = self.spec.id;
        let acceptable = match (self.spec.streams, msg.kind) {
            (false, MessageKind::Data) => true,
            (false, _) => false,
            (true, MessageKind::Open) => {
                if self.open.len() >= MAX_STREAMS_PER_CHANNEL {
                    tracing::warn!(channel, stream = msg.stream, "stream refused: too many open");
                    self.mark_dead(msg.stream, events, counters);
                    return;
                }
                self.dead.remove(&msg.stream);
                self.open.insert(msg.stream)
            }
            (true, MessageKind::Data) => self.open.contains(&msg.stream),
            (true, MessageKind::End | MessageKind::Abort) => self.open.remove(&msg.stream),
        };
        if !acceptable {
            counters.drop_stream_state += 1;
            tracing::debug!(channel, stream = msg.stream, seq, kind = ?msg.kind, "message for a stream in the wrong state dropped");
            if self.spec.streams && msg.kind != MessageKind::Open {
                // Its open was lost: the stream is unusable on this side.
                self.mark_dead(msg.stream, events, counters);
            }
            return;
        }
        counters.messages += 1;
        counters.message_bytes += msg.bytes.len() as u64;
        events.push(Event::Message {
            channel,
            stream: msg.stream,
            kind: msg.kind,
            seq,
            payload: msg.bytes,
        });
    }
}
