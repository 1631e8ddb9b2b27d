//! Quantities with units, as written in a policy file: sizes, rates, durations and percentages.
//!
//! Contract:
//! - Every parser takes the text of one TOML string and returns an exact integer value or a
//!   [`UnitError`] that says what was wrong. Nothing is rounded: `"1.5 KiB"` is 1536 bytes, but
//!   `"1.5 B"` is an error because it is not a whole number of bytes.
//! - Unit names are case-sensitive, so that `Mbit/s` (bits) and `MB/s` (bytes) cannot be
//!   confused. Spaces between the number and the unit are optional.
//! - Decimal prefixes (`K`/`k`, `M`, `G`) are powers of 1000; binary prefixes (`Ki`, `Mi`, `Gi`)
//!   are powers of 1024. A byte rate is converted to bits (×8).
//! - Range checks are the caller's business; these parsers only reject what has no value at all
//!   (bad number, unknown unit, overflow).
//!
//! | kind | accepted units |
//! |---|---|
//! | size | `B`, `KB`/`kB`, `MB`, `GB`, `KiB`, `MiB`, `GiB`; no unit = bytes |
//! | rate | `bit/s`, `Kbit/s`/`kbit/s`, `Mbit/s`, `Gbit/s`, `B/s`, `KB/s`/`kB/s`, `MB/s`, `GB/s` |
//! | duration | `ns`, `us`/`µs`, `ms`, `s`, `m`/`min`, `h`; a unit is required |
//! | percent | `%`; a unit is required in a string (an integer in TOML is taken as a percentage) |

use std::time::Duration;

/// Why a quantity could not be read. The `Display` text is written for the person editing the
/// policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The string was empty or only spaces.
    #[error("is empty")]
    Empty,
    /// The text does not start with a non-negative decimal number.
    #[error("does not start with a non-negative decimal number")]
    BadNumber,
    /// A unit is required for this kind of quantity and none was given.
    #[error("has no unit; write one of {expected}")]
    MissingUnit {
        /// The accepted units, for the message.
        expected: &'static str,
    },
    /// The unit is not one of the accepted spellings.
    #[error("has unknown unit `{unit}`; write one of {expected}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The accepted units, for the message.
        expected: &'static str,
    },
    /// The value has a fractional part in the base unit (e.g. `"1.5 B"`, `"0.5ns"`).
    #[error("is not a whole number of {base}")]
    NotWhole {
        /// The base unit ("bytes", "bit/s", "nanoseconds", "percent").
        base: &'static str,
    },
    /// The value does not fit in 64 bits.
    #[error("is too large")]
    Overflow,
}

/// The accepted size units, for messages.
pub const SIZE_UNITS: &str = "B, KB, MB, GB, KiB, MiB, GiB (e.g. \"8 KiB\")";
/// The accepted rate units, for messages.
pub const RATE_UNITS: &str = "bit/s, Kbit/s, Mbit/s, Gbit/s, B/s, KB/s, MB/s, GB/s (e.g. \"800 Mbit/s\")";
/// The accepted duration units, for messages.
pub const DURATION_UNITS: &str = "ns, us, ms, s, m, h, d (e.g. \"500ms\")";
/// The accepted percent unit, for messages.
pub const PERCENT_UNITS: &str = "% (e.g. \"10%\")";

/// Longest number we read; keeps `mantissa × multiplier` far inside `u128`.
const MAX_DIGITS: usize = 24;

/// Parses a size in bytes: `"1500"`, `"8 KiB"`, `"4 MiB"`, `"64KB"`, `"1.5 GiB"`.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let multiplier = |unit: &str| -> Option<u128> {
        Some(match unit {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => return None,
        })
    };
    parse_quantity(text, multiplier, SIZE_UNITS, false, "bytes")
}

/// Parses a rate in bits per second: `"800 Mbit/s"`, `"1 Gbit/s"`, `"100 MB/s"` (= 800 Mbit/s).
pub fn parse_rate_bps(text: &str) -> Result<u64, UnitError> {
    let multiplier = |unit: &str| -> Option<u128> {
        Some(match unit {
            "bit/s" => 1,
            "Kbit/s" | "kbit/s" => 1_000,
            "Mbit/s" => 1_000_000,
            "Gbit/s" => 1_000_000_000,
            "B/s" => 8,
            "KB/s" | "kB/s" => 8_000,
            "MB/s" => 8_000_000,
            "GB/s" => 8_000_000_000,
            _ => return None,
        })
    };
    parse_quantity(text, multiplier, RATE_UNITS, true, "bit/s")
}

