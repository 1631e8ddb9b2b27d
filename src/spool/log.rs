//! [`ChannelLog`]: the single writer of one channel's spool directory. Opening recovers the last
//! segment; appends, fsyncs, rolls and retention follow the contract in [`crate::spool`].

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::record::{self, HeaderRead, SEGMENT_HEADER};
use super::{
    list_segments, segment_path, AppendError, IoAt, LogConfig, LogStatus, NewRecord, Recovery, SpoolError,
    FULL_RETRY, MAX_RECORD,
};

/// Read buffer used when scanning a segment.
const SCAN_BUFFER: usize = 64 << 10;

/// What the writer remembers of one segment: no per-record index.
#[derive(Debug, Clone, Copy)]
struct Segment {
    base: u64,
    /// Bytes on disk, header included.
    len: u64,
    /// Largest `time_ns` stored; `None` until needed for an older segment found at open.
    newest: Option<u64>,
}

/// The writer of one channel's log. See the [module contract](crate::spool).
#[derive(Debug)]
pub struct ChannelLog {
    dir: PathBuf,
    config: LogConfig,
    /// Oldest first; never empty; the last is the active segment.
    segments: VecDeque<Segment>,
    /// The active segment, opened for appending.
    active: File,
    end: u64,
    durable: u64,
    bytes: u64,
    /// Bytes written since the last fsync, and when the first of them was.
    unsynced_bytes: u64,
    unsynced_since: Option<Instant>,
    /// The disk was full at the last attempt.
    full: bool,
    /// Appends are refused without touching the disk until then.
    refuse_until: Option<Instant>,
    /// A failed write could not be cut back: the active segment must be truncated to its known
    /// length before anything else is written.
    needs_truncate: bool,
    /// Reused encode buffer.
    buf: Vec<u8>,
    /// An fsync failed. Linux may have dropped the dirty pages and marked them clean, so a later
    /// fsync could "succeed" over lost data: `durable` never moves again and appends are
    /// refused until the daemon is restarted (recovery then re-reads what is really on disk).
    sync_failed: bool,
}

