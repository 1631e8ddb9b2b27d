//! `weir-recv`: the IT side's link process: link → spool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Parser;

use weir::cli::CommonArgs;
use weir::it_link::{Dispatch, LiveUpdate};
use weir::net::RecvLink;
use weir::observe::recv::{RecvView, SharedRecvView};
use weir::policy::{self, Source};
use weir::proto::recv::{ChannelSpec, Receiver, ReceiverConfig};
use weir::signals::{Request, Signals};

/// Memory for blocks being reassembled; with the spool queue this bounds the daemon's RSS.
const MAX_PENDING_BYTES: usize = 32 << 20;
/// The link is reported down after this many heartbeat intervals without authenticated traffic.
const LINK_DOWN_HEARTBEATS: u32 = 3;

/// The IT side's link process: receives the one-way link's UDP datagrams, rejects forged,
/// replayed and malformed ones (each counted by reason), recovers lost datagrams by forward
/// error correction, puts every channel back in order, names exactly which messages could not
/// be recovered, and stores every channel in the spool (recv.spool). It holds the link key and
/// opens no socket toward the IT network but its metrics address; `weir-deliver`, a separate
/// process under its own user, serves the spool to consumers and sinks. It never writes to the
/// link.
///
/// Stop it with SIGINT or SIGTERM: the spool is synced first. SIGHUP reloads the policy file:
/// the fingerprint compared with the sender's and each channel's max_message change at once; a
/// file that is invalid or that changes anything else is refused with the reason and the policy
/// in force stays.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Example: weir-recv --policy /etc/weir/policy.toml --user weir-recv\n\
    The kernel receive buffer matters on a one-way link: raise net.core.rmem_max to at least\n\
    recv.socket_buffer (default 32 MiB), e.g. `sysctl -w net.core.rmem_max=33554432`.\n\
    It writes every channel to recv.spool; run weir-deliver on the same host to serve it.\n\
    SIGHUP reloads the policy; SIGTERM stops cleanly."
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse().common;
    args.init_logging();
    weir::cli::exit_code("weir-recv", run(args))
}

fn run(args: CommonArgs) -> anyhow::Result<()> {
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
    args.drop_privileges()?;
    weir::state::check_writable(&side.state).context("recv.state")?;
    tracing::info!(
        policy = %args.policy.display(),
        fingerprint = %policy.fingerprint,
        listen = %side.listen,
        receive_buffer = granted,
        keys = keys.len(),
        "weir-recv starting"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let channels: Vec<(u32, String)> = policy.channels.iter().map(|c| (c.id.0, c.name.clone())).collect();
    let (feed, spool_view, spool_thread) = weir::spool::writer::start(&side.spool, &side.spooling, &channels)
        .with_context(|| format!("recv.spool: cannot open the spool in {}", side.spool.display()))?;
    let mut dispatch = Dispatch::new(feed);
    for ch in &policy.channels {
        dispatch.name_channel(ch.id.0, &ch.name);
    }
    let view = RecvView::with_spool(spool_view);
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
            weir::it_link::run_link(
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
    }
    tracing::info!("stopping");
    stop.store(true, Ordering::Relaxed);
    let counters = link_thread
        .join()
        .map_err(|_| anyhow::anyhow!("link thread panicked"))?;
    // The dispatch is gone, so the spool feed is closed: the writer syncs every log and ends.
    let _ = spool_thread.join();
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
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
