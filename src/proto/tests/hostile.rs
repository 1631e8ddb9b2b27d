//! Hostile datagrams against a [`Receiver`] while a real sender's traffic keeps flowing.
//!
//! Each class of bad input (random bytes, truncations, bit flips, wrong or unknown keys,
//! replays, stale and retired sessions, unknown versions and kinds) is fed between good
//! datagrams. For every hostile datagram the tests check that exactly the drop counter
//! `PROTOCOL.md` names for it moved, by one, and nothing else: no event, no new session, no
//! pending block. At the end every message the good sender sent must have arrived intact, and
//! nothing else may have been delivered.
//!
//! The expected counter of a datagram comes from [`Bench::expect`], the receiver's order of
//! checks as `PROTOCOL.md` states it; per class, the totals are also checked against counts
//! derived from the class itself (e.g. a truncation shorter than 36 bytes is `short`).
//!
//! The last tests play a compromised sender that holds the key: authenticated but malformed
//! bodies and frames, and block ids, sequence numbers and heartbeat counters at and beyond
//! their cap, which must neither panic nor stall the receiver.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::sim::{receiver, sender, test_key, Outcome, DGRAM_CH, STREAM_CH};
use crate::keys::LinkKey;
use crate::proto::frame::{FrameHeader, MessageKind};
use crate::proto::reader::Reader;
use crate::proto::recv::{Counters, Event, Receiver};
use crate::proto::replay::WINDOW;
use crate::proto::seal::SessionKey;
use crate::proto::send::{Sender, SenderConfig};
use crate::proto::wire::{Header, Heartbeat, Kind, SymbolHeader, HEADER_LEN, MAX_COUNTER, TAG_LEN, VERSION};

/// Repair overhead of every sender here: any one lost symbol of a block is recovered.
const REPAIR: u16 = 25;
/// A session start time (Unix seconds).
const T: u64 = 1_700_000_000;
/// The shortest datagram that is not `drop_short`.
const MIN_LEN: usize = HEADER_LEN + TAG_LEN;

fn session_at(start: u64, random: u32) -> u64 {
    (start << 32) | u64::from(random)
}

fn start_of(session: u64) -> u64 {
    session >> 32
}

/// A sender like `sim::sender` but sealing with `key`.
fn sender_with(key: LinkKey, session: u64) -> Sender {
    Sender::new(SenderConfig {
        key,
        session,
        datagram_budget: 1472,
        max_source_symbols: 64,
        repair_percent: REPAIR,
        flush: Duration::from_millis(1),
        heartbeat: Duration::from_millis(100),
        fingerprint: [9; 16],
        channels: vec![STREAM_CH, DGRAM_CH],
        max_message: 1 << 20,
    })
    .unwrap()
}

fn header(d: &[u8]) -> Header {
    Header::parse(d).unwrap()
}

type Messages = BTreeMap<(u32, u64), (u32, MessageKind, Vec<u8>)>;

/// A sender and the messages it was given: datagrams and, if `streams`, one TCP-like stream
/// at a time on the stream channel.
struct Source {
    tx: Sender,
    rng: ChaCha8Rng,
    streams: bool,
    open: Option<u32>,
    next_stream: u32,
    sent: Messages,
    queue: VecDeque<Vec<u8>>,
}

impl Source {
    fn new(tx: Sender, seed: u64, streams: bool) -> Self {
        Self {
            tx,
            rng: ChaCha8Rng::seed_from_u64(seed),
            streams,
            open: None,
            next_stream: 1,
            sent: BTreeMap::new(),
            queue: VecDeque::new(),
        }
    }

    fn good(session: u64, seed: u64) -> Self {
        Self::new(sender(session, REPAIR), seed, true)
    }

    fn push(&mut self, now: Instant, channel: u32, stream: u32, kind: MessageKind, payload: Vec<u8>) {
        let seq = self.tx.push(now, channel, stream, kind, &payload).unwrap();
        let prev = self.sent.insert((channel, seq), (stream, kind, payload));
        assert!(prev.is_none());
    }

    /// Frames one random message, closes its block and queues every datagram due.
    fn produce(&mut self, now: Instant) {
        let roll = self.rng.random_range(0..10);
        if self.streams && roll < 4 {
            match self.open {
                None => {
                    let s = self.next_stream;
                    self.next_stream += 1;
                    self.open = Some(s);
                    self.push(now, STREAM_CH, s, MessageKind::Open, Vec::new());
                }
                Some(s) if roll == 0 => {
                    self.open = None;
                    self.push(now, STREAM_CH, s, MessageKind::End, Vec::new());
                }
                Some(s) => {
                    let len = self.rng.random_range(1..5000);
                    let payload = (0..len).map(|_| self.rng.random()).collect();
                    self.push(now, STREAM_CH, s, MessageKind::Data, payload);
                }
            }
        } else {
            let len = self.rng.random_range(0..3000);
            let payload = (0..len).map(|_| self.rng.random()).collect();
            self.push(now, DGRAM_CH, 0, MessageKind::Data, payload);
        }
        self.tx.flush();
        self.poll(now);
    }

    fn poll(&mut self, now: Instant) {
        let mut buf = Vec::new();
        while self.tx.poll_transmit(now, &mut buf).is_some() {
            self.queue.push_back(std::mem::take(&mut buf));
        }
    }

    fn next(&mut self, now: Instant) -> Vec<u8> {
        while self.queue.is_empty() {
            self.produce(now);
        }
        self.queue.pop_front().unwrap()
    }

    /// Removes and returns the first queued datagram (producing more as needed) that `want`
    /// accepts; the datagrams before it stay queued in order.
    fn take_where(&mut self, now: Instant, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        for _ in 0..1000 {
            if let Some(i) = self.queue.iter().position(|d| want(d)) {
                return self.queue.remove(i).unwrap();
            }
            self.produce(now);
        }
        panic!("the sender never produced the wanted datagram");
    }

    /// The packet number of the next queued datagram.
    fn upcoming_pn(&mut self, now: Instant) -> u64 {
        while self.queue.is_empty() {
            self.produce(now);
        }
        header(&self.queue[0]).packet_number
    }

    /// Ends the open stream and queues everything still held.
    fn finish(&mut self, now: Instant) {
        if let Some(s) = self.open.take() {
            self.push(now, STREAM_CH, s, MessageKind::End, Vec::new());
        }
        self.tx.flush();
        self.poll(now);
    }
}

