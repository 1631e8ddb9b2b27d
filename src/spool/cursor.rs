//! [`Cursor`]: reads one channel's records in offset order, below a limit the caller takes from
//! [`LogStatus::durable`](super::LogStatus::durable). It holds one open segment and a bounded
//! read buffer; it never returns a record that fails its checks (see [`crate::spool`]).

use std::fs::File;
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::record::{self, HeaderRead, RECORD_HEADER, SEGMENT_HEADER};
use super::{list_segments, segment_path, IoAt, Record, SpoolError};

/// Read buffer of a cursor's open segment.
const READ_BUFFER: usize = 64 << 10;

/// How often one step re-lists the directory when segments vanish under it (retention) before
/// giving up for this call.
const LOCATE_ATTEMPTS: usize = 8;

/// Why offsets were skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// Deleted by retention before they were read.
    Retention,
    /// A record failed its checks (length, header, offset or CRC); the rest of its segment, up to
    /// the next segment's base or the read limit, is skipped.
    Corrupt,
}

/// What a cursor yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A record that passed every check.
    Record(Record),
    /// Offsets `from..to` that cannot be read.
    Gap {
        /// First skipped offset.
        from: u64,
        /// First offset after the gap.
        to: u64,
        /// Why.
        reason: GapReason,
    },
}

/// Where an offset lives in a channel directory.
enum Place {
    /// No segments at all.
    Empty,
    /// Before the first segment: retention deleted it. Holds the first base.
    Deleted(u64),
    /// In the segment starting at `base`; `next` is the following segment's base.
    In { base: u64, next: Option<u64> },
}

/// The segment a cursor has open, positioned before the record `at`.
#[derive(Debug)]
struct OpenSegment {
    base: u64,
    path: PathBuf,
    reader: BufReader<File>,
    at: u64,
    /// Byte position of the reader in the file.
    file_pos: u64,
    /// File length when last asked.
    file_len: u64,
}

/// A reader of one channel's log from a given offset.
#[derive(Debug)]
pub struct Cursor {
    dir: PathBuf,
    pos: u64,
    segment: Option<OpenSegment>,
}

impl Cursor {
    /// A cursor over channel directory `dir` whose first item starts at offset `from`. Nothing is
    /// opened until [`Cursor::read`].
    pub fn new(dir: &Path, from: u64) -> Cursor {
        Cursor {
            dir: dir.to_path_buf(),
            pos: from,
            segment: None,
        }
    }

    /// The next offset this cursor will yield.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Reads from [`Cursor::position`] up to `limit` (exclusive; pass
    /// [`LogStatus::durable`](super::LogStatus::durable)), until about `max_bytes` of payload
    /// (each item also counts a record header's worth), pushing onto `out`. Yields at least one
    /// item if any is available. Never reads a record at or beyond `limit`.
    pub fn read(&mut self, limit: u64, max_bytes: usize, out: &mut Vec<Item>) -> Result<(), SpoolError> {
        // The read buffer may have read ahead past the last call's limit into bytes that were
        // not durable then, and that a failed write has since cut back and replaced: drop it.
        if let Some(segment) = self.segment.as_mut() {
            if segment.reader.seek(SeekFrom::Start(segment.file_pos)).is_err() {
                self.segment = None;
            }
        }
        let mut used = 0usize;
        let mut any = false;
        while self.pos < limit && (!any || used < max_bytes) {
            let item = match self.step(limit) {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(e) => {
                    self.segment = None;
                    return Err(e.into());
                }
            };
            used = used.saturating_add(RECORD_HEADER);
            if let Item::Record(record) = &item {
                used = used.saturating_add(record.payload.len());
            }
            any = true;
            out.push(item);
        }
        Ok(())
    }

