//! Retention by bytes and by age; durability by interval, by bytes and when rolling.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::super::record::RECORD_HEADER;
use super::*;

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
