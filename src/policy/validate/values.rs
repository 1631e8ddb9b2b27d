//! Validation of single values: addresses, paths, counts, and quantities with units.
//!
//! Contract: each function checks one field, reports its problem (with the value as written
//! and a hint) to the collector and returns `None`, or returns the typed value; an absent field
//! yields its default. Range messages render the bounds in the field's unit.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::policy::error::Collector;
use crate::policy::raw::Scalar;
use crate::policy::units::{self, UnitError};

/// Where an address is used: listening may use port 0 and the unspecified address; a
/// destination must name a host and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Listen,
    Destination,
}

/// A literal `IP:PORT`; host names are not resolved (the policy does no I/O).
pub(crate) fn address(
    raw: &Spanned<String>,
    field: &str,
    role: Role,
    c: &mut Collector<'_>,
) -> Option<SocketAddr> {
    let text = raw.get_ref();
    let Ok(addr) = text.trim().parse::<SocketAddr>() else {
        c.error(
            Some(raw.span()),
            field,
            format!("{text:?} is not an IP:PORT address"),
            Some("write a literal address such as \"192.0.2.2:5800\" or \"[2001:db8::2]:5800\"; host names are not resolved"),
        );
        return None;
    };
    if role == Role::Destination && (addr.port() == 0 || addr.ip().is_unspecified()) {
        c.error(
            Some(raw.span()),
            field,
            format!("{addr} is not a destination: it needs a host address and a non-zero port"),
            None,
        );
        return None;
    }
    Some(addr)
}

pub(crate) fn path(raw: &Spanned<String>, field: &str, c: &mut Collector<'_>) -> Option<PathBuf> {
    if raw.get_ref().trim().is_empty() {
        c.error(Some(raw.span()), field, "is empty", None);
        return None;
    }
    Some(PathBuf::from(raw.get_ref()))
}

/// An integer field with a default and a range.
pub(crate) fn count(
    raw: Option<&Spanned<i64>>,
    field: &str,
    default: u64,
    range: RangeInclusive<u64>,
    hint: &str,
    c: &mut Collector<'_>,
) -> Option<u64> {
    let Some(raw) = raw else {
        return Some(default);
    };
    let value = *raw.get_ref();
    match u64::try_from(value) {
        Ok(value) if range.contains(&value) => Some(value),
        _ => {
            c.error(
                Some(raw.span()),
                field,
                format!("{value} is out of range {}..={}", range.start(), range.end()),
                Some(hint),
            );
            None
        }
    }
}

/// A duration field with a default and a range in nanoseconds.
pub(crate) fn duration(
    raw: Option<&Spanned<Scalar>>,
    field: &str,
    default: Duration,
    range_ns: RangeInclusive<u64>,
    hint: &str,
    c: &mut Collector<'_>,
) -> Option<Duration> {
    let default_ns = u64::try_from(default.as_nanos()).unwrap_or(u64::MAX);
    quantity(raw, field, Kind::Duration, default_ns, range_ns, hint, c).map(Duration::from_nanos)
}

/// How a quantity is written and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Bytes; a bare integer is bytes.
    Size,
    /// Bit/s; a unit is required.
    Rate,
    /// Nanoseconds; a unit is required.
    Duration,
    /// Percent; a bare integer is percent.
    Percent,
}

impl Kind {
    pub(crate) fn parse(self, text: &str) -> Result<u64, UnitError> {
        match self {
            Self::Size => units::parse_size(text),
            Self::Rate => units::parse_rate_bps(text),
            Self::Duration => units::parse_duration(text)
                .and_then(|d| u64::try_from(d.as_nanos()).map_err(|_| UnitError::Overflow)),
            Self::Percent => units::parse_percent(text),
        }
    }

    pub(crate) fn render(self, value: u64) -> String {
        match self {
            Self::Size => units::format_size(value),
            Self::Rate => units::format_rate(value),
            Self::Duration => units::format_duration(Duration::from_nanos(value)),
            Self::Percent => format!("{value}%"),
        }
    }
}

/// A quantity field (integer or string with a unit) with a default and a range.
pub(crate) fn quantity(
    raw: Option<&Spanned<Scalar>>,
    field: &str,
    kind: Kind,
    default: u64,
    range: RangeInclusive<u64>,
    hint: &str,
    c: &mut Collector<'_>,
) -> Option<u64> {
    let Some(raw) = raw else {
        return Some(default);
    };
    let (written, value) = match raw.get_ref() {
        Scalar::Int(int) => {
            let value = match kind {
                Kind::Size | Kind::Percent => {
                    u64::try_from(*int).map_err(|_| "must not be negative".to_owned())
                }
                Kind::Rate => Err(format!("needs a unit; write one of {}", units::RATE_UNITS)),
                Kind::Duration => Err(format!("needs a unit; write one of {}", units::DURATION_UNITS)),
            };
            (int.to_string(), value)
        }
        Scalar::Text(text) => (format!("{text:?}"), kind.parse(text).map_err(|e| e.to_string())),
    };
    match value {
        Ok(value) if range.contains(&value) => Some(value),
        Ok(_) => {
            c.error(
                Some(raw.span()),
                field,
                format!(
                    "{written} is out of range {}..={}",
                    kind.render(*range.start()),
                    kind.render(*range.end())
                ),
                Some(hint),
            );
            None
        }
        Err(problem) => {
            c.error(
                Some(raw.span()),
                field,
                format!("{written} {problem}"),
                Some(hint),
            );
            None
        }
    }
}
