//! The sender's metrics: the link thread's [`SenderCounters`] (published every
//! [`super::PUBLISH_EVERY`]) and each source's live [`ChannelCounters`], including every policy
//! drop by channel and reason.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::http::{Handler, Response};
use super::lock;
use super::prom::{Exposition, Kind, CONTENT_TYPE};
use crate::proto::send::SenderCounters;
use crate::sources::{ChannelCounters, DropReason};

/// What the send link thread publishes.
#[derive(Debug, Default, Clone)]
pub struct SendView {
    /// The sender's counters.
    pub counters: SenderCounters,
    /// The session id.
    pub session: u64,
    /// Link send errors (datagrams lost locally).
    pub send_errors: u64,
}

/// A metric family: name, help and the counter it reads.
type Family = (&'static str, &'static str, fn(&ChannelCounters) -> &AtomicU64);

/// The view shared between the link thread and the HTTP handler.
pub type SharedSendView = Arc<Mutex<SendView>>;

/// The Prometheus text exposition.
pub fn metrics(view: &SendView, channels: &[Arc<ChannelCounters>]) -> String {
    let c = &view.counters;
    let mut e = Exposition::new();
    for (name, help, value) in [
        (
            "weir_send_datagrams_total",
            "Datagrams sent on the link.",
            c.datagrams,
        ),
        ("weir_send_bytes_total", "Bytes sent on the link.", c.bytes),
        ("weir_send_messages_total", "Messages framed.", c.messages),
        (
            "weir_send_message_bytes_total",
            "Message bytes framed.",
            c.message_bytes,
        ),
        ("weir_send_blocks_total", "Blocks encoded.", c.blocks),
        ("weir_send_heartbeats_total", "Heartbeats sent.", c.heartbeats),
        (
            "weir_send_messages_dropped_total",
            "Messages dropped before the link.",
            c.messages_dropped,
        ),
        (
            "weir_send_errors_total",
            "Link send calls that failed.",
            view.send_errors,
        ),
    ] {
        e.single(name, Kind::Counter, help, value as f64);
    }
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let families: [Family; 3] = [
        (
            "weir_send_channel_messages_total",
            "Messages queued toward the link per channel.",
            |c| &c.messages,
        ),
        (
            "weir_send_channel_bytes_total",
            "Bytes queued toward the link per channel.",
            |c| &c.bytes,
        ),
        (
            "weir_send_channel_connections_total",
            "TCP connections accepted per channel.",
            |c| &c.connections,
        ),
    ];
    for (name, help, get) in families {
        e.family(name, Kind::Counter, help);
        for ch in channels {
            e.sample(name, &[("channel", &ch.name)], load(get(ch)));
        }
    }
    e.family(
        "weir_send_dropped_total",
        Kind::Counter,
        "Messages a source refused, by channel and reason.",
    );
    for ch in channels {
        for reason in DropReason::ALL {
            e.sample(
                "weir_send_dropped_total",
                &[("channel", &ch.name), ("reason", reason.name())],
                ch.drops(reason) as f64,
            );
        }
    }
    e.finish()
}

/// The HTTP routes of the sender: `/metrics` and `/status.json`.
pub fn handler(view: SharedSendView, channels: Vec<Arc<ChannelCounters>>) -> Handler {
    Arc::new(move |path| match path {
        "/metrics" | "/" => Some(Response {
            content_type: CONTENT_TYPE,
            body: metrics(&lock(&view), &channels),
        }),
        "/status.json" => {
            let v = lock(&view).clone();
            Some(Response {
                content_type: "application/json",
                body: json!({
                    "side": "send",
                    "session": format!("{:016x}", v.session),
                    "counters": {"datagrams": v.counters.datagrams, "bytes": v.counters.bytes,
                                 "messages": v.counters.messages, "messages_dropped": v.counters.messages_dropped},
                    "channels": channels.iter().map(|c| json!({
                        "name": c.name,
                        "messages": c.messages.load(std::sync::atomic::Ordering::Relaxed),
                        "dropped": c.dropped(),
                    })).collect::<Vec<_>>(),
                })
                .to_string(),
            })
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_drops_by_channel_and_reason() {
        let ch = Arc::new(ChannelCounters::new("syslog"));
        ch.count_drop(DropReason::NotAllowed);
        let text = metrics(&SendView::default(), &[ch]);
        assert!(
            text.contains("weir_send_dropped_total{channel=\"syslog\",reason=\"not_allowed\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("weir_send_dropped_total{channel=\"syslog\",reason=\"rate\"} 0\n"));
        assert!(text.contains("weir_send_datagrams_total 0\n"));
    }
}
