//! Stand-ins for IT-side consumers: a TCP listener that hashes each connection's bytes and
//! records how it ended, and a UDP socket that records every datagram's hash.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ring::digest::{Context, SHA256};

/// How one received TCP connection went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamResult {
    /// Bytes received.
    pub bytes: u64,
    /// SHA-256 of them, hex (when the collector hashes).
    pub sha256: String,
    /// Whether they are exactly the start of the expected [`Pattern`](super::Pattern) stream
    /// (when the collector checks a pattern).
    pub pattern_ok: Option<bool>,
    /// True for a clean end (FIN), false for a reset or error.
    pub clean: bool,
    /// When the first byte arrived and when the connection ended.
    pub first_byte: Option<Instant>,
    /// When the connection ended.
    pub ended: Instant,
}

/// Accepts TCP connections and hashes what each one carries.
#[derive(Debug)]
pub struct TcpCollector {
    /// The listening address.
    pub addr: SocketAddr,
    /// Finished connections, in the order they ended.
    pub results: Arc<Mutex<Vec<StreamResult>>>,
    _thread: JoinHandle<()>,
}

/// How a [`TcpCollector`] checks what it receives.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// Hash every connection with SHA-256.
    Sha256,
    /// Compare every connection with the [`Pattern`](super::Pattern) of this seed (cheap).
    Pattern(u64),
}

impl TcpCollector {
    /// Listens on `addr` (port 0 picks one), hashing each connection.
    pub fn start(addr: SocketAddr) -> io::Result<TcpCollector> {
        Self::start_checking(addr, Check::Sha256)
    }

    /// Listens on `addr` (port 0 picks one), checking each connection as `check` says.
    pub fn start_checking(addr: SocketAddr, check: Check) -> io::Result<TcpCollector> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let results = Arc::new(Mutex::new(Vec::new()));
        let r = results.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut hasher = Context::new(&SHA256);
                    let mut pattern = match check {
                        Check::Pattern(seed) => Some((super::Pattern::new(seed), true)),
                        Check::Sha256 => None,
                    };
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut bytes = 0u64;
                    let mut first_byte = None;
                    let clean = loop {
                        match conn.read(&mut buf) {
                            Ok(0) => break true,
                            Ok(n) => {
                                first_byte.get_or_insert_with(Instant::now);
                                let got = buf.get(..n).unwrap_or_default();
                                match pattern.as_mut() {
                                    Some((p, ok)) => *ok &= p.check(got),
                                    None => hasher.update(got),
                                }
                                bytes += n as u64;
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(_) => break false,
                        }
                    };
                    let result = StreamResult {
                        bytes,
                        sha256: super::hex(hasher.finish().as_ref()),
                        pattern_ok: pattern.map(|(_, ok)| ok),
                        clean,
                        first_byte,
                        ended: Instant::now(),
                    };
                    if let Ok(mut v) = r.lock() {
                        v.push(result);
                    }
                });
            }
        });
        Ok(TcpCollector {
            addr,
            results,
            _thread: thread,
        })
    }

    /// Waits until `n` connections have ended or `timeout` passes; returns them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<StreamResult> {
        let deadline = Instant::now() + timeout;
        loop {
            let done = self.results.lock().map(|v| v.clone()).unwrap_or_default();
            if done.len() >= n || Instant::now() >= deadline {
                return done;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Receives UDP datagrams and counts each distinct payload by hash.
#[derive(Debug)]
pub struct UdpCollector {
    /// The bound address.
    pub addr: SocketAddr,
    /// Payload hash → (times received, arrival time of the first).
    pub seen: Arc<Mutex<HashMap<String, (u32, Instant)>>>,
    _thread: JoinHandle<()>,
}

impl UdpCollector {
    /// Binds `addr` (port 0 picks one).
    pub fn start(addr: SocketAddr) -> io::Result<UdpCollector> {
        let socket = UdpSocket::bind(addr)?;
        // A consumer that reads slower than the sink writes under a busy CPU must not be
        // where datagrams are lost in a test: give it a deep buffer.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(8 << 20);
        let addr = socket.local_addr()?;
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let s = seen.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = socket.recv(&mut buf) {
                let digest = ring::digest::digest(&SHA256, buf.get(..n).unwrap_or_default());
                if let Ok(mut m) = s.lock() {
                    m.entry(super::hex(digest.as_ref()))
                        .or_insert((0, Instant::now()))
                        .0 += 1;
                }
            }
        });
        Ok(UdpCollector {
            addr,
            seen,
            _thread: thread,
        })
    }

    /// Number of datagrams received so far (duplicates included).
    pub fn count(&self) -> u64 {
        self.seen
            .lock()
            .map(|m| m.values().map(|v| u64::from(v.0)).sum())
            .unwrap_or(0)
    }

    /// Waits until `n` datagrams have arrived or `timeout` passes.
    pub fn wait_for(&self, n: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.count();
            if c >= n || Instant::now() >= deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