/// The drop counters that are not zero, by name.
fn drops(c: &Counters) -> BTreeMap<&'static str, u64> {
    c.drops().into_iter().filter(|(_, n)| *n > 0).collect()
}

/// How each drop counter moved from `before` to `after`.
fn drop_delta(before: &Counters, after: &Counters) -> BTreeMap<&'static str, u64> {
    let before: BTreeMap<_, _> = before.drops().into_iter().collect();
    after
        .drops()
        .into_iter()
        .map(|(name, n)| (name, n - before[name]))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn counts<const N: usize>(pairs: [(&'static str, u64); N]) -> BTreeMap<&'static str, u64> {
    pairs.into_iter().filter(|(_, n)| *n > 0).collect()
}

/// A receiver fed by a good source, with a record of everything it reported.
struct Bench {
    rx: Receiver,
    now: Instant,
    good: Source,
    /// Good datagrams delivered, in order, for replays.
    captured: Vec<Vec<u8>>,
    /// (session, packet number) of every good datagram the receiver accepted.
    accepted: BTreeSet<(u64, u64)>,
    /// What the receiver reported, per session.
    outcomes: BTreeMap<u64, Outcome>,
    event_session: Option<u64>,
    /// Sessions the receiver reported as replaced.
    retired: Vec<u64>,
    /// Key ids in the receiver's key file.
    known_keys: Vec<u16>,
    hostile_fed: u64,
}

impl Bench {
    fn new(good: Source) -> Self {
        Self {
            rx: receiver(),
            now: Instant::now(),
            good,
            captured: Vec::new(),
            accepted: BTreeSet::new(),
            outcomes: BTreeMap::new(),
            event_session: None,
            retired: Vec::new(),
            known_keys: vec![test_key().id],
            hostile_fed: 0,
        }
    }

    /// A bench whose good session is established by a few datagrams.
    fn established(seed: u64) -> Self {
        let mut b = Self::new(Source::good(session_at(T, 0x1234_5678), seed));
        b.deliver_good(20);
        assert_eq!(b.rx.session(), Some(b.good.tx.session()));
        b
    }

    fn session(&self) -> u64 {
        self.good.tx.session()
    }

    /// Drains the receiver's events; returns how many there were.
    fn absorb(&mut self) -> usize {
        let mut n = 0;
        while let Some(ev) = self.rx.poll_event() {
            n += 1;
            match ev {
                Event::SessionStarted { session, previous } => {
                    self.event_session = Some(session);
                    self.retired.extend(previous);
                }
                Event::Message {
                    channel,
                    stream,
                    kind,
                    seq,
                    payload,
                } => {
                    let s = self.event_session.expect("message before any session");
                    let out = self.outcomes.entry(s).or_default();
                    let prev = out.delivered.insert((channel, seq), (stream, kind, payload));
                    assert!(prev.is_none(), "{channel:x}/{seq} delivered twice");
                }
                Event::Lost {
                    channel,
                    first_seq,
                    count,
                } => {
                    let s = self.event_session.expect("loss before any session");
                    let out = self.outcomes.entry(s).or_default();
                    out.lost.entry(channel).or_default().push((first_seq, count));
                }
                Event::StreamBroken { channel, stream } => {
                    if let Some(s) = self.event_session {
                        self.outcomes.entry(s).or_default().broken.push((channel, stream));
                    }
                }
                Event::Heartbeat { .. } => {}
            }
        }
        n
    }

    /// Hands one good datagram to the receiver, which must accept it without any drop.
    fn deliver(&mut self, d: Vec<u8>) {
        let h = header(&d);
        let before = self.rx.counters().clone();
        self.rx.handle(self.now, &mut d.clone());
        assert_eq!(
            drop_delta(&before, self.rx.counters()),
            BTreeMap::new(),
            "good datagram (session {:x}, pn {}) dropped",
            h.session,
            h.packet_number
        );
        assert_eq!(self.rx.session(), Some(h.session));
        self.accepted.insert((h.session, h.packet_number));
        self.captured.push(d);
        self.now += Duration::from_micros(10);
        self.absorb();
    }

    fn deliver_good(&mut self, n: usize) {
        for _ in 0..n {
            let d = self.good.next(self.now);
            self.deliver(d);
        }
    }

    /// The drop counter `PROTOCOL.md` names for an unauthenticated datagram `d`, in the
    /// receiver's current state ("receiver's order of checks").
    fn expect(&self, d: &[u8]) -> &'static str {
        if d.len() < MIN_LEN {
            return "short";
        }
        let h = header(d);
        if h.version != VERSION {
            return "version";
        }
        if let Kind::Unknown(_) = h.kind {
            return "kind";
        }
        match self.rx.session() {
            Some(current) if current == h.session => {
                if h.key_id != test_key().id {
                    // Within the current session only its own key id is valid.
                    return "forged";
                }
                let highest = self
                    .accepted
                    .range((current, 0)..=(current, u64::MAX))
                    .next_back()
                    .map_or(0, |(_, pn)| *pn);
                if h.packet_number <= highest {
                    let behind = highest - h.packet_number;
                    if behind > WINDOW {
                        return "too_old";
                    }
                    assert!(
                        behind < WINDOW - 64,
                        "test bug: pn {} is in the window's ragged edge",
                        h.packet_number
                    );
                    if self.accepted.contains(&(current, h.packet_number)) {
                        return "replay";
                    }
                }
                "forged"
            }
            current => {
                let older = current.is_some_and(|c| start_of(h.session) < start_of(c));
                if older || self.retired.contains(&h.session) {
                    "stale_session"
                } else if !self.known_keys.contains(&h.key_id) {
                    "unknown_key"
                } else {
                    "forged"
                }
            }
        }
    }

    /// Feeds one hostile datagram: exactly `expected` must count it, and nothing else may
    /// change (no event, no session, no pending block, no other counter).
    fn hostile(&mut self, d: &[u8], expected: &'static str) {
        let before = self.rx.counters().clone();
        let session = self.rx.session();
        let pending = self.rx.pending_blocks();
        self.rx.handle(self.now, &mut d.to_vec());
        let after = self.rx.counters().clone();
        let delta = drop_delta(&before, &after);
        assert_eq!(
            delta,
            counts([(expected, 1)]),
            "hostile datagram of {} bytes (header {:?})",
            d.len(),
            Header::parse(d)
        );
        assert_eq!(
            self.rx.session(),
            session,
            "a hostile datagram changed the session"
        );
        assert_eq!(
            self.rx.pending_blocks(),
            pending,
            "a hostile datagram touched reassembly"
        );
        let changed_only_drops = Counters {
            datagrams: before.datagrams + 1,
            bytes: before.bytes + d.len() as u64,
            ..before.clone()
        };
        let mut after_without_drops = after.clone();
        for (name, _) in delta {
            match name {
                "short" => after_without_drops.drop_short -= 1,
                "version" => after_without_drops.drop_version -= 1,
                "kind" => after_without_drops.drop_kind -= 1,
                "unknown_key" => after_without_drops.drop_unknown_key -= 1,
                "stale_session" => after_without_drops.drop_stale_session -= 1,
                "replay" => after_without_drops.drop_replay -= 1,
                "too_old" => after_without_drops.drop_too_old -= 1,
                "forged" => after_without_drops.drop_forged -= 1,
                other => panic!("unexpected drop {other}"),
            }
        }
        assert_eq!(
            after_without_drops, changed_only_drops,
            "a hostile datagram moved a counter"
        );
        assert_eq!(self.absorb(), 0, "a hostile datagram produced an event");
        self.hostile_fed += 1;
        self.now += Duration::from_micros(1);
    }

    /// Feeds `d`, expecting what [`Bench::expect`] says; returns that.
    fn hostile_auto(&mut self, d: &[u8]) -> &'static str {
        let expected = self.expect(d);
        self.hostile(d, expected);
        expected
    }

    /// Feeds every datagram with a good one after each `every`; returns the expected drops.
    fn interleave(&mut self, hostiles: &[Vec<u8>], every: usize) -> BTreeMap<&'static str, u64> {
        let mut expected = BTreeMap::new();
        for (i, d) in hostiles.iter().enumerate() {
            *expected.entry(self.hostile_auto(d)).or_insert(0) += 1;
            if (i + 1) % every == 0 {
                self.deliver_good(1);
            }
        }
        expected
    }

    /// Ends the good traffic, lets time pass, and checks that every good message arrived
    /// intact, none was reported lost, and nothing else was delivered in its session.
    fn finish(mut self) -> Self {
        self.good.finish(self.now);
        while let Some(d) = self.good.queue.pop_front() {
            self.deliver(d);
        }
        for _ in 0..3 {
            self.now += Duration::from_millis(150);
            self.good.poll(self.now);
            while let Some(d) = self.good.queue.pop_front() {
                self.deliver(d);
            }
            self.rx.handle_timeout(self.now + Duration::from_millis(30));
            self.absorb();
        }
        let session = self.session();
        let outcome = self.outcomes.remove(&session).unwrap_or_default();
        check_exactly(&outcome, &self.good.sent, "the good session");
        assert_eq!(self.rx.pending_blocks(), 0, "blocks left in reassembly");
        assert_eq!(self.rx.counters().blocks_lost, 0);
        self.outcomes.insert(session, outcome);
        self
    }
}

