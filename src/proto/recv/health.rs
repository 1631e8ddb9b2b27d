//! Link health, sans-IO: whether authenticated traffic still crosses the link.
//!
//! Contract: the link is *down* once no authenticated datagram (data or heartbeat) has
//! arrived for `down_after` — counted from the last one, or from the first time the receiver
//! was driven if none ever arrived. It is raised exactly at that instant (a call at
//! `last + down_after` reports it, a call one nanosecond earlier does not) and cleared by the
//! next authenticated datagram. Each transition is reported once. Time is passed in.

use std::time::{Duration, Instant};

/// Silence after which the link is reported down unless the shell sets another bound
/// (usually three heartbeat intervals).
pub const DEFAULT_LINK_DOWN_AFTER: Duration = Duration::from_secs(3);

/// What the receiver knows of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Nothing authenticated has arrived yet, and the silence is still short.
    Waiting,
    /// Authenticated traffic arrives.
    Up,
    /// Silent for at least the down bound.
    Down,
}

/// A change of [`LinkState`] to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Traffic (re)appeared; `down_for` is how long it had been down, if it was.
    Up { down_for: Option<Duration> },
    /// Silent for `silent_for`.
    Down { silent_for: Duration },
}

/// The link-health state machine.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    down_after: Duration,
    state: LinkState,
    /// The first instant the receiver was driven.
    started: Option<Instant>,
    /// The last authenticated datagram.
    last_alive: Option<Instant>,
    /// The last authenticated heartbeat.
    last_heartbeat: Option<Instant>,
    /// When the link went down.
    down_since: Option<Instant>,
}

impl Health {
    pub(crate) fn new(down_after: Duration) -> Self {
        Self {
            down_after,
            state: LinkState::Waiting,
            started: None,
            last_alive: None,
            last_heartbeat: None,
            down_since: None,
        }
    }

    pub(crate) fn set_down_after(&mut self, down_after: Duration) {
        self.down_after = down_after;
    }

    pub(crate) fn state(&self) -> LinkState {
        self.state
    }

    pub(crate) fn last_heartbeat(&self) -> Option<Instant> {
        self.last_heartbeat
    }

    pub(crate) fn last_alive(&self) -> Option<Instant> {
        self.last_alive
    }

    /// Notes that the receiver was driven at `now` (the reference when nothing arrived yet).
    pub(crate) fn touch(&mut self, now: Instant) {
        if self.started.is_none() {
            self.started = Some(now);
        }
    }

    /// An authenticated datagram arrived at `now`.
    pub(crate) fn alive(&mut self, now: Instant, heartbeat: bool) -> Option<Transition> {
        self.touch(now);
        self.last_alive = Some(self.last_alive.map_or(now, |t| t.max(now)));
        if heartbeat {
            self.last_heartbeat = Some(self.last_heartbeat.map_or(now, |t| t.max(now)));
        }
        if self.state == LinkState::Up {
            return None;
        }
        let down_for = self
            .down_since
            .take()
            .map(|since| now.saturating_duration_since(since));
        self.state = LinkState::Up;
        Some(Transition::Up { down_for })
    }

