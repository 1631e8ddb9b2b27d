//! What both IT daemons show of the spool: per channel, its offsets, size, state and drops.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::prom::{Exposition, Kind};
use crate::spool::view::{SpoolCounters, SpoolView};
use crate::spool::LogStatus;

/// A metric family: name, help and how to read its value from `T`.
type Family<T, V> = (&'static str, &'static str, fn(&T) -> V);

fn load(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// The status JSON's `spool`: one object per channel.
pub fn spool_json(spool: &SpoolView) -> Value {
    let channels: Vec<Value> = spool
        .channels
        .iter()
        .map(|(name, view)| {
            let status = *view.status.borrow();
            let c = &view.counters;
            let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
            json!({
                "name": name, "start": status.start, "durable": status.durable, "end": status.end,
                "stored_bytes": status.bytes, "full": status.full,
                "dropped": n(&c.drops_full) + n(&c.drops_queue) + n(&c.drops_error) + n(&c.drops_cut),
            })
        })
        .collect();
    Value::Array(channels)
}

/// The spool's families, per channel (both IT daemons show them).
pub fn spool_metrics(spool: &SpoolView, e: &mut Exposition) {
    {
        let counters: [Family<SpoolCounters, f64>; 2] = [
            ("weir_spool_records_total", "Records stored per channel.", |c| {
                load(&c.records)
            }),
            (
                "weir_spool_bytes_total",
                "Payload bytes stored per channel.",
                |c| load(&c.bytes),
            ),
        ];
        for (name, help, get) in counters {
            e.family(name, Kind::Counter, help);
            for (channel, view) in &spool.channels {
                e.sample(name, &[("channel", channel)], get(&view.counters));
            }
        }
        e.family(
            "weir_spool_dropped_total",
            Kind::Counter,
            "Records the spool could not store, by reason (disk_full, queue_full, write_error, \
             stream_cut: data of a stream an earlier drop had cut).",
        );
        for (channel, view) in &spool.channels {
            let c = &view.counters;
            for (reason, value) in [
                ("disk_full", &c.drops_full),
                ("queue_full", &c.drops_queue),
                ("write_error", &c.drops_error),
                ("stream_cut", &c.drops_cut),
            ] {
                e.sample(
                    "weir_spool_dropped_total",
                    &[("channel", channel), ("reason", reason)],
                    load(value),
                );
            }
        }
        let gauges: [Family<LogStatus, f64>; 4] = [
            (
                "weir_spool_start_offset",
                "First offset still stored per channel.",
                |s| s.start as f64,
            ),
            (
                "weir_spool_durable_offset",
                "Offsets below this are fsynced (and served).",
                |s| s.durable as f64,
            ),
            (
                "weir_spool_end_offset",
                "Next offset to be written per channel.",
                |s| s.end as f64,
            ),
            ("weir_spool_stored_bytes", "Bytes on disk per channel.", |s| {
                s.bytes as f64
            }),
        ];
        for (name, help, get) in gauges {
            e.family(name, Kind::Gauge, help);
            for (channel, view) in &spool.channels {
                e.sample(name, &[("channel", channel)], get(&view.status.borrow()));
            }
        }
        e.family(
            "weir_spool_full",
            Kind::Gauge,
            "1 while the channel refuses records because its disk is full.",
        );
        for (channel, view) in &spool.channels {
            let full = view.counters.full.load(std::sync::atomic::Ordering::Relaxed);
            e.sample(
                "weir_spool_full",
                &[("channel", channel)],
                f64::from(u8::from(full)),
            );
        }
    }
}
