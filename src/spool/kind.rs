//! What a spool record means: the link's message kinds, plus losses. Its byte is the one
//! the spool stores and the consumer protocol sends.

/// What a stored record means (the link's message kinds, plus losses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A datagram, or the next bytes of a stream.
    Data,
    /// A stream begins.
    Open,
    /// A stream ended cleanly.
    End,
    /// A stream was aborted: on the OT side, or by the receiver because part of it was lost.
    Abort,
    /// Messages `seq .. seq + count` never arrived; the payload is `count` (u64).
    Lost,
}

impl std::convert::From<crate::proto::frame::MessageKind> for RecordKind {
    fn from(kind: crate::proto::frame::MessageKind) -> Self {
        use crate::proto::frame::MessageKind;
        match kind {
            MessageKind::Data => RecordKind::Data,
            MessageKind::Open => RecordKind::Open,
            MessageKind::End => RecordKind::End,
            MessageKind::Abort => RecordKind::Abort,
        }
    }
}

impl RecordKind {
    /// Its byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            RecordKind::Data => 0,
            RecordKind::Open => 1,
            RecordKind::End => 2,
            RecordKind::Abort => 3,
            RecordKind::Lost => 4,
        }
    }

    /// The kind of a byte, if it is one.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => RecordKind::Data,
            1 => RecordKind::Open,
            2 => RecordKind::End,
            3 => RecordKind::Abort,
            4 => RecordKind::Lost,
            _ => return None,
        })
    }

    /// Its name in logs and output.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Data => "data",
            RecordKind::Open => "open",
            RecordKind::End => "end",
            RecordKind::Abort => "abort",
            RecordKind::Lost => "lost",
        }
    }
}
