//! A tiny HTTP/1.1 server for the metrics endpoint and the status page: `GET` only, one
//! request per connection (`Connection: close`).
//!
//! Contract: bounded in every way — a request head over [`MAX_REQUEST`] bytes is refused with
//! 431, a client that does not send its head within [`READ_TIMEOUT`] or take the answer
//! within [`WRITE_TIMEOUT`] is cut off, and at most [`MAX_CONNECTIONS`] connections are
//! served at once (more are closed at once, counted and logged at most every minute). It
//! never panics on client input. Bind it to a local address: it has no authentication.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Largest request head accepted.
pub const MAX_REQUEST: usize = 8 * 1024;
/// Time a client has to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to take the answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// An answer: content type and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// Maps a request path (without the query) to an answer; `None` is a 404.
pub type Handler = Arc<dyn Fn(&str) -> Option<Response> + Send + Sync>;

/// Binds `addr`; serve the listener with [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, handler: Handler) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut refused = 0u64;
    let mut refused_logged: Option<Instant> = None;
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if refused_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                refused_logged = Some(Instant::now());
                tracing::warn!(refused, "metrics endpoint: too many connections; refused");
            }
            drop(stream);
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            answer(stream, &handler).await;
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, handler: &Handler) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(status)) => {
            let _ = respond(&mut stream, status, "text/plain", status_text(status)).await;
            return;
        }
        Err(_) => return,
    };
    let (status, content_type, body) = route(&head, handler);
    let _ = tokio::time::timeout(WRITE_TIMEOUT, respond(&mut stream, status, content_type, &body)).await;
}

/// Reads up to the blank line that ends the head; an error is the status to answer.
async fn read_head(stream: &mut TcpStream) -> Result<String, u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| 400u16)?;
        if n == 0 {
            return Err(400);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return String::from_utf8(buf).map_err(|_| 400);
        }
        if buf.len() > MAX_REQUEST {
            return Err(431);
        }
    }
}

fn route(head: &str, handler: &Handler) -> (u16, &'static str, String) {
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if method != "GET" && method != "HEAD" {
        return (405, "text/plain", status_text(405).into());
    }
    let path = target.split('?').next().unwrap_or_default();
    match handler(path) {
        Some(r) => (
            200,
            r.content_type,
            if method == "HEAD" { String::new() } else { r.body },
        ),
        None => (404, "text/plain", status_text(404).into()),
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

async fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        status_text(status),
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn handler() -> Handler {
        Arc::new(|path| {
            (path == "/metrics").then(|| Response {
                content_type: "text/plain",
                body: "x 1\n".into(),
            })
        })
    }

    #[test]
    fn routes_get_and_refuses_the_rest() {
        let h = handler();
        assert_eq!(
            route("GET /metrics?x=1 HTTP/1.1\r\n\r\n", &h),
            (200, "text/plain", "x 1\n".into())
        );
        assert_eq!(route("GET /nope HTTP/1.1\r\n\r\n", &h).0, 404);
        assert_eq!(route("POST /metrics HTTP/1.1\r\n\r\n", &h).0, 405);
        assert_eq!(route("", &h).0, 405);
    }

    #[tokio::test]
    async fn serves_over_tcp_and_bounds_the_head() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener, handler()));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(
            out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nx 1\n"),
            "{out}"
        );
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(&vec![b'a'; MAX_REQUEST + 2048]).await;
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        assert!(out.starts_with("HTTP/1.1 431"), "{out}");
        task.abort();
    }
}
