//! The validated policy: plain typed values, every one already in range.
//!
//! Contract: a value of these types only comes out of [`parse`](super::parse) (or is built by
//! hand in tests); its invariants are those checked in `validate` and listed on each field.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::error::PolicyError;
use super::filter::{Filter, OnViolation};
use super::fingerprint::Fingerprint;
use super::flow::{Priority, RateLimit};
use super::limits::{IPV4_UDP_OVERHEAD, IPV6_UDP_OVERHEAD};

/// One conduit: the link, each side's settings and the channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The file this policy was read from (names it in later errors).
    pub origin: PathBuf,
    /// Parameters both sides must agree on.
    pub link: Link,
    /// `[send]`, needed by `weir-send` (see [`Policy::require_send`]).
    pub send: Option<SendSide>,
    /// `[recv]`, needed by `weir-recv` (see [`Policy::require_recv`]).
    pub recv: Option<RecvSide>,
    /// The channels, in file order; names and ids are unique; at most
    /// [`MAX_CHANNELS`](super::MAX_CHANNELS).
    pub channels: Vec<Channel>,
    /// SHA-256 of the canonical form of this policy; see [`fingerprint`](super::fingerprint).
    pub fingerprint: Fingerprint,
}

/// `[link]`: parameters both sides must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The pre-shared key file; a relative path in the file is resolved against the policy
    /// file's directory.
    pub key_file: PathBuf,
    /// IP MTU of the link, 576..=65535, default 1500. A datagram carries at most
    /// `mtu - 28` bytes over IPv4 (`mtu - 48` over IPv6): see [`Link::datagram_budget`].
    pub mtu: u16,
    /// FEC repair symbols in percent of source symbols, 1..=200, default 10.
    pub repair_percent: u16,
    /// The sender never exceeds this rate, in bit/s; default 1 Gbit/s.
    pub bandwidth_bps: u64,
    /// Interval between heartbeats, 10ms..=60s, default 1s.
    pub heartbeat: Duration,
    /// A partly filled block is sent after this long, 50us..=100ms, default 1ms.
    pub flush: Duration,
    /// Most source symbols (k) per FEC block, 1..=128, default 64; with its repair symbols a
    /// block never exceeds [`MAX_SYMBOLS_PER_BLOCK`](super::limits::MAX_SYMBOLS_PER_BLOCK).
    pub block_symbols: u16,
    /// How long the receiver waits for a block's missing symbols, 1ms..=10s, default 50ms.
    pub reorder_window: Duration,
}

impl Link {
    /// Most bytes of UDP payload in one datagram to `peer`: the MTU minus the IP and UDP
    /// headers (28 bytes for IPv4, 48 for IPv6).
    pub fn datagram_budget(&self, peer: &SocketAddr) -> usize {
        let overhead = match peer {
            SocketAddr::V4(_) => IPV4_UDP_OVERHEAD,
            SocketAddr::V6(_) => IPV6_UDP_OVERHEAD,
        };
        usize::from(self.mtu.saturating_sub(overhead))
    }

    /// Repair symbols the sender adds to a block of `source_symbols` source symbols (the link
    /// protocol's rule, [`crate::proto::fec::repair_count`]); none for an empty block.
    pub fn repair_symbols(&self, source_symbols: u16) -> u16 {
        if source_symbols == 0 {
            return 0;
        }
        crate::proto::fec::repair_count(source_symbols, self.repair_percent)
    }
}

/// `[send]`: settings of the OT host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSide {
    /// Where datagrams are sent: the receiver's address as seen through the link.
    pub to: SocketAddr,
    /// Local address to send from; same IP family as `to`.
    pub bind: Option<SocketAddr>,
    /// Most bytes queued toward the link, default 4 MiB; at least every channel's `max_message`.
    pub queue: usize,
    /// Local address of the HTTP metrics endpoint (`GET /metrics`); none by default.
    pub metrics: Option<SocketAddr>,
}

