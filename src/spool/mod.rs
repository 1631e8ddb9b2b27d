//! The spool: a durable, append-only, segmented log per channel, written by one [`ChannelLog`]
//! and read by any number of [`Cursor`]s. Pure std file I/O; time is always passed in.
//!
//! Contract:
//! - Offsets are consecutive record numbers per channel, starting at 0, never reused and never
//!   skipped: an append that fails assigns none.
//! - A channel is a directory of segment files named `{base_offset:020}.log`; each holds the
//!   records `base..next segment's base`. Other files in the directory are ignored (a
//!   `*.log.tmp` left by a crash while creating a segment is removed at open). A new segment is
//!   written under a temporary name, fsynced, renamed into place and the directory fsynced, so a
//!   reader never sees a half-written segment header.
//! - [`ChannelLog::append_batch`] writes a whole batch with one `write(2)` sequence and keeps no
//!   userspace buffer across calls: once an offset is returned its bytes are in the kernel. A
//!   failed write is cut back with `set_len`, so no torn record remains. `ENOSPC`/`EDQUOT` put
//!   the log in the *full* state: appends are refused at once, without touching the disk, for
//!   [`FULL_RETRY`]; then the next append tries again and a success clears the state. Nothing
//!   already stored is ever changed.
//! - [`LogStatus::durable`] advances only after an fsync (fdatasync) of the segment holding the
//!   records: by [`ChannelLog::tick`] once [`LogConfig::fsync_interval`] has passed since the
//!   first unsynced append, by `append_batch` once [`LogConfig::fsync_bytes`] are unsynced, by
//!   [`ChannelLog::sync`], and before rolling to a new segment. Readers read only below
//!   `durable`, so they never see a record that a crash could take back.
//! - Retention deletes only whole segments, oldest first, never the active one: while the
//!   channel's bytes exceed [`LogConfig::retain_bytes`], and while the oldest segment's newest
//!   record (by `time_ns`) is older than [`LogConfig::retain_age`].
//! - Recovery ([`ChannelLog::open`]) checks every segment header, scans only the **last**
//!   segment record by record and truncates it at the first incomplete or invalid record;
//!   earlier segments are trusted for their offsets. A segment with a wrong header is an error
//!   naming the file; user data is never deleted by recovery.
//! - Readers never return a record whose length, header, offset or CRC is wrong: a corrupt
//!   record becomes an [`Item::Gap`] with [`GapReason::Corrupt`] up to the next segment's base
//!   (or the read limit), and offsets deleted by retention become a [`GapReason::Retention`]
//!   gap. Every byte read from disk is parsed with [`crate::proto::reader::Reader`].
//! - Memory: the writer keeps one small summary per segment (base, length, newest time) and one
//!   reused encode buffer; a cursor keeps one open file, a bounded read buffer and one payload.
//!   No payload larger than [`MAX_RECORD`] is ever allocated.
//!
//! Segment file layout (big-endian):
//!
//! ```text
//! 0             8         12         16            24
//! +-------------+---------+----------+-------------+--------+----------+-----
//! | magic       | version | reserved | base offset | record | record   | ...
//! | "weirspl\0" | u32 = 1 | u32 = 0  | u64         | base   | base + 1 |
//! +-------------+---------+----------+-------------+--------+----------+-----
//! ```
//!
//! Record layout (40-byte header, then the payload):
//!
//! ```text
//! 0         4         8          16         24             32       36     37         40
//! +---------+---------+----------+----------+--------------+--------+------+----------+-----------+
//! | len     | crc     | offset   | seq      | time_ns      | stream | kind | reserved | payload   |
//! | u32     | u32     | u64      | u64      | u64, unix ns | u32    | u8   | 3 x 0x00 | len bytes |
//! +---------+---------+----------+----------+--------------+--------+------+----------+-----------+
//! crc = CRC32C (Castagnoli) over header bytes 8..40, then the payload.
//! ```
//!
//! `kind`: 0 Data, 1 Open, 2 End, 3 Abort, 4 Lost. A `Lost` record's `seq` is the first lost
//! sequence number and its payload is the count of lost messages as a big-endian `u64`.

mod cursor;
mod kind;
mod log;
pub mod published;
mod record;
#[cfg(test)]
mod tests;
pub mod view;
#[cfg(feature = "recv")]
pub mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cursor::{Cursor, GapReason, Item};
pub use log::ChannelLog;

/// Largest payload accepted or read, in bytes: a record header claiming more is corrupt and
/// nothing is allocated for it.
pub const MAX_RECORD: usize = 16 << 20;

/// How long a full log refuses appends without touching the disk before it tries again.
pub const FULL_RETRY: Duration = Duration::from_secs(1);

/// How a channel's log rolls, syncs and forgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment when the active one has reached this many bytes (checked before
    /// each batch, so a segment may exceed it by one batch).
    pub segment_bytes: u64,
    /// Fsync at least this often while unsynced records exist.
    pub fsync_interval: Duration,
    /// ... or as soon as this many bytes are unsynced (0: after every batch).
    pub fsync_bytes: u64,
    /// Delete the oldest whole segments while the channel stores more bytes than this.
    pub retain_bytes: Option<u64>,
    /// Delete the oldest whole segments whose newest record is older than this.
    pub retain_age: Option<Duration>,
}

