//! UDP datagram source: each datagram becomes one message of the channel.
//!
//! Datagrams larger than `max_message` are dropped and counted (the read buffer is one byte
//! larger, so an oversize datagram is seen, not silently truncated). When the intake queue is
//! full the datagram is dropped and counted: UDP senders cannot be slowed down.

use std::sync::atomic::Ordering;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::Intake;
use crate::proto::frame::MessageKind;

/// Serves one UDP channel until `stop` turns true.
pub async fn run(
    name: String,
    channel: u32,
    socket: UdpSocket,
    max_message: usize,
    intake: Intake,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; max_message.saturating_add(1).min(65_536)];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(error) => {
                tracing::warn!(channel = %name, %error, "receive failed");
                continue;
            }
        };
        if n > max_message {
            intake.counters.drop_oversize.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(channel = %name, %peer, len = n, max_message, "datagram dropped: over max_message");
            continue;
        }
        let payload = buf.get(..n).unwrap_or_default().to_vec();
        if !intake.try_send(channel, 0, MessageKind::Data, payload) {
            tracing::debug!(channel = %name, %peer, "datagram dropped: link queue full");
        }
    }
}
