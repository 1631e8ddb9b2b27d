//! Input formats of the structure-aware fuzz targets, shared with the corpus generator.
//!
//! A fuzz input is bytes; these modules give those bytes a structure ([`rx::Record`],
//! [`fec::Op`]) so mutations stay meaningful, and let `gen_corpus` write seeds in the same
//! format (`encode` is the inverse of `parse` for every value `parse` returns). Every byte
//! string parses: a short input reads as zeros.

#![forbid(unsafe_code)]

/// A cursor over fuzz input that never fails: reads past the end give zeros / empty slices.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// Whether all input was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte, or 0.
    pub fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((b, tail)) => {
                self.rest = tail;
                *b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next eight bytes, big-endian.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_be_bytes(b)
    }

    /// The next `n` bytes, or fewer at the end.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }
}

/// Records of the `receiver` target: a script of datagrams, clock steps and restarts.
///
/// ```text
/// input   := record*
/// record  := op:u8 dt:u8 payload          op % 6 selects the record, dt advances the clock
///                                          first: 0..=199 ms, or (dt - 199) × 100 ms
/// 0 RAW     len:u16 bytes[len]            arbitrary datagram, as received from the wire
/// 1 SEALED  sel [extras] body             one datagram the harness builds and seals
/// 2 BLOCK   sel [extras] bm shape n frame×n lost[⌈(k+r)/8⌉] order
///                                          a block of frames, FEC-encoded, its symbols sealed
/// 3 REPLAY  idx:u8                        re-sends a datagram sealed earlier, byte for byte
/// 4 TICK                                  only advances the clock (and handle_timeout)
/// 5 RESTART                               a new Receiver, started with the persisted floor
///
/// sel     bits 0-1 session (SESSIONS), bits 2-4 key (0-4 primary, 5 second, 6 wrong secret,
///         7 unknown id), bit 5 kind byte follows, bit 6 version byte follows, bit 7 pn byte
///         follows (0x00-0x7f: next - m, 0x80-0xfe: next + (m - 0x80), 0xff: u64 follows);
///         extras come in that order
/// body    tag:u8, tag % 4: 0 symbol  block:u8 (0xff: u64 follows) index:u8 k:u8 r:u8
///                                     len:u16 bytes[len]
///                          1 heartbeat flags:u8 (bit 0 wrong fingerprint, bit 1 next_block
///                                     u64, bit 2 channels n:u8 (n % 8) × (chan:u8 seq:u64),
///                                     bit 3 five u64: four counters, then junk bytes to
///                                     append (low 2 bits)) — defaults are the truth
///                          2 garbage  len:u16 bytes[len]
///                          3 empty
/// bm      0x00-0xbf next block, 0xc0-0xef an older one (next - (bm - 0xbf)),
///         0xf0-0xfe a gap (next + (bm - 0xef)), 0xff: u64 follows
/// shape   k = 1 + (s & 15), r = 1 + ((s >> 4) & 3), extra symbol bytes s >> 6
/// frame   fsel:u8 stream:u8 [seq:u64 if fsel bit 6] len:u8 (bytes[len] | fill:u8 if bit 7)
///         fsel bits 0-1 channel (0 stream, 1 datagram, 2 undeclared, 3 datagram), bits 2-3
///         kind (data, open, end, abort), bit 4 not first (the harness writes the offset
///         where the fragments it framed for that message end), bit 5 not last, bit 6 explicit
///         seq (else the channel's next), bit 7 big: 4000 + 16 × len bytes of fill
/// lost    bit i set: symbol i is not sent
/// order   bit 0 reverse, bit 1 send every symbol twice, bits 2-7 ms between symbols
/// ```
pub mod rx {
    use super::Input;

