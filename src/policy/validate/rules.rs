//! Validation of a channel's access and traffic rules: `allow_from`, `rate`, `priority`
//! (content rules are in `filters`).
//!
//! Contract:
//! - `allow_from`: absent = any peer; otherwise 1 ..= [`MAX_ALLOW_FROM`] literal addresses or
//!   CIDR networks without host bits set, no duplicates. An empty list is an error (it would
//!   silently make the channel dead).
//! - `rate`: at least one of `bytes` / `messages`; `bytes` is at most `link.bandwidth` (checked
//!   when the link is valid); a `burst` needs `bytes` and is at least the channel's
//!   `max_message`; `burst_messages` needs `messages`.
//! - `priority`: 1 ..= 3, default 2.
//! - Each function reports every problem it finds and returns `None` when there was any.

use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use toml::Spanned;

use super::{count, quantity, Kind};
use crate::policy::error::Collector;
use crate::policy::flow::{Priority, RateLimit};
use crate::policy::limits::{
    DEFAULT_PRIORITY, MAX_ALLOW_FROM, PRIORITY_RANGE, RATE_BPS_RANGE, RATE_BURST_DEFAULT_DIVISOR,
    RATE_BURST_MESSAGES_RANGE, RATE_BURST_RANGE, RATE_MESSAGES_RANGE,
};
use crate::policy::raw::RawRate;
use crate::policy::units::{format_rate, format_size};

/// `allow_from`: `Some(None)` when absent (any peer).
pub(super) fn allow_from(
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
    path: &str,
    c: &mut Collector<'_>,
) -> Option<Option<Vec<IpNet>>> {
    let Some(list) = raw else {
        return Some(None);
    };
    let field = format!("{path}.allow_from");
    if list.get_ref().is_empty() {
        c.error(
            Some(list.span()),
            field,
            "is empty, so no peer could ever reach this channel",
            Some("remove the field to allow any peer, or list addresses or networks"),
        );
        return None;
    }
    if list.get_ref().len() > MAX_ALLOW_FROM {
        c.error(
            Some(list.span()),
            field,
            format!("has {} entries, more than {MAX_ALLOW_FROM}", list.get_ref().len()),
            Some("list networks (\"10.1.0.0/24\") rather than single addresses"),
        );
        return None;
    }
    let mut networks: Vec<IpNet> = Vec::with_capacity(list.get_ref().len());
    let mut ok = true;
    for (index, entry) in list.get_ref().iter().enumerate() {
        let field = format!("{field}[{index}]");
        match network(entry.get_ref()) {
            Ok(network) if networks.contains(&network) => {
                c.error(
                    Some(entry.span()),
                    field,
                    format!("{network} is listed twice"),
                    None,
                );
                ok = false;
            }
            Ok(network) => networks.push(network),
            Err((message, hint)) => {
                c.error(Some(entry.span()), field, message, Some(&hint));
                ok = false;
            }
        }
    }
    ok.then_some(Some(networks))
}

/// A literal address (a /32 or /128) or a CIDR network without host bits.
fn network(text: &str) -> Result<IpNet, (String, String)> {
    let trimmed = text.trim();
    if trimmed.contains('/') {
        let network: IpNet = trimmed.parse().map_err(|_| {
            (
                format!("{text:?} is not a CIDR network"),
                "write a network such as \"10.1.0.0/24\" or \"2001:db8::/32\", or an address".to_owned(),
            )
        })?;
        if network.addr() != network.network() {
            return Err((
                format!("{text:?} has host bits set"),
                format!(
                    "write the network \"{}\", or the single address \"{}\"",
                    network.trunc(),
                    network.addr()
                ),
            ));
        }
        return Ok(network);
    }
    let address: IpAddr = trimmed.parse().map_err(|_| {
        (
            format!("{text:?} is not an IP address or CIDR network"),
            "write an address such as \"192.0.2.7\" or a network such as \"10.1.0.0/24\"; host \
             names are not resolved"
                .to_owned(),
        )
    })?;
    Ok(IpNet::from(address))
}

