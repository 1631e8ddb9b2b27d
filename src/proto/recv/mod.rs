//! The receiver state machine: datagrams in, ordered messages and exact loss reports out.
//! No I/O, no clock.
//!
//! `handle(now, datagram)` runs the checks cheapest first — length, version and kind; for the
//! current session its key id, the replay window and the AEAD open; for another session its
//! freshness, its key id and the AEAD open — then marks the packet number, then hands
//! data symbols to the block assembler and heartbeats to the loss accounting. Every datagram
//! that fails a check is counted under its reason in [`Counters`] and dropped; none can make
//! the receiver panic or stall. `poll_event()` yields what happened; `handle_timeout(now)`
//! gives up blocks whose reorder window has passed, at `poll_timeout()`.
//!
//! Sessions: a session id carries the sender's start time in its high 32 bits. A datagram of
//! an older session than the current one, or of a session already replaced, is dropped as
//! stale, so captured traffic of a previous sender run cannot be replayed into this one.
//!
//! Restarts: the receiver asks its shell to persist a [`ReplayFloor`] (session, packet number)
//! before it accepts packet numbers near the last floor it asked for. A receiver started with
//! that floor rejects older sessions as stale and packets of the floor's session below the
//! floor as replays, so traffic captured before a restart cannot be replayed after it. The
//! price: after a restart, the running session's packets up to the floor are refused. The
//! floor runs ahead by an adaptive step, between [`MIN_FLOOR_STEP`] and [`MAX_FLOOR_STEP`]
//! packets, doubled when floors are asked for more than ten times a second and halved when
//! less than once a second: a slow link loses seconds of traffic on a restart, not minutes,
//! and a fast one writes its state file a few times a second.

mod assembler;
mod channels;
mod events;
mod health;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use assembler::MAX_BLOCK_SPAN;
pub use channels::{ChannelSpec, MAX_STREAMS_PER_CHANNEL};
pub use events::{Counters, Event, HealthEvent};
pub use health::{LinkState, DEFAULT_LINK_DOWN_AFTER};

use self::assembler::Assembler;
use self::channels::Channels;
use self::health::{Health, Transition};
use super::frame::Frames;
use super::reader::Reader;
use super::replay::{Freshness, ReplayWindow};
use super::seal::SessionKey;
use super::wire::{self, Header, Heartbeat, Kind, SymbolHeader, MAX_COUNTER};
use crate::proto::key::LinkKey;

/// Sessions remembered after they were replaced, to refuse their datagrams.
const RETIRED_SESSIONS: usize = 16;

/// Smallest distance a persisted floor runs ahead of the newest accepted packet number.
pub const MIN_FLOOR_STEP: u64 = 256;
/// Largest distance a persisted floor runs ahead of the newest accepted packet number.
pub const MAX_FLOOR_STEP: u64 = 1 << 16;
/// Floors asked for closer together than this double the step.
const FLOOR_FAST: Duration = Duration::from_millis(100);
/// Floors asked for further apart than this halve the step.
const FLOOR_SLOW: Duration = Duration::from_secs(1);

/// The replay state that must survive a restart: packets of `session` below `packet_floor`,
/// and sessions that started before it, are never accepted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayFloor {
    /// The session the floor belongs to.
    pub session: u64,
    /// Every packet number accepted so far in `session` is below this.
    pub packet_floor: u64,
}

/// What the receiver needs to know; all of it comes from the policy.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Every key accepted (rotation overlap).
    pub keys: Vec<LinkKey>,
    /// This side's policy fingerprint (first 16 bytes).
    pub fingerprint: [u8; 16],
    /// The channels the policy declares.
    pub channels: Vec<ChannelSpec>,
    /// How long a block may wait for its missing symbols once a later block is known.
    pub reorder_window: Duration,
    /// Bound on the memory of blocks being reassembled.
    pub max_pending_bytes: usize,
    /// The floor persisted by the previous run, if any.
    pub replay_floor: Option<ReplayFloor>,
}

struct Session {
    id: u64,
    key_id: u16,
    key: SessionKey,
    replay: ReplayWindow,
    blocks: Assembler,
    channels: Channels,
    /// Heartbeat channel reports waiting until every block they cover is resolved.
    tail_checks: VecDeque<(u64, Vec<(u32, u64)>)>,
}

/// The receiver side of the link protocol.
pub struct Receiver {
    cfg: ReceiverConfig,
    session: Option<Session>,
    floor: Option<ReplayFloor>,
    floor_update: Option<ReplayFloor>,
    floor_step: u64,
    floor_asked_at: Option<Instant>,
    retired: VecDeque<u64>,
    events: VecDeque<Event>,
    scratch_events: Vec<Event>,
    scratch_blocks: Vec<(u64, Vec<u8>)>,
    counters: Counters,
    health: Option<Health>,
    health_events: VecDeque<HealthEvent>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("session", &self.session.as_ref().map(|s| s.id))
            .field("counters", &self.counters)
            .finish()
    }
}

