//! Sender and receiver in one process, virtual time, a seeded impairment between them.
//! Checks the protocol's promises: within FEC capacity every message arrives intact; beyond
//! it every loss is reported exactly, nothing corrupt is delivered, and no stream is spliced
//! across a gap.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::keys::LinkKey;
use crate::proto::frame::{MessageKind, FRAME_HEADER_LEN};
use crate::proto::recv::{ChannelSpec, Event, Receiver, ReceiverConfig};
use crate::proto::send::{Sender, SenderConfig};

pub(crate) const STREAM_CH: u32 = 0x1111_1111;
pub(crate) const DGRAM_CH: u32 = 0x2222_2222;

pub(crate) fn test_key() -> LinkKey {
    LinkKey {
        id: 1,
        secret: [0x42; 32],
    }
}

/// How the sender cuts blocks: the datagram budget and the most source symbols per block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub budget: usize,
    pub block_symbols: u16,
}

/// The link's defaults: 1472-byte datagrams, 64 source symbols (about 91 KB) per block.
pub(crate) const DEFAULT_SHAPE: Shape = Shape {
    budget: 1472,
    block_symbols: 64,
};

pub(crate) fn sender(session: u64, repair_percent: u16) -> Sender {
    sender_shaped(session, repair_percent, DEFAULT_SHAPE)
}

pub(crate) fn sender_shaped(session: u64, repair_percent: u16, shape: Shape) -> Sender {
    Sender::new(SenderConfig {
        key: test_key(),
        session,
        datagram_budget: shape.budget,
        max_source_symbols: shape.block_symbols,
        repair_percent,
        flush: Duration::from_millis(1),
        heartbeat: Duration::from_millis(100),
        fingerprint: [9; 16],
        channels: vec![STREAM_CH, DGRAM_CH],
        max_message: 1 << 20,
    })
    .unwrap()
}

pub(crate) fn receiver() -> Receiver {
    Receiver::new(receiver_config())
}

pub(crate) fn receiver_config() -> ReceiverConfig {
    ReceiverConfig {
        keys: vec![test_key()],
        fingerprint: [9; 16],
        channels: vec![
            ChannelSpec {
                id: STREAM_CH,
                streams: true,
                max_message: 1 << 20,
            },
            ChannelSpec {
                id: DGRAM_CH,
                streams: false,
                max_message: 1 << 20,
            },
        ],
        reorder_window: Duration::from_millis(20),
        max_pending_bytes: 8 << 20,
        replay_floor: None,
    }
}

/// How the link misbehaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Impairment {
    /// Probability a datagram is dropped (in the good state, for bursts).
    pub loss: f64,
    /// Mean burst length; 1 means independent losses.
    pub burst: f64,
    /// Probability a datagram is held back and delivered a few positions later.
    pub reorder: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
}

pub(crate) struct Link {
    rng: ChaCha8Rng,
    imp: Impairment,
    in_burst: bool,
    /// Datagrams still to drop in the current run of [`Link::with_runs`].
    run_left: usize,
    /// Datagrams to pass before the next run starts.
    run_in: usize,
    /// (run length, mean datagrams between runs) for [`Link::with_runs`].
    runs: Option<(usize, usize)>,
    /// Positions (0 = the first datagram passed) always dropped.
    fixed: std::ops::Range<usize>,
    passed: usize,
    held: Vec<(usize, Vec<u8>)>,
}

