//! Validation: raw mirror → typed [`Policy`], reporting every problem with its location.
//!
//! Contract:
//! - Each field is checked on its own and every problem is reported to the collector; a
//!   section with problems yields `None` only after all its fields have been checked.
//! - Defaults and ranges come from [`super::limits`]; range messages echo the value as written.
//! - Cross-field rules: FEC block size against the shard limit, queues against the largest
//!   message, `send.bind` in the same IP family as `send.to`, `recv.deliver_metrics` not on the
//!   address of `recv.metrics` (the two IT daemons cannot both listen there), consumers only
//!   with `[recv.serve]`, channel byte rates within `link.bandwidth` (channel rules are in
//!   `channels`, `filters` and `rules`).
//! - The fingerprint is computed on paths as written; relative paths are resolved afterwards.

use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::Collector;
use super::fingerprint::Fingerprint;
use super::limits::*;
use super::model::{Channel, Link, Policy, RecvSide, SendSide, SinkAfter};
use super::raw::{RawLink, RawPolicy, RawRecv, RawSend, Scalar, Section};
use super::units;

mod channels;
mod filters;
mod rules;
mod serve;
mod values;

pub use serve::normalize_identity;

pub(crate) use values::{address, count, duration, path, quantity, Kind, Role};

/// Validates `raw`; `None` when a problem was reported.
pub(crate) fn policy(raw: RawPolicy, origin: &Path, c: &mut Collector<'_>) -> Option<Policy> {
    let link = match &raw.link {
        Section::Present(link) => self::link(link, c),
        Section::Invalid => None,
        Section::Absent => {
            c.error(
                None,
                "link",
                "the [link] section is missing",
                Some("every policy needs [link] with at least `key_file`"),
            );
            None
        }
    };
    // Channel rates are checked against the link's bandwidth (when the link is valid).
    let bandwidth = link.as_ref().map(|link: &Link| link.bandwidth_bps);
    let channels = channels::channels(&raw.channels, bandwidth, c);
    let largest_message = channels.as_deref().map(largest_message);
    let send = match &raw.send {
        Section::Present(send) => self::send(send, largest_message.as_ref(), c).map(Some),
        Section::Invalid => None,
        Section::Absent => Some(None),
    };
    let recv = match &raw.recv {
        Section::Present(recv) => self::recv(recv, largest_message.as_ref(), c).map(Some),
        Section::Invalid => None,
        Section::Absent => Some(None),
    };
    if let (Some(Some(recv)), Some(channels)) = (&recv, &channels) {
        if recv.serve.is_none() {
            for (index, channel) in channels.iter().enumerate() {
                if !channel.consumers.is_empty() {
                    c.error(
                        None,
                        format!("channel[{index}].consumers"),
                        format!(
                            "channel \"{}\" grants consumers, but [recv] has no [recv.serve]",
                            channel.name
                        ),
                        Some("add [recv.serve], or remove the consumers"),
                    );
                    return None;
                }
            }
        }
    }
    let mut policy = Policy {
        origin: origin.to_path_buf(),
        link: link?,
        send: send?,
        recv: recv?,
        channels: channels?,
        fingerprint: Fingerprint([0; 32]),
    };
    policy.fingerprint = Fingerprint::of(&policy);
    let base = origin.parent().unwrap_or(Path::new(""));
    policy.link.key_file = base.join(&policy.link.key_file);
    if let Some(recv) = &mut policy.recv {
        for dir in [&mut recv.spool, &mut recv.state, &mut recv.deliver_state] {
            *dir = base.join(&*dir);
        }
        if let Some(serve) = &mut recv.serve {
            for file in [&mut serve.cert, &mut serve.key, &mut serve.client_ca] {
                *file = base.join(&*file);
            }
        }
    }
    Some(policy)
}

/// The largest `max_message` of all channels (0 without channels).
fn largest_message(channels: &[Channel]) -> (u64, String) {
    channels
        .iter()
        .max_by_key(|channel| channel.max_message)
        .map_or((0, String::new()), |channel| {
            (channel.max_message as u64, channel.name.clone())
        })
}

