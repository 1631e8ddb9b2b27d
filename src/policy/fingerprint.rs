//! The policy fingerprint: SHA-256 of a canonical text form of the validated policy.
//!
//! Contract:
//! - **Both hosts must install the identical policy file.** The sender carries the fingerprint
//!   in every heartbeat; the receiver compares it with its own and reports a mismatch loudly
//!   instead of mis-decoding with different link parameters or channel ids.
//! - The canonical form renders every field of the validated policy, defaults filled in,
//!   channels and sinks in file order, durations in nanoseconds, sizes in bytes, rates in bit/s,
//!   addresses fully expanded. So whitespace, comments, key order, number spelling
//!   (`"8 KiB"` vs `8192`) and writing a default explicitly do not change the fingerprint;
//!   changing any value does.
//! - Fields added since `weir-policy-v1` was defined are written only when set or not at their
//!   default (`send.metrics`, `recv.metrics`, a channel's `consumers`, `recv.deliver_state`,
//!   `recv.deliver_metrics`, `recv.sink_after`), so a file that does not use them keeps its
//!   fingerprint. `recv.spool` and the spool settings are always written (a file without
//!   `spool` changed its fingerprint when the spool got its default).
//! - Paths enter the canonical form as written in the file, before relative paths are resolved,
//!   so the same file installed in different directories on the two hosts has one fingerprint.
//! - The rendering uses no formatting whose output could differ between Rust versions
//!   (strings are escaped here, IPv6 addresses are written out in full).
//!
//! ```text
//! weir-policy-v1
//! link.key_file "link.key"
//! link.mtu 1500
//! …
//! channel[0].source udp 10.1.0.5:5514
//! channel[0].sinks 1
//! channel[0].sink[0] udp 10.20.0.9:514
//! channel[0].allow_from 1
//! channel[0].allow_from[0] 10.1.0.0/24
//! channel[0].filter.utf8 true
//! channel[0].filter.pattern "^<\u{5c}d{1,3}>"
//! channel[0].filter.json false
//! channel[0].on_violation drop
//! channel[0].rate none
//! channel[0].priority 2
//! ```

use std::fmt::{self, Write};
use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;

use ipnet::IpNet;

use super::limits::DEFAULT_DELIVER_STATE;
use super::model::{Policy, Sink, SinkAfter, Source};

