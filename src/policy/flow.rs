//! How a channel shares the link: its rate limit and its priority.
//!
//! Contract:
//! - A [`RateLimit`] is two independent token buckets (bytes and messages); a message may cross
//!   when both have enough tokens. Validation guarantees a byte burst of at least the channel's
//!   `max_message` (a larger message could never pass) and a message burst of at least 1, and
//!   that the byte rate does not exceed `link.bandwidth`.
//! - What happens over the limit is the source's business and is written down there: a UDP
//!   datagram over the limit is dropped and counted; a TCP source stops reading (back-pressure).
//! - [`Priority`] orders channels when the link is the bottleneck: every queued message of a
//!   level is served before any of the next level. The values are 1 ..= [`PRIORITY_LEVELS`].

use std::fmt;

use super::limits::DEFAULT_PRIORITY;
use super::units::format_rate;

/// Number of priority levels: [`Priority::HIGH`] (1), [`Priority::NORMAL`] (2),
/// [`Priority::BULK`] (3).
pub const PRIORITY_LEVELS: usize = 3;

/// A channel's `rate = { bytes = …, messages = …, burst = …, burst_messages = … }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Long-run byte rate of the channel's messages (payload, before framing and FEC), in bytes
    /// per second: `rate.bytes` as written (bit/s) divided by 8, rounded down; ≥ 1 and at most
    /// `link.bandwidth / 8`. `None`: no byte limit.
    pub bytes_per_sec: Option<u64>,
    /// Byte bucket size: `rate.burst`, default 1/10 s at `bytes_per_sec` but at least
    /// `max_message`; always ≥ the channel's `max_message`. 0 when `bytes_per_sec` is `None`.
    pub burst_bytes: u64,
    /// Long-run message rate, in messages per second (≥ 1). `None`: no message limit. On a TCP
    /// channel a message is one read chunk.
    pub messages_per_sec: Option<u32>,
    /// Message bucket size: `rate.burst_messages`, default `max(1, messages_per_sec / 10)`;
    /// ≥ 1. 0 when `messages_per_sec` is `None`.
    pub burst_messages: u32,
}

impl RateLimit {
    /// `"200 Mbit/s, 1000 msg/s"`, `"200 Mbit/s"` or `"1000 msg/s"`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(bytes) = self.bytes_per_sec {
            parts.push(format_rate(bytes.saturating_mul(8)));
        }
        if let Some(messages) = self.messages_per_sec {
            parts.push(format!("{messages} msg/s"));
        }
        parts.join(", ")
    }
}

/// A channel's `priority`: 1 is served first (telemetry, alarms), 2 is the default, 3 is bulk.
///
/// `Ord` follows the number, so the smallest value is the most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Priority(u8);

impl Priority {
    /// 1: served first.
    pub const HIGH: Self = Self(1);
    /// 2: the default.
    pub const NORMAL: Self = Self(2);
    /// 3: served when nothing else waits.
    pub const BULK: Self = Self(3);
    /// Every level, most urgent first.
    pub const ALL: [Self; PRIORITY_LEVELS] = [Self::HIGH, Self::NORMAL, Self::BULK];

    /// The priority `value`, if it is 1 ..= [`PRIORITY_LEVELS`].
    pub fn new(value: u8) -> Option<Self> {
        (1..=PRIORITY_LEVELS)
            .contains(&usize::from(value))
            .then_some(Self(value))
    }

    /// The value as written: 1, 2 or 3.
    pub fn get(&self) -> u8 {
        self.0
    }

    /// 0-based level, `0 .. PRIORITY_LEVELS`, most urgent first: an index for per-level queues.
    pub fn index(&self) -> usize {
        usize::from(self.0.saturating_sub(1))
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self(DEFAULT_PRIORITY)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
