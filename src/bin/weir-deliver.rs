//! `weir-deliver`: the IT side's delivery process: spool → consumers and sinks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use weir::cli::CommonArgs;
use weir::deliver::offsets::SinkOffset;
use weir::deliver::{self, Follow, SinkCounters};
use weir::observe::deliver::{DeliverView, SinkStat};
use weir::policy::{self, Policy, RecvSide, Sink};
use weir::signals::{Request, Signals};

/// The IT side's delivery process: reads the spool that weir-recv writes (read-only), serves it
/// to enterprise consumers over mutual TLS (TLS 1.3 and QUIC, [recv.serve]) and re-emits each
/// channel to its sinks (TCP, UDP). It holds the TLS key and never the link key: run it under
/// its own user, in the spool's group, without read access to the key file.
///
/// Every sink is a cursor in the spool with a durable offset (in recv.deliver_state): a sink
/// whose consumer is down, slow or restarted resumes where it stopped; what retention removed
/// before the sink read it is a logged, counted gap. A TCP stream reaches its consumer whole
/// with a FIN only if all of it is in the spool, and is reset otherwise.
///
/// SIGHUP reloads the consumer grants of the policy file; SIGINT or SIGTERM stops: open TCP
/// streams toward consumers are reset (never closed as if complete) and each sink's offset is
/// stored.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Example: weir-deliver --policy /etc/weir/policy.toml --user weir-deliver\n\
    Start weir-recv on the same host first: it writes recv.spool, this process reads it.\n\
    Consumers: see CONSUMERS.md and `weir sub --help`. Sinks resume from their offsets in\n\
    recv.deliver_state; delete a sink's offset file to restart it at the spool's end.\n\
    SIGHUP reloads consumer grants; SIGTERM stops cleanly."
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse().common;
    args.init_logging();
    weir::cli::exit_code("weir-deliver", run(args))
}

fn run(args: CommonArgs) -> anyhow::Result<()> {
    let policy = policy::load(&args.policy).map_err(|e| anyhow::anyhow!("invalid policy\n{e}"))?;
    let side = policy.require_recv().map_err(|e| anyhow::anyhow!("{e}"))?.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Listeners first (they may need privileges), then the user switch, then the files.
    let names: Vec<String> = policy.channels.iter().map(|c| c.name.clone()).collect();
    let (spool, _watch) = deliver::watch::start(&side.spool, &names)
        .with_context(|| format!("recv.spool: cannot watch {}", side.spool.display()))?;
    let server = match &side.serve {
        Some(serve) => Some(runtime.block_on(weir::serve::Server::start(
            serve,
            spool.clone(),
            weir::serve::grants(&policy),
        ))?),
        None => None,
    };
    args.drop_privileges()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sinks = start_sinks(&runtime, &policy, &side, &spool, &stop_rx)?;
    let view = DeliverView {
        spool,
        sinks: sinks.iter().map(|(stat, _)| stat.clone()).collect(),
        serve: server.as_ref().map(weir::serve::Server::counters),
    };
    if let Some(addr) = side.deliver_metrics {
        runtime
            .block_on(weir::observe::start_http(
                addr,
                weir::observe::deliver::handler(view),
            ))
            .with_context(|| format!("recv.deliver_metrics: cannot listen on tcp {addr}"))?;
    }
    tracing::info!(
        policy = %args.policy.display(),
        spool = %side.spool.display(),
        sinks = sinks.len(),
        consumers = server.is_some(),
        "weir-deliver ready"
    );
    let mut signals = runtime.block_on(async { Signals::install() })?;
    let mut in_force = policy;
    while runtime.block_on(signals.next()) == Request::Reload {
        if let Some(new) = weir::reload::load_live(&args.policy, &in_force) {
            if let Some(server) = &server {
                server.set_grants(weir::serve::grants(&new));
            }
            tracing::info!(fingerprint = %new.fingerprint, "policy reloaded");
            in_force = new;
        }
    }
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    runtime.block_on(async {
        for (_, task) in sinks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    tracing::info!("weir-deliver stopped");
    Ok(())
}

/// Starts every channel's sinks, each from its stored offset (or the spool's end the first
/// time).
fn start_sinks(
    runtime: &tokio::runtime::Runtime,
    policy: &Policy,
    side: &RecvSide,
    spool: &weir::spool::view::SpoolView,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<(SinkStat, tokio::task::JoinHandle<()>)>> {
    let mut started = Vec::new();
    for ch in &policy.channels {
        let Some(view) = spool.channels.get(&ch.name) else {
            continue;
        };
        for sink in &ch.sinks {
            let label = sink.to_string();
            let (offset, stored) = SinkOffset::open(&side.deliver_state, &ch.name, &label)
                .with_context(|| format!("channel {}: sink {label}", ch.name))?;
            let status = *view.status.borrow();
            let follow = match stored {
                // A published status always counts its segment header bytes.
                Some(at) if status.bytes > 0 && at > status.end => anyhow::bail!(
                    "channel {}: sink {label}: {} says offset {at}, past the spool's end {}: the \
                     spool was replaced or rewound. Delete the file to restart the sink at the \
                     spool's end, or write a valid offset",
                    ch.name,
                    offset.path().display(),
                    status.end
                ),
                Some(at) => Follow::new(view.clone(), at, side.sink_after),
                None => Follow::from_end(view.clone(), side.sink_after),
            };
            let counters = Arc::new(SinkCounters::default());
            let name = format!("{}→{label}", ch.name);
            let task = match *sink {
                Sink::Tcp(addr) => runtime.spawn(deliver::tcp::run(
                    name,
                    addr,
                    follow,
                    offset,
                    counters.clone(),
                    stop.clone(),
                )),
                Sink::Udp(addr) => {
                    let socket = runtime
                        .block_on(tokio::net::UdpSocket::bind(unspecified(addr)))
                        .with_context(|| {
                            format!("channel {}: cannot open a udp socket for {addr}", ch.name)
                        })?;
                    runtime.spawn(deliver::udp::run(
                        name,
                        addr,
                        socket,
                        follow,
                        offset,
                        counters.clone(),
                        stop.clone(),
                    ))
                }
            };
            tracing::info!(channel = %ch.name, sink = %label, offset = ?stored, "sink ready");
            let stat = SinkStat {
                channel: ch.name.clone(),
                sink: label,
                counters,
            };
            started.push((stat, task));
        }
    }
    Ok(started)
}

fn unspecified(addr: SocketAddr) -> SocketAddr {
    if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    }
}
