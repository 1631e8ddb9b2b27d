//! `weir`: the admin tool of a weir conduit.

mod bench;
mod demo;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use weir::policy;
use weir::proto::{fec, wire};

/// The admin tool of a weir conduit (a one-way OT → IT gateway): make the link key, check a
/// policy file, run the loopback demo and the benchmark.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Log filter for the tool itself, e.g. `warn`, `info`.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
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
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Run the loopback demo: start weir-recv and weir-send with a policy (default
    /// policies/loopback.toml), push a TCP stream and UDP datagrams into the OT side, and show
    /// them coming out of the IT side intact.
    Demo(demo::DemoArgs),
    /// Measure goodput, CPU per side, peak memory and latency of the pair on loopback.
    Bench(bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    weir::logging::init(&args.log, false);
    let result = match args.command {
        Command::Keygen { path, id } => keygen(&path, id),
        Command::Check { file } => check(&file),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(a),
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

fn check(file: &Path) -> anyhow::Result<std::process::ExitCode> {
    let policy = match policy::load(file) {
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
    print!("{}", derived_parameters(&policy));
    println!();
    print!("{}", policy.channel_table());
    Ok(std::process::ExitCode::SUCCESS)
}

/// What the link protocol makes of the policy's link settings.
fn derived_parameters(policy: &policy::Policy) -> String {
    let link = &policy.link;
    let peer = policy
        .send
        .as_ref()
        .map(|s| s.to)
        .or(policy.recv.as_ref().map(|r| r.listen))
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let budget = link.datagram_budget(&peer);
    let symbol = wire::symbol_size_for(budget);
    let k = link.block_symbols;
    let r = fec::repair_count(k, link.repair_percent);
    let block = usize::from(k) * symbol;
    format!(
        "symbol size     {symbol} B per datagram ({} B protocol overhead)\n\
         full block      {k} + {r} symbols, {block} B of data; any {r} of its {} datagrams may be lost\n\
         small blocks    sent after {:?} with as few symbols as hold them (always ≥ 2 repair)\n",
        wire::HEADER_LEN + wire::SYMBOL_HEADER_LEN + wire::TAG_LEN,
        k + r,
        link.flush,
    )
}

/// Reads a key file's existence; creates it when missing (demo only).
fn ensure_key(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        weir::keys::generate(path, 1).with_context(|| format!("cannot create {}", path.display()))?;
        println!("created link key {}", path.display());
    }
    Ok(())
}
