//! The one-way link sockets and the pacer.
//!
//! [`SendLink`] can only send and [`RecvLink`] can only receive: the types offer no other
//! operation, so neither daemon can talk back over the link by mistake. The send socket is
//! never connected, so ICMP errors from the far side are not reported to it either.
//! Both batch through `quinn-udp`: UDP GSO on send and GRO on receive where the kernel has
//! them (about ten times the datagram rate of plain `sendmsg` here), plain calls otherwise.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};

/// Largest GSO send, in bytes: the segments travel as one IP packet inside the kernel.
pub const SEND_BATCH_BYTES: usize = 65_000;
/// Receive buffer per GRO read: the largest coalesced datagram train.
pub const RECV_BUFFER_BYTES: usize = 65_535;
/// Receive buffers handed to one `recvmmsg`.
pub const RECV_BATCH: usize = 16;
/// IPv4 and UDP header bytes the pacer counts for each datagram.
pub const WIRE_OVERHEAD: u64 = 28;

/// A UDP socket that only sends, to one fixed destination.
#[derive(Debug)]
pub struct SendLink {
    socket: UdpSocket,
    state: UdpSocketState,
    destination: SocketAddr,
}

impl SendLink {
    /// Binds `bind` (or an ephemeral port of the destination's family) for sending to `to`.
    pub fn open(bind: Option<SocketAddr>, to: SocketAddr, send_buffer: usize) -> io::Result<SendLink> {
        let bind = bind.unwrap_or_else(|| match to {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
        });
        let socket = UdpSocket::bind(bind)?;
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        // Best effort: a bigger buffer absorbs scheduling hiccups; the pacer bounds the rate.
        let _ = state.set_send_buffer_size(UdpSockRef::from(&socket), send_buffer);
        Ok(SendLink {
            socket,
            state,
            destination: to,
        })
    }

    /// Most datagrams one [`SendLink::send_batch`] may carry.
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments().max(1)
    }

    /// Sends `contents` as datagrams of `segment_size` bytes (the last may be shorter), in one
    /// GSO call when there are several. Waits while the socket buffer is full.
    pub fn send_batch(&self, contents: &[u8], segment_size: usize) -> io::Result<()> {
        let transmit = Transmit {
            destination: self.destination,
            ecn: None,
            contents,
            segment_size: (contents.len() > segment_size).then_some(segment_size),
            src_ip: None,
        };
        loop {
            match self.state.try_send(UdpSockRef::from(&self.socket), &transmit) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The socket is non-blocking (quinn-udp sets it so): wait for buffer room.
                    let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLOUT)];
                    match poll(&mut fds, PollTimeout::from(1000u16)) {
                        Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                other => return other,
            }
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// A UDP socket that only receives.
#[derive(Debug)]
pub struct RecvLink {
    socket: UdpSocket,
    state: UdpSocketState,
    bufs: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
}

impl RecvLink {
    /// Binds `listen`, asks for a `recv_buffer`-byte kernel buffer and returns the socket and
    /// the buffer size the kernel granted.
    pub fn bind(listen: SocketAddr, recv_buffer: usize) -> io::Result<(RecvLink, usize)> {
        let socket = UdpSocket::bind(listen)?;
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        let _ = state.set_recv_buffer_size(UdpSockRef::from(&socket), recv_buffer);
        let mut granted = state.recv_buffer_size(UdpSockRef::from(&socket)).unwrap_or(0);
        if granted < recv_buffer {
            // Privileged (CAP_NET_ADMIN) processes may go past net.core.rmem_max.
            let forced =
                nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &recv_buffer);
            if forced.is_ok() {
                granted = state
                    .recv_buffer_size(UdpSockRef::from(&socket))
                    .unwrap_or(granted);
            }
        }
        Ok((
            RecvLink {
                socket,
                state,
                bufs: vec![vec![0; RECV_BUFFER_BYTES]; RECV_BATCH],
                meta: vec![RecvMeta::default(); RECV_BATCH],
            },
            granted,
        ))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Datagrams the kernel dropped for this socket (its receive buffer was full), from the
    /// `drops` column of `/proc/net/udp{,6}`; `None` where that cannot be read.
    pub fn kernel_drops(&self) -> Option<u64> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", self.socket.as_raw_fd()))
            .ok()?
            .ino()
            .to_string();
        ["/proc/net/udp", "/proc/net/udp6"].iter().find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
                (fields.get(9) == Some(&inode.as_str())).then(|| fields.get(12)?.parse().ok())?
            })
        })
    }

    fn read_batch(&mut self) -> io::Result<usize> {
        let mut slices: Vec<IoSliceMut<'_>> = self.bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        match self
            .state
            .recv(UdpSockRef::from(&self.socket), &mut slices, &mut self.meta)
        {
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Waits up to `timeout` for datagrams and calls `each` on every one received.
    /// Returns the number of datagrams; 0 on timeout.
    pub fn recv(&mut self, timeout: Duration, mut each: impl FnMut(&mut [u8])) -> io::Result<usize> {
        // The socket is non-blocking (quinn-udp sets it so, and a blocking `recvmmsg` would
        // wait for a full batch): read what is there, else wait for readability, then read.
        let n = match self.read_batch()? {
            0 => {
                let millis = u16::try_from(timeout.as_millis().clamp(1, 1000)).unwrap_or(1000);
                let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(millis)) {
                    Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(0),
                    Ok(_) => self.read_batch()?,
                    Err(e) => return Err(e.into()),
                }
            }
            n => n,
        };
        let mut count = 0;
        for (buf, meta) in self.bufs.iter_mut().zip(&self.meta).take(n) {
            let Some(received) = buf.get_mut(..meta.len) else {
                continue;
            };
            if received.is_empty() {
                // An empty datagram is still a datagram: the receiver must count it.
                each(received);
                count += 1;
                continue;
            }
            let stride = meta.stride.max(1);
            for datagram in received.chunks_mut(stride) {
                each(datagram);
                count += 1;
            }
        }
        Ok(count)
    }
}

