//! Defaults and valid ranges of every policy field, in one place.
//!
//! Contract: these constants are the only source of the numbers; validation, messages and
//! documentation all read them from here. Ranges are inclusive at both ends. Every queue and
//! buffer the policy sizes has an upper bound (rule 5 of the house).

use std::ops::RangeInclusive;
use std::time::Duration;

/// At most this many `[[channel]]` in one policy.
pub const MAX_CHANNELS: usize = 64;

/// Bytes of IPv4 (20) and UDP (8) headers: a datagram carries at most `mtu - 28` bytes over IPv4.
pub const IPV4_UDP_OVERHEAD: u16 = 28;
/// Bytes of IPv6 (40) and UDP (8) headers: a datagram carries at most `mtu - 48` bytes over IPv6.
pub const IPV6_UDP_OVERHEAD: u16 = 48;

/// Most symbols (source + repair) in one FEC block: the shard limit of a GF(2^8) Reed–Solomon code.
pub const MAX_SYMBOLS_PER_BLOCK: u32 = 256;

/// `link.mtu` default, in bytes.
pub const DEFAULT_MTU: u16 = 1500;
/// `link.mtu` range: 576 is the smallest MTU every IPv4 host must accept.
pub const MTU_RANGE: RangeInclusive<u64> = 576..=65535;

/// `link.repair` default, in percent of the source symbols.
pub const DEFAULT_REPAIR_PERCENT: u16 = 10;
/// `link.repair` range, in percent.
pub const REPAIR_PERCENT_RANGE: RangeInclusive<u64> = 1..=200;

/// `link.bandwidth` default: 1 Gbit/s.
pub const DEFAULT_BANDWIDTH_BPS: u64 = 1_000_000_000;
/// `link.bandwidth` range, in bit/s: 1 Kbit/s (slow serial diodes) to 400 Gbit/s.
pub const BANDWIDTH_BPS_RANGE: RangeInclusive<u64> = 1_000..=400_000_000_000;

/// `link.heartbeat` default.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
/// `link.heartbeat` range, in nanoseconds: 10ms to 60s.
pub const HEARTBEAT_NS_RANGE: RangeInclusive<u64> = 10_000_000..=60_000_000_000;

/// `link.flush` default: a partly filled block is sent after this long.
pub const DEFAULT_FLUSH: Duration = Duration::from_millis(1);
/// `link.flush` range, in nanoseconds: 50us to 100ms.
pub const FLUSH_NS_RANGE: RangeInclusive<u64> = 50_000..=100_000_000;

/// `link.block_symbols` default: at most this many source symbols per FEC block.
pub const DEFAULT_BLOCK_SYMBOLS: u16 = 64;
/// `link.block_symbols` range.
pub const BLOCK_SYMBOLS_RANGE: RangeInclusive<u64> = 1..=128;

/// `link.reorder_window` default: how long the receiver waits for a block's missing symbols.
pub const DEFAULT_REORDER_WINDOW: Duration = Duration::from_millis(50);
/// `link.reorder_window` range, in nanoseconds: 1ms to 10s.
pub const REORDER_WINDOW_NS_RANGE: RangeInclusive<u64> = 1_000_000..=10_000_000_000;

/// `send.queue` default: bytes queued toward the link.
pub const DEFAULT_SEND_QUEUE: u64 = 4 << 20;
/// `send.queue` range, in bytes: 64 KiB to 1 GiB.
pub const SEND_QUEUE_RANGE: RangeInclusive<u64> = (64 << 10)..=(1 << 30);

/// `recv.socket_buffer` default: the receive buffer requested for the link socket.
pub const DEFAULT_SOCKET_BUFFER: u64 = 32 << 20;
/// `recv.socket_buffer` range, in bytes: 64 KiB to 1 GiB.
pub const SOCKET_BUFFER_RANGE: RangeInclusive<u64> = (64 << 10)..=(1 << 30);

