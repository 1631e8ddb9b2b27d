//! Validation of a channel's content rules: `filter` and `on_violation`.
//!
//! Contract:
//! - `filter`: `pattern` is at most [`MAX_PATTERN_LEN`] characters, not empty, and compiles
//!   within [`MAX_PATTERN_COMPILED`](crate::policy::limits::MAX_PATTERN_COMPILED) (a regex error
//!   is reported on one line, with the position in the pattern when the regex crate gives one);
//!   `pattern` and `json = true` are errors on a TCP channel (a stream has no message
//!   boundaries; only `utf8` is checked there, incrementally).
//! - `on_violation`: `"drop"` or `"close"`; `"close"` only on a TCP channel that has a filter.
//! - Each function reports every problem it finds and returns `None` when there was any.

use toml::Spanned;

use crate::policy::error::Collector;
use crate::policy::filter::{Filter, OnViolation};
use crate::policy::limits::MAX_PATTERN_LEN;
use crate::policy::model::Transport;
use crate::policy::raw::RawFilter;
use crate::policy::units::format_size;

const STREAM_FILTER_HINT: &str =
    "a TCP stream has no message boundaries; only `utf8` is checked, incrementally, on streams";

/// `filter`; the default (no rules) when absent. `transport` is `None` when the source is
/// invalid (then the transport rules are not checked).
pub(super) fn filter(
    raw: Option<&Spanned<RawFilter>>,
    path: &str,
    transport: Option<Transport>,
    c: &mut Collector<'_>,
) -> Option<Filter> {
    let Some(raw) = raw.map(Spanned::get_ref) else {
        return Some(Filter::default());
    };
    let mut ok = true;
    let utf8 = raw.utf8.as_ref().is_some_and(|utf8| *utf8.get_ref());
    let json = match &raw.json {
        Some(json) if *json.get_ref() && transport == Some(Transport::Tcp) => {
            c.error(
                Some(json.span()),
                format!("{path}.filter.json"),
                "cannot be checked on a tcp channel",
                Some(STREAM_FILTER_HINT),
            );
            ok = false;
            false
        }
        Some(json) => *json.get_ref(),
        None => false,
    };
    let pattern = match &raw.pattern {
        Some(pattern) => {
            let compiled = self::pattern(pattern, &format!("{path}.filter.pattern"), transport, c);
            ok &= compiled.is_some();
            compiled
        }
        None => None,
    };
    ok.then_some(Filter { utf8, pattern, json })
}

fn pattern(
    raw: &Spanned<String>,
    field: &str,
    transport: Option<Transport>,
    c: &mut Collector<'_>,
) -> Option<regex::bytes::Regex> {
    let text = raw.get_ref();
    let span = Some(raw.span());
    if transport == Some(Transport::Tcp) {
        c.error(
            span,
            field,
            "cannot be checked on a tcp channel",
            Some(STREAM_FILTER_HINT),
        );
        return None;
    }
    let length = text.chars().count();
    if length > MAX_PATTERN_LEN {
        c.error(
            span,
            field,
            format!("is {length} characters long, more than {MAX_PATTERN_LEN}"),
            Some("write a shorter pattern; anchor it (^…) rather than spelling out alternatives"),
        );
        return None;
    }
    if text.is_empty() {
        c.error(
            span,
            field,
            "is empty, so it would match every message",
            Some("write a regex such as '^<\\d{1,3}>', or remove `pattern`"),
        );
        return None;
    }
    match Filter::compile_pattern(text) {
        Ok(regex) => Some(regex),
        Err(error) => {
            let hint = match error {
                regex::Error::CompiledTooBig(_) => {
                    "Unicode classes such as \\w compile large, and repetition multiplies them: \
                     write (?-u:\\w) or [0-9A-Za-z_] for ASCII, or use + instead of {n}"
                }
                _ => {
                    "regex syntax of the Rust regex crate (no look-around or back-references); \
                     in TOML write it as a 'literal string' so that backslashes stay as written"
                }
            };
            c.error(
                span,
                field,
                format!("is not a usable regex: {}", regex_problem(&error)),
                Some(hint),
            );
            None
        }
    }
}

/// The regex crate's error on one line: a syntax error's last line (`error: …`) and where in
/// the pattern it is, or the size limit.
fn regex_problem(error: &regex::Error) -> String {
    let text = match error {
        regex::Error::CompiledTooBig(limit) => {
            return format!(
                "it compiles to more than {} (the limit for a filter pattern)",
                format_size(*limit as u64)
            )
        }
        regex::Error::Syntax(text) => text.clone(),
        other => other.to_string(),
    };
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let problem = lines.iter().rev().find_map(|line| line.strip_prefix("error: "));
    // A one-line pattern is shown as: header, the pattern indented by 4, carets, `error: …`.
    let column = lines
        .get(2)
        .filter(|_| lines.len() == 4)
        .and_then(|carets| carets.find('^'))
        .map(|caret| caret.saturating_sub(4) + 1);
    match (problem, column) {
        (Some(problem), Some(column)) => {
            format!("{problem} (at character {column} of the pattern)")
        }
        (Some(problem), _) => problem.to_owned(),
        (None, _) => lines
            .iter()
            .map(|line| line.trim())
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// `on_violation`; `filter` is the validated filter (`None` when it had problems).
pub(super) fn on_violation(
    raw: Option<&Spanned<String>>,
    path: &str,
    transport: Option<Transport>,
    filter: Option<&Filter>,
    c: &mut Collector<'_>,
) -> Option<OnViolation> {
    let Some(raw) = raw else {
        return Some(OnViolation::Drop);
    };
    let field = format!("{path}.on_violation");
    let value = match raw.get_ref().as_str() {
        "drop" => OnViolation::Drop,
        "close" => OnViolation::Close,
        other => {
            c.error(
                Some(raw.span()),
                field,
                format!("{other:?} is not one of \"drop\", \"close\""),
                Some("\"drop\" (the default) or, on tcp channels, \"close\""),
            );
            return None;
        }
    };
    if value == OnViolation::Close {
        if transport == Some(Transport::Udp) {
            c.error(
                Some(raw.span()),
                field,
                "\"close\" is only valid on tcp channels",
                Some("a violating datagram is dropped and counted; there is no connection to close"),
            );
            return None;
        }
        if filter.is_some_and(Filter::is_empty) {
            c.error(
                Some(raw.span()),
                field,
                "\"close\" has no effect: this channel has no filter",
                Some("add filter = { utf8 = true }, or remove on_violation"),
            );
            return None;
        }
    }
    Some(value)
}
