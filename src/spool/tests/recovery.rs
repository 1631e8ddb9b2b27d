//! Recovery of torn tails and bad headers; readers skipping corrupt records.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;
use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::record::{self, RECORD_HEADER, SEGMENT_HEADER};
use super::*;

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

/// A cursor that read ahead past `durable` never serves those bytes after the writer replaced
/// them (a failed write cut back and written again, as on a full disk).
#[test]
fn read_ahead_bytes_replaced_after_a_cut_back_are_never_served() {
    let tmp = TempDir::new("stale");
    let dir = tmp.chan();
    let now = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut log, _) = ChannelLog::open(&dir, config(1 << 20)).unwrap();
    let durable = fill(&mut log, &mut rng, 3, 100, now);
    log.sync().unwrap();
    // Two more records reach the file but not the disk; the cursor's buffer reads them ahead.
    let first_tail = fill(&mut log, &mut rng, 2, 100, now);
    let mut cursor = Cursor::new(&dir, 0);
    let mut out = Vec::new();
    cursor.read(3, 1 << 20, &mut out).unwrap();
    assert_eq!(out, durable.iter().cloned().map(Item::Record).collect::<Vec<_>>());
    // The tail is cut back (as `append_batch` does after a failed write) and replaced.
    drop(log);
    let segment = super::segment_path(&dir, 0);
    let cut = fs::metadata(&segment).unwrap().len()
        - first_tail
            .iter()
            .map(|r| (RECORD_HEADER + r.payload.len()) as u64)
            .sum::<u64>();
    fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let (mut log, _) = ChannelLog::open(&dir, config(1 << 20)).unwrap();
    let replaced = fill(&mut log, &mut rng, 2, 100, now);
    log.sync().unwrap();
    assert_ne!(replaced, first_tail);
    out.clear();
    cursor.read(5, 1 << 20, &mut out).unwrap();
    assert_eq!(out, replaced.into_iter().map(Item::Record).collect::<Vec<_>>());
}
