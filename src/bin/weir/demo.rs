//! `weir demo`: the loopback gateway, end to end, with a report a person can read: weir-send
//! (OT) → link → weir-recv (IT, link → spool) → spool → weir-deliver (IT, spool → TCP/UDP
//! sinks and consumers over mutual TLS).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use weir::consumer::client::{ClientOptions, Consumer, Transport};
use weir::consumer::protocol::{Message, RecordKind, StartAt, Subscription};
use weir::harness::collect::{TcpCollector, UdpCollector};
use weir::harness::drive::{send_datagrams, send_stream};
use weir::harness::pki::{ClientFiles, TestPki};
use weir::harness::process::{sibling_binary, Daemon};
use weir::policy::{self, Sink, Source};

/// Options of `weir demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Policy of the gateway; its three daemons (weir-send, weir-recv, weir-deliver) run on
    /// this host, so its addresses must be local.
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

    let mtls = mtls_consumers(&policy, &tcp_name, &udp_name)?;
    // The IT-side consumers of the sinks first, then weir-recv (it publishes the spool's
    // status files when it starts), then weir-deliver (it reads them), then weir-send.
    let tcp_consumer = TcpCollector::start(tcp_out).with_context(|| format!("cannot listen on {tcp_out}"))?;
    let udp_consumer = UdpCollector::start(udp_out).with_context(|| format!("cannot bind {udp_out}"))?;
    std::fs::create_dir_all(&args.logs)?;
    let start = |name: &str, log: &str| {
        Daemon::spawn_ready(
            &sibling_binary(name)?,
            &args.policy,
            &args.logs.join(log),
            &[],
            &format!("{name} ready"),
        )
        .with_context(|| format!("{name} did not start"))
    };
    let mut recv = start("weir-recv", "weir-recv.log")?;
    let mut deliver = start("weir-deliver", "weir-deliver.log")?;
    let mut send = start("weir-send", "weir-send.log")?;
    println!(
        "weir-recv (IT: link → spool), weir-deliver (IT: spool → sinks and consumers) and \
         weir-send (OT) are running; logs in {}",
        args.logs.display()
    );
    println!();

    // Consumers over mutual TLS (weir-deliver's server) follow the spool from its current end.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let followers = match &mtls {
        Some(mtls) => Some(runtime.block_on(mtls.follow(args.datagrams))?),
        None => None,
    };
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
    if let (Some(mtls), Some((stream_task, datagram_task))) = (&mtls, followers) {
        let stream =
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(60), stream_task).await });
        let datagrams_read =
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(20), datagram_task).await });
        match stream {
            Ok(Ok(Ok((bytes, sha256)))) => {
                let same = sha256 == sent.sha256 && bytes == sent.bytes;
                ok &= same;
                println!(
                    "IT ← consumer {} over TLS {}: [{tcp_name}] {bytes} bytes from the spool, sha256 {}",
                    mtls.stream_identity,
                    mtls.addr,
                    if same { "matches" } else { "DIFFERS" }
                );
            }
            other => {
                ok = false;
                println!("IT ← consumer over TLS: [{tcp_name}] failed: {other:?}");
            }
        }
        match datagrams_read {
            Ok(Ok(Ok(digests))) => {
                let intact = datagrams.iter().filter(|d| digests.contains(&d.sha256)).count();
                ok &= intact == datagrams.len();
                println!(
                    "IT ← consumer {} over QUIC {}: [{udp_name}] {} records, {intact} of {} sent match",
                    mtls.datagram_identity,
                    mtls.addr,
                    digests.len(),
                    datagrams.len()
                );
            }
            other => {
                ok = false;
                println!("IT ← consumer over QUIC: [{udp_name}] failed: {other:?}");
            }
        }
    }
    // In the order data flows: nothing is left in flight toward a stopped daemon.
    send.stop(Duration::from_secs(5));
    recv.stop(Duration::from_secs(5));
    deliver.stop(Duration::from_secs(5));
    if let Some(mtls) = &mtls {
        println!();
        println!(
            "The spool keeps every record; with weir-recv and weir-deliver running (weir-deliver \
             serves the spool), read it yourself:"
        );
        println!(
            "  target/release/weir-recv --policy {} &   # then, once it logged \"weir-recv ready\":",
            args.policy.display()
        );
        println!(
            "  target/release/weir-deliver --policy {} &",
            args.policy.display()
        );
        println!(
            "  target/release/weir sub --server {} --ca {} --cert {} --key {} --channel {tcp_name} --from earliest --stop-at-end > /tmp/historian.bin",
            mtls.addr,
            mtls.pki.ca_cert.display(),
            mtls.stream_client.cert.display(),
            mtls.stream_client.key.display(),
        );
    }
    println!();
    if ok {
        println!("demo passed: everything crossed the one-way link intact");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("demo FAILED: see the logs in {}", args.logs.display());
        Ok(ExitCode::from(1))
    }
}