/// SHA-256 of the canonical form of a policy. `Display` shows the first 16 bytes in lowercase
/// hex, the form carried on the wire ([`Fingerprint::short`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The first 16 bytes, as carried in heartbeats.
    pub fn short(&self) -> [u8; 16] {
        let mut short = [0u8; 16];
        for (target, byte) in short.iter_mut().zip(self.0.iter()) {
            *target = *byte;
        }
        short
    }

    /// All 32 bytes in lowercase hex.
    pub fn full_hex(&self) -> String {
        hex(&self.0)
    }

    /// The fingerprint of `policy`, whose paths must still be as written in the file.
    pub(crate) fn of(policy: &Policy) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical_text(policy).as_bytes());
        let mut bytes = [0u8; 32];
        for (target, byte) in bytes.iter_mut().zip(digest.as_ref()) {
            *target = *byte;
        }
        Self(bytes)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.short()))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.full_hex())
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The canonical text form of `policy` (the fingerprint's input); one `key value` per line.
pub(crate) fn canonical_text(policy: &Policy) -> String {
    let mut lines = Canonical(String::new());
    let link = &policy.link;
    lines.put("weir-policy-v1", "");
    lines.put("link.key_file", path(&link.key_file));
    lines.put("link.mtu", link.mtu);
    lines.put("link.repair_percent", link.repair_percent);
    lines.put("link.bandwidth_bps", link.bandwidth_bps);
    lines.put("link.heartbeat_ns", link.heartbeat.as_nanos());
    lines.put("link.flush_ns", link.flush.as_nanos());
    lines.put("link.block_symbols", link.block_symbols);
    lines.put("link.reorder_window_ns", link.reorder_window.as_nanos());
    match &policy.send {
        None => lines.put("send", "none"),
        Some(send) => {
            lines.put("send.to", address(&send.to));
            lines.put("send.bind", send.bind.as_ref().map_or("none".to_owned(), address));
            lines.put("send.queue", send.queue);
            // Written only when set, so policies without it keep their fingerprint.
            if let Some(metrics) = &send.metrics {
                lines.put("send.metrics", address(metrics));
            }
        }
    }
    match &policy.recv {
        None => lines.put("recv", "none"),
        Some(recv) => {
            lines.put("recv.listen", address(&recv.listen));
            lines.put("recv.socket_buffer", recv.socket_buffer);
            lines.put("recv.queue", recv.queue);
            lines.put("recv.spool", path(&recv.spool));
            lines.put("recv.state", path(&recv.state));
            if let Some(metrics) = &recv.metrics {
                lines.put("recv.metrics", address(metrics));
            }
            let spooling = &recv.spooling;
            lines.put("recv.segment", spooling.segment);
            lines.put("recv.spool_queue", spooling.queue);
            lines.put("recv.fsync_ns", spooling.fsync.as_nanos());
            lines.put("recv.fsync_bytes", spooling.fsync_bytes);
            lines.put(
                "recv.retain",
                spooling.retain.map_or("none".to_owned(), |r| r.to_string()),
            );
            lines.put(
                "recv.retain_age_ns",
                spooling
                    .retain_age
                    .map_or("none".to_owned(), |a| a.as_nanos().to_string()),
            );
            // weir-deliver's settings are written only when they differ from the default, so
            // policies that do not use them keep their fingerprint.
            if recv.deliver_state != Path::new(DEFAULT_DELIVER_STATE) {
                lines.put("recv.deliver_state", path(&recv.deliver_state));
            }
            if let Some(metrics) = &recv.deliver_metrics {
                lines.put("recv.deliver_metrics", address(metrics));
            }
            if recv.sink_after != SinkAfter::default() {
                lines.put("recv.sink_after", recv.sink_after.as_str());
            }
            if let Some(serve) = &recv.serve {
                lines.put(
                    "recv.serve.tls",
                    serve.tls.as_ref().map_or("none".to_owned(), address),
                );
                lines.put(
                    "recv.serve.quic",
                    serve.quic.as_ref().map_or("none".to_owned(), address),
                );
                lines.put("recv.serve.cert", path(&serve.cert));
                lines.put("recv.serve.key", path(&serve.key));
                lines.put("recv.serve.client_ca", path(&serve.client_ca));
                lines.put("recv.serve.max_connections", serve.max_connections);
                lines.put(
                    "recv.serve.handshake_timeout_ns",
                    serve.handshake_timeout.as_nanos(),
                );
                lines.put("recv.serve.idle_timeout_ns", serve.idle_timeout.as_nanos());
            }
        }
    }
    lines.put("channels", policy.channels.len());
    for (index, channel) in policy.channels.iter().enumerate() {
        let prefix = format!("channel[{index}]");
        lines.put(&format!("{prefix}.name"), quoted(&channel.name));
        lines.put(&format!("{prefix}.id"), channel.id);
        let source = match channel.source {
            Source::Tcp(addr) => format!("tcp {}", address(&addr)),
            Source::Udp(addr) => format!("udp {}", address(&addr)),
        };
        lines.put(&format!("{prefix}.source"), source);
        lines.put(&format!("{prefix}.max_message"), channel.max_message);
        lines.put(&format!("{prefix}.sinks"), channel.sinks.len());
        for (sink_index, sink) in channel.sinks.iter().enumerate() {
            let sink = match sink {
                Sink::Tcp(addr) => format!("tcp {}", address(addr)),
                Sink::Udp(addr) => format!("udp {}", address(addr)),
            };
            lines.put(&format!("{prefix}.sink[{sink_index}]"), sink);
        }
        match &channel.allow_from {
            None => lines.put(&format!("{prefix}.allow_from"), "any"),
            Some(networks) => {
                lines.put(&format!("{prefix}.allow_from"), networks.len());
                for (net_index, net) in networks.iter().enumerate() {
                    lines.put(&format!("{prefix}.allow_from[{net_index}]"), network(net));
                }
            }
        }
        let filter = &channel.filter;
        lines.put(&format!("{prefix}.filter.utf8"), filter.utf8);
        lines.put(
            &format!("{prefix}.filter.pattern"),
            filter.pattern_text().map_or("none".to_owned(), quoted),
        );
        lines.put(&format!("{prefix}.filter.json"), filter.json);
        lines.put(&format!("{prefix}.on_violation"), channel.on_violation.as_str());
        match &channel.rate {
            None => lines.put(&format!("{prefix}.rate"), "none"),
            Some(rate) => {
                let or_none = |value: Option<u64>| value.map_or("none".to_owned(), |v| v.to_string());
                lines.put(
                    &format!("{prefix}.rate.bytes_per_sec"),
                    or_none(rate.bytes_per_sec),
                );
                lines.put(&format!("{prefix}.rate.burst_bytes"), rate.burst_bytes);
                lines.put(
                    &format!("{prefix}.rate.messages_per_sec"),
                    or_none(rate.messages_per_sec.map(u64::from)),
                );
                lines.put(&format!("{prefix}.rate.burst_messages"), rate.burst_messages);
            }
        }
        lines.put(&format!("{prefix}.priority"), channel.priority.get());
        if !channel.consumers.is_empty() {
            lines.put(&format!("{prefix}.consumers"), channel.consumers.len());
            for (consumer_index, consumer) in channel.consumers.iter().enumerate() {
                lines.put(&format!("{prefix}.consumers[{consumer_index}]"), quoted(consumer));
            }
        }
    }
    lines.0
}

struct Canonical(String);

impl Canonical {
    fn put(&mut self, key: &str, value: impl fmt::Display) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.0, "{key} {value}");
    }
}