/// Every message in `sent` was delivered intact, nothing else was, nothing was lost or broken.
fn check_exactly(outcome: &Outcome, sent: &Messages, what: &str) {
    assert!(outcome.lost.is_empty(), "{what}: losses {:?}", outcome.lost);
    assert!(
        outcome.broken.is_empty(),
        "{what}: broken streams {:?}",
        outcome.broken
    );
    let got: Vec<_> = outcome.delivered.keys().collect();
    let want: Vec<_> = sent.keys().collect();
    assert!(
        got == want,
        "{what}: delivered {} messages, sent {}",
        got.len(),
        want.len()
    );
    for (key, (stream, kind, payload)) in sent {
        let (s, k, p) = &outcome.delivered[key];
        assert!(
            (s, k) == (stream, kind) && p == payload,
            "{what}: message {key:x?} differs from what was sent"
        );
    }
}

/// A datagram with a well-formed header and `len` bytes in all.
fn with_header(h: Header, len: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut d = Vec::with_capacity(len);
    h.write(&mut d);
    d.truncate(len);
    while d.len() < len {
        d.push(rng.random());
    }
    d
}

/// The symbol header of a good data datagram, opened with the test key.
fn symbol_of(d: &[u8]) -> Option<SymbolHeader> {
    let h = header(d);
    if h.kind != Kind::Data {
        return None;
    }
    let key = SessionKey::derive(&test_key(), h.session).ok()?;
    let mut copy = d.to_vec();
    let body = key.open(h.packet_number, &mut copy).ok()?;
    SymbolHeader::parse(&mut Reader::new(body))
}

fn is_data(d: &[u8]) -> bool {
    header(d).kind == Kind::Data
}

// ---------------------------------------------------------------------------------------------
// Unauthenticated hostile datagrams.
// ---------------------------------------------------------------------------------------------

#[test]
fn random_bytes_of_every_length() {
    let mut b = Bench::established(1);
    let mut rng = ChaCha8Rng::seed_from_u64(0xbad_5eed);
    let before = b.rx.counters().clone();

    // Pure noise.
    let noise: Vec<Vec<u8>> = (0..=2000)
        .map(|len| (0..len).map(|_| rng.random()).collect())
        .collect();
    let mut expected = b.interleave(&noise, 8);
    assert_eq!(expected["short"], MIN_LEN as u64, "lengths 0..36");
    assert!(expected["version"] > 1900, "{expected:?}");

    // Noise behind a plausible header of the current session, claiming the packet numbers
    // the good sender is about to use: none may be burnt.
    for len in 0..=2000 {
        let pn = b.good.upcoming_pn(b.now) + rng.random_range(0..4);
        let kind = if rng.random_bool(0.5) {
            Kind::Data
        } else {
            Kind::Heartbeat
        };
        let h = Header {
            version: VERSION,
            kind,
            key_id: test_key().id,
            session: b.session(),
            packet_number: pn,
        };
        let d = with_header(h, len, &mut rng);
        let e = b.hostile_auto(&d);
        assert_eq!(e, if len < MIN_LEN { "short" } else { "forged" });
        *expected.entry(e).or_insert(0) += 1;
        if len % 8 == 0 {
            b.deliver_good(1);
        }
    }

    // Noise behind a plausible header of a newer session that would replace the current one.
    for len in 0..=2000 {
        let h = Header {
            version: VERSION,
            kind: Kind::Data,
            key_id: test_key().id,
            session: session_at(T + 1 + rng.random_range(0..1000), rng.random()),
            packet_number: rng.random_range(0..1000),
        };
        let d = with_header(h, len, &mut rng);
        let e = b.hostile_auto(&d);
        assert_eq!(e, if len < MIN_LEN { "short" } else { "forged" });
        *expected.entry(e).or_insert(0) += 1;
        if len % 8 == 0 {
            b.deliver_good(1);
        }
    }

    assert_eq!(expected["short"], 3 * MIN_LEN as u64);
    assert_eq!(drop_delta(&before, b.rx.counters()), expected);
    let b = b.finish();
    assert_eq!(b.rx.counters().sessions, 1);
}

