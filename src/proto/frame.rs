//! Messages ⇄ frames inside a block.
//!
//! The source data of a block is a run of frames followed by zero padding:
//!
//! ```text
//!  0       1               5               9                              17              21      23
//!  +-------+---------------+---------------+------------------------------+---------------+-------+---- ... --+
//!  | flags |  channel id   |   stream id   |     message sequence number   |    offset     |  len  | len bytes |
//!  +-------+---------------+---------------+------------------------------+---------------+-------+---- ... --+
//!
//!  flags: 0x80  frame marker, always set (a 0x00 byte where a frame would start ends the block)
//!         0x01  first fragment of the message: set exactly when offset is 0
//!         0x02  last fragment of the message
//!         0x0c  message kind: 0x00 data, 0x04 stream open, 0x08 stream end, 0x0c stream abort
//!         0x70  reserved, zero
//!  offset: where this fragment's bytes start in the message (u32)
//! ```
//!
//! A message larger than the room left in a block, or than 65,535 bytes, is split into
//! fragments that share its sequence number and follow each other, in the same block or
//! continuing in later ones. Each fragment says where its bytes belong, so a receiver that
//! missed a fragment — in a block it gave up — sees that the next one does not continue what
//! it holds, and the message is lost instead of spliced. Sequence numbers count every message
//! of a channel in a session from 0, so a gap names exactly what was lost.

use super::reader::{PutBytes, Reader};

/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 23;

/// The largest message a frame offset can place: fragments start below 4 GiB.
pub const MAX_FRAMED_MESSAGE: usize = u32::MAX as usize;

const MARKER: u8 = 0x80;
const FIRST: u8 = 0x01;
const LAST: u8 = 0x02;
const KIND_MASK: u8 = 0x0c;
const RESERVED: u8 = 0x70;

/// What a message means to its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Bytes: a datagram, or the next chunk of a stream.
    Data,
    /// A stream (a TCP connection on the OT side) begins.
    Open,
    /// A stream ended cleanly.
    End,
    /// A stream was aborted (reset, read error) on the OT side.
    Abort,
}

impl MessageKind {
    fn bits(self) -> u8 {
        match self {
            MessageKind::Data => 0x00,
            MessageKind::Open => 0x04,
            MessageKind::End => 0x08,
            MessageKind::Abort => 0x0c,
        }
    }

    fn from_bits(flags: u8) -> MessageKind {
        match flags & KIND_MASK {
            0x04 => MessageKind::Open,
            0x08 => MessageKind::End,
            0x0c => MessageKind::Abort,
            _ => MessageKind::Data,
        }
    }
}

/// The header of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Channel id (from the policy).
    pub channel: u32,
    /// Stream within the channel; 0 for datagram channels.
    pub stream: u32,
    /// Per-channel message sequence number.
    pub seq: u64,
    /// What the message means.
    pub kind: MessageKind,
    /// Where this fragment's bytes start in the message; 0 for its first fragment.
    pub offset: u32,
    /// This frame holds the end of the message.
    pub last: bool,
}

impl FrameHeader {
    /// This frame holds the start of the message.
    pub fn first(&self) -> bool {
        self.offset == 0
    }

    /// Appends this header and `bytes` as one frame. `bytes` must be at most `u16::MAX` long.
    pub fn write(&self, bytes: &[u8], out: &mut Vec<u8>) {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        let mut flags = MARKER | self.kind.bits();
        if self.first() {
            flags |= FIRST;
        }
        if self.last {
            flags |= LAST;
        }
        out.put_u8(flags);
        out.put_u32(self.channel);
        out.put_u32(self.stream);
        out.put_u64(self.seq);
        out.put_u32(self.offset);
        out.put_u16(len);
        out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
    }
}

/// A frame that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Reserved flag bits set or marker missing.
    #[error("bad frame flags {0:#04x}")]
    Flags(u8),
    /// The frame runs past the end of the block.
    #[error("frame truncated")]
    Truncated,
    /// The sequence number is above [`MAX_COUNTER`](super::wire::MAX_COUNTER).
    #[error("sequence number out of range")]
    Sequence,
    /// The first-fragment flag disagrees with the offset (set with an offset other than 0, or
    /// clear with offset 0).
    #[error("first-fragment flag disagrees with offset {0}")]
    Offset(u32),
}

