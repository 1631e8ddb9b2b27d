//! `weir-recv`: the IT side of a weir conduit.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use weir::net::RecvLink;
use weir::observe::recv::{RecvView, SharedRecvView, SinkStat};
use weir::policy::{self, Sink, Source};
use weir::proto::recv::{ChannelSpec, Receiver, ReceiverConfig};
use weir::recv::{Dispatch, LiveUpdate};
use weir::signals::{Request, Signals};
use weir::sinks::{self, SinkHandle};

/// Memory for blocks being reassembled; with the sink queues this bounds the daemon's RSS.
const MAX_PENDING_BYTES: usize = 32 << 20;
/// The link is reported down after this many heartbeat intervals without authenticated traffic.
const LINK_DOWN_HEARTBEATS: u32 = 3;

/// The IT side of a weir conduit: receives the one-way link's UDP datagrams, rejects forged,
/// replayed and malformed ones (each counted by reason), recovers lost datagrams by forward
/// error correction, puts every channel back in order, reports exactly which messages could
/// not be recovered, and re-emits the channels to their sinks (TCP, UDP). It never writes to
/// the link.
///
/// Stop it with SIGINT or SIGTERM; open TCP streams toward consumers are then reset, never
/// closed as if complete. SIGHUP reloads the policy file: the fingerprint compared with the
/// sender's and each channel's max_message change at once; a file that is invalid or that
/// changes anything else is refused with the reason and the policy in force stays.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Example: weir-recv --policy /etc/weir/policy.toml\n\
    The kernel receive buffer matters on a one-way link: raise net.core.rmem_max to at least\n\
    recv.socket_buffer (default 32 MiB), e.g. `sysctl -w net.core.rmem_max=33554432`.\n\
    With recv.spool set it stores every channel durably; with [recv.serve] it serves them to\n\
    consumers over mutual TLS (TLS 1.3 and QUIC): see CONSUMERS.md and `weir sub --help`.\n\
    SIGHUP reloads the policy (channel rules and consumer grants); SIGTERM stops cleanly."
)]
struct Args {
    /// The conduit's policy file (the same file as on the OT host).
    #[arg(short, long, default_value = "/etc/weir/policy.toml")]
    policy: PathBuf,
    /// Log filter, e.g. `info`, `debug`, `weir=debug` (RUST_LOG wins when set).
    #[arg(long, default_value = "info")]
    log: String,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Switch to this unprivileged user once the link socket is bound and the key and state
    /// are read. The state file's directory must be writable by that user.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    weir::logging::init(&args.log, args.log_json);
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weir-recv: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let policy = policy::load(&args.policy).map_err(|e| anyhow::anyhow!("invalid policy\n{e}"))?;
    let side = policy.require_recv().map_err(|e| anyhow::anyhow!("{e}"))?.clone();
    let keys = weir::keys::load(&policy.link.key_file)?;
    let replay_floor = weir::state::load(&side.state).context("recv.state")?;