#[test]
fn every_truncation_of_valid_datagrams() {
    let mut b = Bench::new(Source::good(session_at(T, 7), 2));

    // Before any session: every prefix of the first datagram (a heartbeat).
    let first = b.good.next(b.now);
    assert_eq!(header(&first).kind, Kind::Heartbeat);
    let before = b.rx.counters().clone();
    for len in 0..first.len() {
        b.hostile_auto(&first[..len]);
    }
    let short = MIN_LEN as u64;
    let rest = (first.len() - MIN_LEN) as u64;
    assert_eq!(
        drop_delta(&before, b.rx.counters()),
        counts([("short", short), ("forged", rest)])
    );
    assert_eq!(b.rx.session(), None);
    b.deliver(first);
    b.deliver_good(10);

    // Within the session: a large source symbol, a repair symbol, a small symbol and a
    // heartbeat, each truncated before it arrives (the window must not be burnt), then after
    // (every prefix is then a replay, caught before the AEAD). Each is held back only during
    // its own round, so FEC always has what it needs.
    type Pick = fn(&[u8]) -> bool;
    let picks: [(&str, Pick); 4] = [
        ("large source symbol", |d| {
            symbol_of(d).is_some_and(|sh| sh.index < sh.k) && d.len() > 1400
        }),
        ("repair symbol", |d| {
            symbol_of(d).is_some_and(|sh| sh.index >= sh.k)
        }),
        ("small symbol", |d| is_data(d) && d.len() < 200),
        ("heartbeat", |d| header(d).kind == Kind::Heartbeat),
    ];
    for (what, pick) in picks {
        if what == "heartbeat" {
            // Deliver what is queued first: a jump of time with a block's symbols still held
            // back would (rightly) give that block up.
            while let Some(d) = b.good.queue.pop_front() {
                b.deliver(d);
            }
            b.now += Duration::from_millis(100);
            b.good.poll(b.now);
        }
        let d = b.good.take_where(b.now, pick);
        let before = b.rx.counters().clone();
        let prefixes: Vec<Vec<u8>> = (0..d.len()).map(|len| d[..len].to_vec()).collect();
        let expected = b.interleave(&prefixes, 16);
        let rest = (d.len() - MIN_LEN) as u64;
        assert_eq!(expected, counts([("short", short), ("forged", rest)]), "{what}");
        assert_eq!(drop_delta(&before, b.rx.counters()), expected, "{what}");
        b.deliver(d.clone());

        let before = b.rx.counters().clone();
        let expected = b.interleave(&prefixes, 16);
        assert_eq!(expected, counts([("short", short), ("replay", rest)]), "{what}");
        assert_eq!(drop_delta(&before, b.rx.counters()), expected, "{what}");
        // And the datagram itself, once more, is a replay.
        b.hostile(&d, "replay");
    }
    b.finish();
}

/// Flips each bit of `d` in turn and feeds the results, a good datagram after every `every`.
/// Returns the expected counts and checks the header-position rules that do not depend on
/// the receiver's state.
fn flip_every_bit(b: &mut Bench, d: &[u8], every: usize) -> BTreeMap<&'static str, u64> {
    let mut expected = BTreeMap::new();
    let mut session_stale = 0;
    for bit in 0..d.len() * 8 {
        let mut f = d.to_vec();
        f[bit / 8] ^= 1 << (bit % 8);
        let e = b.hostile_auto(&f);
        let byte = bit / 8;
        match byte {
            0 => assert_eq!(e, "version"),
            1 => assert_eq!(e, "kind"),
            4..=11 if e == "stale_session" => session_stale += 1,
            20.. => assert_eq!(e, "forged", "bit {bit} of the sealed body or tag"),
            _ => {}
        }
        *expected.entry(e).or_insert(0) += 1;
        if every > 0 && (bit + 1) % every == 0 {
            b.deliver_good(1);
        }
    }
    // A flip in the start time's 1 bits makes the session older than the current one.
    let h = header(d);
    if b.rx.session() == Some(h.session) {
        assert_eq!(session_stale, start_of(h.session).count_ones());
    } else {
        assert_eq!(session_stale, 0);
    }
    expected
}

#[test]
fn single_bit_flips_at_every_position() {
    let mut b = Bench::new(Source::good(session_at(T, 0x0f0f_0f0f), 3));

    // The first datagram, before any session: key id flips name keys not in the key file.
    let first = b.good.next(b.now);
    let before = b.rx.counters().clone();
    let expected = flip_every_bit(&mut b, &first, 0);
    let bits = first.len() as u64 * 8;
    assert_eq!(
        expected,
        counts([
            ("version", 8),
            ("kind", 8),
            ("unknown_key", 16),
            ("forged", bits - 32)
        ])
    );
    assert_eq!(drop_delta(&before, b.rx.counters()), expected);
    b.deliver(first);
    b.deliver_good(30);

    // Within the session: a large data symbol and a heartbeat, held back while their
    // flipped copies arrive between good traffic, then delivered late.
    let data = b.good.take_where(b.now, |d| is_data(d) && d.len() > 1400);
    b.now += Duration::from_millis(100);
    b.good.poll(b.now);
    let heartbeat = b.good.take_where(b.now, |d| header(d).kind == Kind::Heartbeat);
    for d in [data, heartbeat] {
        let before = b.rx.counters().clone();
        let expected = flip_every_bit(&mut b, &d, 64);
        let stale = u64::from(start_of(header(&d).session).count_ones());
        assert_eq!(expected["version"], 8);
        assert_eq!(expected["kind"], 8);
        assert_eq!(expected["stale_session"], stale);
        // Key id, session (other than stale), packet number and body flips all fail the AEAD,
        // except packet numbers flipped onto ones already seen, which are replays.
        assert_eq!(
            expected["forged"] + expected.get("replay").copied().unwrap_or(0),
            d.len() as u64 * 8 - 16 - stale
        );
        assert_eq!(drop_delta(&before, b.rx.counters()), expected);
        b.deliver(d);
    }
    b.finish();
}

