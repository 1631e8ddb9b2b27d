//! TCP re-emit: one outgoing connection per stream that crossed the link.
//!
//! An `Open` connects, `Data` is written in order, `End` closes cleanly (FIN). An OT-side
//! abort, a loss inside the stream, an overflow, or the daemon stopping resets the connection
//! (RST), so the consumer can always tell a complete stream from a cut one. If the consumer
//! cannot be reached, the stream's data is dropped and counted.
//!
//! `SO_LINGER` 0 is set as soon as the connection is up and cleared only just before the clean
//! shutdown of a complete stream: any other end — a crash, `kill -9`, an OOM kill, a panic —
//! closes the socket with a reset, never a FIN that would make a cut stream look whole.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::{Queued, SinkCounters, SinkEvent};
use crate::proto::frame::MessageKind;

/// How long a connection to the consumer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands one stream's task holds at most; the sink's byte bound applies first.
const STREAM_QUEUE: usize = 4096;

enum Cmd {
    Data(Vec<u8>),
    End,
    Reset,
}

/// Runs the sink until its queue closes.
pub async fn run(
    name: String,
    addr: SocketAddr,
    mut events: mpsc::Receiver<SinkEvent>,
    queued: Arc<Queued>,
    counters: Arc<SinkCounters>,
) {
    let mut streams: HashMap<u32, mpsc::Sender<Cmd>> = HashMap::new();
    while let Some(event) = events.recv().await {
        let (stream, cmd) = match event {
            SinkEvent::Message {
                stream,
                kind: MessageKind::Open,
                ..
            } => {
                let (tx, rx) = mpsc::channel(STREAM_QUEUE);
                let task = carry(name.clone(), addr, stream, rx, queued.clone(), counters.clone());
                tokio::spawn(task);
                streams.insert(stream, tx);
                continue;
            }
            SinkEvent::Message {
                stream,
                kind: MessageKind::Data,
                payload,
            } => (stream, Cmd::Data(payload)),
            SinkEvent::Message {
                stream,
                kind: MessageKind::End,
                ..
            } => (stream, Cmd::End),
            SinkEvent::Message {
                stream,
                kind: MessageKind::Abort,
                ..
            }
            | SinkEvent::Broken { stream } => (stream, Cmd::Reset),
        };
        let last = !matches!(cmd, Cmd::Data(_));
        let len = if let Cmd::Data(d) = &cmd { d.len() } else { 0 };
        match streams.get(&stream) {
            Some(tx) => {
                if tx.try_send(cmd).is_err() {
                    queued.release(len);
                    counters.drop_queue_full.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(sink = %name, stream, "stream queue full; resetting the stream");
                    streams.remove(&stream);
                    // Dropping the sender makes the task reset the connection.
                    continue;
                }
            }
            None => {
                queued.release(len);
                if len > 0 {
                    counters.drop_unreachable.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if last {
            streams.remove(&stream);
        }
    }
}

async fn carry(
    name: String,
    addr: SocketAddr,
    stream: u32,
    mut cmds: mpsc::Receiver<Cmd>,
    queued: Arc<Queued>,
    counters: Arc<SinkCounters>,
) {
    let conn = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(error)) => {
            tracing::warn!(sink = %name, %addr, stream, %error, "cannot reach the consumer; stream dropped");
            None
        }
        Err(_) => {
            tracing::warn!(sink = %name, %addr, stream, "consumer connect timed out; stream dropped");
            None
        }
    };
    let Some(mut conn) = conn else {
        drain(&mut cmds, &queued, &counters).await;
        return;
    };
    let _ = conn.set_nodelay(true);
    if let Err(error) = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO)) {
        // Without it a crash would end the stream with a FIN: do not carry the stream at all.
        tracing::warn!(sink = %name, stream, %error, "cannot arm the reset-on-close; stream dropped");
        counters.streams_reset.fetch_add(1, Ordering::Relaxed);
        drop(conn);
        drain(&mut cmds, &queued, &counters).await;
        return;
    }
    loop {
        match cmds.recv().await {
            Some(Cmd::Data(bytes)) => {
                let len = bytes.len();
                let written = conn.write_all(&bytes).await;
                queued.release(len);
                if let Err(error) = written {
                    counters.drop_unreachable.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(sink = %name, stream, %error, "write to consumer failed; stream dropped");
                    reset(conn, &counters);
                    drain(&mut cmds, &queued, &counters).await;
                    return;
                }
                counters.messages.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(len as u64, Ordering::Relaxed);
            }
            Some(Cmd::End) => {
                // Every byte is written: only now may the close be a FIN.
                let _ = socket2::SockRef::from(&conn).set_linger(None);
                let _ = conn.shutdown().await;
                counters.streams_closed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(sink = %name, stream, "stream closed cleanly");
                return;
            }
            Some(Cmd::Reset) | None => {
                tracing::info!(sink = %name, stream, "stream reset toward the consumer");
                reset(conn, &counters);
                return;
            }
        }
    }
}

/// Closes with a reset: `SO_LINGER` 0 is armed from the start.
fn reset(conn: TcpStream, counters: &SinkCounters) {
    counters.streams_reset.fetch_add(1, Ordering::Relaxed);
    drop(conn);
}

async fn drain(cmds: &mut mpsc::Receiver<Cmd>, queued: &Queued, counters: &SinkCounters) {
    while let Some(cmd) = cmds.recv().await {
        if let Cmd::Data(bytes) = cmd {
            queued.release(bytes.len());
            counters.drop_unreachable.fetch_add(1, Ordering::Relaxed);
        }
    }
}
