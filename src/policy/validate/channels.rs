//! Validation of `[[channel]]`: names, ids, sources, sinks, message size.
//!
//! Contract:
//! - At most [`MAX_CHANNELS`] channels; names match `[a-z0-9][a-z0-9._-]{0,62}` and are unique;
//!   ids (derived from names) are unique.
//! - A source or sink is exactly one of `tcp` / `udp`; sinks have the transport of their
//!   channel's source (a stream cannot be re-emitted as datagrams or the reverse); no sink is
//!   listed twice in a channel; no two channels read the same source address (unless port 0).
//! - The access and traffic rules (`allow_from`, `filter`, `on_violation`, `rate`,
//!   `priority`) are checked in [`filters`] and [`rules`].
//! - Every problem of every channel is reported; `None` when there was any.

use std::collections::HashMap;
use std::net::SocketAddr;

use toml::Spanned;

use super::{address, filters, quantity, rules, Kind, Role};
use crate::policy::error::Collector;
use crate::policy::limits::{DEFAULT_MAX_MESSAGE, MAX_CHANNELS, MAX_CHANNEL_NAME, MAX_MESSAGE_RANGE};
use crate::policy::model::{Channel, ChannelId, Sink, Source, Transport};
use crate::policy::raw::{RawChannel, RawEndpoint};

/// Validates every channel; `None` when a problem was reported.
/// `bandwidth` is `link.bandwidth` in bit/s, `None` when the link is invalid.
pub(super) fn channels(
    raw: &[Option<Spanned<RawChannel>>],
    bandwidth: Option<u64>,
    c: &mut Collector<'_>,
) -> Option<Vec<Channel>> {
    let mut ok = true;
    if raw.len() > MAX_CHANNELS {
        let span = raw
            .get(MAX_CHANNELS)
            .and_then(|channel| channel.as_ref().map(Spanned::span));
        c.error(
            span,
            format!("channel[{MAX_CHANNELS}]"),
            format!("the policy has {} channels, more than {MAX_CHANNELS}", raw.len()),
            Some("split the flows over several conduits (policy files)"),
        );
        ok = false;
    }
    let mut names: HashMap<String, (usize, usize)> = HashMap::new();
    let mut ids: HashMap<ChannelId, (usize, String)> = HashMap::new();
    let mut sources: HashMap<(Transport, SocketAddr), usize> = HashMap::new();
    let mut channels = Vec::with_capacity(raw.len());
    for (index, channel) in raw.iter().enumerate() {
        let Some(channel) = channel else {
            ok = false; // already reported by the raw reader
            continue;
        };
        let path = format!("channel[{index}]");
        let Some(channel) = self::channel(channel, &path, bandwidth, c) else {
            ok = false;
            continue;
        };
        let (name_span, source_span) = spans(raw.get(index));
        if let Some((first, line)) = names.get(&channel.name) {
            c.error(
                name_span.clone(),
                format!("{path}.name"),
                format!(
                    "channel name {:?} is already used by channel[{first}] on line {line}",
                    channel.name
                ),
                Some("every channel needs its own name"),
            );
            ok = false;
            continue;
        }
        let line = name_span.as_ref().map_or(0, |span| c.line_of(span.start));
        names.insert(channel.name.clone(), (index, line));
        if let Some((first, other)) = ids.get(&channel.id) {
            c.error(
                name_span,
                format!("{path}.name"),
                format!(
                    "channel id {} of {:?} collides with that of channel[{first}] {other:?}",
                    channel.id, channel.name
                ),
                Some("rename one of the two channels"),
            );
            ok = false;
        }
        ids.insert(channel.id, (index, channel.name.clone()));
        let key = (channel.source.transport(), channel.source.addr());
        if key.1.port() != 0 {
            if let Some(first) = sources.get(&key) {
                c.error(
                    source_span,
                    format!("{path}.source"),
                    format!("{} is already the source of channel[{first}]", channel.source),
                    Some("one source address feeds one channel"),
                );
                ok = false;
            }
            sources.insert(key, index);
        }
        channels.push(channel);
    }
    ok.then_some(channels)
}

fn spans(
    channel: Option<&Option<Spanned<RawChannel>>>,
) -> (Option<std::ops::Range<usize>>, Option<std::ops::Range<usize>>) {
    let channel = channel.and_then(Option::as_ref).map(Spanned::get_ref);
    (
        channel.and_then(|c| c.name.as_ref().map(Spanned::span)),
        channel.and_then(|c| c.source.as_ref().map(Spanned::span)),
    )
}