#[test]
fn wrong_secret_with_the_right_key_id_is_forged() {
    let mut b = Bench::established(4);
    let wrong = LinkKey {
        id: test_key().id,
        secret: [0x43; 32],
    };
    let before = b.rx.counters().clone();

    // Same session id as the current one: packet numbers already seen are replays (caught
    // before the AEAD); the others are forgeries, and must not burn the good sender's numbers.
    let mut same = Source::new(sender_with(wrong.clone(), b.session()), 40, true);
    let datagrams: Vec<Vec<u8>> = (0..300).map(|_| same.next(b.now)).collect();
    let expected_same = b.interleave(&datagrams, 2);
    assert!(expected_same["forged"] > 50, "{expected_same:?}");
    assert!(expected_same["replay"] > 10, "{expected_same:?}");

    // A newer session: it would replace the current one if it authenticated.
    let mut newer = Source::new(sender_with(wrong, session_at(T + 60, 1)), 41, true);
    let datagrams: Vec<Vec<u8>> = (0..300).map(|_| newer.next(b.now)).collect();
    let expected_newer = b.interleave(&datagrams, 2);
    assert_eq!(expected_newer, counts([("forged", 300)]));

    let mut expected = expected_same;
    expected.insert("forged", expected["forged"] + 300);
    assert_eq!(drop_delta(&before, b.rx.counters()), expected);
    let b = b.finish();
    assert_eq!(b.rx.counters().sessions, 1);
}

#[test]
fn unknown_key_id_is_dropped() {
    let mut b = Bench::established(5);
    // The right secret under a key id the receiver does not list: the id is bound into the
    // session key, and the receiver never tries a key by its secret alone.
    let unknown = LinkKey {
        id: 9,
        secret: test_key().secret,
    };
    let before = b.rx.counters().clone();
    let mut newer = Source::new(sender_with(unknown.clone(), session_at(T + 60, 2)), 50, true);
    let datagrams: Vec<Vec<u8>> = (0..300).map(|_| newer.next(b.now)).collect();
    let expected = b.interleave(&datagrams, 2);
    assert_eq!(expected, counts([("unknown_key", 300)]));
    assert_eq!(drop_delta(&before, b.rx.counters()), expected);

    // Under the current session id, a key id other than the session's is not looked up at
    // all: the session is bound to its key, so the datagram is counted as forged.
    let before = b.rx.counters().clone();
    // This is checked before the replay window: packet numbers already seen count as forged too.
    let mut same = Source::new(sender_with(unknown, b.session()), 51, true);
    let datagrams: Vec<Vec<u8>> = (0..300).map(|_| same.next(b.now)).collect();
    assert!(b
        .accepted
        .contains(&(b.session(), header(&datagrams[0]).packet_number)));
    let expected = b.interleave(&datagrams, 2);
    assert_eq!(expected, counts([("forged", 300)]));
    assert_eq!(drop_delta(&before, b.rx.counters()), expected);
    let b = b.finish();
    assert_eq!(b.rx.counters().sessions, 1);
}

#[test]
fn exact_replays_of_good_datagrams() {
    let mut b = Bench::new(Source::good(session_at(T, 0xabcd), 6));
    b.deliver_good(400);
    let mut replays = b.captured.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    // Replay in a shuffled order, the session's first datagram included.
    for i in (1..replays.len()).rev() {
        replays.swap(i, rng.random_range(0..=i));
    }
    let before = b.rx.counters().clone();
    let expected = b.interleave(&replays, 3);
    assert_eq!(expected, counts([("replay", replays.len() as u64)]));
    assert_eq!(drop_delta(&before, b.rx.counters()), expected);
    b.finish();
}

#[test]
fn replays_behind_the_window_are_too_old() {
    let mut b = Bench::new(Source::good(session_at(T, 0xabce), 7));
    let window = usize::try_from(WINDOW).unwrap();
    b.deliver_good(window + 400);
    let highest = header(b.captured.last().unwrap()).packet_number;
    let old: Vec<Vec<u8>> = b.captured[..100].to_vec();
    let recent: Vec<Vec<u8>> = b.captured[b.captured.len() - 100..].to_vec();
    for d in &old {
        assert!(header(d).packet_number + WINDOW < highest);
    }
    let before = b.rx.counters().clone();
    let expected = b.interleave(&old, 4);
    assert_eq!(expected, counts([("too_old", 100)]));
    let expected = b.interleave(&recent, 4);
    assert_eq!(expected, counts([("replay", 100)]));
    assert_eq!(
        drop_delta(&before, b.rx.counters()),
        counts([("too_old", 100), ("replay", 100)])
    );
    b.finish();
}

#[test]
fn older_sessions_are_stale() {
    let mut b = Bench::established(8);
    let before = b.rx.counters().clone();
    let current = b.session();
    // A second sender that started earlier: one second, one hour, and with the current
    // session's random bits but an earlier start.
    let mut expected_total = 0;
    for (i, session) in [
        session_at(T - 1, 0xffff_ffff),
        session_at(T - 3600, 1),
        current - (1 << 32),
    ]
    .into_iter()
    .enumerate()
    {
        let mut old = Source::new(sender(session, REPAIR), 80 + i as u64, true);
        let datagrams: Vec<Vec<u8>> = (0..200).map(|_| old.next(b.now)).collect();
        let expected = b.interleave(&datagrams, 2);
        assert_eq!(expected, counts([("stale_session", 200)]));
        expected_total += 200;
    }
    // Stale is decided before the key id is looked up.
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let h = Header {
        version: VERSION,
        kind: Kind::Data,
        key_id: 9,
        session: session_at(T - 1, 5),
        packet_number: 0,
    };
    b.hostile(&with_header(h, 100, &mut rng), "stale_session");
    expected_total += 1;
    assert_eq!(
        drop_delta(&before, b.rx.counters()),
        counts([("stale_session", expected_total)])
    );
    let b = b.finish();
    assert_eq!(b.rx.counters().sessions, 1);
}

