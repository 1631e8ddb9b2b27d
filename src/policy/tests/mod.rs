//! Tests of the whole policy pipeline: text → `Policy` or every problem with its location.
//! Shared fixtures live here; the tests are grouped by topic in the submodules.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::path::Path;

use super::*;

mod channels;
mod errors;
mod fields;
mod filters;
mod output;
mod rules;

const ORIGIN: &str = "policies/x.toml";

const FULL: &str = r#"
# A conduit with everything set.
[link]
key_file       = "keys/link.key"
mtu            = 9000
repair         = "20%"
bandwidth      = "800 Mbit/s"
heartbeat      = "500ms"
flush          = "2ms"
block_symbols  = 32
reorder_window = "100ms"

[send]
to    = "192.0.2.2:5800"
bind  = "192.0.2.1:0"
queue = "16 MiB"
metrics = "127.0.0.1:9100"

[recv]
listen        = "192.0.2.2:5800"
socket_buffer = "64 MiB"
queue         = "2 MiB"
spool         = "/var/lib/weir"
metrics       = "127.0.0.1:9101"
deliver_state   = "/var/lib/weir-deliver/state"
deliver_metrics = "127.0.0.1:9102"
sink_after      = "write"

[[channel]]
name         = "historian"
source       = { tcp = "10.1.0.5:7000" }
sinks        = [{ tcp = "10.20.0.8:7000" }, { tcp = "10.20.0.9:7000" }]
allow_from   = ["10.1.0.0/24", "192.0.2.7"]
filter       = { utf8 = true }
on_violation = "close"
rate         = { bytes = "200 Mbit/s" }
priority     = 3

[[channel]]
name        = "syslog"
source      = { udp = "10.1.0.5:5514" }
max_message = "8 KiB"
sinks       = [{ udp = "10.20.0.9:514" }]
filter      = { utf8 = true, pattern = '^<\d{1,3}>' }
rate        = { messages = 1000, burst_messages = 50 }
priority    = 1
"#;

fn ok(text: &str) -> Policy {
    match parse(text, Path::new(ORIGIN)) {
        Ok(policy) => policy,
        Err(error) => panic!("expected a valid policy, got:\n{error}"),
    }
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse(text, Path::new(ORIGIN)) {
        Ok(policy) => panic!("expected errors, got {policy:#?}"),
        Err(error) => {
            assert_eq!(error.origin, Path::new(ORIGIN));
            assert!(!error.diagnostics.is_empty());
            error.diagnostics
        }
    }
}

/// The single diagnostic of `text`.
fn error(text: &str) -> Diagnostic {
    let diagnostics = errors(text);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    diagnostics.into_iter().next().unwrap()
}

fn with_link(extra: &str) -> String {
    format!("[link]\nkey_file = \"link.key\"\n{extra}\n")
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn error_for_channel(extra: &str) -> Diagnostic {
    error(&with_link(&format!(
        "[[channel]]\nname = \"c\"\nsource = {{ udp = \"127.0.0.1:9\" }}\n{extra}"
    )))
}

/// A file with one channel `c` reading `transport` ("tcp" or "udp") on line 5, and `extra`
/// from line 6 on.
fn one_channel(transport: &str, extra: &str) -> String {
    with_link(&format!(
        "[[channel]]\nname = \"c\"\nsource = {{ {transport} = \"127.0.0.1:9\" }}\n{extra}"
    ))
}

/// The single channel of a valid `one_channel` file.
fn channel_ok(transport: &str, extra: &str) -> Channel {
    ok(&one_channel(transport, extra)).channels.remove(0)
}
