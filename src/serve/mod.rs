//! The consumer server of `weir-recv`: streams the spool to enterprise consumers over mutual
//! TLS — TLS 1.3 over TCP and QUIC, on the addresses of `[recv.serve]`.
//!
//! Contract:
//! - Every connection presents a client certificate that chains to `client_ca` (rustls'
//!   WebPKI verifier: signature, validity period, clientAuth usage), or its handshake fails;
//!   failures are counted and logged with `event="consumer_handshake_failed"` and the peer.
//! - The consumer's identities are its certificate's DNS and URI subject alternative names
//!   ([`crate::pki::identities`]); a channel is served only to identities its `consumers` list
//!   grants. Grants can be replaced at run time ([`Server::set_grants`], on SIGHUP); sessions
//!   already streaming keep what they were granted.
//! - At most `max_connections` connections exist at once over both transports; more are
//!   closed at once (TCP) or refused (QUIC) and counted. Handshake plus subscription must
//!   finish within `handshake_timeout`.
//! - The session itself is in `session.rs`, identical over both transports.

mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::consumer::tls::{server_config, TlsConfigError};
use crate::policy::{Policy, Serve};
use crate::spool::view::SpoolView;
use session::Peer;

/// Channel name → identities granted.
pub type Grants = HashMap<String, Vec<String>>;

/// Counters of the consumer server.
#[derive(Debug, Default)]
pub struct ServeCounters {
    /// Connections open now.
    pub connections: AtomicU64,
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Connections refused because `max_connections` were open.
    pub refused_busy: AtomicU64,
    /// Handshakes that failed (no, unknown, expired or unusable client certificate; timeouts).
    pub handshake_failures: AtomicU64,
    /// Subscriptions refused because a channel is not granted to the consumer.
    pub denied: AtomicU64,
    /// Records sent.
    pub records: AtomicU64,
    /// Payload bytes sent.
    pub bytes: AtomicU64,
    /// Gap notices sent.
    pub gaps: AtomicU64,
}

/// What every session shares.
#[derive(Debug)]
pub struct Shared {
    spool: SpoolView,
    grants: RwLock<Arc<Grants>>,
    /// The server's counters.
    pub counters: Arc<ServeCounters>,
    handshake_timeout: Duration,
    idle_timeout: Duration,
}

impl Shared {
    fn grants(&self) -> Arc<Grants> {
        match self.grants.read() {
            Ok(grants) => grants.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The certificate, key or CA is unusable.
    #[error("recv.serve: {0}")]
    Tls(#[from] TlsConfigError),
    /// A listening address cannot be bound.
    #[error("recv.serve.{field}: cannot listen on {addr}: {source}")]
    Bind {
        /// `tls` or `quic`.
        field: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The running server.
#[derive(Debug, Clone)]
pub struct Server {
    shared: Arc<Shared>,
    /// Where TLS listens (the bound address, useful with port 0).
    pub tls_addr: Option<SocketAddr>,
    /// Where QUIC listens.
    pub quic_addr: Option<SocketAddr>,
}

/// The grants of a policy: channel name → identities.
pub fn grants(policy: &Policy) -> Grants {
    policy
        .channels
        .iter()
        .map(|c| (c.name.clone(), c.consumers.clone()))
        .collect()
}

impl Server {
    /// Binds the listeners of `serve` and starts accepting, on the current tokio runtime.
    pub async fn start(serve: &Serve, spool: SpoolView, grants: Grants) -> Result<Server, ServeError> {
        let tls_config = Arc::new(server_config(&serve.cert, &serve.key, &serve.client_ca)?);
        let shared = Arc::new(Shared {
            spool,
            grants: RwLock::new(Arc::new(grants)),
            counters: Arc::default(),
            handshake_timeout: serve.handshake_timeout,
            idle_timeout: serve.idle_timeout,
        });
        let permits = Arc::new(Semaphore::new(serve.max_connections));
        let mut server = Server {
            shared: shared.clone(),
            tls_addr: None,
            quic_addr: None,
        };
        if let Some(addr) = serve.tls {
            let bind_error = |source| ServeError::Bind {
                field: "tls",
                addr,
                source,
            };
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind_error)?;
            server.tls_addr = Some(listener.local_addr().map_err(bind_error)?);
            let acceptor = tokio_rustls::TlsAcceptor::from(tls_config.clone());
            tokio::spawn(accept_tls(listener, acceptor, shared.clone(), permits.clone()));
        }
        if let Some(addr) = serve.quic {
            let bind_error = |source| ServeError::Bind {
                field: "quic",
                addr,
                source,
            };
            let crypto =
                quinn::crypto::rustls::QuicServerConfig::try_from((*tls_config).clone()).map_err(|e| {
                    bind_error(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        e.to_string(),
                    ))
                })?;
            let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
            let mut transport = quinn::TransportConfig::default();
            transport
                .max_concurrent_bidi_streams(1u8.into())
                .max_concurrent_uni_streams(0u8.into())
                .max_idle_timeout(quinn::IdleTimeout::try_from(serve.idle_timeout).ok())
                .keep_alive_interval(Some((serve.idle_timeout / 3).min(Duration::from_secs(10))))
                // Room in flight for a fast consumer on a LAN: 16 MiB per stream and connection.
                .stream_receive_window((16u32 << 20).into())
                .receive_window((16u32 << 20).into())
                .send_window(16 << 20);
            config.transport_config(Arc::new(transport));
            let endpoint = quinn::Endpoint::server(config, addr).map_err(bind_error)?;
            server.quic_addr = Some(endpoint.local_addr().map_err(bind_error)?);
            tokio::spawn(accept_quic(endpoint, shared.clone(), permits));
        }
        tracing::info!(tls = ?server.tls_addr, quic = ?server.quic_addr, max_connections = serve.max_connections, "consumer server ready");
        Ok(server)
    }

    /// Replaces the grants (a policy reload); new subscriptions are checked against them.
    pub fn set_grants(&self, grants: Grants) {
        match self.shared.grants.write() {
            Ok(mut g) => *g = Arc::new(grants),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(grants),
        }
    }

    /// The server's counters.
    pub fn counters(&self) -> Arc<ServeCounters> {
        self.shared.counters.clone()
    }
}

fn handshake_failed(shared: &Shared, peer: SocketAddr, transport: &str, reason: &dyn std::fmt::Display) {
    shared.counters.handshake_failures.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        event = "consumer_handshake_failed",
        %peer,
        transport,
        %reason,
        "consumer refused during the handshake"
    );
}

fn take_permit(
    shared: &Shared,
    permits: &Arc<Semaphore>,
    peer: SocketAddr,
    transport: &str,
) -> Option<OwnedSemaphorePermit> {
    match permits.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) => {
            shared.counters.refused_busy.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, transport, "consumer refused: max_connections reached");
            None
        }
    }
}

