//! What the receiver reports: the events it yields, and the counters it keeps of every outcome
//! (each drop under its own reason).

use std::time::Duration;

use crate::proto::frame::MessageKind;
use crate::proto::wire::Heartbeat;

/// What the receiver reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete message, in channel order.
    Message {
        /// Channel id.
        channel: u32,
        /// Stream id (0 on datagram channels).
        stream: u32,
        /// What the message means.
        kind: MessageKind,
        /// Its sequence number in the channel.
        seq: u64,
        /// Its bytes.
        payload: Vec<u8>,
    },
    /// Messages `first_seq .. first_seq + count` of `channel` will never arrive.
    Lost {
        /// Channel id.
        channel: u32,
        /// First lost sequence number.
        first_seq: u64,
        /// How many consecutive messages.
        count: u64,
    },
    /// A stream lost data or its end: its consumer must see an abort, not a clean end.
    StreamBroken {
        /// Channel id.
        channel: u32,
        /// Stream id.
        stream: u32,
    },
    /// A heartbeat arrived.
    Heartbeat {
        /// Its session.
        session: u64,
        /// Its body.
        heartbeat: Heartbeat,
        /// Whether the sender's policy fingerprint equals ours.
        fingerprint_matches: bool,
    },
    /// A new sender session was authenticated and replaces `previous`.
    SessionStarted {
        /// The new session id.
        session: u64,
        /// The session it replaces.
        previous: Option<u64>,
    },
}

/// A change of link health, reported by [`Receiver::poll_health_event`] once link health
/// is enabled with [`Receiver::enable_link_health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEvent {
    /// No authenticated datagram for `silent_for` (at least the down bound).
    LinkDown {
        /// How long the link has been silent.
        silent_for: Duration,
    },
    /// Authenticated traffic arrives (again).
    LinkUp {
        /// How long it had been down; `None` on the first traffic.
        down_for: Option<Duration>,
    },
}

/// Every outcome the receiver counts. Drops are named `drop_*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams handed to `handle`.
    pub datagrams: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Dropped: shorter than a header and a tag.
    pub drop_short: u64,
    /// Dropped: unknown protocol version.
    pub drop_version: u64,
    /// Dropped: unknown datagram kind.
    pub drop_kind: u64,
    /// Dropped: key id not in the key file.
    pub drop_unknown_key: u64,
    /// Dropped: session older than the current one, or already replaced.
    pub drop_stale_session: u64,
    /// Dropped: packet number already seen.
    pub drop_replay: u64,
    /// Dropped: packet number too far behind the window.
    pub drop_too_old: u64,
    /// Dropped: AEAD authentication failed (forged, corrupted, or wrong key).
    pub drop_forged: u64,
    /// Dropped: authenticated but malformed body, or a symbol that contradicts its block.
    pub drop_malformed: u64,
    /// Dropped: reassembly memory full.
    pub drop_memory: u64,
    /// Dropped: frame for a channel the policy does not declare.
    pub drop_unknown_channel: u64,
    /// Dropped: frame older than the channel's next expected message.
    pub drop_stale_frame: u64,
    /// Dropped: message larger than the channel's `max_message`.
    pub drop_oversize: u64,
    /// Dropped: stream message for a stream not open (after a break) or kind wrong for the channel.
    pub drop_stream_state: u64,
    /// Symbols that arrived after their block was decoded or given up (not a loss).
    pub symbols_unneeded: u64,
    /// Source symbols rebuilt by FEC.
    pub symbols_recovered: u64,
    /// Blocks decoded.
    pub blocks_decoded: u64,
    /// Blocks given up: not enough symbols within the reorder window.
    pub blocks_lost: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Bytes of messages delivered.
    pub message_bytes: u64,
    /// Messages declared lost.
    pub messages_lost: u64,
    /// Streams broken by a loss, a session change or the stream limit.
    pub streams_broken: u64,
    /// Heartbeats authenticated.
    pub heartbeats: u64,
    /// Heartbeats whose policy fingerprint differs from ours.
    pub fingerprint_mismatches: u64,
    /// Sessions started.
    pub sessions: u64,
}

impl Counters {
    /// The drop counters by name, for logs and metrics.
    pub fn drops(&self) -> [(&'static str, u64); 15] {
        [
            ("short", self.drop_short),
            ("version", self.drop_version),
            ("kind", self.drop_kind),
            ("unknown_key", self.drop_unknown_key),
            ("stale_session", self.drop_stale_session),
            ("replay", self.drop_replay),
            ("too_old", self.drop_too_old),
            ("forged", self.drop_forged),
            ("malformed", self.drop_malformed),
            ("memory", self.drop_memory),
            ("unknown_channel", self.drop_unknown_channel),
            ("stale_frame", self.drop_stale_frame),
            ("oversize", self.drop_oversize),
            ("stream_state", self.drop_stream_state),
            ("blocks_lost", self.blocks_lost),
        ]
    }
}
