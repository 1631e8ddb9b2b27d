//! The raw mirror of a policy file: TOML text → spanned, unvalidated serde structs.
//!
//! Contract:
//! - Every struct denies unknown fields; every value keeps its byte span so that validation can
//!   point at it. All fields are optional here: "required" is a validation rule, so a missing
//!   field is reported together with every other problem.
//! - The document is parsed once into a spanned tree (collecting every syntax error), then each
//!   section and each `[[channel]]` is deserialized on its own, so a type error or an unknown
//!   field in one section does not hide the problems of the others.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::error::Collector;

/// An integer or a string, e.g. `mtu`-like counts or `"8 KiB"`-like quantities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scalar {
    /// A TOML integer.
    Int(i64),
    /// A TOML string.
    Text(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string with a unit, such as \"8 KiB\"")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Scalar, E> {
                i64::try_from(value)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("integer is too large"))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(value.to_owned()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// `[link]`: parameters both sides must agree on.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [link] table")]
pub(crate) struct RawLink {
    pub key_file: Option<Spanned<String>>,
    pub mtu: Option<Spanned<i64>>,
    pub repair: Option<Spanned<Scalar>>,
    pub bandwidth: Option<Spanned<Scalar>>,
    pub heartbeat: Option<Spanned<Scalar>>,
    pub flush: Option<Spanned<Scalar>>,
    pub block_symbols: Option<Spanned<i64>>,
    pub reorder_window: Option<Spanned<Scalar>>,
}

/// `[send]`: the OT host.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [send] table")]
pub(crate) struct RawSend {
    pub to: Option<Spanned<String>>,
    pub bind: Option<Spanned<String>>,
    pub queue: Option<Spanned<Scalar>>,
    pub metrics: Option<Spanned<String>>,
}

/// `[recv]`: the IT host.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [recv] table")]
pub(crate) struct RawRecv {
    pub listen: Option<Spanned<String>>,
    pub socket_buffer: Option<Spanned<Scalar>>,
    pub queue: Option<Spanned<Scalar>>,
    pub spool: Option<Spanned<String>>,
    pub state: Option<Spanned<String>>,
    pub metrics: Option<Spanned<String>>,
    pub segment: Option<Spanned<Scalar>>,
    pub spool_queue: Option<Spanned<Scalar>>,
    pub fsync: Option<Spanned<Scalar>>,
    pub fsync_bytes: Option<Spanned<Scalar>>,
    pub retain: Option<Spanned<Scalar>>,
    pub retain_age: Option<Spanned<Scalar>>,
    pub deliver_state: Option<Spanned<String>>,
    pub deliver_metrics: Option<Spanned<String>>,
    pub sink_after: Option<Spanned<String>>,
    pub serve: Option<Spanned<RawServe>>,
}

/// `[recv.serve]`: the consumer server.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [recv.serve] table")]
pub(crate) struct RawServe {
    pub tls: Option<Spanned<String>>,
    pub quic: Option<Spanned<String>>,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub client_ca: Option<Spanned<String>>,
    pub max_connections: Option<Spanned<i64>>,
    pub handshake_timeout: Option<Spanned<Scalar>>,
    pub idle_timeout: Option<Spanned<Scalar>>,
}

/// One `[[channel]]`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[channel]] table")]
pub(crate) struct RawChannel {
    pub name: Option<Spanned<String>>,
    pub source: Option<Spanned<RawEndpoint>>,
    pub sinks: Option<Spanned<Vec<Spanned<RawEndpoint>>>>,
    pub max_message: Option<Spanned<Scalar>>,
    pub allow_from: Option<Spanned<Vec<Spanned<String>>>>,
    pub filter: Option<Spanned<RawFilter>>,
    pub on_violation: Option<Spanned<String>>,
    pub rate: Option<Spanned<RawRate>>,
    pub priority: Option<Spanned<i64>>,
    pub consumers: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `filter = { utf8 = true, pattern = '^<\d{1,3}>', json = false }`.
#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table such as { utf8 = true, pattern = '^<\\d{1,3}>' }"
)]
pub(crate) struct RawFilter {
    pub utf8: Option<Spanned<bool>>,
    pub pattern: Option<Spanned<String>>,
    pub json: Option<Spanned<bool>>,
}

/// `rate = { bytes = "200 Mbit/s", messages = 1000, burst = "1 MiB", burst_messages = 100 }`.
#[derive(Debug, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table such as { bytes = \"200 Mbit/s\", messages = 1000 }"
)]
pub(crate) struct RawRate {
    pub bytes: Option<Spanned<Scalar>>,
    pub messages: Option<Spanned<i64>>,
    pub burst: Option<Spanned<Scalar>>,
    pub burst_messages: Option<Spanned<i64>>,
}