/// The identities of the certificate a peer presented (the first is the end entity). A
/// certificate that verified but cannot be parsed has none, and says so in the log.
fn identities(peer: SocketAddr, certs: Option<&[CertificateDer<'_>]>) -> Vec<String> {
    let Some(cert) = certs.and_then(|certs| certs.first()) else {
        return Vec::new();
    };
    match crate::pki::identities(cert.as_ref()) {
        Ok(names) => names
            .into_iter()
            .filter_map(|id| crate::policy::normalize_identity(&id).ok())
            .collect(),
        Err(error) => {
            tracing::warn!(%peer, %error, "consumer certificate names unreadable: no identity");
            Vec::new()
        }
    }
}

struct Connected(Arc<Shared>);

impl Connected {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        Connected(shared.clone())
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.counters.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn accept_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait instead of spinning.
                tracing::warn!(%error, "consumer server: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(permit) = take_permit(&shared, &permits, peer, "tls") else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _connected = Connected::new(&shared);
            let deadline = Instant::now() + shared.handshake_timeout;
            let tls = match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => return handshake_failed(&shared, peer, "tls", &error),
                Err(_) => return handshake_failed(&shared, peer, "tls", &"handshake timeout"),
            };
            let identities = identities(peer, tls.get_ref().1.peer_certificates());
            let (reader, writer) = tokio::io::split(tls);
            let peer = Peer {
                addr: peer,
                transport: "tls",
                identities,
            };
            session::run(shared, peer, reader, writer, deadline).await;
        });
    }
}

async fn accept_quic(endpoint: quinn::Endpoint, shared: Arc<Shared>, permits: Arc<Semaphore>) {
    while let Some(incoming) = endpoint.accept().await {
        let peer = incoming.remote_address();
        let Some(permit) = take_permit(&shared, &permits, peer, "quic") else {
            incoming.refuse();
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _connected = Connected::new(&shared);
            let deadline = Instant::now() + shared.handshake_timeout;
            let connection = match tokio::time::timeout_at(deadline, incoming).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(error)) => return handshake_failed(&shared, peer, "quic", &error),
                Err(_) => return handshake_failed(&shared, peer, "quic", &"handshake timeout"),
            };
            let certs = connection
                .peer_identity()
                .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok());
            let identities = identities(peer, certs.as_deref().map(Vec::as_slice));
            let (send, recv) = match tokio::time::timeout_at(deadline, connection.accept_bi()).await {
                Ok(Ok(streams)) => streams,
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "QUIC consumer closed before subscribing");
                    return;
                }
                Err(_) => {
                    return handshake_failed(&shared, peer, "quic", &"no stream before the handshake timeout")
                }
            };
            let peer_info = Peer {
                addr: peer,
                transport: "quic",
                identities,
            };
            session::run(shared, peer_info, recv, send, deadline).await;
            // Let the last bytes (an Error, say) reach the consumer before closing.
            let _ = tokio::time::timeout(Duration::from_secs(2), connection.closed()).await;
        });
    }
}
