//! Content filters of a channel: what a message must look like to cross the link.
//!
//! Contract:
//! - A [`Filter`] is pure: [`Filter::check`] looks at one message's bytes and says yes or which
//!   rule it broke ([`FilterViolation`]); it never allocates per message beyond what the regex
//!   engine caches (bounded by [`PATTERN_DFA_CACHE`]) and never panics, whatever the bytes.
//! - Datagram (UDP) channels may use all three rules; each datagram is checked whole. Checks run
//!   cheapest first: `utf8`, then `pattern`, then `json`; the first broken rule is reported.
//! - Stream (TCP) channels may only use `utf8` (validation rejects `pattern` and `json`: a
//!   stream has no message boundaries). It is checked incrementally with [`Utf8Stream`], so a
//!   character split across two reads is fine, and an incomplete character at the end of the
//!   stream is a violation.
//! - What happens to a violating message is the channel's [`OnViolation`]; every violation is
//!   counted under [`FilterViolation::reason`] (rule 6 of the house: nothing is lost silently).

use std::fmt;

use regex::bytes::{Regex, RegexBuilder};

use super::limits::{MAX_PATTERN_COMPILED, PATTERN_DFA_CACHE};

/// A channel's `filter = { utf8 = …, pattern = …, json = … }`; the default lets everything
/// through.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Every message (or the whole stream) must be valid UTF-8.
    pub utf8: bool,
    /// Every datagram must match this regex somewhere (anchor it with `^…$` to match the whole
    /// datagram). Matched against the bytes; compiled with [`Filter::compile_pattern`]. UDP only.
    pub pattern: Option<Regex>,
    /// Every datagram must be one well-formed JSON value (RFC 8259, hence UTF-8), surrounding
    /// whitespace allowed; nesting deeper than 128 levels is rejected. UDP only.
    pub json: bool,
}

/// Which filter rule a message broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterViolation {
    /// `utf8 = true` and the bytes are not valid UTF-8.
    NotUtf8,
    /// The datagram does not match `pattern`.
    PatternMismatch,
    /// `json = true` and the datagram is not one well-formed JSON value.
    NotJson,
}

/// What `weir-send` does with a message that breaks its channel's filter. Every violation is
/// counted and logged (without the payload) either way.
///
/// - On a datagram (UDP) channel the violating datagram is dropped; the channel goes on. Only
///   [`OnViolation::Drop`] is valid there.
/// - On a stream (TCP) channel bytes are never silently skipped: there is no way to drop part of
///   a stream without splicing it, so a violation always ends the stream toward the IT side as
///   an abort (the consumer sees a reset, never a clean end) and nothing after the violation
///   crosses the link. The two values differ only on the OT side: `Drop` keeps reading and
///   discarding the connection's bytes until the peer closes it (so a sender that does not
///   expect a reset is not disturbed), `Close` closes the OT connection at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnViolation {
    /// `"drop"` (the default).
    #[default]
    Drop,
    /// `"close"`: TCP channels only.
    Close,
}

impl Filter {
    /// Compiles `pattern` the way the policy does: a bytes regex whose compiled program is at
    /// most [`MAX_PATTERN_COMPILED`] bytes and whose lazy DFA cache is at most
    /// [`PATTERN_DFA_CACHE`] bytes. (The length limit, [`MAX_PATTERN_LEN`], is checked by
    /// validation before this.)
    ///
    /// [`MAX_PATTERN_LEN`]: super::limits::MAX_PATTERN_LEN
    pub fn compile_pattern(pattern: &str) -> Result<Regex, regex::Error> {
        RegexBuilder::new(pattern)
            .size_limit(MAX_PATTERN_COMPILED)
            .dfa_size_limit(PATTERN_DFA_CACHE)
            .build()
    }

    /// Checks one whole message (a datagram) against every rule: `Ok` when it may cross.
    pub fn check(&self, message: &[u8]) -> Result<(), FilterViolation> {
        let text = if self.utf8 || self.json {
            std::str::from_utf8(message).ok()
        } else {
            None
        };
        if self.utf8 && text.is_none() {
            return Err(FilterViolation::NotUtf8);
        }
        if let Some(pattern) = &self.pattern {
            if !pattern.is_match(message) {
                return Err(FilterViolation::PatternMismatch);
            }
        }
        if self.json {
            // JSON text is UTF-8 (RFC 8259 §8.1): check it here, since skipping over a string
            // with `IgnoredAny` does not.
            let well_formed =
                text.is_some_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
            if !well_formed {
                return Err(FilterViolation::NotJson);
            }
        }
        Ok(())
    }

