//! `weir status`: fetches a daemon's `/status.json` over plain HTTP/1.1 (a minimal blocking
//! GET on a std `TcpStream`) and renders it for a terminal.
//!
//! Contract: bounded — connect, read and write time out after [`TIMEOUT`], and an answer over
//! [`MAX_ANSWER`] bytes is refused; only `http://host:port[/path]` URLs are accepted. Errors
//! are typed ([`StatusError`]); nothing panics on a hostile or broken server.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// Time allowed for connecting, sending the request and reading the answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read.
pub const MAX_ANSWER: u64 = 4 << 20;

/// Why the status could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The URL is not `http://host:port[/path]`.
    #[error("unsupported URL {0:?}: expected http://host:port")]
    Url(String),
    /// Network failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The answer is not HTTP 200 with a body.
    #[error("bad answer: {0}")]
    Http(String),
    /// The body is not JSON.
    #[error("the status is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// `GET url` and the body of a 200 answer.
pub fn get(url: &str) -> Result<String, StatusError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| StatusError::Url(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|_| StatusError::Url(url.to_owned()))?
        .next()
        .ok_or_else(|| StatusError::Url(url.to_owned()))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER + 1).read_to_end(&mut answer)?;
    if answer.len() as u64 > MAX_ANSWER {
        return Err(StatusError::Http("answer too large".into()));
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| StatusError::Http("no header end".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(StatusError::Http(status.to_owned()));
    }
    Ok(body.to_owned())
}

/// Fetches `base` + `/status.json` and parses it.
pub fn fetch(base: &str) -> Result<Value, StatusError> {
    let url = format!("{}/status.json", base.trim_end_matches('/'));
    Ok(serde_json::from_str(&get(&url)?)?)
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{n:.0}"),
        Some(n) => format!("{n:.1}"),
        None => "-".into(),
    }
}

/// Renders a status JSON (weir-send, weir-recv or weir-deliver) for a terminal.
pub fn render(s: &Value) -> String {
    if at(s, "side") == "deliver" {
        return render_deliver(s);
    }
    let mut out = String::new();
    if at(s, "side") == "send" {
        let _ = writeln!(
            out,
            "weir-send  session {}",
            at(s, "session").as_str().unwrap_or("-")
        );
        let c = at(s, "counters");
        let _ = writeln!(
            out,
            "sent: {} datagrams, {} bytes, {} messages; dropped {}",
            num(at(c, "datagrams")),
            num(at(c, "bytes")),
            num(at(c, "messages")),
            num(at(c, "messages_dropped"))
        );
        for ch in at(s, "channels").as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {:<20} messages {:>12}  dropped {:>10}",
                at(ch, "name").as_str().unwrap_or("?"),
                num(at(ch, "messages")),
                num(at(ch, "dropped"))
            );
        }
        return out;
    }
    let link = at(s, "link").as_str().unwrap_or("?");
    let _ = writeln!(out, "link:               {}", link.to_uppercase());
    let age = at(s, "heartbeat_age_s")
        .as_f64()
        .map_or("never".into(), |a| format!("{a:.1} s"));
    let _ = writeln!(out, "heartbeat age:      {age}");
    let fp = match at(s, "fingerprint_match").as_bool() {
        Some(true) => "match",
        Some(false) => "MISMATCH",
        None => "unknown",
    };
    let _ = writeln!(out, "policy fingerprint: {fp}");
    let _ = writeln!(
        out,
        "sender session:     {} (restarts {})",
        at(s, "session").as_str().unwrap_or("none"),
        num(at(s, "sender_restarts"))
    );
    let c = at(s, "counters");
    let _ = writeln!(
        out,
        "received:           {} datagrams, {} bytes, {} messages",
        num(at(c, "datagrams")),
        num(at(c, "bytes")),
        num(at(c, "messages"))
    );
    let _ = writeln!(
        out,
        "lost:               {} messages, {} blocks; {} symbols recovered",
        num(at(c, "messages_lost")),
        num(at(c, "blocks_lost")),
        num(at(c, "symbols_recovered"))
    );
    let drops: Vec<String> = at(s, "drops")
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_u64().is_some_and(|n| n > 0))
        .map(|(k, n)| format!("{k}={}", num(n)))
        .collect();
    let _ = writeln!(
        out,
        "dropped:            {}",
        if drops.is_empty() {
            "none".into()
        } else {
            drops.join(" ")
        }
    );
    let h = at(s, "sender");
    if h.is_object() {
        let _ = writeln!(
            out,
            "sender reports:     {} datagrams, {} messages sent, {} dropped",
            num(at(h, "datagrams_sent")),
            num(at(h, "messages_sent")),
            num(at(h, "messages_dropped"))
        );
    }
    let _ = writeln!(
        out,
        "{:<20} {:>12} {:>10} {:>12} {:>10} {:>8}",
        "channel", "messages", "msg/s", "bytes/s", "lost", "lost/s"
    );
    for ch in at(s, "channels").as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<20} {:>12} {:>10} {:>12} {:>10} {:>8}",
            at(ch, "name").as_str().unwrap_or("?"),
            num(at(ch, "messages")),
            num(at(ch, "message_rate")),
            num(at(ch, "byte_rate")),
            num(at(ch, "lost")),
            num(at(ch, "loss_rate"))
        );
    }
    spool_and_consumers(s, &mut out);
    let history = at(s, "history").as_array().map_or(&[][..], Vec::as_slice);
    let _ = writeln!(
        out,
        "throughput, last {} s: {}",
        history.len(),
        sparkline(history)
    );
    out
}

