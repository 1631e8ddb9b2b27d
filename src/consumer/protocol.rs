//! The consumer protocol: what a consumer and `weir-recv`'s consumer server say to each other
//! over one mutual-TLS byte stream (TLS 1.3 over TCP, or one bidirectional QUIC stream).
//! `CONSUMERS.md` is the prose version; this module is the reference.
//!
//! Every message is framed the same way, big-endian:
//!
//! ```text
//!  0       4       5
//! +-------+-------+---------------------------+
//! | len   | type  | body (len - 1 bytes)      |   len: u32, 1 ..= MAX_FRAME
//! +-------+-------+---------------------------+
//! ```
//!
//! The consumer sends exactly one `Subscribe` and then only reads; the server answers with
//! `Subscribed` (or `Error` and closes), then streams `Record`, `Gap`, `CaughtUp` and
//! `Keepalive` messages until either side closes.
//!
//! ```text
//! 0x01 Subscribe   version u8 (=1) | count u8 (1..=MAX_SUBSCRIPTIONS) |
//!                  count × { name_len u8 | name | from u8 (0 earliest, 1 latest, 2 offset) | offset u64 }
//! 0x81 Subscribed  count u8 | count × { start u64 (first offset sent) | end u64 (next offset now) }
//! 0x82 Record      channel u8 (index in the Subscribe) | offset u64 | seq u64 | time_ns u64 |
//!                  stream u32 | kind u8 | payload (the rest)
//! 0x83 Gap         channel u8 | from u64 | to u64 | reason u8 (1 retention, 2 corrupt)
//! 0x84 CaughtUp    channel u8 | next u64      (every stored record up to `next` was sent)
//! 0x85 Keepalive   (empty)
//! 0x86 Error       code u16 | message (UTF-8, the rest); the server closes after it
//! ```
//!
//! Decoding goes through the checked reader: a truncated, oversized or unknown message is a
//! [`ProtocolError`], never a panic; the reader of a stream never allocates more than
//! [`MAX_FRAME`] bytes for one message.

use crate::proto::reader::Reader;

/// Largest frame, type byte included: a 16 MiB record payload plus its header.
pub const MAX_FRAME: usize = (16 << 20) + 64;
/// Most channels in one subscription.
pub const MAX_SUBSCRIPTIONS: usize = 64;
/// The protocol version a `Subscribe` carries.
pub const VERSION: u8 = 1;
/// ALPN protocol name on both transports.
pub const ALPN: &[u8] = b"weir/1";

const SUBSCRIBE: u8 = 0x01;
const SUBSCRIBED: u8 = 0x81;
const RECORD: u8 = 0x82;
const GAP: u8 = 0x83;
const CAUGHT_UP: u8 = 0x84;
const KEEPALIVE: u8 = 0x85;
const ERROR: u8 = 0x86;

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record still stored.
    Earliest,
    /// The next record to arrive.
    Latest,
    /// This offset (the next one after the last a consumer processed, to resume).
    Offset(u64),
}

impl std::str::FromStr for StartAt {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "earliest" => Ok(StartAt::Earliest),
            "latest" => Ok(StartAt::Latest),
            offset => offset
                .parse()
                .map(StartAt::Offset)
                .map_err(|_| format!("{offset:?} is not `earliest`, `latest` or an offset (a whole number)")),
        }
    }
}

/// Why records were skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// Retention deleted them before this consumer read them.
    Retention,
    /// They failed their checksum on disk and are never served.
    Corrupt,
}

/// What a stored record means; the consumer protocol sends its byte as the spool stores it.
pub use crate::spool::RecordKind;

/// Why the server refused or ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The consumer broke the protocol.
    BadRequest,
    /// No channel by that name.
    UnknownChannel,
    /// The consumer's identity is not granted the channel.
    Forbidden,
    /// The offset is beyond the end of the channel.
    OffsetOutOfRange,
    /// Too many connections.
    Busy,
    /// The consumer took too long.
    Timeout,
    /// The server is stopping or failed.
    Unavailable,
    /// A code this version does not know.
    Other(u16),
}

impl ErrorCode {
    fn to_u16(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 1,
            ErrorCode::UnknownChannel => 2,
            ErrorCode::Forbidden => 3,
            ErrorCode::OffsetOutOfRange => 4,
            ErrorCode::Busy => 5,
            ErrorCode::Timeout => 6,
            ErrorCode::Unavailable => 7,
            ErrorCode::Other(code) => code,
        }
    }

    fn from_u16(code: u16) -> Self {
        match code {
            1 => ErrorCode::BadRequest,
            2 => ErrorCode::UnknownChannel,
            3 => ErrorCode::Forbidden,
            4 => ErrorCode::OffsetOutOfRange,
            5 => ErrorCode::Busy,
            6 => ErrorCode::Timeout,
            7 => ErrorCode::Unavailable,
            other => ErrorCode::Other(other),
        }
    }
}

