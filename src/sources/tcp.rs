//! TCP stream source: each accepted connection becomes one stream of the channel.
//!
//! A stream is an `Open` message, `Data` chunks of at most `max_message` bytes in order, and
//! then `End` when the peer closed cleanly or `Abort` when the connection failed or the
//! daemon is stopping, so the IT side can tell a complete stream from a cut one. Reading
//! waits while the intake queue is full: back-pressure instead of loss.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::Intake;
use crate::proto::frame::MessageKind;
use crate::proto::recv::MAX_STREAMS_PER_CHANNEL;

/// Serves one TCP channel until `stop` turns true.
pub async fn run(
    name: String,
    channel: u32,
    listener: TcpListener,
    max_message: usize,
    intake: Intake,
    mut stop: watch::Receiver<bool>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut next_stream: u32 = 1;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (conn, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                tracing::warn!(channel = %name, %error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= MAX_STREAMS_PER_CHANNEL {
            intake
                .counters
                .refused_stream_limit
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(channel = %name, %peer, limit = MAX_STREAMS_PER_CHANNEL, "connection refused: too many open streams");
            continue;
        }
        let stream = next_stream;
        next_stream = next_stream.checked_add(1).unwrap_or(1);
        open.fetch_add(1, Ordering::Relaxed);
        intake.counters.connections.fetch_add(1, Ordering::Relaxed);
        tracing::info!(channel = %name, %peer, stream, "stream opened");
        let (name, intake, stop, open) = (name.clone(), intake.clone(), stop.clone(), open.clone());
        tokio::spawn(async move {
            let outcome = carry(channel, stream, conn, max_message, &intake, stop).await;
            open.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Ok(kind) => tracing::info!(channel = %name, %peer, stream, end = ?kind, "stream closed"),
                Err(_) => tracing::warn!(channel = %name, stream, "link stopped while a stream was open"),
            }
        });
    }
}

async fn carry(
    channel: u32,
    stream: u32,
    mut conn: TcpStream,
    max_message: usize,
    intake: &Intake,
    mut stop: watch::Receiver<bool>,
) -> Result<MessageKind, super::IntakeClosed> {
    intake
        .send(channel, stream, MessageKind::Open, Vec::new())
        .await?;
    let end = loop {
        // Read into spare capacity: no zeroing of a buffer that is about to be overwritten.
        let mut buf = Vec::with_capacity(max_message);
        let read = tokio::select! {
            r = conn.read_buf(&mut buf) => r,
            _ = stop.wait_for(|s| *s) => break MessageKind::Abort,
        };
        match read {
            Ok(0) => break MessageKind::End,
            Ok(_) => {
                intake.send(channel, stream, MessageKind::Data, buf).await?;
            }
            Err(error) => {
                tracing::warn!(channel, stream, %error, "stream read failed; sending abort");
                intake
                    .counters
                    .connections_aborted
                    .fetch_add(1, Ordering::Relaxed);
                break MessageKind::Abort;
            }
        }
    };
    intake.send(channel, stream, end, Vec::new()).await?;
    Ok(end)
}
