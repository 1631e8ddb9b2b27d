//! UDP re-emit: each `Data` record of the channel, in spool order, as one datagram.
//!
//! The sink's offset ([`SinkOffset`]) is the record after the last one sent; it is stored at
//! most every [`SAVE_EVERY`](super::offsets::SAVE_EVERY) and when the sink stops, so a
//! restart repeats nothing, and a crash repeats at most that much. `Lost` records and gaps
//! (retention removed records before the sink read them) are logged and counted; the
//! consumer, which cannot be told, sees the datagrams missing.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::offsets::SinkOffset;
use super::{Follow, SinkCounters};
use crate::spool::{Item, RecordKind};

/// Runs the sink until `stop`.
pub async fn run(
    name: String,
    addr: SocketAddr,
    socket: UdpSocket,
    mut follow: Follow,
    mut offset: SinkOffset,
    counters: Arc<SinkCounters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    while let Some(items) = follow.next(&mut stop).await {
        for item in items {
            match item {
                Item::Record(record) if record.kind == RecordKind::Data => {
                    match socket.send_to(&record.payload, addr).await {
                        Ok(_) => {
                            failing = false;
                            counters.wrote(record.payload.len());
                        }
                        Err(error) => {
                            counters.drop_unreachable.fetch_add(1, Ordering::Relaxed);
                            if !failing {
                                failing = true;
                                tracing::warn!(sink = %name, %addr, %error, "send to consumer failed; datagrams dropped and counted");
                            }
                        }
                    }
                }
                Item::Record(record) => {
                    if let Some(count) = record.lost_count() {
                        tracing::warn!(sink = %name, first_seq = record.seq, count, "messages lost before the spool; the consumer misses them");
                    }
                }
                Item::Gap { from, to, reason } => {
                    counters
                        .gap_records
                        .fetch_add(to.saturating_sub(from), Ordering::Relaxed);
                    tracing::warn!(sink = %name, from, to, ?reason, "spool records unreadable for this sink (gap)");
                }
            }
        }
        save(&name, &follow, &mut offset, &counters, false).await;
    }
    save(&name, &follow, &mut offset, &counters, true).await;
}

async fn save(name: &str, follow: &Follow, offset: &mut SinkOffset, counters: &SinkCounters, force: bool) {
    let Some(position) = follow.position() else {
        return;
    };
    counters.position.store(position, Ordering::Relaxed);
    if let Err(error) = offset.store(position, Instant::now(), force).await {
        tracing::error!(sink = %name, %error, "cannot store the sink's offset");
    }
}
