//! The sender state machine: messages in, sealed datagrams out. No I/O, no clock.
//!
//! The shell drives it:
//! - `push(now, message)` frames a message into the block being built, fragmenting it across
//!   blocks when it does not fit. Call it only while [`Sender::has_room`] is true; that bound
//!   is how back-pressure reaches the sources.
//! - `poll_transmit(now, out)` appends the next sealed datagram to `out` (heartbeats first,
//!   then the symbols of encoded blocks in order), or returns `None`.
//! - `poll_timeout()` says when to call `poll_transmit` again if nothing else happens.
//!
//! A block is closed and FEC-encoded when it is full, or when its oldest frame has waited
//! `flush` (so sparse telemetry is not held back). Its `k` is the fewest symbols that hold its
//! frames and its symbol size is balanced across them, so a small block sends small datagrams.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::fec::{self, Fec, FecError};
use super::frame::{FrameHeader, MessageKind, FRAME_HEADER_LEN, MAX_FRAMED_MESSAGE};
use super::seal::{SealError, SessionKey};
use super::wire::{self, Header, Heartbeat, Kind, SymbolHeader};
use crate::proto::key::LinkKey;

/// Encoded blocks that may wait for the link before `has_room` turns false.
pub const MAX_QUEUED_BLOCKS: usize = 2;

/// What the sender needs to know; all of it comes from the policy and the shell.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// The key that seals every datagram.
    pub key: LinkKey,
    /// This run's session id.
    pub session: u64,
    /// Largest UDP payload to emit.
    pub datagram_budget: usize,
    /// Most source symbols per block.
    pub max_source_symbols: u16,
    /// Repair overhead in percent of source symbols.
    pub repair_percent: u16,
    /// Longest time a frame waits for its block to fill.
    pub flush: Duration,
    /// Interval between heartbeats.
    pub heartbeat: Duration,
    /// The policy fingerprint carried in heartbeats.
    pub fingerprint: [u8; 16],
    /// Channels to report in heartbeats.
    pub channels: Vec<u32>,
    /// Largest message accepted.
    pub max_message: usize,
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    /// The link queue is full; try again after `poll_transmit` has drained it.
    #[error("link queue full")]
    Full,
    /// Larger than the configured maximum.
    #[error("message of {0} bytes exceeds the maximum")]
    TooLarge(usize),
}

/// The configuration cannot make datagrams.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// The datagram budget leaves no room for a frame.
    #[error("datagram budget of {0} bytes is too small")]
    BudgetTooSmall(usize),
    /// `max_message` is beyond what a frame's offset can place.
    #[error("max_message of {0} bytes is beyond the 4 GiB a frame offset can place")]
    MessageTooLarge(usize),
    /// Key derivation failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Block shape not supported.
    #[error(transparent)]
    Fec(#[from] FecError),
}

/// Counters the sender keeps; they also travel in heartbeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderCounters {
    /// Datagrams emitted (data and heartbeats).
    pub datagrams: u64,
    /// UDP payload bytes emitted.
    pub bytes: u64,
    /// Messages framed.
    pub messages: u64,
    /// Message bytes framed.
    pub message_bytes: u64,
    /// Blocks encoded.
    pub blocks: u64,
    /// Heartbeats emitted.
    pub heartbeats: u64,
    /// Messages dropped before framing, as reported by the shell.
    pub messages_dropped: u64,
}

struct EncodedBlock {
    id: u64,
    k: u16,
    r: u16,
    symbol_size: usize,
    buf: Vec<u8>,
    next_index: u16,
    /// Per channel touched: the sequence number after its last complete message in this block.
    completed: Vec<(u32, u64)>,
}

