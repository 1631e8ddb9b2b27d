//! The IT side's link thread: takes datagram batches off the [`RecvLink`], runs them through
//! the protocol [`Receiver`], and hands what comes out to the spool without waiting. Everything
//! that leaves the IT host is read from the spool by the delivery process (`weir-deliver`).
//!
//! It runs on its own OS thread so neither the metrics server nor the spool writer ever delays
//! reading the link (whose kernel buffer is the only slack a one-way link has). It never writes to the
//! link. Drops are counted by the receiver; every few seconds the thread logs the drop
//! counters that moved, by reason, so nothing is lost without a log line and a flood of bad
//! datagrams cannot flood the log.
//!
//! Security and health events are logged with an `event` field: `link_down`, `link_up`,
//! `sender_restart`, `fingerprint_mismatch`, and — summarised at most once per
//! [`SECURITY_EVERY`] — `auth_failure` and `replay`. Every [`PUBLISH_EVERY`] the thread
//! publishes a [`RecvView`] for the metrics endpoint, and samples its history every
//! [`SAMPLE_EVERY`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::net::RecvLink;
use crate::observe::recv::{ChannelStat, RecvView, SharedRecvView};
use crate::observe::{lock, PUBLISH_EVERY, SAMPLE_EVERY};
use crate::proto::recv::{ChannelSpec, Counters, Event, HealthEvent, Receiver};
use crate::proto::wire::Heartbeat;
use crate::spool::writer::SpoolFeed;
use crate::spool::RecordKind;

/// Longest wait for a datagram before timers and the stop flag are looked at.
const POLL: Duration = Duration::from_millis(50);
/// Interval between drop summaries and statistics lines.
const STATS_EVERY: Duration = Duration::from_secs(5);
/// Interval between repeated warnings while the policy fingerprints differ.
const MISMATCH_REPEAT: Duration = Duration::from_secs(60);
/// Interval between summaries of authentication failures and replays.
pub const SECURITY_EVERY: Duration = Duration::from_secs(1);

/// Routes receiver events to the spool, and keeps per-channel statistics.
#[derive(Debug)]
pub struct Dispatch {
    names: HashMap<u32, String>,
    fingerprint_ok: Option<bool>,
    mismatch_logged: Option<Instant>,
    stats: HashMap<u32, ChannelStat>,
    last_heartbeat: Option<Heartbeat>,
    restarts: u64,
    spool: SpoolFeed,
}

impl Dispatch {
    /// Stores every channel's messages, losses and broken streams in `spool`.
    pub fn new(spool: SpoolFeed) -> Self {
        Dispatch {
            names: HashMap::new(),
            fingerprint_ok: None,
            mismatch_logged: None,
            stats: HashMap::new(),
            last_heartbeat: None,
            restarts: 0,
            spool,
        }
    }

    /// Names `channel` (for logs and per-channel statistics).
    pub fn name_channel(&mut self, channel: u32, name: &str) {
        self.names.insert(channel, name.to_owned());
        self.stats.entry(channel).or_default().name = name.to_owned();
    }

    /// Per-channel statistics, by name.
    pub fn channel_stats(&self) -> Vec<ChannelStat> {
        let mut stats: Vec<ChannelStat> = self.stats.values().cloned().collect();
        stats.sort_by(|a, b| a.name.cmp(&b.name));
        stats
    }

    fn stat(&mut self, channel: u32) -> Option<&mut ChannelStat> {
        // Only declared channels: the receiver drops frames of unknown ones.
        self.stats.get_mut(&channel)
    }

