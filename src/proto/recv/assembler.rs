//! Collects authenticated symbols into blocks, decodes them, and releases them in block order.
//!
//! The block at the head of the order is declared lost when a later block has been known to
//! exist (a symbol of it, or a heartbeat saying it was sent) for longer than the reorder
//! window, when the head is too far behind the newest block, or when memory would run over.
//! So one bad block never stalls the blocks after it, and memory stays under
//! `max_pending_bytes` whatever the loss.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::Counters;
use crate::proto::fec::{self, Fec};
use crate::proto::wire::SymbolHeader;

/// Blocks the head may fall behind the newest before it is given up.
pub const MAX_BLOCK_SPAN: u64 = 4096;
/// Block buffers kept for reuse.
const SPARE_BUFFERS: usize = 8;
/// Evidence entries kept; older bounds are merged into the newest.
const MAX_EVIDENCE: usize = 1024;

struct PartialBlock {
    k: u16,
    r: u16,
    symbol_size: usize,
    buf: Vec<u8>,
    present: Vec<bool>,
    have: u16,
    decoded: bool,
}

impl PartialBlock {
    fn bytes(&self) -> usize {
        self.buf.capacity() + self.present.capacity()
    }
}

/// The block reassembly state of one session.
pub struct Assembler {
    reorder_window: Duration,
    max_pending_bytes: usize,
    next_block: Option<u64>,
    released_any: bool,
    pending: BTreeMap<u64, PartialBlock>,
    pending_bytes: usize,
    /// (bound, since): blocks below `bound` were known to exist from `since` on.
    evidence: VecDeque<(u64, Instant)>,
    /// Decoded blocks released in order but not yet handed out.
    ready: Vec<(u64, Vec<u8>)>,
    /// Buffers of finished blocks, reused to spare the allocator and page faults.
    spare: Vec<Vec<u8>>,
    /// Consecutive blocks given up and not yet logged: (first, count), so one outage is one
    /// log line, not thousands.
    lost_run: Option<(u64, u64)>,
    fec: Fec,
}

impl Assembler {
    /// An empty assembler.
    pub fn new(reorder_window: Duration, max_pending_bytes: usize) -> Self {
        Self {
            reorder_window,
            max_pending_bytes,
            next_block: None,
            released_any: false,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            evidence: VecDeque::new(),
            ready: Vec::new(),
            spare: Vec::new(),
            lost_run: None,
            fec: Fec::default(),
        }
    }

    /// The next block to be released, once one has been seen.
    pub fn next_block(&self) -> Option<u64> {
        self.next_block
    }

    /// Blocks held, incomplete or waiting for an earlier one.
    pub fn pending_blocks(&self) -> usize {
        self.pending.len()
    }

    /// Records that every block below `bound` was sent, as of `now`.
    pub fn note_sent_below(&mut self, now: Instant, bound: u64) {
        if self.next_block.is_none() {
            self.next_block = Some(bound);
        }
        if self.evidence.back().is_some_and(|(b, _)| *b >= bound) {
            return;
        }
        if self.evidence.len() >= MAX_EVIDENCE {
            if let Some(last) = self.evidence.back_mut() {
                last.0 = bound;
                return;
            }
        }
        self.evidence.push_back((bound, now));
    }

    /// Takes one symbol. Returns nothing; call [`Assembler::release`] after.
    pub fn add_symbol(&mut self, now: Instant, sh: SymbolHeader, symbol: &[u8], counters: &mut Counters) {
        let symbol_size = symbol.len();
        if !fec::valid_shape(sh.k, sh.r) || sh.index >= sh.k + sh.r || symbol_size == 0 {
            counters.drop_malformed += 1;
            tracing::debug!(
                block = sh.block,
                k = sh.k,
                r = sh.r,
                index = sh.index,
                "symbol with a bad shape dropped"
            );
            return;
        }
        match self.next_block {
            None => self.next_block = Some(sh.block),
            Some(head) if sh.block < head => {
                if self.released_any {
                    counters.symbols_unneeded += 1;
                    return;
                }
                self.next_block = Some(sh.block);
            }
            Some(_) => {}
        }
        // Blocks are sent in order: a symbol of this block means all before it were sent in full.
        self.note_sent_below(now, sh.block);
        self.enforce_span(sh.block, counters);

        if !self.pending.contains_key(&sh.block) {
            let total = usize::from(sh.k) + usize::from(sh.r);
            let need = total * symbol_size + total;
            while self.pending_bytes + need > self.max_pending_bytes {
                self.pump(None, counters);
                if self.pending_bytes + need <= self.max_pending_bytes {
                    break;
                }
                if !self.give_up_head_below(sh.block, counters) {
                    counters.drop_memory += 1;
                    tracing::warn!(block = sh.block, "symbol dropped: reassembly memory full");
                    return;
                }
            }
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.clear();
            buf.resize(total * symbol_size, 0);
            let block = PartialBlock {
                k: sh.k,
                r: sh.r,
                symbol_size,
                buf,
                present: vec![false; total],
                have: 0,
                decoded: false,
            };
            self.pending_bytes += block.bytes();
            self.pending.insert(sh.block, block);
        }
        let Some(block) = self.pending.get_mut(&sh.block) else {
            return;
        };
        if block.decoded {
            counters.symbols_unneeded += 1;
            return;
        }
        if (block.k, block.r, block.symbol_size) != (sh.k, sh.r, symbol_size) {
            counters.drop_malformed += 1;
            tracing::debug!(block = sh.block, "symbol disagrees with its block's shape");
            return;
        }
        let index = usize::from(sh.index);
        let (Some(slot), Some(present)) = (
            block.buf.get_mut(index * symbol_size..(index + 1) * symbol_size),
            block.present.get_mut(index),
        ) else {
            counters.drop_malformed += 1;
            return;
        };
        if *present {
            counters.symbols_unneeded += 1;
            return;
        }
        slot.copy_from_slice(symbol);
        *present = true;
        block.have += 1;
        if block.have >= block.k {
            decode(&mut self.fec, sh.block, block, counters);
            // The repair symbols are no longer needed; their memory is kept for reuse but
            // still counted, so the bound holds.
            block.buf.truncate(usize::from(block.k) * block.symbol_size);
        }
    }