/// The sender side of the link protocol.
pub struct Sender {
    cfg: SenderConfig,
    key: SessionKey,
    fec: Fec,
    max_symbol: usize,
    next_packet: u64,
    next_block: u64,
    fully_sent: u64,
    building: Vec<u8>,
    building_since: Option<Instant>,
    building_completed: Vec<(u32, u64)>,
    next_seq: HashMap<u32, u64>,
    sent_seq: HashMap<u32, u64>,
    queue: VecDeque<EncodedBlock>,
    spare: Vec<Vec<u8>>,
    next_heartbeat: Option<Instant>,
    heartbeat_rotation: usize,
    counters: SenderCounters,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("session", &self.cfg.session)
            .field("next_block", &self.next_block)
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl Sender {
    /// A sender for one session.
    pub fn new(cfg: SenderConfig) -> Result<Sender, SenderError> {
        let max_symbol = wire::symbol_size_for(cfg.datagram_budget);
        if max_symbol <= FRAME_HEADER_LEN {
            return Err(SenderError::BudgetTooSmall(cfg.datagram_budget));
        }
        if cfg.max_message > MAX_FRAMED_MESSAGE {
            return Err(SenderError::MessageTooLarge(cfg.max_message));
        }
        let k = cfg.max_source_symbols;
        let r = fec::repair_count(k, cfg.repair_percent);
        if !fec::valid_shape(k, r) {
            return Err(FecError::Shape { k, r }.into());
        }
        let key = SessionKey::derive(&cfg.key, cfg.session)?;
        let capacity = usize::from(k) * max_symbol;
        Ok(Sender {
            key,
            fec: Fec::default(),
            max_symbol,
            next_packet: 0,
            next_block: 0,
            fully_sent: 0,
            building: Vec::with_capacity(capacity),
            building_since: None,
            building_completed: Vec::new(),
            next_seq: HashMap::new(),
            sent_seq: cfg.channels.iter().map(|c| (*c, 0)).collect(),
            queue: VecDeque::new(),
            spare: Vec::new(),
            next_heartbeat: None,
            heartbeat_rotation: 0,
            counters: SenderCounters::default(),
            cfg,
        })
    }

    /// This sender's counters.
    pub fn counters(&self) -> &SenderCounters {
        &self.counters
    }

    /// The session id.
    pub fn session(&self) -> u64 {
        self.cfg.session
    }

    /// Replaces the policy fingerprint carried in heartbeats (after a policy reload).
    pub fn set_fingerprint(&mut self, fingerprint: [u8; 16]) {
        self.cfg.fingerprint = fingerprint;
    }

    /// Records messages the shell dropped before they reached the sender, for heartbeats.
    pub fn record_dropped(&mut self, messages: u64) {
        self.counters.messages_dropped += messages;
    }

    /// Whether `push` will accept a message.
    pub fn has_room(&self) -> bool {
        self.queue.len() < MAX_QUEUED_BLOCKS
    }

    /// Whether datagrams are waiting (encoded blocks not yet fully emitted).
    pub fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }

    fn block_capacity(&self) -> usize {
        usize::from(self.cfg.max_source_symbols) * self.max_symbol
    }

