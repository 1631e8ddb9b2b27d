//! The receiver's Prometheus metrics, rendered from a [`RecvView`] (see the README's
//! "Observability" section for the names). Families are always written, even when empty, so
//! a dashboard never sees a metric vanish; values that are not known yet (heartbeat age
//! before any heartbeat, fingerprint match before any heartbeat) are left out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::prom::{Exposition, Kind};
use super::recv::{ChannelStat, RecvView};
use crate::proto::recv::LinkState;
use crate::sinks::SinkCounters;
use crate::spool::LogStatus;
use crate::spooler::SpoolCounters;

/// A metric family: name, help and how to read its value from `T`.
type Family<T, V> = (&'static str, &'static str, fn(&T) -> V);

fn load(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

impl RecvView {
    /// The Prometheus text exposition.
    pub fn metrics(&self, now: Instant) -> String {
        let c = &self.counters;
        let mut e = Exposition::new();
        for (name, help, value) in [
            (
                "weir_recv_datagrams_total",
                "Datagrams received from the link.",
                c.datagrams,
            ),
            ("weir_recv_bytes_total", "Bytes received from the link.", c.bytes),
            ("weir_recv_messages_total", "Messages delivered.", c.messages),
            (
                "weir_recv_message_bytes_total",
                "Bytes of messages delivered.",
                c.message_bytes,
            ),
            (
                "weir_recv_symbols_recovered_total",
                "Source symbols rebuilt by FEC.",
                c.symbols_recovered,
            ),
            (
                "weir_recv_blocks_decoded_total",
                "Blocks decoded.",
                c.blocks_decoded,
            ),
            (
                "weir_recv_blocks_lost_total",
                "Blocks given up (too few symbols).",
                c.blocks_lost,
            ),
            (
                "weir_recv_messages_lost_total",
                "Messages declared lost.",
                c.messages_lost,
            ),
            (
                "weir_recv_streams_broken_total",
                "Streams broken by loss or restart.",
                c.streams_broken,
            ),
            (
                "weir_recv_heartbeats_total",
                "Authenticated heartbeats.",
                c.heartbeats,
            ),
            (
                "weir_recv_fingerprint_mismatches_total",
                "Heartbeats with another policy fingerprint.",
                c.fingerprint_mismatches,
            ),
            ("weir_recv_sessions_total", "Sender sessions started.", c.sessions),
            (
                "weir_recv_sender_restarts_total",
                "Sender sessions replaced by a new one.",
                self.sender_restarts,
            ),
            (
                "weir_recv_link_down_total",
                "Times the link went down.",
                self.link_downs,
            ),
        ] {
            e.single(name, Kind::Counter, help, value as f64);
        }
        e.family(
            "weir_recv_dropped_total",
            Kind::Counter,
            "Datagrams or frames dropped, by reason.",
        );
        for (reason, n) in c.drops().iter().filter(|(r, _)| *r != "blocks_lost") {
            e.sample("weir_recv_dropped_total", &[("reason", reason)], *n as f64);
        }
        if let Some(k) = self.kernel_drops {
            e.single(
                "weir_recv_kernel_dropped_total",
                Kind::Counter,
                "Datagrams the kernel dropped (socket buffer full).",
                k as f64,
            );
        }
        e.single(
            "weir_recv_pending_blocks",
            Kind::Gauge,
            "Blocks held in reassembly.",
            self.pending_blocks as f64,
        );
        e.single(
            "weir_link_up",
            Kind::Gauge,
            "1 while authenticated traffic arrives.",
            f64::from(u8::from(self.link == Some(LinkState::Up))),
        );
        if let Some(age) = self.heartbeat_age(now) {
            e.single(
                "weir_recv_heartbeat_age_seconds",
                Kind::Gauge,
                "Seconds since the last authenticated heartbeat.",
                age,
            );
        }
        if let Some(m) = self.fingerprint_match {
            e.single(
                "weir_policy_fingerprint_match",
                Kind::Gauge,
                "1 when the sender's policy fingerprint equals ours.",
                f64::from(u8::from(m)),
            );
        }
        if let Some(h) = &self.sender {
            for (name, help, value) in [
                (
                    "weir_recv_sender_datagrams_sent",
                    "Datagrams the sender reports sent this session.",
                    h.datagrams_sent,
                ),
                (
                    "weir_recv_sender_bytes_sent",
                    "Bytes the sender reports sent this session.",
                    h.bytes_sent,
                ),
                (
                    "weir_recv_sender_messages_sent",
                    "Messages the sender reports framed this session.",
                    h.messages_sent,
                ),
                (
                    "weir_recv_sender_messages_dropped",
                    "Messages the sender reports dropped before the link.",
                    h.messages_dropped,
                ),
            ] {
                e.single(name, Kind::Gauge, help, value as f64);
            }
        }
        let channel_families: [Family<ChannelStat, u64>; 3] = [
            (
                "weir_recv_channel_messages_total",
                "Messages delivered per channel.",
                |c| c.messages,
            ),
            (
                "weir_recv_channel_bytes_total",
                "Message bytes delivered per channel.",
                |c| c.bytes,
            ),
            (
                "weir_recv_channel_messages_lost_total",
                "Messages lost per channel.",
                |c| c.lost,
            ),
        ];
        for (name, help, get) in channel_families {
            e.family(name, Kind::Counter, help);
            for ch in &self.channels {
                e.sample(name, &[("channel", &ch.name)], get(ch) as f64);
            }
        }
        self.sink_metrics(&mut e);
        self.spool_metrics(&mut e);
        self.serve_metrics(&mut e);
        e.finish()
    }

    fn sink_metrics(&self, e: &mut Exposition) {
        let families: [Family<SinkCounters, f64>; 3] = [
            (
                "weir_sink_messages_total",
                "Messages written out per sink.",
                |s| load(&s.messages),
            ),
            ("weir_sink_bytes_total", "Bytes written out per sink.", |s| {
                load(&s.bytes)
            }),
            (
                "weir_sink_streams_reset_total",
                "Streams reset toward the consumer.",
                |s| load(&s.streams_reset),
            ),
        ];
        for (name, help, get) in families {
            e.family(name, Kind::Counter, help);
            for s in &self.sinks {
                e.sample(
                    name,
                    &[("channel", &s.channel), ("sink", &s.sink)],
                    get(&s.counters),
                );
            }
        }
        e.family(
            "weir_sink_dropped_total",
            Kind::Counter,
            "Messages a sink dropped, by reason.",
        );
        for s in &self.sinks {
            let labels = |reason| {
                [
                    ("channel", s.channel.as_str()),
                    ("sink", s.sink.as_str()),
                    ("reason", reason),
                ]
            };
            e.sample(
                "weir_sink_dropped_total",
                &labels("queue_full"),
                load(&s.counters.drop_queue_full),
            );
            e.sample(
                "weir_sink_dropped_total",
                &labels("unreachable"),
                load(&s.counters.drop_unreachable),
            );
        }
    }

    fn spool_metrics(&self, e: &mut Exposition) {
        let Some(spool) = &self.spool else {
            return;
        };
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

    fn serve_metrics(&self, e: &mut Exposition) {
        let Some(c) = &self.serve else {
            return;
        };
        e.single(
            "weir_consumer_connections",
            Kind::Gauge,
            "Consumer connections open now.",
            load(&c.connections),
        );
        for (name, help, value) in [
            (
                "weir_consumer_accepted_total",
                "Consumer connections accepted.",
                &c.accepted,
            ),
            (
                "weir_consumer_refused_busy_total",
                "Consumer connections refused at max_connections.",
                &c.refused_busy,
            ),
            (
                "weir_consumer_handshake_failures_total",
                "Consumer handshakes that failed (certificate refused, timeout).",
                &c.handshake_failures,
            ),
            (
                "weir_consumer_denied_total",
                "Subscriptions refused: channel not granted to the identity.",
                &c.denied,
            ),
            (
                "weir_consumer_records_total",
                "Records sent to consumers.",
                &c.records,
            ),
            (
                "weir_consumer_bytes_total",
                "Payload bytes sent to consumers.",
                &c.bytes,
            ),
            (
                "weir_consumer_gaps_total",
                "Gap notices sent to consumers.",
                &c.gaps,
            ),
        ] {
            e.single(name, Kind::Counter, help, load(value));
        }
    }
}
