//! The spool that `weir-recv` writes, mirrored into a [`SpoolView`] in this process.
//!
//! Contract:
//! - One thread watches every channel's status file ([`crate::spool::published`]) with
//!   inotify and re-reads it when it changes, so readers wake within a millisecond of a write
//!   without polling; it also re-reads everything every [`RESCAN`], which picks up a status
//!   file that appears later (weir-recv started after weir-deliver) or a watch that was lost.
//! - A channel's status only moves forward through the view as the file says; a file that
//!   cannot be read (missing, from another version, the spool removed) keeps the last status
//!   and logs one error naming the file and what to do, and one line when it is readable again.
//!   Nothing restarts from offset 0.
//! - The counters of the view are weir-recv's, as last published.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::sync::watch;

use crate::spool::published::{self, Published, PublishedError, STATUS_FILE};
use crate::spool::view::{ChannelView, SpoolCounters, SpoolView};
use crate::spool::LogStatus;

/// Longest time between two reads of every status file.
pub const RESCAN: Duration = Duration::from_millis(500);

struct Watched {
    name: String,
    dir: PathBuf,
    status: watch::Sender<LogStatus>,
    counters: Arc<SpoolCounters>,
    watch: Option<WatchDescriptor>,
    /// The error last logged, so each is logged once.
    failing: Option<String>,
}

/// The running watcher; stops when dropped.
#[derive(Debug)]
pub struct SpoolWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for SpoolWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts watching `channels` (their names) under the spool directory `root`.
pub fn start(root: &Path, channels: &[String]) -> std::io::Result<(SpoolView, SpoolWatch)> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    let mut views = BTreeMap::new();
    let mut watched = Vec::new();
    for name in channels {
        let dir = root.join(name);
        let (tx, rx) = watch::channel(LogStatus::default());
        let counters = Arc::new(SpoolCounters::default());
        views.insert(
            name.clone(),
            ChannelView {
                name: name.clone(),
                dir: dir.clone(),
                status: rx,
                counters: counters.clone(),
            },
        );
        watched.push(Watched {
            name: name.clone(),
            dir,
            status: tx,
            counters,
            watch: None,
            failing: None,
        });
    }
    let (changed_tx, changed_rx) = watch::channel(0u64);
    // The first pass before returning: a reader that starts now sees what is there.
    let mut any = false;
    for w in &mut watched {
        any |= refresh(&inotify, w);
    }
    if any {
        changed_tx.send_modify(|g| *g = g.wrapping_add(1));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("spool-watch".into())
        .spawn(move || run(inotify, watched, changed_tx, &thread_stop))?;
    let view = SpoolView {
        channels: views,
        changed: changed_rx,
    };
    Ok((
        view,
        SpoolWatch {
            stop,
            thread: Some(thread),
        },
    ))
}

fn run(inotify: Inotify, mut watched: Vec<Watched>, changed: watch::Sender<u64>, stop: &AtomicBool) {
    let poll_ms = u16::try_from(RESCAN.as_millis()).unwrap_or(u16::MAX);
    while !stop.load(Ordering::Relaxed) {
        let woke = {
            let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::from(poll_ms)), Ok(n) if n > 0)
        };
        // Which watches fired; a rescan (timeout) reads them all.
        let mut fired: HashSet<WatchDescriptor> = HashSet::new();
        if woke {
            while let Ok(events) = inotify.read_events() {
                if events.is_empty() {
                    break;
                }
                for event in events {
                    fired.insert(event.wd);
                }
            }
        }
        let mut any = false;
        for w in &mut watched {
            let due = !woke || w.watch.is_none() || w.watch.is_some_and(|wd| fired.contains(&wd));
            if due {
                any |= refresh(&inotify, w);
            }
        }
        if any {
            changed.send_modify(|g| *g = g.wrapping_add(1));
        }
    }
}