#[test]
fn retired_sessions_are_stale_after_a_takeover() {
    // S1, then S2 started in the same second (only the retired list can tell it is old),
    // then S3 a minute later (its start time alone makes S1 and S2 old).
    let s1 = session_at(T, 0xaaaa_aaaa);
    let s2 = session_at(T, 0x5555_5555);
    let s3 = session_at(T + 60, 0x0000_0001);
    let mut b = Bench::new(Source::new(sender(s1, REPAIR), 90, false));
    b.deliver_good(200);
    // S1 sends everything it holds, so the takeover abandons no block.
    b.good.finish(b.now);
    while let Some(d) = b.good.queue.pop_front() {
        b.deliver(d);
    }
    let mut s1_source = std::mem::replace(&mut b.good, Source::new(sender(s2, REPAIR), 91, false));
    let s1_sent = s1_source.sent.clone();
    let s1_captured = std::mem::take(&mut b.captured);
    b.deliver_good(200);
    assert_eq!(b.retired, [s1]);

    let before = b.rx.counters().clone();
    // S1 keeps sending (a sender that was not really stopped), and its old traffic is
    // replayed.
    let fresh: Vec<Vec<u8>> = (0..200).map(|_| s1_source.next(b.now)).collect();
    let expected = b.interleave(&fresh, 2);
    assert_eq!(expected, counts([("stale_session", 200)]));
    let expected = b.interleave(&s1_captured, 2);
    assert_eq!(expected, counts([("stale_session", s1_captured.len() as u64)]));
    assert_eq!(
        drop_delta(&before, b.rx.counters()),
        counts([("stale_session", 200 + s1_captured.len() as u64)])
    );

    // S3 takes over from S2.
    b.good.finish(b.now);
    while let Some(d) = b.good.queue.pop_front() {
        b.deliver(d);
    }
    let mut s2_source = std::mem::replace(&mut b.good, Source::new(sender(s3, REPAIR), 92, true));
    let s2_sent = s2_source.sent.clone();
    let s2_captured = std::mem::take(&mut b.captured);
    b.deliver_good(200);
    assert_eq!(b.retired, [s1, s2]);
    let before = b.rx.counters().clone();
    let fresh: Vec<Vec<u8>> = (0..200).map(|_| s2_source.next(b.now)).collect();
    let mut all = fresh;
    all.extend(s2_captured.iter().cloned());
    all.extend((0..50).map(|_| s1_source.next(b.now)));
    let expected = b.interleave(&all, 2);
    assert_eq!(expected, counts([("stale_session", all.len() as u64)]));
    assert_eq!(drop_delta(&before, b.rx.counters()), expected);

    let b = b.finish();
    assert_eq!(b.rx.counters().sessions, 3);
    check_exactly(&b.outcomes[&s1], &s1_sent, "S1 before the takeover");
    check_exactly(&b.outcomes[&s2], &s2_sent, "S2 before the takeover");
}

