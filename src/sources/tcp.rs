//! TCP stream source: each accepted connection becomes one stream of the channel.
//!
//! A connection from a peer outside `allow_from` is refused (closed at once) and counted. A
//! stream is an `Open` message, `Data` chunks of at most `max_message` bytes in order, then
//! `End` when the peer closed cleanly or `Abort` when the connection failed, broke the
//! channel's UTF-8 filter, or the daemon is stopping, so the IT side can tell a complete
//! stream from a cut one. Over the channel's rate, and while the queue toward the link is
//! full, reading pauses: back-pressure, never loss.
//!
//! Only `filter.utf8` applies to streams (checked across chunk boundaries); a violation ends
//! the stream toward the IT side as an abort. With `on_violation = "close"` the plant-side
//! connection is closed at once; with `"drop"` the rest of it is read and discarded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use super::limit::Admit;
use super::{current, DropReason, IntakeClosed, SourceContext};
use crate::policy::{OnViolation, Utf8Stream};
use crate::proto::frame::MessageKind;
use crate::proto::recv::MAX_STREAMS_PER_CHANNEL;

/// Serves one TCP channel until the context's stop flag turns true.
pub async fn run(listener: TcpListener, mut ctx: SourceContext) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut next_stream: u32 = 1;
    let name = ctx.counters.name.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = ctx.stop.wait_for(|s| *s) => return,
        };
        let (conn, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                tracing::warn!(channel = %name, %error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if !current(&ctx.rules).channel.allows(peer.ip()) {
            ctx.counters.count_drop(DropReason::NotAllowed);
            tracing::warn!(channel = %name, %peer, "connection refused: peer not in allow_from");
            continue;
        }
        if open.load(Ordering::Relaxed) >= MAX_STREAMS_PER_CHANNEL {
            tracing::warn!(channel = %name, %peer, limit = MAX_STREAMS_PER_CHANNEL, "connection refused: too many open streams");
            continue;
        }
        let stream = next_stream;
        next_stream = next_stream.checked_add(1).unwrap_or(1);
        open.fetch_add(1, Ordering::Relaxed);
        ctx.counters.connections.fetch_add(1, Ordering::Relaxed);
        tracing::info!(channel = %name, %peer, stream, "stream opened");
        let (ctx, open, name) = (ctx.clone(), open.clone(), name.clone());
        tokio::spawn(async move {
            let outcome = carry(stream, conn, &ctx).await;
            open.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Ok(kind) => tracing::info!(channel = %name, %peer, stream, end = ?kind, "stream closed"),
                Err(_) => tracing::warn!(channel = %name, stream, "link stopped while a stream was open"),
            }
        });
    }
}

async fn carry(stream: u32, mut conn: TcpStream, ctx: &SourceContext) -> Result<MessageKind, IntakeClosed> {
    let mut stop = ctx.stop.clone();
    let priority = current(&ctx.rules).priority;
    ctx.intake
        .send(priority, ctx.id, stream, MessageKind::Open, Vec::new())
        .await?;
    let mut utf8 = Utf8Stream::new();
    let end = loop {
        let rules = current(&ctx.rules);
        // Read into spare capacity: no zeroing of a buffer that is about to be overwritten.
        let mut buf = Vec::with_capacity(rules.channel.max_message);
        let read = tokio::select! {
            r = conn.read_buf(&mut buf) => r,
            _ = stop.wait_for(|s| *s) => break MessageKind::Abort,
        };
        match read {
            Ok(0) => {
                if rules.channel.filter.utf8 && utf8.finish().is_err() {
                    ctx.counters.count_drop(DropReason::FilterUtf8);
                    tracing::warn!(channel = %ctx.counters.name, stream, "stream ended inside a UTF-8 character; sending abort");
                    break MessageKind::Abort;
                }
                break MessageKind::End;
            }
            Ok(_) => {
                if rules.channel.filter.utf8 && utf8.push(&buf).is_err() {
                    ctx.counters.count_drop(DropReason::FilterUtf8);
                    tracing::warn!(channel = %ctx.counters.name, stream, "stream is not UTF-8; sending abort");
                    if rules.channel.on_violation == OnViolation::Drop {
                        discard_rest(&mut conn).await;
                    }
                    break MessageKind::Abort;
                }
                if let Some(limiter) = &rules.limiter {
                    loop {
                        match limiter.admit(buf.len()) {
                            Admit::Now => break,
                            Admit::After(wait) => tokio::time::sleep(wait).await,
                            Admit::Never => {
                                // The policy keeps the burst at least max_message; count it
                                // all the same rather than stall.
                                ctx.counters.count_drop(DropReason::Rate);
                                break;
                            }
                        }
                    }
                }
                ctx.counters.messages.fetch_add(1, Ordering::Relaxed);
                ctx.counters.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                ctx.intake
                    .send(rules.priority, ctx.id, stream, MessageKind::Data, buf)
                    .await?;
            }
            Err(error) => {
                tracing::warn!(channel = %ctx.counters.name, stream, %error, "stream read failed; sending abort");
                break MessageKind::Abort;
            }
        }
    };
    ctx.intake.send(priority, ctx.id, stream, end, Vec::new()).await?;
    Ok(end)
}

async fn discard_rest(conn: &mut TcpStream) {
    let mut sink = vec![0u8; 64 * 1024];
    while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {}
}
