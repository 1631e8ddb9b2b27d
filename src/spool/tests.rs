//! Tests of the spool writer and reader together, on real files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::record::{RECORD_HEADER, SEGMENT_HEADER};
use super::*;

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

/// Writes `count` records into a single segment, returning them and the file length after each.
fn single_segment(dir: &Path, count: u64) -> (Vec<Record>, Vec<u64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(count);
    let (mut log, _) = ChannelLog::open(dir, config(1 << 30)).unwrap();
    let mut stored = Vec::new();
    let mut lens = vec![SEGMENT_HEADER as u64];
    for i in 0..count {
        let owned = random_record(&mut rng, i, 60);
        log.append(&owned.new_record(), Instant::now()).unwrap();
        stored.push(owned.record(i));
        lens.push(log.status().bytes);
    }
    log.sync().unwrap();
    (stored, lens)
}

#[test]
fn torn_tail_is_cut_at_every_length() {
    let tmp = TempDir::new("torn");
    let dir = tmp.chan();
    let (stored, lens) = single_segment(&dir, 6);
    let path = segment_path(&dir, 0);
    let full = fs::read(&path).unwrap();
    assert_eq!(full.len() as u64, lens[6]);
    // Every cut inside records 4 and 5 (0-based), and exactly at their ends.
    for cut in lens[4]..=lens[6] {
        fs::write(&path, &full[..cut as usize]).unwrap();
        let (mut log, recovery) = ChannelLog::open(&dir, config(1 << 30)).unwrap();
        let complete = lens.iter().rposition(|&l| l <= cut).unwrap();
        assert_eq!(recovery.records, complete as u64, "cut {cut}");
        assert_eq!(recovery.truncated_bytes, cut - lens[complete], "cut {cut}");
        assert_eq!(fs::metadata(&path).unwrap().len(), lens[complete]);
        let status = log.status();
        assert_eq!((status.end, status.durable), (complete as u64, complete as u64));
        let extra = NewRecord {
            seq: 9,
            time_ns: 9,
            stream: 9,
            kind: RecordKind::End,
            payload: b"after the cut",
        };
        assert_eq!(log.append(&extra, Instant::now()).unwrap(), complete as u64);
        log.sync().unwrap();
        let got = records(&read_all(&dir, 0, complete as u64 + 1, usize::MAX));
        assert_eq!(got[..complete], stored[..complete]);
        assert_eq!(got[complete].payload, b"after the cut");
    }

    // Garbage after valid records: random bytes, and a well-formed record with a wrong offset.
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut wrong_offset = Vec::new();
    record::encode(
        &mut wrong_offset,
        77,
        &random_record(&mut rng, 0, 20).new_record(),
    );
    let random: Vec<u8> = (0..300).map(|_| rng.random()).collect();
    for garbage in [random, wrong_offset, vec![0u8; RECORD_HEADER * 2]] {
        let mut bytes = full.clone();
        bytes.extend_from_slice(&garbage);
        fs::write(&path, &bytes).unwrap();
        let (log, recovery) = ChannelLog::open(&dir, config(1 << 30)).unwrap();
        assert_eq!(recovery.records, 6);
        assert_eq!(recovery.truncated_bytes, garbage.len() as u64);
        assert_eq!(log.status().end, 6);
        assert_eq!(records(&read_all(&dir, 0, 6, usize::MAX)), stored);
    }
}