impl Default for LogConfig {
    /// 64 MiB segments, fsync every 100 ms or 1 MiB, keep everything.
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            fsync_interval: Duration::from_millis(100),
            fsync_bytes: 1 << 20,
            retain_bytes: None,
            retain_age: None,
        }
    }
}

/// What a record says about its stream (`Lost`: `seq` is the first lost sequence number and
/// the payload is the count as a big-endian `u64`).
pub use kind::RecordKind;

/// A record to append; the log assigns its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// The message's sequence number on the link.
    pub seq: u64,
    /// Receive time, unix nanoseconds; retention by age compares it.
    pub time_ns: u64,
    /// The stream the record belongs to.
    pub stream: u32,
    /// What the record says.
    pub kind: RecordKind,
    /// The bytes, at most [`MAX_RECORD`].
    pub payload: &'a [u8],
}

/// A record read back from the log, CRC verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its offset in the channel.
    pub offset: u64,
    /// The message's sequence number on the link.
    pub seq: u64,
    /// Receive time, unix nanoseconds.
    pub time_ns: u64,
    /// The stream the record belongs to.
    pub stream: u32,
    /// What the record says.
    pub kind: RecordKind,
    /// The bytes.
    pub payload: Vec<u8>,
}

impl Record {
    /// For a [`RecordKind::Lost`] record with a well-formed payload, the number of messages
    /// lost.
    pub fn lost_count(&self) -> Option<u64> {
        if self.kind != RecordKind::Lost {
            return None;
        }
        let bytes: [u8; 8] = self.payload.as_slice().try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    }
}

/// A snapshot of a log's offsets and state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStatus {
    /// First retained offset.
    pub start: u64,
    /// Every offset below this is fsynced; readers read up to here.
    pub durable: u64,
    /// The next offset to assign.
    pub end: u64,
    /// Bytes on disk (segment headers included).
    pub bytes: u64,
    /// The disk was full at the last append attempt: appends are refused without touching the
    /// disk for [`FULL_RETRY`], then the next one tries again; a success clears this.
    pub full: bool,
}

/// What [`ChannelLog::open`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segments found (including one created for an empty channel).
    pub segments: usize,
    /// Valid records found in the last segment (earlier segments are not scanned).
    pub records: u64,
    /// Bytes cut off the end of the last segment: a torn or invalid tail.
    pub truncated_bytes: u64,
}

/// Why an append stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The disk or quota is full (`ENOSPC`/`EDQUOT`), or the log is refusing appends for
    /// [`FULL_RETRY`] after that happened. Nothing of the batch was stored.
    #[error("spool full, append refused: {0}")]
    Full(#[source] io::Error),
    /// A payload is larger than [`MAX_RECORD`]. Nothing of the batch was stored.
    #[error("spool record payload larger than {MAX_RECORD} bytes")]
    TooLarge,
    /// Another I/O error. Nothing of the batch was stored.
    #[error("spool append failed: {0}")]
    Io(#[source] io::Error),
}

/// A spool I/O or format error. Every variant names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// An operation on a file or directory failed.
    #[error("spool {path}: {op} failed: {source}", path = .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("open", "fsync", ...).
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// A segment file's header is not a weir spool segment header for the base in its name.
    /// Recovery stops rather than delete or overwrite it.
    #[error("spool segment {path} has a bad header: {reason} (hint: move the file away if it is not a weir spool segment)", path = .path.display())]
    BadSegment {
        /// The segment file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

/// An I/O error with the file and the operation it happened in; turned into either error.
#[derive(Debug)]
pub(crate) struct IoAt {
    pub(crate) path: PathBuf,
    pub(crate) op: &'static str,
    pub(crate) err: io::Error,
}

impl IoAt {
    /// Wraps `err`, raised by `op` on `path`.
    pub(crate) fn new(path: &Path, op: &'static str, err: io::Error) -> Self {
        Self {
            path: path.to_path_buf(),
            op,
            err,
        }
    }
}

impl From<IoAt> for SpoolError {
    fn from(e: IoAt) -> Self {
        SpoolError::Io {
            path: e.path,
            op: e.op,
            source: e.err,
        }
    }
}

/// True for the errors that mean "no space": `ENOSPC` and `EDQUOT`.
pub(crate) fn is_full(err: &io::Error) -> bool {
    // 28 and 122 are ENOSPC and EDQUOT on Linux; std maps them to these kinds.
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(err.raw_os_error(), Some(28) | Some(122))
}

impl From<IoAt> for AppendError {
    fn from(e: IoAt) -> Self {
        if is_full(&e.err) {
            AppendError::Full(e.err)
        } else {
            AppendError::Io(e.err)
        }
    }
}

/// The path of the segment starting at `base` in channel directory `dir`.
pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// The base offset named by a segment file name, if `name` is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The sorted base offsets of the segments in `dir`; a missing directory has none.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, IoAt> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IoAt::new(dir, "list directory", e)),
    };
    let mut bases = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| IoAt::new(dir, "list directory", e))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_segment_name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// The channel directories under a spool root: every subdirectory, sorted by name. A missing
/// root has none.
pub fn list_channel_dirs(root: &Path) -> Result<Vec<PathBuf>, SpoolError> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IoAt::new(root, "list directory", e).into()),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| IoAt::new(root, "list directory", e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| IoAt::new(&entry.path(), "stat", e))?
            .is_dir();
        if is_dir {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}