/// The spool and consumer server sections, which both IT daemons report.
fn spool_and_consumers(s: &Value, out: &mut String) {
    if let Some(spool) = at(s, "spool").as_array() {
        let _ = writeln!(
            out,
            "{:<20} {:>12} {:>12} {:>12} {:>10} {:>8}",
            "spool", "first", "durable", "stored", "dropped", "state"
        );
        for ch in spool {
            let _ = writeln!(
                out,
                "{:<20} {:>12} {:>12} {:>12} {:>10} {:>8}",
                at(ch, "name").as_str().unwrap_or("?"),
                num(at(ch, "start")),
                num(at(ch, "durable")),
                num(at(ch, "stored_bytes")),
                num(at(ch, "dropped")),
                if at(ch, "full").as_bool() == Some(true) {
                    "FULL"
                } else {
                    "ok"
                }
            );
        }
    }
    let c = at(s, "consumers");
    if c.is_object() {
        let _ = writeln!(
            out,
            "consumers:          {} connected; {} records, {} bytes served; refused: {} handshakes, {} subscriptions, {} busy; {} gaps",
            num(at(c, "connections")),
            num(at(c, "records")),
            num(at(c, "bytes")),
            num(at(c, "handshake_failures")),
            num(at(c, "denied")),
            num(at(c, "refused_busy")),
            num(at(c, "gaps"))
        );
    }
}

/// weir-deliver's status: the spool it reads, the consumer server and every sink.
fn render_deliver(s: &Value) -> String {
    let mut out = String::from("weir-deliver\n");
    spool_and_consumers(s, &mut out);
    let _ = writeln!(
        out,
        "{:<34} {:>12} {:>12} {:>8} {:>8} {:>8} {:>8}",
        "sink", "position", "messages", "closed", "reset", "dropped", "gaps"
    );
    for sink in at(s, "sinks").as_array().into_iter().flatten() {
        let name = format!(
            "{} → {}",
            at(sink, "channel").as_str().unwrap_or("?"),
            at(sink, "sink").as_str().unwrap_or("?")
        );
        let _ = writeln!(
            out,
            "{:<34} {:>12} {:>12} {:>8} {:>8} {:>8} {:>8}",
            name,
            num(at(sink, "position")),
            num(at(sink, "messages")),
            num(at(sink, "streams_closed")),
            num(at(sink, "streams_reset")),
            num(at(sink, "dropped")),
            num(at(sink, "gap_records"))
        );
    }
    out
}

/// A one-line bar chart of bytes per second (the last 60 samples).
fn sparkline(history: &[Value]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = history
        .get(history.len().saturating_sub(60)..)
        .unwrap_or_default();
    let values: Vec<f64> = tail
        .iter()
        .map(|s| s.get(1).and_then(Value::as_f64).unwrap_or(0.0))
        .collect();
    let max = values.iter().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|v| {
            let i = if max > 0.0 {
                (v / max * 7.0).round() as usize
            } else {
                0
            };
            BARS.get(i.min(7)).copied().unwrap_or(' ')
        })
        .collect()
}

/// `v[key]`, or null.
fn at<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&Value::Null)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_receiver_status() {
        let s = serde_json::json!({
            "side": "recv", "link": "down", "heartbeat_age_s": 2.5, "fingerprint_match": true,
            "session": "00000001deadbeef", "sender_restarts": 1,
            "counters": {"datagrams": 10, "bytes": 1000, "messages": 5, "messages_lost": 0,
                         "blocks_lost": 0, "symbols_recovered": 2},
            "drops": {"forged": 3, "replay": 0},
            "channels": [{"name": "syslog", "messages": 5, "message_rate": 1.0, "byte_rate": 100.0,
                          "lost": 0, "loss_rate": 0.0}],
            "history": [[1.0, 10.0, 1.0, 0.0, 0.0], [2.0, 20.0, 1.0, 0.0, 0.0]],
            "spool": [{"name": "syslog", "start": 0, "durable": 5, "end": 5, "stored_bytes": 400,
                       "full": true, "dropped": 7}],
            "consumers": {"connections": 2, "accepted": 3, "refused_busy": 0, "handshake_failures": 1,
                          "denied": 4, "records": 5, "bytes": 400, "gaps": 0},
        });
        let text = render(&s);
        assert!(text.contains("FULL"), "{text}");
        assert!(
            text.contains("consumers:          2 connected; 5 records"),
            "{text}"
        );
        assert!(text.contains("1 handshakes, 4 subscriptions"), "{text}");
        assert!(text.contains("link:               DOWN"), "{text}");
        assert!(text.contains("heartbeat age:      2.5 s"));
        assert!(text.contains("dropped:            forged=3\n"));
        assert!(text.contains("syslog"));
        assert!(text.contains("▅█"), "{text}");
    }

    #[test]
    fn renders_a_delivery_status() {
        let s = serde_json::json!({
            "side": "deliver",
            "spool": [{"name": "syslog", "start": 0, "durable": 5, "end": 6, "stored_bytes": 400,
                       "full": false, "dropped": 0}],
            "consumers": null,
            "sinks": [{"channel": "syslog", "sink": "udp 10.0.0.9:514", "position": 5,
                       "messages": 5, "bytes": 50, "streams_closed": 0, "streams_reset": 0,
                       "dropped": 1, "gap_records": 0, "skipped": 0}],
        });
        let text = render(&s);
        assert!(text.starts_with("weir-deliver\n"), "{text}");
        assert!(text.contains("syslog → udp 10.0.0.9:514"), "{text}");
        assert!(!text.contains("link:"), "{text}");
    }

    #[test]
    fn refuses_other_urls() {
        assert!(matches!(get("https://x:1"), Err(StatusError::Url(_))));
        assert!(matches!(get("http://"), Err(StatusError::Url(_))));
    }
}
