//! Machine-readable views of a policy for `weir check --format json`.
//!
//! Contract:
//! - A valid policy renders as `{"file", "valid": true, "fingerprint", "fingerprint_full",
//!   "link", "send", "recv", "channels", "errors": []}`; an invalid one as `{"file",
//!   "valid": false, "errors": [{"line", "column", "field", "message", "hint"}]}`.
//! - Values are the validated ones with defaults filled in, in base units: sizes in bytes,
//!   rates in bit/s (link) or bytes per second (channel rate, as in the model), durations in
//!   nanoseconds. Addresses and networks are strings; endpoints mirror the TOML
//!   (`{"udp": "IP:PORT"}`); absent optional values are `null`; `allow_from: null` means any
//!   peer.
//! - Field names are stable: automation may rely on them; new fields may be added.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::error::PolicyError;
use super::model::{Channel, Policy, Sink, Source};

impl Policy {
    /// The policy as a JSON object (see the module documentation for its shape).
    pub fn to_json(&self) -> Value {
        let link = &self.link;
        let send = self.send.as_ref().map_or(Value::Null, |send| {
            json!({
                "to": send.to.to_string(),
                "bind": send.bind.map(|bind| bind.to_string()),
                "queue": send.queue,
                "metrics": send.metrics.map(|m| m.to_string()),
            })
        });
        let recv = self.recv.as_ref().map_or(Value::Null, |recv| {
            json!({
                "listen": recv.listen.to_string(),
                "socket_buffer": recv.socket_buffer,
                "queue": recv.queue,
                "spool": path(&recv.spool),
                "state": path(&recv.state),
                "metrics": recv.metrics.map(|m| m.to_string()),
                "deliver_state": path(&recv.deliver_state),
                "deliver_metrics": recv.deliver_metrics.map(|m| m.to_string()),
                "sink_after": recv.sink_after.as_str(),
                "segment": recv.spooling.segment,
                "spool_queue": recv.spooling.queue,
                "fsync_ns": nanos(recv.spooling.fsync),
                "fsync_bytes": recv.spooling.fsync_bytes,
                "retain": recv.spooling.retain,
                "retain_age_ns": recv.spooling.retain_age.map(nanos),
                "serve": recv.serve.as_ref().map(|serve| json!({
                    "tls": serve.tls.map(|a| a.to_string()),
                    "quic": serve.quic.map(|a| a.to_string()),
                    "cert": path(&serve.cert),
                    "key": path(&serve.key),
                    "client_ca": path(&serve.client_ca),
                    "max_connections": serve.max_connections,
                    "handshake_timeout_ns": nanos(serve.handshake_timeout),
                    "idle_timeout_ns": nanos(serve.idle_timeout),
                })),
            })
        });
        let v4 = SocketAddr::from(([0, 0, 0, 0], 0));
        let v6 = SocketAddr::from(([0u16; 8], 0));
        json!({
            "file": path(&self.origin),
            "valid": true,
            "fingerprint": self.fingerprint.to_string(),
            "fingerprint_full": self.fingerprint.full_hex(),
            "link": {
                "key_file": path(&link.key_file),
                "mtu": link.mtu,
                "datagram_budget_ipv4": link.datagram_budget(&v4),
                "datagram_budget_ipv6": link.datagram_budget(&v6),
                "repair_percent": link.repair_percent,
                "bandwidth_bps": link.bandwidth_bps,
                "heartbeat_ns": nanos(link.heartbeat),
                "flush_ns": nanos(link.flush),
                "block_symbols": link.block_symbols,
                "repair_symbols": link.repair_symbols(link.block_symbols),
                "reorder_window_ns": nanos(link.reorder_window),
            },
            "send": send,
            "recv": recv,
            "channels": self.channels.iter().map(channel).collect::<Vec<_>>(),
            "errors": [],
        })
    }
}

impl PolicyError {
    /// The error as a JSON object: `{"file", "valid": false, "errors": [...]}`. A problem without
    /// a position has `line` and `column` 0; `hint` is `null` when there is none.
    pub fn to_json(&self) -> Value {
        let errors: Vec<Value> = self
            .diagnostics
            .iter()
            .map(|diagnostic| {
                json!({
                    "line": diagnostic.line,
                    "column": diagnostic.column,
                    "field": diagnostic.field,
                    "message": diagnostic.message,
                    "hint": diagnostic.hint,
                })
            })
            .collect();
        json!({
            "file": path(&self.origin),
            "valid": false,
            "errors": errors,
        })
    }
}

fn channel(channel: &Channel) -> Value {
    let source = match channel.source {
        Source::Tcp(addr) => json!({ "tcp": addr.to_string() }),
        Source::Udp(addr) => json!({ "udp": addr.to_string() }),
    };
    let sinks: Vec<Value> = channel
        .sinks
        .iter()
        .map(|sink| match sink {
            Sink::Tcp(addr) => json!({ "tcp": addr.to_string() }),
            Sink::Udp(addr) => json!({ "udp": addr.to_string() }),
        })
        .collect();
    let allow_from = channel
        .allow_from
        .as_ref()
        .map(|networks| networks.iter().map(ToString::to_string).collect::<Vec<_>>());
    let rate = channel.rate.map_or(Value::Null, |rate| {
        json!({
            "bytes_per_sec": rate.bytes_per_sec,
            "burst_bytes": rate.burst_bytes,
            "messages_per_sec": rate.messages_per_sec,
            "burst_messages": rate.burst_messages,
        })
    });
    json!({
        "name": channel.name,
        "id": channel.id.to_string(),
        "transport": channel.transport().to_string(),
        "source": source,
        "allow_from": allow_from,
        "filter": {
            "utf8": channel.filter.utf8,
            "pattern": channel.filter.pattern_text(),
            "json": channel.filter.json,
        },
        "on_violation": channel.on_violation.as_str(),
        "rate": rate,
        "priority": channel.priority.get(),
        "consumers": channel.consumers,
        "max_message": channel.max_message,
        "sinks": sinks,
    })
}

fn path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