/// Parses a duration: `"1s"`, `"500ms"`, `"250us"`, `"2m"`, `"1.5s"`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let multiplier = |unit: &str| -> Option<u128> {
        Some(match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" | "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return None,
        })
    };
    parse_quantity(text, multiplier, DURATION_UNITS, true, "nanoseconds").map(Duration::from_nanos)
}

/// Parses a percentage written as a string: `"10%"`, `"10 %"`.
pub fn parse_percent(text: &str) -> Result<u64, UnitError> {
    let multiplier = |unit: &str| -> Option<u128> { (unit == "%").then_some(1) };
    parse_quantity(text, multiplier, PERCENT_UNITS, true, "percent")
}

/// Renders a byte count with the largest binary unit that divides it exactly: `65536` → `"64 KiB"`,
/// `1500` → `"1500 B"`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (factor, name) in UNITS {
        if bytes >= factor && bytes % factor == 0 {
            return format!("{} {name}", bytes / factor);
        }
    }
    format!("{bytes} B")
}

/// Renders a rate with the largest decimal unit that divides it exactly: `800_000_000` →
/// `"800 Mbit/s"`.
pub fn format_rate(bps: u64) -> String {
    const UNITS: [(u64, &str); 3] = [
        (1_000_000_000, "Gbit/s"),
        (1_000_000, "Mbit/s"),
        (1_000, "Kbit/s"),
    ];
    for (factor, name) in UNITS {
        if bps >= factor && bps % factor == 0 {
            return format!("{} {name}", bps / factor);
        }
    }
    format!("{bps} bit/s")
}

/// Renders a duration with the largest unit that divides it exactly: `1s`, `500ms`, `250us`,
/// `2m`; the output is accepted by [`parse_duration`].
pub fn format_duration(duration: Duration) -> String {
    const UNITS: [(u128, &str); 6] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    let nanos = duration.as_nanos();
    for (factor, name) in UNITS {
        if nanos >= factor && nanos % factor == 0 {
            return format!("{}{name}", nanos / factor);
        }
    }
    format!("{nanos}ns")
}

/// Splits `text` into a decimal number and a unit, looks the unit up, and returns the exact
/// value in the base unit.
fn parse_quantity(
    text: &str,
    multiplier: impl Fn(&str) -> Option<u128>,
    expected: &'static str,
    unit_required: bool,
    base: &'static str,
) -> Result<u64, UnitError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(UnitError::Empty);
    }
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let unit = unit.trim_start();
    let (mantissa, decimals) = parse_decimal(number)?;
    if unit.is_empty() && unit_required {
        return Err(UnitError::MissingUnit { expected });
    }
    let factor = multiplier(unit).ok_or_else(|| UnitError::UnknownUnit {
        unit: unit.to_owned(),
        expected,
    })?;
    let scaled = mantissa.checked_mul(factor).ok_or(UnitError::Overflow)?;
    let divisor = 10u128.pow(decimals);
    if scaled % divisor != 0 {
        return Err(UnitError::NotWhole { base });
    }
    u64::try_from(scaled / divisor).map_err(|_| UnitError::Overflow)
}