    /// When the link goes down if nothing arrives first; `None` while it is down.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.state == LinkState::Down {
            return None;
        }
        self.last_alive
            .or(self.started)
            .and_then(|t| t.checked_add(self.down_after))
    }

    /// Checks the deadline at `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Option<Transition> {
        self.touch(now);
        let deadline = self.deadline()?;
        if now < deadline {
            return None;
        }
        let from = self.last_alive.or(self.started).unwrap_or(now);
        self.state = LinkState::Down;
        self.down_since = Some(deadline);
        Some(Transition::Down {
            silent_for: now.saturating_duration_since(from),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NS: Duration = Duration::from_nanos(1);

    #[test]
    fn down_exactly_at_the_threshold_and_up_again_on_traffic() {
        let t0 = Instant::now();
        let mut h = Health::new(Duration::from_millis(600));
        assert_eq!(h.alive(t0, true), Some(Transition::Up { down_for: None }));
        assert_eq!(h.deadline(), Some(t0 + Duration::from_millis(600)));
        let edge = t0 + Duration::from_millis(600);
        assert_eq!(h.check(edge - NS), None);
        assert_eq!(h.state(), LinkState::Up);
        assert_eq!(
            h.check(edge),
            Some(Transition::Down {
                silent_for: Duration::from_millis(600)
            })
        );
        assert_eq!(h.state(), LinkState::Down);
        assert_eq!(h.deadline(), None);
        assert_eq!(h.check(edge + Duration::from_secs(9)), None, "reported once");
        let back = edge + Duration::from_secs(1);
        assert_eq!(
            h.alive(back, false),
            Some(Transition::Up {
                down_for: Some(Duration::from_secs(1))
            })
        );
        assert_eq!(h.alive(back, true), None);
        assert_eq!(h.last_heartbeat(), Some(back));
    }

    #[test]
    fn silence_from_the_start_is_a_down_link() {
        let t0 = Instant::now();
        let mut h = Health::new(DEFAULT_LINK_DOWN_AFTER);
        assert_eq!(h.state(), LinkState::Waiting);
        assert_eq!(h.check(t0), None);
        assert_eq!(h.check(t0 + DEFAULT_LINK_DOWN_AFTER - NS), None);
        assert!(matches!(
            h.check(t0 + DEFAULT_LINK_DOWN_AFTER),
            Some(Transition::Down { .. })
        ));
        assert_eq!(h.last_alive(), None);
    }

    #[test]
    fn each_datagram_pushes_the_deadline() {
        let t0 = Instant::now();
        let mut h = Health::new(Duration::from_secs(3));
        h.alive(t0, true);
        h.alive(t0 + Duration::from_secs(2), false);
        assert_eq!(h.check(t0 + Duration::from_secs(4)), None);
        assert!(h.check(t0 + Duration::from_secs(5)).is_some());
    }

    /// The receiver with link health on: events, `poll_timeout` and the restart report.
    #[test]
    fn receiver_reports_down_at_the_deadline_and_a_restart() {
        use crate::proto::recv::{Event, HealthEvent};
        use crate::proto::tests::sim;
        let t0 = Instant::now();
        let mut rx = sim::receiver();
        assert_eq!(rx.poll_timeout(), None, "off by default");
        rx.enable_link_health(Duration::from_millis(600));
        let first = 5u64 << 32;
        let mut tx = sim::sender(first, 10);
        let mut d = Vec::new();
        tx.poll_transmit(t0, &mut d).unwrap();
        rx.handle(t0, &mut d);
        assert_eq!(
            rx.poll_health_event(),
            Some(HealthEvent::LinkUp { down_for: None })
        );
        assert_eq!(rx.link_state(), Some(LinkState::Up));
        assert_eq!(rx.last_heartbeat(), Some(t0));
        let edge = t0 + Duration::from_millis(600);
        assert_eq!(rx.poll_timeout(), Some(edge));
        rx.handle_timeout(edge - NS);
        assert_eq!(rx.poll_health_event(), None);
        rx.handle_timeout(edge);
        assert_eq!(
            rx.poll_health_event(),
            Some(HealthEvent::LinkDown {
                silent_for: Duration::from_millis(600)
            })
        );
        assert_eq!(rx.link_state(), Some(LinkState::Down));
        // A forged datagram does not bring the link up.
        let mut forged = vec![0u8; 100];
        rx.handle(edge + NS, &mut forged);
        assert_eq!(rx.poll_health_event(), None);
        // The sender restarts: a new session.
        let second = 6u64 << 32;
        let mut tx = sim::sender(second, 10);
        let back = edge + Duration::from_secs(2);
        let mut d = Vec::new();
        tx.poll_transmit(back, &mut d).unwrap();
        rx.handle(back, &mut d);
        assert_eq!(
            rx.poll_health_event(),
            Some(HealthEvent::LinkUp {
                down_for: Some(Duration::from_secs(2))
            })
        );
        let events: Vec<Event> = std::iter::from_fn(|| rx.poll_event()).collect();
        assert!(events.contains(&Event::SessionStarted {
            session: second,
            previous: Some(first)
        }));
    }
}
