//! The OT side's link thread: drains the intake queue into the protocol [`Sender`], and
//! paces its datagrams onto the [`SendLink`] in GSO batches.
//!
//! It runs on its own OS thread rather than a tokio task because the flush deadline and the
//! pacer work in microseconds and tokio's timers tick in milliseconds. It never reads from
//! the link. When the intake queue closes (the daemon is stopping), it flushes the block being
//! built, sends everything queued and a last heartbeat, and returns.
//!
//! Every [`PUBLISH_EVERY`] it publishes its counters into a [`SendView`] for the metrics
//! endpoint; every [`POLICY_DROPS_EVERY`] it logs the sources' drops that moved, one line per
//! channel and reason with `event = "policy_drop"`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::net::{Pacer, SendLink, SEND_BATCH_BYTES, WIRE_OVERHEAD};
use crate::observe::send::SharedSendView;
use crate::observe::{lock, PUBLISH_EVERY};
use crate::proto::send::{PushError, Sender, SenderCounters};
use crate::sources::{ChannelCounters, DropReason, IntakeReceiver, Message, Received};

/// How long the thread sleeps at most when there is nothing to do.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// Interval between statistics log lines.
const STATS_EVERY: Duration = Duration::from_secs(10);
/// Interval between summaries of the sources' policy drops.
pub const POLICY_DROPS_EVERY: Duration = Duration::from_secs(1);

/// Drives `sender` until `intake` closes; returns the final counters.
pub fn run_link(
    mut sender: Sender,
    link: SendLink,
    bandwidth_bps: u64,
    intake: IntakeReceiver,
    sources: Vec<Arc<ChannelCounters>>,
    fingerprint: Arc<Mutex<[u8; 16]>>,
    view: SharedSendView,
) -> SenderCounters {
    let max_segments = link.max_segments();
    // A burst of two full batches keeps GSO effective while holding the rate over ~100 µs.
    let mut pacer = Pacer::new(bandwidth_bps, 2 * SEND_BATCH_BYTES, Instant::now());
    let mut batch: Vec<u8> = Vec::with_capacity(SEND_BATCH_BYTES + 65_536);
    let mut reported_drops = 0u64;
    let mut send_errors = 0u64;
    let mut closing = false;
    let mut next_stats = Instant::now() + STATS_EVERY;
    let mut next_publish = Instant::now();
    let mut next_drops = Instant::now() + POLICY_DROPS_EVERY;
    let mut drops_seen: Vec<[u64; DropReason::ALL.len()]> = vec![[0; DropReason::ALL.len()]; sources.len()];
    tracing::info!(
        local = ?link.local_addr().ok(),
        max_gso_segments = max_segments,
        bandwidth_bps,
        session = format_args!("{:016x}", sender.session()),
        "link sender started"
    );
    loop {
        let now = Instant::now();
        let drops: u64 = sources.iter().map(|c| c.dropped()).sum();
        if let Ok(f) = fingerprint.lock() {
            sender.set_fingerprint(*f);
        }
        sender.record_dropped(drops.saturating_sub(reported_drops));
        reported_drops = drops;
        if now >= next_stats {
            next_stats = now + STATS_EVERY;
            log_stats(sender.counters(), send_errors);
        }
        if now >= next_drops {
            next_drops = now + POLICY_DROPS_EVERY;
            log_policy_drops(&sources, &mut drops_seen);
        }
        if now >= next_publish {
            next_publish = now + PUBLISH_EVERY;
            let mut v = lock(&view);
            v.counters.clone_from(sender.counters());
            v.session = sender.session();
            v.send_errors = send_errors;
        }

        while !closing && sender.has_room() {
            match intake.try_recv() {
                Received::Message(msg) => push(&mut sender, now, msg),
                Received::Empty => break,
                Received::Closed => {
                    closing = true;
                    sender.flush();
                }
            }
        }

        let sent = send_batch(
            &mut sender,
            &link,
            &mut pacer,
            &mut batch,
            max_segments,
            &mut send_errors,
        );
        if sent {
            continue;
        }
        if closing {
            // Everything is out; say so in a last heartbeat so the receiver can account for
            // the tail at once.
            let mut last = Vec::new();
            if sender
                .poll_transmit(now + Duration::from_secs(3600), &mut last)
                .is_some()
            {
                let _ = link.send_batch(&last, last.len());
            }
            break;
        }
        let wake = sender
            .poll_timeout()
            .unwrap_or(now + IDLE_WAIT)
            .min(now + IDLE_WAIT);
        if wake > now {
            match intake.recv_deadline(wake) {
                Received::Message(msg) => push(&mut sender, Instant::now(), msg),
                Received::Empty => {}
                Received::Closed => {
                    closing = true;
                    sender.flush();
                }
            }
        }
    }
    log_stats(sender.counters(), send_errors);
    log_policy_drops(&sources, &mut drops_seen);
    sender.counters().clone()
}

