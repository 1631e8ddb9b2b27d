//! Throw-away conduits for the demo, the benchmark and the tests: a directory holding a key
//! and a policy file whose ports are all on loopback.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The knobs a test conduit exposes.
#[derive(Debug, Clone)]
pub struct Conduit {
    /// Link MTU.
    pub mtu: u16,
    /// FEC repair percent.
    pub repair_percent: u16,
    /// Pacing ceiling, e.g. "10 Gbit/s".
    pub bandwidth: String,
    /// Where the sender sends (the receiver, or a relay in front of it).
    pub send_to: SocketAddr,
    /// Where the receiver listens.
    pub listen: SocketAddr,
    /// TCP source and sink.
    pub tcp: (SocketAddr, SocketAddr),
    /// UDP source and sink.
    pub udp: (SocketAddr, SocketAddr),
    /// Block flush deadline, e.g. "1ms".
    pub flush: String,
}

impl Conduit {
    /// The policy text.
    pub fn policy_text(&self) -> String {
        self.policy_text_with("", "")
    }

    /// The policy text with extra lines in the stream channel and in the datagram channel
    /// (e.g. `allow_from`, `filter`, `rate`, `priority`).
    pub fn policy_text_with(&self, stream_extra: &str, datagram_extra: &str) -> String {
        self.policy_text_full(stream_extra, datagram_extra, "")
    }

    /// The policy text with extra lines in each channel and at the end of `[recv]` (e.g. the
    /// spool settings and a `[recv.serve]` table, which must come last).
    /// The spool (`spool`) and the delivery process's sink offsets (`deliver-state`) are in the
    /// policy's directory unless `recv_extra` names another `spool`.
    pub fn policy_text_full(&self, stream_extra: &str, datagram_extra: &str, recv_extra: &str) -> String {
        let names_spool = recv_extra.lines().any(|l| {
            l.trim_start()
                .strip_prefix("spool")
                .is_some_and(|r| r.trim_start().starts_with('='))
        });
        let spool = if names_spool { "" } else { "spool = \"spool\"\n" };
        format!(
            r#"[link]
key_file = "link.key"
mtu = {mtu}
repair = "{repair}%"
bandwidth = "{bandwidth}"
heartbeat = "200ms"
flush = "{flush}"

[send]
to = "{send_to}"

[recv]
listen = "{listen}"
state = "recv.state"
deliver_state = "deliver-state"
{spool}{recv_extra}

[[channel]]
name = "stream"
source = {{ tcp = "{tcp_in}" }}
max_message = "256 KiB"
sinks = [{{ tcp = "{tcp_out}" }}]
{stream_extra}

[[channel]]
name = "datagrams"
source = {{ udp = "{udp_in}" }}
max_message = "16 KiB"
sinks = [{{ udp = "{udp_out}" }}]
{datagram_extra}
"#,
            mtu = self.mtu,
            repair = self.repair_percent,
            bandwidth = self.bandwidth,
            flush = self.flush,
            send_to = self.send_to,
            listen = self.listen,
            tcp_in = self.tcp.0,
            tcp_out = self.tcp.1,
            udp_in = self.udp.0,
            udp_out = self.udp.1,
        )
    }

    /// Writes `link.key` and `policy.toml` into `dir` and returns the policy's path.
    pub fn write(&self, dir: &Path) -> io::Result<PathBuf> {
        self.write_with(dir, "", "")
    }

    /// Like [`Conduit::write`], with extra channel lines (see [`Conduit::policy_text_with`]).
    pub fn write_with(&self, dir: &Path, stream_extra: &str, datagram_extra: &str) -> io::Result<PathBuf> {
        self.write_full(dir, stream_extra, datagram_extra, "")
    }

    /// Like [`Conduit::write_with`], with extra `[recv]` lines too.
    pub fn write_full(
        &self,
        dir: &Path,
        stream_extra: &str,
        datagram_extra: &str,
        recv_extra: &str,
    ) -> io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let key = dir.join("link.key");
        if !key.exists() {
            crate::keys::generate(&key, 1).map_err(|e| io::Error::other(e.to_string()))?;
        }
        let policy = dir.join("policy.toml");
        std::fs::write(
            &policy,
            self.policy_text_full(stream_extra, datagram_extra, recv_extra),
        )?;
        Ok(policy)
    }
}

/// A free loopback port: bind port 0 for both TCP and UDP and keep the number. Another
/// process could take it before the daemon binds; tests accept that small race.
pub fn free_port() -> io::Result<u16> {
    for _ in 0..64 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, "no free loopback port"))
}

/// `127.0.0.1:<free port>`.
pub fn free_addr() -> io::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

/// A fresh directory under the system temp dir.
pub fn scratch_dir(label: &str) -> io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("weir-{label}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
