//! Disk full on a real, small tmpfs (root only).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;

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
