//! The receiver driven by a script (format: `weir_fuzz::rx`) that mixes arbitrary datagrams with datagrams the harness seals with the receiver's own keys, clock steps and restarts; after every step it checks the receiver's contract against an independent model.
//!
//! Why structure: without the key, random bytes never get past the AEAD. The harness holds the
//! receiver's keys (the library is not weakened in any way), so the fuzzer chooses *what* a
//! legitimate sender seals — session, key, packet number, kind, symbol headers, heartbeats,
//! whole FEC-encoded blocks of frames with chosen losses — and the authenticated paths behind
//! the AEAD (reassembly, FEC, frames, channels, streams, loss accounting) get fuzzed.
//!
//! Checked after every step (a panic here is a finding):
//! - authentication: a datagram is accepted only if it opens under a key the receiver holds
//!   (checked by the harness with its own copy of the keys); a rejected datagram is counted
//!   under exactly one pre-authentication reason and yields no event;
//! - replay: a datagram accepted once is never accepted again, not even after a restart;
//! - the session and replay rules (PROTOCOL.md §4, §5), both ways: an authentic datagram is
//!   accepted when it is new to the window or starts a non-stale session, and refused when the
//!   rules say so (retired or older session, after a restart another session of the stored
//!   floor's second, below the persisted floor, behind the window, key id other than the
//!   session's, packet number above MAX_COUNTER);
//! - the replay floor is above every packet number ever accepted in its session, and names
//!   the session of the last accepted datagram;
//! - events: only after authenticated input; per channel, sequence numbers delivered or
//!   declared lost strictly increase (nothing twice); messages respect `max_message`; on a
//!   datagram channel only data; on a stream channel data, end and abort only while the stream
//!   is open (a gap breaks every open stream: no splice), and every delivered message the
//!   harness framed is a chain of the fragments it framed for it, from offset 0 on (a fragment
//!   in a block that never arrived makes the message lost, never spliced out), a takeover breaks every open stream
//!   before `SessionStarted`; heartbeats belong to the current session;
//! - counters agree with the events; `pending_blocks()` stays within the memory bound and is
//!   0 without a session; after `handle_timeout(now)` no timeout is due at or before `now`.
#![no_main]

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use weir::keys::LinkKey;
use weir::proto::fec::Fec;
use weir::proto::frame::{FrameHeader, MessageKind};
use weir::proto::recv::{ChannelSpec, Counters, Event, Receiver, ReceiverConfig, ReplayFloor};
use weir::proto::replay::WINDOW;
use weir::proto::seal::SessionKey;
use weir::proto::wire::{Header, Heartbeat, Kind, SymbolHeader, HEADER_LEN, MAX_COUNTER, TAG_LEN, VERSION};
use weir_fuzz::rx::{
    channel_of, dt_millis, parse_all, shape_of, BlockId, Body, FrameKind, Pn, Record, Seal, DGRAM_CH,
    FINGERPRINT, KEY1, KEY2, MAX_MESSAGE, SESSIONS, STREAM_CH,
};

const REORDER_WINDOW: Duration = Duration::from_millis(20);
/// Small, so the memory bound is reached by fuzz inputs.
const MAX_PENDING_BYTES: usize = 256 << 10;
/// `RETIRED_SESSIONS` of src/proto/recv/mod.rs: "the last 16 sessions" (PROTOCOL.md §4).
const RETIRED_SESSIONS: usize = 16;
/// Sealed datagrams remembered for REPLAY records.
const SEALED_LOG: usize = 256;

/// `WEIR_FUZZ_TRACE=1`: print every step (for reading a reproducer).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("WEIR_FUZZ_TRACE").is_some_and(|v| v == "1"))
}

fn link_key((id, secret): (u16, [u8; 32])) -> LinkKey {
    LinkKey { id, secret }
}

fn config(replay_floor: Option<ReplayFloor>) -> ReceiverConfig {
    ReceiverConfig {
        keys: vec![link_key(KEY1), link_key(KEY2)],
        fingerprint: FINGERPRINT,
        channels: vec![
            ChannelSpec {
                id: STREAM_CH,
                streams: true,
                max_message: MAX_MESSAGE,
            },
            ChannelSpec {
                id: DGRAM_CH,
                streams: false,
                max_message: MAX_MESSAGE,
            },
        ],
        reorder_window: REORDER_WINDOW,
        max_pending_bytes: MAX_PENDING_BYTES,
        replay_floor,
    }
}