fn session_start(session: u64) -> u64 {
    session >> 32
}

impl Receiver {
    /// A receiver with no session yet.
    pub fn new(cfg: ReceiverConfig) -> Self {
        Self {
            floor: cfg.replay_floor,
            floor_update: None,
            floor_step: MIN_FLOOR_STEP,
            floor_asked_at: None,
            cfg,
            session: None,
            retired: VecDeque::new(),
            events: VecDeque::new(),
            scratch_events: Vec::new(),
            scratch_blocks: Vec::new(),
            counters: Counters::default(),
            health: None,
            health_events: VecDeque::new(),
        }
    }

    /// Turns on link-health tracking: the link is reported down after `down_after` without
    /// an authenticated datagram (exactly at that instant), and up again on the next one;
    /// [`Receiver::poll_timeout`] then includes the down deadline. Off by default.
    pub fn enable_link_health(&mut self, down_after: Duration) {
        match self.health.as_mut() {
            Some(h) => h.set_down_after(down_after),
            None => self.health = Some(Health::new(down_after)),
        }
    }

    /// The link's state; `None` while link health is off.
    pub fn link_state(&self) -> Option<LinkState> {
        self.health.as_ref().map(Health::state)
    }

    /// When the last authenticated heartbeat arrived (link health on).
    pub fn last_heartbeat(&self) -> Option<Instant> {
        self.health.as_ref().and_then(Health::last_heartbeat)
    }

    /// When the last authenticated datagram arrived (link health on).
    pub fn last_authenticated(&self) -> Option<Instant> {
        self.health.as_ref().and_then(Health::last_alive)
    }

    /// The next link-health change, if any. Drain after `handle` and `handle_timeout`.
    pub fn poll_health_event(&mut self) -> Option<HealthEvent> {
        self.health_events.pop_front()
    }

    fn note_health(&mut self, transition: Option<Transition>) {
        let event = match transition {
            None => return,
            Some(Transition::Up { down_for }) => HealthEvent::LinkUp { down_for },
            Some(Transition::Down { silent_for }) => HealthEvent::LinkDown { silent_for },
        };
        // Transitions alternate, so two slots suffice; keep the bound regardless.
        if self.health_events.len() >= 16 {
            self.health_events.pop_front();
        }
        self.health_events.push_back(event);
    }

    fn check_health(&mut self, now: Instant) {
        let transition = self.health.as_mut().and_then(|h| h.check(now));
        self.note_health(transition);
    }

    /// What has been counted so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The current session, if one has authenticated.
    pub fn session(&self) -> Option<u64> {
        self.session.as_ref().map(|s| s.id)
    }

    /// Blocks held in reassembly.
    pub fn pending_blocks(&self) -> usize {
        self.session.as_ref().map_or(0, |s| s.blocks.pending_blocks())
    }

    /// Applies a reloaded policy's live settings: the fingerprint heartbeats are compared
    /// with, and each known channel's `max_message` (channels are matched by id; the set of
    /// channels cannot change without a restart).
    pub fn update_live(&mut self, fingerprint: [u8; 16], channels: &[ChannelSpec]) {
        self.cfg.fingerprint = fingerprint;
        for spec in &mut self.cfg.channels {
            if let Some(new) = channels.iter().find(|c| c.id == spec.id) {
                spec.max_message = new.max_message;
            }
        }
        if let Some(session) = self.session.as_mut() {
            session.channels.update_limits(channels);
        }
    }

    /// A new replay floor to persist, if one is due. The shell must store it durably before it
    /// hands the receiver another [`MIN_FLOOR_STEP`] / 2 datagrams (in practice: before the
    /// next batch).
    pub fn take_floor_update(&mut self) -> Option<ReplayFloor> {
        self.floor_update.take()
    }

