//! Tests of the spool writer and reader together, on real files: shared helpers and the
//! round trip here; recovery and corruption, retention and durability, and disk full in the
//! submodules.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::record::SEGMENT_HEADER;
use super::*;

mod full;
mod recovery;
mod retention;

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("weir-spool-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn chan(&self) -> PathBuf {
        self.0.join("chan")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        fsync_interval: Duration::from_secs(3600),
        fsync_bytes: u64::MAX,
        retain_bytes: None,
        retain_age: None,
    }
}

/// An owned record to append: (seq, time_ns, stream, kind, payload).
#[derive(Debug, Clone)]
struct Owned {
    seq: u64,
    time_ns: u64,
    stream: u32,
    kind: RecordKind,
    payload: Vec<u8>,
}

impl Owned {
    fn new_record(&self) -> NewRecord<'_> {
        NewRecord {
            seq: self.seq,
            time_ns: self.time_ns,
            stream: self.stream,
            kind: self.kind,
            payload: &self.payload,
        }
    }

    fn record(&self, offset: u64) -> Record {
        Record {
            offset,
            seq: self.seq,
            time_ns: self.time_ns,
            stream: self.stream,
            kind: self.kind,
            payload: self.payload.clone(),
        }
    }
}

fn random_record(rng: &mut ChaCha8Rng, i: u64, max_len: usize) -> Owned {
    let kinds = [
        RecordKind::Data,
        RecordKind::Open,
        RecordKind::End,
        RecordKind::Abort,
        RecordKind::Lost,
    ];
    let len = rng.random_range(0..=max_len);
    Owned {
        seq: 1000 + i,
        time_ns: 1_000_000_000 * (i + 1),
        stream: rng.random_range(0..4),
        kind: kinds[rng.random_range(0..kinds.len())],
        payload: (0..len).map(|_| rng.random()).collect(),
    }
}

/// Appends `count` random records in random batches; returns what was stored, by offset.
fn fill(log: &mut ChannelLog, rng: &mut ChaCha8Rng, count: u64, max_len: usize, now: Instant) -> Vec<Record> {
    let mut stored = Vec::new();
    let mut i = log.status().end;
    let stop = i + count;
    while i < stop {
        let n = rng.random_range(1..=4).min(stop - i);
        let owned: Vec<Owned> = (i..i + n).map(|k| random_record(rng, k, max_len)).collect();
        let batch: Vec<NewRecord<'_>> = owned.iter().map(Owned::new_record).collect();
        let range = log.append_batch(&batch, now).unwrap();
        assert_eq!(range, i..i + n, "offsets must be consecutive");
        stored.extend(owned.iter().zip(range).map(|(o, off)| o.record(off)));
        i += n;
    }
    stored
}

/// Reads everything from `from` below `limit`, checking each call yields something while
/// anything is left.
fn read_all(dir: &Path, from: u64, limit: u64, max_bytes: usize) -> Vec<Item> {
    let mut cursor = Cursor::new(dir, from);
    let mut out = Vec::new();
    while cursor.position() < limit {
        let before = out.len();
        cursor.read(limit, max_bytes, &mut out).unwrap();
        assert!(
            out.len() > before,
            "no progress at {} below {limit}",
            cursor.position()
        );
    }
    assert_eq!(cursor.position(), limit);
    out
}

fn records(items: &[Item]) -> Vec<Record> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Record(r) => Some(r.clone()),
            Item::Gap { .. } => None,
        })
        .collect()
}

fn segment_bases(dir: &Path) -> Vec<u64> {
    list_segments(dir).unwrap()
}

fn disk_bytes(dir: &Path) -> u64 {
    segment_bases(dir)
        .iter()
        .map(|&b| fs::metadata(segment_path(dir, b)).unwrap().len())
        .sum()
}

fn small(i: u64) -> Owned {
    Owned {
        seq: i,
        time_ns: i,
        stream: 1,
        kind: RecordKind::Data,
        payload: vec![i as u8; 60],
    }
}