/// `{ tcp = "ip:port" }` or `{ udp = "ip:port" }`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table such as { udp = \"IP:PORT\" }")]
pub(crate) struct RawEndpoint {
    pub tcp: Option<Spanned<String>>,
    pub udp: Option<Spanned<String>>,
}

/// One section of the file: absent, present but unreadable (already reported), or read.
#[derive(Debug)]
pub(crate) enum Section<T> {
    /// The file does not contain it.
    Absent,
    /// It is there but could not be deserialized; the problem has been reported.
    Invalid,
    /// It is there and was read.
    Present(Spanned<T>),
}

/// The whole file, read section by section.
#[derive(Debug)]
pub(crate) struct RawPolicy {
    pub link: Section<RawLink>,
    pub send: Section<RawSend>,
    pub recv: Section<RawRecv>,
    /// Every `[[channel]]` in file order; `None` where it could not be deserialized.
    pub channels: Vec<Option<Spanned<RawChannel>>>,
}

const SECTIONS: &str = "`link`, `send`, `recv`, `channel`";

/// Reads `text` into the raw mirror, reporting every problem to `collector`. Returns `None` when
/// the text is not valid TOML (the syntax errors have been reported).
pub(crate) fn read(text: &str, collector: &mut Collector<'_>) -> Option<RawPolicy> {
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            let mut field = String::new();
            if let Some(span) = error.span() {
                locate_in_table(document.get_ref(), &span, &mut field);
            }
            let mut message = error.message().to_owned();
            if let Some(key) = error.span().and_then(|span| text.get(span)) {
                if message == "duplicate key" {
                    message = format!("duplicate key `{key}`");
                }
            }
            collector.error(error.span(), field, message, None);
        }
        return None;
    }
    let mut raw = RawPolicy {
        link: Section::Absent,
        send: Section::Absent,
        recv: Section::Absent,
        channels: Vec::new(),
    };
    for (key, value) in document.into_inner() {
        let name = key.get_ref().as_ref();
        match name {
            "link" => raw.link = section(value, "link", collector),
            "send" => raw.send = section(value, "send", collector),
            "recv" => raw.recv = section(value, "recv", collector),
            "channel" => raw.channels = channels(value, collector),
            _ => collector.error(
                Some(key.span()),
                name,
                format!("unknown section `{name}`; expected one of {SECTIONS}"),
                (name == "channels").then_some("channels are written [[channel]]"),
            ),
        }
    }
    Some(raw)
}

fn section<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    name: &str,
    collector: &mut Collector<'_>,
) -> Section<T> {
    let DeValue::Table(_) = value.get_ref() else {
        collector.error(
            Some(value.span()),
            name,
            format!("must be a table, written [{name}]"),
            None,
        );
        return Section::Invalid;
    };
    deserialize(value, name, collector).map_or(Section::Invalid, Section::Present)
}

fn channels(value: Spanned<DeValue<'_>>, collector: &mut Collector<'_>) -> Vec<Option<Spanned<RawChannel>>> {
    let span = value.span();
    let DeValue::Array(array) = value.into_inner() else {
        collector.error(
            Some(span),
            "channel",
            "must be an array of tables, written [[channel]]",
            None,
        );
        return Vec::new();
    };
    let mut channels = Vec::new();
    for (index, item) in array.into_iter().enumerate() {
        let path = format!("channel[{index}]");
        channels.push(deserialize(item, &path, collector));
    }
    channels
}

/// Deserializes one section; on failure reports the problem with the path of the field it is in.
fn deserialize<T: for<'de> Deserialize<'de>>(
    value: Spanned<DeValue<'_>>,
    path: &str,
    collector: &mut Collector<'_>,
) -> Option<Spanned<T>> {
    let mut field = path.to_owned();
    let span = value.span();
    // Field paths are computed from the tree, which the deserializer consumes: keep a copy.
    let tree = value.clone();
    match Spanned::<T>::deserialize(ValueDeserializer::from(value)) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            let at = error.span().unwrap_or(span);
            locate(&tree, &at, &mut field);
            collector.error(Some(at), field, error.message(), None);
            None
        }
    }
}

/// Appends to `path` the keys and indexes leading to the innermost value containing `at`.
fn locate(value: &Spanned<DeValue<'_>>, at: &Range<usize>, path: &mut String) {
    match value.get_ref() {
        DeValue::Table(table) => locate_in_table(table, at, path),
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                if contains(item.span(), at) {
                    path.push_str(&format!("[{index}]"));
                    locate(item, at, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

fn locate_in_table(table: &DeTable<'_>, at: &Range<usize>, path: &mut String) {
    for (key, item) in table {
        if contains(key.span(), at) || contains(item.span(), at) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key.get_ref());
            locate(item, at, path);
            return;
        }
    }
}

/// True when `at` starts inside `span` (an empty span contains its start).
fn contains(span: Range<usize>, at: &Range<usize>) -> bool {
    span.start <= at.start && at.start < span.end.max(span.start + 1)
}