    /// Frames one message and returns its sequence number.
    pub fn push(
        &mut self,
        now: Instant,
        channel: u32,
        stream: u32,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<u64, PushError> {
        if !self.has_room() {
            return Err(PushError::Full);
        }
        if payload.len() > self.cfg.max_message {
            return Err(PushError::TooLarge(payload.len()));
        }
        let seq_slot = self.next_seq.entry(channel).or_insert(0);
        let seq = *seq_slot;
        *seq_slot += 1;
        let mut rest = payload;
        loop {
            let room = self.block_capacity().saturating_sub(self.building.len());
            if room <= FRAME_HEADER_LEN && !self.building.is_empty() {
                self.close_block();
                continue;
            }
            let take = rest
                .len()
                .min(room.saturating_sub(FRAME_HEADER_LEN))
                .min(usize::from(u16::MAX));
            // At most max_message, which `new` keeps within MAX_FRAMED_MESSAGE.
            let offset = u32::try_from(payload.len() - rest.len()).unwrap_or(u32::MAX);
            let (chunk, tail) = rest.split_at(take);
            let last = tail.is_empty();
            let header = FrameHeader {
                channel,
                stream,
                seq,
                kind,
                offset,
                last,
            };
            if self.building.is_empty() {
                self.building_since = Some(now);
            }
            header.write(chunk, &mut self.building);
            if last {
                note_completed(&mut self.building_completed, channel, seq + 1);
                break;
            }
            rest = tail;
        }
        self.counters.messages += 1;
        self.counters.message_bytes += payload.len() as u64;
        if self.block_capacity().saturating_sub(self.building.len()) <= FRAME_HEADER_LEN {
            self.close_block();
        }
        Ok(seq)
    }

    /// Closes the block being built now, whatever its size.
    pub fn flush(&mut self) {
        self.close_block();
    }

    fn close_block(&mut self) {
        let len = self.building.len();
        if len == 0 {
            return;
        }
        let k_usize = len.div_ceil(self.max_symbol).max(1);
        let symbol_size = len.div_ceil(k_usize);
        let k = u16::try_from(k_usize).unwrap_or(self.cfg.max_source_symbols);
        let r = fec::repair_count(k, self.cfg.repair_percent);
        let total = (usize::from(k) + usize::from(r)) * symbol_size;
        // The frames already sit where the block's source symbols go (symbols are contiguous,
        // whatever their size), so the block is the building buffer plus padding and repair.
        let mut next = self.spare.pop().unwrap_or_default();
        next.clear();
        let mut buf = std::mem::replace(&mut self.building, next);
        buf.resize(total, 0);
        if let Err(error) = self.fec.encode(k, r, &mut buf, symbol_size) {
            // Unreachable with shapes validated in `new`; still never silently.
            tracing::error!(%error, k, r, "FEC encode failed; block sent without repair");
        }
        self.queue.push_back(EncodedBlock {
            id: self.next_block,
            k,
            r,
            symbol_size,
            buf,
            next_index: 0,
            completed: std::mem::take(&mut self.building_completed),
        });
        self.next_block += 1;
        self.counters.blocks += 1;
        self.building_since = None;
    }

    /// When `poll_transmit` has something to do next if no message arrives.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let flush_at = self.building_since.map(|t| t + self.cfg.flush);
        match (self.next_heartbeat, flush_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Appends the next sealed datagram to `out` and returns its length.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<usize> {
        if self.next_heartbeat.is_none_or(|t| now >= t) {
            self.next_heartbeat = Some(now + self.cfg.heartbeat);
            return self.emit_heartbeat(out);
        }
        if self.building_since.is_some_and(|t| now >= t + self.cfg.flush) {
            self.close_block();
        }
        self.emit_symbol(out)
    }

    fn emit_symbol(&mut self, out: &mut Vec<u8>) -> Option<usize> {
        let block = self.queue.front_mut()?;
        let start = out.len();
        let header = Header {
            version: wire::VERSION,
            kind: Kind::Data,
            key_id: self.cfg.key.id,
            session: self.cfg.session,
            packet_number: self.next_packet,
        };
        header.write(out);
        SymbolHeader {
            block: block.id,
            index: block.next_index,
            k: block.k,
            r: block.r,
        }
        .write(out);
        let from = usize::from(block.next_index) * block.symbol_size;
        let symbol = block.buf.get(from..from + block.symbol_size).unwrap_or_default();
        out.extend_from_slice(symbol);
        block.next_index += 1;
        let done = block.next_index >= block.k + block.r;
        let sealed = self.seal(start, out);
        if done {
            if let Some(block) = self.queue.pop_front() {
                self.fully_sent = block.id + 1;
                for (channel, seq) in block.completed {
                    self.sent_seq.insert(channel, seq);
                }
                if self.spare.len() <= MAX_QUEUED_BLOCKS {
                    self.spare.push(block.buf);
                }
            }
        }
        sealed
    }

    fn emit_heartbeat(&mut self, out: &mut Vec<u8>) -> Option<usize> {
        let start = out.len();
        Header {
            version: wire::VERSION,
            kind: Kind::Heartbeat,
            key_id: self.cfg.key.id,
            session: self.cfg.session,
            packet_number: self.next_packet,
        }
        .write(out);
        let room = self
            .cfg
            .datagram_budget
            .saturating_sub(wire::HEADER_LEN + wire::TAG_LEN + wire::HEARTBEAT_FIXED_LEN)
            / wire::HEARTBEAT_CHANNEL_LEN;
        let n = self.cfg.channels.len();
        let take = room.min(n);
        let channels = (0..take)
            .filter_map(|i| self.cfg.channels.get((self.heartbeat_rotation + i) % n.max(1)))
            .map(|c| (*c, self.sent_seq.get(c).copied().unwrap_or(0)))
            .collect();
        self.heartbeat_rotation = (self.heartbeat_rotation + take) % n.max(1);
        Heartbeat {
            fingerprint: self.cfg.fingerprint,
            next_block: self.fully_sent,
            datagrams_sent: self.counters.datagrams,
            bytes_sent: self.counters.bytes,
            messages_sent: self.counters.messages,
            messages_dropped: self.counters.messages_dropped,
            channels,
        }
        .write(out);
        self.counters.heartbeats += 1;
        self.seal(start, out)
    }

    fn seal(&mut self, start: usize, out: &mut Vec<u8>) -> Option<usize> {
        let pn = self.next_packet;
        self.next_packet += 1;
        if let Err(error) = self.key.seal(pn, out, start) {
            tracing::error!(%error, "sealing failed; datagram not sent");
            out.truncate(start);
            return None;
        }
        let len = out.len() - start;
        self.counters.datagrams += 1;
        self.counters.bytes += len as u64;
        Some(len)
    }
}

fn note_completed(list: &mut Vec<(u32, u64)>, channel: u32, next: u64) {
    match list.iter_mut().find(|(c, _)| *c == channel) {
        Some(entry) => entry.1 = next,
        None => list.push((channel, next)),
    }
}
