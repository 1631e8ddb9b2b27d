//! One consumer session, the same over TLS and QUIC: read the subscription, authorize it,
//! then stream the spool.
//!
//! Contract:
//! - The subscription must arrive before the handshake deadline; every channel in it must
//!   exist and be granted to one of the consumer's identities, or the whole subscription is
//!   refused with an `Error` (and, for a grant, an `event="consumer_denied"` warning).
//! - Records are read from the spool in batches of about [`BATCH_BYTES`] on the blocking pool,
//!   never past a channel's `durable` offset, and written with the transport's flow control: a
//!   slow consumer only slows its own session, and falls behind in the spool. Retention passing
//!   it becomes a `Gap`, never silence.
//! - A consumer that accepts no bytes for `idle_timeout` is disconnected; an idle session gets
//!   a `Keepalive` every third of it. A consumer that sends anything after its subscription is
//!   disconnected with `BadRequest`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};

use super::Shared;
use crate::consumer::protocol::{
    read_message, ErrorCode, GapReason, Message, Record, Start, StartAt, Subscription, MAX_SUBSCRIBE_FRAME,
};
use crate::spool::view::ChannelView;
use crate::spool::{Cursor, GapReason as SpoolGap, Item};

/// Payload bytes read from the spool per batch.
pub const BATCH_BYTES: usize = 256 << 10;

struct Subscribed {
    index: u8,
    view: ChannelView,
    cursor: Option<Cursor>,
    caught_up_sent: bool,
}

/// Who is on the other end, for logs.
#[derive(Debug, Clone)]
pub(super) struct Peer {
    pub addr: std::net::SocketAddr,
    pub transport: &'static str,
    pub identities: Vec<String>,
}

/// Writes `out` to the consumer; gives up when a single write makes no progress for `limit`
/// (a consumer may be slow, not stalled).
async fn write<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &mut Vec<u8>,
    limit: Duration,
) -> Result<(), String> {
    let mut written = 0;
    while written < out.len() {
        let rest = out.get(written..).unwrap_or_default();
        match timeout(limit, writer.write(rest)).await {
            Ok(Ok(0)) => return Err("the consumer closed the connection".to_owned()),
            Ok(Ok(n)) => written += n,
            Ok(Err(error)) => return Err(format!("write failed: {error}")),
            Err(_) => {
                return Err(format!(
                    "the consumer accepted no data for {} s (idle timeout): disconnected",
                    limit.as_secs_f32()
                ))
            }
        }
    }
    out.clear();
    match timeout(limit, writer.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("write failed: {error}")),
        Err(_) => Err("flush timed out (idle timeout): disconnected".to_owned()),
    }
}

/// Runs a session to its end. `deadline` bounds the wait for the subscription.
pub(super) async fn run<R, W>(
    shared: Arc<Shared>,
    peer: Peer,
    mut reader: R,
    mut writer: W,
    deadline: Instant,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut buf = Vec::new();
    let request = match timeout_at(deadline, read_message(&mut reader, &mut buf, MAX_SUBSCRIBE_FRAME)).await {
        Err(_) => Err((
            ErrorCode::Timeout,
            "no subscription before the handshake timeout".to_owned(),
        )),
        Ok(Ok(Some(Message::Subscribe(subscriptions)))) => Ok(subscriptions),
        Ok(Ok(None)) => return,
        Ok(Ok(Some(other))) => Err((
            ErrorCode::BadRequest,
            format!("expected Subscribe, got {other:?}"),
        )),
        Ok(Err(error)) => Err((ErrorCode::BadRequest, error.to_string())),
    };
    let mut channels = match request.and_then(|subscriptions| authorize(&shared, &peer, &subscriptions)) {
        Ok(channels) => channels,
        Err((code, message)) => {
            tracing::info!(peer = %peer.addr, transport = peer.transport, ?code, %message, "consumer refused");
            refuse(&mut writer, code, &message, shared.idle_timeout).await;
            return;
        }
    };
    let starts = channels
        .iter()
        .map(|c| Start {
            start: c.cursor.as_ref().map_or(0, Cursor::position),
            end: c.view.status.borrow().end,
        })
        .collect();
    let names: Vec<&str> = channels.iter().map(|c| c.view.name.as_str()).collect();
    tracing::info!(
        peer = %peer.addr,
        transport = peer.transport,
        identity = ?peer.identities,
        channels = ?names,
        "consumer subscribed"
    );
    let mut out = Vec::with_capacity(BATCH_BYTES + 4096);
    Message::Subscribed(starts).encode(&mut out);
    let result = stream(&shared, &mut channels, &mut reader, &mut writer, &mut out).await;
    match result {
        Ok(()) => tracing::info!(peer = %peer.addr, transport = peer.transport, "consumer disconnected"),
        Err(reason) => {
            tracing::info!(peer = %peer.addr, transport = peer.transport, %reason, "consumer session ended")
        }
    }
    let _ = timeout(Duration::from_secs(1), writer.shutdown()).await;
}

