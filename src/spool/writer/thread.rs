//! The spool's writer thread: batches what the feed queued, appends it per channel, runs each
//! log's fsync and retention schedule, and publishes the logs' status.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::feed::{widen, Input};
use super::{cut, Channel, BATCH_BYTES, BATCH_RECORDS, IDLE_WAKE};
use crate::spool::published::{Published, PublishedCounters};
use crate::spool::AppendError;

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(super) fn run(
    mut logs: HashMap<u32, Channel>,
    rx: flume::Receiver<Input>,
    queued: Arc<AtomicUsize>,
    changed: watch::Sender<u64>,
) {
    let mut batch: Vec<Input> = Vec::with_capacity(BATCH_RECORDS);
    let mut open = true;
    while open {
        let now = Instant::now();
        let deadline = logs
            .values()
            .filter_map(|c| c.log.poll_timeout())
            .min()
            .unwrap_or(now + IDLE_WAKE)
            .min(now + IDLE_WAKE);
        match rx.recv_deadline(deadline) {
            Ok(first) => {
                let mut bytes = first.payload.len();
                batch.push(first);
                while batch.len() < BATCH_RECORDS && bytes < BATCH_BYTES {
                    match rx.try_recv() {
                        Ok(input) => {
                            bytes += input.payload.len();
                            batch.push(input);
                        }
                        Err(_) => break,
                    }
                }
                append(&mut logs, &mut batch);
                queued.fetch_sub(bytes, Ordering::Relaxed);
            }
            Err(flume::RecvTimeoutError::Timeout) => {}
            Err(flume::RecvTimeoutError::Disconnected) => open = false,
        }
        let (now, now_unix) = (Instant::now(), unix_ns());
        let mut any_changed = false;
        for channel in logs.values_mut() {
            if !open {
                if let Err(error) = channel.log.sync() {
                    tracing::error!(channel = %channel.name, %error, "spool: final fsync failed");
                }
            }
            if let Err(error) = channel.log.tick(now, now_unix) {
                tracing::error!(channel = %channel.name, %error, "spool: fsync or retention failed");
            }
            any_changed |= publish(channel);
        }
        if any_changed {
            changed.send_modify(|generation| *generation = generation.wrapping_add(1));
        }
    }
    tracing::info!("spool writer stopped; every log synced");
}

/// Publishes a channel's status if it moved; true when it did.
fn publish(channel: &mut Channel) -> bool {
    let status = channel.log.status();
    let c = &channel.counters;
    let published = Published {
        status,
        counters: PublishedCounters {
            records: c.records.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            drops_full: c.drops_full.load(Ordering::Relaxed),
            drops_queue: c.drops_queue.load(Ordering::Relaxed),
            drops_error: c.drops_error.load(Ordering::Relaxed),
            drops_cut: c.drops_cut.load(Ordering::Relaxed),
        },
    };
    match channel.published.write(&published) {
        Ok(()) => channel.publish_failed = false,
        Err(error) if !channel.publish_failed => {
            channel.publish_failed = true;
            tracing::error!(
                channel = %channel.name,
                %error,
                "spool: cannot write the status file; weir-deliver does not see new records"
            );
        }
        Err(_) => {}
    }
    let was_full = channel.counters.full.swap(status.full, Ordering::Relaxed);
    if was_full && !status.full {
        tracing::warn!(
            event = "spool_resumed",
            channel = %channel.name,
            refused = channel.refused_since_full,
            "spool: space is available again; the channel accepts records"
        );
        channel.refused_since_full = 0;
    }
    channel.status.send_if_modified(|old| {
        let moved = *old != status;
        *old = status;
        moved
    })
}

fn append(logs: &mut HashMap<u32, Channel>, batch: &mut Vec<Input>) {
    let time_ns = unix_ns();
    let now = Instant::now();
    // Records of one channel keep their order; channels are written one after the other.
    batch.sort_by_key(|input| input.channel);
    let mut rest = batch.as_slice();
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|input| input.channel == first.channel)
            .count();
        let (group, tail) = rest.split_at(same);
        rest = tail;
        let Some(channel) = logs.get_mut(&first.channel) else {
            continue;
        };
        // What could not be stored before goes first, as one loss record.
        let lost = channel.lost.map(|span| Input::lost(first.channel, span));
        let plan = cut::plan(&channel.open_streams, lost.iter().chain(group), time_ns);
        let count = group.len() as u64;
        match channel.log.append_batch(&plan.records, now) {
            Ok(_) => {
                if std::mem::take(&mut channel.failing) {
                    tracing::warn!(channel = %channel.name, "spool: writes succeed again");
                }
                channel.lost = None;
                channel.open_streams = plan.open;
                if plan.discarded > 0 {
                    channel
                        .counters
                        .drops_cut
                        .fetch_add(plan.discarded, Ordering::Relaxed);
                    tracing::warn!(
                        channel = %channel.name,
                        records = plan.discarded,
                        "spool: data of streams cut by an earlier drop not stored (each stream \
                         ends with an abort record)"
                    );
                }
                let count = count - plan.discarded;
                channel.counters.records.fetch_add(count, Ordering::Relaxed);
                let bytes: usize = group.iter().map(|input| input.payload.len()).sum();
                channel.counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            }
            Err(error) => {
                for input in group {
                    widen(&mut channel.lost, input);
                }
                if let AppendError::Full(error) = error {
                    channel.counters.drops_full.fetch_add(count, Ordering::Relaxed);
                    if channel.refused_since_full == 0 {
                        tracing::error!(
                            event = "spool_full",
                            channel = %channel.name,
                            %error,
                            "spool: the disk is full; this channel's records are dropped, counted \
                             and recorded as lost until space is freed"
                        );
                    }
                    channel.refused_since_full += count;
                } else {
                    channel.counters.drops_error.fetch_add(count, Ordering::Relaxed);
                    if !channel.failing {
                        channel.failing = true;
                        tracing::error!(
                            event = "spool_write_failed",
                            channel = %channel.name,
                            %error,
                            "spool: write failed; records are dropped, counted and recorded as lost"
                        );
                    }
                }
            }
        }
    }
    batch.clear();
}