    /// The next event, if any. Drain after every `handle` and `handle_timeout`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call `handle_timeout` if no datagram arrives first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let blocks = self.session.as_ref().and_then(|s| s.blocks.poll_timeout());
        let health = self.health.as_ref().and_then(Health::deadline);
        match (blocks, health) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Gives up blocks whose reorder window has passed; checks the link-down deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_health(now);
        self.release(now);
    }

    /// Takes one datagram off the link. The buffer is decrypted in place.
    pub fn handle(&mut self, now: Instant, datagram: &mut [u8]) {
        self.counters.datagrams += 1;
        self.counters.bytes += datagram.len() as u64;
        if datagram.len() < wire::HEADER_LEN + wire::TAG_LEN {
            self.counters.drop_short += 1;
            return;
        }
        let Some(header) = Header::parse(datagram) else {
            self.counters.drop_short += 1;
            return;
        };
        if header.version != wire::VERSION {
            self.counters.drop_version += 1;
            return;
        }
        if let Kind::Unknown(_) = header.kind {
            self.counters.drop_kind += 1;
            return;
        }
        let current = self.session.as_ref().is_some_and(|s| s.id == header.session);
        let opened = if current {
            self.open_current(now, &header, datagram)
        } else {
            self.open_new(now, &header, datagram)
        };
        let Some(body) = opened else {
            self.check_health(now);
            return;
        };
        if self.health.is_some() {
            self.check_health(now);
            let heartbeat = header.kind == Kind::Heartbeat;
            let transition = self.health.as_mut().and_then(|h| h.alive(now, heartbeat));
            self.note_health(transition);
        }
        match header.kind {
            Kind::Data => self.on_symbol(now, body),
            Kind::Heartbeat => self.on_heartbeat(now, header.session, body),
            Kind::Unknown(_) => {}
        }
        self.release(now);
    }

    fn open_current<'a>(
        &mut self,
        now: Instant,
        header: &Header,
        datagram: &'a mut [u8],
    ) -> Option<&'a [u8]> {
        let session = self.session.as_mut()?;
        if header.key_id != session.key_id {
            self.counters.drop_forged += 1;
            return None;
        }
        if self
            .cfg
            .replay_floor
            .is_some_and(|f| f.session == header.session && header.packet_number < f.packet_floor)
        {
            // The session resumed after a restart: packets below the stored floor may have been
            // accepted before it, and the fresh window does not know them.
            self.counters.drop_replay += 1;
            return None;
        }
        match session.replay.check(header.packet_number) {
            Freshness::Fresh => {}
            Freshness::Replayed => {
                self.counters.drop_replay += 1;
                return None;
            }
            Freshness::TooOld => {
                self.counters.drop_too_old += 1;
                return None;
            }
        }
        match session.key.open(header.packet_number, datagram) {
            Ok(_) if header.packet_number > MAX_COUNTER => {
                // Only a holder of the key can send it; no sender gets there, and the replay
                // floor above it could not be stored.
                self.counters.drop_malformed += 1;
                None
            }
            Ok(body) => {
                session.replay.mark(header.packet_number);
                let id = session.id;
                self.note_accepted(now, id, header.packet_number);
                Some(body)
            }
            Err(_) => {
                self.counters.drop_forged += 1;
                None
            }
        }
    }

    fn open_new<'a>(&mut self, now: Instant, header: &Header, datagram: &'a mut [u8]) -> Option<&'a [u8]> {
        let stale = self.retired.contains(&header.session)
            || self
                .session
                .as_ref()
                .is_some_and(|s| session_start(header.session) < session_start(s.id));
        let stale = stale
            || self
                .floor
                .is_some_and(|f| session_start(header.session) < session_start(f.session))
            // After a restart, a session of the same start second as the stored floor's may have
            // been replaced before the restart (the retired list is not stored): refuse it. A
            // sender restarted within that same second waits for its next restart.
            || self.cfg.replay_floor.is_some_and(|f| {
                header.session != f.session && session_start(header.session) <= session_start(f.session)
            });
        if stale {
            self.counters.drop_stale_session += 1;
            return None;
        }
        if self
            .floor
            .is_some_and(|f| f.session == header.session && header.packet_number < f.packet_floor)
        {
            // The session the previous run was in: this packet number was (or may have been)
            // accepted before the restart.
            self.counters.drop_replay += 1;
            return None;
        }
        let Some(psk) = self.cfg.keys.iter().find(|k| k.id == header.key_id) else {
            self.counters.drop_unknown_key += 1;
            return None;
        };
        let Ok(key) = SessionKey::derive(psk, header.session) else {
            self.counters.drop_forged += 1;
            return None;
        };
        let Ok(body) = key.open(header.packet_number, datagram) else {
            self.counters.drop_forged += 1;
            return None;
        };
        if header.packet_number > MAX_COUNTER {
            self.counters.drop_malformed += 1;
            return None;
        }
        self.start_session(now, header, key);
        if let Some(s) = self.session.as_mut() {
            s.replay.mark(header.packet_number);
        }
        self.note_accepted(now, header.session, header.packet_number);
        Some(body)
    }

    /// Asks for a new persisted floor when `packet_number` nears the current one.
    fn note_accepted(&mut self, now: Instant, session: u64, packet_number: u64) {
        // A floor is due when packets near it, and also when traffic has slowed down while the
        // step is large: then a lower floor (still above every accepted packet) shortens what a
        // restart would refuse.
        let slowed = self.floor_step > MIN_FLOOR_STEP
            && self
                .floor_asked_at
                .is_none_or(|t| now.saturating_duration_since(t) > FLOOR_SLOW);
        let due = match self.floor {
            Some(f) if f.session == session => {
                slowed || packet_number.saturating_add(self.floor_step / 2) >= f.packet_floor
            }
            _ => true,
        };
        if !due {
            return;
        }
        if let Some(last) = self.floor_asked_at {
            let gap = now.saturating_duration_since(last);
            if gap < FLOOR_FAST {
                self.floor_step = (self.floor_step * 2).min(MAX_FLOOR_STEP);
            } else if gap > FLOOR_SLOW {
                self.floor_step = (self.floor_step / 2).max(MIN_FLOOR_STEP);
            }
        }
        self.floor_asked_at = Some(now);
        let floor = ReplayFloor {
            session,
            packet_floor: packet_number.saturating_add(self.floor_step),
        };
        self.floor = Some(floor);
        self.floor_update = Some(floor);
    }

    fn start_session(&mut self, _now: Instant, header: &Header, key: SessionKey) {
        let previous = self.session.take();
        let previous_id = previous.as_ref().map(|s| s.id);
        if let Some(mut old) = previous {
            let incomplete = old.blocks.abandon();
            self.counters.blocks_lost += incomplete as u64;
            old.channels
                .close_all(&mut self.scratch_events, &mut self.counters);
            self.events.extend(self.scratch_events.drain(..));
            if self.retired.len() >= RETIRED_SESSIONS {
                self.retired.pop_front();
            }
            self.retired.push_back(old.id);
            tracing::warn!(
                old = old.id,
                new = header.session,
                incomplete_blocks = incomplete,
                "sender session replaced"
            );
        }
        self.counters.sessions += 1;
        tracing::info!(
            session = header.session,
            key_id = header.key_id,
            "sender session started"
        );
        self.session = Some(Session {
            id: header.session,
            key_id: header.key_id,
            key,
            replay: ReplayWindow::default(),
            blocks: Assembler::new(self.cfg.reorder_window, self.cfg.max_pending_bytes),
            channels: Channels::new(&self.cfg.channels),
            tail_checks: VecDeque::new(),
        });
        self.events.push_back(Event::SessionStarted {
            session: header.session,
            previous: previous_id,
        });
    }

    fn on_symbol(&mut self, now: Instant, body: &[u8]) {
        let mut reader = Reader::new(body);
        let Some(sh) = SymbolHeader::parse(&mut reader) else {
            self.counters.drop_malformed += 1;
            return;
        };
        if let Some(session) = self.session.as_mut() {
            session
                .blocks
                .add_symbol(now, sh, reader.rest(), &mut self.counters);
        }
    }

    fn on_heartbeat(&mut self, now: Instant, session_id: u64, body: &[u8]) {
        let Some(heartbeat) = Heartbeat::parse(body) else {
            self.counters.drop_malformed += 1;
            return;
        };
        self.counters.heartbeats += 1;
        let fingerprint_matches = heartbeat.fingerprint == self.cfg.fingerprint;
        if !fingerprint_matches {
            self.counters.fingerprint_mismatches += 1;
        }
        if let Some(session) = self.session.as_mut() {
            session.blocks.note_sent_below(now, heartbeat.next_block);
            if session.tail_checks.len() >= 8 {
                session.tail_checks.pop_front();
            }
            session
                .tail_checks
                .push_back((heartbeat.next_block, heartbeat.channels.clone()));
        }
        self.events.push_back(Event::Heartbeat {
            session: session_id,
            heartbeat,
            fingerprint_matches,
        });
    }

    fn release(&mut self, now: Instant) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        session
            .blocks
            .release(now, &mut self.scratch_blocks, &mut self.counters);
        for (block, data) in self.scratch_blocks.drain(..) {
            for frame in Frames::new(&data) {
                match frame {
                    Ok((header, bytes)) => {
                        session
                            .channels
                            .on_frame(header, bytes, &mut self.scratch_events, &mut self.counters)
                    }
                    Err(error) => {
                        self.counters.drop_malformed += 1;
                        tracing::warn!(block, %error, "authenticated block with malformed frames");
                    }
                }
            }
            session.blocks.recycle(data);
        }
        let resolved_below = session.blocks.next_block().unwrap_or(0);
        while let Some((bound, _)) = session.tail_checks.front() {
            if *bound > resolved_below {
                break;
            }
            if let Some((_, channels)) = session.tail_checks.pop_front() {
                for (channel, next_seq) in channels {
                    session.channels.sent_below(
                        channel,
                        next_seq,
                        &mut self.scratch_events,
                        &mut self.counters,
                    );
                }
            }
        }
        self.events.extend(self.scratch_events.drain(..));
    }
}