fn start_of(session: u64) -> u64 {
    session >> 32
}

/// Drops counted before a datagram is authenticated: exactly one of them grows per datagram
/// the receiver refuses, none for a datagram it accepts.
fn pre_auth_drops(c: &Counters) -> u64 {
    c.drop_short
        + c.drop_version
        + c.drop_kind
        + c.drop_unknown_key
        + c.drop_stale_session
        + c.drop_replay
        + c.drop_too_old
        + c.drop_forged
}

/// The harness's sender side of one session.
#[derive(Default)]
struct SenderState {
    next_pn: u64,
    next_block: u64,
    next_seq: HashMap<u32, u64>,
    /// Where the next fragment of a message goes, per (channel, seq): what an honest sender
    /// writes, so a fragment that went missing leaves a hole the receiver must notice.
    next_offset: HashMap<(u32, u64), u32>,
}

/// Fragments the harness framed, per (session, channel, seq): (offset, bytes).
type Fragments = HashMap<(u64, u32, u64), Vec<(u32, Vec<u8>)>>;

/// Whether `payload` is a chain of framed fragments: one at offset 0, each next one at the
/// offset where the previous ends, up to the payload's end. A splice (a fragment missing in
/// between and the next one appended) is not.
fn chained(fragments: &[(u32, Vec<u8>)], payload: &[u8]) -> bool {
    let mut reachable = vec![false; payload.len() + 1];
    reachable[0] = true;
    for at in 0..=payload.len() {
        if !reachable[at] {
            continue;
        }
        for (offset, bytes) in fragments {
            if *offset as usize == at && payload[at..].starts_with(bytes) {
                reachable[at + bytes.len()] = true;
            }
        }
    }
    reachable[payload.len()]
}

/// What the receiver must look like from outside, per channel, in the current session.
#[derive(Default)]
struct ChannelModel {
    /// Lowest sequence number that may still be delivered or declared lost.
    next: u64,
    /// Streams open as far as the events tell.
    open: BTreeSet<u32>,
}

/// The model of one receiver instance (a restart starts a new one).
struct Model {
    /// Current session and the key id it was established with.
    current: Option<(u64, u16)>,
    retired: VecDeque<u64>,
    floor: Option<ReplayFloor>,
    /// Packet numbers accepted in the current session, and the highest.
    seen: HashSet<u64>,
    highest: u64,
    channels: HashMap<u32, ChannelModel>,
    any_accepted: bool,
    /// Events counted, to compare with the receiver's counters.
    messages: u64,
    lost: u64,
    broken: u64,
    heartbeats: u64,
    sessions: u64,
}

