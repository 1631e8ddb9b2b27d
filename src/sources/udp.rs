//! UDP datagram source: each datagram becomes one message of the channel.
//!
//! In order, a datagram is dropped and counted when its sender is not in `allow_from`, when
//! it is larger than `max_message`, when it fails the content filter, when it is over the
//! channel's rate, or when the queue toward the link is full (UDP senders cannot be slowed).
//! The read buffer holds the largest UDP payload, so an oversize datagram is seen and
//! counted, never silently truncated.

use std::sync::atomic::Ordering;

use tokio::net::UdpSocket;

use super::limit::Admit;
use super::{current, DropReason, SourceContext};
use crate::policy::FilterViolation;

/// Largest UDP payload.
const MAX_UDP_PAYLOAD: usize = 65_536;

/// Serves one UDP channel until the context's stop flag turns true.
pub async fn run(socket: UdpSocket, mut ctx: SourceContext) {
    let mut buf = vec![0u8; MAX_UDP_PAYLOAD];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = ctx.stop.wait_for(|s| *s) => return,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(error) => {
                tracing::warn!(channel = %ctx.counters.name, %error, "receive failed");
                continue;
            }
        };
        let rules = current(&ctx.rules);
        let payload = buf.get(..n).unwrap_or_default();
        let verdict = if !rules.channel.allows(peer.ip()) {
            Err(DropReason::NotAllowed)
        } else if n > rules.channel.max_message {
            Err(DropReason::Oversize)
        } else if let Err(violation) = rules.channel.filter.check(payload) {
            Err(match violation {
                FilterViolation::NotUtf8 => DropReason::FilterUtf8,
                FilterViolation::PatternMismatch => DropReason::FilterPattern,
                FilterViolation::NotJson => DropReason::FilterJson,
            })
        } else if rules.limiter.as_ref().is_some_and(|l| l.admit(n) != Admit::Now) {
            Err(DropReason::Rate)
        } else if !ctx.intake.try_send(rules.priority, ctx.id, payload.to_vec()) {
            Err(DropReason::QueueFull)
        } else {
            Ok(())
        };
        match verdict {
            Ok(()) => {
                ctx.counters.messages.fetch_add(1, Ordering::Relaxed);
                ctx.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(reason) => {
                ctx.counters.count_drop(reason);
                tracing::debug!(channel = %ctx.counters.name, %peer, len = n, reason = reason.name(), "datagram dropped");
            }
        }
    }
}
