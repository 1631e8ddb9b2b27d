//! The IT side's link thread: takes datagram batches off the [`RecvLink`], runs them through
//! the protocol [`Receiver`], and dispatches what comes out to the sinks without waiting.
//!
//! It runs on its own OS thread so a busy consumer-side runtime never delays reading the
//! link (whose kernel buffer is the only slack a one-way link has). It never writes to the
//! link. Drops are counted by the receiver; every few seconds the thread logs the drop
//! counters that moved, by reason, so nothing is lost without a log line and a flood of bad
//! datagrams cannot flood the log.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::net::RecvLink;
use crate::proto::recv::{ChannelSpec, Counters, Event, Receiver};
use crate::sinks::{SinkEvent, SinkHandle};

/// Longest wait for a datagram before timers and the stop flag are looked at.
const POLL: Duration = Duration::from_millis(50);
/// Interval between drop summaries and statistics lines.
const STATS_EVERY: Duration = Duration::from_secs(5);
/// Interval between repeated warnings while the policy fingerprints differ.
const MISMATCH_REPEAT: Duration = Duration::from_secs(60);

/// Routes receiver events to the sinks of each channel.
#[derive(Debug, Default)]
pub struct Dispatch {
    sinks: HashMap<u32, Vec<SinkHandle>>,
    names: HashMap<u32, String>,
    fingerprint_ok: Option<bool>,
    mismatch_logged: Option<Instant>,
}

impl Dispatch {
    /// Adds a sink for `channel`.
    pub fn add(&mut self, channel: u32, name: &str, sink: SinkHandle) {
        self.names.insert(channel, name.to_owned());
        self.sinks.entry(channel).or_default().push(sink);
    }

    fn fanout(&mut self, channel: u32, event: impl Fn() -> SinkEvent) {
        if let Some(sinks) = self.sinks.get_mut(&channel) {
            for sink in sinks {
                sink.offer(event());
            }
        }
    }

    /// Handles one receiver event.
    pub fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Message {
                channel,
                stream,
                kind,
                payload,
                ..
            } => {
                let sinks = self.sinks.get_mut(&channel);
                if let Some(sinks) = sinks {
                    // Fan-out copies only when there is more than one sink.
                    let mut payload = Some(payload);
                    let n = sinks.len();
                    for (i, sink) in sinks.iter_mut().enumerate() {
                        let bytes = if i + 1 == n {
                            payload.take().unwrap_or_default()
                        } else {
                            payload.clone().unwrap_or_default()
                        };
                        sink.offer(SinkEvent::Message {
                            stream,
                            kind,
                            payload: bytes,
                        });
                    }
                }
            }
            Event::StreamBroken { channel, stream } => {
                tracing::warn!(
                    channel = self.name(channel),
                    stream,
                    "stream broken by loss; resetting it"
                );
                self.fanout(channel, || SinkEvent::Broken { stream });
            }
            Event::Lost { .. } => {} // logged by the receiver with its sequence range
            Event::Heartbeat {
                session,
                heartbeat,
                fingerprint_matches,
            } => {
                tracing::debug!(
                    session = format_args!("{session:016x}"),
                    next_block = heartbeat.next_block,
                    sent_datagrams = heartbeat.datagrams_sent,
                    sent_messages = heartbeat.messages_sent,
                    sender_dropped = heartbeat.messages_dropped,
                    "heartbeat"
                );
                self.on_fingerprint(now, fingerprint_matches);
            }
            Event::SessionStarted { .. } => {}
        }
    }

    fn on_fingerprint(&mut self, now: Instant, matches: bool) {
        let changed = self.fingerprint_ok != Some(matches);
        self.fingerprint_ok = Some(matches);
        if matches {
            if changed {
                tracing::info!("sender's policy fingerprint matches ours");
            }
            return;
        }
        if changed || self.mismatch_logged.is_none_or(|t| now >= t + MISMATCH_REPEAT) {
            self.mismatch_logged = Some(now);
            tracing::error!(
                "POLICY FINGERPRINT MISMATCH: the sender runs a different policy file; install the \
                 same file on both hosts (data for channels this side does not know is dropped)"
            );
        }
    }

    fn name(&self, channel: u32) -> &str {
        self.names.get(&channel).map_or("?", String::as_str)
    }
}

