//! The policy file: one TOML file describes one conduit, and is installed identically on both
//! hosts.
//!
//! Contract:
//! - Configuration is parsed, not validated: TOML text → a spanned raw mirror that denies
//!   unknown fields (`raw`) → a typed, validated [`Policy`] whose values are all in range. Code
//!   that holds a `Policy` never re-checks it.
//! - Every problem in the file is reported at once, each with `line:column`, the field path and,
//!   where useful, a hint ([`PolicyError`]).
//! - Deny by default: a channel's source accepts only the peers in its `allow_from` (any peer
//!   when the field is absent, which `weir check` shows as "any"); its `filter`, `rate` and
//!   `priority` are enforced by `weir-send` ([`Filter`], [`RateLimit`], [`Priority`]).
//! - Parsing does no I/O except [`load`] reading the file: no DNS (addresses are literal
//!   `IP:PORT`), no key file access (`link.key_file` is only a path; see [`crate::keys`]).
//! - Relative paths (`link.key_file`, `recv.spool`, `recv.state`, `recv.deliver_state`,
//!   `recv.serve` files) are resolved against the policy file's directory.
//! - `[recv]` is read by both IT-side daemons: `weir-recv` (link → spool: `listen`, `state`,
//!   `metrics`, the spool settings) and `weir-deliver` (reads the spool: `[recv.serve]`, the
//!   sinks, `deliver_state`, `deliver_metrics`, `sink_after`). `spool` always has a value
//!   (default `/var/lib/weir/spool`): it is where the two meet.
//! - Both sides compute the same [`Fingerprint`] from the same file, wherever it is installed;
//!   see [`fingerprint`].
//!
//! ```toml
//! [link]
//! key_file       = "link.key"     # from `weir keygen`; relative to this file
//! mtu            = 1500           # IP MTU of the link; a datagram carries mtu - 28 bytes (IPv4)
//! repair         = "10%"          # FEC repair symbols, in percent of source symbols
//! bandwidth      = "800 Mbit/s"   # the sender never exceeds this
//! heartbeat      = "1s"
//! flush          = "1ms"          # a partly filled FEC block is sent after this long
//! block_symbols  = 64             # source symbols per FEC block
//! reorder_window = "50ms"         # how long the receiver waits for a block's missing symbols
//!
//! [send]                          # OT host
//! to    = "192.0.2.2:5800"
//! queue = "4 MiB"
//!
//! [recv]                          # IT host
//! listen        = "192.0.2.2:5800"
//! socket_buffer = "32 MiB"
//! queue         = "32 MiB"        # per sink
//! spool         = "/var/lib/weir/spool"  # durable per-channel logs (segment, fsync, retain, …)
//! deliver_state = "/var/lib/weir-deliver" # weir-deliver: each sink's spool offset
//! sink_after    = "fsync"         # sinks send a record once fsynced, or "write": once written
//!
//! [recv.serve]                    # consumers over mutual TLS (CONSUMERS.md)
//! tls       = "0.0.0.0:7443"
//! quic      = "0.0.0.0:7443"
//! cert      = "/etc/weir/server.pem"
//! key       = "/etc/weir/server.key"
//! client_ca = "/etc/weir/consumers-ca.pem"
//!
//! [[channel]]
//! name         = "syslog"
//! source       = { udp = "10.1.0.5:5514" }
//! allow_from   = ["10.1.0.0/24", "192.0.2.7"]  # absent: any peer
//! max_message  = "8 KiB"
//! filter       = { utf8 = true, pattern = '^<\d{1,3}>', json = false }
//! on_violation = "drop"                        # "close": TCP only
//! rate         = { bytes = "20 Mbit/s", messages = 1000, burst = "1 MiB", burst_messages = 100 }
//! priority     = 2                             # 1 first … 3 bulk
//! sinks        = [{ udp = "10.20.0.9:514" }]
//! consumers    = ["siem.corp.example"]          # client-certificate identities (DNS/URI SAN)
//! ```
//!
//! `policies/reference.toml` shows every field with its default and meaning.

mod error;
mod filter;
pub mod fingerprint;
mod flow;
mod json;
pub mod limits;
mod model;
mod raw;
mod table;
pub mod units;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::{Diagnostic, PolicyError};
pub use filter::{Filter, FilterViolation, OnViolation, Utf8Stream};
pub use fingerprint::Fingerprint;
pub use flow::{Priority, RateLimit, PRIORITY_LEVELS};
pub use ipnet::IpNet;
pub use limits::MAX_CHANNELS;
pub use model::{
    Channel, ChannelId, Link, Policy, RecvSide, SendSide, Serve, Sink, SinkAfter, Source, Spooling, Transport,
};
pub use validate::normalize_identity;

/// Largest policy file we read, in bytes; a policy is a few kilobytes.
pub const MAX_POLICY_FILE: u64 = 1 << 20;

/// Reads and parses the policy file at `path`.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    use std::io::Read;
    let read_error = |error: std::io::Error| {
        PolicyError::whole_file(
            path,
            "",
            format!("cannot read the policy file: {error}"),
            (error.kind() == std::io::ErrorKind::NotFound)
                .then(|| "check the path to the policy file".to_owned()),
        )
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    file.take(MAX_POLICY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > MAX_POLICY_FILE {
        return Err(PolicyError::whole_file(
            path,
            "",
            format!("the policy file is larger than {MAX_POLICY_FILE} bytes"),
            None,
        ));
    }
    parse(&text, path)
}

/// Parses policy `text`. `origin` is the file it came from: it names the file in messages and
/// is the base for relative paths.
pub fn parse(text: &str, origin: &Path) -> Result<Policy, PolicyError> {
    let mut collector = error::Collector::new(text);
    let policy =
        raw::read(text, &mut collector).and_then(|raw| validate::policy(raw, origin, &mut collector));
    match policy {
        Some(policy) if collector.is_clean() => Ok(policy),
        _ => Err(collector.into_error(origin)),
    }
}
