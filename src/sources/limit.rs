//! Per-channel rate limits (GCRA through `governor`): a byte rate and a message rate, each
//! with a burst. A datagram source asks [`ChannelLimiter::admit`] once and drops what does not
//! conform; a stream source waits the time it is told and asks again, so its peer is slowed
//! down, never cut.
//!
//! Bytes are metered in cells of `unit` bytes, chosen so one cell takes at least a
//! microsecond at the configured rate: governor schedules cells in whole nanoseconds, and a
//! cell of one byte at hundreds of MB/s would round its interval by several percent.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// What a message may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// It conforms; its cost has been taken.
    Now,
    /// It will conform after this wait (nothing was taken).
    After(Duration),
    /// It can never conform: larger than the burst.
    Never,
}

/// A channel's rate limits.
pub struct ChannelLimiter<C: Clock = DefaultClock> {
    bytes: Option<(Limiter<C>, u64)>,
    messages: Option<Limiter<C>>,
    clock: C,
}

impl<C: Clock> std::fmt::Debug for ChannelLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelLimiter")
            .field("bytes", &self.bytes.as_ref().map(|(_, unit)| unit))
            .field("messages", &self.messages.is_some())
            .finish()
    }
}

fn nonzero(v: u64) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(v.max(1)).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

impl ChannelLimiter<DefaultClock> {
    /// Limits on the real clock: `bytes` = (bytes per second, burst bytes), `messages` =
    /// (messages per second, burst messages).
    pub fn new(bytes: Option<(u64, u64)>, messages: Option<(u32, u32)>) -> Self {
        Self::with_clock(bytes, messages, DefaultClock::default())
    }
}

impl<C: Clock + Clone> ChannelLimiter<C> {
    /// Limits on `clock` (a fake clock in tests).
    pub fn with_clock(bytes: Option<(u64, u64)>, messages: Option<(u32, u32)>, clock: C) -> Self {
        let bytes = bytes.map(|(rate, burst)| {
            let unit = rate.div_ceil(1_000_000).max(1);
            let quota = Quota::per_second(nonzero(rate / unit)).allow_burst(nonzero(burst / unit));
            (RateLimiter::direct_with_clock(quota, clock.clone()), unit)
        });
        let messages = messages.map(|(rate, burst)| {
            let quota = Quota::per_second(nonzero(u64::from(rate))).allow_burst(nonzero(u64::from(burst)));
            RateLimiter::direct_with_clock(quota, clock.clone())
        });
        Self {
            bytes,
            messages,
            clock,
        }
    }

    /// Whether a message of `len` bytes conforms now. The message limit is checked first;
    /// when it passes and the byte limit then refuses, the message token stays spent (a
    /// refused datagram is dropped anyway, and streams have no message limit).
    pub fn admit(&self, len: usize) -> Admit {
        if let Some(messages) = &self.messages {
            if let Err(not_until) = messages.check() {
                return Admit::After(not_until.wait_time_from(self.clock.now()));
            }
        }
        if let Some((bytes, unit)) = &self.bytes {
            let cells = (len as u64).div_ceil(*unit).max(1);
            match bytes.check_n(nonzero(cells)) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => return Admit::After(not_until.wait_time_from(self.clock.now())),
                Err(_) => return Admit::Never,
            }
        }
        Admit::Now
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limiter(
        bytes: Option<(u64, u64)>,
        messages: Option<(u32, u32)>,
    ) -> (ChannelLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (ChannelLimiter::with_clock(bytes, messages, clock.clone()), clock)
    }

    #[test]
    fn byte_rate_exact_limit_one_over_and_burst_exhaustion() {
        // 1000 B/s, burst 1000 B.
        let (l, clock) = limiter(Some((1000, 1000)), None);
        assert_eq!(l.admit(1000), Admit::Now, "the whole burst at once");
        assert_eq!(
            l.admit(1),
            Admit::After(Duration::from_millis(1)),
            "burst exhausted"
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.admit(1), Admit::Now);
        assert_eq!(
            l.admit(1001),
            Admit::Never,
            "one byte over the burst can never pass"
        );
        // Over one simulated second, exactly the rate passes (after the burst).
        clock.advance(Duration::from_secs(10));
        let _ = l.admit(1000);
        let mut passed = 0;
        for _ in 0..1000 {
            clock.advance(Duration::from_millis(1));
            if l.admit(1) == Admit::Now {
                passed += 1;
            }
        }
        assert_eq!(passed, 1000);
    }

    #[test]
    fn message_rate_with_burst() {
        let (l, clock) = limiter(None, Some((10, 3)));
        for _ in 0..3 {
            assert_eq!(l.admit(5000), Admit::Now);
        }
        assert_eq!(l.admit(1), Admit::After(Duration::from_millis(100)));
        clock.advance(Duration::from_millis(99));
        assert!(matches!(l.admit(1), Admit::After(_)), "one ms early");
        clock.advance(Duration::from_millis(1));
        assert_eq!(l.admit(1), Admit::Now, "exactly on time");
    }

    #[test]
    fn fast_byte_rates_stay_accurate() {
        // 100 MB/s with a 1 MB burst: over 1 s of 64 KiB messages, within 0.5 % of the rate.
        let (l, clock) = limiter(Some((100_000_000, 1_000_000)), None);
        let mut sent = 0u64;
        let mut t = Duration::ZERO;
        while t < Duration::from_secs(1) {
            match l.admit(65_536) {
                Admit::Now => sent += 65_536,
                Admit::After(d) => {
                    clock.advance(d);
                    t += d;
                }
                Admit::Never => panic!("burst is larger than the message"),
            }
        }
        let expected = 100_000_000.0 + 1_000_000.0;
        assert!((sent as f64 - expected).abs() / expected < 0.005, "{sent}");
    }
}