/// Re-reads one channel's status file (adding its inotify watch if it has none); true when
/// the status moved.
fn refresh(inotify: &Inotify, w: &mut Watched) -> bool {
    let file = w.dir.join(STATUS_FILE);
    if w.watch.is_none() {
        let flags = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF;
        w.watch = inotify.add_watch(&file, flags).ok();
    }
    match published::read(&w.dir) {
        Ok(Published { status, counters }) => {
            if w.failing.take().is_some() {
                tracing::info!(channel = %w.name, file = %file.display(), "spool status readable again");
            }
            let c = &w.counters;
            c.records.store(counters.records, Ordering::Relaxed);
            c.bytes.store(counters.bytes, Ordering::Relaxed);
            c.drops_full.store(counters.drops_full, Ordering::Relaxed);
            c.drops_queue.store(counters.drops_queue, Ordering::Relaxed);
            c.drops_error.store(counters.drops_error, Ordering::Relaxed);
            c.drops_cut.store(counters.drops_cut, Ordering::Relaxed);
            c.full.store(status.full, Ordering::Relaxed);
            w.status.send_if_modified(|old| {
                let moved = *old != status;
                *old = status;
                moved
            })
        }
        Err(error) => {
            // The file is gone or replaced: watch it anew next time.
            if let Some(wd) = w.watch.take() {
                let _ = inotify.rm_watch(wd);
            }
            let text = error.to_string();
            if w.failing.as_deref() != Some(text.as_str()) {
                let hint = match &error {
                    PublishedError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                        "weir-recv has not written this channel yet (start it, or check that both \
                         daemons read the same recv.spool); an older weir-recv writes no status \
                         file: upgrade it"
                    }
                    PublishedError::Io { .. } => {
                        "check the spool's owner, group and modes: weir-deliver reads it through \
                         the spool's group (dist/README.md)"
                    }
                    PublishedError::Format { .. } => "",
                };
                tracing::error!(channel = %w.name, %error, hint, "spool status unreadable; serving what was read before");
                w.failing = Some(text);
            }
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::spool::published::{PublishedCounters, StatusWriter};
    use std::time::Instant;

    fn status(durable: u64, end: u64) -> Published {
        Published {
            status: LogStatus {
                start: 0,
                durable,
                end,
                bytes: 100,
                full: false,
            },
            counters: PublishedCounters {
                records: end,
                ..PublishedCounters::default()
            },
        }
    }

    #[test]
    fn a_status_write_reaches_the_view_at_once_and_a_late_channel_is_picked_up() {
        let root = std::env::temp_dir().join(format!("weir-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a")).unwrap();
        let mut a = StatusWriter::create(&root.join("a")).unwrap();
        a.write(&status(1, 2)).unwrap();
        let (view, _watch) = start(&root, &["a".to_owned(), "b".to_owned()]).unwrap();
        let mut a_rx = view.channels["a"].status.clone();
        assert_eq!(
            a_rx.borrow_and_update().durable,
            1,
            "the first pass reads what is there"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // A write wakes the watcher through inotify, well before the rescan.
        let started = Instant::now();
        a.write(&status(2, 3)).unwrap();
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), a_rx.changed())
                .await
                .unwrap()
                .unwrap();
        });
        assert_eq!(a_rx.borrow().durable, 2);
        assert!(started.elapsed() < RESCAN, "{:?}", started.elapsed());
        assert_eq!(view.channels["a"].counters.records.load(Ordering::Relaxed), 3);
        // Channel b has no status file yet: it appears later and is read by a rescan.
        std::fs::create_dir_all(root.join("b")).unwrap();
        let mut b = StatusWriter::create(&root.join("b")).unwrap();
        b.write(&status(5, 5)).unwrap();
        let mut b_rx = view.channels["b"].status.clone();
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), async {
                while b_rx.borrow_and_update().durable != 5 {
                    b_rx.changed().await.unwrap();
                }
            })
            .await
            .unwrap();
        });
        // The spool removed under us: the last status stays.
        std::fs::remove_dir_all(&root).unwrap();
        std::thread::sleep(RESCAN * 2);
        assert_eq!(view.channels["a"].status.borrow().durable, 2);
    }
}