fn authorize(
    shared: &Shared,
    peer: &Peer,
    subscriptions: &[Subscription],
) -> Result<Vec<Subscribed>, (ErrorCode, String)> {
    let grants = shared.grants();
    let mut channels = Vec::with_capacity(subscriptions.len());
    for (index, subscription) in subscriptions.iter().enumerate() {
        let name = &subscription.channel;
        let view = shared.spool.channels.get(name);
        let granted = grants
            .get(name)
            .is_some_and(|allowed| peer.identities.iter().any(|id| allowed.contains(id)));
        // An unknown channel is refused like one not granted: names are not disclosed.
        let Some(view) = view.filter(|_| granted) else {
            shared.counters.denied.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                event = "consumer_denied",
                peer = %peer.addr,
                transport = peer.transport,
                identity = ?peer.identities,
                channel = %name,
                "consumer refused: its certificate's identity is not granted this channel"
            );
            return Err((
                ErrorCode::Forbidden,
                format!(
                    "no channel {name:?} is granted to {:?}; the policy's `consumers` of the channel \
                     must list one of these identities",
                    peer.identities
                ),
            ));
        };
        let status = *view.status.borrow();
        let from = match subscription.from {
            StartAt::Earliest => status.start,
            StartAt::Latest => status.end,
            StartAt::Offset(offset) if offset > status.end => {
                return Err((
                    ErrorCode::OffsetOutOfRange,
                    format!(
                        "offset {offset} is beyond the end of channel {name:?} (next offset {})",
                        status.end
                    ),
                ));
            }
            StartAt::Offset(offset) => offset,
        };
        channels.push(Subscribed {
            index: u8::try_from(index).unwrap_or(u8::MAX),
            cursor: Some(Cursor::new(&view.dir, from)),
            view: view.clone(),
            caught_up_sent: false,
        });
    }
    Ok(channels)
}

async fn refuse<W: AsyncWrite + Unpin>(writer: &mut W, code: ErrorCode, message: &str, limit: Duration) {
    let mut out = Vec::new();
    Message::Error {
        code,
        message: message.to_owned(),
    }
    .encode(&mut out);
    let _ = timeout(limit, async {
        writer.write_all(&out).await?;
        writer.shutdown().await
    })
    .await;
}