#[test]
fn unknown_version_and_kind_bytes() {
    let mut b = Bench::established(10);
    let key = SessionKey::derive(&test_key(), b.session()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let before = b.rx.counters().clone();
    let mut expected = BTreeMap::new();
    // 1 is the version before fragment offsets: its frames would be misread, so it is refused.
    let versions = [0u8, 1, 3, 0x7f, 0x80, 0xff];
    let kinds = [0u8, 3, 4, 0x7f, 0x80, 0xff];
    let mut cases: Vec<(u8, u8, &'static str)> = Vec::new();
    for v in versions {
        for k in [1u8, 2] {
            cases.push((v, k, "version"));
        }
        // The version is checked before the kind.
        cases.push((v, 0xee, "version"));
    }
    for k in kinds {
        cases.push((VERSION, k, "kind"));
    }
    for (version, kind, want) in cases {
        for sealed in [true, false] {
            // Claim the packet number the good sender uses next: dropping for version or
            // kind must not mark it.
            let pn = b.good.upcoming_pn(b.now);
            let h = Header {
                version,
                kind: Kind::from(kind),
                key_id: test_key().id,
                session: b.session(),
                packet_number: pn,
            };
            let mut d = Vec::new();
            h.write(&mut d);
            let body_len = rng.random_range(0..200);
            d.extend((0..body_len).map(|_| rng.random::<u8>()));
            if sealed {
                // Authentic: sealed with the real session key, so only the byte itself is
                // wrong.
                key.seal(pn, &mut d, 0).unwrap();
            } else {
                d.extend((0..TAG_LEN).map(|_| rng.random::<u8>()));
            }
            assert_eq!(b.expect(&d), want);
            b.hostile(&d, want);
            *expected.entry(want).or_insert(0) += 1;
            b.deliver_good(1);
        }
    }
    assert_eq!(drop_delta(&before, b.rx.counters()), expected);
    assert_eq!(expected["version"], 2 * 3 * versions.len() as u64);
    assert_eq!(expected["kind"], 2 * kinds.len() as u64);
    b.finish();
}

#[test]
fn hostile_flood_keeps_reassembly_bounded() {
    // Every class at once, in a seeded random mix, against a receiver in the middle of
    // blocks: reassembly never grows by a hostile datagram, and good traffic is intact.
    let mut b = Bench::established(11);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut older = Source::new(sender(session_at(T - 5, 3), REPAIR), 110, true);
    let mut wrong = Source::new(
        sender_with(
            LinkKey {
                id: test_key().id,
                secret: [1; 32],
            },
            session_at(T + 5, 3),
        ),
        111,
        true,
    );
    let before = b.rx.counters().clone();
    let mut expected: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut max_pending = 0;
    for _ in 0..5000 {
        let d: Vec<u8> = match rng.random_range(0..6) {
            0 => {
                let len = rng.random_range(0..1500);
                (0..len).map(|_| rng.random()).collect()
            }
            1 if !b.captured.is_empty() => b.captured[rng.random_range(0..b.captured.len())].clone(),
            2 => older.next(b.now),
            3 => wrong.next(b.now),
            4 if !b.captured.is_empty() => {
                let mut d = b.captured[rng.random_range(0..b.captured.len())].clone();
                let len = rng.random_range(0..d.len());
                d.truncate(len);
                d
            }
            _ => {
                let mut d = b.good.queue.front().cloned().unwrap_or_else(|| older.next(b.now));
                let bit = rng.random_range(0..d.len() * 8);
                d[bit / 8] ^= 1 << (bit % 8);
                d
            }
        };
        *expected.entry(b.hostile_auto(&d)).or_insert(0) += 1;
        if rng.random_bool(0.3) {
            b.deliver_good(1);
        }
        max_pending = max_pending.max(b.rx.pending_blocks());
    }
    assert_eq!(drop_delta(&before, b.rx.counters()), expected);
    assert!(max_pending <= 1, "pending blocks reached {max_pending}");
    let b = b.finish();
    assert_eq!(b.rx.counters().sessions, 1);
    assert_eq!(b.hostile_fed, 5000);
}

// ---------------------------------------------------------------------------------------------
// A compromised sender: authenticated datagrams with hostile contents. The key holder can
// always disrupt the link (it is the sender); these check that it cannot crash or stall the
// receiver, as the receiver's contract promises, and that what it sends is counted.
// ---------------------------------------------------------------------------------------------

/// Seals `body` as a datagram of `kind` in `session` with the test key.
fn sealed(session: u64, kind: Kind, pn: u64, body: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    Header {
        version: VERSION,
        kind,
        key_id: test_key().id,
        session,
        packet_number: pn,
    }
    .write(&mut d);
    d.extend_from_slice(body);
    SessionKey::derive(&test_key(), session)
        .unwrap()
        .seal(pn, &mut d, 0)
        .unwrap();
    d
}

fn symbol_body(block: u64, index: u16, k: u16, r: u16, symbol: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    SymbolHeader { block, index, k, r }.write(&mut body);
    body.extend_from_slice(symbol);
    body
}

fn heartbeat_body(next_block: u64, channels: Vec<(u32, u64)>) -> Vec<u8> {
    let mut body = Vec::new();
    Heartbeat {
        fingerprint: [9; 16],
        next_block,
        channels,
        ..Heartbeat::default()
    }
    .write(&mut body);
    body
}

/// One source symbol (k = 1, r = 1) holding `frames`, padded to `size`.
fn one_block(frames: &[(FrameHeader, &[u8])], size: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for (h, bytes) in frames {
        h.write(bytes, &mut data);
    }
    data.resize(size.max(data.len()), 0);
    data
}

fn frame(channel: u32, seq: u64) -> FrameHeader {
    FrameHeader {
        channel,
        stream: 0,
        seq,
        kind: MessageKind::Data,
        offset: 0,
        last: true,
    }
}

#[test]
fn authenticated_malformed_bodies_are_counted_not_delivered() {
    let mut b = Bench::established(12);
    let session = b.session();
    // Packet numbers ahead of the good sender but well inside the window, so the good
    // datagrams that follow are still fresh.
    let first_pn = b.good.upcoming_pn(b.now) + 1000;
    let bodies: Vec<(Kind, Vec<u8>)> = vec![
        (Kind::Data, vec![]),
        (Kind::Data, vec![0; 13]),
        (Kind::Data, symbol_body(1 << 20, 0, 1, 1, &[])),
        (Kind::Data, symbol_body(1 << 20, 0, 0, 1, &[1; 10])),
        (Kind::Data, symbol_body(1 << 20, 0, 1, 0, &[1; 10])),
        (Kind::Data, symbol_body(1 << 20, 0, 129, 1, &[1; 10])),
        (Kind::Data, symbol_body(1 << 20, 0, 128, 129, &[1; 10])),
        (Kind::Data, symbol_body(1 << 20, 2, 1, 1, &[1; 10])),
        (Kind::Heartbeat, vec![]),
        (Kind::Heartbeat, heartbeat_body(0, vec![])[..57].to_vec()),
        (Kind::Heartbeat, {
            let mut h = heartbeat_body(0, vec![(DGRAM_CH, 0)]);
            h.pop();
            h
        }),
        (Kind::Heartbeat, {
            let mut h = heartbeat_body(0, vec![]);
            h.push(0);
            h
        }),
    ];
    let before = b.rx.counters().clone();
    for (pn, (kind, body)) in (first_pn..).zip(&bodies) {
        let d = sealed(session, *kind, pn, body);
        let pending = b.rx.pending_blocks();
        let c = b.rx.counters().clone();
        b.rx.handle(b.now, &mut d.clone());
        assert_eq!(
            drop_delta(&c, b.rx.counters()),
            counts([("malformed", 1)]),
            "{kind:?} body {body:02x?}"
        );
        assert_eq!(b.rx.pending_blocks(), pending);
        assert_eq!(b.absorb(), 0);
        b.deliver_good(1);
    }
    assert_eq!(
        drop_delta(&before, b.rx.counters()),
        counts([("malformed", bodies.len() as u64)])
    );
    b.finish();
}

#[test]
fn authenticated_bad_frames_are_counted_not_delivered() {
    let session = session_at(T, 13);
    let mut rx = receiver();
    let now = Instant::now();
    let mut bad_flags = one_block(&[(frame(DGRAM_CH, 0), b"ok")], 0);
    bad_flags.extend_from_slice(&[0xf0, 1, 2, 3]);
    let blocks = [
        one_block(&[(frame(0x3333_3333, 0), b"unknown channel")], 40),
        bad_flags,
        // A frame that runs past the end of its block.
        one_block(&[(frame(DGRAM_CH, 1), b"truncated")], 0)[..25].to_vec(),
    ];
    for (i, data) in blocks.iter().enumerate() {
        let block = i as u64;
        // k = 1, r = 1: the repair symbol of a one-symbol block is the symbol itself.
        for index in 0..2 {
            let d = sealed(
                session,
                Kind::Data,
                2 * block + index,
                &symbol_body(block, index as u16, 1, 1, data),
            );
            rx.handle(now, &mut d.clone());
        }
    }
    let mut delivered = Vec::new();
    while let Some(ev) = rx.poll_event() {
        if let Event::Message { seq, payload, .. } = ev {
            delivered.push((seq, payload));
        }
    }
    // Only the good frame before the bad flags is delivered.
    assert_eq!(delivered, [(0, b"ok".to_vec())]);
    let c = rx.counters();
    assert_eq!(
        drops(c),
        counts([("unknown_channel", 1), ("malformed", 2)]),
        "{c:?}"
    );
    assert_eq!(c.blocks_decoded, 3);
}

/// Runs `f` on a receiver in another thread; fails if it panics or takes longer than 20 s.
fn must_finish(name: &str, f: impl FnOnce(&mut Receiver) + Send + 'static) {
    let (done, wait) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut rx = receiver();
        f(&mut rx);
        let _ = done.send(());
    });
    match wait.recv_timeout(Duration::from_secs(20)) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let panic = handle.join().err().map(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            });
            panic!("{name}: the receiver panicked: {panic:?}");
        }
        // The thread keeps spinning until the test process exits.
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: the receiver stalled"),
    }
}