    /// One item at `pos < limit`, or `None` if nothing can be read now.
    fn step(&mut self, limit: u64) -> Result<Option<Item>, IoAt> {
        let mut reread = false;
        for _ in 0..LOCATE_ATTEMPTS {
            if !matches!(&self.segment, Some(s) if s.at == self.pos) {
                self.segment = None;
                match place(&self.dir, self.pos)? {
                    Place::Empty => return Ok(None),
                    Place::Deleted(first) => return Ok(Some(self.gap(first, limit, GapReason::Retention))),
                    Place::In { base, next } => match self.open(base)? {
                        Opened::Vanished => continue,
                        Opened::Corrupt => {
                            return Ok(Some(self.gap(next.unwrap_or(limit), limit, GapReason::Corrupt)))
                        }
                        Opened::Ready(segment) => self.segment = Some(segment),
                    },
                }
            }
            let Some(segment) = self.segment.as_mut() else {
                continue;
            };
            let path = &segment.path;
            let read = record::read_header(&mut segment.reader).map_err(|e| IoAt::new(path, "read", e))?;
            if let HeaderRead::Header(header) = read {
                if header.offset == self.pos {
                    let mut payload = Vec::new();
                    let ok = record::read_payload(&mut segment.reader, &header, &mut payload)
                        .map_err(|e| IoAt::new(path, "read", e))?;
                    if ok {
                        segment.at += 1;
                        segment.file_pos += header.record_bytes();
                        self.pos += 1;
                        return Ok(Some(Item::Record(header.into_record(payload))));
                    }
                }
            }
            // The segment ended or holds a bad record at `pos`: find out which.
            let current = segment.base;
            self.segment = None;
            match place(&self.dir, self.pos)? {
                Place::Empty => return Ok(None),
                Place::Deleted(first) => return Ok(Some(self.gap(first, limit, GapReason::Retention))),
                Place::In { base, .. } if base != current => continue,
                // The read buffer may hold bytes of a write the log cut back (disk full) and
                // wrote again: read the segment afresh once before calling the record corrupt.
                Place::In { .. } if !reread => {
                    reread = true;
                    continue;
                }
                Place::In { next, .. } => {
                    return Ok(Some(self.gap(next.unwrap_or(limit), limit, GapReason::Corrupt)));
                }
            }
        }
        Ok(None)
    }

    /// A gap from `pos` to `to` (at most `limit`, at least one offset), moving past it.
    fn gap(&mut self, to: u64, limit: u64, reason: GapReason) -> Item {
        let from = self.pos;
        let to = if to > from { to.min(limit) } else { limit };
        self.pos = to;
        self.segment = None;
        Item::Gap { from, to, reason }
    }

    /// Opens the segment at `base` and seeks over record headers to `pos`.
    fn open(&self, base: u64) -> Result<Opened, IoAt> {
        let path = segment_path(&self.dir, base);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Opened::Vanished),
            Err(e) => return Err(IoAt::new(&path, "open", e)),
        };
        let file_len = file.metadata().map_err(|e| IoAt::new(&path, "stat", e))?.len();
        let mut reader = BufReader::with_capacity(READ_BUFFER, file);
        let mut header = [0u8; SEGMENT_HEADER];
        let n = record::read_full(&mut reader, &mut header).map_err(|e| IoAt::new(&path, "read", e))?;
        if record::check_segment_header(header.get(..n).unwrap_or_default(), base).is_err() {
            return Ok(Opened::Corrupt);
        }
        let mut segment = OpenSegment {
            base,
            path,
            reader,
            at: base,
            file_pos: SEGMENT_HEADER as u64,
            file_len,
        };
        while segment.at < self.pos {
            if !segment.skip()? {
                return Ok(Opened::Corrupt);
            }
        }
        Ok(Opened::Ready(segment))
    }
}

/// The result of opening a segment.
enum Opened {
    /// Deleted since the directory was listed.
    Vanished,
    /// Its header, or a record before the wanted offset, is bad.
    Corrupt,
    /// Positioned at the wanted offset.
    Ready(OpenSegment),
}

impl OpenSegment {
    /// Seeks over the record at `at` after checking its header; false if it is not there or bad.
    fn skip(&mut self) -> Result<bool, IoAt> {
        let path = &self.path;
        let header = match record::read_header(&mut self.reader).map_err(|e| IoAt::new(path, "read", e))? {
            HeaderRead::Header(h) if h.offset == self.at => h,
            _ => return Ok(false),
        };
        let end = self.file_pos.saturating_add(header.record_bytes());
        if end > self.file_len {
            self.file_len = self
                .reader
                .get_ref()
                .metadata()
                .map_err(|e| IoAt::new(path, "stat", e))?
                .len();
            if end > self.file_len {
                return Ok(false);
            }
        }
        let len = i64::try_from(header.len).unwrap_or(i64::MAX);
        self.reader
            .seek_relative(len)
            .map_err(|e| IoAt::new(path, "seek", e))?;
        self.file_pos = end;
        self.at += 1;
        Ok(true)
    }
}

/// Lists `dir` and finds where offset `pos` lives.
fn place(dir: &Path, pos: u64) -> Result<Place, IoAt> {
    let bases = list_segments(dir)?;
    let Some(&first) = bases.first() else {
        return Ok(Place::Empty);
    };
    if pos < first {
        return Ok(Place::Deleted(first));
    }
    let after = bases.partition_point(|&b| b <= pos);
    let base = after
        .checked_sub(1)
        .and_then(|i| bases.get(i))
        .copied()
        .unwrap_or(first);
    Ok(Place::In {
        base,
        next: bases.get(after).copied(),
    })
}