fn channel(
    raw: &Spanned<RawChannel>,
    path: &str,
    bandwidth: Option<u64>,
    c: &mut Collector<'_>,
) -> Option<Channel> {
    let section = raw.span();
    let raw = raw.get_ref();
    let name = match &raw.name {
        Some(name) => self::name(name, path, c),
        None => {
            c.error(
                Some(section.clone()),
                format!("{path}.name"),
                "is required",
                Some("a channel name such as \"syslog\": lowercase letters, digits, '.', '_', '-'"),
            );
            None
        }
    };
    let source = match &raw.source {
        Some(source) => endpoint(source, &format!("{path}.source"), Role::Listen, c),
        None => {
            c.error(
                Some(section),
                format!("{path}.source"),
                "is required",
                Some("e.g. source = { udp = \"10.1.0.5:5514\" } or { tcp = \"10.1.0.5:7000\" }"),
            );
            None
        }
    };
    let sinks = sinks(raw, path, source.map(|(transport, _)| transport), c);
    let max_message = quantity(
        raw.max_message.as_ref(),
        &format!("{path}.max_message"),
        Kind::Size,
        DEFAULT_MAX_MESSAGE,
        MAX_MESSAGE_RANGE,
        "the largest UDP datagram accepted, or the TCP read chunk size, e.g. \"8 KiB\"",
        c,
    );
    let transport = source.map(|(transport, _)| transport);
    let allow_from = rules::allow_from(raw.allow_from.as_ref(), path, c);
    let filter = filters::filter(raw.filter.as_ref(), path, transport, c);
    let on_violation = filters::on_violation(raw.on_violation.as_ref(), path, transport, filter.as_ref(), c);
    let rate = rules::rate(raw.rate.as_ref(), path, max_message, bandwidth, c);
    let priority = rules::priority(raw.priority.as_ref(), path, c);
    let consumers = super::serve::consumers(raw.consumers.as_ref(), path, c);
    let name = name?;
    let source = match source? {
        (Transport::Tcp, addr) => Source::Tcp(addr),
        (Transport::Udp, addr) => Source::Udp(addr),
    };
    Some(Channel {
        id: ChannelId::for_name(&name),
        name,
        source,
        sinks: sinks?,
        max_message: usize::try_from(max_message?).ok()?,
        allow_from: allow_from?,
        filter: filter?,
        on_violation: on_violation?,
        rate: rate?,
        priority: priority?,
        consumers: consumers?,
    })
}

fn sinks(
    raw: &RawChannel,
    path: &str,
    source: Option<Transport>,
    c: &mut Collector<'_>,
) -> Option<Vec<Sink>> {
    let Some(list) = &raw.sinks else {
        return Some(Vec::new());
    };
    let mut sinks = Vec::new();
    let mut ok = true;
    for (index, sink) in list.get_ref().iter().enumerate() {
        let field = format!("{path}.sinks[{index}]");
        let Some((transport, addr)) = endpoint(sink, &field, Role::Destination, c) else {
            ok = false;
            continue;
        };
        if let Some(source) = source.filter(|source| *source != transport) {
            c.error(
                Some(sink.span()),
                field,
                format!("a {transport} sink cannot re-emit a {source} source"),
                Some(match source {
                    Transport::Tcp => {
                        "a tcp stream has no message boundaries to send as datagrams; use a tcp sink"
                    }
                    Transport::Udp => "datagram boundaries would be lost in a tcp stream; use a udp sink",
                }),
            );
            ok = false;
            continue;
        }
        let sink = match transport {
            Transport::Tcp => Sink::Tcp(addr),
            Transport::Udp => Sink::Udp(addr),
        };
        if sinks.contains(&sink) {
            c.error(
                Some(list.get_ref().get(index).map_or(list.span(), Spanned::span)),
                field,
                format!("{sink} is listed twice"),
                None,
            );
            ok = false;
            continue;
        }
        sinks.push(sink);
    }
    ok.then_some(sinks)
}

/// `{ tcp = "IP:PORT" }` or `{ udp = "IP:PORT" }`: exactly one.
fn endpoint(
    raw: &Spanned<RawEndpoint>,
    field: &str,
    role: Role,
    c: &mut Collector<'_>,
) -> Option<(Transport, SocketAddr)> {
    match (&raw.get_ref().tcp, &raw.get_ref().udp) {
        (Some(tcp), None) => Some((Transport::Tcp, address(tcp, field, role, c)?)),
        (None, Some(udp)) => Some((Transport::Udp, address(udp, field, role, c)?)),
        (Some(_), Some(_)) => {
            c.error(
                Some(raw.span()),
                field,
                "has both `tcp` and `udp`; write exactly one",
                Some("a channel is either a stream (tcp) or datagrams (udp)"),
            );
            None
        }
        (None, None) => {
            c.error(
                Some(raw.span()),
                field,
                "needs exactly one of `tcp` or `udp`",
                Some("e.g. { udp = \"10.1.0.5:5514\" }"),
            );
            None
        }
    }
}

/// `[a-z0-9][a-z0-9._-]{0,62}`
fn name(raw: &Spanned<String>, path: &str, c: &mut Collector<'_>) -> Option<String> {
    let name = raw.get_ref();
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit());
    let rest_ok = chars
        .all(|rest| rest.is_ascii_lowercase() || rest.is_ascii_digit() || matches!(rest, '.' | '_' | '-'));
    if first_ok && rest_ok && name.len() <= MAX_CHANNEL_NAME {
        return Some(name.clone());
    }
    c.error(
        Some(raw.span()),
        format!("{path}.name"),
        format!("{name:?} is not a valid channel name"),
        Some(
            "1 to 63 characters: lowercase letters, digits, '.', '_' and '-', starting with a \
             letter or digit",
        ),
    );
    None
}