    /// Releases, in order, the source data (frames, then padding) of every decoded block whose
    /// predecessors are all decoded or given up as of `now`. Given-up blocks are counted in
    /// `blocks_lost`; the channels find the messages they held missing by sequence number.
    pub fn release(&mut self, now: Instant, out: &mut Vec<(u64, Vec<u8>)>, counters: &mut Counters) {
        self.pump(Some(now), counters);
        out.append(&mut self.ready);
        log_lost_run(self.lost_run.take());
    }

    /// Moves decoded head blocks to `ready`; with `now`, also gives up overdue heads.
    fn pump(&mut self, now: Option<Instant>, counters: &mut Counters) {
        while let Some(head) = self.next_block {
            while self.evidence.front().is_some_and(|(bound, _)| *bound <= head) {
                self.evidence.pop_front();
            }
            if self.pending.get(&head).is_some_and(|b| b.decoded) {
                if let Some(block) = self.take(head) {
                    self.ready.push((head, block.buf));
                }
                self.advance_head(head);
                continue;
            }
            let overdue = now.and_then(|now| {
                self.evidence
                    .front()
                    .filter(|(_, since)| now >= *since + self.reorder_window)
                    .map(|(bound, _)| *bound)
            });
            let Some(bound) = overdue else {
                break;
            };
            // Every block below `bound` was sent more than a reorder window ago: give up the
            // head and, in one step, the run of blocks after it of which nothing arrived.
            let next_held = self.pending.range(head + 1..).next().map_or(bound, |(id, _)| *id);
            self.lose_until(next_held.min(bound).max(head + 1), counters);
        }
    }

    /// When `release` may give up the head, if nothing arrives before then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.evidence
            .front()
            .map(|(_, since)| *since + self.reorder_window)
    }

    /// Returns a released block's buffer for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(buf);
        }
    }

    /// Gives up every held block (at the end of a session) and returns how many there were.
    pub fn abandon(&mut self) -> usize {
        let n = self.pending.values().filter(|b| !b.decoded).count();
        self.pending.clear();
        self.ready.clear();
        self.pending_bytes = 0;
        n
    }

    fn take(&mut self, id: u64) -> Option<PartialBlock> {
        let block = self.pending.remove(&id)?;
        self.pending_bytes = self.pending_bytes.saturating_sub(block.bytes());
        Some(block)
    }

    fn advance_head(&mut self, head: u64) {
        self.next_block = Some(head + 1);
        self.released_any = true;
    }

    /// Gives up every block from the head up to (not including) `until`.
    fn lose_until(&mut self, until: u64, counters: &mut Counters) {
        let Some(head) = self.next_block else {
            return;
        };
        if until <= head {
            return;
        }
        let held: Vec<u64> = self.pending.range(head..until).map(|(id, _)| *id).collect();
        for id in held {
            self.take(id);
        }
        let count = until - head;
        counters.blocks_lost = counters.blocks_lost.saturating_add(count);
        self.lost_run = match self.lost_run {
            Some((first, n)) if first + n == head => Some((first, n + count)),
            other => {
                log_lost_run(other);
                Some((head, count))
            }
        };
        self.next_block = Some(until);
        self.released_any = true;
    }

    /// Gives up the head block if it is older than `block`. Returns whether it did.
    fn give_up_head_below(&mut self, block: u64, counters: &mut Counters) -> bool {
        match self.next_block {
            Some(head) if head < block => {
                self.lose_until(head + 1, counters);
                true
            }
            _ => false,
        }
    }

    fn enforce_span(&mut self, newest: u64, counters: &mut Counters) {
        let floor = newest.saturating_sub(MAX_BLOCK_SPAN);
        while let Some(head) = self.next_block {
            if head >= floor {
                break;
            }
            if self.pending.get(&head).is_some_and(|b| b.decoded) {
                // Decoded but held behind a lost block: released on the next pump.
                self.pump(None, counters);
                if self.next_block == Some(head) {
                    break;
                }
                continue;
            }
            let next_decoded = self
                .pending
                .range(head + 1..floor)
                .find(|(_, b)| b.decoded)
                .map_or(floor, |(id, _)| *id);
            self.lose_until(next_decoded, counters);
        }
    }
}

fn log_lost_run(run: Option<(u64, u64)>) {
    if let Some((first, count)) = run {
        tracing::warn!(first_block = first, count, "blocks lost beyond FEC repair");
    }
}

fn decode(fec: &mut Fec, id: u64, block: &mut PartialBlock, counters: &mut Counters) {
    let k = usize::from(block.k);
    let missing = block.present.iter().take(k).filter(|p| !**p).count();
    if missing > 0 {
        if let Err(error) = fec.reconstruct(
            block.k,
            block.r,
            &mut block.buf,
            &block.present,
            block.symbol_size,
        ) {
            // Cannot happen with k symbols present; the block is then given up like a lost one.
            tracing::error!(block = id, %error, "FEC decode failed");
            counters.drop_malformed += 1;
            return;
        }
        counters.symbols_recovered += missing as u64;
    }
    counters.blocks_decoded += 1;
    block.decoded = true;
}