impl Link {
    pub(crate) fn new(seed: u64, imp: Impairment) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            imp,
            in_burst: false,
            run_left: 0,
            run_in: 0,
            runs: None,
            fixed: 0..0,
            passed: 0,
            held: Vec::new(),
        }
    }

    /// A link that also drops runs of exactly `length` consecutive datagrams, `spacing / 2` to
    /// `3 × spacing / 2` datagrams apart (so runs never merge into a longer one), on top of
    /// `imp`.
    pub(crate) fn with_runs(seed: u64, imp: Impairment, length: usize, spacing: usize) -> Self {
        Self {
            runs: Some((length, spacing.max(2))),
            run_in: spacing,
            ..Self::new(seed, imp)
        }
    }

    /// Also drops the datagrams at these positions (0 = the first one passed).
    pub(crate) fn drop_range(&mut self, positions: std::ops::Range<usize>) {
        self.fixed = positions;
    }

    fn in_run(&mut self) -> bool {
        let Some((length, spacing)) = self.runs else {
            return false;
        };
        if self.run_left > 0 {
            self.run_left -= 1;
            return true;
        }
        if self.run_in > 0 {
            self.run_in -= 1;
            return false;
        }
        self.run_in = self.rng.random_range(spacing / 2..=spacing * 3 / 2);
        self.run_left = length.saturating_sub(1);
        length > 0
    }

    /// Passes one datagram; returns what comes out now.
    pub(crate) fn pass(&mut self, d: Vec<u8>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        // Gilbert model: enter a burst with p = loss / burst, leave with p = 1 / burst, so
        // the long-run loss rate is about `loss` and bursts average `burst` datagrams.
        let position = self.passed;
        self.passed += 1;
        let dropped = self.fixed.contains(&position)
            || self.in_run()
            || if self.imp.burst > 1.0 {
                if self.in_burst {
                    self.in_burst = !self.rng.random_bool(1.0 / self.imp.burst);
                } else {
                    self.in_burst = self.rng.random_bool((self.imp.loss / self.imp.burst).min(1.0));
                }
                self.in_burst
            } else {
                self.rng.random_bool(self.imp.loss)
            };
        for h in &mut self.held {
            h.0 = h.0.saturating_sub(1);
        }
        if !dropped {
            if self.rng.random_bool(self.imp.reorder) {
                let delay = self.rng.random_range(1..20);
                self.held.push((delay, d));
            } else {
                if self.rng.random_bool(self.imp.duplicate) {
                    out.push(d.clone());
                }
                out.push(d);
            }
        }
        let (due, keep): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|h| h.0 == 0);
        self.held = keep;
        out.extend(due.into_iter().map(|h| h.1));
        out
    }

    pub(crate) fn drain(&mut self) -> Vec<Vec<u8>> {
        self.held.drain(..).map(|h| h.1).collect()
    }
}

/// What the receiver produced, per channel.
#[derive(Default, Debug)]
pub(crate) struct Outcome {
    pub delivered: BTreeMap<(u32, u64), (u32, MessageKind, Vec<u8>)>,
    pub lost: BTreeMap<u32, Vec<(u64, u64)>>,
    pub broken: Vec<(u32, u32)>,
}

impl Outcome {
    pub(crate) fn absorb(&mut self, rx: &mut Receiver) {
        while let Some(ev) = rx.poll_event() {
            match ev {
                Event::Message {
                    channel,
                    stream,
                    kind,
                    seq,
                    payload,
                } => {
                    let prev = self.delivered.insert((channel, seq), (stream, kind, payload));
                    assert!(prev.is_none(), "message {channel:x}/{seq} delivered twice");
                }
                Event::Lost {
                    channel,
                    first_seq,
                    count,
                } => self.lost.entry(channel).or_default().push((first_seq, count)),
                Event::StreamBroken { channel, stream } => self.broken.push((channel, stream)),
                Event::Heartbeat { .. } | Event::SessionStarted { .. } => {}
            }
        }
    }

    fn lost_seqs(&self, channel: u32) -> Vec<u64> {
        self.lost
            .get(&channel)
            .into_iter()
            .flatten()
            .flat_map(|(f, c)| *f..*f + *c)
            .collect()
    }
}

/// One message as the source produced it.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub channel: u32,
    pub stream: u32,
    pub kind: MessageKind,
    pub payload: Vec<u8>,
}