/// `recv.state` default: where the receiver keeps its replay floor across restarts.
pub const DEFAULT_RECV_STATE: &str = "/var/lib/weir/recv.state";
/// `recv.spool` default: the spool directory (one subdirectory per channel).
pub const DEFAULT_SPOOL: &str = "/var/lib/weir/spool";
/// `recv.deliver_state` default: where weir-deliver keeps each sink's durable spool offset.
pub const DEFAULT_DELIVER_STATE: &str = "/var/lib/weir-deliver";
/// `recv.segment` default: a channel's log rolls to a new file after this many bytes.
pub const DEFAULT_SEGMENT: u64 = 64 << 20;
/// `recv.segment` range: 64 KiB to 4 GiB.
pub const SEGMENT_RANGE: RangeInclusive<u64> = (64 << 10)..=(4 << 30);
/// `recv.spool_queue` default: bytes waiting for the spool writer.
pub const DEFAULT_SPOOL_QUEUE: u64 = 128 << 20;
/// `recv.spool_queue` range: 1 MiB to 8 GiB.
pub const SPOOL_QUEUE_RANGE: RangeInclusive<u64> = (1 << 20)..=(8 << 30);
/// `recv.fsync` default: how long a record may wait for its fsync.
pub const DEFAULT_FSYNC: Duration = Duration::from_millis(100);
/// `recv.fsync` range, in ns: 1 ms to 60 s.
pub const FSYNC_NS_RANGE: RangeInclusive<u64> = 1_000_000..=60_000_000_000;
/// `recv.fsync_bytes` default.
pub const DEFAULT_FSYNC_BYTES: u64 = 64 << 20;
/// `recv.fsync_bytes` range: 4 KiB to 1 GiB.
pub const FSYNC_BYTES_RANGE: RangeInclusive<u64> = (4 << 10)..=(1 << 30);
/// `recv.retain` default, per channel.
pub const DEFAULT_RETAIN: u64 = 10 << 30;
/// `recv.retain` range: 1 MiB to 64 TiB; at least twice `recv.segment`.
pub const RETAIN_RANGE: RangeInclusive<u64> = (1 << 20)..=(64 << 40);
/// `recv.retain_age` range, in ns: 1 minute to 10 years.
pub const RETAIN_AGE_NS_RANGE: RangeInclusive<u64> = 60_000_000_000..=315_360_000_000_000_000;
/// `recv.serve.max_connections` default.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 64;
/// `recv.serve.max_connections` range.
pub const MAX_CONNECTIONS_RANGE: RangeInclusive<u64> = 1..=4096;
/// `recv.serve.handshake_timeout` default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// `recv.serve.idle_timeout` default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// `recv.serve` timeouts' range, in ns: 100 ms to 1 hour.
pub const SERVE_TIMEOUT_NS_RANGE: RangeInclusive<u64> = 100_000_000..=3_600_000_000_000;
/// Most identities in one channel's `consumers`.
pub const MAX_CONSUMERS: usize = 256;
/// Longest consumer identity (a DNS name or a URI).
pub const MAX_IDENTITY: usize = 253;
/// `recv.queue` default: bytes queued toward each sink.
pub const DEFAULT_RECV_QUEUE: u64 = 32 << 20;
/// `recv.queue` range, in bytes: 64 KiB to 1 GiB.
pub const RECV_QUEUE_RANGE: RangeInclusive<u64> = (64 << 10)..=(1 << 30);

/// `channel.max_message` default: the largest UDP datagram, or the TCP read chunk.
pub const DEFAULT_MAX_MESSAGE: u64 = 64 << 10;
/// `channel.max_message` range, in bytes: 1 B to 16 MiB.
pub const MAX_MESSAGE_RANGE: RangeInclusive<u64> = 1..=(16 << 20);

/// Longest channel name, in characters.
pub const MAX_CHANNEL_NAME: usize = 63;

/// Most entries in a channel's `allow_from` list.
pub const MAX_ALLOW_FROM: usize = 256;

/// Longest `filter.pattern`, in characters.
pub const MAX_PATTERN_LEN: usize = 4096;
/// Most heap the compiled `filter.pattern` may take (the regex crate's `size_limit`): a pattern
/// that compiles larger is a policy error, not a slow filter.
pub const MAX_PATTERN_COMPILED: usize = 256 << 10;
/// Most heap the lazy DFA of a `filter.pattern` may use while matching, per matching thread
/// (the regex crate's `dfa_size_limit`); beyond it the regex falls back to slower engines.
pub const PATTERN_DFA_CACHE: usize = 1 << 20;

/// `channel.rate.bytes` range, in bit/s as written: 8 bit/s (1 byte/s) to 400 Gbit/s. The model
/// keeps bytes per second (the value divided by 8, rounded down).
pub const RATE_BPS_RANGE: RangeInclusive<u64> = 8..=400_000_000_000;
/// `channel.rate.messages` range, in messages per second.
pub const RATE_MESSAGES_RANGE: RangeInclusive<u64> = 1..=100_000_000;
/// `channel.rate.burst` range, in bytes; it must also be at least the channel's `max_message`.
pub const RATE_BURST_RANGE: RangeInclusive<u64> = 1..=(64 << 30);
/// `channel.rate.burst_messages` range, in messages.
pub const RATE_BURST_MESSAGES_RANGE: RangeInclusive<u64> = 1..=100_000_000;
/// The default byte burst is the bytes of `1 / RATE_BURST_DEFAULT_DIVISOR` second at the
/// channel's rate (at least `max_message`); the default message burst is the messages of that
/// long (at least 1).
pub const RATE_BURST_DEFAULT_DIVISOR: u64 = 10;

/// `channel.priority` range: 1 is served first, 3 last.
pub const PRIORITY_RANGE: RangeInclusive<u64> = 1..=3;
/// `channel.priority` default.
pub const DEFAULT_PRIORITY: u8 = 2;
