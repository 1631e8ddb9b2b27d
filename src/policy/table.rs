//! Human-readable views of a policy for `weir check`: the channel table and the link summary.
//!
//! Contract: output is for people, not machines (the machine form is in `json`); columns are
//! aligned with spaces; it shows the validated values (defaults filled in, sizes in binary
//! units, ids in hex, "any" for a channel without `allow_from`, "-" for none) and never anything
//! secret (the policy holds no secrets).

use std::fmt::Write;

use ipnet::IpNet;

use super::limits::{IPV4_UDP_OVERHEAD, IPV6_UDP_OVERHEAD};
use super::model::Policy;
use super::units::{format_duration, format_rate, format_size};

impl Policy {
    /// An aligned table of the channels: name, id, source, allowed peers, filters, rate limit,
    /// priority, max message, sinks.
    ///
    /// ```text
    /// NAME       ID        SOURCE               ALLOW        FILTERS       RATE        PRIO  MAX MESSAGE  SINKS
    /// historian  5d3c4a1f  tcp 10.1.0.5:7000    10.1.0.0/24  -             200 Mbit/s  3     64 KiB       -
    /// syslog     0b9e77c2  udp 10.1.0.5:5514    any          utf8,pattern  -           2     8 KiB        udp 10.20.0.9:514
    /// ```
    pub fn channel_table(&self) -> String {
        if self.channels.is_empty() {
            return "(no channels)\n".to_owned();
        }
        let header = [
            "NAME",
            "ID",
            "SOURCE",
            "ALLOW",
            "FILTERS",
            "RATE",
            "PRIO",
            "MAX MESSAGE",
            "SINKS",
        ];
        let mut rows = vec![header.map(str::to_owned)];
        for channel in &self.channels {
            rows.push([
                channel.name.clone(),
                channel.id.to_string(),
                channel.source.to_string(),
                channel
                    .allow_from
                    .as_deref()
                    .map_or("any".to_owned(), |networks| list(networks.iter().map(peer), ", ")),
                list(channel.filter.rules().into_iter().map(str::to_owned), ","),
                channel.rate.map_or("-".to_owned(), |rate| rate.summary()),
                channel.priority.to_string(),
                format_size(channel.max_message as u64),
                list(channel.sinks.iter().map(ToString::to_string), ", "),
            ]);
        }
        let mut widths = [0usize; 9];
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut table = String::new();
        for row in &rows {
            let mut line = String::new();
            for (width, cell) in widths.iter().zip(row) {
                let _ = write!(line, "{cell:<width$}  ");
            }
            table.push_str(line.trim_end());
            table.push('\n');
        }
        table
    }

    /// The link parameters, with what they imply (datagram budget, symbols per block), one per
    /// line.
    pub fn link_summary(&self) -> String {
        let link = &self.link;
        let repair = link.repair_symbols(link.block_symbols);
        let ipv4 = link.mtu.saturating_sub(IPV4_UDP_OVERHEAD);
        let ipv6 = link.mtu.saturating_sub(IPV6_UDP_OVERHEAD);
        let rows = [
            ("fingerprint", self.fingerprint.to_string()),
            ("key file", link.key_file.display().to_string()),
            (
                "mtu",
                format!(
                    "{} B (datagram budget {ipv4} B over IPv4, {ipv6} B over IPv6)",
                    link.mtu
                ),
            ),
            (
                "fec block",
                format!(
                    "up to {} source + {repair} repair symbols ({}% repair)",
                    link.block_symbols, link.repair_percent
                ),
            ),
            ("bandwidth", format_rate(link.bandwidth_bps)),
            ("heartbeat", format_duration(link.heartbeat)),
            ("flush", format_duration(link.flush)),
            ("reorder window", format_duration(link.reorder_window)),
        ];
        let mut summary = String::new();
        for (name, value) in rows {
            let _ = writeln!(summary, "{name:<16}{value}");
        }
        summary
    }
}

/// The items joined with `separator`, or "-" when there are none.
fn list(items: impl Iterator<Item = String>, separator: &str) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(separator)
    }
}

/// A network as CIDR, or a single address (/32, /128) as the plain address.
fn peer(network: &IpNet) -> String {
    if network.prefix_len() == network.max_prefix_len() {
        network.addr().to_string()
    } else {
        network.to_string()
    }
}