/// One channel of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Channel name.
    pub channel: String,
    /// Where to start.
    pub from: StartAt,
}

/// Where one subscribed channel starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// First offset the server will send (or report in a gap).
    pub start: u64,
    /// The channel's next offset when the subscription was accepted.
    pub end: u64,
}

/// One stored record as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Index of the channel in the subscription.
    pub channel: u8,
    /// Its offset in the channel's spool.
    pub offset: u64,
    /// Its sequence number on the link.
    pub seq: u64,
    /// When `weir-recv` received it, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// Stream id (0 on datagram channels).
    pub stream: u32,
    /// What it means.
    pub kind: RecordKind,
    /// Its bytes.
    pub payload: Vec<u8>,
}

/// A message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Consumer → server: what to stream.
    Subscribe(Vec<Subscription>),
    /// Server → consumer: accepted, one entry per subscribed channel.
    Subscribed(Vec<Start>),
    /// A record.
    Record(Record),
    /// Offsets `from .. to` of a channel are skipped.
    Gap {
        /// Index of the channel in the subscription.
        channel: u8,
        /// First skipped offset.
        from: u64,
        /// First offset after the gap.
        to: u64,
        /// Why.
        reason: GapReason,
    },
    /// Every record of the channel below `next` has been sent.
    CaughtUp {
        /// Index of the channel in the subscription.
        channel: u8,
        /// The next offset.
        next: u64,
    },
    /// Nothing to send; the connection is alive.
    Keepalive,
    /// The server refuses or ends the session.
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// For a person.
        message: String,
    },
}

/// A message that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The length prefix is 0 or over [`MAX_FRAME`].
    #[error("frame length {0} is out of range (1 ..= {MAX_FRAME})")]
    FrameLength(usize),
    /// The message type is unknown.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// The body is shorter than its fields, or longer.
    #[error("malformed {0} message")]
    Malformed(&'static str),
    /// A `Subscribe` of another protocol version.
    #[error("protocol version {0} is not supported (this server speaks {VERSION})")]
    Version(u8),
}

