//! A channel log's status, published in a small file for readers in another process.
//!
//! `weir-recv` writes the spool; `weir-deliver` reads it with read-only access and must learn
//! how far it may read without asking. The writer keeps one file per channel directory,
//! [`STATUS_FILE`], rewritten in place (one `pwrite` of [`LEN`] bytes, no fsync: it is a hint
//! that [`ChannelLog::open`](super::ChannelLog::open) recomputes on every start) whenever the
//! status or a counter moved. Readers wait for changes with inotify and re-read it; a read that
//! catches a write half-done fails its CRC and is retried.
//!
//! ```text
//!  0          8       16        24      32      40     41        48        ...        96         104    108
//!  +----------+-------+---------+-------+-------+------+---------+---------------------+----------+------+
//!  | "weirst1\n" | start | durable | end | bytes | full | 7 × 0   | 6 counters (u64)    | generation | crc  |
//!  +----------+-------+---------+-------+-------+------+---------+---------------------+----------+------+
//!  counters: records, bytes stored, drops_full, drops_queue, drops_error, drops_cut
//!  crc: CRC32C over bytes 0..104; all integers big-endian
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::LogStatus;
use crate::proto::reader::{PutBytes, Reader};

/// The status file's name inside a channel directory.
pub const STATUS_FILE: &str = "status";
/// Bytes of the status file.
pub const LEN: usize = 108;
const MAGIC: &[u8; 8] = b"weirst1\n";
const CRC_AT: usize = 104;
/// Reads of a torn file retried before giving up.
const READ_ATTEMPTS: usize = 5;

/// The writer's counters of one channel, as published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishedCounters {
    /// Records stored.
    pub records: u64,
    /// Payload bytes stored.
    pub bytes: u64,
    /// Records refused for a full disk.
    pub drops_full: u64,
    /// Records dropped for a full spool queue.
    pub drops_queue: u64,
    /// Records lost to another write error.
    pub drops_error: u64,
    /// Data of streams cut by an earlier drop.
    pub drops_cut: u64,
}

/// What the status file holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// The log's offsets and state.
    pub status: LogStatus,
    /// The writer's counters.
    pub counters: PublishedCounters,
}

/// Why a status file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PublishedError {
    /// It cannot be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// It is not a status file of this version, or stays torn.
    #[error(
        "{path}: not a weir spool status file of this version (written by another weir version, \
         or damaged); start weir-recv of this version on the spool, which rewrites it"
    )]
    Format {
        /// The file.
        path: String,
    },
}

impl Published {
    /// The file's bytes; `generation` counts writes.
    pub fn encode(&self, generation: u64) -> [u8; LEN] {
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(MAGIC);
        let s = &self.status;
        for v in [s.start, s.durable, s.end, s.bytes] {
            out.put_u64(v);
        }
        out.put_u8(u8::from(s.full));
        out.extend_from_slice(&[0; 7]);
        let c = &self.counters;
        for v in [
            c.records,
            c.bytes,
            c.drops_full,
            c.drops_queue,
            c.drops_error,
            c.drops_cut,
        ] {
            out.put_u64(v);
        }
        out.put_u64(generation);
        let crc = crc32c::crc32c(&out);
        out.put_u32(crc);
        let mut bytes = [0; LEN];
        bytes.copy_from_slice(&out);
        bytes
    }

    /// Parses the file's bytes; `None` if they are not a whole, valid status.
    pub fn decode(bytes: &[u8]) -> Option<Published> {
        let body = bytes.get(..CRC_AT)?;
        let mut r = Reader::new(bytes);
        if r.bytes(8)? != MAGIC {
            return None;
        }
        let status = LogStatus {
            start: r.u64()?,
            durable: r.u64()?,
            end: r.u64()?,
            bytes: r.u64()?,
            full: match r.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            },
        };
        r.bytes(7)?;
        let counters = PublishedCounters {
            records: r.u64()?,
            bytes: r.u64()?,
            drops_full: r.u64()?,
            drops_queue: r.u64()?,
            drops_error: r.u64()?,
            drops_cut: r.u64()?,
        };
        let _generation = r.u64()?;
        let crc = r.u32()?;
        if crc != crc32c::crc32c(body) || bytes.len() != LEN {
            return None;
        }
        let sane = status.start <= status.durable && status.durable <= status.end;
        sane.then_some(Published { status, counters })
    }
}

/// The writer's side: keeps the file open and rewrites it when what it says changed.
#[derive(Debug)]
pub struct StatusWriter {
    file: File,
    last: Option<Published>,
    generation: u64,
}

impl StatusWriter {
    /// Creates (or takes over) the status file in channel directory `dir`. Mode 0640: the
    /// delivery process reads it through its group.
    pub fn create(dir: &Path) -> io::Result<StatusWriter> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .open(dir.join(STATUS_FILE))?;
        Ok(StatusWriter {
            file,
            last: None,
            generation: 0,
        })
    }

    /// Writes `published` unless it is what the file already says.
    pub fn write(&mut self, published: &Published) -> io::Result<()> {
        if self.last.as_ref() == Some(published) {
            return Ok(());
        }
        self.generation = self.generation.wrapping_add(1);
        self.file.write_all_at(&published.encode(self.generation), 0)?;
        self.last = Some(*published);
        Ok(())
    }
}

/// Reads the status file of channel directory `dir`, retrying a read that caught a write
/// half-done.
pub fn read(dir: &Path) -> Result<Published, PublishedError> {
    let path = dir.join(STATUS_FILE);
    let io_error = |source| PublishedError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(&path).map_err(io_error)?;
    let mut buf = [0u8; LEN];
    for _ in 0..READ_ATTEMPTS {
        let n = file.read_at(&mut buf, 0).map_err(io_error)?;
        if let Some(published) = buf.get(..n).and_then(Published::decode) {
            return Ok(published);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err(PublishedError::Format {
        path: path.display().to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> Published {
        Published {
            status: LogStatus {
                start: 3,
                durable: 10,
                end: 12,
                bytes: 4096,
                full: true,
            },
            counters: PublishedCounters {
                records: 12,
                bytes: 3000,
                drops_full: 1,
                drops_queue: 2,
                drops_error: 3,
                drops_cut: 4,
            },
        }
    }

    #[test]
    fn round_trips_and_refuses_any_flipped_bit() {
        let bytes = sample().encode(7);
        assert_eq!(Published::decode(&bytes), Some(sample()));
        for bit in 0..LEN * 8 {
            let mut bad = bytes;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(Published::decode(&bad), None, "bit {bit}");
        }
        assert_eq!(Published::decode(&bytes[..LEN - 1]), None);
    }

    #[test]
    fn a_writer_and_a_reader_in_a_directory() {
        let dir = std::env::temp_dir().join(format!("weir-published-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(read(&dir), Err(PublishedError::Io { .. })));
        let mut writer = StatusWriter::create(&dir).unwrap();
        writer.write(&sample()).unwrap();
        assert_eq!(read(&dir).unwrap(), sample());
        let mut next = sample();
        next.status.durable = 12;
        writer.write(&next).unwrap();
        assert_eq!(read(&dir).unwrap(), next);
        std::fs::write(dir.join(STATUS_FILE), b"weirst0\nold").unwrap();
        let error = read(&dir).unwrap_err().to_string();
        assert!(error.contains("another weir version"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