    /// Session ids the harness seals with: a current one, one from the same second, a newer
    /// and an older one (start time in the high 32 bits).
    pub const SESSIONS: [u64; 4] = [
        (1_700_000_000 << 32) | 0x1111,
        (1_700_000_000 << 32) | 0x2222,
        (1_700_000_001 << 32) | 0x3333,
        (1_699_999_999 << 32) | 0x4444,
    ];
    /// Key id and secret of the receiver's primary key (the tests' `test_key`).
    pub const KEY1: (u16, [u8; 32]) = (1, [0x42; 32]);
    /// The receiver's second key (rotation overlap).
    pub const KEY2: (u16, [u8; 32]) = (2, [0x24; 32]);
    /// A key the receiver does not hold, under the primary's id.
    pub const WRONG_SECRET: (u16, [u8; 32]) = (1, [0x43; 32]);
    /// A key id the receiver does not know.
    pub const UNKNOWN_ID: (u16, [u8; 32]) = (9, [0x42; 32]);
    /// The receiver's channels.
    pub const STREAM_CH: u32 = 0x1111_1111;
    /// A datagram channel.
    pub const DGRAM_CH: u32 = 0x2222_2222;
    /// A channel the policy does not declare.
    pub const UNDECLARED_CH: u32 = 0x3333_3333;
    /// `max_message` of both channels: the big frames cross it.
    pub const MAX_MESSAGE: usize = 4096;
    /// The receiver's policy fingerprint.
    pub const FINGERPRINT: [u8; 16] = [9; 16];

    /// Record opcodes (`op % OPS`).
    pub const OP_RAW: u8 = 0;
    /// See the module documentation.
    pub const OP_SEALED: u8 = 1;
    /// See the module documentation.
    pub const OP_BLOCK: u8 = 2;
    /// See the module documentation.
    pub const OP_REPLAY: u8 = 3;
    /// See the module documentation.
    pub const OP_TICK: u8 = 4;
    /// See the module documentation.
    pub const OP_RESTART: u8 = 5;
    /// Number of opcodes.
    pub const OPS: u8 = 6;

    /// The clock step a `dt` byte means, in milliseconds.
    pub fn dt_millis(dt: u8) -> u64 {
        if dt < 200 {
            u64::from(dt)
        } else {
            u64::from(dt - 199) * 100
        }
    }

    /// Channel of a 2-bit selector.
    pub fn channel_of(sel: u8) -> u32 {
        match sel & 3 {
            0 => STREAM_CH,
            2 => UNDECLARED_CH,
            _ => DGRAM_CH,
        }
    }