/// Reads `digits[.digits]` into (all digits as an integer, number of digits after the point).
fn parse_decimal(number: &str) -> Result<(u128, u32), UnitError> {
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || (number.contains('.') && fraction.is_empty())
    {
        return Err(UnitError::BadNumber);
    }
    if whole.len() + fraction.len() > MAX_DIGITS {
        return Err(UnitError::Overflow);
    }
    let mut mantissa: u128 = 0;
    for byte in whole.bytes().chain(fraction.bytes()) {
        mantissa = mantissa * 10 + u128::from(byte - b'0');
    }
    let decimals = u32::try_from(fraction.len()).map_err(|_| UnitError::Overflow)?;
    Ok((mantissa, decimals))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("7 B"), Ok(7));
        assert_eq!(parse_size("8 KiB"), Ok(8192));
        assert_eq!(parse_size("8KiB"), Ok(8192));
        assert_eq!(parse_size("  4 MiB  "), Ok(4 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("64kB"), Ok(64_000));
        assert_eq!(parse_size("2 MB"), Ok(2_000_000));
        assert_eq!(parse_size("3 GB"), Ok(3_000_000_000));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("0.5 MiB"), Ok(512 << 10));
    }

    #[test]
    fn size_errors() {
        assert_eq!(parse_size(""), Err(UnitError::Empty));
        assert_eq!(parse_size("   "), Err(UnitError::Empty));
        assert_eq!(parse_size("KiB"), Err(UnitError::BadNumber));
        assert_eq!(parse_size("-1 KiB"), Err(UnitError::BadNumber));
        assert_eq!(parse_size("+1 KiB"), Err(UnitError::BadNumber));
        assert_eq!(parse_size("1. KiB"), Err(UnitError::BadNumber));
        assert_eq!(parse_size(".5 KiB"), Err(UnitError::BadNumber));
        assert_eq!(parse_size("1.2.3 KiB"), Err(UnitError::BadNumber));
        assert_eq!(parse_size("1.5 B"), Err(UnitError::NotWhole { base: "bytes" }));
        assert!(matches!(parse_size("8 kib"), Err(UnitError::UnknownUnit { .. })));
        assert!(matches!(
            parse_size("8 KiB/s"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(parse_size("8 TiB"), Err(UnitError::UnknownUnit { .. })));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_size("18446744073709551616"), Err(UnitError::Overflow));
        assert_eq!(parse_size("99999999999999 GiB"), Err(UnitError::Overflow));
        assert_eq!(parse_size("1234567890123456789012345"), Err(UnitError::Overflow));
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate_bps("800 Mbit/s"), Ok(800_000_000));
        assert_eq!(parse_rate_bps("1 Gbit/s"), Ok(1_000_000_000));
        assert_eq!(parse_rate_bps("2.5Gbit/s"), Ok(2_500_000_000));
        assert_eq!(parse_rate_bps("64 Kbit/s"), Ok(64_000));
        assert_eq!(parse_rate_bps("64 kbit/s"), Ok(64_000));
        assert_eq!(parse_rate_bps("9600 bit/s"), Ok(9600));
        assert_eq!(parse_rate_bps("1 B/s"), Ok(8));
        assert_eq!(parse_rate_bps("100 KB/s"), Ok(800_000));
        assert_eq!(parse_rate_bps("100 MB/s"), Ok(800_000_000));
        assert_eq!(parse_rate_bps("1 GB/s"), Ok(8_000_000_000));
    }

    #[test]
    fn rate_errors() {
        assert!(matches!(
            parse_rate_bps("800"),
            Err(UnitError::MissingUnit { .. })
        ));
        assert!(matches!(
            parse_rate_bps("800 mbit/s"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_rate_bps("800 Mbps"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert_eq!(
            parse_rate_bps("0.5 bit/s"),
            Err(UnitError::NotWhole { base: "bit/s" })
        );
        assert_eq!(parse_rate_bps("3000000000 GB/s"), Err(UnitError::Overflow));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("2 min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn duration_errors() {
        assert!(matches!(parse_duration("10"), Err(UnitError::MissingUnit { .. })));
        assert!(matches!(
            parse_duration("10 sec"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("10S"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert_eq!(
            parse_duration("0.5ns"),
            Err(UnitError::NotWhole { base: "nanoseconds" })
        );
        assert_eq!(parse_duration("-1s"), Err(UnitError::BadNumber));
        assert_eq!(parse_duration("99999999999 h"), Err(UnitError::Overflow));
    }

    #[test]
    fn percents() {
        assert_eq!(parse_percent("10%"), Ok(10));
        assert_eq!(parse_percent(" 200 % "), Ok(200));
        assert_eq!(parse_percent("0%"), Ok(0));
        assert!(matches!(parse_percent("10"), Err(UnitError::MissingUnit { .. })));
        assert_eq!(
            parse_percent("12.5%"),
            Err(UnitError::NotWhole { base: "percent" })
        );
        assert!(matches!(
            parse_percent("10 pct"),
            Err(UnitError::UnknownUnit { .. })
        ));
    }

    #[test]
    fn messages_name_the_problem() {
        let err = parse_rate_bps("10 Mbps").unwrap_err().to_string();
        assert!(err.contains("`Mbps`"), "{err}");
        assert!(err.contains("Mbit/s"), "{err}");
        assert_eq!(
            parse_size("1.5 B").unwrap_err().to_string(),
            "is not a whole number of bytes"
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(65536), "64 KiB");
        assert_eq!(format_size(1500), "1500 B");
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(16 << 20), "16 MiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_rate(800_000_000), "800 Mbit/s");
        assert_eq!(format_rate(1_000_000_000), "1 Gbit/s");
        assert_eq!(format_rate(1_500), "1500 bit/s");
        for bytes in [1u64, 1000, 1024, 1536, 65536, 3 << 30] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_micros(50)), "50us");
        assert_eq!(format_duration(Duration::from_nanos(7)), "7ns");
        assert_eq!(format_duration(Duration::ZERO), "0ns");
        for nanos in [1u64, 1_000, 50_000, 1_000_000, 1_500_000_000, 60_000_000_000] {
            let duration = Duration::from_nanos(nanos);
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
        for bps in [1u64, 9600, 64_000, 800_000_000, 2_000_000_000] {
            assert_eq!(parse_rate_bps(&format_rate(bps)), Ok(bps));
        }
    }
}