impl Model {
    fn new(floor: Option<ReplayFloor>) -> Self {
        Model {
            current: None,
            retired: VecDeque::new(),
            floor,
            seen: HashSet::new(),
            highest: 0,
            channels: HashMap::new(),
            any_accepted: false,
            messages: 0,
            lost: 0,
            broken: 0,
            heartbeats: 0,
            sessions: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accept,
    Reject,
    /// The replay window's edge is word-aligned: 64 packet numbers where either is right.
    Either,
}

struct Harness {
    rx: Receiver,
    now: Instant,
    model: Model,
    /// The floor the receiver last asked to persist (survives restarts).
    persisted: Option<ReplayFloor>,
    /// The floor the current receiver instance was started with.
    restart_floor: Option<ReplayFloor>,
    /// Highest packet number ever accepted per session, across restarts.
    max_accepted: HashMap<u64, u64>,
    senders: [SenderState; 4],
    fragments: Fragments,
    /// Datagrams the harness sealed itself; an authentic data datagram that is not one (a real
    /// Sender's, from the seeds) carries frames the harness cannot know.
    harness_sealed: HashSet<Vec<u8>>,
    /// Sessions that carried such foreign frames: their messages are not chain-checked.
    foreign_frames: HashSet<u64>,
    keys: HashMap<(u16, u8, u64), SessionKey>,
    /// Every datagram the receiver ever accepted, across restarts.
    accepted: HashSet<Vec<u8>>,
    sealed_log: Vec<Vec<u8>>,
    sealed_count: usize,
    fec: Fec,
    /// The `SessionStarted` event the current step must produce.
    expect_start: Option<(u64, Option<u64>)>,
}

impl Harness {
    fn new() -> Self {
        Harness {
            rx: Receiver::new(config(None)),
            now: Instant::now(),
            model: Model::new(None),
            persisted: None,
            restart_floor: None,
            max_accepted: HashMap::new(),
            senders: Default::default(),
            fragments: HashMap::new(),
            harness_sealed: HashSet::new(),
            foreign_frames: HashSet::new(),
            keys: HashMap::new(),
            accepted: HashSet::new(),
            sealed_log: Vec::new(),
            sealed_count: 0,
            fec: Fec::default(),
            expect_start: None,
        }
    }

    fn session_key(&mut self, (id, secret): (u16, [u8; 32]), session: u64) -> &SessionKey {
        if self.keys.len() >= 256 {
            self.keys.clear();
        }
        self.keys
            .entry((id, secret[0], session))
            .or_insert_with(|| SessionKey::derive(&link_key((id, secret)), session).expect("HKDF"))
    }

    /// The header of `bytes` if it opens under a key the receiver holds: the harness's own
    /// check, with its own copy of the keys.
    fn authentic(&mut self, bytes: &[u8]) -> Option<Header> {
        if bytes.len() < HEADER_LEN + TAG_LEN {
            return None;
        }
        let h = Header::parse(bytes)?;
        if h.version != VERSION || matches!(h.kind, Kind::Unknown(_)) {
            return None;
        }
        let key = [KEY1, KEY2].into_iter().find(|k| k.0 == h.key_id)?;
        let mut copy = bytes.to_vec();
        self.session_key(key, h.session)
            .open(h.packet_number, &mut copy)
            .ok()?;
        Some(h)
    }

    /// What the documented session and replay rules say about an authentic datagram.
    fn expect(&self, h: &Header) -> Expect {
        let m = &self.model;
        let pn = h.packet_number;
        if pn > MAX_COUNTER {
            // Malformed: no sender gets there, and no floor could be stored above it.
            return Expect::Reject;
        }
        // Packets of the stored floor's session below the floor are replays, whether or not the
        // session is current again.
        if self
            .restart_floor
            .is_some_and(|f| f.session == h.session && pn < f.packet_floor)
        {
            return Expect::Reject;
        }
        match m.current {
            Some((s, key_id)) if s == h.session => {
                if h.key_id != key_id || m.seen.contains(&pn) {
                    Expect::Reject
                } else if pn > m.highest || m.highest - pn < WINDOW - 64 {
                    Expect::Accept
                } else if m.highest - pn >= WINDOW {
                    Expect::Reject
                } else {
                    Expect::Either
                }
            }
            current => {
                let start = start_of(h.session);
                // After a restart, other sessions of the stored floor's start second may have
                // been replaced before it (the retired list is not stored): stale too.
                let stale = m.retired.contains(&h.session)
                    || current.is_some_and(|(c, _)| start < start_of(c))
                    || m.floor.is_some_and(|f| start < start_of(f.session))
                    || self
                        .restart_floor
                        .is_some_and(|f| f.session != h.session && start <= start_of(f.session));
                let below_floor = m
                    .floor
                    .is_some_and(|f| f.session == h.session && pn < f.packet_floor);
                if stale || below_floor {
                    Expect::Reject
                } else {
                    Expect::Accept
                }
            }
        }
    }

    /// Hands one datagram to the receiver and checks the outcome.
    fn deliver(&mut self, bytes: Vec<u8>) {
        let auth = self.authentic(&bytes);
        if let Some(h) = &auth {
            if h.kind == Kind::Data && !self.harness_sealed.contains(&bytes) {
                self.foreign_frames.insert(h.session);
            }
        }
        let expect = auth.as_ref().map_or(Expect::Reject, |h| self.expect(h));
        let replayed = self.accepted.contains(&bytes);
        let floor_before = self.model.floor;
        let before = self.rx.counters().clone();
        let mut buf = bytes.clone();
        self.rx.handle(self.now, &mut buf);
        let after = self.rx.counters().clone();
        assert_eq!(after.datagrams, before.datagrams + 1);
        assert_eq!(after.bytes, before.bytes + bytes.len() as u64);
        let (drops_before, drops_after) = (pre_auth_drops(&before), pre_auth_drops(&after));
        assert!(
            drops_after <= drops_before + 1,
            "one datagram counted under {} pre-authentication reasons",
            drops_after - drops_before
        );
        // An authentic packet number above MAX_COUNTER opens but is refused as malformed.
        let beyond_cap = auth.as_ref().is_some_and(|h| h.packet_number > MAX_COUNTER);
        let accepted = drops_after == drops_before && !beyond_cap;
        if beyond_cap && drops_after == drops_before {
            assert_eq!(
                after.drop_malformed,
                before.drop_malformed + 1,
                "packet number beyond the cap"
            );
        }
        if let Some(f) = self.rx.take_floor_update() {
            self.model.floor = Some(f);
            self.persisted = Some(f);
        }
        let events = self.drain();
        if trace() {
            eprintln!(
                "deliver {} bytes {:?}: {} (expected {expect:?}{}), floor {:?}, events {events:?}",
                bytes.len(),
                Header::parse(&bytes),
                if accepted { "accepted" } else { "refused" },
                if replayed { ", a replay" } else { "" },
                self.model.floor,
            );
        }
        if !accepted {
            assert!(
                expect != Expect::Accept,
                "authentic fresh datagram refused: {auth:?}, model current {:?} floor {:?}, counters {after:?}",
                self.model.current,
                self.model.floor
            );
            assert!(events.is_empty(), "refused datagram produced events: {events:?}");
            self.check_state();
            return;
        }
        let Some(h) = auth else {
            panic!("accepted a datagram that does not authenticate under a held key: {bytes:02x?}");
        };
        if replayed {
            panic!(
                "replay accepted: {h:?}, model current {:?}, floor before {floor_before:?}",
                self.model.current
            );
        }
        assert!(
            expect != Expect::Reject,
            "datagram accepted against the session/replay rules: {h:?}, model current {:?} retired {:?} floor {:?} highest {}",
            self.model.current,
            self.model.retired,
            self.model.floor,
            self.model.highest
        );
        self.accepted.insert(bytes);
        self.model.any_accepted = true;
        let pn = h.packet_number;
        match self.model.current {
            Some((s, _)) if s == h.session => {
                self.model.seen.insert(pn);
                self.model.highest = self.model.highest.max(pn);
            }
            previous => {
                let previous = previous.map(|(s, _)| s);
                if let Some(old) = previous {
                    if self.model.retired.len() >= RETIRED_SESSIONS {
                        self.model.retired.pop_front();
                    }
                    self.model.retired.push_back(old);
                }
                self.model.current = Some((h.session, h.key_id));
                self.model.seen = HashSet::from([pn]);
                self.model.highest = pn;
                self.expect_start = Some((h.session, previous));
            }
        }
        let highest = self.max_accepted.entry(h.session).or_insert(pn);
        *highest = (*highest).max(pn);
        let floor = self
            .model
            .floor
            .expect("no replay floor after an accepted datagram");
        assert_eq!(floor.session, h.session, "the floor names another session");
        assert!(
            floor.packet_floor > *highest,
            "floor {floor:?} not above accepted packet number {highest}"
        );
        for ev in events {
            self.on_event(ev, true);
        }
        assert!(
            self.expect_start.is_none(),
            "takeover without SessionStarted: {:?}",
            self.expect_start
        );
        self.check_state();
    }

    fn drain(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.rx.poll_event()).collect()
    }

    fn on_event(&mut self, ev: Event, from_datagram: bool) {
        let m = &mut self.model;
        match ev {
            Event::SessionStarted { session, previous } => {
                assert!(from_datagram, "SessionStarted on a timeout");
                assert_eq!(self.expect_start.take(), Some((session, previous)));
                for (id, ch) in &m.channels {
                    assert!(
                        ch.open.is_empty(),
                        "channel {id:08x}: streams {:?} left open across a takeover",
                        ch.open
                    );
                }
                m.channels.clear();
                m.sessions += 1;
            }
            Event::Heartbeat {
                session,
                heartbeat,
                fingerprint_matches,
            } => {
                assert!(from_datagram, "heartbeat event on a timeout");
                assert_eq!(Some(session), m.current.map(|c| c.0));
                assert_eq!(fingerprint_matches, heartbeat.fingerprint == FINGERPRINT);
                assert!(heartbeat.next_block <= MAX_COUNTER);
                m.heartbeats += 1;
            }
            Event::Message {
                channel,
                stream,
                kind,
                seq,
                payload,
            } => {
                assert!(
                    channel == STREAM_CH || channel == DGRAM_CH,
                    "message on {channel:08x}"
                );
                assert!(payload.len() <= MAX_MESSAGE, "message of {} bytes", payload.len());
                let session = m.current.map(|c| c.0).expect("a message outside any session");
                // Messages of real Sender datagrams in the seeds are not the harness's to check.
                let framed = self.fragments.get(&(session, channel, seq));
                assert!(
                    self.foreign_frames.contains(&session) || framed.is_none_or(|f| chained(f, &payload)),
                    "channel {channel:08x} seq {seq}: {} bytes delivered that are not the \
                     fragments framed, in order (a splice)",
                    payload.len()
                );
                assert!(seq <= MAX_COUNTER);
                let ch = m.channels.entry(channel).or_default();
                assert!(
                    seq >= ch.next,
                    "channel {channel:08x}: seq {seq} delivered after {} was resolved",
                    ch.next
                );
                ch.next = seq + 1;
                if channel == DGRAM_CH {
                    assert_eq!(kind, MessageKind::Data, "stream kind on a datagram channel");
                } else {
                    match kind {
                        MessageKind::Open => {
                            assert!(ch.open.insert(stream), "stream {stream} opened twice");
                            assert!(ch.open.len() <= weir::proto::recv::MAX_STREAMS_PER_CHANNEL);
                        }
                        MessageKind::Data => {
                            assert!(ch.open.contains(&stream), "data on stream {stream} not open")
                        }
                        MessageKind::End | MessageKind::Abort => {
                            assert!(ch.open.remove(&stream), "{kind:?} of stream {stream} not open")
                        }
                    }
                }
                m.messages += 1;
            }
            Event::Lost {
                channel,
                first_seq,
                count,
            } => {
                assert!(
                    channel == STREAM_CH || channel == DGRAM_CH,
                    "loss on {channel:08x}"
                );
                let ch = m.channels.entry(channel).or_default();
                assert!(count >= 1, "empty loss");
                assert!(
                    first_seq >= ch.next,
                    "channel {channel:08x}: loss from {first_seq} after {} was resolved",
                    ch.next
                );
                let end = first_seq.checked_add(count).expect("loss range overflows");
                assert!(end <= MAX_COUNTER + 1, "loss beyond the counter cap");
                ch.next = end;
                // Every stream open on the channel may have lost data: all must break.
                ch.open.clear();
                m.lost = m.lost.saturating_add(count);
            }
            Event::StreamBroken { channel, stream } => {
                assert_eq!(channel, STREAM_CH, "stream broken on a datagram channel");
                m.channels.entry(channel).or_default().open.remove(&stream);
                m.broken += 1;
            }
        }
    }

    fn check_state(&self) {
        let c = self.rx.counters();
        let m = &self.model;
        assert_eq!(c.messages, m.messages, "messages counter vs events");
        assert_eq!(c.messages_lost, m.lost, "messages_lost counter vs events");
        assert_eq!(c.streams_broken, m.broken, "streams_broken counter vs events");
        assert_eq!(c.heartbeats, m.heartbeats, "heartbeats counter vs events");
        assert_eq!(c.sessions, m.sessions, "sessions counter vs events");
        assert_eq!(self.rx.session(), m.current.map(|s| s.0));
        let pending = self.rx.pending_blocks();
        assert!(
            pending <= MAX_PENDING_BYTES / 4 + 1,
            "{pending} blocks pending with {MAX_PENDING_BYTES} bytes of reassembly memory"
        );
        if m.current.is_none() {
            assert_eq!(pending, 0);
            assert!(self.rx.poll_timeout().is_none());
        }
    }

    /// Advances the clock; runs `handle_timeout` when the receiver's timer is due, as a shell
    /// would.
    fn advance(&mut self, millis: u64) {
        self.now += Duration::from_millis(millis);
        if self.rx.poll_timeout().is_some_and(|t| t <= self.now) {
            self.rx.handle_timeout(self.now);
            if let Some(t) = self.rx.poll_timeout() {
                assert!(t > self.now, "handle_timeout left a timeout due: would spin");
            }
            let events = self.drain();
            assert!(
                self.model.any_accepted || events.is_empty(),
                "events without any authenticated datagram"
            );
            for ev in events {
                self.on_event(ev, false);
            }
            self.check_state();
        }
    }

    /// Builds the header, appends `body` and seals it as `seal` says.
    fn seal(&mut self, seal: &Seal, natural: Kind, body: &[u8]) -> Vec<u8> {
        let session = SESSIONS[usize::from(seal.session & 3)];
        let s = &mut self.senders[usize::from(seal.session & 3)];
        let pn = match seal.pn {
            Pn::Next => s.next_pn,
            Pn::Back(m) => s.next_pn.saturating_sub(u64::from(m)),
            Pn::Ahead(m) => s.next_pn.saturating_add(u64::from(m)),
            Pn::Explicit(pn) => pn,
        };
        s.next_pn = s.next_pn.max(pn.saturating_add(1));
        let key = seal.key.key();
        let header = Header {
            version: seal.version.unwrap_or(VERSION),
            kind: seal.kind.map_or(natural, Kind::from),
            key_id: key.0,
            session,
            packet_number: pn,
        };
        let mut d = Vec::with_capacity(HEADER_LEN + body.len() + TAG_LEN);
        header.write(&mut d);
        d.extend_from_slice(body);
        self.session_key(key, session)
            .seal(pn, &mut d, 0)
            .expect("sealing failed");
        if self.sealed_log.len() < SEALED_LOG {
            self.sealed_log.push(d.clone());
        } else {
            self.sealed_log[self.sealed_count % SEALED_LOG] = d.clone();
        }
        self.sealed_count += 1;
        self.harness_sealed.insert(d.clone());
        d
    }

    fn sealed_record(&mut self, seal: &Seal, body: &Body) {
        let s = &self.senders[usize::from(seal.session & 3)];
        let mut bytes = Vec::new();
        let natural = match body {
            Body::Symbol {
                block,
                index,
                k,
                r,
                bytes: symbol,
            } => {
                SymbolHeader {
                    block: *block,
                    index: u16::from(*index),
                    k: u16::from(*k),
                    r: u16::from(*r),
                }
                .write(&mut bytes);
                bytes.extend_from_slice(symbol);
                Kind::Data
            }
            Body::Heartbeat(spec) => {
                let counters = spec.counters.unwrap_or_default();
                let next_seq = |ch: u32| s.next_seq.get(&ch).copied().unwrap_or(0);
                Heartbeat {
                    fingerprint: if spec.wrong_fingerprint {
                        [0xee; 16]
                    } else {
                        FINGERPRINT
                    },
                    next_block: spec.next_block.unwrap_or(s.next_block),
                    datagrams_sent: counters[0],
                    bytes_sent: counters[1],
                    messages_sent: counters[2],
                    messages_dropped: counters[3],
                    channels: match &spec.channels {
                        Some(list) => list.iter().map(|(c, seq)| (channel_of(*c), *seq)).collect(),
                        None => vec![(STREAM_CH, next_seq(STREAM_CH)), (DGRAM_CH, next_seq(DGRAM_CH))],
                    },
                }
                .write(&mut bytes);
                // The fifth value appends 0..=3 junk bytes: the body length must be exact.
                bytes.resize(bytes.len() + (counters[4] & 3) as usize, 0);
                Kind::Heartbeat
            }
            Body::Garbage(garbage) => {
                bytes.extend_from_slice(garbage);
                Kind::Data
            }
            Body::Empty => Kind::Data,
        };
        let d = self.seal(seal, natural, &bytes);
        self.deliver(d);
    }

    fn block_record(
        &mut self,
        seal: &Seal,
        block: BlockId,
        shape: u8,
        frames: &[weir_fuzz::rx::FrameSpec],
        lost: &[u8],
        order: u8,
    ) {
        let session = SESSIONS[usize::from(seal.session & 3)];
        let s = &mut self.senders[usize::from(seal.session & 3)];
        let id = match block {
            BlockId::Next => {
                let b = s.next_block;
                s.next_block = s.next_block.saturating_add(1);
                b
            }
            BlockId::Old(n) => s.next_block.saturating_sub(u64::from(n)),
            BlockId::Gap(n) => {
                let b = s.next_block.saturating_add(u64::from(n));
                s.next_block = b.saturating_add(1);
                b
            }
            BlockId::Explicit(b) => b,
        };
        let mut data = Vec::new();
        for f in frames {
            let channel = channel_of(f.channel);
            let next = s.next_seq.entry(channel).or_insert(0);
            let seq = f.seq.unwrap_or(*next);
            if f.seq.is_none() && f.last {
                *next = next.saturating_add(1);
            }
            let bytes = f.payload.bytes();
            let slot = s.next_offset.entry((channel, seq)).or_insert(1);
            let offset = if f.first { 0 } else { *slot };
            *slot = offset.saturating_add(bytes.len() as u32).max(1);
            self.fragments
                .entry((session, channel, seq))
                .or_default()
                .push((offset, bytes.clone()));
            FrameHeader {
                channel,
                stream: u32::from(f.stream),
                seq,
                kind: match f.kind {
                    FrameKind::Data => MessageKind::Data,
                    FrameKind::Open => MessageKind::Open,
                    FrameKind::End => MessageKind::End,
                    FrameKind::Abort => MessageKind::Abort,
                },
                offset,
                last: f.last,
            }
            .write(&bytes, &mut data);
        }
        let (k, r, extra) = shape_of(shape);
        let symbol_size = data.len().div_ceil(usize::from(k)).max(1) + extra;
        let total = usize::from(k + r);
        data.resize(total * symbol_size, 0);
        self.fec
            .encode(k, r, &mut data, symbol_size)
            .expect("encode of a valid shape failed");
        let mut indices: Vec<usize> = (0..total)
            .filter(|i| lost.get(i / 8).is_none_or(|b| b & (1 << (i % 8)) == 0))
            .collect();
        if order & 1 != 0 {
            indices.reverse();
        }
        for (n, i) in indices.into_iter().enumerate() {
            if n > 0 {
                self.advance(u64::from(order >> 2));
            }
            let mut body = Vec::with_capacity(14 + symbol_size);
            SymbolHeader {
                block: id,
                index: i as u16,
                k,
                r,
            }
            .write(&mut body);
            body.extend_from_slice(&data[i * symbol_size..(i + 1) * symbol_size]);
            // The record's packet-number mode applies to its first symbol only.
            let this = Seal {
                pn: if n == 0 { seal.pn } else { Pn::Next },
                ..*seal
            };
            let d = self.seal(&this, Kind::Data, &body);
            if order & 2 != 0 {
                self.deliver(d.clone());
            }
            self.deliver(d);
        }
    }

    fn restart(&mut self) {
        self.restart_floor = self.persisted;
        self.rx = Receiver::new(config(self.persisted));
        self.model = Model::new(self.persisted);
        self.check_state();
    }

    fn run(&mut self, record: &Record) {
        if trace() {
            eprintln!("record {record:?}");
        }
        let dt = match record {
            Record::Raw { dt, .. }
            | Record::Sealed { dt, .. }
            | Record::Block { dt, .. }
            | Record::Replay { dt, .. }
            | Record::Tick { dt }
            | Record::Restart { dt } => *dt,
        };
        self.advance(dt_millis(dt));
        match record {
            Record::Raw { bytes, .. } => self.deliver(bytes.clone()),
            Record::Sealed { seal, body, .. } => self.sealed_record(seal, body),
            Record::Block {
                seal,
                block,
                shape,
                frames,
                lost,
                order,
                ..
            } => self.block_record(seal, *block, *shape, frames, lost, *order),
            Record::Replay { index, .. } => {
                if !self.sealed_log.is_empty() {
                    let d = self.sealed_log[usize::from(*index) % self.sealed_log.len()].clone();
                    self.deliver(d);
                }
            }
            Record::Tick { .. } => {}
            Record::Restart { .. } => self.restart(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut h = Harness::new();
    for record in parse_all(data) {
        h.run(&record);
    }
});
