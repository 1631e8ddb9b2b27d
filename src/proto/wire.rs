//! Datagram header and body layouts of the link protocol, version 2.
//!
//! A datagram is `header ‖ AEAD(body) ‖ tag`. The header travels in clear and is the AEAD's
//! associated data, so every bit of it is authenticated:
//!
//! ```text
//!  0       1       2               4                              12                             20
//!  +-------+-------+---------------+------------------------------+------------------------------+
//!  |version| kind  |    key id     |          session id          |        packet number         |
//!  +-------+-------+---------------+------------------------------+------------------------------+
//! ```
//!
//! Bodies, after opening:
//!
//! ```text
//!  data symbol (kind 1):
//!  0                               8       10      12      14
//!  +-------------------------------+-------+-------+-------+----------------- ... --+
//!  |           block id            | index |   k   |   r   | symbol bytes           |
//!  +-------------------------------+-------+-------+-------+----------------- ... --+
//!
//!  heartbeat (kind 2):
//!  0               16        24          32        40        48        56   58
//!  +---------------+---------+-----------+---------+---------+---------+----+------------------+
//!  | policy fprint | next    | datagrams | bytes   | messages| messages| n  | n × (channel id, |
//!  | (16 bytes)    | block   | sent      | sent    | sent    | dropped |    |  next seq) 12 B  |
//!  +---------------+---------+-----------+---------+---------+---------+----+------------------+
//! ```
//!
//! All integers are big-endian. Parsing goes through [`Reader`]; a short or inconsistent input
//! is an error value, never a panic.

use super::reader::{PutBytes, Reader};

/// The protocol version this build speaks.
pub const VERSION: u8 = 2;
/// Bytes of the clear header.
pub const HEADER_LEN: usize = 20;
/// Bytes of the AEAD tag that follows the sealed body.
pub const TAG_LEN: usize = 16;
/// Bytes of the data-symbol body header (block id, index, k, r).
pub const SYMBOL_HEADER_LEN: usize = 14;
/// The largest UDP payload a datagram may have.
pub const MAX_DATAGRAM: usize = 65_507;
/// Bytes of the heartbeat body before its channel list.
pub const HEARTBEAT_FIXED_LEN: usize = 16 + 5 * 8 + 2;
/// The largest block id and message sequence number a sender may use: far beyond what any
/// session reaches, and it keeps every `+ 1` on them from overflowing. Larger values are
/// malformed.
pub const MAX_COUNTER: u64 = 1 << 62;
/// Bytes of one heartbeat channel entry.
pub const HEARTBEAT_CHANNEL_LEN: usize = 12;

/// What a datagram carries. Unknown kinds are kept as values so they can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One FEC symbol of a block.
    Data,
    /// Sender liveness, counters and policy fingerprint.
    Heartbeat,
    /// A kind this build does not know.
    Unknown(u8),
}

impl From<u8> for Kind {
    fn from(v: u8) -> Self {
        match v {
            1 => Kind::Data,
            2 => Kind::Heartbeat,
            other => Kind::Unknown(other),
        }
    }
}

impl From<Kind> for u8 {
    fn from(k: Kind) -> u8 {
        match k {
            Kind::Data => 1,
            Kind::Heartbeat => 2,
            Kind::Unknown(v) => v,
        }
    }
}

/// The clear, authenticated header of every datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version; only [`VERSION`] is accepted.
    pub version: u8,
    /// Datagram kind.
    pub kind: Kind,
    /// Which pre-shared key sealed the body.
    pub key_id: u16,
    /// The sender run: start time in Unix seconds (high 32 bits) and 32 random bits.
    pub session: u64,
    /// Monotonic per session; also the AEAD nonce.
    pub packet_number: u64,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes. Version is not checked here.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let mut r = Reader::new(bytes);
        Some(Header {
            version: r.u8()?,
            kind: Kind::from(r.u8()?),
            key_id: r.u16()?,
            session: r.u64()?,
            packet_number: r.u64()?,
        })
    }

    /// Appends the header's bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.version);
        out.put_u8(self.kind.into());
        out.put_u16(self.key_id);
        out.put_u64(self.session);
        out.put_u64(self.packet_number);
    }
}

/// The start of a data-symbol body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolHeader {
    /// Block number, consecutive per session from 0.
    pub block: u64,
    /// Index of this symbol: `0..k` source, `k..k+r` repair.
    pub index: u16,
    /// Source symbols in the block.
    pub k: u16,
    /// Repair symbols in the block.
    pub r: u16,
}

impl SymbolHeader {
    /// Reads the symbol header; the rest of the reader is the symbol. A block id above
    /// [`MAX_COUNTER`] is malformed.
    pub fn parse(r: &mut Reader<'_>) -> Option<SymbolHeader> {
        let header = SymbolHeader {
            block: r.u64()?,
            index: r.u16()?,
            k: r.u16()?,
            r: r.u16()?,
        };
        (header.block <= MAX_COUNTER).then_some(header)
    }