impl Message {
    /// Appends the framed message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Message::Record(record) = self {
            encode_record(out, record);
            return;
        }
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            Message::Subscribe(subscriptions) => {
                out.push(SUBSCRIBE);
                out.push(VERSION);
                out.push(u8::try_from(subscriptions.len()).unwrap_or(u8::MAX));
                for subscription in subscriptions.iter().take(usize::from(u8::MAX)) {
                    let name = subscription.channel.as_bytes();
                    let name = name.get(..name.len().min(255)).unwrap_or_default();
                    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
                    out.extend_from_slice(name);
                    let (kind, offset) = match subscription.from {
                        StartAt::Earliest => (0, 0),
                        StartAt::Latest => (1, 0),
                        StartAt::Offset(offset) => (2, offset),
                    };
                    out.push(kind);
                    out.extend_from_slice(&offset.to_be_bytes());
                }
            }
            Message::Subscribed(starts) => {
                out.push(SUBSCRIBED);
                out.push(u8::try_from(starts.len()).unwrap_or(u8::MAX));
                for start in starts.iter().take(usize::from(u8::MAX)) {
                    out.extend_from_slice(&start.start.to_be_bytes());
                    out.extend_from_slice(&start.end.to_be_bytes());
                }
            }
            Message::Record(_) => {}
            Message::Gap {
                channel,
                from,
                to,
                reason,
            } => {
                out.push(GAP);
                out.push(*channel);
                out.extend_from_slice(&from.to_be_bytes());
                out.extend_from_slice(&to.to_be_bytes());
                out.push(match reason {
                    GapReason::Retention => 1,
                    GapReason::Corrupt => 2,
                });
            }
            Message::CaughtUp { channel, next } => {
                out.push(CAUGHT_UP);
                out.push(*channel);
                out.extend_from_slice(&next.to_be_bytes());
            }
            Message::Keepalive => out.push(KEEPALIVE),
            Message::Error { code, message } => {
                out.push(ERROR);
                out.extend_from_slice(&code.to_u16().to_be_bytes());
                let limit = message.len().min(4096);
                out.extend_from_slice(message.as_bytes().get(..limit).unwrap_or_default());
            }
        }
        let len = u32::try_from(out.len() - start - 4).unwrap_or(u32::MAX);
        if let Some(prefix) = out.get_mut(start..start + 4) {
            prefix.copy_from_slice(&len.to_be_bytes());
        }
    }

    /// Decodes one frame body (type byte and body, without the length prefix).
    pub fn decode(frame: &[u8]) -> Result<Message, ProtocolError> {
        let mut r = Reader::new(frame);
        let kind = r.u8().ok_or(ProtocolError::FrameLength(0))?;
        let message = match kind {
            SUBSCRIBE => decode_subscribe(&mut r)?,
            SUBSCRIBED => {
                let malformed = ProtocolError::Malformed("Subscribed");
                let count = r.u8().ok_or(malformed.clone())?;
                let mut starts = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    let start = r.u64().ok_or(malformed.clone())?;
                    let end = r.u64().ok_or(malformed.clone())?;
                    starts.push(Start { start, end });
                }
                Message::Subscribed(starts)
            }
            RECORD => {
                let malformed = ProtocolError::Malformed("Record");
                let channel = r.u8().ok_or(malformed.clone())?;
                let offset = r.u64().ok_or(malformed.clone())?;
                let seq = r.u64().ok_or(malformed.clone())?;
                let time_ns = r.u64().ok_or(malformed.clone())?;
                let stream = r.u32().ok_or(malformed.clone())?;
                let kind = r.u8().and_then(RecordKind::from_byte).ok_or(malformed)?;
                return Ok(Message::Record(Record {
                    channel,
                    offset,
                    seq,
                    time_ns,
                    stream,
                    kind,
                    payload: r.rest().to_vec(),
                }));
            }
            GAP => {
                let malformed = ProtocolError::Malformed("Gap");
                let channel = r.u8().ok_or(malformed.clone())?;
                let from = r.u64().ok_or(malformed.clone())?;
                let to = r.u64().ok_or(malformed.clone())?;
                let reason = match r.u8() {
                    Some(1) => GapReason::Retention,
                    Some(2) => GapReason::Corrupt,
                    _ => return Err(malformed),
                };
                Message::Gap {
                    channel,
                    from,
                    to,
                    reason,
                }
            }
            CAUGHT_UP => {
                let malformed = ProtocolError::Malformed("CaughtUp");
                let channel = r.u8().ok_or(malformed.clone())?;
                let next = r.u64().ok_or(malformed)?;
                Message::CaughtUp { channel, next }
            }
            KEEPALIVE => Message::Keepalive,
            ERROR => {
                let code = r.u16().ok_or(ProtocolError::Malformed("Error"))?;
                let message = String::from_utf8_lossy(r.rest()).into_owned();
                return Ok(Message::Error {
                    code: ErrorCode::from_u16(code),
                    message,
                });
            }
            other => return Err(ProtocolError::UnknownType(other)),
        };
        if r.remaining() != 0 {
            return Err(ProtocolError::Malformed("trailing bytes in a"));
        }
        Ok(message)
    }
}

fn encode_record(out: &mut Vec<u8>, record: &Record) {
    let len = u32::try_from(1 + 1 + 8 + 8 + 8 + 4 + 1 + record.payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(RECORD);
    out.push(record.channel);
    out.extend_from_slice(&record.offset.to_be_bytes());
    out.extend_from_slice(&record.seq.to_be_bytes());
    out.extend_from_slice(&record.time_ns.to_be_bytes());
    out.extend_from_slice(&record.stream.to_be_bytes());
    out.push(record.kind.to_byte());
    out.extend_from_slice(&record.payload);
}

fn decode_subscribe(r: &mut Reader<'_>) -> Result<Message, ProtocolError> {
    let malformed = ProtocolError::Malformed("Subscribe");
    let version = r.u8().ok_or(malformed.clone())?;
    if version != VERSION {
        return Err(ProtocolError::Version(version));
    }
    let count = usize::from(r.u8().ok_or(malformed.clone())?);
    if count == 0 || count > MAX_SUBSCRIPTIONS {
        return Err(malformed);
    }
    let mut subscriptions = Vec::with_capacity(count);
    for _ in 0..count {
        let name_len = usize::from(r.u8().ok_or(malformed.clone())?);
        let name = r.bytes(name_len).ok_or(malformed.clone())?;
        let channel = std::str::from_utf8(name)
            .map_err(|_| malformed.clone())?
            .to_owned();
        let kind = r.u8().ok_or(malformed.clone())?;
        let offset = r.u64().ok_or(malformed.clone())?;
        let from = match kind {
            0 => StartAt::Earliest,
            1 => StartAt::Latest,
            2 => StartAt::Offset(offset),
            _ => return Err(malformed),
        };
        subscriptions.push(Subscription { channel, from });
    }
    Ok(Message::Subscribe(subscriptions))
}

/// Largest `Subscribe` frame: 64 channels with the longest names.
pub const MAX_SUBSCRIBE_FRAME: usize = 3 + MAX_SUBSCRIPTIONS * (1 + 255 + 1 + 8);

/// Reads one message from a byte stream; `Ok(None)` at a clean end of stream between messages.
/// `buf` is reused between calls; it never grows beyond `max` bytes ([`MAX_FRAME`] for a
/// consumer; the server reads only a `Subscribe`, [`MAX_SUBSCRIBE_FRAME`]).
pub async fn read_message<R>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Message>>
where
    R: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if len == 0 || len > max.min(MAX_FRAME) {
        return Err(invalid(ProtocolError::FrameLength(len)));
    }
    buf.clear();
    buf.resize(len, 0);
    reader.read_exact(buf).await?;
    Message::decode(buf).map(Some).map_err(invalid)
}

