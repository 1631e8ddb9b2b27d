//! Each sink's durable position in its channel's spool, kept across restarts of weir-deliver.
//!
//! One small text file per sink in `recv.deliver_state`, replaced atomically (write a temporary
//! file, fsync, rename, fsync the directory), at most every [`SAVE_EVERY`] while the sink
//! progresses and once more when it stops. A file that does not parse, or whose check does not
//! match, is an error that names it and says what to do: weir-deliver never silently restarts a
//! sink from offset 0 or from the end.
//!
//! ```text
//! # weir-deliver: where this sink resumes in the spool. …
//! channel = "historian"
//! sink = "tcp 10.20.0.7:7000"
//! offset = 12345
//! check = "1a2b3c4d"          CRC32C of "channel|sink|offset"
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest time a progressing sink's stored offset lags behind it: after a crash (`kill -9`,
/// power loss) the sink repeats at most this much (at-least-once).
pub const SAVE_EVERY: Duration = Duration::from_millis(100);

/// Why a sink's offset file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OffsetError {
    /// It cannot be read or written.
    #[error("{path}: cannot {op}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was tried.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
    /// It does not parse, belongs to another sink, or fails its check.
    #[error(
        "{path}: {reason}; it is not a sink offset this weir-deliver wrote (damaged or edited). \
         Delete it to restart this sink at the spool's end, or write the offset to resume from"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One sink's offset file.
#[derive(Debug)]
pub struct SinkOffset {
    path: PathBuf,
    channel: String,
    sink: String,
    saved: Option<u64>,
    saved_at: Option<Instant>,
}

/// A file name for `sink` (e.g. `tcp 10.20.0.7:7000`) of `channel`: no separators, no colons.
fn file_name(channel: &str, sink: &str) -> String {
    let sink: String = sink
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{channel}.{sink}.offset")
}

fn check(channel: &str, sink: &str, offset: u64) -> String {
    format!(
        "{:08x}",
        crc32c::crc32c(format!("{channel}|{sink}|{offset}").as_bytes())
    )
}

impl SinkOffset {
    /// Opens the offset file of `sink` of `channel` in `dir` (creating `dir`, mode 0700, if
    /// needed) and returns the stored offset, `None` for a sink never run.
    pub fn open(dir: &Path, channel: &str, sink: &str) -> Result<(SinkOffset, Option<u64>), OffsetError> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| OffsetError::Io {
                path: dir.to_path_buf(),
                op: "create the directory",
                source,
            })?;
        let path = dir.join(file_name(channel, sink));
        let stored = match fs::read_to_string(&path) {
            Ok(text) => Some(parse(&path, &text, channel, sink)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(OffsetError::Io {
                    path,
                    op: "read",
                    source,
                })
            }
        };
        let offset = SinkOffset {
            path,
            channel: channel.to_owned(),
            sink: sink.to_owned(),
            saved: stored,
            saved_at: None,
        };
        Ok((offset, stored))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `offset` if it moved and the last save is [`SAVE_EVERY`] old (`now`), or always
    /// with `force` (when the sink stops).
    pub fn save(&mut self, offset: u64, now: Instant, force: bool) -> Result<(), OffsetError> {
        if self.due(offset, now, force) {
            replace(&self.path, &self.render(offset))?;
            self.mark(offset, now);
        }
        Ok(())
    }

    /// [`SinkOffset::save`] for a sink on the async runtime: the write and its fsyncs run on a
    /// blocking thread, so a slow disk never stalls the runtime's workers (and with them the
    /// consumer sessions and the other sinks).
    pub async fn store(&mut self, offset: u64, now: Instant, force: bool) -> Result<(), OffsetError> {
        if !self.due(offset, now, force) {
            return Ok(());
        }
        let (path, text) = (self.path.clone(), self.render(offset));
        tokio::task::spawn_blocking(move || replace(&path, &text))
            .await
            .map_err(|error| OffsetError::Io {
                path: self.path.clone(),
                op: "store (the blocking task ended)",
                source: io::Error::other(error),
            })??;
        self.mark(offset, now);
        Ok(())
    }

    fn due(&self, offset: u64, now: Instant, force: bool) -> bool {
        self.saved != Some(offset)
            && (force
                || self
                    .saved_at
                    .is_none_or(|at| now.duration_since(at) >= SAVE_EVERY))
    }

    fn mark(&mut self, offset: u64, now: Instant) {
        self.saved = Some(offset);
        self.saved_at = Some(now);
    }

    fn render(&self, offset: u64) -> String {
        format!(
            "# weir-deliver: where this sink resumes in the spool. Delete this file to restart \
             the sink at the spool's end.\nchannel = \"{}\"\nsink = \"{}\"\noffset = {offset}\n\
             check = \"{}\"\n",
            self.channel,
            self.sink,
            check(&self.channel, &self.sink, offset)
        )
    }
}