    /// Appends the symbol header's bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.block);
        out.put_u16(self.index);
        out.put_u16(self.k);
        out.put_u16(self.r);
    }
}

/// A heartbeat body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heartbeat {
    /// The first 16 bytes of the sender's policy fingerprint.
    pub fingerprint: [u8; 16],
    /// Every block below this number has been sent in full.
    pub next_block: u64,
    /// Datagrams the sender has sent this session.
    pub datagrams_sent: u64,
    /// UDP payload bytes the sender has sent this session.
    pub bytes_sent: u64,
    /// Messages the sender has framed this session.
    pub messages_sent: u64,
    /// Messages the sender dropped before the link (full queue, oversize).
    pub messages_dropped: u64,
    /// Per channel: the sequence number after the last message sent in full. May be a subset
    /// of the channels when they do not all fit one datagram.
    pub channels: Vec<(u32, u64)>,
}

impl Heartbeat {
    /// Parses a heartbeat body; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Option<Heartbeat> {
        let mut r = Reader::new(bytes);
        let mut hb = Heartbeat {
            fingerprint: r.array()?,
            next_block: r.u64()?,
            datagrams_sent: r.u64()?,
            bytes_sent: r.u64()?,
            messages_sent: r.u64()?,
            messages_dropped: r.u64()?,
            channels: Vec::new(),
        };
        let n = usize::from(r.u16()?);
        if r.remaining() != n * HEARTBEAT_CHANNEL_LEN || hb.next_block > MAX_COUNTER {
            return None;
        }
        hb.channels.reserve(n);
        for _ in 0..n {
            let (channel, next_seq) = (r.u32()?, r.u64()?);
            if next_seq > MAX_COUNTER {
                return None;
            }
            hb.channels.push((channel, next_seq));
        }
        Some(hb)
    }

    /// Appends the body's bytes. The caller keeps `channels` within the datagram budget.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.fingerprint);
        out.put_u64(self.next_block);
        out.put_u64(self.datagrams_sent);
        out.put_u64(self.bytes_sent);
        out.put_u64(self.messages_sent);
        out.put_u64(self.messages_dropped);
        let n = u16::try_from(self.channels.len()).unwrap_or(u16::MAX);
        out.put_u16(n);
        for (id, seq) in self.channels.iter().take(usize::from(n)) {
            out.put_u32(*id);
            out.put_u64(*seq);
        }
    }
}

/// The largest symbol that fits a datagram of `datagram_budget` UDP payload bytes.
pub fn symbol_size_for(datagram_budget: usize) -> usize {
    datagram_budget
        .min(MAX_DATAGRAM)
        .saturating_sub(HEADER_LEN + SYMBOL_HEADER_LEN + TAG_LEN)
}

/// UDP payload budget for an IP MTU, assuming IPv4 (20-byte IP + 8-byte UDP header).
pub fn datagram_budget_for_mtu(mtu: u16) -> usize {
    usize::from(mtu).saturating_sub(28)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_has_fixed_layout() {
        let h = Header {
            version: VERSION,
            kind: Kind::Heartbeat,
            key_id: 0x0102,
            session: 0x1112_1314_1516_1718,
            packet_number: 0x2122_2324_2526_2728,
        };
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(
            out,
            [
                2, 2, 1, 2, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x21, 0x22, 0x23, 0x24, 0x25,
                0x26, 0x27, 0x28
            ]
        );
        assert_eq!(Header::parse(&out), Some(h));
        assert_eq!(Header::parse(&out[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn unknown_kind_is_a_value() {
        assert_eq!(Kind::from(9), Kind::Unknown(9));
        assert_eq!(u8::from(Kind::Unknown(9)), 9);
    }

    #[test]
    fn heartbeat_round_trips_and_rejects_bad_counts() {
        let hb = Heartbeat {
            fingerprint: [7; 16],
            next_block: 3,
            datagrams_sent: 4,
            bytes_sent: 5,
            messages_sent: 6,
            messages_dropped: 1,
            channels: vec![(0xaabb_ccdd, 42), (1, 0)],
        };
        let mut out = Vec::new();
        hb.write(&mut out);
        assert_eq!(out.len(), HEARTBEAT_FIXED_LEN + 2 * HEARTBEAT_CHANNEL_LEN);
        assert_eq!(Heartbeat::parse(&out), Some(hb));
        assert_eq!(Heartbeat::parse(&out[..out.len() - 1]), None);
        out.push(0);
        assert_eq!(Heartbeat::parse(&out), None);
    }

    #[test]
    fn symbol_budget_for_ethernet() {
        assert_eq!(datagram_budget_for_mtu(1500), 1472);
        assert_eq!(symbol_size_for(1472), 1472 - 50);
        assert_eq!(symbol_size_for(10), 0);
    }
}