    /// Which key seals.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum KeyChoice {
        /// The receiver's primary key.
        Primary,
        /// The receiver's second key.
        Second,
        /// The primary's id with another secret: never authenticates.
        WrongSecret,
        /// An id the receiver does not hold.
        UnknownId,
    }

    impl KeyChoice {
        /// Id and secret.
        pub fn key(self) -> (u16, [u8; 32]) {
            match self {
                KeyChoice::Primary => KEY1,
                KeyChoice::Second => KEY2,
                KeyChoice::WrongSecret => WRONG_SECRET,
                KeyChoice::UnknownId => UNKNOWN_ID,
            }
        }

        /// Whether the receiver holds this key.
        pub fn held(self) -> bool {
            matches!(self, KeyChoice::Primary | KeyChoice::Second)
        }
    }

    /// Which packet number to use, relative to the session's next one.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Pn {
        /// The next one.
        Next,
        /// `next - n` (n in 1..=0x7f): a reordered or reused number.
        Back(u8),
        /// `next + n` (n in 0..=0x7e): a gap.
        Ahead(u8),
        /// Any value.
        Explicit(u64),
    }

    /// How a datagram is sealed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Seal {
        /// Index into [`SESSIONS`].
        pub session: u8,
        /// The key.
        pub key: KeyChoice,
        /// The header's kind byte, if not the body's natural kind.
        pub kind: Option<u8>,
        /// The header's version byte, if not 1.
        pub version: Option<u8>,
        /// The packet number.
        pub pn: Pn,
    }

    impl Seal {
        /// A well-formed datagram of session `session` with the primary key.
        pub fn good(session: u8) -> Self {
            Seal {
                session,
                key: KeyChoice::Primary,
                kind: None,
                version: None,
                pn: Pn::Next,
            }
        }

        fn parse(i: &mut Input<'_>) -> Seal {
            let sel = i.u8();
            let key = match (sel >> 2) & 7 {
                5 => KeyChoice::Second,
                6 => KeyChoice::WrongSecret,
                7 => KeyChoice::UnknownId,
                _ => KeyChoice::Primary,
            };
            let kind = (sel & 0x20 != 0).then(|| i.u8());
            let version = (sel & 0x40 != 0).then(|| i.u8());
            let pn = if sel & 0x80 == 0 {
                Pn::Next
            } else {
                match i.u8() {
                    0 => Pn::Next,
                    m @ 1..=0x7f => Pn::Back(m),
                    0xff => Pn::Explicit(i.u64()),
                    m => Pn::Ahead(m - 0x80),
                }
            };
            Seal {
                session: sel & 3,
                key,
                kind,
                version,
                pn,
            }
        }

        fn encode(&self, out: &mut Vec<u8>) {
            let key = match self.key {
                KeyChoice::Primary => 0,
                KeyChoice::Second => 5,
                KeyChoice::WrongSecret => 6,
                KeyChoice::UnknownId => 7,
            };
            let mut sel = (self.session & 3) | (key << 2);
            if self.kind.is_some() {
                sel |= 0x20;
            }
            if self.version.is_some() {
                sel |= 0x40;
            }
            if self.pn != Pn::Next {
                sel |= 0x80;
            }
            out.push(sel);
            out.extend(self.kind);
            out.extend(self.version);
            match self.pn {
                Pn::Next => {}
                Pn::Back(m) => out.push(m.clamp(1, 0x7f)),
                Pn::Ahead(m) => out.push(0x80 + m.min(0x7e)),
                Pn::Explicit(pn) => {
                    out.push(0xff);
                    out.extend_from_slice(&pn.to_be_bytes());
                }
            }
        }
    }

    /// A heartbeat body; `None` fields are filled with what the harness's sender state says.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct HeartbeatSpec {
        /// Carry a fingerprint other than the receiver's.
        pub wrong_fingerprint: bool,
        /// `next_block`, or the harness's next block of the session.
        pub next_block: Option<u64>,
        /// The channel list, or every channel at the harness's next sequence number.
        pub channels: Option<Vec<(u8, u64)>>,
        /// The four counters and a fifth value whose low 2 bits count junk bytes appended to
        /// the body; or zeros.
        pub counters: Option<[u64; 5]>,
    }

    /// The body of a SEALED record.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Body {
        /// A data symbol: a symbol header and the symbol's bytes.
        Symbol {
            /// Block id.
            block: u64,
            /// Symbol index.
            index: u8,
            /// Source symbols.
            k: u8,
            /// Repair symbols.
            r: u8,
            /// The symbol.
            bytes: Vec<u8>,
        },
        /// A heartbeat.
        Heartbeat(HeartbeatSpec),
        /// Arbitrary bytes.
        Garbage(Vec<u8>),
        /// Nothing.
        Empty,
    }

    impl Body {
        fn parse(i: &mut Input<'_>) -> Body {
            match i.u8() % 4 {
                0 => {
                    let block = match i.u8() {
                        0xff => i.u64(),
                        b => u64::from(b),
                    };
                    let (index, k, r) = (i.u8(), i.u8(), i.u8());
                    let len = usize::from(i.u16());
                    Body::Symbol {
                        block,
                        index,
                        k,
                        r,
                        bytes: i.take(len).to_vec(),
                    }
                }
                1 => {
                    let flags = i.u8();
                    let next_block = (flags & 2 != 0).then(|| i.u64());
                    let channels = (flags & 4 != 0).then(|| {
                        let n = i.u8() % 8;
                        (0..n).map(|_| (i.u8() & 3, i.u64())).collect()
                    });
                    let counters = (flags & 8 != 0).then(|| [i.u64(), i.u64(), i.u64(), i.u64(), i.u64()]);
                    Body::Heartbeat(HeartbeatSpec {
                        wrong_fingerprint: flags & 1 != 0,
                        next_block,
                        channels,
                        counters,
                    })
                }
                2 => {
                    let len = usize::from(i.u16());
                    Body::Garbage(i.take(len).to_vec())
                }
                _ => Body::Empty,
            }
        }

        fn encode(&self, out: &mut Vec<u8>) {
            match self {
                Body::Symbol {
                    block,
                    index,
                    k,
                    r,
                    bytes,
                } => {
                    out.push(0);
                    if *block < 0xff {
                        out.push(*block as u8);
                    } else {
                        out.push(0xff);
                        out.extend_from_slice(&block.to_be_bytes());
                    }
                    out.extend_from_slice(&[*index, *k, *r]);
                    put_len_bytes(bytes, out);
                }
                Body::Heartbeat(hb) => {
                    out.push(1);
                    let flags = u8::from(hb.wrong_fingerprint)
                        | (u8::from(hb.next_block.is_some()) << 1)
                        | (u8::from(hb.channels.is_some()) << 2)
                        | (u8::from(hb.counters.is_some()) << 3);
                    out.push(flags);
                    if let Some(nb) = hb.next_block {
                        out.extend_from_slice(&nb.to_be_bytes());
                    }
                    if let Some(chans) = &hb.channels {
                        out.push(chans.len().min(7) as u8);
                        for (c, seq) in chans.iter().take(7) {
                            out.push(c & 3);
                            out.extend_from_slice(&seq.to_be_bytes());
                        }
                    }
                    if let Some(counters) = hb.counters {
                        for c in counters {
                            out.extend_from_slice(&c.to_be_bytes());
                        }
                    }
                }
                Body::Garbage(bytes) => {
                    out.push(2);
                    put_len_bytes(bytes, out);
                }
                Body::Empty => out.push(3),
            }
        }
    }

    fn put_len_bytes(bytes: &[u8], out: &mut Vec<u8>) {
        let len = bytes.len().min(usize::from(u16::MAX));
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&bytes[..len]);
    }

    /// Which block a BLOCK record encodes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BlockId {
        /// The session's next block (the counter advances).
        Next,
        /// `next - n`, n in 1..=48: a block id already used.
        Old(u8),
        /// `next + n`, n in 1..=15: blocks skipped, as if lost entirely.
        Gap(u8),
        /// Any id (the counter does not move).
        Explicit(u64),
    }

    /// Message kind of a frame, as its 2-bit code.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FrameKind {
        /// Data.
        Data,
        /// Stream open.
        Open,
        /// Stream end.
        End,
        /// Stream abort.
        Abort,
    }

    /// One frame of a BLOCK record.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FrameSpec {
        /// Channel selector, see [`channel_of`].
        pub channel: u8,
        /// Message kind.
        pub kind: FrameKind,
        /// First fragment of its message.
        pub first: bool,
        /// Last fragment of its message.
        pub last: bool,
        /// Stream id.
        pub stream: u8,
        /// Sequence number, or the channel's next.
        pub seq: Option<u64>,
        /// The payload: bytes, or `Fill(len_byte, fill)` = 4000 + 16 × len bytes of `fill`.
        pub payload: Payload,
    }

    /// A frame's payload.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Payload {
        /// Up to 255 bytes.
        Bytes(Vec<u8>),
        /// `4000 + 16 × n` copies of a byte: crosses [`MAX_MESSAGE`].
        Fill(u8, u8),
    }

    impl Payload {
        /// The payload's bytes.
        pub fn bytes(&self) -> Vec<u8> {
            match self {
                Payload::Bytes(b) => b.clone(),
                Payload::Fill(n, fill) => vec![*fill; 4000 + 16 * usize::from(*n)],
            }
        }
    }

    impl FrameSpec {
        /// A whole message (first and last) at the channel's next sequence number.
        pub fn whole(channel: u8, kind: FrameKind, stream: u8, payload: &[u8]) -> Self {
            FrameSpec {
                channel,
                kind,
                first: true,
                last: true,
                stream,
                seq: None,
                payload: Payload::Bytes(payload.to_vec()),
            }
        }

        fn parse(i: &mut Input<'_>) -> FrameSpec {
            let fsel = i.u8();
            let stream = i.u8();
            let seq = (fsel & 0x40 != 0).then(|| i.u64());
            let len = i.u8();
            let payload = if fsel & 0x80 != 0 {
                Payload::Fill(len, i.u8())
            } else {
                Payload::Bytes(i.take(usize::from(len)).to_vec())
            };
            FrameSpec {
                channel: fsel & 3,
                kind: match (fsel >> 2) & 3 {
                    0 => FrameKind::Data,
                    1 => FrameKind::Open,
                    2 => FrameKind::End,
                    _ => FrameKind::Abort,
                },
                first: fsel & 0x10 == 0,
                last: fsel & 0x20 == 0,
                stream,
                seq,
                payload,
            }
        }

        fn encode(&self, out: &mut Vec<u8>) {
            let kind = match self.kind {
                FrameKind::Data => 0,
                FrameKind::Open => 1,
                FrameKind::End => 2,
                FrameKind::Abort => 3,
            };
            let fsel = (self.channel & 3)
                | (kind << 2)
                | (u8::from(!self.first) << 4)
                | (u8::from(!self.last) << 5)
                | (u8::from(self.seq.is_some()) << 6)
                | (u8::from(matches!(self.payload, Payload::Fill(..))) << 7);
            out.push(fsel);
            out.push(self.stream);
            if let Some(seq) = self.seq {
                out.extend_from_slice(&seq.to_be_bytes());
            }
            match &self.payload {
                Payload::Bytes(b) => {
                    let len = b.len().min(255);
                    out.push(len as u8);
                    out.extend_from_slice(&b[..len]);
                }
                Payload::Fill(n, fill) => out.extend_from_slice(&[*n, *fill]),
            }
        }
    }

    /// One record of the script.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Record {
        /// Arbitrary bytes as a datagram.
        Raw {
            /// Clock step before it.
            dt: u8,
            /// The datagram.
            bytes: Vec<u8>,
        },
        /// One datagram the harness seals.
        Sealed {
            /// Clock step before it.
            dt: u8,
            /// How it is sealed.
            seal: Seal,
            /// What it carries.
            body: Body,
        },
        /// A block of frames, FEC-encoded, some of its symbols sealed and sent.
        Block {
            /// Clock step before it.
            dt: u8,
            /// How its symbols are sealed (the packet-number mode applies to the first).
            seal: Seal,
            /// Its block id.
            block: BlockId,
            /// Shape byte, see the module documentation.
            shape: u8,
            /// Up to 7 frames.
            frames: Vec<FrameSpec>,
            /// Symbols not sent (bit i of byte i / 8).
            lost: Vec<u8>,
            /// Order byte, see the module documentation.
            order: u8,
        },
        /// A datagram sealed earlier, again.
        Replay {
            /// Clock step before it.
            dt: u8,
            /// Index (modulo the number sealed so far).
            index: u8,
        },
        /// Only a clock step.
        Tick {
            /// Clock step.
            dt: u8,
        },
        /// The receiver restarts with the replay floor it last asked to persist.
        Restart {
            /// Clock step before it.
            dt: u8,
        },
    }

    /// `(k, r, extra bytes per symbol)` of a shape byte.
    pub fn shape_of(shape: u8) -> (u16, u16, usize) {
        (
            1 + u16::from(shape & 15),
            1 + u16::from((shape >> 4) & 3),
            usize::from(shape >> 6),
        )
    }

    impl Record {
        /// Reads one record; `None` at the end of the input.
        pub fn parse(i: &mut Input<'_>) -> Option<Record> {
            if i.is_empty() {
                return None;
            }
            let op = i.u8() % OPS;
            let dt = i.u8();
            Some(match op {
                OP_RAW => {
                    let len = usize::from(i.u16());
                    Record::Raw {
                        dt,
                        bytes: i.take(len).to_vec(),
                    }
                }
                OP_SEALED => Record::Sealed {
                    dt,
                    seal: Seal::parse(i),
                    body: Body::parse(i),
                },
                OP_BLOCK => {
                    let seal = Seal::parse(i);
                    let block = match i.u8() {
                        0..=0xbf => BlockId::Next,
                        b @ 0xc0..=0xef => BlockId::Old(b - 0xbf),
                        b @ 0xf0..=0xfe => BlockId::Gap(b - 0xef),
                        0xff => BlockId::Explicit(i.u64()),
                    };
                    let shape = i.u8();
                    let n = i.u8() % 8;
                    let frames = (0..n).map(|_| FrameSpec::parse(i)).collect();
                    let (k, r, _) = shape_of(shape);
                    let lost = i.take(usize::from(k + r).div_ceil(8)).to_vec();
                    let order = i.u8();
                    Record::Block {
                        dt,
                        seal,
                        block,
                        shape,
                        frames,
                        lost,
                        order,
                    }
                }
                OP_REPLAY => Record::Replay { dt, index: i.u8() },
                OP_TICK => Record::Tick { dt },
                _ => Record::Restart { dt },
            })
        }

        /// Appends the record's bytes.
        pub fn encode(&self, out: &mut Vec<u8>) {
            match self {
                Record::Raw { dt, bytes } => {
                    out.extend_from_slice(&[OP_RAW, *dt]);
                    put_len_bytes(bytes, out);
                }
                Record::Sealed { dt, seal, body } => {
                    out.extend_from_slice(&[OP_SEALED, *dt]);
                    seal.encode(out);
                    body.encode(out);
                }
                Record::Block {
                    dt,
                    seal,
                    block,
                    shape,
                    frames,
                    lost,
                    order,
                } => {
                    out.extend_from_slice(&[OP_BLOCK, *dt]);
                    seal.encode(out);
                    match block {
                        BlockId::Next => out.push(0),
                        BlockId::Old(n) => out.push(0xbf + n.clamp(&1, &48)),
                        BlockId::Gap(n) => out.push(0xef + n.clamp(&1, &15)),
                        BlockId::Explicit(id) => {
                            out.push(0xff);
                            out.extend_from_slice(&id.to_be_bytes());
                        }
                    }
                    out.push(*shape);
                    out.push(frames.len().min(7) as u8);
                    for f in frames.iter().take(7) {
                        f.encode(out);
                    }
                    let (k, r, _) = shape_of(*shape);
                    let mut mask = lost.clone();
                    mask.resize(usize::from(k + r).div_ceil(8), 0);
                    out.extend_from_slice(&mask);
                    out.push(*order);
                }
                Record::Replay { dt, index } => out.extend_from_slice(&[OP_REPLAY, *dt, *index]),
                Record::Tick { dt } => out.extend_from_slice(&[OP_TICK, *dt]),
                Record::Restart { dt } => out.extend_from_slice(&[OP_RESTART, *dt]),
            }
        }
    }

    /// Every record of `data`, in order.
    pub fn parse_all(data: &[u8]) -> Vec<Record> {
        let mut i = Input::new(data);
        std::iter::from_fn(|| Record::parse(&mut i)).collect()
    }

    /// The bytes of a script.
    pub fn encode_all(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            r.encode(&mut out);
        }
        out
    }
}

