//! `weir demo`: the loopback pair, end to end, with a report a person can read.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use weir::harness::collect::{TcpCollector, UdpCollector};
use weir::harness::drive::{send_datagrams, send_stream, wait_for_log};
use weir::harness::process::{sibling_binary, Daemon};
use weir::policy::{self, Sink, Source};

/// Options of `weir demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Policy of the pair; both daemons run on this host, so its addresses must be local.
    #[arg(long, default_value = "policies/loopback.toml")]
    policy: PathBuf,
    /// Bytes to push through the TCP channel.
    #[arg(long, default_value_t = 64 << 20)]
    bytes: u64,
    /// UDP datagrams to push through the UDP channel.
    #[arg(long, default_value_t = 1000)]
    datagrams: u64,
    /// Where the daemons' logs go.
    #[arg(long, default_value = "target/demo")]
    logs: PathBuf,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let policy = policy::load(&args.policy).map_err(|e| anyhow::anyhow!("invalid policy\n{e}"))?;
    super::ensure_key(&policy.link.key_file)?;
    let tcp = policy
        .channels
        .iter()
        .find_map(|c| match (&c.source, c.sinks.first()) {
            (Source::Tcp(src), Some(Sink::Tcp(dst))) => Some((c.name.clone(), *src, *dst)),
            _ => None,
        });
    let udp = policy
        .channels
        .iter()
        .find_map(|c| match (&c.source, c.sinks.first()) {
            (Source::Udp(src), Some(Sink::Udp(dst))) => Some((c.name.clone(), *src, *dst, c.max_message)),
            _ => None,
        });
    let (Some((tcp_name, tcp_in, tcp_out)), Some((udp_name, udp_in, udp_out, udp_max))) = (tcp, udp) else {
        bail!(
            "{}: the demo needs a tcp→tcp channel and a udp→udp channel",
            args.policy.display()
        );
    };

    // The IT-side consumers first, then the receiver, then the sender.
    let tcp_consumer = TcpCollector::start(tcp_out).with_context(|| format!("cannot listen on {tcp_out}"))?;
    let udp_consumer = UdpCollector::start(udp_out).with_context(|| format!("cannot bind {udp_out}"))?;
    std::fs::create_dir_all(&args.logs)?;
    let recv_log = args.logs.join("weir-recv.log");
    let send_log = args.logs.join("weir-send.log");
    let mut recv = Daemon::spawn(&sibling_binary("weir-recv")?, &args.policy, &recv_log, &[])?;
    if !wait_for_log(&recv_log, "weir-recv ready", Duration::from_secs(10)) {
        bail!("weir-recv did not start; its log:\n{}", recv.log_text());
    }
    let mut send = Daemon::spawn(&sibling_binary("weir-send")?, &args.policy, &send_log, &[])?;
    if !wait_for_log(&send_log, "weir-send ready", Duration::from_secs(10)) {
        bail!("weir-send did not start; its log:\n{}", send.log_text());
    }
    println!(
        "weir-recv (IT) and weir-send (OT) are running; logs in {}",
        args.logs.display()
    );
    println!();

    println!(
        "OT → tcp {tcp_in} [{tcp_name}]: writing {} MiB ...",
        args.bytes >> 20
    );
    let sent = send_stream(tcp_in, args.bytes, 7)?;
    let got = tcp_consumer.wait_for(1, Duration::from_secs(60));
    println!(
        "OT → udp {udp_in} [{udp_name}]: sending {} datagrams ...",
        args.datagrams
    );
    let max = udp_max.min(1400);
    let datagrams = send_datagrams(udp_in, args.datagrams, 16..=max, 5_000, 11)?;
    let arrived = udp_consumer.wait_for(args.datagrams, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));

    let mut ok = true;
    match got.first() {
        Some(stream) => {
            let elapsed = stream.ended.duration_since(sent.started).as_secs_f64();
            let same = stream.sha256 == sent.sha256 && stream.bytes == sent.bytes;
            ok &= same && stream.clean;
            println!(
                "IT ← tcp {tcp_out}: {} bytes, sha256 {} … {} ({}, {:.2} Gbit/s end to end)",
                stream.bytes,
                &stream.sha256.get(..16).unwrap_or_default(),
                if same {
                    "matches what was sent"
                } else {
                    "DIFFERS from what was sent"
                },
                if stream.clean { "clean end" } else { "RESET" },
                stream.bytes as f64 * 8.0 / elapsed / 1e9,
            );
        }
        None => {
            ok = false;
            println!("IT ← tcp {tcp_out}: nothing arrived");
        }
    }
    let seen = udp_consumer.seen.lock().map(|m| m.clone()).unwrap_or_default();
    let intact = datagrams.iter().filter(|d| seen.contains_key(&d.sha256)).count();
    ok &= intact == datagrams.len();
    println!(
        "IT ← udp {udp_out}: {arrived} datagrams arrived, {intact} of {} sent match byte for byte",
        datagrams.len()
    );
    send.stop(Duration::from_secs(5));
    recv.stop(Duration::from_secs(5));
    println!();
    if ok {
        println!("demo passed: everything crossed the one-way link intact");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("demo FAILED: see the logs in {}", args.logs.display());
        Ok(ExitCode::from(1))
    }
}