/// A workload: three TCP-like streams interleaved with datagrams of random sizes.
pub(crate) fn workload(rng: &mut ChaCha8Rng, messages: usize) -> Vec<Sent> {
    workload_sized(rng, messages, 70_000, 9000)
}

/// [`workload`] with stream chunks of 1 to `max_chunk` bytes and datagrams of 0 to
/// `max_datagram` bytes.
pub(crate) fn workload_sized(
    rng: &mut ChaCha8Rng,
    messages: usize,
    max_chunk: usize,
    max_datagram: usize,
) -> Vec<Sent> {
    let mut out = Vec::new();
    let mut open: Vec<u32> = Vec::new();
    let mut next_stream = 1;
    while out.len() < messages {
        match rng.random_range(0..10) {
            0 if open.len() < 3 => {
                open.push(next_stream);
                out.push(Sent {
                    channel: STREAM_CH,
                    stream: next_stream,
                    kind: MessageKind::Open,
                    payload: vec![],
                });
                next_stream += 1;
            }
            1 if !open.is_empty() => {
                let s = open.remove(rng.random_range(0..open.len()));
                let kind = if rng.random_bool(0.8) {
                    MessageKind::End
                } else {
                    MessageKind::Abort
                };
                out.push(Sent {
                    channel: STREAM_CH,
                    stream: s,
                    kind,
                    payload: vec![],
                });
            }
            2..=5 if !open.is_empty() => {
                let s = open[rng.random_range(0..open.len())];
                let len = rng.random_range(1..=max_chunk);
                let payload = (0..len).map(|_| rng.random()).collect();
                out.push(Sent {
                    channel: STREAM_CH,
                    stream: s,
                    kind: MessageKind::Data,
                    payload,
                });
            }
            _ => {
                let len = rng.random_range(0..=max_datagram);
                let payload = (0..len).map(|_| rng.random()).collect();
                out.push(Sent {
                    channel: DGRAM_CH,
                    stream: 0,
                    kind: MessageKind::Data,
                    payload,
                });
            }
        }
    }
    for s in open {
        out.push(Sent {
            channel: STREAM_CH,
            stream: s,
            kind: MessageKind::End,
            payload: vec![],
        });
    }
    out
}

/// Runs `work` through sender → link → receiver with virtual time; returns each message's
/// (channel, seq) and what the receiver reported.
pub(crate) fn run(
    seed: u64,
    imp: Impairment,
    repair: u16,
    work: &[Sent],
) -> (Vec<(u32, u64)>, Outcome, Receiver) {
    let link = Link::new(seed ^ 0x5eed, imp);
    run_through(seed, link, repair, DEFAULT_SHAPE, work)
}

/// [`run`] through a given link, with blocks of a given shape.
pub(crate) fn run_through(
    seed: u64,
    mut link: Link,
    repair: u16,
    shape: Shape,
    work: &[Sent],
) -> (Vec<(u32, u64)>, Outcome, Receiver) {
    let mut tx = sender_shaped((1_700_000_000 << 32) | seed, repair, shape);
    let mut rx = receiver();
    let mut now = Instant::now();
    let mut outcome = Outcome::default();
    let mut seqs = Vec::new();
    let mut buf = Vec::new();
    let mut pump = |tx: &mut Sender,
                    rx: &mut Receiver,
                    link: &mut Link,
                    now: &mut Instant,
                    outcome: &mut Outcome| {
        loop {
            buf.clear();
            if tx.poll_transmit(*now, &mut buf).is_none() {
                break;
            }
            *now += Duration::from_micros(3);
            for mut d in link.pass(buf.clone()) {
                rx.handle(*now, &mut d);
            }
            outcome.absorb(rx);
        }
    };
    for m in work {
        while !tx.has_room() {
            pump(&mut tx, &mut rx, &mut link, &mut now, &mut outcome);
        }
        let seq = tx.push(now, m.channel, m.stream, m.kind, &m.payload).unwrap();
        seqs.push((m.channel, seq));
        now += Duration::from_micros(1);
        pump(&mut tx, &mut rx, &mut link, &mut now, &mut outcome);
    }
    tx.flush();
    pump(&mut tx, &mut rx, &mut link, &mut now, &mut outcome);
    for mut d in link.drain() {
        rx.handle(now, &mut d);
    }
    // Heartbeats (which are not FEC-protected) until one gets through, then time passes.
    for _ in 0..50 {
        now += Duration::from_millis(100);
        pump(&mut tx, &mut rx, &mut link, &mut now, &mut outcome);
        now += Duration::from_millis(30);
        rx.handle_timeout(now);
        outcome.absorb(&mut rx);
        if rx.counters().heartbeats >= 3 && rx.poll_timeout().is_none() {
            break;
        }
    }
    (seqs, outcome, rx)
}

