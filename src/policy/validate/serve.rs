//! Validation of the IT side's storage and consumer server: the spool settings of `[recv]`,
//! `[recv.serve]`, and each channel's `consumers`.
//!
//! Contract:
//! - Spool settings have defaults and ranges from [`crate::policy::limits`]; `retain` is at
//!   least twice `segment` (the active segment is never deleted, so a smaller bound could not
//!   hold).
//! - `[recv.serve]` needs `cert`, `key`, `client_ca` and at least one of `tls` / `quic`; the
//!   paths are only checked to be non-empty here (the policy does no I/O); the daemon reports
//!   unreadable files naming them.
//! - A consumer identity is a DNS name (compared lower-cased) or a URI (it contains `:`; compared
//!   exactly), printable ASCII without spaces, at most [`MAX_IDENTITY`] bytes, listed once.

use std::collections::HashSet;

use toml::Spanned;

use super::{address, count, duration, path, quantity, Kind, Role};
use crate::policy::error::Collector;
use crate::policy::limits::*;
use crate::policy::model::{Serve, Spooling};
use crate::policy::raw::{RawRecv, RawServe};
use crate::policy::units::format_size;

/// The spool settings of `[recv]`.
pub(super) fn spooling(
    raw: &RawRecv,
    largest_message: Option<&(u64, String)>,
    c: &mut Collector<'_>,
) -> Option<Spooling> {
    let queue = super::queue(
        raw.spool_queue.as_ref(),
        &(0..0),
        "recv.spool_queue",
        DEFAULT_SPOOL_QUEUE,
        SPOOL_QUEUE_RANGE,
        largest_message,
        c,
    );
    let segment = quantity(
        raw.segment.as_ref(),
        "recv.segment",
        Kind::Size,
        DEFAULT_SEGMENT,
        SEGMENT_RANGE,
        "a channel's log rolls to a new file after this size, e.g. \"64 MiB\"",
        c,
    );
    let fsync = duration(
        raw.fsync.as_ref(),
        "recv.fsync",
        DEFAULT_FSYNC,
        FSYNC_NS_RANGE,
        "records are fsynced at least this often, e.g. \"100ms\"; consumers see them after that",
        c,
    );
    let fsync_bytes = quantity(
        raw.fsync_bytes.as_ref(),
        "recv.fsync_bytes",
        Kind::Size,
        DEFAULT_FSYNC_BYTES,
        FSYNC_BYTES_RANGE,
        "fsync as soon as this many bytes wait, e.g. \"64 MiB\"",
        c,
    );
    let retain = quantity(
        raw.retain.as_ref(),
        "recv.retain",
        Kind::Size,
        DEFAULT_RETAIN,
        RETAIN_RANGE,
        "bytes kept per channel; the oldest segments go first, e.g. \"10 GiB\"",
        c,
    );
    let retain_age = raw.retain_age.as_ref().map(|age| {
        quantity(
            Some(age),
            "recv.retain_age",
            Kind::Duration,
            0,
            RETAIN_AGE_NS_RANGE,
            "records older than this are deleted (whole segments), e.g. \"7d\"",
            c,
        )
        .map(std::time::Duration::from_nanos)
    });
    let (segment, retain) = (segment?, retain?);
    if retain < 2 * segment {
        c.error(
            raw.retain.as_ref().map(Spanned::span),
            "recv.retain",
            format!(
                "{} is less than twice recv.segment ({}); the active segment is never deleted",
                format_size(retain),
                format_size(segment)
            ),
            Some("raise recv.retain or lower recv.segment"),
        );
        return None;
    }
    Some(Spooling {
        segment,
        queue: queue?,
        fsync: fsync?,
        fsync_bytes: fsync_bytes?,
        retain: Some(retain),
        retain_age: retain_age.map_or(Some(None), |age| age.map(Some))?,
    })
}