/// The demo's consumers over mutual TLS: one per channel, each with its own identity.
struct Mtls {
    addr: std::net::SocketAddr,
    pki: TestPki,
    stream_channel: String,
    stream_identity: String,
    stream_client: ClientFiles,
    datagram_channel: String,
    datagram_identity: String,
    datagram_client: ClientFiles,
}

type Follower<T> = tokio::task::JoinHandle<anyhow::Result<T>>;

/// Creates the dev PKI the policy's `[recv.serve]` names (if missing) and a client certificate
/// for the first identity granted each demo channel. `None` when the policy serves no one.
fn mtls_consumers(policy: &policy::Policy, stream: &str, datagram: &str) -> anyhow::Result<Option<Mtls>> {
    let Some(serve) = policy.recv.as_ref().and_then(|r| r.serve.as_ref()) else {
        return Ok(None);
    };
    let Some(addr) = serve.tls.filter(|tls| serve.quic == Some(*tls)) else {
        bail!("the demo needs [recv.serve] with tls and quic on the same address");
    };
    let client_ca = tidy(&serve.client_ca);
    let dir = client_ca.parent().unwrap_or(std::path::Path::new("."));
    let expected = |name: &str| dir.join(name);
    if tidy(&serve.cert) != expected("server.pem")
        || tidy(&serve.key) != expected("server.key")
        || tidy(&serve.client_ca) != expected("ca.pem")
    {
        bail!("the demo creates ca.pem, server.pem and server.key in one directory; the policy's [recv.serve] must name them");
    }
    let pki = TestPki::create(dir, "weir dev CA")
        .with_context(|| format!("cannot create the dev PKI in {}", dir.display()))?;
    let identity = |channel: &str| {
        policy
            .channels
            .iter()
            .find(|c| c.name == channel)
            .and_then(|c| c.consumers.first().cloned())
            .with_context(|| format!("channel {channel} grants no consumer"))
    };
    let (stream_identity, datagram_identity) = (identity(stream)?, identity(datagram)?);
    Ok(Some(Mtls {
        addr,
        stream_channel: stream.to_owned(),
        stream_client: pki.client(&stream_identity)?,
        stream_identity,
        datagram_channel: datagram.to_owned(),
        datagram_client: pki.client(&datagram_identity)?,
        datagram_identity,
        pki,
    }))
}

impl Mtls {
    fn options(&self, client: &ClientFiles, transport: Transport) -> ClientOptions {
        self.pki.client_options(client, self.addr, transport)
    }

    /// Subscribes both channels from their current end; the stream's follower returns the
    /// bytes and SHA-256 of the first stream that ends, the datagrams' the digests of `count`
    /// records.
    async fn follow(&self, count: u64) -> anyhow::Result<(Follower<(u64, String)>, Follower<Vec<String>>)> {
        let latest = |channel: &str| {
            vec![Subscription {
                channel: channel.to_owned(),
                from: StartAt::Latest,
            }]
        };
        let (mut stream, _) = Consumer::connect(
            &self.options(&self.stream_client, Transport::Tls),
            latest(&self.stream_channel),
        )
        .await?;
        let (mut datagrams, _) = Consumer::connect(
            &self.options(&self.datagram_client, Transport::Quic),
            latest(&self.datagram_channel),
        )
        .await?;
        let stream_task = tokio::spawn(async move {
            let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
            let mut bytes = 0u64;
            loop {
                match stream.next().await? {
                    Some(Message::Record(r)) if r.kind == RecordKind::Data => {
                        bytes += r.payload.len() as u64;
                        hasher.update(&r.payload);
                    }
                    Some(Message::Record(r)) if matches!(r.kind, RecordKind::End | RecordKind::Abort) => {
                        break
                    }
                    Some(_) => {}
                    None => bail!("the server closed the connection"),
                }
            }
            Ok((bytes, weir::harness::hex(hasher.finish().as_ref())))
        });
        let datagram_task = tokio::spawn(async move {
            let mut digests = Vec::new();
            while (digests.len() as u64) < count {
                match datagrams.next().await? {
                    Some(Message::Record(r)) if r.kind == RecordKind::Data => {
                        digests.push(weir::harness::hex(
                            ring::digest::digest(&ring::digest::SHA256, &r.payload).as_ref(),
                        ));
                    }
                    Some(_) => {}
                    None => bail!("the server closed the connection"),
                }
            }
            Ok(digests)
        });
        Ok((stream_task, datagram_task))
    }
}

/// `path` without `dir/..` detours (`policies/../certs` → `certs`), for paths a person reads.
fn tidy(path: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
