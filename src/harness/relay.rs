//! An in-process impairment relay for the link: receives datagrams on one port and forwards
//! them to another, dropping (independently or in bursts), reordering, duplicating and
//! corrupting them with a seeded RNG, so a failing run reproduces.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::{Rng, SeedableRng};

use crate::net::{RecvLink, SendLink};

/// What the relay does to traffic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairment {
    /// Long-run fraction of datagrams dropped.
    pub loss: f64,
    /// Mean length of a loss burst; 1 or less means independent losses.
    pub burst: f64,
    /// Fraction of datagrams held back and sent after a few later ones.
    pub reorder: f64,
    /// Fraction of datagrams sent twice.
    pub duplicate: f64,
    /// Fraction of datagrams with one bit flipped.
    pub corrupt: f64,
    /// RNG seed.
    pub seed: u64,
    /// Drop this run of consecutive data-symbol datagrams: (index of the first, counting
    /// data symbols from 0, and how many). Heartbeats pass. A run of at least `2 × (k + r)`
    /// takes out at least one whole block.
    pub drop_run: Option<(u64, u64)>,
}

/// What the relay did.
#[derive(Debug, Default)]
pub struct RelayCounters {
    /// Datagrams received.
    pub received: AtomicU64,
    /// Datagrams forwarded (duplicates count twice).
    pub forwarded: AtomicU64,
    /// UDP payload bytes forwarded.
    pub forwarded_bytes: AtomicU64,
    /// Datagrams dropped.
    pub dropped: AtomicU64,
    /// Datagrams corrupted.
    pub corrupted: AtomicU64,
    /// Datagrams duplicated.
    pub duplicated: AtomicU64,
    /// Datagrams reordered.
    pub reordered: AtomicU64,
}

/// A running relay; stops when dropped.
#[derive(Debug)]
pub struct Relay {
    /// Where to send the link's datagrams.
    pub listen: SocketAddr,
    /// Counters.
    pub counters: Arc<RelayCounters>,
    /// Copies of the first datagrams received (see [`Relay::start_capturing`]), for replays.
    pub captured: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying from `listen` (port 0 picks one) to `target`.
    pub fn start(listen: SocketAddr, target: SocketAddr, imp: Impairment) -> io::Result<Relay> {
        Self::start_capturing(listen, target, imp, 0)
    }

    /// Like [`Relay::start`], keeping copies of the first `capture` datagrams it receives.
    pub fn start_capturing(
        listen: SocketAddr,
        target: SocketAddr,
        imp: Impairment,
        capture: usize,
    ) -> io::Result<Relay> {
        let (mut rx, _) = RecvLink::bind(listen, 32 << 20)?;
        let listen = rx.local_addr()?;
        let tx = SendLink::open(None, target, 4 << 20)?;
        let counters = Arc::new(RelayCounters::default());
        let captured = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counters.clone(), stop.clone());
        let tap = Tap {
            limit: capture,
            into: captured.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || relay_loop(&mut rx, &tx, imp, &c, &s, &tap))?;
        Ok(Relay {
            listen,
            counters,
            captured,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Tap {
    limit: usize,
    into: Arc<Mutex<Vec<Vec<u8>>>>,
}

fn relay_loop(
    rx: &mut RecvLink,
    tx: &SendLink,
    imp: Impairment,
    c: &RelayCounters,
    stop: &AtomicBool,
    tap: &Tap,
) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(imp.seed);
    let mut in_burst = false;
    let mut data_seen = 0u64;
    let mut held: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut batch = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        out.clear();
        let got = rx.recv(Duration::from_millis(20), |d| {
            c.received.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut kept) = tap.into.lock() {
                if kept.len() < tap.limit {
                    kept.push(d.to_vec());
                }
            }
            // Byte 1 of the clear header is the datagram kind; 1 is a data symbol.
            let in_run = if d.get(1) == Some(&1) {
                data_seen += 1;
                imp.drop_run
                    .is_some_and(|(first, count)| (first..first + count).contains(&(data_seen - 1)))
            } else {
                false
            };
            let drop = in_run
                || if imp.burst > 1.0 {
                    in_burst = if in_burst {
                        !rng.random_bool(1.0 / imp.burst)
                    } else {
                        rng.random_bool((imp.loss / imp.burst).min(1.0))
                    };
                    in_burst
                } else {
                    imp.loss > 0.0 && rng.random_bool(imp.loss.min(1.0))
                };
            for h in &mut held {
                h.0 = h.0.saturating_sub(1);
            }
            if drop {
                c.dropped.fetch_add(1, Ordering::Relaxed);
            } else {
                let mut d = d.to_vec();
                if imp.corrupt > 0.0 && rng.random_bool(imp.corrupt) && !d.is_empty() {
                    let bit = rng.random_range(0..d.len() * 8);
                    if let Some(b) = d.get_mut(bit / 8) {
                        *b ^= 1 << (bit % 8);
                    }
                    c.corrupted.fetch_add(1, Ordering::Relaxed);
                }
                if imp.reorder > 0.0 && rng.random_bool(imp.reorder) {
                    c.reordered.fetch_add(1, Ordering::Relaxed);
                    held.push((rng.random_range(1..16), d));
                } else {
                    if imp.duplicate > 0.0 && rng.random_bool(imp.duplicate) {
                        c.duplicated.fetch_add(1, Ordering::Relaxed);
                        out.push(d.clone());
                    }
                    out.push(d);
                }
            }
            let mut i = 0;
            while i < held.len() {
                if held.get(i).is_some_and(|h| h.0 == 0) {
                    out.push(held.swap_remove(i).1);
                } else {
                    i += 1;
                }
            }
        });
        if got.unwrap_or(0) == 0 {
            // Idle: release anything held back.
            out.extend(held.drain(..).map(|h| h.1));
        }
        forward(tx, &out, &mut batch, c);
    }
}

/// Sends `datagrams` in GSO batches of equal-sized runs.
fn forward(tx: &SendLink, datagrams: &[Vec<u8>], batch: &mut Vec<u8>, c: &RelayCounters) {
    let max = tx.max_segments();
    let mut i = 0;
    while let Some(first) = datagrams.get(i) {
        let seg = first.len();
        batch.clear();
        let mut n = 0;
        while let Some(d) = datagrams.get(i) {
            if n >= max || batch.len() + d.len() > crate::net::SEND_BATCH_BYTES || d.len() > seg {
                break;
            }
            batch.extend_from_slice(d);
            n += 1;
            i += 1;
            if d.len() < seg {
                break;
            }
        }
        if n == 0 {
            // A single datagram larger than a batch cannot happen on a link; skip it.
            i += 1;
            continue;
        }
        if tx.send_batch(batch, seg).is_ok() {
            c.forwarded.fetch_add(n as u64, Ordering::Relaxed);
            c.forwarded_bytes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
    }
}
