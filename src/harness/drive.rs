//! Traffic for the OT-side sources: a TCP stream of pseudo-random bytes and a train of UDP
//! datagrams, each hashed as it is sent so the IT side's copy can be checked.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use ring::digest::{Context, SHA256};

use super::{hex, Pattern};

/// Connects to `addr`, retrying until `timeout`.
pub fn connect_retry(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Waits until `log` (a file) contains `needle`, or `timeout` passes.
pub fn wait_for_log(log: &std::path::Path, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// What was sent on a stream.
#[derive(Debug, Clone)]
pub struct StreamSent {
    /// Bytes written.
    pub bytes: u64,
    /// SHA-256 of them, hex.
    pub sha256: String,
    /// When the first byte was written.
    pub started: Instant,
    /// When the stream was closed.
    pub finished: Instant,
}

/// Writes `bytes` of the seeded [`Pattern`] to `addr`, hashing them, and closes the
/// connection cleanly.
pub fn send_stream(addr: SocketAddr, bytes: u64, seed: u64) -> io::Result<StreamSent> {
    stream_pattern(addr, bytes, seed, true)
}

/// Like [`send_stream`] without hashing (for benchmarks; `sha256` is then empty).
pub fn send_stream_unhashed(addr: SocketAddr, bytes: u64, seed: u64) -> io::Result<StreamSent> {
    stream_pattern(addr, bytes, seed, false)
}

fn stream_pattern(addr: SocketAddr, bytes: u64, seed: u64, hash: bool) -> io::Result<StreamSent> {
    let mut conn = connect_retry(addr, Duration::from_secs(10))?;
    let mut pattern = Pattern::new(seed);
    let mut hasher = Context::new(&SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    let started = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let chunk = buf.get_mut(..n).unwrap_or_default();
        pattern.fill(chunk);
        if hash {
            hasher.update(chunk);
        }
        conn.write_all(chunk)?;
        left -= n as u64;
    }
    conn.shutdown(std::net::Shutdown::Write)?;
    // Wait for the source to close its side, so "finished" means the source read it all.
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = io::Read::read(&mut conn, &mut [0u8; 1]);
    Ok(StreamSent {
        bytes,
        sha256: hex(hasher.finish().as_ref()),
        started,
        finished: Instant::now(),
    })
}

/// One datagram sent.
#[derive(Debug, Clone)]
pub struct DatagramSent {
    /// SHA-256 of the payload, hex.
    pub sha256: String,
    /// When it was sent.
    pub at: Instant,
}

/// Sends `count` datagrams of sizes in `sizes` to `addr`, `per_second` of them a second
/// (0: as fast as possible). Each payload starts with its index, so all differ.
pub fn send_datagrams(
    addr: SocketAddr,
    count: u64,
    sizes: std::ops::RangeInclusive<usize>,
    per_second: u64,
    seed: u64,
) -> io::Result<Vec<DatagramSent>> {
    let socket = UdpSocket::bind(if addr.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" })?;
    let mut pattern = Pattern::new(seed);
    let span = sizes.end().saturating_sub(*sizes.start()) + 1;
    let start = Instant::now();
    let mut sent = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for i in 0..count {
        if per_second > 0 {
            let due = start + Duration::from_secs_f64(i as f64 / per_second as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let mut len_seed = [0u8; 8];
        pattern.fill(&mut len_seed);
        let len = (sizes.start() + (u64::from_le_bytes(len_seed) % span as u64) as usize).max(8);
        let mut payload = vec![0u8; len];
        pattern.fill(&mut payload);
        for (d, s) in payload.iter_mut().zip(i.to_be_bytes()) {
            *d = s;
        }
        let at = Instant::now();
        socket.send_to(&payload, addr)?;
        sent.push(DatagramSent {
            sha256: hex(ring::digest::digest(&SHA256, &payload).as_ref()),
            at,
        });
    }
    Ok(sent)
}