#[test]
fn round_trip_across_segment_rolls() {
    let tmp = TempDir::new("roundtrip");
    let dir = tmp.chan();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let now = Instant::now();
    let (mut log, recovery) = ChannelLog::open(&dir, config(700)).unwrap();
    assert_eq!(
        recovery,
        Recovery {
            segments: 1,
            records: 0,
            truncated_bytes: 0
        }
    );
    let stored = fill(&mut log, &mut rng, 120, 90, now);
    log.sync().unwrap();
    let status = log.status();
    assert_eq!((status.start, status.durable, status.end), (0, 120, 120));
    assert_eq!(status.bytes, disk_bytes(&dir));
    let bases = segment_bases(&dir);
    assert!(bases.len() >= 4, "expected several segments, got {bases:?}");

    for max_bytes in [0, 100, 1000, usize::MAX] {
        let items = read_all(&dir, 0, 120, max_bytes);
        assert_eq!(items.len(), 120);
        assert_eq!(records(&items), stored);
    }
    for from in 0..=120 {
        let items = read_all(&dir, from, 120, 500);
        assert_eq!(records(&items), stored[from as usize..], "from {from}");
    }
    // Never past the limit, and nothing at or beyond it.
    let items = read_all(&dir, 10, 37, usize::MAX);
    assert_eq!(records(&items), stored[10..37]);
    let mut out = Vec::new();
    let mut at_limit = Cursor::new(&dir, 50);
    at_limit.read(50, usize::MAX, &mut out).unwrap();
    at_limit.read(20, usize::MAX, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(at_limit.position(), 50);

    // A cursor kept across appends and rolls picks up where it stopped.
    let mut cursor = Cursor::new(&dir, 0);
    let mut items = Vec::new();
    cursor.read(120, usize::MAX, &mut items).unwrap();
    let more = fill(&mut log, &mut rng, 60, 90, now);
    log.sync().unwrap();
    while cursor.position() < 180 {
        cursor.read(180, 300, &mut items).unwrap();
    }
    assert_eq!(records(&items), [stored.clone(), more.clone()].concat());

    // Reopening keeps everything and continues the offsets.
    drop(log);
    let (mut log, recovery) = ChannelLog::open(&dir, config(700)).unwrap();
    let bases = segment_bases(&dir);
    assert_eq!(recovery.segments, bases.len());
    assert_eq!(recovery.records, 180 - bases.last().unwrap());
    assert_eq!(recovery.truncated_bytes, 0);
    assert_eq!(log.status().end, 180);
    assert_eq!(log.status().durable, 180);
    let owned = random_record(&mut rng, 180, 10);
    assert_eq!(log.append(&owned.new_record(), now).unwrap(), 180);
}

#[test]
fn oversized_payload_is_refused_and_nothing_of_the_batch_is_stored() {
    let tmp = TempDir::new("toolarge");
    let (mut log, _) = ChannelLog::open(&tmp.chan(), config(1 << 20)).unwrap();
    let big = vec![0u8; MAX_RECORD + 1];
    let ok = NewRecord {
        seq: 1,
        time_ns: 1,
        stream: 0,
        kind: RecordKind::Data,
        payload: b"ok",
    };
    let too_large = NewRecord { payload: &big, ..ok };
    let now = Instant::now();
    assert!(matches!(
        log.append_batch(&[ok, too_large], now),
        Err(AppendError::TooLarge)
    ));
    assert_eq!(log.status().end, 0);
    assert_eq!(log.status().bytes, SEGMENT_HEADER as u64);
    assert_eq!(log.append(&ok, now).unwrap(), 0);
    let lost = 7u64.to_be_bytes();
    let lost = NewRecord {
        kind: RecordKind::Lost,
        payload: &lost,
        ..ok
    };
    assert_eq!(log.append(&lost, now).unwrap(), 1);
    log.sync().unwrap();
    let items = read_all(&tmp.chan(), 0, 2, usize::MAX);
    let got = records(&items);
    assert_eq!(got[0].lost_count(), None);
    assert_eq!(got[1].lost_count(), Some(7));
}

#[test]
fn other_files_are_ignored_and_stale_temporaries_removed() {
    let tmp = TempDir::new("others");
    let dir = tmp.chan();
    fs::create_dir_all(&dir).unwrap();
    let stale = dir.join(format!("{:020}.log.tmp", 5));
    fs::write(&stale, b"half a header").unwrap();
    for name in [
        "README",
        "123.log",
        "0000000000000000000x.log",
        "00000000000000000000.log.bak",
    ] {
        fs::write(dir.join(name), b"not a segment").unwrap();
    }
    let (mut log, recovery) = ChannelLog::open(&dir, config(300)).unwrap();
    assert_eq!(recovery.segments, 1);
    assert!(!stale.exists());
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let stored = fill(&mut log, &mut rng, 20, 40, Instant::now());
    log.sync().unwrap();
    assert_eq!(records(&read_all(&dir, 0, 20, usize::MAX)), stored);
    drop(log);
    let (log, _) = ChannelLog::open(&dir, config(300)).unwrap();
    assert_eq!(log.status().end, 20);
    assert!(dir.join("README").exists() && dir.join("123.log").exists());
    assert_eq!(list_channel_dirs(&tmp.0).unwrap(), vec![dir.clone()]);
}