/// A reloaded policy's live settings, handed from the signal handler to the link thread.
pub type LiveUpdate = Arc<Mutex<Option<([u8; 16], Vec<ChannelSpec>)>>>;

/// Runs until `stop` is set; returns the receiver's final counters. Replay floors the
/// receiver asks for are stored in `state` before the next batch is read; reloaded settings
/// in `live` are applied between batches.
pub fn run_link(
    mut receiver: Receiver,
    mut link: RecvLink,
    mut dispatch: Dispatch,
    state: &Path,
    live: LiveUpdate,
    stop: Arc<AtomicBool>,
) -> Counters {
    let mut last = receiver.counters().clone();
    let mut next_stats = Instant::now() + STATS_EVERY;
    let mut read_errors = 0u64;
    let mut state_errors = 0u64;
    let mut kernel_drops = link.kernel_drops().unwrap_or(0);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wait = receiver
            .poll_timeout()
            .map_or(POLL, |t| t.saturating_duration_since(now))
            .min(POLL);
        // One clock reading per batch: a batch is read in microseconds.
        let batch_time = Instant::now();
        let received = link.recv(wait, |datagram| {
            receiver.handle(batch_time, datagram);
            while let Some(event) = receiver.poll_event() {
                dispatch.on_event(now, event);
            }
        });
        if let Err(error) = received {
            read_errors += 1;
            if read_errors % 1000 == 1 {
                tracing::warn!(%error, read_errors, "link receive failed");
            }
        }
        if let Some((fingerprint, channels)) = live.lock().ok().and_then(|mut l| l.take()) {
            receiver.update_live(fingerprint, &channels);
        }
        if let Some(floor) = receiver.take_floor_update() {
            if let Err(error) = crate::state::store(state, floor) {
                state_errors += 1;
                if state_errors % 100 == 1 {
                    tracing::error!(
                        %error,
                        state_errors,
                        "cannot store the replay floor: after a restart, traffic captured now could be replayed"
                    );
                }
            }
        }
        let now = Instant::now();
        receiver.handle_timeout(now);
        while let Some(event) = receiver.poll_event() {
            dispatch.on_event(now, event);
        }
        if now >= next_stats {
            next_stats = now + STATS_EVERY;
            log_changes(&last, receiver.counters());
            last = receiver.counters().clone();
            log_kernel_drops(&link, &mut kernel_drops);
        }
    }
    log_changes(&last, receiver.counters());
    log_kernel_drops(&link, &mut kernel_drops);
    receiver.counters().clone()
}

/// Logs datagrams the kernel dropped before weir could read them (receive buffer full).
fn log_kernel_drops(link: &RecvLink, last: &mut u64) {
    if let Some(now) = link.kernel_drops() {
        if now > *last {
            tracing::warn!(
                dropped = now - *last,
                total = now,
                "link socket overflowed: the kernel dropped datagrams; raise recv.socket_buffer \
                 (and net.core.rmem_max) or lower link.bandwidth"
            );
        }
        *last = now;
    }
}

/// Logs the drop counters that moved since `before` (one warning line) and a stats line.
fn log_changes(before: &Counters, now: &Counters) {
    let moved: Vec<String> = now
        .drops()
        .iter()
        .zip(before.drops())
        .filter(|((_, n), (_, b))| n > b)
        .map(|((name, n), (_, b))| format!("{name}={}", n - b))
        .collect();
    if !moved.is_empty() {
        tracing::warn!(drops = %moved.join(" "), "datagrams or messages dropped since the last report");
    }
    if now.datagrams > before.datagrams {
        tracing::info!(
            datagrams = now.datagrams,
            bytes = now.bytes,
            messages = now.messages,
            message_bytes = now.message_bytes,
            symbols_recovered = now.symbols_recovered,
            blocks_lost = now.blocks_lost,
            messages_lost = now.messages_lost,
            streams_broken = now.streams_broken,
            "link receiver stats"
        );
    }
}