/// A string in double quotes; everything but printable ASCII other than `"` and `\` is escaped
/// as `\u{hex}`.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    out.push('"');
    out
}

fn path(path: &Path) -> String {
    quoted(&path.to_string_lossy())
}

/// `a.b.c.d/prefix`, or `xxxx:…:xxxx/prefix` with all eight groups in four hex digits.
fn network(net: &IpNet) -> String {
    match net {
        IpNet::V4(v4) => {
            let [a, b, c, d] = v4.addr().octets();
            format!("{a}.{b}.{c}.{d}/{}", v4.prefix_len())
        }
        IpNet::V6(v6) => format!("{}/{}", ipv6(&v6.addr()), v6.prefix_len()),
    }
}

fn ipv6(ip: &Ipv6Addr) -> String {
    let groups: Vec<String> = ip.segments().iter().map(|group| format!("{group:04x}")).collect();
    groups.join(":")
}

/// `a.b.c.d:port`, or `[xxxx:…:xxxx%scope]:port` with all eight groups in four hex digits.
fn address(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            format!("{a}.{b}.{c}.{d}:{}", v4.port())
        }
        SocketAddr::V6(v6) => format!("[{}%{}]:{}", ipv6(v6.ip()), v6.scope_id(), v6.port()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn display_is_first_16_bytes_hex() {
        let mut bytes = [0u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = index as u8;
        }
        let fingerprint = Fingerprint(bytes);
        assert_eq!(fingerprint.to_string(), "000102030405060708090a0b0c0d0e0f");
        assert_eq!(fingerprint.short()[15], 15);
        assert_eq!(fingerprint.full_hex().len(), 64);
        assert!(format!("{fingerprint:?}").contains("1f"));
    }

    #[test]
    fn strings_are_escaped_unambiguously() {
        assert_eq!(quoted("a b"), "\"a b\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\u{22}b\\u{5c}c\"");
        assert_eq!(quoted("x\ny"), "\"x\\u{a}y\"");
        assert_eq!(quoted("µ"), "\"\\u{b5}\"");
    }

    #[test]
    fn addresses_are_written_out_in_full() {
        let v4: SocketAddr = "192.0.2.2:5800".parse().unwrap();
        assert_eq!(address(&v4), "192.0.2.2:5800");
        let v6: SocketAddr = "[2001:db8::2]:5800".parse().unwrap();
        assert_eq!(address(&v6), "[2001:0db8:0000:0000:0000:0000:0000:0002%0]:5800");
        let mapped: SocketAddr = "[::ffff:192.0.2.2]:1".parse().unwrap();
        assert_eq!(address(&mapped), "[0000:0000:0000:0000:0000:ffff:c000:0202%0]:1");
    }
}