    let (link, granted) = RecvLink::bind(side.listen, side.socket_buffer)
        .with_context(|| format!("cannot listen on the link at udp {}", side.listen))?;
    // Linux grants twice what was asked (half is bookkeeping), capped at 2 × net.core.rmem_max.
    if granted < side.socket_buffer {
        tracing::warn!(
            requested = side.socket_buffer,
            granted,
            "link receive buffer smaller than asked: bursts may be lost; raise net.core.rmem_max"
        );
    }
    match &args.user {
        Some(user) => weir::privilege::drop_to(user)?,
        None => weir::privilege::warn_if_root(),
    }
    weir::state::check_writable(&side.state).context("recv.state")?;
    tracing::info!(
        policy = %args.policy.display(),
        fingerprint = %policy.fingerprint,
        listen = %side.listen,
        receive_buffer = granted,
        keys = keys.len(),
        "weir-recv starting"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut dispatch = Dispatch::default();
    let mut sink_tasks = Vec::new();
    let mut sink_stats = Vec::new();
    for ch in &policy.channels {
        dispatch.name_channel(ch.id.0, &ch.name);
        let streams = matches!(ch.source, Source::Tcp(_));
        for sink in &ch.sinks {
            let label = format!("{}→{}", ch.name, sink.addr());
            let (handle, events, queued) = SinkHandle::new(label.clone(), streams, side.queue);
            let counters = handle.counters.clone();
            sink_stats.push(SinkStat {
                channel: ch.name.clone(),
                sink: sink.addr().to_string(),
                counters: counters.clone(),
            });
            let task = match *sink {
                Sink::Tcp(addr) => runtime.spawn(sinks::tcp::run(label, addr, events, queued, counters)),
                Sink::Udp(addr) => {
                    let bind: std::net::SocketAddr = if addr.is_ipv4() {
                        ([0, 0, 0, 0], 0).into()
                    } else {
                        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                    };
                    let socket = runtime
                        .block_on(tokio::net::UdpSocket::bind(bind))
                        .with_context(|| {
                            format!("channel {}: cannot open a udp socket for {addr}", ch.name)
                        })?;
                    runtime.spawn(sinks::udp::run(label, addr, socket, events, queued, counters))
                }
            };
            tracing::info!(channel = %ch.name, sink = %sink.addr(), "sink ready");
            dispatch.add(ch.id.0, &ch.name, handle);
            sink_tasks.push(task);
        }
        if ch.sinks.is_empty() {
            tracing::warn!(channel = %ch.name, "channel has no sink: its messages are counted and discarded");
        }
    }
    let mut view = RecvView::with_sinks(sink_stats);
    let mut spool_thread = None;
    let mut server = None;
    if let Some(dir) = &side.spool {
        let channels: Vec<(u32, String)> = policy.channels.iter().map(|c| (c.id.0, c.name.clone())).collect();
        let (feed, spool_view, thread) = weir::spooler::start(dir, &side.spooling, &channels)
            .with_context(|| format!("recv.spool: cannot open the spool in {}", dir.display()))?;
        dispatch.set_spool(feed);
        spool_thread = Some(thread);
        if let Some(serve) = &side.serve {
            let started = runtime.block_on(weir::serve::Server::start(
                serve,
                spool_view.clone(),
                weir::serve::grants(&policy),
            ))?;
            view.serve = Some(started.counters());
            server = Some(started);
        }
        view.spool = Some(spool_view);
    }
    let mut receiver = Receiver::new(ReceiverConfig {
        keys: keys.iter().cloned().collect(),
        fingerprint: policy.fingerprint.short(),
        channels: channel_specs(&policy),
        reorder_window: policy.link.reorder_window,
        max_pending_bytes: MAX_PENDING_BYTES,
        replay_floor,
    });
    let down_after = policy.link.heartbeat.saturating_mul(LINK_DOWN_HEARTBEATS);
    receiver.enable_link_health(down_after);
    let view: SharedRecvView = Arc::new(Mutex::new(view));
    if let Some(addr) = side.metrics {
        let handler = weir::observe::recv::handler(view.clone());
        runtime
            .block_on(weir::observe::start_http(addr, handler))
            .with_context(|| format!("recv.metrics: cannot listen on tcp {addr}"))?;
    }
    let link_view = view.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_link = stop.clone();
    let state_path = side.state.clone();
    let live: LiveUpdate = Arc::default();
    let link_live = live.clone();
    let link_thread = std::thread::Builder::new()
        .name("link-recv".into())
        .spawn(move || {
            weir::recv::run_link(
                receiver,
                link,
                dispatch,
                &state_path,
                link_live,
                link_view,
                stop_link,
            )
        })?;

    let mut signals = runtime.block_on(async { Signals::install() })?;
    tracing::info!("weir-recv ready");
    let mut in_force = policy;
    while runtime.block_on(signals.next()) == Request::Reload {
        reload(&args.policy, &mut in_force, &live);
        if let Some(server) = &server {
            server.set_grants(weir::serve::grants(&in_force));
        }
    }
    tracing::info!("stopping");
    stop.store(true, Ordering::Relaxed);
    let counters = link_thread
        .join()
        .map_err(|_| anyhow::anyhow!("link thread panicked"))?;
    // The dispatch is gone, so the spool feed is closed: the writer syncs every log and ends.
    if let Some(thread) = spool_thread {
        let _ = thread.join();
    }
    // The dispatch is gone, so every sink queue is closed: let them write out what they hold.
    runtime.block_on(async {
        for t in sink_tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    tracing::info!(
        datagrams = counters.datagrams,
        messages = counters.messages,
        messages_lost = counters.messages_lost,
        "weir-recv stopped"
    );
    Ok(())
}

fn channel_specs(policy: &policy::Policy) -> Vec<ChannelSpec> {
    policy
        .channels
        .iter()
        .map(|c| ChannelSpec {
            id: c.id.0,
            streams: matches!(c.source, Source::Tcp(_)),
            max_message: c.max_message,
        })
        .collect()
}

/// Applies a new policy file on SIGHUP, or keeps the one in force and says why.
fn reload(path: &std::path::Path, in_force: &mut policy::Policy, live: &LiveUpdate) {
    let Some(new) = weir::reload::load_live(path, in_force) else {
        return;
    };
    let update = (new.fingerprint.short(), channel_specs(&new));
    match live.lock() {
        Ok(mut l) => *l = Some(update),
        Err(poisoned) => *poisoned.into_inner() = Some(update),
    }
    tracing::info!(fingerprint = %new.fingerprint, "policy reloaded");
    *in_force = new;
}