fn link(raw: &Spanned<RawLink>, c: &mut Collector<'_>) -> Option<Link> {
    let section = raw.span();
    let raw = raw.get_ref();
    let key_file = match &raw.key_file {
        Some(path) => self::path(path, "link.key_file", c),
        None => {
            c.error(
                Some(section.clone()),
                "link.key_file",
                "is required",
                Some("create a key with `weir keygen /etc/weir/link.key` and name it here"),
            );
            None
        }
    };
    let mtu = count(
        raw.mtu.as_ref(),
        "link.mtu",
        DEFAULT_MTU.into(),
        MTU_RANGE,
        "the datagram budget is mtu - 28 bytes (IPv4 and UDP headers); use the link's IP MTU, \
         1500 on Ethernet or up to 9000 with jumbo frames",
        c,
    );
    let repair = quantity(
        raw.repair.as_ref(),
        "link.repair",
        Kind::Percent,
        DEFAULT_REPAIR_PERCENT.into(),
        REPAIR_PERCENT_RANGE,
        "repair symbols per FEC block in percent of its source symbols, e.g. \"10%\"",
        c,
    );
    let bandwidth = quantity(
        raw.bandwidth.as_ref(),
        "link.bandwidth",
        Kind::Rate,
        DEFAULT_BANDWIDTH_BPS,
        BANDWIDTH_BPS_RANGE,
        "the sender paces to this rate; keep it below the link's capacity, e.g. \"800 Mbit/s\"",
        c,
    );
    let heartbeat = duration(
        raw.heartbeat.as_ref(),
        "link.heartbeat",
        DEFAULT_HEARTBEAT,
        HEARTBEAT_NS_RANGE,
        "how often the sender reports it is alive, e.g. \"1s\"",
        c,
    );
    let flush = duration(
        raw.flush.as_ref(),
        "link.flush",
        DEFAULT_FLUSH,
        FLUSH_NS_RANGE,
        "the longest a message waits for its FEC block to fill, e.g. \"1ms\"",
        c,
    );
    let block_symbols = count(
        raw.block_symbols.as_ref(),
        "link.block_symbols",
        DEFAULT_BLOCK_SYMBOLS.into(),
        BLOCK_SYMBOLS_RANGE,
        "source symbols per FEC block; 64 is a good start",
        c,
    );
    let reorder_window = duration(
        raw.reorder_window.as_ref(),
        "link.reorder_window",
        DEFAULT_REORDER_WINDOW,
        REORDER_WINDOW_NS_RANGE,
        "how long the receiver waits for a block's missing symbols before counting them lost, \
         e.g. \"50ms\"",
        c,
    );
    if let (Some(k), Some(percent)) = (block_symbols, repair) {
        let total = k + (k * percent).div_ceil(100);
        if total > u64::from(MAX_SYMBOLS_PER_BLOCK) {
            let span = match (&raw.block_symbols, &raw.repair) {
                (Some(written), _) => written.span(),
                (None, Some(written)) => written.span(),
                (None, None) => section,
            };
            c.error(
                Some(span),
                "link.block_symbols",
                format!(
                    "{k} source symbols with {percent}% repair make {total} symbols per block, \
                     more than {MAX_SYMBOLS_PER_BLOCK}"
                ),
                Some(
                    "the Reed-Solomon code has at most 256 symbols per block; lower repair or block_symbols",
                ),
            );
            return None;
        }
    }
    Some(Link {
        key_file: key_file?,
        mtu: u16::try_from(mtu?).ok()?,
        repair_percent: u16::try_from(repair?).ok()?,
        bandwidth_bps: bandwidth?,
        heartbeat: heartbeat?,
        flush: flush?,
        block_symbols: u16::try_from(block_symbols?).ok()?,
        reorder_window: reorder_window?,
    })
}

fn send(
    raw: &Spanned<RawSend>,
    largest_message: Option<&(u64, String)>,
    c: &mut Collector<'_>,
) -> Option<SendSide> {
    let section = raw.span();
    let raw = raw.get_ref();
    let to = match &raw.to {
        Some(to) => address(to, "send.to", Role::Destination, c),
        None => {
            c.error(
                Some(section.clone()),
                "send.to",
                "is required",
                Some("the receiver's [recv] listen address as seen through the link"),
            );
            None
        }
    };
    let bind = raw
        .bind
        .as_ref()
        .map(|bind| address(bind, "send.bind", Role::Listen, c));
    if let (Some(to), Some(Some(bind)), Some(bind_raw)) = (to, bind, &raw.bind) {
        if to.is_ipv4() != bind.is_ipv4() {
            c.error(
                Some(bind_raw.span()),
                "send.bind",
                format!("{bind} and send.to {to} are of different IP families"),
                Some("bind an address of the same family as `to`"),
            );
        }
    }
    let queue = queue(
        raw.queue.as_ref(),
        &section,
        "send.queue",
        DEFAULT_SEND_QUEUE,
        SEND_QUEUE_RANGE,
        largest_message,
        c,
    );
    let metrics = raw
        .metrics
        .as_ref()
        .map(|m| address(m, "send.metrics", Role::Listen, c));
    Some(SendSide {
        to: to?,
        bind: bind.map_or(Some(None), |bind| bind.map(Some))?,
        queue: queue?,
        metrics: metrics.map_or(Some(None), |m| m.map(Some))?,
    })
}