/// `rate`; `max_message` is the channel's (`None` when it had problems: then so does this);
/// `bandwidth` is `link.bandwidth` in bit/s (`None` when the link had problems).
pub(super) fn rate(
    raw: Option<&Spanned<RawRate>>,
    path: &str,
    max_message: Option<u64>,
    bandwidth: Option<u64>,
    c: &mut Collector<'_>,
) -> Option<Option<RateLimit>> {
    let Some(spanned) = raw else {
        return Some(None);
    };
    let raw = spanned.get_ref();
    let field = |name: &str| format!("{path}.rate.{name}");
    if raw.bytes.is_none() && raw.messages.is_none() {
        c.error(
            Some(spanned.span()),
            format!("{path}.rate"),
            "needs `bytes` or `messages` (or both)",
            Some("e.g. rate = { bytes = \"200 Mbit/s\" } or { messages = 1000 }"),
        );
        return None;
    }
    let bps = raw.bytes.as_ref().map(|bytes| {
        let bps = quantity(
            Some(bytes),
            &field("bytes"),
            Kind::Rate,
            0,
            RATE_BPS_RANGE,
            "the channel's long-run rate in bit/s, e.g. \"200 Mbit/s\"",
            c,
        )?;
        match bandwidth {
            Some(bandwidth) if bps > bandwidth => {
                c.error(
                    Some(bytes.span()),
                    field("bytes"),
                    format!(
                        "{} is more than link.bandwidth ({}); the channel could never reach it",
                        format_rate(bps),
                        format_rate(bandwidth)
                    ),
                    Some("lower the channel's rate, or raise link.bandwidth if the link can carry it"),
                );
                None
            }
            _ => Some(bps),
        }
    });
    let messages = raw.messages.as_ref().map(|messages| {
        count(
            Some(messages),
            &field("messages"),
            0,
            RATE_MESSAGES_RANGE,
            "the channel's long-run rate in messages per second",
            c,
        )
    });
    let burst = burst(raw, &field("burst"), max_message, c);
    let burst_messages = match (&raw.burst_messages, &raw.messages) {
        (None, _) => Some(None),
        (Some(written), None) => {
            needs(written.span(), &field("burst_messages"), "messages", c);
            None
        }
        (Some(written), Some(_)) => count(
            Some(written),
            &field("burst_messages"),
            0,
            RATE_BURST_MESSAGES_RANGE,
            "how many messages may pass at once after a quiet period",
            c,
        )
        .map(Some),
    };
    let bytes_per_sec = bps.map_or(Some(None), |bps| bps.map(|bps| Some(bps / 8)))?;
    let messages_per_sec = match messages {
        Some(messages) => Some(u32::try_from(messages?).ok()?),
        None => None,
    };
    let burst_bytes = match (bytes_per_sec, burst?) {
        (None, _) => 0,
        (Some(_), Some(burst)) => burst,
        (Some(rate), None) => (rate / RATE_BURST_DEFAULT_DIVISOR).max(max_message?),
    };
    let burst_messages = match (messages_per_sec, burst_messages?) {
        (None, _) => 0,
        (Some(_), Some(written)) => u32::try_from(written).ok()?,
        (Some(rate), None) => (rate / u32::try_from(RATE_BURST_DEFAULT_DIVISOR).ok()?).max(1),
    };
    Some(Some(RateLimit {
        bytes_per_sec,
        burst_bytes,
        messages_per_sec,
        burst_messages,
    }))
}

/// `rate.burst`: `Some(None)` when absent (the default applies).
fn burst(raw: &RawRate, field: &str, max_message: Option<u64>, c: &mut Collector<'_>) -> Option<Option<u64>> {
    let Some(written) = &raw.burst else {
        return Some(None);
    };
    if raw.bytes.is_none() {
        needs(written.span(), field, "bytes", c);
        return None;
    }
    let hint = "how many bytes may pass at once after a quiet period; at least max_message";
    let burst = quantity(Some(written), field, Kind::Size, 0, RATE_BURST_RANGE, hint, c)?;
    let max_message = max_message?;
    if burst < max_message {
        c.error(
            Some(written.span()),
            field,
            format!(
                "{} is smaller than the channel's max_message ({}); a message larger than the \
                 burst could never pass",
                format_size(burst),
                format_size(max_message)
            ),
            Some("raise burst to at least max_message, or lower max_message"),
        );
        return None;
    }
    Some(Some(burst))
}

/// Reports a burst given without the rate it belongs to.
fn needs(span: Range<usize>, field: &str, rate: &str, c: &mut Collector<'_>) {
    c.error(
        Some(span),
        field,
        format!("has no effect without `{rate}`"),
        Some(&format!("add `{rate}` to the rate, or remove this field")),
    );
}

/// `priority`, default 2.
pub(super) fn priority(raw: Option<&Spanned<i64>>, path: &str, c: &mut Collector<'_>) -> Option<Priority> {
    let value = count(
        raw,
        &format!("{path}.priority"),
        DEFAULT_PRIORITY.into(),
        PRIORITY_RANGE,
        "1 is served first (telemetry, alarms), 2 is the default, 3 is bulk",
        c,
    )?;
    Priority::new(u8::try_from(value).ok()?)
}