/// The promises: every message is delivered intact xor reported lost; streams are never
/// spliced; a stream ends cleanly only if all of it arrived.
pub(crate) fn check_accounting(work: &[Sent], seqs: &[(u32, u64)], outcome: &Outcome) -> (usize, usize) {
    let mut lost: HashMap<u32, Vec<u64>> = HashMap::new();
    for ch in [STREAM_CH, DGRAM_CH] {
        let mut l = outcome.lost_seqs(ch);
        let before = l.len();
        l.sort_unstable();
        l.dedup();
        assert_eq!(before, l.len(), "a message reported lost twice");
        lost.insert(ch, l);
    }
    let mut delivered = 0;
    let mut lost_count = 0;
    let mut stream_bytes: HashMap<u32, (Vec<u8>, Vec<u8>, bool, bool)> = HashMap::new();
    for (m, &(ch, seq)) in work.iter().zip(seqs) {
        let is_lost = lost[&ch].binary_search(&seq).is_ok();
        match outcome.delivered.get(&(ch, seq)) {
            Some((stream, kind, payload)) => {
                assert!(!is_lost, "{ch:x}/{seq} both delivered and lost");
                assert_eq!(
                    (*stream, *kind),
                    (m.stream, m.kind),
                    "{ch:x}/{seq} wrong stream or kind"
                );
                assert!(payload == &m.payload, "{ch:x}/{seq} payload corrupted");
                delivered += 1;
            }
            None => {
                // Not delivered: either reported lost, or discarded because its stream broke
                // (a stream message after a gap), which the broken event accounts for.
                let stream_broken = outcome.broken.contains(&(ch, m.stream));
                assert!(
                    is_lost || stream_broken,
                    "{ch:x}/{seq} {m:?} neither delivered nor reported lost",
                    m = (m.stream, m.kind, m.payload.len())
                );
                lost_count += 1;
            }
        }
        if ch == STREAM_CH {
            let e = stream_bytes.entry(m.stream).or_default();
            if m.kind == MessageKind::Data {
                e.0.extend_from_slice(&m.payload);
            }
            if let Some((_, kind, payload)) = outcome.delivered.get(&(ch, seq)) {
                if *kind == MessageKind::Data {
                    e.1.extend_from_slice(payload);
                }
                if *kind == MessageKind::End {
                    e.2 = true;
                }
            }
            if m.kind == MessageKind::End {
                e.3 = true;
            }
        }
    }
    for (stream, (sent, got, clean_end, sent_clean)) in stream_bytes {
        assert!(sent.starts_with(&got), "stream {stream} spliced");
        if clean_end {
            assert!(
                sent_clean && sent == got,
                "stream {stream} ended cleanly without all its bytes"
            );
        }
    }
    (delivered, lost_count)
}