/// Iterates the frames of a block's source data, stopping at the padding.
pub struct Frames<'a> {
    reader: Reader<'a>,
    failed: bool,
}

impl<'a> Frames<'a> {
    /// Frames of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            reader: Reader::new(data),
            failed: false,
        }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(FrameHeader, &'a [u8]), FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let flags = self.reader.u8()?;
        if flags == 0 {
            self.reader.rest();
            return None;
        }
        let parsed = parse_after_flags(flags, &mut self.reader);
        self.failed = parsed.is_err();
        Some(parsed)
    }
}

fn parse_after_flags<'a>(flags: u8, r: &mut Reader<'a>) -> Result<(FrameHeader, &'a [u8]), FrameError> {
    if flags & MARKER == 0 || flags & RESERVED != 0 {
        return Err(FrameError::Flags(flags));
    }
    let header = FrameHeader {
        channel: r.u32().ok_or(FrameError::Truncated)?,
        stream: r.u32().ok_or(FrameError::Truncated)?,
        seq: r.u64().ok_or(FrameError::Truncated)?,
        kind: MessageKind::from_bits(flags),
        offset: 0,
        last: flags & LAST != 0,
    };
    if header.seq > super::wire::MAX_COUNTER {
        return Err(FrameError::Sequence);
    }
    let offset = r.u32().ok_or(FrameError::Truncated)?;
    if (flags & FIRST != 0) != (offset == 0) {
        return Err(FrameError::Offset(offset));
    }
    let header = FrameHeader { offset, ..header };
    let len = r.u16().ok_or(FrameError::Truncated)?;
    let bytes = r.bytes(usize::from(len)).ok_or(FrameError::Truncated)?;
    Ok((header, bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn header(kind: MessageKind, offset: u32, last: bool) -> FrameHeader {
        FrameHeader {
            channel: 0x0102_0304,
            stream: 5,
            seq: 6,
            kind,
            offset,
            last,
        }
    }

    #[test]
    fn frames_round_trip_and_stop_at_padding() {
        let mut block = Vec::new();
        header(MessageKind::Open, 0, true).write(&[], &mut block);
        header(MessageKind::Data, 0, false).write(b"abc", &mut block);
        header(MessageKind::Data, 3, true).write(b"de", &mut block);
        header(MessageKind::Abort, 0, true).write(b"", &mut block);
        block.extend_from_slice(&[0; 40]);
        let frames: Vec<_> = Frames::new(&block).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0], (header(MessageKind::Open, 0, true), &b""[..]));
        assert_eq!(frames[1], (header(MessageKind::Data, 0, false), &b"abc"[..]));
        assert_eq!(frames[2], (header(MessageKind::Data, 3, true), &b"de"[..]));
        assert!(!frames[2].0.first());
        assert_eq!(frames[3].0.kind, MessageKind::Abort);
        assert_eq!(block[FRAME_HEADER_LEN], 0x80 | 0x01);
    }

    #[test]
    fn truncated_and_bad_flags_are_errors_then_stop() {
        let mut block = Vec::new();
        header(MessageKind::Data, 0, true).write(b"hello", &mut block);
        let mut frames = Frames::new(&block[..block.len() - 1]);
        assert_eq!(frames.next(), Some(Err(FrameError::Truncated)));
        assert_eq!(frames.next(), None);
        assert_eq!(Frames::new(&[0x01, 0, 0]).next(), Some(Err(FrameError::Flags(1))));
        assert_eq!(Frames::new(&[0x90]).next(), Some(Err(FrameError::Flags(0x90))));
    }

    #[test]
    fn the_first_flag_must_agree_with_the_offset() {
        let mut block = Vec::new();
        header(MessageKind::Data, 0, true).write(b"x", &mut block);
        // Clear FIRST on a frame at offset 0.
        block[0] &= !FIRST;
        assert_eq!(Frames::new(&block).next(), Some(Err(FrameError::Offset(0))));
        let mut block = Vec::new();
        header(MessageKind::Data, 7, true).write(b"x", &mut block);
        block[0] |= FIRST;
        assert_eq!(Frames::new(&block).next(), Some(Err(FrameError::Offset(7))));
    }
}
