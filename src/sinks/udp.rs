//! UDP re-emit: each message of a datagram channel is sent as one datagram to the sink
//! address. A send error is counted and logged (rate-limited), never fatal.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{Queued, SinkCounters, SinkEvent};

/// Runs the sink until its queue closes.
pub async fn run(
    name: String,
    addr: SocketAddr,
    socket: UdpSocket,
    mut events: mpsc::Receiver<SinkEvent>,
    queued: Arc<Queued>,
    counters: Arc<SinkCounters>,
) {
    let mut errors = 0u64;
    while let Some(event) = events.recv().await {
        let SinkEvent::Message { payload, .. } = event else {
            continue;
        };
        let sent = socket.send_to(&payload, addr).await;
        queued.release(payload.len());
        match sent {
            Ok(_) => {
                counters.messages.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
            }
            Err(error) => {
                counters.drop_unreachable.fetch_add(1, Ordering::Relaxed);
                errors += 1;
                if errors % 1000 == 1 {
                    tracing::warn!(sink = %name, %addr, %error, errors, "datagram re-emit failed");
                }
            }
        }
    }
}