/// Logs each channel's drops that moved since the last call, by reason.
fn log_policy_drops(sources: &[Arc<ChannelCounters>], seen: &mut [[u64; DropReason::ALL.len()]]) {
    for (channel, last) in sources.iter().zip(seen.iter_mut()) {
        for (reason, last) in DropReason::ALL.iter().zip(last.iter_mut()) {
            let now = channel.drops(*reason);
            if now > *last {
                tracing::warn!(
                    event = "policy_drop",
                    channel = %channel.name,
                    reason = reason.name(),
                    dropped = now - *last,
                    total = now,
                    "source refused messages"
                );
            }
            *last = now;
        }
    }
}

fn push(sender: &mut Sender, now: Instant, msg: Message) {
    match sender.push(now, msg.channel, msg.stream, msg.kind, &msg.payload) {
        // A message of the first priority closes its block at once: it must not wait for
        // bulk data to fill the block, nor for the flush deadline.
        Ok(_) if msg.priority == 0 => sender.flush(),
        Ok(_) => {}
        Err(PushError::Full) => {
            // `push` is only called with room; keep the accounting honest regardless.
            sender.record_dropped(1);
            tracing::error!(channel = msg.channel, "message dropped: sender full");
        }
        Err(PushError::TooLarge(len)) => {
            sender.record_dropped(1);
            tracing::warn!(channel = msg.channel, len, "message dropped: over max_message");
        }
    }
}

/// Collects datagrams of one size into `batch` and sends them in one call, paced.
/// Returns whether anything was sent.
fn send_batch(
    sender: &mut Sender,
    link: &SendLink,
    pacer: &mut Pacer,
    batch: &mut Vec<u8>,
    max_segments: usize,
    send_errors: &mut u64,
) -> bool {
    let now = Instant::now();
    batch.clear();
    let mut segment = 0usize;
    let mut count = 0usize;
    let mut carry_from = None;
    while count < max_segments && batch.len() + segment <= SEND_BATCH_BYTES {
        let start = batch.len();
        let Some(len) = sender.poll_transmit(now, batch) else {
            break;
        };
        if count == 0 {
            segment = len;
        } else if len > segment {
            // A longer datagram cannot follow in the same GSO batch: it goes first next time.
            carry_from = Some(start);
            break;
        }
        count += 1;
        if len < segment {
            break; // a shorter datagram may only be the last of a batch
        }
    }
    if count == 0 && carry_from.is_none() {
        return false;
    }
    let end = carry_from.unwrap_or(batch.len());
    transmit(
        link,
        pacer,
        batch.get(..end).unwrap_or_default(),
        segment,
        count,
        send_errors,
    );
    if let Some(from) = carry_from {
        let carried = batch.split_off(from);
        transmit(link, pacer, &carried, carried.len(), 1, send_errors);
    }
    true
}

fn transmit(
    link: &SendLink,
    pacer: &mut Pacer,
    bytes: &[u8],
    segment: usize,
    count: usize,
    errors: &mut u64,
) {
    let wire = bytes.len() + count * WIRE_OVERHEAD as usize;
    let wait = pacer.delay(Instant::now(), wire);
    if !wait.is_zero() {
        std::thread::sleep(wait);
    }
    pacer.consume(Instant::now(), wire);
    if let Err(error) = link.send_batch(bytes, segment) {
        *errors += 1;
        // Rate-limited: the first error, then every 1000th.
        if *errors % 1000 == 1 {
            tracing::warn!(%error, errors = *errors, datagrams = count, "link send failed; datagrams lost");
        }
    }
}

fn log_stats(c: &SenderCounters, send_errors: u64) {
    tracing::info!(
        datagrams = c.datagrams,
        bytes = c.bytes,
        messages = c.messages,
        message_bytes = c.message_bytes,
        blocks = c.blocks,
        messages_dropped = c.messages_dropped,
        send_errors,
        "link sender stats"
    );
}
