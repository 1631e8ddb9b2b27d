//! The receiver's Prometheus metrics, rendered from a [`RecvView`] (see the README's
//! "Observability" section for the names). Families are always written, even when empty, so
//! a dashboard never sees a metric vanish; values that are not known yet (heartbeat age
//! before any heartbeat, fingerprint match before any heartbeat) are left out.

use std::time::Instant;

use super::prom::{Exposition, Kind};
use super::recv::{ChannelStat, RecvView};
use crate::proto::recv::LinkState;

/// A metric family: name, help and how to read its value from `T`.
type Family<T, V> = (&'static str, &'static str, fn(&T) -> V);

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
        if let Some(spool) = &self.spool {
            super::spool::spool_metrics(spool, &mut e);
        }
        e.finish()
    }
}