fn sweep(burst: f64) {
    for (i, loss) in [0.0, 0.01, 0.05, 0.10, 0.20].into_iter().enumerate() {
        let seed = 100 + i as u64;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let work = workload(&mut rng, 400);
        let imp = Impairment {
            loss,
            burst,
            reorder: 0.0,
            duplicate: 0.0,
        };
        // Repair sized for the loss: within capacity nothing may be lost.
        let (seqs, outcome, rx) = run(seed, imp, 30, &work);
        eprintln!("loss {loss} burst {burst}: {:?}", rx.counters());
        let (delivered, lost) = check_accounting(&work, &seqs, &outcome);
        let c = rx.counters();
        assert_eq!(c.drop_forged + c.drop_malformed + c.drop_replay, 0, "{c:?}");
        if loss <= 0.05 && burst <= 1.0 {
            assert_eq!(lost, 0, "loss {loss} burst {burst}: {c:?}");
            assert_eq!(delivered, work.len());
        }
        if loss == 0.0 {
            assert_eq!(c.symbols_recovered, 0);
        }
        if loss >= 0.20 {
            // Beyond capacity: losses happen and are all accounted for above.
            assert!(
                lost > 0,
                "20% loss with 30% repair in bursts or not should lose something: {c:?}"
            );
            assert!(c.blocks_lost > 0);
        }
    }
}

#[test]
fn random_loss_sweep() {
    sweep(1.0);
}

#[test]
fn burst_loss_sweep() {
    sweep(8.0);
}

#[test]
fn reordering_and_duplicates_lose_nothing() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let work = workload(&mut rng, 400);
    let imp = Impairment {
        loss: 0.01,
        burst: 1.0,
        reorder: 0.05,
        duplicate: 0.05,
    };
    let (seqs, outcome, rx) = run(7, imp, 20, &work);
    let (delivered, _) = check_accounting(&work, &seqs, &outcome);
    assert_eq!(delivered, work.len(), "{:?}", rx.counters());
    assert!(
        rx.counters().drop_replay > 0,
        "duplicates must be seen as replays"
    );
}

#[test]
fn small_messages_make_small_datagrams() {
    let mut tx = sender(1 << 32, 10);
    let now = Instant::now();
    let mut out = Vec::new();
    tx.poll_transmit(now, &mut out).unwrap(); // the first heartbeat
    out.clear();
    tx.push(now, DGRAM_CH, 0, MessageKind::Data, &[1; 100]).unwrap();
    assert_eq!(
        tx.poll_transmit(now, &mut out),
        None,
        "held until the flush deadline"
    );
    assert_eq!(tx.poll_timeout(), Some(now + Duration::from_millis(1)));
    let later = now + Duration::from_millis(1);
    let len = tx.poll_transmit(later, &mut out).unwrap();
    assert_eq!(len, 20 + 14 + FRAME_HEADER_LEN + 100 + 16);
    // One source symbol and MIN_REPAIR_SYMBOLS repair symbols of the same size.
    for _ in 0..crate::proto::fec::MIN_REPAIR_SYMBOLS {
        assert_eq!(tx.poll_transmit(later, &mut out), Some(len));
    }
    assert!(tx.poll_transmit(later, &mut out).is_none());
}

#[test]
fn tail_loss_is_reported_from_heartbeats() {
    let mut tx = sender(5 << 32, 10);
    let mut rx = receiver();
    let mut now = Instant::now();
    let mut out = Vec::new();
    let mut outcome = Outcome::default();
    for i in 0..3u8 {
        tx.push(now, DGRAM_CH, 0, MessageKind::Data, &[i; 10]).unwrap();
        tx.flush();
        while {
            out.clear();
            tx.poll_transmit(now, &mut out).is_some()
        } {
            // Deliver the first message's block and the heartbeat; lose the rest entirely.
            if i == 0 || out[1] == 2 {
                rx.handle(now, &mut out.clone());
            }
        }
    }
    outcome.absorb(&mut rx);
    assert_eq!(outcome.delivered.len(), 1);
    assert!(outcome.lost.is_empty(), "no evidence of loss yet");
    now += Duration::from_millis(150);
    out.clear();
    tx.poll_transmit(now, &mut out).unwrap();
    rx.handle(now, &mut out);
    now += Duration::from_millis(30);
    rx.handle_timeout(now);
    outcome.absorb(&mut rx);
    assert_eq!(outcome.lost.get(&DGRAM_CH), Some(&vec![(1, 2)]));
    assert_eq!(rx.counters().blocks_lost, 2);
}

