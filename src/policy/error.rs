//! Policy errors: every problem found in a policy file, each with its location.
//!
//! Contract:
//! - A [`PolicyError`] names the file and carries one [`Diagnostic`] per problem, sorted by
//!   position; it is never empty. Problems without a position (the file cannot be read, a
//!   section the daemon needs is absent) have `line == 0` and print without `:line:column`.
//! - Lines and columns are 1-based; columns count characters, not bytes.
//! - Messages never contain secrets (the policy holds none: keys live in their own file).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line, or 0 when the problem has no position in the file.
    pub line: usize,
    /// 1-based column in characters, or 0 when the problem has no position in the file.
    pub column: usize,
    /// The path of the offending field, e.g. `link.mtu` or `channel[1].source`.
    pub field: String,
    /// What is wrong, e.g. `70000 is out of range 576..=65535`.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// A policy file that cannot be used, with every problem found in it.
///
/// `Display` prints one line per problem, `path:line:column: field: message (hint: …)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(origin, diagnostics))]
pub struct PolicyError {
    /// The policy file, as given to [`load`](super::load) or [`parse`](super::parse).
    pub origin: PathBuf,
    /// Every problem found, sorted by position; never empty.
    pub diagnostics: Vec<Diagnostic>,
}

impl PolicyError {
    /// An error with a single problem that has no position in the file.
    pub fn whole_file(origin: &Path, field: &str, message: String, hint: Option<String>) -> Self {
        Self {
            origin: origin.to_path_buf(),
            diagnostics: vec![Diagnostic {
                line: 0,
                column: 0,
                field: field.to_owned(),
                message,
                hint,
            }],
        }
    }
}

fn render(origin: &Path, diagnostics: &[Diagnostic]) -> String {
    let origin = origin.display();
    let lines: Vec<String> = diagnostics
        .iter()
        .map(|diagnostic| {
            if diagnostic.line > 0 {
                format!("{origin}:{diagnostic}")
            } else {
                format!("{origin}: {diagnostic}")
            }
        })
        .collect();
    lines.join("\n")
}

/// Collects diagnostics while a policy is validated; turns byte spans into line and column.
pub(crate) struct Collector<'t> {
    text: &'t str,
    diagnostics: Vec<Diagnostic>,
}

impl<'t> Collector<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        Self {
            text,
            diagnostics: Vec::new(),
        }
    }

    /// Records a problem at `span` (byte offsets into the policy text).
    pub(crate) fn error(
        &mut self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
        hint: Option<&str>,
    ) {
        let (line, column) = match span {
            Some(span) => line_column(self.text, span.start),
            None => (0, 0),
        };
        self.diagnostics.push(Diagnostic {
            line,
            column,
            field: field.into(),
            message: message.into(),
            hint: hint.map(str::to_owned),
        });
    }

    /// True when no problem has been recorded.
    pub(crate) fn is_clean(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// 1-based line of byte `offset`, for messages that refer to another place in the file.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        line_column(self.text, offset).0
    }

    /// The collected problems as an error, sorted by position (located ones first).
    pub(crate) fn into_error(mut self, origin: &Path) -> PolicyError {
        if self.diagnostics.is_empty() {
            // Validation reports every reason it gives up; this only keeps the error non-empty.
            self.error(None, "", "the policy is invalid", None);
        }
        self.diagnostics.sort_by_key(|d| (d.line == 0, d.line, d.column));
        PolicyError {
            origin: origin.to_path_buf(),
            diagnostics: self.diagnostics,
        }
    }
}

/// 1-based line and character column of byte `offset` in `text` (clamped to the text).
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset = offset.saturating_sub(1);
    }
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn line_column_is_one_based_in_characters() {
        let text = "ab\nµcd\n\nx";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 1), (1, 2));
        assert_eq!(line_column(text, 2), (1, 3));
        assert_eq!(line_column(text, 3), (2, 1));
        // 'µ' is two bytes; 'c' is the second character of line 2.
        assert_eq!(line_column(text, 5), (2, 2));
        // An offset inside 'µ' is moved back to its start.
        assert_eq!(line_column(text, 4), (2, 1));
        assert_eq!(line_column(text, 9), (4, 1));
        assert_eq!(line_column(text, 999), (4, 2));
    }

    #[test]
    fn display_one_line_per_problem_sorted() {
        let mut collector = Collector::new("[link]\nmtu = 70000\n");
        collector.error(None, "send", "missing", Some("add it"));
        collector.error(
            Some(13..18),
            "link.mtu",
            "70000 is out of range",
            Some("use 1500"),
        );
        collector.error(Some(0..6), "link", "first", None);
        assert!(!collector.is_clean());
        let error = collector.into_error(Path::new("policies/x.toml"));
        assert_eq!(
            error.to_string(),
            "policies/x.toml:1:1: link: first\n\
             policies/x.toml:2:7: link.mtu: 70000 is out of range (hint: use 1500)\n\
             policies/x.toml: send: missing (hint: add it)"
        );
    }
}