/// `[recv]`: settings of the IT host, read by its two daemons: `weir-recv` (link → spool) and
/// `weir-deliver` (reads the spool; runs the consumer server and the sinks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvSide {
    /// Address the link socket listens on.
    pub listen: SocketAddr,
    /// Receive buffer requested for the link socket, default 32 MiB.
    pub socket_buffer: usize,
    /// Most bytes queued toward each sink, default 32 MiB; at least every channel's `max_message`.
    pub queue: usize,
    /// Spool directory (one subdirectory per channel), written by `weir-recv` and read by
    /// `weir-deliver`; default [`DEFAULT_SPOOL`](super::limits::DEFAULT_SPOOL)
    /// (`/var/lib/weir/spool`); a relative path is resolved against the policy file's directory.
    pub spool: PathBuf,
    /// How the spool writes, syncs and forgets.
    pub spooling: Spooling,
    /// The consumer server (run by `weir-deliver`); none by default.
    pub serve: Option<Serve>,
    /// State file of `weir-recv` (the replay floor that survives restarts), default
    /// `/var/lib/weir/recv.state`; a relative path is resolved against the policy file's
    /// directory.
    pub state: PathBuf,
    /// Local address of `weir-recv`'s HTTP metrics endpoint and status page (`/metrics`, `/`,
    /// `/status.json`); none by default.
    pub metrics: Option<SocketAddr>,
    /// Directory where `weir-deliver` keeps each sink's durable spool offset, default
    /// [`DEFAULT_DELIVER_STATE`](super::limits::DEFAULT_DELIVER_STATE)
    /// (`/var/lib/weir-deliver`); a relative path is resolved against the policy file's
    /// directory.
    pub deliver_state: PathBuf,
    /// Local address of `weir-deliver`'s HTTP metrics endpoint and status page; none by
    /// default. Never equal to `metrics`.
    pub deliver_metrics: Option<SocketAddr>,
    /// When the TCP/UDP re-emit sinks may send a record; default [`SinkAfter::Fsync`].
    pub sink_after: SinkAfter,
}

/// `recv.sink_after`: how durable a record must be before `weir-deliver`'s TCP/UDP re-emit
/// sinks send it. (Consumers of `[recv.serve]` always see a record only once it is fsynced.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SinkAfter {
    /// `"fsync"` (the default): once the record is fsynced. A power loss on the IT host never
    /// takes back a record a sink has sent, at the cost of up to `recv.fsync` of latency.
    #[default]
    Fsync,
    /// `"write"`: as soon as `weir-recv` has written the record to the spool (before its
    /// fsync). Lower latency; after a power loss a sink may have sent records the spool no
    /// longer holds.
    Write,
}

impl SinkAfter {
    /// `"fsync"` or `"write"`, as written in the policy.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Fsync => "fsync",
            Self::Write => "write",
        }
    }
}

impl fmt::Display for SinkAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Spool settings: `[recv]` `segment`, `fsync`, `fsync_bytes`, `retain`, `retain_age`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooling {
    /// A channel's log rolls to a new segment file after this many bytes, default 64 MiB.
    pub segment: u64,
    /// Most bytes waiting for the spool writer (all channels), default 128 MiB: room for the
    /// disk's fsync stalls at link rate. Beyond it records are dropped, counted and recorded
    /// as lost.
    pub queue: usize,
    /// Records are fsynced at least this often, default 100 ms; consumers see a record only
    /// once it is fsynced.
    pub fsync: Duration,
    /// ... or as soon as this many bytes wait for an fsync, default 64 MiB (fewer, larger
    /// fsyncs: 1.3–2.4× the write throughput of 8 MiB in `weir bench --only spool`).
    pub fsync_bytes: u64,
    /// Per channel: the oldest segments are deleted while the log is larger, default 10 GiB.
    pub retain: Option<u64>,
    /// Segments whose newest record is older are deleted; default: none (kept by size only).
    pub retain_age: Option<Duration>,
}

/// `[recv.serve]`: the mutual-TLS consumer server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serve {
    /// TLS 1.3 over TCP listens here.
    pub tls: Option<SocketAddr>,
    /// QUIC listens here (UDP; may share the port number of `tls`). At least one is set.
    pub quic: Option<SocketAddr>,
    /// Server certificate chain (PEM), relative paths resolved against the policy's directory.
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA certificates (PEM) that sign consumer certificates; nothing else is accepted.
    pub client_ca: PathBuf,
    /// Consumer connections open at once (both transports), default 64; more are refused.
    pub max_connections: usize,
    /// A connection that has not finished its handshake and subscription by then is closed,
    /// default 10 s.
    pub handshake_timeout: Duration,
    /// A consumer that accepts no bytes for this long is disconnected, default 60 s; an idle
    /// subscription is kept alive by the server's keepalives.
    pub idle_timeout: Duration,
}

/// One `[[channel]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// `[a-z0-9][a-z0-9._-]{0,62}`, unique in the policy.
    pub name: String,
    /// Derived from the name ([`ChannelId::for_name`]), unique in the policy.
    pub id: ChannelId,
    /// Where the sender reads this channel's messages.
    pub source: Source,
    /// Where the receiver re-emits them; may be empty; same transport as the source; no
    /// duplicates.
    pub sinks: Vec<Sink>,
    /// Largest message: the largest UDP datagram accepted, or the TCP read chunk size;
    /// 1..=16 MiB, default 64 KiB.
    pub max_message: usize,
    /// Peers the source accepts (TCP connections, UDP datagrams), as networks; a plain address
    /// in the file is a /32 or /128. `None` (field absent): any peer. Never an empty list;
    /// at most [`MAX_ALLOW_FROM`](super::limits::MAX_ALLOW_FROM) entries; no host bits set; no
    /// duplicates. Check a peer with [`Channel::allows`].
    pub allow_from: Option<Vec<IpNet>>,
    /// Content rules; `pattern` and `json` only on UDP channels. Default: none.
    pub filter: Filter,
    /// What a filter violation does; `Close` only on TCP channels, and only with a filter.
    /// Default [`OnViolation::Drop`].
    pub on_violation: OnViolation,
    /// Consumer identities (client certificate DNS or URI SANs; DNS names lower-cased) that may
    /// subscribe to this channel over `[recv.serve]`. Empty: no consumer may.
    pub consumers: Vec<String>,
    /// Per-channel rate limit; `None`: only `link.bandwidth` paces the channel.
    pub rate: Option<RateLimit>,
    /// Scheduling priority on the link, default [`Priority::NORMAL`].
    pub priority: Priority,
}

