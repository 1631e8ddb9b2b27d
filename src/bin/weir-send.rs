//! `weir-send`: the OT side of a weir conduit.

use std::sync::{Arc, Mutex, RwLock};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use weir::cli::CommonArgs;
use weir::net::SendLink;
use weir::observe::send::SharedSendView;
use weir::policy::{self, Source};
use weir::proto::send::{Sender, SenderConfig};
use weir::signals::{Request, Signals};
use weir::sources::{self, ChannelCounters, Intake, Rules, SharedRules, SourceContext};

/// The OT side of a weir conduit: reads the channels the policy declares (TCP streams, UDP
/// datagrams) from the plant network, frames them, protects them with forward error
/// correction, authenticates every datagram (AES-256-GCM) and paces them onto the one-way
/// link as UDP. It never reads from the link.
///
/// Stop it with SIGINT or SIGTERM: it stops reading, sends everything already queued and a
/// last heartbeat, then exits. Open TCP streams are sent as aborted.
///
/// SIGHUP reloads the policy file: each channel's allow_from, filter, on_violation, rate,
/// priority and max_message change at once, nothing in flight is lost. A file that is invalid,
/// or that changes anything else (link, [send], the channels, their sources or sinks), is
/// refused with the reason and the policy in force stays.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Example: weir-send --policy /etc/weir/policy.toml\n\
    Check a policy first with `weir check FILE`; make the key with `weir keygen FILE`."
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse().common;
    args.init_logging();
    weir::cli::exit_code("weir-send", run(args))
}

fn session_id() -> anyhow::Result<u64> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut random = [0u8; 4];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
    Ok(((secs & 0xffff_ffff) << 32) | u64::from(u32::from_be_bytes(random)))
}

