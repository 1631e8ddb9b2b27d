//! The receiver's view: what the link thread publishes, rendered as Prometheus metrics and
//! as the status JSON behind the status page and `weir status`.
//!
//! Contract: the link thread refreshes a [`RecvView`] every [`super::PUBLISH_EVERY`] and calls
//! [`RecvView::sample`] every [`super::SAMPLE_EVERY`]; renderers take `now` so ages are exact.
//! The history holds at most [`super::HISTORY`] samples.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};

use super::http::{Handler, Response};
use super::prom::CONTENT_TYPE;
use super::{lock, HISTORY};
use crate::proto::recv::{Counters, LinkState};
use crate::proto::wire::Heartbeat;

/// One channel as the receiver saw it.
#[derive(Debug, Clone, Default)]
pub struct ChannelStat {
    /// Channel name.
    pub name: String,
    /// Messages delivered.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Messages declared lost.
    pub lost: u64,
    /// Messages per second over the last sample interval.
    pub message_rate: f64,
    /// Bytes per second over the last sample interval.
    pub byte_rate: f64,
    /// Lost messages per second over the last sample interval.
    pub loss_rate: f64,
}

/// One throughput sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Wall-clock time, Unix seconds.
    pub unix: f64,
    /// Link bytes per second.
    pub bytes_per_s: f64,
    /// Messages delivered per second.
    pub messages_per_s: f64,
    /// Messages lost per second.
    pub lost_per_s: f64,
    /// Datagrams dropped per second (every reason).
    pub drops_per_s: f64,
}

/// What the link thread publishes.
#[derive(Debug, Default)]
pub struct RecvView {
    /// The receiver's counters.
    pub counters: Counters,
    /// Link state; `None` before the link thread first published.
    pub link: Option<LinkState>,
    /// When the last authenticated heartbeat arrived.
    pub last_heartbeat: Option<Instant>,
    /// Whether the sender's last heartbeat carried our policy fingerprint.
    pub fingerprint_match: Option<bool>,
    /// The current sender session.
    pub session: Option<u64>,
    /// Sessions replaced by a new one (sender restarts seen).
    pub sender_restarts: u64,
    /// Times the link went down.
    pub link_downs: u64,
    /// The sender's counters as of its last heartbeat.
    pub sender: Option<Heartbeat>,
    /// Per channel, by name.
    pub channels: Vec<ChannelStat>,
    /// The spool, once it is open.
    pub spool: Option<crate::spool::view::SpoolView>,
    /// Blocks held in reassembly.
    pub pending_blocks: usize,
    /// Datagrams the kernel dropped (socket buffer full), where known.
    pub kernel_drops: Option<u64>,
    /// Throughput history, oldest first.
    pub history: VecDeque<Sample>,
    previous: Option<(Instant, Counters, Vec<ChannelStat>)>,
}

/// The view shared between the link thread and the HTTP handlers.
pub type SharedRecvView = Arc<Mutex<RecvView>>;

fn dropped(c: &Counters) -> u64 {
    c.drops()
        .iter()
        .filter(|(name, _)| *name != "blocks_lost")
        .map(|(_, n)| n)
        .sum()
}

fn per_second(now: u64, before: u64, secs: f64) -> f64 {
    now.saturating_sub(before) as f64 / secs
}

impl RecvView {
    /// An empty view that shows `spool`.
    pub fn with_spool(spool: crate::spool::view::SpoolView) -> Self {
        Self {
            spool: Some(spool),
            ..Self::default()
        }
    }

    /// Records a throughput sample at `now` (wall clock `unix`) and refreshes the channel rates.
    pub fn sample(&mut self, now: Instant, unix: f64) {
        if let Some((at, before, channels)) = &self.previous {
            let secs = now.saturating_duration_since(*at).as_secs_f64();
            if secs > 0.0 {
                let c = &self.counters;
                if self.history.len() >= HISTORY {
                    self.history.pop_front();
                }
                self.history.push_back(Sample {
                    unix,
                    bytes_per_s: per_second(c.bytes, before.bytes, secs),
                    messages_per_s: per_second(c.messages, before.messages, secs),
                    lost_per_s: per_second(c.messages_lost, before.messages_lost, secs),
                    drops_per_s: per_second(dropped(c), dropped(before), secs),
                });
                for ch in &mut self.channels {
                    let old = channels.iter().find(|o| o.name == ch.name);
                    let (m, b, l) = old.map_or((0, 0, 0), |o| (o.messages, o.bytes, o.lost));
                    ch.message_rate = per_second(ch.messages, m, secs);
                    ch.byte_rate = per_second(ch.bytes, b, secs);
                    ch.loss_rate = per_second(ch.lost, l, secs);
                }
            }
        }
        self.previous = Some((now, self.counters.clone(), self.channels.clone()));
    }