#[test]
fn a_persisted_floor_stops_replays_across_a_restart() {
    let now = Instant::now();
    let session = (1_700_000_100u64 << 32) | 1;
    let mut tx = sender(session, 10);
    let mut captured = Vec::new();
    let mut rx = receiver();
    for i in 0..5u8 {
        tx.push(now, DGRAM_CH, 0, MessageKind::Data, &[i; 50]).unwrap();
        tx.flush();
        let mut d = Vec::new();
        while tx.poll_transmit(now, &mut d).is_some() {
            captured.push(std::mem::take(&mut d));
        }
    }
    for d in &captured {
        rx.handle(now, &mut d.clone());
    }
    let floor = rx.take_floor_update().expect("a new session asks for a floor");
    assert_eq!(floor.session, session);
    assert!(floor.packet_floor >= captured.len() as u64);
    assert_eq!(rx.take_floor_update(), None, "asked once, until packets near it");
    let mut before = Outcome::default();
    before.absorb(&mut rx);
    assert_eq!(before.delivered.len(), 5);

    // The restarted receiver knows only the floor.
    let mut restarted = Receiver::new(ReceiverConfig {
        replay_floor: Some(floor),
        ..receiver_config()
    });
    for d in &captured {
        restarted.handle(now, &mut d.clone());
    }
    let c = restarted.counters().clone();
    assert_eq!(c.drop_replay, captured.len() as u64, "{c:?}");
    assert_eq!(restarted.session(), None);
    // An older session is stale; a newer one is accepted.
    let mut old = sender(session - (10 << 32), 10);
    let mut d = Vec::new();
    old.poll_transmit(now, &mut d).unwrap();
    restarted.handle(now, &mut d);
    assert_eq!(restarted.counters().drop_stale_session, 1);
    let mut newer = sender(session + (1 << 32), 10);
    let mut d = Vec::new();
    newer.poll_transmit(now, &mut d).unwrap();
    restarted.handle(now, &mut d);
    assert_eq!(restarted.session(), Some(session + (1 << 32)));
    let mut after = Outcome::default();
    after.absorb(&mut restarted);
    assert!(after.delivered.is_empty(), "nothing captured was delivered again");
}

#[test]
fn the_floor_step_adapts_to_the_packet_rate() {
    use crate::proto::recv::{MAX_FLOOR_STEP, MIN_FLOOR_STEP};
    let mut now = Instant::now();
    let mut tx = sender((1_700_000_200u64 << 32) | 2, 10);
    let mut rx = receiver();
    let mut steps = Vec::new();
    let mut feed = |rx: &mut Receiver, now: Instant, n: usize| {
        for _ in 0..n {
            tx.push(now, DGRAM_CH, 0, MessageKind::Data, &[1; 10]).unwrap();
            tx.flush();
            let mut d = Vec::new();
            while tx.poll_transmit(now, &mut d).is_some() {
                rx.handle(now, &mut d);
                d.clear();
                let highest = rx.counters().datagrams - 1;
                if let Some(f) = rx.take_floor_update() {
                    steps.push(f.packet_floor - highest);
                }
            }
        }
    };
    // Fast: thousands of packets within a few milliseconds; the step grows to the maximum.
    feed(&mut rx, now, 30_000);
    // Slow: a packet every two seconds; the step shrinks back.
    for _ in 0..2000 {
        now += Duration::from_secs(2);
        feed(&mut rx, now, 1);
    }
    assert_eq!(steps.first().copied(), Some(MIN_FLOOR_STEP));
    assert!(steps.contains(&MAX_FLOOR_STEP), "{steps:?}");
    assert_eq!(
        steps.last().copied(),
        Some(MIN_FLOOR_STEP),
        "{:?}",
        &steps[steps.len() - 5..]
    );
}