/// A token bucket in bytes, with time passed in: the sender never exceeds `rate` by more
/// than `burst` bytes over any interval.
#[derive(Debug, Clone)]
pub struct Pacer {
    bytes_per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// A full bucket at `now`.
    pub fn new(bits_per_sec: u64, burst_bytes: usize, now: Instant) -> Pacer {
        let burst = burst_bytes as f64;
        Pacer {
            bytes_per_sec: bits_per_sec as f64 / 8.0,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.bytes_per_sec).min(self.burst);
        self.last = now;
    }

    /// How long to wait before `bytes` may be sent; zero when they may go now.
    pub fn delay(&mut self, now: Instant, bytes: usize) -> Duration {
        self.refill(now);
        let need = (bytes as f64).min(self.burst);
        if self.tokens >= need {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((need - self.tokens) / self.bytes_per_sec)
        }
    }

    /// Takes `bytes` from the bucket (it may go negative for a batch larger than the burst).
    pub fn consume(&mut self, now: Instant, bytes: usize) {
        self.refill(now);
        self.tokens -= bytes as f64;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn pacer_holds_the_rate() {
        let start = Instant::now();
        let mut p = Pacer::new(8_000_000, 10_000, start); // 1 MB/s, 10 kB burst
        assert_eq!(p.delay(start, 10_000), Duration::ZERO);
        p.consume(start, 10_000);
        let wait = p.delay(start, 1_000);
        assert!((wait.as_secs_f64() - 0.001).abs() < 1e-6, "{wait:?}");
        // Over one simulated second at most rate + burst bytes go out.
        let mut now = start;
        let mut sent = 10_000;
        while now < start + Duration::from_secs(1) {
            let d = p.delay(now, 1_500);
            if d.is_zero() {
                p.consume(now, 1_500);
                sent += 1_500;
            } else {
                now += d;
            }
        }
        assert!(sent <= 1_000_000 + 10_000 + 1_500, "{sent}");
        assert!(sent >= 1_000_000, "{sent}");
    }

    #[test]
    fn batches_cross_loopback() {
        let (mut rx, _granted) = RecvLink::bind("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let tx = SendLink::open(None, rx.local_addr().unwrap(), 1 << 20).unwrap();
        let mut batch = Vec::new();
        for i in 0..5u8 {
            batch.extend_from_slice(&[i; 100]);
        }
        batch.extend_from_slice(&[9; 40]);
        tx.send_batch(&batch, 100).unwrap();
        let mut got = Vec::new();
        while got.len() < 6 {
            let n = rx.recv(Duration::from_secs(2), |d| got.push(d.to_vec())).unwrap();
            assert!(n > 0, "timed out with {} datagrams", got.len());
        }
        assert_eq!(got.len(), 6);
        assert_eq!(got[5], vec![9; 40]);
        assert_eq!(got[2], vec![2; 100]);
    }

    #[test]
    fn kernel_drops_of_an_overflowing_socket_are_seen() {
        let (rx, _) = RecvLink::bind("127.0.0.1:0".parse().unwrap(), 4096).unwrap();
        assert_eq!(rx.kernel_drops(), Some(0));
        let tx = SendLink::open(None, rx.local_addr().unwrap(), 1 << 20).unwrap();
        for _ in 0..2000 {
            tx.send_batch(&[0u8; 1000], 1000).unwrap();
        }
        assert!(
            rx.kernel_drops().unwrap() > 0,
            "nothing was read, so the kernel must have dropped"
        );
    }
}
