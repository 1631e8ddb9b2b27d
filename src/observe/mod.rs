//! Observability: Prometheus metrics and a status page over a tiny local HTTP server.
//!
//! Contract: the link threads own the protocol state and publish a snapshot (a view) into a
//! `Mutex` a few times a second; the HTTP handlers only read those views and the sources'
//! and sinks' atomic counters, so serving a scrape never touches the per-datagram path.
//! Everything kept is bounded (the throughput history is a ring of [`HISTORY`] samples).

#[cfg(feature = "deliver")]
pub mod deliver;
pub mod http;
#[cfg(feature = "recv")]
pub mod page;
pub mod prom;
#[cfg(feature = "recv")]
pub mod recv;
#[cfg(feature = "recv")]
mod recv_metrics;
#[cfg(feature = "recv")]
pub mod security;
#[cfg(feature = "send")]
pub mod send;
#[cfg(any(feature = "recv", feature = "deliver"))]
pub mod spool;

use std::time::Duration;

/// Interval between snapshots published by a link thread.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(200);
/// Interval between throughput samples.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Throughput samples kept (ten minutes at one a second).
pub const HISTORY: usize = 600;

/// Locks a view, recovering it from a poisoned lock (a view is plain data).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Serves `handler` on `addr` from the current tokio runtime; returns the bound address.
pub async fn start_http(
    addr: std::net::SocketAddr,
    handler: http::Handler,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = http::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(http::serve(listener, handler));
    tracing::info!(metrics = %local, "metrics endpoint listening");
    Ok(local)
}