fn run(args: CommonArgs) -> anyhow::Result<()> {
    let policy = policy::load(&args.policy).map_err(|e| anyhow::anyhow!("invalid policy\n{e}"))?;
    let side = policy.require_send().map_err(|e| anyhow::anyhow!("{e}"))?.clone();
    if policy.channels.is_empty() {
        bail!(
            "{}: no [[channel]] declared: nothing to send",
            args.policy.display()
        );
    }
    let keys = weir::keys::load(&policy.link.key_file)?;
    let key = keys.primary().clone();
    let session = session_id()?;
    let budget = policy.link.datagram_budget(&side.to);
    let sender = Sender::new(SenderConfig {
        key,
        session,
        datagram_budget: budget,
        max_source_symbols: policy.link.block_symbols,
        repair_percent: policy.link.repair_percent,
        flush: policy.link.flush,
        heartbeat: policy.link.heartbeat,
        fingerprint: policy.fingerprint.short(),
        channels: policy.channels.iter().map(|c| c.id.0).collect(),
        // Sources enforce each channel's max_message (which a reload may raise); the core only
        // guards its own bound.
        max_message: *weir::policy::limits::MAX_MESSAGE_RANGE.end() as usize,
    })?;
    let link = SendLink::open(side.bind, side.to, 4 << 20)
        .with_context(|| format!("cannot open the link socket toward {}", side.to))?;
    tracing::info!(
        policy = %args.policy.display(),
        fingerprint = %policy.fingerprint,
        to = %side.to,
        channels = policy.channels.len(),
        "weir-send starting"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (intake, queue) = Intake::new(side.queue);
    let counters: Vec<Arc<ChannelCounters>> = policy
        .channels
        .iter()
        .map(|c| Arc::new(ChannelCounters::new(&c.name)))
        .collect();
    let rules: Vec<SharedRules> = policy
        .channels
        .iter()
        .map(|c| Arc::new(RwLock::new(Arc::new(Rules::new(c.clone())))))
        .collect();
    let fingerprint = Arc::new(Mutex::new(policy.fingerprint.short()));
    let bandwidth = policy.link.bandwidth_bps;
    let view: SharedSendView = Arc::default();
    if let Some(addr) = side.metrics {
        let handler = weir::observe::send::handler(view.clone(), counters.clone());
        runtime
            .block_on(weir::observe::start_http(addr, handler))
            .with_context(|| format!("send.metrics: cannot listen on tcp {addr}"))?;
    }
    let (link_counters, link_fingerprint) = (counters.clone(), fingerprint.clone());
    let link_thread = std::thread::Builder::new()
        .name("link-send".into())
        .spawn(move || {
            weir::ot_link::run_link(
                sender,
                link,
                bandwidth,
                queue,
                link_counters,
                link_fingerprint,
                view,
            )
        })?;

    let privileges = args.clone();
    let policy_path = args.policy.clone();
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        // Bind every source first (as root, if started so), then drop privileges, then serve.
        let mut bound = Vec::new();
        for ch in &policy.channels {
            let name = &ch.name;
            let socket = match ch.source {
                Source::Tcp(addr) => BoundSource::Tcp(
                    TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("channel {name}: cannot listen on tcp {addr}"))?,
                ),
                Source::Udp(addr) => BoundSource::Udp(
                    bind_udp_source(addr)
                        .with_context(|| format!("channel {name}: cannot bind udp {addr}"))?,
                ),
            };
            tracing::info!(channel = %name, source = %ch.source, "source bound");
            bound.push(socket);
        }
        privileges.drop_privileges()?;
        let mut tasks = Vec::new();
        for ((socket, ch), (rules, counters)) in bound
            .into_iter()
            .zip(&policy.channels)
            .zip(rules.iter().zip(&counters))
        {
            let ctx = SourceContext {
                id: ch.id.0,
                rules: rules.clone(),
                counters: counters.clone(),
                intake: intake.clone(),
                stop: stop_rx.clone(),
            };
            tasks.push(match socket {
                BoundSource::Tcp(listener) => tokio::spawn(sources::tcp::run(listener, ctx)),
                BoundSource::Udp(socket) => tokio::spawn(sources::udp::run(socket, ctx)),
            });
        }
        drop(intake);
        let reporter = tokio::spawn(sources::report_drops(counters.clone(), DROP_REPORT_EVERY));
        let mut signals = Signals::install()?;
        tracing::info!("weir-send ready");
        let mut in_force = policy;
        while signals.next().await == Request::Reload {
            reload(&policy_path, &mut in_force, &rules, &fingerprint);
        }
        tracing::info!("stopping: sending what is queued");
        let _ = stop_tx.send(true);
        reporter.abort();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        anyhow::Ok(())
    })?;
    // Stream tasks still finishing hold intake clones; the runtime's shutdown drops them.
    runtime.shutdown_timeout(Duration::from_secs(5));
    let final_counters = link_thread
        .join()
        .map_err(|_| anyhow::anyhow!("link thread panicked"))?;
    tracing::info!(
        datagrams = final_counters.datagrams,
        messages = final_counters.messages,
        dropped = final_counters.messages_dropped,
        "weir-send stopped"
    );
    Ok(())
}

/// Interval between per-channel drop reports.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Applies a new policy file on SIGHUP, or keeps the one in force and says why.
fn reload(
    path: &std::path::Path,
    in_force: &mut policy::Policy,
    rules: &[SharedRules],
    fingerprint: &Mutex<[u8; 16]>,
) {
    let Some(new) = weir::reload::load_live(path, in_force) else {
        return;
    };
    for (shared, channel) in rules.iter().zip(&new.channels) {
        let next = Arc::new(Rules::new(channel.clone()));
        match shared.write() {
            Ok(mut r) => *r = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }
    match fingerprint.lock() {
        Ok(mut f) => *f = new.fingerprint.short(),
        Err(poisoned) => *poisoned.into_inner() = new.fingerprint.short(),
    }
    tracing::info!(fingerprint = %new.fingerprint, "policy reloaded");
    *in_force = new;
}

enum BoundSource {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Binds a UDP source with a large kernel buffer, so a burst from the plant is not dropped by
/// the kernel while the daemon is busy (best effort: capped by net.core.rmem_max).
fn bind_udp_source(addr: std::net::SocketAddr) -> std::io::Result<UdpSocket> {
    const SOURCE_BUFFER: usize = 4 << 20;
    let socket = std::net::UdpSocket::bind(addr)?;
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(SOURCE_BUFFER);
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}