#[test]
fn after_a_restart_a_replaced_session_of_the_same_second_is_stale() {
    // Found by the receiver fuzzer: sessions A and B started in the same second, B replaced A,
    // the receiver restarted with B's floor; A's captured traffic must not be accepted.
    let now = Instant::now();
    let start = 1_700_000_300u64 << 32;
    let (a, b) = (start | 1, start | 2);
    let first = |session: u64| {
        let mut d = Vec::new();
        sender(session, 10).poll_transmit(now, &mut d).unwrap();
        d
    };
    let mut rx = receiver();
    rx.handle(now, &mut first(a));
    rx.handle(now, &mut first(b));
    assert_eq!(rx.session(), Some(b));
    let floor = rx.take_floor_update().unwrap();
    let mut restarted = Receiver::new(ReceiverConfig {
        replay_floor: Some(floor),
        ..receiver_config()
    });
    restarted.handle(now, &mut first(a));
    assert_eq!(restarted.counters().drop_stale_session, 1);
    assert_eq!(restarted.session(), None);
}

#[test]
fn an_authenticated_packet_number_beyond_the_cap_is_malformed() {
    // Found by the receiver fuzzer: packet number u64::MAX saturated the replay floor.
    use crate::proto::seal::SessionKey;
    use crate::proto::wire::{Header, Heartbeat, Kind, MAX_COUNTER, VERSION};
    let session = (1_700_000_400u64 << 32) | 3;
    let key = SessionKey::derive(&test_key(), session).unwrap();
    let mut rx = receiver();
    for pn in [MAX_COUNTER + 1, u64::MAX] {
        let mut d = Vec::new();
        Header {
            version: VERSION,
            kind: Kind::Heartbeat,
            key_id: 1,
            session,
            packet_number: pn,
        }
        .write(&mut d);
        Heartbeat::default().write(&mut d);
        key.seal(pn, &mut d, 0).unwrap();
        rx.handle(Instant::now(), &mut d);
    }
    assert_eq!(rx.counters().drop_malformed, 2);
    assert_eq!(rx.session(), None);
    assert_eq!(rx.take_floor_update(), None);
}

#[test]
fn a_resumed_session_still_refuses_packets_below_the_stored_floor() {
    // Found by the receiver fuzzer: after a restart the floor's session resumes with a fresh
    // replay window; captured packets below the floor must still be refused.
    let now = Instant::now();
    let session = (1_700_000_500u64 << 32) | 5;
    let mut tx = sender(session, 10);
    let mut captured = Vec::new();
    let mut rx = receiver();
    for i in 0..3u8 {
        tx.push(now, DGRAM_CH, 0, MessageKind::Data, &[i; 30]).unwrap();
        tx.flush();
        let mut d = Vec::new();
        while tx.poll_transmit(now, &mut d).is_some() {
            rx.handle(now, &mut d.clone());
            captured.push(std::mem::take(&mut d));
        }
    }
    let floor = rx.take_floor_update().unwrap();
    let mut restarted = Receiver::new(ReceiverConfig {
        replay_floor: Some(floor),
        ..receiver_config()
    });
    // The real sender goes on past the floor (its packets below it are refused meanwhile).
    let mut resumed = false;
    for _ in 0..floor.packet_floor + 10 {
        let mut d = Vec::new();
        tx.push(now, DGRAM_CH, 0, MessageKind::Data, &[9; 10]).unwrap();
        tx.flush();
        while tx.poll_transmit(now, &mut d).is_some() {
            restarted.handle(now, &mut d);
            d.clear();
        }
        if restarted.session() == Some(session) {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "the session resumes above the floor");
    let before = restarted.counters().drop_replay;
    for d in &captured {
        restarted.handle(now, &mut d.clone());
    }
    assert_eq!(restarted.counters().drop_replay - before, captured.len() as u64);
}