/// Operations of the `fec_decode` target.
///
/// ```text
/// input := op*                 (at most MAX_OPS are run)
/// op    := k:u8 r:u8 size:u16 mode:u8 rest
/// mode bit 0 clear: ROUND TRIP   seed:u64 lost[⌈(k+r)/8⌉ if the shape is valid]
///          source symbols from the seed; encode; erase the lost symbols; reconstruct
/// mode bit 0 set:   RAW CALL     [size_override:u64 if bit 2] len_delta:i16
///          present_len_delta:i8 present[⌈n/8⌉]
///          encode (bit 1 clear) or reconstruct (bit 1 set) on a buffer of
///          (k + r) × size + len_delta bytes (at most 2 × MAX_BLOCK) and a presence list of
///          k + r + present_len_delta entries; with bit 2 the call is told the symbol size
///          size_override instead (any usize)
/// ```
pub mod fec {
    use super::Input;

    /// Operations run per input.
    pub const MAX_OPS: usize = 4;
    /// Largest block buffer tried, in bytes: symbol sizes are scaled down to fit.
    pub const MAX_BLOCK: usize = 1 << 16;

    /// One operation.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Op {
        /// Encode real data, lose some symbols, reconstruct, compare.
        RoundTrip {
            /// Source symbols.
            k: u8,
            /// Repair symbols.
            r: u8,
            /// Symbol size.
            size: u16,
            /// Seeds the source data.
            seed: u64,
            /// Symbols lost (bit i of byte i / 8); only read when the shape is valid.
            lost: Vec<u8>,
        },
        /// One call with arbitrary arguments.
        RawCall {
            /// Source symbols.
            k: u8,
            /// Repair symbols.
            r: u8,
            /// Symbol size.
            size: u16,
            /// `reconstruct` rather than `encode`.
            reconstruct: bool,
            /// The symbol size passed to the call, if not `size`.
            size_override: Option<u64>,
            /// Buffer length minus `(k + r) × size`.
            len_delta: i16,
            /// Presence list length minus `k + r`.
            present_delta: i8,
            /// Presence bits.
            present: Vec<u8>,
        },
    }

    /// Whether `(k, r, size)` is a shape `Fec` accepts.
    pub fn shape_ok(k: u8, r: u8) -> bool {
        weir::proto::fec::valid_shape(u16::from(k), u16::from(r))
    }

    /// The symbol size actually used: `size`, scaled down so the block fits [`MAX_BLOCK`].
    pub fn effective_size(k: u8, r: u8, size: u16) -> usize {
        let total = usize::from(k) + usize::from(r);
        if total == 0 {
            return usize::from(size);
        }
        usize::from(size).min(MAX_BLOCK / total)
    }

    /// Number of entries of the presence list.
    pub fn present_len(k: u8, r: u8, delta: i8) -> usize {
        (i64::from(k) + i64::from(r) + i64::from(delta)).max(0) as usize
    }

    impl Op {
        /// Reads one operation; `None` at the end of the input.
        pub fn parse(i: &mut Input<'_>) -> Option<Op> {
            if i.is_empty() {
                return None;
            }
            let (k, r, size, mode) = (i.u8(), i.u8(), i.u16(), i.u8());
            Some(if mode & 1 == 0 {
                let seed = i.u64();
                let lost = if shape_ok(k, r) {
                    i.take((usize::from(k) + usize::from(r)).div_ceil(8)).to_vec()
                } else {
                    Vec::new()
                };
                Op::RoundTrip {
                    k,
                    r,
                    size,
                    seed,
                    lost,
                }
            } else {
                let size_override = (mode & 4 != 0).then(|| i.u64());
                let len_delta = i.u16() as i16;
                let present_delta = i.u8() as i8;
                let n = present_len(k, r, present_delta);
                Op::RawCall {
                    k,
                    r,
                    size,
                    reconstruct: mode & 2 != 0,
                    size_override,
                    len_delta,
                    present_delta,
                    present: i.take(n.div_ceil(8)).to_vec(),
                }
            })
        }

        /// Appends the operation's bytes.
        pub fn encode(&self, out: &mut Vec<u8>) {
            match self {
                Op::RoundTrip {
                    k,
                    r,
                    size,
                    seed,
                    lost,
                } => {
                    out.extend_from_slice(&[*k, *r]);
                    out.extend_from_slice(&size.to_be_bytes());
                    out.push(0);
                    out.extend_from_slice(&seed.to_be_bytes());
                    if shape_ok(*k, *r) {
                        let mut mask = lost.clone();
                        mask.resize((usize::from(*k) + usize::from(*r)).div_ceil(8), 0);
                        out.extend_from_slice(&mask);
                    }
                }
                Op::RawCall {
                    k,
                    r,
                    size,
                    reconstruct,
                    size_override,
                    len_delta,
                    present_delta,
                    present,
                } => {
                    out.extend_from_slice(&[*k, *r]);
                    out.extend_from_slice(&size.to_be_bytes());
                    out.push(1 | (u8::from(*reconstruct) << 1) | (u8::from(size_override.is_some()) << 2));
                    if let Some(s) = size_override {
                        out.extend_from_slice(&s.to_be_bytes());
                    }
                    out.extend_from_slice(&len_delta.to_be_bytes());
                    out.push(*present_delta as u8);
                    let mut bits = present.clone();
                    bits.resize(present_len(*k, *r, *present_delta).div_ceil(8), 0);
                    out.extend_from_slice(&bits);
                }
            }
        }
    }

    /// Every operation of `data` (at most [`MAX_OPS`]).
    pub fn parse_all(data: &[u8]) -> Vec<Op> {
        let mut i = Input::new(data);
        std::iter::from_fn(|| Op::parse(&mut i)).take(MAX_OPS).collect()
    }

    /// Deterministic filler for source symbols (xorshift64*).
    pub fn fill(seed: u64, out: &mut [u8]) {
        let mut x = seed | 1;
        for chunk in out.chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}
