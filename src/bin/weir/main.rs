//! `weir`: the admin tool of a weir conduit.

mod bench;
mod bench_consumers;
mod bench_flow;
mod bench_spool;
mod demo;
mod pki;
mod sub;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use weir::policy;
use weir::proto::{fec, wire};

/// The admin tool of a weir conduit (a one-way OT → IT gateway): make the link key and a dev
/// PKI, check a policy file, read channels as a consumer, run the loopback demo and the
/// benchmark.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Log filter for the tool itself, e.g. `warn`, `info`.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
}

/// How `weir check` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// For people: summary, derived parameters and the channel table; errors on stderr.
    Text,
    /// One JSON object on stdout, valid or not.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a new random pre-shared link key (mode 0600; never overwrites a file).
    ///
    /// Install the same key file on both hosts, at the policy's `link.key_file`. To roll keys,
    /// put the new key line first in the sender's file and both lines in the receiver's.
    Keygen {
        /// Where to write the key, e.g. /etc/weir/link.key.
        path: PathBuf,
        /// Key id carried in every datagram (choose a new one for each rollover).
        #[arg(long, default_value_t = 1)]
        id: u16,
    },
    /// Validate a policy file; print its fingerprint, the derived link parameters and the
    /// channels. Exits 1 and lists every error (file:line:column, field, hint) if invalid.
    ///
    /// `--format json` prints one JSON object for automation instead: `valid`, `fingerprint`,
    /// `link`, `derived`, `channels` and `errors` (each with `line`, `column`, `field`,
    /// `message`, `hint`); the exit code is 1 when invalid either way.
    Check {
        /// The policy file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run the loopback demo: start weir-recv, weir-deliver and weir-send with a policy
    /// (default policies/loopback.toml), push a TCP stream and UDP datagrams into the OT side,
    /// and show them coming out of the IT side intact (sinks and consumers of weir-deliver).
    Demo(demo::DemoArgs),
    /// Measure goodput, CPU per daemon, peak memory and latency of the gateway on loopback.
    Bench(bench::BenchArgs),
    // Its help text is the doc comment of `PkiArgs`.
    Pki(pki::PkiArgs),
    /// Read channels from weir-recv's consumer server over mutual TLS (TLS or QUIC): from the
    /// oldest stored record, the newest, or an offset to resume; to stdout or a file.
    Sub(sub::SubArgs),
    /// Show a running daemon's status: link state, heartbeat age, policy fingerprint match,
    /// drops, per-channel rates and loss, from its metrics endpoint (`[recv] metrics` or
    /// `[send] metrics` in the policy).
    Status {
        /// The daemon's metrics endpoint.
        #[arg(long, default_value = "http://127.0.0.1:9101")]
        url: String,
        /// Print the raw status JSON instead.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    weir::logging::init(&args.log, false);
    let result = match args.command {
        Command::Keygen { path, id } => keygen(&path, id),
        Command::Check { file, format } => check(&file, format),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Pki(a) => pki::run(a),
        Command::Sub(a) => sub::run(a),
        Command::Status { url, json } => status(&url, json),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("weir: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn keygen(path: &Path, id: u16) -> anyhow::Result<std::process::ExitCode> {
    weir::keys::generate(path, id)?;
    println!(
        "wrote key id {id} to {} (mode 0600); copy it to both hosts",
        path.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn check(file: &Path, format: Format) -> anyhow::Result<std::process::ExitCode> {
    let loaded = policy::load(file);
    if format == Format::Json {
        let (json, code) = match loaded {
            Ok(policy) => {
                let mut json = policy.to_json();
                if let Some(object) = json.as_object_mut() {
                    object.insert("derived".to_owned(), Derived::of(&policy).to_json());
                }
                (json, std::process::ExitCode::SUCCESS)
            }
            Err(error) => (error.to_json(), std::process::ExitCode::from(1)),
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(code);
    }
    let policy = match loaded {
        Ok(p) => p,
        Err(error) => {
            eprintln!("{error}");
            eprintln!(
                "{}: invalid ({} error(s))",
                file.display(),
                error.diagnostics.len()
            );
            return Ok(std::process::ExitCode::from(1));
        }
    };
    println!("{}: valid", file.display());
    println!();
    print!("{}", policy.link_summary());
    print!("{}", Derived::of(&policy).text());
    println!();
    print!("{}", policy.channel_table());
    print!("{}", consumer_summary(&policy));
    Ok(std::process::ExitCode::SUCCESS)
}

/// The spool, the consumer server and who may read which channel, for `weir check`.
fn consumer_summary(policy: &policy::Policy) -> String {
    use policy::units::{format_duration, format_size};
    let Some(recv) = &policy.recv else {
        return String::new();
    };
    let mut out = String::from("\n");
    let s = &recv.spooling;
    out.push_str(&format!(
        "spool           {} (segments of {}, fsync every {} or {}, keep {}{})\n",
        recv.spool.display(),
        format_size(s.segment),
        format_duration(s.fsync),
        format_size(s.fsync_bytes),
        s.retain.map_or("everything".to_owned(), format_size),
        s.retain_age
            .map_or(String::new(), |age| format!(" and {}", format_duration(age))),
    ));
    out.push_str(&format!(
        "sinks           weir-deliver sends records once {}; offsets in {}\n",
        match recv.sink_after {
            policy::SinkAfter::Fsync => "fsynced",
            policy::SinkAfter::Write => "written (before fsync)",
        },
        recv.deliver_state.display(),
    ));
    if let Some(serve) = &recv.serve {
        let on = |a: Option<std::net::SocketAddr>| a.map_or("off".to_owned(), |a| a.to_string());
        out.push_str(&format!(
            "consumers       tls {}, quic {}; client certificates from {}; at most {} connections\n",
            on(serve.tls),
            on(serve.quic),
            serve.client_ca.display(),
            serve.max_connections
        ));
        for channel in &policy.channels {
            let who = if channel.consumers.is_empty() {
                "nobody".to_owned()
            } else {
                channel.consumers.join(", ")
            };
            out.push_str(&format!("  {:<13} {who}\n", channel.name));
        }
    }
    out
}

/// What the link protocol makes of the policy's link settings.
struct Derived {
    /// Bytes of one FEC symbol, carried in one datagram.
    symbol: usize,
    /// Bytes of protocol overhead per datagram (header, symbol header, AEAD tag).
    overhead: usize,
    /// Source symbols of a full block.
    k: u16,
    /// Repair symbols of a full block.
    r: u16,
    /// Bytes of data in a full block.
    block: usize,
    /// How long a partly filled block waits.
    flush: std::time::Duration,
}

impl Derived {
    fn of(policy: &policy::Policy) -> Self {
        let link = &policy.link;
        let peer = policy
            .send
            .as_ref()
            .map(|s| s.to)
            .or(policy.recv.as_ref().map(|r| r.listen))
            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let symbol = wire::symbol_size_for(link.datagram_budget(&peer));
        let k = link.block_symbols;
        Self {
            symbol,
            overhead: wire::HEADER_LEN + wire::SYMBOL_HEADER_LEN + wire::TAG_LEN,
            k,
            r: fec::repair_count(k, link.repair_percent),
            block: usize::from(k) * symbol,
            flush: link.flush,
        }
    }

    fn text(&self) -> String {
        let Self {
            symbol,
            overhead,
            k,
            r,
            block,
            flush,
        } = self;
        format!(
            "symbol size     {symbol} B per datagram ({overhead} B protocol overhead)\n\
             full block      {k} + {r} symbols, {block} B of data; any {r} of its {} datagrams may be lost\n\
             small blocks    sent after {flush:?} with as few symbols as hold them (always ≥ 2 repair)\n",
            k + r,
        )
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "symbol_size": self.symbol,
            "datagram_overhead": self.overhead,
            "block_source_symbols": self.k,
            "block_repair_symbols": self.r,
            "block_bytes": self.block,
            "flush_ns": u64::try_from(self.flush.as_nanos()).unwrap_or(u64::MAX),
        })
    }
}

/// Reads a key file's existence; creates it when missing (demo only).
fn ensure_key(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        weir::keys::generate(path, 1).with_context(|| format!("cannot create {}", path.display()))?;
        println!("created link key {}", path.display());
    }
    Ok(())
}

fn status(url: &str, json: bool) -> anyhow::Result<std::process::ExitCode> {
    let s = weir::status::fetch(url).with_context(|| format!("cannot read the status at {url}"))?;
    if json {
        println!("{s}");
    } else {
        print!("{}", weir::status::render(&s));
    }
    Ok(std::process::ExitCode::SUCCESS)
}