impl ChannelLog {
    /// Opens (creating if needed) the channel directory `dir` and recovers it: every segment
    /// header is checked, the last segment is scanned and cut at its first incomplete or invalid
    /// record, and everything kept is fsynced, so `durable == end` afterwards.
    pub fn open(dir: &Path, config: LogConfig) -> Result<(ChannelLog, Recovery), SpoolError> {
        if !dir.is_dir() {
            // Group-readable: the delivery process reads the spool through its group.
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(|e| IoAt::new(dir, "create directory", e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        remove_temporaries(dir)?;
        let bases = list_segments(dir)?;
        let mut recovery = Recovery {
            segments: bases.len(),
            ..Recovery::default()
        };
        let mut segments = VecDeque::with_capacity(bases.len().max(1));
        for &base in &bases {
            let path = segment_path(dir, base);
            let mut file = File::open(&path).map_err(|e| IoAt::new(&path, "open", e))?;
            check_header(&mut file, &path, base)?;
            let len = file.metadata().map_err(|e| IoAt::new(&path, "stat", e))?.len();
            segments.push_back(Segment {
                base,
                len,
                newest: None,
            });
        }
        let (active, end) = match segments.back_mut() {
            Some(last) => {
                let path = segment_path(dir, last.base);
                let (records, valid_len, newest) = scan(&path, last.base)?;
                let active = open_active(&path).map_err(|e| IoAt::new(&path, "open", e))?;
                if valid_len < last.len {
                    active
                        .set_len(valid_len)
                        .map_err(|e| IoAt::new(&path, "truncate", e))?;
                    recovery.truncated_bytes = last.len - valid_len;
                    tracing::warn!(
                        path = %path.display(),
                        truncated_bytes = recovery.truncated_bytes,
                        "spool segment had a torn or invalid tail; cut it off"
                    );
                }
                active.sync_data().map_err(|e| IoAt::new(&path, "fsync", e))?;
                last.len = valid_len;
                last.newest = Some(newest);
                recovery.records = records;
                (active, last.base.saturating_add(records))
            }
            None => {
                let active = create_segment(dir, 0)?;
                segments.push_back(Segment {
                    base: 0,
                    len: SEGMENT_HEADER as u64,
                    newest: Some(0),
                });
                recovery.segments = 1;
                (active, 0)
            }
        };
        let bytes = segments.iter().map(|s| s.len).sum();
        let log = ChannelLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            active,
            end,
            durable: end,
            bytes,
            unsynced_bytes: 0,
            unsynced_since: None,
            sync_failed: false,
            full: false,
            refuse_until: None,
            needs_truncate: false,
            buf: Vec::new(),
        };
        Ok((log, recovery))
    }

    /// Appends `records` in order, all or nothing, and returns the offsets assigned. Once this
    /// returns, the bytes are in the kernel; they are durable once [`LogStatus::durable`] passes
    /// them. Rolls to a new segment first if the active one is full, and fsyncs if
    /// [`LogConfig::fsync_bytes`] are now unsynced.
    pub fn append_batch(
        &mut self,
        records: &[NewRecord<'_>],
        now: Instant,
    ) -> Result<Range<u64>, AppendError> {
        if records.iter().any(|r| r.payload.len() > MAX_RECORD) {
            return Err(AppendError::TooLarge);
        }
        if records.is_empty() {
            return Ok(self.end..self.end);
        }
        if self.sync_failed {
            return Err(AppendError::Io(io::Error::other(
                "an fsync of this channel's spool failed earlier; check the disk and restart weir-recv",
            )));
        }
        if self.full && self.refuse_until.is_some_and(|until| now < until) {
            return Err(AppendError::Full(io::Error::new(
                io::ErrorKind::StorageFull,
                "spool disk full; refusing appends until the retry time",
            )));
        }
        match self.write_batch(records, now) {
            Ok(range) => {
                self.full = false;
                self.refuse_until = None;
                Ok(range)
            }
            Err(e) => {
                if let AppendError::Full(_) = e {
                    self.full = true;
                    self.refuse_until = Some(now + FULL_RETRY);
                    tracing::warn!(dir = %self.dir.display(), "spool disk full; refusing appends");
                }
                Err(e)
            }
        }
    }

    /// Appends one record and returns its offset; see [`ChannelLog::append_batch`].
    pub fn append(&mut self, record: &NewRecord<'_>, now: Instant) -> Result<u64, AppendError> {
        self.append_batch(std::slice::from_ref(record), now)
            .map(|range| range.start)
    }

    /// The housekeeping due at `now`: fsync if [`LogConfig::fsync_interval`] has passed since the
    /// first unsynced append, end a [`FULL_RETRY`] wait, and apply retention (`now_unix_ns` is
    /// compared with records' `time_ns`).
    pub fn tick(&mut self, now: Instant, now_unix_ns: u64) -> Result<(), SpoolError> {
        if self.refuse_until.is_some_and(|until| now >= until) {
            // The next append tries the disk again.
            self.refuse_until = None;
        }
        if let Some(since) = self.unsynced_since {
            if now.saturating_duration_since(since) >= self.config.fsync_interval {
                self.sync()?;
            }
        }
        self.retain(Some(now_unix_ns))
    }

    /// Fsyncs the active segment now, making every appended record durable.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        Ok(self.sync_active()?)
    }

    /// Offsets, bytes and state now.
    pub fn status(&self) -> LogStatus {
        LogStatus {
            start: self.segments.front().map_or(self.end, |s| s.base),
            durable: self.durable,
            end: self.end,
            bytes: self.bytes,
            full: self.full,
        }
    }

    /// When [`ChannelLog::tick`] must next run: an fsync falling due or a full wait ending.
    /// `None` if nothing is pending. Retention by age needs a periodic `tick` besides.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sync = self
            .unsynced_since
            .map(|since| since + self.config.fsync_interval);
        match (sync, self.refuse_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn sync_active(&mut self) -> Result<(), IoAt> {
        if self.sync_failed {
            return Err(IoAt::new(
                &self.active_path(),
                "fsync",
                io::Error::other("an earlier fsync failed; restart weir-recv after checking the disk"),
            ));
        }
        if self.durable == self.end && self.unsynced_since.is_none() {
            return Ok(());
        }
        if let Err(e) = self.active.sync_data() {
            // Sticky: see `sync_failed`. No retry loop either: nothing is due any more.
            self.sync_failed = true;
            self.unsynced_since = None;
            return Err(IoAt::new(&self.active_path(), "fsync", e));
        }
        self.durable = self.end;
        self.unsynced_bytes = 0;
        self.unsynced_since = None;
        Ok(())
    }

    fn active_path(&self) -> PathBuf {
        segment_path(&self.dir, self.segments.back().map_or(0, |s| s.base))
    }

    /// Rolls if due, then encodes and writes the batch; on failure cuts the segment back.
    fn write_batch(&mut self, records: &[NewRecord<'_>], now: Instant) -> Result<Range<u64>, AppendError> {
        let path = self.active_path();
        let len = self.segments.back().map_or(0, |s| s.len);
        if self.needs_truncate {
            self.active
                .set_len(len)
                .map_err(|e| IoAt::new(&path, "truncate", e))?;
            self.needs_truncate = false;
        }
        if len >= self.config.segment_bytes && len > SEGMENT_HEADER as u64 {
            self.roll()?;
            if let Err(e) = self.retain(None) {
                tracing::warn!(error = %e, "spool retention after a roll failed; retried at the next tick");
            }
        }
        let start = self.end;
        self.buf.clear();
        let mut newest = 0;
        for (offset, record) in (start..).zip(records) {
            record::encode(&mut self.buf, offset, record);
            newest = newest.max(record.time_ns);
        }
        let path = self.active_path();
        let before = self.segments.back().map_or(0, |s| s.len);
        if let Err(e) = self.active.write_all(&self.buf) {
            if let Err(cut) = self.active.set_len(before) {
                self.needs_truncate = true;
                tracing::warn!(
                    path = %path.display(),
                    error = %cut,
                    "spool could not cut back a failed write; retried before the next one"
                );
            }
            return Err(IoAt::new(&path, "write", e).into());
        }
        let written = self.buf.len() as u64;
        // Do not keep a huge buffer around after a burst of large records.
        if self.buf.capacity() > 4 * MAX_RECORD {
            self.buf = Vec::new();
        }
        if let Some(active) = self.segments.back_mut() {
            active.len += written;
            active.newest = Some(active.newest.unwrap_or(0).max(newest));
        }
        self.bytes += written;
        self.end = start + records.len() as u64;
        self.unsynced_bytes += written;
        self.unsynced_since.get_or_insert(now);
        if self.unsynced_bytes >= self.config.fsync_bytes {
            if let Err(e) = self.sync() {
                // The records are stored; the fsync is retried by `tick`.
                tracing::warn!(error = %e, "spool fsync failed");
            }
        }
        Ok(start..self.end)
    }

    /// Fsyncs the active segment and starts a new one at `end`.
    fn roll(&mut self) -> Result<(), AppendError> {
        self.sync_active()?;
        let active = create_segment(&self.dir, self.end)?;
        self.active = active;
        self.segments.push_back(Segment {
            base: self.end,
            len: SEGMENT_HEADER as u64,
            newest: Some(0),
        });
        self.bytes += SEGMENT_HEADER as u64;
        Ok(())
    }

    /// Deletes the oldest whole segments (never the active one) while over the byte limit or,
    /// with `now_unix_ns`, older than the age limit.
    fn retain(&mut self, now_unix_ns: Option<u64>) -> Result<(), SpoolError> {
        let cutoff = match (now_unix_ns, self.config.retain_age) {
            (Some(now), Some(age)) => {
                Some(now.saturating_sub(u64::try_from(age.as_nanos()).unwrap_or(u64::MAX)))
            }
            _ => None,
        };
        while self.segments.len() > 1 {
            let Some(oldest) = self.segments.front().copied() else {
                break;
            };
            let over_bytes = self.config.retain_bytes.is_some_and(|max| self.bytes > max);
            let too_old = !over_bytes && cutoff.is_some() && {
                let newest = self.newest(oldest)?;
                cutoff.is_some_and(|cutoff| newest < cutoff)
            };
            if !over_bytes && !too_old {
                break;
            }
            let path = segment_path(&self.dir, oldest.base);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(IoAt::new(&path, "delete", e).into()),
            }
            sync_dir(&self.dir)?;
            self.segments.pop_front();
            self.bytes = self.bytes.saturating_sub(oldest.len);
            tracing::info!(path = %path.display(), over_bytes, "spool segment deleted by retention");
        }
        Ok(())
    }

    /// The newest `time_ns` in `segment`, scanning it once if it was found at open.
    fn newest(&mut self, segment: Segment) -> Result<u64, SpoolError> {
        if let Some(newest) = segment.newest {
            return Ok(newest);
        }
        let (_, _, newest) = scan(&segment_path(&self.dir, segment.base), segment.base)?;
        if let Some(s) = self.segments.iter_mut().find(|s| s.base == segment.base) {
            s.newest = Some(newest);
        }
        Ok(newest)
    }
}

/// Opens a segment for appending.
fn open_active(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).append(true).open(path)
}

/// Reads and checks the segment header of `file`, leaving it positioned after it.
fn check_header(file: &mut File, path: &Path, base: u64) -> Result<(), SpoolError> {
    let mut header = [0u8; SEGMENT_HEADER];
    let n = record::read_full(file, &mut header).map_err(|e| IoAt::new(path, "read", e))?;
    let bytes = header.get(..n).unwrap_or_default();
    record::check_segment_header(bytes, base).map_err(|reason| SpoolError::BadSegment {
        path: path.to_path_buf(),
        reason,
    })
}

/// Scans a segment from its start: the number of valid records with consecutive offsets from
/// `base`, the length they end at, and their newest `time_ns`.
fn scan(path: &Path, base: u64) -> Result<(u64, u64, u64), SpoolError> {
    let mut file = File::open(path).map_err(|e| IoAt::new(path, "open", e))?;
    check_header(&mut file, path, base)?;
    let mut reader = BufReader::with_capacity(SCAN_BUFFER, file);
    let (mut records, mut len, mut newest) = (0u64, SEGMENT_HEADER as u64, 0u64);
    let mut payload = Vec::new();
    loop {
        let header = match record::read_header(&mut reader).map_err(|e| IoAt::new(path, "read", e))? {
            HeaderRead::Header(h) if h.offset == base.saturating_add(records) => h,
            _ => break,
        };
        let ok = record::read_payload(&mut reader, &header, &mut payload)
            .map_err(|e| IoAt::new(path, "read", e))?;
        if !ok {
            break;
        }
        records += 1;
        len += header.record_bytes();
        newest = newest.max(header.time_ns);
    }
    Ok((records, len, newest))
}

/// Removes `*.log.tmp` files a crash left while creating a segment.
fn remove_temporaries(dir: &Path) -> Result<(), SpoolError> {
    let entries = fs::read_dir(dir).map_err(|e| IoAt::new(dir, "list directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| IoAt::new(dir, "list directory", e))?;
        let is_temp = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(super::parse_segment_name)
            .is_some();
        if is_temp {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| IoAt::new(&path, "delete", e))?;
        }
    }
    Ok(())
}

/// Fsyncs directory `dir`, so creating or deleting a file in it is durable.
fn sync_dir(dir: &Path) -> Result<(), IoAt> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| IoAt::new(dir, "fsync directory", e))
}

/// Creates the segment starting at `base` (header written and fsynced under a temporary name,
/// then renamed into place) and opens it for appending.
fn create_segment(dir: &Path, base: u64) -> Result<File, IoAt> {
    let path = segment_path(dir, base);
    let tmp = dir.join(format!("{base:020}.log.tmp"));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&tmp)
            .map_err(|e| IoAt::new(&tmp, "create", e))?;
        file.write_all(&record::segment_header(base))
            .map_err(|e| IoAt::new(&tmp, "write", e))?;
        file.sync_data().map_err(|e| IoAt::new(&tmp, "fsync", e))?;
        fs::rename(&tmp, &path).map_err(|e| IoAt::new(&path, "rename", e))?;
        sync_dir(dir)?;
        let mut file = open_active(&path).map_err(|e| IoAt::new(&path, "open", e))?;
        file.seek(SeekFrom::End(0))
            .map_err(|e| IoAt::new(&path, "seek", e))?;
        Ok::<File, IoAt>(file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