async fn stream<R, W>(
    shared: &Shared,
    channels: &mut [Subscribed],
    reader: &mut R,
    writer: &mut W,
    out: &mut Vec<u8>,
) -> Result<(), String>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let idle = shared.idle_timeout;
    let keepalive_every = (idle / 3).min(Duration::from_secs(10));
    let mut next_keepalive = Instant::now() + keepalive_every;
    let mut changed = shared.spool.changed.clone();
    let mut items = Vec::new();
    loop {
        changed.borrow_and_update();
        let mut progressed = false;
        for channel in channels.iter_mut() {
            let durable = channel.view.status.borrow().durable;
            let Some(mut cursor) = channel.cursor.take() else {
                continue;
            };
            if cursor.position() >= durable {
                if !channel.caught_up_sent {
                    Message::CaughtUp {
                        channel: channel.index,
                        next: cursor.position(),
                    }
                    .encode(out);
                    channel.caught_up_sent = true;
                }
                channel.cursor = Some(cursor);
                continue;
            }
            let mut batch = std::mem::take(&mut items);
            let read = tokio::task::spawn_blocking(move || {
                let result = cursor.read(durable, BATCH_BYTES, &mut batch);
                (cursor, batch, result)
            })
            .await;
            let (cursor, batch, result) = match read {
                Ok(read) => read,
                Err(error) => {
                    return unavailable(writer, out, idle, format!("spool reader failed: {error}")).await
                }
            };
            items = batch;
            channel.cursor = Some(cursor);
            if let Err(error) = result {
                tracing::error!(channel = %channel.view.name, %error, "spool read failed");
                return unavailable(writer, out, idle, format!("spool read failed: {error}")).await;
            }
            // Only a read that returned something is progress: an emptied directory must not spin.
            if items.is_empty() {
                continue;
            }
            channel.caught_up_sent = false;
            progressed = true;
            encode_items(shared, channel.index, &channel.view.name, &mut items, out);
            write(writer, out, idle).await?;
            next_keepalive = Instant::now() + keepalive_every;
        }
        if progressed {
            continue;
        }
        if !out.is_empty() {
            write(writer, out, idle).await?;
            next_keepalive = Instant::now() + keepalive_every;
        }
        let mut probe = [0u8; 1];
        tokio::select! {
            result = changed.changed() => {
                if result.is_err() {
                    return unavailable(writer, out, idle, "weir-deliver is stopping".to_owned()).await;
                }
            }
            () = tokio::time::sleep_until(next_keepalive) => {
                Message::Keepalive.encode(out);
                write(writer, out, idle).await?;
                next_keepalive = Instant::now() + keepalive_every;
            }
            read = reader.read(&mut probe) => {
                return match read {
                    Ok(0) | Err(_) => Ok(()),
                    Ok(_) => {
                        Message::Error {
                            code: ErrorCode::BadRequest,
                            message: "a consumer sends nothing after its subscription".to_owned(),
                        }
                        .encode(out);
                        let _ = write(writer, out, idle).await;
                        Err("the consumer sent data after subscribing".to_owned())
                    }
                };
            }
        }
    }
}

/// Tells the consumer the server cannot go on, and ends the session.
async fn unavailable<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &mut Vec<u8>,
    idle: Duration,
    reason: String,
) -> Result<(), String> {
    Message::Error {
        code: ErrorCode::Unavailable,
        message: reason.clone(),
    }
    .encode(out);
    let _ = write(writer, out, idle).await;
    Err(reason)
}

fn encode_items(shared: &Shared, index: u8, name: &str, items: &mut Vec<Item>, out: &mut Vec<u8>) {
    let counters = &shared.counters;
    for item in items.drain(..) {
        match item {
            Item::Record(stored) => {
                counters.records.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes
                    .fetch_add(stored.payload.len() as u64, Ordering::Relaxed);
                Message::Record(Record {
                    channel: index,
                    offset: stored.offset,
                    seq: stored.seq,
                    time_ns: stored.time_ns,
                    stream: stored.stream,
                    kind: stored.kind,
                    payload: stored.payload,
                })
                .encode(out);
            }
            Item::Gap { from, to, reason } => {
                let reason = match reason {
                    SpoolGap::Retention => GapReason::Retention,
                    SpoolGap::Corrupt => GapReason::Corrupt,
                };
                counters.gaps.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(channel = %name, from, to, ?reason, "consumer: records skipped (gap notice sent)");
                Message::Gap {
                    channel: index,
                    from,
                    to,
                    reason,
                }
                .encode(out);
            }
        }
    }
}
