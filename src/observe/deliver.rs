//! `weir-deliver`'s metrics and status page: the spool as weir-recv last published it, each
//! sink's counters and position, and the consumer server's counters. Every value is an atomic
//! or a watch another task updates; rendering only reads them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::http::{Handler, Response};
use super::prom::{Exposition, Kind, CONTENT_TYPE};
use crate::deliver::SinkCounters;
use crate::serve::ServeCounters;
use crate::spool::view::SpoolView;

/// One sink's counters, shared with its task.
#[derive(Debug, Clone)]
pub struct SinkStat {
    /// The channel it serves.
    pub channel: String,
    /// Its transport and address, e.g. `tcp 10.20.0.7:7000`.
    pub sink: String,
    /// Its live counters.
    pub counters: Arc<SinkCounters>,
}

/// What the delivery process shows.
#[derive(Debug, Clone)]
pub struct DeliverView {
    /// The spool, mirrored from weir-recv's status files.
    pub spool: SpoolView,
    /// Every sink.
    pub sinks: Vec<SinkStat>,
    /// The consumer server's counters, when `[recv.serve]` is set.
    pub serve: Option<Arc<ServeCounters>>,
}

fn load(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// A sink counter family: name, help, how to read it.
type SinkFamily = (&'static str, &'static str, fn(&SinkCounters) -> f64);

impl DeliverView {
    /// The Prometheus text exposition.
    pub fn metrics(&self) -> String {
        let mut e = Exposition::new();
        let families: [SinkFamily; 6] = [
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
            (
                "weir_sink_streams_closed_total",
                "Streams closed cleanly toward the consumer.",
                |s| load(&s.streams_closed),
            ),
            (
                "weir_sink_gap_records_total",
                "Spool records a sink could not read (retention removed them first, or corrupt).",
                |s| load(&s.gap_records),
            ),
            (
                "weir_sink_skipped_total",
                "Records of streams a sink does not carry (opened before its resume point, or reset).",
                |s| load(&s.skipped),
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
            e.sample(
                "weir_sink_dropped_total",
                &[
                    ("channel", &s.channel),
                    ("sink", &s.sink),
                    ("reason", "unreachable"),
                ],
                load(&s.counters.drop_unreachable),
            );
        }
        e.family(
            "weir_sink_position",
            Kind::Gauge,
            "The spool offset a sink has reached.",
        );
        for s in &self.sinks {
            e.sample(
                "weir_sink_position",
                &[("channel", &s.channel), ("sink", &s.sink)],
                load(&s.counters.position),
            );
        }
        super::spool::spool_metrics(&self.spool, &mut e);
        if let Some(serve) = &self.serve {
            serve_metrics(serve, &mut e);
        }
        e.finish()
    }

    /// The status JSON (`/status.json`).
    pub fn status_json(&self) -> Value {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let sinks: Vec<Value> = self
            .sinks
            .iter()
            .map(|s| {
                let c = &s.counters;
                json!({
                    "channel": s.channel, "sink": s.sink, "position": n(&c.position),
                    "messages": n(&c.messages), "bytes": n(&c.bytes),
                    "streams_closed": n(&c.streams_closed), "streams_reset": n(&c.streams_reset),
                    "dropped": n(&c.drop_unreachable), "gap_records": n(&c.gap_records),
                    "skipped": n(&c.skipped),
                })
            })
            .collect();
        json!({
            "side": "deliver",
            "spool": super::spool::spool_json(&self.spool),
            "consumers": self.serve.as_ref().map(|c| {
                json!({
                    "connections": n(&c.connections), "accepted": n(&c.accepted),
                    "refused_busy": n(&c.refused_busy), "handshake_failures": n(&c.handshake_failures),
                    "denied": n(&c.denied), "records": n(&c.records), "bytes": n(&c.bytes), "gaps": n(&c.gaps),
                })
            }),
            "sinks": sinks,
        })
    }
}

/// The consumer server's families.
fn serve_metrics(c: &ServeCounters, e: &mut Exposition) {
    {
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

/// The HTTP routes of weir-deliver: `/metrics`, `/status.json` and the page at `/`.
pub fn handler(view: DeliverView) -> Handler {
    Arc::new(move |path| match path {
        "/metrics" => Some(Response {
            content_type: CONTENT_TYPE,
            body: view.metrics(),
        }),
        "/status.json" => Some(Response {
            content_type: "application/json",
            body: view.status_json().to_string(),
        }),
        "/" | "/index.html" => Some(Response {
            content_type: "text/html; charset=utf-8",
            body: PAGE.to_owned(),
        }),
        _ => None,
    })
}

/// The page served at `/`: polls `/status.json` every second; values are inserted as text.
pub const PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weir-deliver status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em} table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right} th{background:#eee}
td:first-child,th:first-child{text-align:left}
</style></head><body>
<h1>weir-deliver — spool, consumers and sinks</h1>
<h2>Spool (written by weir-recv)</h2>
<table><thead><tr><th>channel</th><th>first offset</th><th>durable</th><th>stored bytes</th><th>dropped</th><th>state</th></tr></thead>
<tbody id="spool"></tbody></table>
<p id="consumers"></p>
<h2>Sinks</h2>
<table><thead><tr><th>channel</th><th>sink</th><th>position</th><th>messages</th><th>bytes</th><th>closed</th><th>reset</th><th>dropped</th><th>gap records</th></tr></thead>
<tbody id="sinks"></tbody></table>
<p id="error" style="color:#c00"></p>
<script>
"use strict";
function set(id, text){ document.getElementById(id).textContent = String(text); }
function rows(id, cls, list, cells){
  const body = document.getElementById(id); body.replaceChildren();
  for(const item of list){
    const tr = document.createElement("tr"); tr.className = cls;
    for(const v of cells(item)){ const td = document.createElement("td"); td.textContent = String(v); tr.appendChild(td); }
    body.appendChild(tr);
  }
}
async function refresh(){
  try{
    const s = await (await fetch("/status.json", {cache:"no-store"})).json();
    rows("spool", "spool", s.spool || [], c => [c.name, c.start, c.durable, c.stored_bytes, c.dropped, c.full ? "FULL" : "ok"]);
    const k = s.consumers;
    set("consumers", k ? "consumers: "+k.connections+" connected, "+k.records+" records served; refused: "+k.handshake_failures+" handshakes, "+k.denied+" subscriptions, "+k.refused_busy+" over the limit; "+k.gaps+" gap notices" : "no consumer server ([recv.serve] not set)");
    rows("sinks", "sink", s.sinks, x => [x.channel, x.sink, x.position, x.messages, x.bytes, x.streams_closed, x.streams_reset, x.dropped, x.gap_records]);
    set("error", "");
  }catch(e){ set("error", "cannot fetch /status.json: "+e); }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"##;