fn invalid(error: ProtocolError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn every_message() -> Vec<Message> {
        vec![
            Message::Subscribe(vec![
                Subscription {
                    channel: "historian".into(),
                    from: StartAt::Earliest,
                },
                Subscription {
                    channel: "syslog".into(),
                    from: StartAt::Offset(42),
                },
                Subscription {
                    channel: "t".into(),
                    from: StartAt::Latest,
                },
            ]),
            Message::Subscribed(vec![Start { start: 3, end: 9 }]),
            Message::Record(Record {
                channel: 1,
                offset: 7,
                seq: 8,
                time_ns: 9,
                stream: 10,
                kind: RecordKind::End,
                payload: b"bytes".to_vec(),
            }),
            Message::Gap {
                channel: 0,
                from: 1,
                to: 5,
                reason: GapReason::Corrupt,
            },
            Message::CaughtUp { channel: 2, next: 11 },
            Message::Keepalive,
            Message::Error {
                code: ErrorCode::Forbidden,
                message: "no".into(),
            },
        ]
    }

    #[test]
    fn every_message_round_trips_and_every_truncation_is_an_error() {
        for message in every_message() {
            let mut bytes = Vec::new();
            message.encode(&mut bytes);
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            assert_eq!(len, bytes.len() - 4);
            assert_eq!(Message::decode(&bytes[4..]).unwrap(), message);
            // Records and errors end with free-form bytes: a cut is a shorter valid message.
            if matches!(message, Message::Record(_) | Message::Error { .. }) {
                continue;
            }
            for cut in 4..bytes.len() {
                assert!(
                    Message::decode(&bytes[4..cut]).is_err(),
                    "{message:?} cut at {cut}"
                );
            }
            let mut longer = bytes[4..].to_vec();
            longer.push(0);
            assert!(
                Message::decode(&longer).is_err(),
                "{message:?} with a trailing byte"
            );
        }
    }

    #[test]
    fn bad_subscriptions_are_refused() {
        assert_eq!(Message::decode(&[0x01, 2, 1]), Err(ProtocolError::Version(2)));
        assert!(Message::decode(&[0x01, 1, 0]).is_err(), "no channel");
        assert!(Message::decode(&[0x01, 1, 65]).is_err(), "too many channels");
        assert!(
            Message::decode(&[0x01, 1, 1, 1, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(),
            "not UTF-8"
        );
        assert_eq!(Message::decode(&[0x7f]), Err(ProtocolError::UnknownType(0x7f)));
    }

    #[tokio::test]
    async fn stream_reader_bounds_frames_and_sees_clean_ends() {
        let mut bytes = Vec::new();
        Message::Keepalive.encode(&mut bytes);
        let mut buf = Vec::new();
        let mut reader = &bytes[..];
        assert_eq!(
            read_message(&mut reader, &mut buf, MAX_FRAME).await.unwrap(),
            Some(Message::Keepalive)
        );
        assert_eq!(
            read_message(&mut reader, &mut buf, MAX_FRAME).await.unwrap(),
            None
        );
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        let error = read_message(&mut &huge[..], &mut buf, MAX_FRAME)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        // The server reads only a Subscribe, so it takes far less.
        let big = ((MAX_SUBSCRIBE_FRAME + 1) as u32).to_be_bytes();
        let error = read_message(&mut &big[..], &mut buf, MAX_SUBSCRIBE_FRAME)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert!(buf.capacity() < 1024, "never allocated the claimed length");
    }

    #[test]
    fn from_parses() {
        assert_eq!("earliest".parse(), Ok(StartAt::Earliest));
        assert_eq!("latest".parse(), Ok(StartAt::Latest));
        assert_eq!("17".parse(), Ok(StartAt::Offset(17)));
        assert!("soon".parse::<StartAt>().is_err());
    }
}