    pub(crate) fn heartbeat_age(&self, now: Instant) -> Option<f64> {
        self.last_heartbeat
            .map(|t| now.saturating_duration_since(t).as_secs_f64())
    }

    fn link_name(&self) -> &'static str {
        match self.link {
            None | Some(LinkState::Waiting) => "waiting",
            Some(LinkState::Up) => "up",
            Some(LinkState::Down) => "down",
        }
    }

    /// The status JSON (`/status.json`).
    pub fn status_json(&self, now: Instant) -> Value {
        let c = &self.counters;
        let drops: serde_json::Map<String, Value> = c
            .drops()
            .iter()
            .filter(|(r, _)| *r != "blocks_lost")
            .map(|(r, n)| ((*r).to_owned(), json!(n)))
            .collect();
        let channels: Vec<Value> = self
            .channels
            .iter()
            .map(|ch| {
                json!({"name": ch.name, "messages": ch.messages, "bytes": ch.bytes, "lost": ch.lost,
                       "message_rate": ch.message_rate, "byte_rate": ch.byte_rate, "loss_rate": ch.loss_rate})
            })
            .collect();
        let history: Vec<Value> = self
            .history
            .iter()
            .map(|s| {
                json!([
                    s.unix,
                    s.bytes_per_s,
                    s.messages_per_s,
                    s.lost_per_s,
                    s.drops_per_s
                ])
            })
            .collect();
        json!({
            "side": "recv",
            "link": self.link_name(),
            "heartbeat_age_s": self.heartbeat_age(now),
            "fingerprint_match": self.fingerprint_match,
            "session": self.session.map(|s| format!("{s:016x}")),
            "sender_restarts": self.sender_restarts,
            "link_downs": self.link_downs,
            "counters": {
                "datagrams": c.datagrams, "bytes": c.bytes, "messages": c.messages,
                "messages_lost": c.messages_lost, "symbols_recovered": c.symbols_recovered,
                "blocks_lost": c.blocks_lost, "heartbeats": c.heartbeats,
            },
            "drops": drops,
            "sender": self.sender.as_ref().map(|h| json!({
                "datagrams_sent": h.datagrams_sent, "bytes_sent": h.bytes_sent,
                "messages_sent": h.messages_sent, "messages_dropped": h.messages_dropped,
            })),
            "channels": channels,
            "spool": self.spool.as_ref().map_or(Value::Null, super::spool::spool_json),
            "history_fields": ["unix", "bytes_per_s", "messages_per_s", "lost_per_s", "drops_per_s"],
            "history": history,
        })
    }
}

/// The HTTP routes of the receiver: `/metrics`, `/status.json` and the page at `/`.
pub fn handler(view: SharedRecvView) -> Handler {
    Arc::new(move |path| match path {
        "/metrics" => Some(Response {
            content_type: CONTENT_TYPE,
            body: lock(&view).metrics(Instant::now()),
        }),
        "/status.json" => Some(Response {
            content_type: "application/json",
            body: lock(&view).status_json(Instant::now()).to_string(),
        }),
        "/" | "/index.html" => Some(Response {
            content_type: "text/html; charset=utf-8",
            body: super::page::PAGE.to_owned(),
        }),
        _ => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn samples_rates_and_renders() {
        let t0 = Instant::now();
        let mut v = RecvView {
            link: Some(LinkState::Up),
            last_heartbeat: Some(t0),
            fingerprint_match: Some(true),
            channels: vec![ChannelStat {
                name: "a".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        v.sample(t0, 1.0);
        v.counters.bytes = 2000;
        v.counters.drop_forged = 3;
        if let Some(ch) = v.channels.first_mut() {
            ch.messages = 10;
            ch.lost = 2;
        }
        v.sample(t0 + Duration::from_secs(2), 3.0);
        assert_eq!(v.history.len(), 1);
        assert_eq!(v.history[0].bytes_per_s, 1000.0);
        assert_eq!(v.history[0].drops_per_s, 1.5);
        assert_eq!(v.channels[0].message_rate, 5.0);
        let text = v.metrics(t0 + Duration::from_millis(1500));
        assert!(
            text.contains("weir_recv_dropped_total{reason=\"forged\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("weir_link_up 1\n"));
        assert!(text.contains("weir_recv_heartbeat_age_seconds 1.5\n"));
        assert!(text.contains("weir_recv_channel_messages_lost_total{channel=\"a\"} 2\n"));
        let json = v.status_json(t0);
        assert_eq!(json["link"], "up");
        assert_eq!(json["channels"][0]["loss_rate"], 1.0);
        for i in 0..HISTORY as u64 + 5 {
            v.sample(t0 + Duration::from_secs(10 + i), 9.0);
        }
        assert_eq!(v.history.len(), HISTORY);
    }
}