/// A session whose block 0 is decoded and released, so the head is at block 1.
fn with_block_zero(rx: &mut Receiver, session: u64, now: Instant) {
    let data = one_block(&[(frame(DGRAM_CH, 0), b"zero")], 30);
    let d = sealed(session, Kind::Data, 0, &symbol_body(0, 0, 1, 1, &data));
    rx.handle(now, &mut d.clone());
    assert_eq!(rx.counters().blocks_decoded, 1);
}

fn delivered_seqs(rx: &mut Receiver) -> Vec<u64> {
    let mut seqs = Vec::new();
    while let Some(ev) = rx.poll_event() {
        if let Event::Message { seq, .. } = ev {
            seqs.push(seq);
        }
    }
    seqs
}

// Block ids and sequence numbers are capped at `MAX_COUNTER` (2^62). Before the cap, and before
// runs of lost blocks were given up in one step, the inputs below made the receiver spin for
// ~2^40 iterations or panic on an overflowing `+ 1`; these tests keep it that way.

#[test]
fn authenticated_far_future_block_is_reached_in_one_step() {
    for block in [1u64 << 40, MAX_COUNTER] {
        must_finish("symbol of a far-future block", move |rx| {
            let session = session_at(T, 14);
            let now = Instant::now();
            with_block_zero(rx, session, now);
            assert_eq!(delivered_seqs(rx), [0]);
            let data = one_block(&[(frame(DGRAM_CH, 1), b"far")], 30);
            let d = sealed(session, Kind::Data, 1, &symbol_body(block, 0, 1, 1, &data));
            rx.handle(now, &mut d.clone());
            assert!(rx.pending_blocks() <= 1);
            rx.handle_timeout(now + Duration::from_secs(1));
            // Every block between is lost, exactly, and the far block's message arrives.
            assert_eq!(rx.counters().blocks_lost, block - 1);
            assert_eq!(delivered_seqs(rx), [1]);
            assert_eq!(rx.pending_blocks(), 0);
        });
    }
}

#[test]
fn authenticated_far_future_heartbeat_gives_up_the_gap_in_one_step() {
    for next_block in [1u64 << 40, MAX_COUNTER] {
        must_finish("heartbeat with a far-future next_block", move |rx| {
            let session = session_at(T, 15);
            let now = Instant::now();
            with_block_zero(rx, session, now);
            let d = sealed(session, Kind::Heartbeat, 1, &heartbeat_body(next_block, vec![]));
            rx.handle(now, &mut d.clone());
            rx.handle_timeout(now + Duration::from_secs(1));
            assert_eq!(rx.counters().blocks_lost, next_block - 1);
            assert_eq!(rx.poll_timeout(), None);
        });
    }
}

#[test]
fn authenticated_counters_beyond_the_cap_are_malformed() {
    must_finish(
        "block ids, sequence numbers and heartbeat counters above 2^62",
        |rx| {
            let session = session_at(T, 16);
            let now = Instant::now();
            with_block_zero(rx, session, now);
            let frames = one_block(&[(frame(DGRAM_CH, 1), b"x")], 30);
            let bodies = [
                (Kind::Data, symbol_body(MAX_COUNTER + 1, 0, 1, 1, &frames)),
                (Kind::Data, symbol_body(u64::MAX, 0, 1, 1, &frames)),
                (Kind::Heartbeat, heartbeat_body(MAX_COUNTER + 1, vec![])),
                (Kind::Heartbeat, heartbeat_body(u64::MAX, vec![])),
                (
                    Kind::Heartbeat,
                    heartbeat_body(1, vec![(DGRAM_CH, MAX_COUNTER + 1)]),
                ),
                (Kind::Heartbeat, heartbeat_body(1, vec![(STREAM_CH, u64::MAX)])),
            ];
            for (pn, (kind, body)) in (1..).zip(bodies) {
                let before = rx.counters().clone();
                rx.handle(now, &mut sealed(session, kind, pn, &body));
                assert_eq!(drop_delta(&before, rx.counters()), counts([("malformed", 1)]));
            }
            // A frame whose sequence number is above the cap ends its block's frames.
            for (block, seq) in [(1, MAX_COUNTER + 1), (2, u64::MAX)] {
                let before = rx.counters().clone();
                let data = one_block(&[(frame(DGRAM_CH, seq), b"x")], 30);
                let d = sealed(
                    session,
                    Kind::Data,
                    100 + block,
                    &symbol_body(block, 0, 1, 1, &data),
                );
                rx.handle(now, &mut d.clone());
                assert_eq!(drop_delta(&before, rx.counters()), counts([("malformed", 1)]));
            }
            assert_eq!(delivered_seqs(rx), [0]);
        },
    );
}

#[test]
fn authenticated_counters_at_the_cap_do_not_overflow() {
    must_finish("block id, sequence number and next seq of 2^62", |rx| {
        let session = session_at(T, 17);
        let now = Instant::now();
        // The session's first symbol is of the last block id; its frame has the last seq.
        let data = one_block(&[(frame(DGRAM_CH, MAX_COUNTER), b"last")], 30);
        let d = sealed(session, Kind::Data, 0, &symbol_body(MAX_COUNTER, 0, 1, 1, &data));
        rx.handle(now, &mut d.clone());
        assert_eq!(delivered_seqs(rx), [MAX_COUNTER]);
        // Every channel's whole range reported sent, twice over.
        let hb = heartbeat_body(
            MAX_COUNTER,
            vec![(DGRAM_CH, MAX_COUNTER), (STREAM_CH, MAX_COUNTER)],
        );
        rx.handle(now, &mut sealed(session, Kind::Heartbeat, 1, &hb));
        rx.handle(now, &mut sealed(session, Kind::Heartbeat, 2, &hb));
        rx.handle_timeout(now + Duration::from_secs(1));
        let c = rx.counters();
        assert_eq!(c.messages_lost, 2 * MAX_COUNTER, "{c:?}");
        assert_eq!(c.drop_malformed, 0);
    });
}