/// Replaces `path` with `text` atomically: a temporary file, fsync, rename, fsync of the
/// directory.
fn replace(path: &Path, text: &str) -> Result<(), OffsetError> {
    let tmp = path.with_extension("offset.tmp");
    let io = |op, source| OffsetError::Io {
        path: tmp.clone(),
        op,
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("create", e))?;
    file.write_all(text.as_bytes()).map_err(|e| io("write", e))?;
    file.sync_data().map_err(|e| io("fsync", e))?;
    fs::rename(&tmp, path).map_err(|source| OffsetError::Io {
        path: path.to_path_buf(),
        op: "rename into place",
        source,
    })?;
    if let Some(dir) = path.parent() {
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn parse(path: &Path, text: &str, channel: &str, sink: &str) -> Result<u64, OffsetError> {
    let corrupt = |reason: String| OffsetError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut fields = std::collections::HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| corrupt(format!("line {line:?} is not `key = value`")))?;
        fields.insert(key.trim(), value.trim().trim_matches('"'));
    }
    let field = |name: &str| {
        fields
            .get(name)
            .copied()
            .ok_or_else(|| corrupt(format!("`{name}` is missing")))
    };
    if field("channel")? != channel || field("sink")? != sink {
        return Err(corrupt(format!(
            "it belongs to channel {:?} sink {:?}, not {channel:?} {sink:?}",
            field("channel")?,
            field("sink")?
        )));
    }
    let offset: u64 = field("offset")?
        .parse()
        .map_err(|_| corrupt("`offset` is not a number".to_owned()))?;
    if field("check")? != check(channel, sink, offset) {
        return Err(corrupt("`check` does not match".to_owned()));
    }
    Ok(offset)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weir-offsets-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn stores_and_resumes_and_throttles() {
        let d = dir("resume");
        let (mut o, stored) = SinkOffset::open(&d, "historian", "tcp 10.0.0.1:7000").unwrap();
        assert_eq!(stored, None);
        let now = Instant::now();
        o.save(10, now, false).unwrap();
        o.save(20, now + Duration::from_millis(1), false).unwrap(); // throttled
        assert_eq!(
            SinkOffset::open(&d, "historian", "tcp 10.0.0.1:7000").unwrap().1,
            Some(10)
        );
        o.save(20, now + Duration::from_millis(2), true).unwrap();
        assert_eq!(
            SinkOffset::open(&d, "historian", "tcp 10.0.0.1:7000").unwrap().1,
            Some(20)
        );
        assert!(o
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .contains("historian.tcp-10.0.0.1-7000"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_damaged_or_foreign_file_is_an_error_that_says_what_to_do() {
        let d = dir("corrupt");
        let (mut o, _) = SinkOffset::open(&d, "a", "udp 10.0.0.1:514").unwrap();
        o.save(7, Instant::now(), true).unwrap();
        let text = fs::read_to_string(o.path()).unwrap();
        fs::write(o.path(), text.replace("offset = 7", "offset = 8")).unwrap();
        let error = SinkOffset::open(&d, "a", "udp 10.0.0.1:514")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`check` does not match") && error.contains("Delete it"),
            "{error}"
        );
        fs::write(o.path(), "garbage").unwrap();
        let error = SinkOffset::open(&d, "a", "udp 10.0.0.1:514")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not `key = value`"), "{error}");
        fs::write(o.path(), text.replace("channel = \"a\"", "channel = \"b\"")).unwrap();
        let error = SinkOffset::open(&d, "a", "udp 10.0.0.1:514")
            .unwrap_err()
            .to_string();
        assert!(error.contains("belongs to channel"), "{error}");
        fs::remove_dir_all(&d).unwrap();
    }
}
