//! `weir sub`: a consumer of `weir-recv`'s consumer server.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use weir::consumer::client::{ClientOptions, Consumer, Transport};
use weir::consumer::protocol::{GapReason, Message, Record, RecordKind, StartAt, Subscription};

/// Options of `weir sub`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    weir sub --server 127.0.0.1:7443 --cert certs/dev/historian-replica.corp.example.pem \\\n    \
    --key certs/dev/historian-replica.corp.example.key --ca certs/dev/ca.pem --channel historian\n  \
    weir sub ... --channel historian --from 1200 --out historian.bin   # resume at offset 1200\n\n\
    Offsets: every record of a channel has an offset, consecutive from 0. On exit `weir sub`\n\
    prints the next offset to read; pass it to --from to resume with nothing lost or repeated.")]
pub struct SubArgs {
    /// The consumer server, HOST:PORT (`[recv.serve] tls` or `quic` of the policy).
    #[arg(long)]
    server: String,
    /// The name the server's certificate must carry; default: the host of --server.
    #[arg(long)]
    server_name: Option<String>,
    /// This consumer's certificate (PEM); its DNS or URI name must be granted the channel.
    #[arg(long)]
    cert: PathBuf,
    /// This consumer's private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// The CA that signed the server's certificate (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// Channel to read; repeat for several (records are then interleaved). NAME@OFFSET starts
    /// that channel at OFFSET, whatever --from says (to resume several channels at once).
    #[arg(long = "channel", required = true, value_name = "NAME[@OFFSET]")]
    channels: Vec<String>,
    /// Where to start: `earliest` (oldest stored), `latest` (new records only) or an offset.
    #[arg(long, default_value = "earliest")]
    from: StartAt,
    /// Use QUIC instead of TLS over TCP.
    #[arg(long)]
    quic: bool,
    /// Write here instead of standard output (appended to, so a resumed read continues it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// `raw`: the records' bytes only; `json`: one JSON object per record, gap and loss.
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    format: Format,
    /// Exit once every stored record has been read, instead of following new ones.
    #[arg(long)]
    stop_at_end: bool,
    /// Exit after this many records.
    #[arg(long)]
    count: Option<u64>,
    /// Seconds between progress lines on standard error (0: none).
    #[arg(long, default_value_t = 5)]
    progress: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Raw,
    Json,
}

struct Progress {
    records: u64,
    bytes: u64,
    next: Vec<Option<u64>>,
    started: Instant,
}

pub fn run(args: SubArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(subscribe(args))
}