/// `[recv.serve]`.
pub(super) fn serve(raw: &Spanned<RawServe>, c: &mut Collector<'_>) -> Option<Serve> {
    let section = raw.span();
    let raw = raw.get_ref();
    let tls = raw
        .tls
        .as_ref()
        .map(|a| address(a, "recv.serve.tls", Role::Listen, c));
    let quic = raw
        .quic
        .as_ref()
        .map(|a| address(a, "recv.serve.quic", Role::Listen, c));
    if tls.is_none() && quic.is_none() {
        c.error(
            Some(section.clone()),
            "recv.serve",
            "needs `tls`, `quic` or both",
            Some("e.g. tls = \"0.0.0.0:7443\" and quic = \"0.0.0.0:7443\""),
        );
    }
    let mut file = |field: &Option<Spanned<String>>, name: &str, hint: &str| match field {
        Some(value) => path(value, &format!("recv.serve.{name}"), c),
        None => {
            c.error(
                Some(section.clone()),
                format!("recv.serve.{name}"),
                "is required",
                Some(hint),
            );
            None
        }
    };
    let cert = file(
        &raw.cert,
        "cert",
        "the server's certificate chain (PEM), e.g. from `weir pki issue server`",
    );
    let key = file(&raw.key, "key", "the server's private key (PEM)");
    let client_ca = file(
        &raw.client_ca,
        "client_ca",
        "the CA (PEM) that signs consumer certificates; only those are accepted",
    );
    let max_connections = count(
        raw.max_connections.as_ref(),
        "recv.serve.max_connections",
        DEFAULT_MAX_CONNECTIONS,
        MAX_CONNECTIONS_RANGE,
        "consumer connections open at once; more are refused",
        c,
    );
    let handshake_timeout = duration(
        raw.handshake_timeout.as_ref(),
        "recv.serve.handshake_timeout",
        DEFAULT_HANDSHAKE_TIMEOUT,
        SERVE_TIMEOUT_NS_RANGE,
        "a connection must finish its handshake and subscribe within this, e.g. \"10s\"",
        c,
    );
    let idle_timeout = duration(
        raw.idle_timeout.as_ref(),
        "recv.serve.idle_timeout",
        DEFAULT_IDLE_TIMEOUT,
        SERVE_TIMEOUT_NS_RANGE,
        "a consumer that accepts no bytes for this long is disconnected, e.g. \"60s\"",
        c,
    );
    let (tls, quic) = (
        tls.map_or(Some(None), |a| a.map(Some))?,
        quic.map_or(Some(None), |a| a.map(Some))?,
    );
    if tls.is_none() && quic.is_none() {
        return None;
    }
    Some(Serve {
        tls,
        quic,
        cert: cert?,
        key: key?,
        client_ca: client_ca?,
        max_connections: usize::try_from(max_connections?).ok()?,
        handshake_timeout: handshake_timeout?,
        idle_timeout: idle_timeout?,
    })
}

/// A channel's `consumers`: identities, normalised (DNS names lower-cased).
pub(super) fn consumers(
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
    path: &str,
    c: &mut Collector<'_>,
) -> Option<Vec<String>> {
    let Some(raw) = raw else {
        return Some(Vec::new());
    };
    let field = format!("{path}.consumers");
    if raw.get_ref().len() > MAX_CONSUMERS {
        c.error(
            Some(raw.span()),
            &field,
            format!(
                "lists {} identities; at most {MAX_CONSUMERS}",
                raw.get_ref().len()
            ),
            None,
        );
        return None;
    }
    let mut seen = HashSet::new();
    let mut ok = true;
    let mut identities = Vec::new();
    for (index, identity) in raw.get_ref().iter().enumerate() {
        let field = format!("{field}[{index}]");
        match normalize_identity(identity.get_ref()) {
            Ok(normal) if seen.insert(normal.clone()) => identities.push(normal),
            Ok(normal) => {
                c.error(
                    Some(identity.span()),
                    field,
                    format!("{normal:?} is listed twice"),
                    None,
                );
                ok = false;
            }
            Err(problem) => {
                c.error(
                    Some(identity.span()),
                    field,
                    format!("{:?} {problem}", identity.get_ref()),
                    Some(
                        "a consumer identity is the DNS name or URI in its client certificate's \
                         subject alternative names, e.g. \"siem.corp.example\" or \
                         \"spiffe://corp.example/siem\"",
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(identities)
}

/// The form in which an identity is compared: DNS names lower-cased, URIs as written.
pub fn normalize_identity(identity: &str) -> Result<String, &'static str> {
    if identity.is_empty() {
        return Err("is empty");
    }
    if identity.len() > MAX_IDENTITY {
        return Err("is too long");
    }
    if !identity.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("contains spaces or characters that are not printable ASCII");
    }
    if identity.contains(':') {
        return Ok(identity.to_owned());
    }
    let dns_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !identity.split('.').all(dns_label) {
        return Err("is neither a DNS name nor a URI");
    }
    Ok(identity.to_ascii_lowercase())
}
