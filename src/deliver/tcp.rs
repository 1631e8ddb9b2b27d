//! TCP re-emit: one outgoing connection per stream of the channel, read from the spool.
//!
//! - `Open` connects; while the consumer cannot be reached the sink retries with backoff and
//!   does not move on, so the spool holds what arrives meanwhile and the stream is delivered
//!   whole once the consumer is back.
//! - `Data` is written in order; `End` closes cleanly (FIN); `Abort` resets (RST). A stream ends
//!   cleanly only if every byte of it was written: `SO_LINGER` 0 is armed from the moment the
//!   connection is up and cleared only just before the clean shutdown, so a crash, `kill -9` or
//!   OOM kill of weir-deliver resets every open stream too.
//! - A gap (retention removed records before the sink read them, or a corrupt record) resets
//!   every open stream, is logged and counted; records of a stream whose `Open` the sink did not
//!   carry are skipped and counted.
//! - The sink's stored offset is the `Open` of the oldest stream still open (or its position
//!   when none is): after a restart the sink re-emits those streams from their start on new
//!   connections (the old ones were reset). Streams that completed after that point are sent
//!   again: at-least-once, per stream.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::offsets::SinkOffset;
use super::{Follow, SinkCounters};
use crate::spool::{Item, Record, RecordKind};

/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between connection attempts while the consumer is unreachable.
pub const MAX_RETRY: Duration = Duration::from_secs(2);
const FIRST_RETRY: Duration = Duration::from_millis(100);

struct Open {
    conn: TcpStream,
    /// The spool offset of its `Open` record.
    opened_at: u64,
}

/// Runs the sink until `stop`.
pub async fn run(
    name: String,
    addr: SocketAddr,
    mut follow: Follow,
    mut offset: SinkOffset,
    counters: Arc<SinkCounters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut streams: BTreeMap<u32, Open> = BTreeMap::new();
    // The `Open` the sink was connecting for when it was told to stop: resume there.
    let mut stopped_at = None;
    'follow: while let Some(items) = follow.next(&mut stop).await {
        for item in items {
            match item {
                Item::Record(record) => {
                    let offset = record.offset;
                    if !carry(&name, addr, record, &mut streams, &counters, &mut stop).await {
                        stopped_at = Some(offset);
                        break 'follow;
                    }
                }
                Item::Gap { from, to, reason } => {
                    counters
                        .gap_records
                        .fetch_add(to.saturating_sub(from), Ordering::Relaxed);
                    tracing::warn!(
                        sink = %name, from, to, ?reason, open_streams = streams.len(),
                        "spool records unreadable for this sink (gap): its open streams are reset"
                    );
                    for (_, open) in std::mem::take(&mut streams) {
                        reset(open.conn, &counters);
                    }
                }
            }
        }
        save(&name, &follow, &streams, None, &mut offset, &counters, false).await;
    }
    // Stopping: nothing open is complete. Resume each from its start next time.
    save(&name, &follow, &streams, stopped_at, &mut offset, &counters, true).await;
    for (stream, open) in streams {
        tracing::info!(sink = %name, stream, "stopping: stream reset toward the consumer");
        reset(open.conn, &counters);
    }
}

/// Stores the offset to resume from: the `Open` of the oldest stream still open (or of the one
/// being connected when the sink stopped, `stopped_at`), or the position when none is.
async fn save(
    name: &str,
    follow: &Follow,
    streams: &BTreeMap<u32, Open>,
    stopped_at: Option<u64>,
    offset: &mut SinkOffset,
    counters: &SinkCounters,
    force: bool,
) {
    let Some(position) = follow.position() else {
        return;
    };
    counters.position.store(position, Ordering::Relaxed);
    let resume = streams
        .values()
        .map(|s| s.opened_at)
        .chain(stopped_at)
        .min()
        .unwrap_or(position);
    if let Err(error) = offset.store(resume, Instant::now(), force).await {
        tracing::error!(sink = %name, %error, "cannot store the sink's offset");
    }
}

/// Carries one record; false when `stop` came while waiting for the consumer.
async fn carry(
    name: &str,
    addr: SocketAddr,
    record: Record,
    streams: &mut BTreeMap<u32, Open>,
    counters: &SinkCounters,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let stream = record.stream;
    match record.kind {
        RecordKind::Open => {
            if let Some(old) = streams.remove(&stream) {
                reset(old.conn, counters);
            }
            let Some(conn) = connect(name, addr, stream, stop).await else {
                return false;
            };
            streams.insert(
                stream,
                Open {
                    conn,
                    opened_at: record.offset,
                },
            );
        }
        RecordKind::Data => {
            let Some(open) = streams.get_mut(&stream) else {
                counters.skipped.fetch_add(1, Ordering::Relaxed);
                return true;
            };
            match open.conn.write_all(&record.payload).await {
                Ok(()) => counters.wrote(record.payload.len()),
                Err(error) => {
                    counters.drop_unreachable.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(sink = %name, stream, %error, "write to consumer failed; stream reset, the rest of it skipped");
                    if let Some(open) = streams.remove(&stream) {
                        reset(open.conn, counters);
                    }
                }
            }
        }
        RecordKind::End => match streams.remove(&stream) {
            Some(mut open) => {
                // Every byte is written: only now may the close be a FIN.
                let _ = socket2::SockRef::from(&open.conn).set_linger(None);
                let _ = open.conn.shutdown().await;
                counters.streams_closed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(sink = %name, stream, "stream closed cleanly");
            }
            None => {
                counters.skipped.fetch_add(1, Ordering::Relaxed);
            }
        },
        RecordKind::Abort => {
            if let Some(open) = streams.remove(&stream) {
                tracing::info!(sink = %name, stream, "stream reset toward the consumer");
                reset(open.conn, counters);
            }
        }
        // The streams a loss cut get their own `Abort` records.
        RecordKind::Lost => {}
    }
    true
}

/// Connects for `stream`, retrying with backoff while the consumer is unreachable; `None` when
/// `stop` came first.
async fn connect(
    name: &str,
    addr: SocketAddr,
    stream: u32,
    stop: &mut watch::Receiver<bool>,
) -> Option<TcpStream> {
    let mut wait = FIRST_RETRY;
    let mut warned = false;
    loop {
        let error = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(conn)) => match arm_reset(&conn) {
                Ok(()) => {
                    let _ = conn.set_nodelay(true);
                    if warned {
                        tracing::info!(sink = %name, %addr, stream, "consumer reachable again");
                    }
                    return Some(conn);
                }
                // Without it a crash would end the stream with a FIN: never carry it so.
                Err(error) => error.to_string(),
            },
            Ok(Err(error)) => error.to_string(),
            Err(_) => "connect timed out".to_owned(),
        };
        if !warned {
            warned = true;
            tracing::warn!(sink = %name, %addr, stream, %error, "cannot reach the consumer; retrying (the spool holds the stream meanwhile)");
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return None;
        }
        wait = (wait * 2).min(MAX_RETRY);
    }
}

fn arm_reset(conn: &TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(conn).set_linger(Some(Duration::ZERO))
}

/// Closes with a reset: `SO_LINGER` 0 is armed from the start.
fn reset(conn: TcpStream, counters: &SinkCounters) {
    counters.streams_reset.fetch_add(1, Ordering::Relaxed);
    drop(conn);
}