fn resolve(server: &str) -> anyhow::Result<(SocketAddr, String)> {
    let addr = server
        .to_socket_addrs()
        .with_context(|| format!("--server {server:?}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("--server {server:?}: the name resolves to no address"))?;
    let host = server
        .rsplit_once(':')
        .map_or(server, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    Ok((addr, host.to_owned()))
}

async fn subscribe(args: SubArgs) -> anyhow::Result<ExitCode> {
    let (server, host) = resolve(&args.server)?;
    let options = ClientOptions {
        server,
        server_name: args.server_name.clone().unwrap_or(host),
        cert: args.cert.clone(),
        key: args.key.clone(),
        ca: args.ca.clone(),
        transport: if args.quic {
            Transport::Quic
        } else {
            Transport::Tls
        },
    };
    let mut subscriptions = Vec::new();
    for channel in &args.channels {
        let (name, from) = match channel.split_once('@') {
            Some((name, offset)) => {
                let offset = offset
                    .parse()
                    .with_context(|| format!("--channel {channel:?}: the offset after @ is not a number"))?;
                (name.to_owned(), StartAt::Offset(offset))
            }
            None => (channel.clone(), args.from),
        };
        subscriptions.push(Subscription { channel: name, from });
    }
    let names: Vec<String> = subscriptions.iter().map(|s| s.channel.clone()).collect();
    let (mut consumer, starts) = Consumer::connect(&options, subscriptions).await?;
    for (name, start) in names.iter().zip(&starts) {
        eprintln!(
            "weir sub: {name}: reading from offset {} (stored up to {})",
            start.start, start.end
        );
    }
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("--out {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout().lock(),
        )),
    };
    let mut progress = Progress {
        records: 0,
        bytes: 0,
        next: starts.iter().map(|s| Some(s.start)).collect(),
        started: Instant::now(),
    };
    let mut caught_up = vec![false; names.len()];
    let every = Duration::from_secs(args.progress);
    let mut last_report = Instant::now();
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let result: anyhow::Result<()> = async {
        loop {
            let message = tokio::select! {
                message = consumer.next() => message?,
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
            };
            let Some(message) = message else {
                eprintln!("weir sub: the server closed the connection");
                break;
            };
            match message {
                Message::Record(record) => {
                    write_record(&mut out, args.format, &names, &record)?;
                    // Only once its bytes are handed to the output is a record "read".
                    if let Some(next) = progress.next.get_mut(usize::from(record.channel)) {
                        *next = Some(record.offset.saturating_add(1));
                    }
                    if let Some(flag) = caught_up.get_mut(usize::from(record.channel)) {
                        *flag = false;
                    }
                    progress.records += 1;
                    progress.bytes += record.payload.len() as u64;
                    if args.count.is_some_and(|count| progress.records >= count) {
                        break;
                    }
                }
                Message::Gap { channel, from, to, reason } => {
                    let name = channel_name(&names, channel);
                    let why = match reason {
                        GapReason::Retention => "deleted by retention before they were read",
                        GapReason::Corrupt => "corrupt on disk, never served",
                    };
                    eprintln!("weir sub: {name}: offsets {from}..{to} skipped: {why}");
                    if args.format == Format::Json {
                        let reason = format!("{reason:?}").to_lowercase();
                        let line = serde_json::json!({"channel": name, "gap": {"from": from, "to": to, "reason": reason}});
                        writeln!(out, "{line}")?;
                    }
                    if let Some(next) = progress.next.get_mut(usize::from(channel)) {
                        *next = Some(to);
                    }
                }
                Message::CaughtUp { channel, .. } => {
                    if let Some(flag) = caught_up.get_mut(usize::from(channel)) {
                        *flag = true;
                    }
                    if args.stop_at_end && caught_up.iter().all(|c| *c) {
                        break;
                    }
                }
                Message::Keepalive => {}
                other => bail!("the server sent an unexpected {other:?}"),
            }
            if !every.is_zero() && last_report.elapsed() >= every {
                out.flush()?;
                report(&names, &progress);
                last_report = Instant::now();
            }
        }
        Ok(())
    }
    .await;
    out.flush().context("writing the records")?;
    report(&names, &progress);
    for (name, next) in names.iter().zip(&progress.next) {
        if let Some(next) = next {
            let resume = if names.len() == 1 {
                format!("--from {next}")
            } else {
                format!("--channel {name}@{next}")
            };
            eprintln!("weir sub: {name}: next offset {next} (resume with {resume})");
        }
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

fn channel_name(channels: &[String], index: u8) -> &str {
    channels.get(usize::from(index)).map_or("?", String::as_str)
}

fn report(channels: &[String], progress: &Progress) {
    let secs = progress.started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "weir sub: {} records, {} bytes in {:.1} s ({:.1} MB/s); next offsets: {}",
        progress.records,
        progress.bytes,
        secs,
        progress.bytes as f64 / secs / 1e6,
        channels
            .iter()
            .zip(&progress.next)
            .map(|(name, next)| format!("{name}={}", next.map_or("-".into(), |n| n.to_string())))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn write_record(
    out: &mut dyn Write,
    format: Format,
    channels: &[String],
    record: &Record,
) -> anyhow::Result<()> {
    let name = channel_name(channels, record.channel);
    if record.kind == RecordKind::Lost {
        let count = record
            .payload
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        eprintln!(
            "weir sub: {name}: messages {}..{} were lost on the link (beyond FEC)",
            record.seq,
            record.seq.saturating_add(count)
        );
    }
    match format {
        Format::Raw => {
            if record.kind == RecordKind::Data {
                out.write_all(&record.payload)?;
            }
        }
        Format::Json => {
            let (field, data) = match std::str::from_utf8(&record.payload) {
                Ok(text) => ("text", text.to_owned()),
                Err(_) => ("hex", record.payload.iter().map(|b| format!("{b:02x}")).collect()),
            };
            let mut line = serde_json::json!({
                "channel": name,
                "offset": record.offset,
                "seq": record.seq,
                "time_ns": record.time_ns,
                "stream": record.stream,
                "kind": record.kind.as_str(),
                "len": record.payload.len(),
            });
            if let Some(object) = line.as_object_mut() {
                object.insert(field.to_owned(), data.into());
            }
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}