    /// Handles one receiver event.
    pub fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Message {
                channel,
                stream,
                kind,
                seq,
                payload,
            } => {
                if let Some(stat) = self.stat(channel) {
                    stat.messages += 1;
                    stat.bytes += payload.len() as u64;
                }
                self.spool
                    .offer(channel, seq, stream, RecordKind::from(kind), payload);
            }
            Event::StreamBroken { channel, stream } => {
                tracing::warn!(
                    channel = self.name(channel),
                    stream,
                    "stream broken by loss; resetting it"
                );
                // The receiver cut the stream: no message carries this abort, so seq 0.
                self.spool
                    .offer(channel, 0, stream, RecordKind::Abort, Vec::new());
            }
            Event::Lost {
                channel,
                first_seq,
                count,
            } => {
                self.spool.offer(
                    channel,
                    first_seq,
                    0,
                    RecordKind::Lost,
                    count.to_be_bytes().to_vec(),
                );
                // Logged by the receiver with its sequence range.
                if let Some(stat) = self.stat(channel) {
                    stat.lost += count;
                }
            }
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
                self.last_heartbeat = Some(heartbeat);
            }
            Event::SessionStarted {
                session,
                previous: Some(previous),
            } => {
                self.restarts += 1;
                self.last_heartbeat = None;
                tracing::warn!(
                    event = "sender_restart",
                    session = format_args!("{session:016x}"),
                    previous = format_args!("{previous:016x}"),
                    "the sender restarted: a new session replaces the previous one"
                );
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
                event = "fingerprint_mismatch",
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
    view: SharedRecvView,
    stop: Arc<AtomicBool>,
) -> Counters {
    let mut observer = Observer::new(view, receiver.counters().clone(), Instant::now());
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
        observer.tick(now, &mut receiver, &dispatch, &link);
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

/// The link thread's observability duties: health logs, security summaries, the view.
struct Observer {
    view: SharedRecvView,
    next_publish: Instant,
    next_sample: Instant,
    next_security: Instant,
    security_last: Counters,
    link_downs: u64,
}

impl Observer {
    fn new(view: SharedRecvView, counters: Counters, now: Instant) -> Self {
        Self {
            view,
            next_publish: now,
            next_sample: now,
            next_security: now + SECURITY_EVERY,
            security_last: counters,
            link_downs: 0,
        }
    }

    /// Logs health events and security summaries, publishes the view when due. Reads the
    /// kernel's drop counter (a system call) only when publishing.
    fn tick(&mut self, now: Instant, receiver: &mut Receiver, dispatch: &Dispatch, link: &RecvLink) {
        while let Some(event) = receiver.poll_health_event() {
            match event {
                HealthEvent::LinkDown { silent_for } => {
                    self.link_downs += 1;
                    tracing::error!(
                        event = "link_down",
                        silent_ms = silent_for.as_millis() as u64,
                        "LINK DOWN: no authenticated datagram from the sender"
                    );
                }
                HealthEvent::LinkUp { down_for } => tracing::info!(
                    event = "link_up",
                    down_ms = down_for.map(|d| d.as_millis() as u64),
                    "link up: authenticated traffic arrives"
                ),
            }
        }
        if now >= self.next_security {
            self.next_security = now + SECURITY_EVERY;
            crate::observe::security::log_security(&self.security_last, receiver.counters());
            self.security_last = receiver.counters().clone();
        }
        if now < self.next_publish {
            return;
        }
        self.next_publish = now + PUBLISH_EVERY;
        let mut v = lock(&self.view);
        publish(&mut v, receiver, dispatch, link.kernel_drops(), self.link_downs);
        if now >= self.next_sample {
            self.next_sample = now + SAMPLE_EVERY;
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            v.sample(now, unix);
        }
    }
}

fn publish(
    v: &mut RecvView,
    receiver: &Receiver,
    dispatch: &Dispatch,
    kernel_drops: Option<u64>,
    link_downs: u64,
) {
    v.counters.clone_from(receiver.counters());
    v.link = receiver.link_state();
    v.last_heartbeat = receiver.last_heartbeat();
    v.fingerprint_match = dispatch.fingerprint_ok;
    v.session = receiver.session();
    v.sender_restarts = dispatch.restarts;
    v.link_downs = link_downs;
    v.sender.clone_from(&dispatch.last_heartbeat);
    let stats = dispatch.channel_stats();
    // Keep the rates computed at the last sample.
    for stat in stats {
        match v.channels.iter_mut().find(|c| c.name == stat.name) {
            Some(c) => {
                c.messages = stat.messages;
                c.bytes = stat.bytes;
                c.lost = stat.lost;
            }
            None => v.channels.push(stat),
        }
    }
    v.pending_blocks = receiver.pending_blocks();
    v.kernel_drops = kernel_drops;
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