fn recv(
    raw: &Spanned<RawRecv>,
    largest_message: Option<&(u64, String)>,
    c: &mut Collector<'_>,
) -> Option<RecvSide> {
    let section = raw.span();
    let raw = raw.get_ref();
    let listen = match &raw.listen {
        Some(listen) => address(listen, "recv.listen", Role::Listen, c),
        None => {
            c.error(
                Some(section.clone()),
                "recv.listen",
                "is required",
                Some("the address the link socket listens on, e.g. \"192.0.2.2:5800\""),
            );
            None
        }
    };
    let socket_buffer = quantity(
        raw.socket_buffer.as_ref(),
        "recv.socket_buffer",
        Kind::Size,
        DEFAULT_SOCKET_BUFFER,
        SOCKET_BUFFER_RANGE,
        "the link socket's receive buffer; fast links need tens of MiB, e.g. \"32 MiB\"",
        c,
    );
    let queue = queue(
        raw.queue.as_ref(),
        &section,
        "recv.queue",
        DEFAULT_RECV_QUEUE,
        RECV_QUEUE_RANGE,
        largest_message,
        c,
    );
    let spool = path_or(raw.spool.as_ref(), "recv.spool", DEFAULT_SPOOL, c);
    let metrics = raw
        .metrics
        .as_ref()
        .map(|m| address(m, "recv.metrics", Role::Listen, c));
    let spooling = serve::spooling(raw, largest_message, c);
    let serve = raw.serve.as_ref().map(|serve| serve::serve(serve, c));
    let state = path_or(raw.state.as_ref(), "recv.state", DEFAULT_RECV_STATE, c);
    let deliver_state = path_or(
        raw.deliver_state.as_ref(),
        "recv.deliver_state",
        DEFAULT_DELIVER_STATE,
        c,
    );
    let deliver_metrics = raw
        .deliver_metrics
        .as_ref()
        .map(|m| address(m, "recv.deliver_metrics", Role::Listen, c));
    let sink_after = sink_after(raw.sink_after.as_ref(), c);
    // Checked last: every field of [recv] has been checked when this returns.
    if let (Some(Some(metrics)), Some(Some(deliver)), Some(written)) =
        (metrics, deliver_metrics, &raw.deliver_metrics)
    {
        if listeners_collide(&metrics, &deliver) {
            c.error(
                Some(written.span()),
                "recv.deliver_metrics",
                format!(
                    "{deliver} collides with recv.metrics {metrics}: weir-recv and weir-deliver \
                     cannot both listen there"
                ),
                Some("give recv.deliver_metrics a port of its own, e.g. the port after recv.metrics"),
            );
            return None;
        }
    }
    Some(RecvSide {
        listen: listen?,
        socket_buffer: usize::try_from(socket_buffer?).ok()?,
        queue: queue?,
        spool: spool?,
        spooling: spooling?,
        serve: serve.map_or(Some(None), |serve| serve.map(Some))?,
        state: state?,
        metrics: metrics.map_or(Some(None), |m| m.map(Some))?,
        deliver_state: deliver_state?,
        deliver_metrics: deliver_metrics.map_or(Some(None), |m| m.map(Some))?,
        sink_after: sink_after?,
    })
}

/// Whether two listeners cannot both bind: the same non-zero port on the same IP, or on an IP
/// the other's unspecified address covers (`0.0.0.0` covers IPv4; `[::]` covers both families,
/// as a dual-stack socket does).
fn listeners_collide(a: &SocketAddr, b: &SocketAddr) -> bool {
    let covers = |wide: &SocketAddr, narrow: &SocketAddr| {
        wide.ip().is_unspecified() && (wide.is_ipv6() || narrow.is_ipv4())
    };
    a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || covers(a, b) || covers(b, a))
}

/// A path field with a default (as written; resolved against the policy's directory later).
fn path_or(
    raw: Option<&Spanned<String>>,
    field: &str,
    default: &str,
    c: &mut Collector<'_>,
) -> Option<PathBuf> {
    match raw {
        Some(written) => path(written, field, c),
        None => Some(PathBuf::from(default)),
    }
}

/// `recv.sink_after`: `"fsync"` (the default) or `"write"`.
fn sink_after(raw: Option<&Spanned<String>>, c: &mut Collector<'_>) -> Option<SinkAfter> {
    let Some(raw) = raw else {
        return Some(SinkAfter::default());
    };
    match raw.get_ref().as_str() {
        "fsync" => Some(SinkAfter::Fsync),
        "write" => Some(SinkAfter::Write),
        other => {
            c.error(
                Some(raw.span()),
                "recv.sink_after",
                format!("{other:?} is not one of \"fsync\", \"write\""),
                Some(
                    "\"fsync\" (the default): sinks send a record once it is fsynced, so a power \
                     loss never takes back a sent record; \"write\": as soon as weir-recv has \
                     written it, for lower latency",
                ),
            );
            None
        }
    }
}

/// A queue size that must hold at least the largest message of any channel.
fn queue(
    raw: Option<&Spanned<Scalar>>,
    section: &Range<usize>,
    field: &str,
    default: u64,
    range: RangeInclusive<u64>,
    largest_message: Option<&(u64, String)>,
    c: &mut Collector<'_>,
) -> Option<usize> {
    let hint = "most bytes queued before new messages are dropped, e.g. \"8 MiB\"";
    let bytes = quantity(raw, field, Kind::Size, default, range, hint, c)?;
    if let Some((largest, channel)) = largest_message {
        if bytes < *largest {
            c.error(
                Some(raw.map_or(section.clone(), Spanned::span)),
                field,
                format!(
                    "{} is smaller than the max_message of channel \"{channel}\" ({}); such a \
                     message could never be queued",
                    units::format_size(bytes),
                    units::format_size(*largest),
                ),
                Some("raise the queue or lower the channel's max_message"),
            );
            return None;
        }
    }
    usize::try_from(bytes).ok()
}