    /// True when no rule is set (every message passes).
    pub fn is_empty(&self) -> bool {
        !self.utf8 && self.pattern.is_none() && !self.json
    }

    /// The rules that are set, in check order: a subset of `["utf8", "pattern", "json"]`.
    pub fn rules(&self) -> Vec<&'static str> {
        let mut rules = Vec::new();
        if self.utf8 {
            rules.push("utf8");
        }
        if self.pattern.is_some() {
            rules.push("pattern");
        }
        if self.json {
            rules.push("json");
        }
        rules
    }

    /// The pattern as written in the policy.
    pub fn pattern_text(&self) -> Option<&str> {
        self.pattern.as_ref().map(Regex::as_str)
    }
}

/// Two filters are equal when they have the same rules and the same pattern text.
impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.utf8 == other.utf8 && self.json == other.json && self.pattern_text() == other.pattern_text()
    }
}

impl Eq for Filter {}

impl FilterViolation {
    /// The counter / log reason: `"filter_utf8"`, `"filter_pattern"` or `"filter_json"`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotUtf8 => "filter_utf8",
            Self::PatternMismatch => "filter_pattern",
            Self::NotJson => "filter_json",
        }
    }
}

impl fmt::Display for FilterViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotUtf8 => "not valid UTF-8",
            Self::PatternMismatch => "does not match the channel's pattern",
            Self::NotJson => "not a well-formed JSON value",
        })
    }
}

impl std::error::Error for FilterViolation {}

impl OnViolation {
    /// `"drop"` or `"close"`, as written in the policy.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Close => "close",
        }
    }
}

impl fmt::Display for OnViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Incremental UTF-8 check of a stream read in chunks of any size: a character may be split
/// across chunks. Holds at most 3 bytes.
///
/// Call [`Utf8Stream::push`] with each chunk in order and [`Utf8Stream::finish`] when the
/// stream ends cleanly. After an error the stream is to be aborted; further calls are
/// meaningless.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utf8Stream {
    /// The start of a character whose remaining bytes have not arrived yet.
    pending: [u8; 3],
    /// How many bytes of `pending` are used (0..=3).
    pending_len: usize,
}

impl Utf8Stream {
    /// A check at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next `chunk` of the stream.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), FilterViolation> {
        let mut rest = chunk;
        if self.pending_len > 0 {
            // Finish the split character with at most 3 more bytes (a character has ≤ 4).
            let mut joined = [0u8; 6];
            let pending = self.pending.get(..self.pending_len).unwrap_or_default();
            let head = chunk.get(..chunk.len().min(3)).unwrap_or(chunk);
            let used = pending.len() + head.len();
            for (target, byte) in joined.iter_mut().zip(pending.iter().chain(head)) {
                *target = *byte;
            }
            let joined = joined.get(..used).unwrap_or_default();
            let valid = match std::str::from_utf8(joined) {
                Ok(_) => used,
                Err(error) if error.valid_up_to() > 0 => error.valid_up_to(),
                Err(error) if error.error_len().is_some() => return Err(FilterViolation::NotUtf8),
                Err(_) => {
                    // Still incomplete: the chunk was shorter than the character's remainder.
                    self.keep(joined);
                    return Ok(());
                }
            };
            // `valid` ends on a character boundary past the pending bytes.
            rest = chunk
                .get(valid.saturating_sub(self.pending_len)..)
                .unwrap_or_default();
            self.pending_len = 0;
        }
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(error) if error.error_len().is_some() => Err(FilterViolation::NotUtf8),
            Err(error) => {
                self.keep(rest.get(error.valid_up_to()..).unwrap_or_default());
                Ok(())
            }
        }
    }

    /// Ends the stream: an incomplete character at the end is a violation.
    pub fn finish(&self) -> Result<(), FilterViolation> {
        if self.pending_len == 0 {
            Ok(())
        } else {
            Err(FilterViolation::NotUtf8)
        }
    }

    /// Keeps `tail` (the start of an incomplete character, at most 3 bytes) for the next chunk.
    fn keep(&mut self, tail: &[u8]) {
        self.pending_len = tail.len().min(self.pending.len());
        for (target, byte) in self.pending.iter_mut().zip(tail) {
            *target = *byte;
        }
    }
}