#[test]
fn bad_segment_header_is_an_error_naming_the_file_and_nothing_is_deleted() {
    let tmp = TempDir::new("badheader");
    let dir = tmp.chan();
    let (mut log, _) = ChannelLog::open(&dir, config(200)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    fill(&mut log, &mut rng, 30, 50, Instant::now());
    drop(log);
    let bases = segment_bases(&dir);
    for &victim in [bases[0], bases[bases.len() / 2], bases[bases.len() - 1]].iter() {
        let path = segment_path(&dir, victim);
        let good = fs::read(&path).unwrap();
        let mut bad = good.clone();
        bad[3] ^= 0x40;
        fs::write(&path, &bad).unwrap();
        match ChannelLog::open(&dir, config(200)) {
            Err(SpoolError::BadSegment { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected BadSegment for {}, got {other:?}", path.display()),
        }
        assert_eq!(fs::read(&path).unwrap(), bad, "recovery must not touch the file");
        assert_eq!(segment_bases(&dir), bases);
        fs::write(&path, &good).unwrap();
    }
    assert!(ChannelLog::open(&dir, config(200)).is_ok());
}

/// Ways to damage the record at a given file position.
#[derive(Debug, Clone, Copy)]
enum Damage {
    PayloadBit,
    HugeLength,
    OffsetField,
    CrcField,
    /// A well-formed record (valid CRC) with the next record's offset.
    WrongOffset,
    /// The file ends inside the record's payload (or header, if the payload is empty).
    Truncated,
}

#[test]
fn corrupt_record_is_never_returned_and_reading_continues() {
    for damage in [
        Damage::PayloadBit,
        Damage::HugeLength,
        Damage::OffsetField,
        Damage::CrcField,
        Damage::Truncated,
        Damage::WrongOffset,
    ] {
        for which in ["first", "middle", "last"] {
            let tmp = TempDir::new("corrupt");
            let dir = tmp.chan();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let (mut log, _) = ChannelLog::open(&dir, config(600)).unwrap();
            let stored = fill(&mut log, &mut rng, 80, 60, Instant::now());
            log.sync().unwrap();
            let limit = log.status().durable;
            let bases = segment_bases(&dir);
            assert!(bases.len() >= 4);
            let seg = match which {
                "first" => 0,
                "middle" => bases.len() / 2,
                _ => bases.len() - 1,
            };
            let base = bases[seg];
            let next = bases.get(seg + 1).copied().unwrap_or(limit);
            // Damage the second record of the segment (or the first if it holds only one).
            let victim = if next - base > 1 { base + 1 } else { base };
            let path = segment_path(&dir, base);
            let mut bytes = fs::read(&path).unwrap();
            let mut pos = SEGMENT_HEADER;
            for r in &stored[base as usize..victim as usize] {
                pos += RECORD_HEADER + r.payload.len();
            }
            match damage {
                Damage::PayloadBit if !stored[victim as usize].payload.is_empty() => {
                    bytes[pos + RECORD_HEADER] ^= 0x10
                }
                Damage::PayloadBit | Damage::CrcField => bytes[pos + 5] ^= 0x01,
                Damage::HugeLength => bytes[pos..pos + 4].copy_from_slice(&u32::MAX.to_be_bytes()),
                Damage::OffsetField => bytes[pos + 15] ^= 0x02,
                Damage::WrongOffset => {
                    let r = &stored[victim as usize];
                    let new = NewRecord {
                        seq: r.seq,
                        time_ns: r.time_ns,
                        stream: r.stream,
                        kind: r.kind,
                        payload: &r.payload,
                    };
                    let mut encoded = Vec::new();
                    record::encode(&mut encoded, victim + 1, &new);
                    bytes[pos..pos + encoded.len()].copy_from_slice(&encoded);
                }
                Damage::Truncated => {
                    bytes.truncate(pos + RECORD_HEADER + stored[victim as usize].payload.len() - 1)
                }
            }
            fs::write(&path, &bytes).unwrap();

            // From before the damage, at it, and past it within the same segment (the cursor
            // must not seek over a bad record to get there).
            for from in [0, base, victim, victim + 1] {
                // A cursor starting past a record whose header is intact seeks over it and
                // reads on (each record it returns has its own CRC checked); any other damage
                // stops the seek and skips to the next segment.
                let header_intact = matches!(damage, Damage::PayloadBit | Damage::CrcField);
                let bad = if from > victim && header_intact {
                    victim..victim
                } else {
                    from.max(victim)..next
                };
                let items = read_all(&dir, from, limit, 256);
                let got = records(&items);
                assert!(
                    got.iter().all(|r| r.offset != victim),
                    "{damage:?} {which}: the damaged record was returned"
                );
                let want: Vec<Record> = stored[from as usize..]
                    .iter()
                    .filter(|r| !bad.contains(&r.offset))
                    .cloned()
                    .collect();
                assert_eq!(got, want, "{damage:?} {which} from {from}");
                let gaps: Vec<&Item> = items.iter().filter(|i| matches!(i, Item::Gap { .. })).collect();
                if bad.is_empty() {
                    assert!(gaps.is_empty(), "{damage:?} {which} from {from}: {gaps:?}");
                } else {
                    let gap = Item::Gap {
                        from: bad.start,
                        to: bad.end,
                        reason: GapReason::Corrupt,
                    };
                    assert_eq!(gaps, [&gap], "{damage:?} {which} from {from}");
                }
            }
        }
    }
}

#[test]
fn retention_by_bytes_moves_start_and_cursor_reports_the_gap() {
    let tmp = TempDir::new("retain-bytes");
    let dir = tmp.chan();
    let mut cfg = config(500);
    cfg.retain_bytes = Some(2000);
    let now = Instant::now();
    let (mut log, _) = ChannelLog::open(&dir, cfg.clone()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);

    // A reader that has started on the first segment before it is deleted.
    let first = fill(&mut log, &mut rng, 6, 40, now);
    log.sync().unwrap();
    let mut early = Cursor::new(&dir, 0);
    let mut early_items = Vec::new();
    early.read(2, usize::MAX, &mut early_items).unwrap();
    assert_eq!(records(&early_items), first[..2]);

    let stored = [first, fill(&mut log, &mut rng, 200, 40, now)].concat();
    log.tick(now, 0).unwrap();
    log.sync().unwrap();
    let status = log.status();
    let bases = segment_bases(&dir);
    assert!(status.start > 0);
    assert_eq!(status.start, bases[0]);
    assert_eq!(status.bytes, disk_bytes(&dir));
    assert!(status.bytes <= 2000, "{status:?}");

    let items = read_all(&dir, 0, status.end, usize::MAX);
    assert_eq!(
        items[0],
        Item::Gap {
            from: 0,
            to: status.start,
            reason: GapReason::Retention
        }
    );
    assert_eq!(records(&items), stored[status.start as usize..]);

    // The early reader finishes its open (deleted) segment, then reports the gap.
    while early.position() < status.end {
        early.read(status.end, 100, &mut early_items).unwrap();
    }
    let gaps: Vec<&Item> = early_items
        .iter()
        .filter(|i| matches!(i, Item::Gap { .. }))
        .collect();
    let [Item::Gap { from, to, reason }] = gaps[..] else {
        panic!("expected one gap: {early_items:?}")
    };
    assert_eq!((*to, *reason), (status.start, GapReason::Retention));
    assert!(*from > 2, "the open segment is read to its end");
    let want = [&stored[..*from as usize], &stored[status.start as usize..]].concat();
    assert_eq!(records(&early_items), want);
}

#[test]
fn retention_by_age_deletes_old_segments_but_never_the_active_one() {
    let tmp = TempDir::new("retain-age");
    let dir = tmp.chan();
    let mut cfg = config(400);
    cfg.retain_age = Some(Duration::from_secs(30));
    let now = Instant::now();
    let (mut log, _) = ChannelLog::open(&dir, cfg.clone()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    // Record i has time_ns (i + 1) s.
    let stored = fill(&mut log, &mut rng, 100, 30, now);
    log.sync().unwrap();
    let bases = segment_bases(&dir);
    assert!(bases.len() >= 5);
    let newest_of = |seg: usize| -> u64 {
        let end = bases.get(seg + 1).copied().unwrap_or(100);
        stored[bases[seg] as usize..end as usize]
            .iter()
            .map(|r| r.time_ns)
            .max()
            .unwrap()
    };
    let expected_start = |cutoff: u64| -> u64 {
        let mut i = 0;
        while i + 1 < bases.len() && newest_of(i) < cutoff {
            i += 1;
        }
        bases[i]
    };

    // Nothing is old yet.
    let age = 30_000_000_000;
    log.tick(now, newest_of(0) + age - 1).unwrap();
    assert_eq!(log.status().start, 0);
    // The first segment's newest record is now just past the age.
    log.tick(now, newest_of(0) + age + 1).unwrap();
    assert_eq!(log.status().start, bases[1]);

    // A reopened log learns older segments' times by scanning them.
    drop(log);
    let (mut log, _) = ChannelLog::open(&dir, cfg).unwrap();
    let cutoff = newest_of(2) + 1;
    log.tick(now, cutoff + age).unwrap();
    assert_eq!(log.status().start, expected_start(cutoff));
    assert_eq!(log.status().start, bases[3]);

    // Everything is old: only the active segment remains.
    log.tick(now, u64::MAX).unwrap();
    let status = log.status();
    assert_eq!(status.start, *bases.last().unwrap());
    assert_eq!(segment_bases(&dir), vec![status.start]);
    assert_eq!(status.bytes, disk_bytes(&dir));
    let items = read_all(&dir, 0, status.end, usize::MAX);
    assert_eq!(
        items[0],
        Item::Gap {
            from: 0,
            to: status.start,
            reason: GapReason::Retention
        }
    );
    assert_eq!(records(&items), stored[status.start as usize..]);
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
fn durable_advances_only_after_fsync_by_interval() {
    let tmp = TempDir::new("durable-interval");
    let dir = tmp.chan();
    let mut cfg = config(1 << 20);
    cfg.fsync_interval = Duration::from_millis(100);
    let t0 = Instant::now();
    let (mut log, _) = ChannelLog::open(&dir, cfg).unwrap();
    assert_eq!(log.poll_timeout(), None);
    log.append(&small(0).new_record(), t0).unwrap();
    log.append(&small(1).new_record(), t0 + Duration::from_millis(60))
        .unwrap();
    assert_eq!((log.status().durable, log.status().end), (0, 2));
    // The first unsynced append sets the deadline.
    assert_eq!(log.poll_timeout(), Some(t0 + Duration::from_millis(100)));
    // A reader sees nothing below durable.
    assert!(read_all(&dir, 0, log.status().durable, usize::MAX).is_empty());
    log.tick(t0 + Duration::from_millis(99), 0).unwrap();
    assert_eq!(log.status().durable, 0);
    log.tick(t0 + Duration::from_millis(100), 0).unwrap();
    assert_eq!(log.status().durable, 2);
    assert_eq!(log.poll_timeout(), None);
    assert_eq!(records(&read_all(&dir, 0, 2, usize::MAX)).len(), 2);

    let t1 = t0 + Duration::from_secs(5);
    log.append(&small(2).new_record(), t1).unwrap();
    assert_eq!(log.poll_timeout(), Some(t1 + Duration::from_millis(100)));
    log.tick(t1 + Duration::from_millis(50), 0).unwrap();
    assert_eq!(log.status().durable, 2);
    log.sync().unwrap();
    assert_eq!(log.status().durable, 3);
    assert_eq!(log.poll_timeout(), None);
}

#[test]
fn durable_advances_by_bytes_and_when_rolling() {
    let tmp = TempDir::new("durable-bytes");
    let dir = tmp.chan();
    let size = (RECORD_HEADER + 60) as u64;
    let mut cfg = config(1 << 20);
    cfg.fsync_bytes = 3 * size;
    let t0 = Instant::now();
    let (mut log, _) = ChannelLog::open(&dir, cfg).unwrap();
    for i in 0..2 {
        log.append(&small(i).new_record(), t0).unwrap();
    }
    assert_eq!((log.status().durable, log.status().end), (0, 2));
    log.append(&small(2).new_record(), t0).unwrap();
    assert_eq!((log.status().durable, log.status().end), (3, 3));
    assert_eq!(log.poll_timeout(), None);
    log.append(&small(3).new_record(), t0).unwrap();
    assert_eq!(log.status().durable, 3);
    drop(log);

    // No fsync by bytes or time: rolling still makes the old segment durable.
    let tmp = TempDir::new("durable-roll");
    let dir = tmp.chan();
    let (mut log, _) = ChannelLog::open(&dir, config(3 * size)).unwrap();
    for i in 0..3 {
        log.append(&small(i).new_record(), t0).unwrap();
    }
    assert_eq!(log.status().durable, 0);
    log.append(&small(3).new_record(), t0).unwrap();
    assert_eq!(segment_bases(&dir), vec![0, 3]);
    assert_eq!((log.status().durable, log.status().end), (3, 4));
}

/// Whether this process runs as root (uid 0).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Self {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs on {} failed", dir.display());
        Self(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_on_a_real_small_filesystem() {
    if !is_root() {
        if std::env::var("WEIR_REQUIRE_ROOT").as_deref() == Ok("1") {
            panic!("disk_full_on_a_real_small_filesystem needs root (WEIR_REQUIRE_ROOT=1)");
        }
        eprintln!("skipping disk_full_on_a_real_small_filesystem: not root");
        return;
    }
    let tmp = TempDir::new("full");
    let mount = Mount::tmpfs(&tmp.0, "1m");
    let dir = tmp.chan();
    let mut cfg = config(256 << 10);
    cfg.fsync_bytes = 0;
    let t0 = Instant::now();
    let (mut log, _) = ChannelLog::open(&dir, cfg.clone()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut stored = fill(&mut log, &mut rng, 20, 1000, t0);

    // Fill the filesystem with another file.
    let filler = tmp.0.join("filler");
    {
        use std::io::Write;
        let mut f = fs::File::create(&filler).unwrap();
        let chunk = vec![0xaau8; 16 << 10];
        let err = loop {
            if let Err(e) = f.write_all(&chunk) {
                break e;
            }
        };
        assert!(is_full(&err), "{err}");
    }

    // Appends fill the last partial pages, then fail with Full; nothing torn remains.
    let err = (0..1000)
        .find_map(|_| {
            let i = log.status().end;
            let owned: Vec<Owned> = (i..i + 3).map(|k| random_record(&mut rng, k, 3000)).collect();
            let batch: Vec<NewRecord<'_>> = owned.iter().map(Owned::new_record).collect();
            match log.append_batch(&batch, t0) {
                Ok(range) => {
                    stored.extend(owned.iter().zip(range).map(|(o, off)| o.record(off)));
                    None
                }
                Err(e) => Some(e),
            }
        })
        .expect("the filesystem never filled up");
    assert!(matches!(err, AppendError::Full(_)), "{err:?}");
    let end = log.status().end;
    assert_eq!(end, stored.len() as u64);
    assert!(log.status().full);
    assert_eq!(log.status().durable, end);
    assert_eq!(log.status().bytes, disk_bytes(&dir));
    assert_eq!(log.poll_timeout(), Some(t0 + FULL_RETRY));

    let one = small(0);
    // Refused at once while full; retried after FULL_RETRY (still full).
    let refused = log.append(&one.new_record(), t0 + Duration::from_millis(10));
    assert!(matches!(refused, Err(AppendError::Full(_))));
    // (A record larger than the failed batch: it cannot fit in what is left.)
    let big = Owned {
        payload: vec![1; 64 << 10],
        ..small(0)
    };
    let retried = log.append(&big.new_record(), t0 + FULL_RETRY);
    assert!(matches!(retried, Err(AppendError::Full(_))));
    let t1 = t0 + FULL_RETRY;
    assert_eq!(log.status().end, end);

    // Everything stored reads back intact.
    assert_eq!(records(&read_all(&dir, 0, end, usize::MAX)), stored);

    // Space comes back, but the log keeps refusing until the retry time.
    fs::remove_file(&filler).unwrap();
    let refused = log.append(&one.new_record(), t1 + Duration::from_millis(500));
    assert!(matches!(refused, Err(AppendError::Full(_))));
    assert!(log.status().full);
    log.tick(t1 + FULL_RETRY, 0).unwrap();
    assert_eq!(log.poll_timeout(), None);
    let at = log.append(&one.new_record(), t1 + FULL_RETRY).unwrap();
    assert_eq!(at, end, "offsets continue without a hole");
    assert!(!log.status().full);
    stored.push(one.record(end));
    let more = fill(&mut log, &mut rng, 10, 1000, t1 + FULL_RETRY);
    stored.extend(more);
    log.sync().unwrap();
    let items = read_all(&dir, 0, log.status().durable, 4096);
    assert!(items.iter().all(|i| matches!(i, Item::Record(_))));
    assert_eq!(records(&items), stored);

    drop(log);
    let (log, recovery) = ChannelLog::open(&dir, cfg).unwrap();
    assert_eq!(recovery.truncated_bytes, 0);
    assert_eq!(log.status().end, stored.len() as u64);
    drop(log);
    drop(mount);
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