impl Channel {
    /// Whether the source accepts a connection or datagram from `ip`. An IPv4-mapped IPv6
    /// address (`::ffff:a.b.c.d`, as seen on a dual-stack socket) matches IPv4 networks, and
    /// IPv6 networks written in mapped form.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let Some(networks) = &self.allow_from else {
            return true;
        };
        let canonical = ip.to_canonical();
        let mapped = match canonical {
            IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
            IpAddr::V6(_) => None,
        };
        networks.iter().any(|network| {
            network.contains(&canonical) || mapped.is_some_and(|mapped| network.contains(&mapped))
        })
    }

    /// The transport of the source (and of every sink).
    pub fn transport(&self) -> Transport {
        self.source.transport()
    }
}

/// A channel's identifier on the wire: the first 4 bytes (big-endian) of
/// SHA-256(`"weir-channel:"` ‖ name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u32);

impl ChannelId {
    /// The id of the channel called `name`.
    pub fn for_name(name: &str) -> Self {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"weir-channel:");
        context.update(name.as_bytes());
        let digest = context.finish();
        let mut first = [0u8; 4];
        for (target, byte) in first.iter_mut().zip(digest.as_ref()) {
            *target = *byte;
        }
        Self(u32::from_be_bytes(first))
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Stream (TCP) or datagram (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A byte stream, carried in chunks of at most `max_message` bytes.
    Tcp,
    /// Datagrams, each one message.
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        })
    }
}

/// Where the sender reads a channel. TOML: `source = { tcp = "IP:PORT" }` or `{ udp = … }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Accept TCP connections on this address; each connection's bytes are the stream.
    Tcp(SocketAddr),
    /// Receive UDP datagrams on this address.
    Udp(SocketAddr),
}

/// Where the receiver re-emits a channel. TOML: `sinks = [{ tcp = "IP:PORT" }, …]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sink {
    /// Connect to this address and write the stream.
    Tcp(SocketAddr),
    /// Send each message as one datagram to this address.
    Udp(SocketAddr),
}

impl Source {
    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Self::Tcp(addr) | Self::Udp(addr) => *addr,
        }
    }

    /// TCP or UDP.
    pub fn transport(&self) -> Transport {
        match self {
            Self::Tcp(_) => Transport::Tcp,
            Self::Udp(_) => Transport::Udp,
        }
    }
}

impl Sink {
    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Self::Tcp(addr) | Self::Udp(addr) => *addr,
        }
    }

    /// TCP or UDP.
    pub fn transport(&self) -> Transport {
        match self {
            Self::Tcp(_) => Transport::Tcp,
            Self::Udp(_) => Transport::Udp,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.transport(), self.addr())
    }
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.transport(), self.addr())
    }
}

impl Policy {
    /// The `[send]` section, or an error naming the file and the missing section.
    pub fn require_send(&self) -> Result<&SendSide, PolicyError> {
        self.send.as_ref().ok_or_else(|| {
            PolicyError::whole_file(
                &self.origin,
                "send",
                "weir-send needs a [send] section, and this file has none".to_owned(),
                Some(
                    "add `[send]` with `to = \"IP:PORT\"`, the receiver's [recv] listen address \
                     as seen through the link; install the same file on both hosts"
                        .to_owned(),
                ),
            )
        })
    }

    /// The `[recv]` section, or an error naming the file and the missing section.
    pub fn require_recv(&self) -> Result<&RecvSide, PolicyError> {
        self.recv.as_ref().ok_or_else(|| {
            PolicyError::whole_file(
                &self.origin,
                "recv",
                "weir-recv needs a [recv] section, and this file has none".to_owned(),
                Some(
                    "add `[recv]` with `listen = \"IP:PORT\"`, the address the sender's [send] \
                     `to` reaches; install the same file on both hosts"
                        .to_owned(),
                ),
            )
        })
    }

    /// The channel with wire id `id`.
    pub fn channel_by_id(&self, id: ChannelId) -> Option<&Channel> {
        self.channels.iter().find(|channel| channel.id == id)
    }

    /// The channel called `name`.
    pub fn channel_by_name(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|channel| channel.name == name)
    }
}
