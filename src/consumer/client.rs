//! A consumer: connects to `weir-recv`'s consumer server over TLS or QUIC with its client
//! certificate, subscribes, and yields the server's messages in order.
//!
//! Contract:
//! - [`Consumer::connect`] returns only after the server accepted the subscription (its
//!   `Subscribed` answer), so a refused certificate or a refused channel is an error there,
//!   carrying the server's reason when it sent one.
//! - [`Consumer::next`] yields records, gaps, catch-up notices and keepalives; `Ok(None)` when
//!   the server closed cleanly; an `Error` message from the server becomes [`ClientError::Refused`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::protocol::{read_message, ErrorCode, Message, Start, Subscription, MAX_FRAME};
use super::tls::{client_config, TlsConfigError};

/// Which transport to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS 1.3 over TCP.
    Tls,
    /// QUIC (TLS 1.3 inside), one bidirectional stream.
    Quic,
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The server's address.
    pub server: SocketAddr,
    /// The name the server's certificate must carry (a DNS name or an IP address).
    pub server_name: String,
    /// The consumer's certificate chain (PEM).
    pub cert: PathBuf,
    /// The consumer's private key (PEM).
    pub key: PathBuf,
    /// The CA that signed the server's certificate (PEM).
    pub ca: PathBuf,
    /// TLS or QUIC.
    pub transport: Transport,
}

/// Why a consumer session failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The certificate, key or CA file is unusable.
    #[error(transparent)]
    Config(#[from] TlsConfigError),
    /// `server_name` is neither a DNS name nor an IP address.
    #[error("{0:?} is not a valid server name (a DNS name or an IP address)")]
    ServerName(String),
    /// The server cannot be reached or the handshake failed.
    #[error("cannot connect to {server}: {reason}")]
    Connect {
        /// The server.
        server: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The server refused the subscription or ended the session, saying why.
    #[error("the server refused: {message} ({code:?})")]
    Refused {
        /// The server's code.
        code: ErrorCode,
        /// The server's reason.
        message: String,
    },
    /// The connection failed or the server broke the protocol.
    #[error("connection to the server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered something other than `Subscribed` first.
    #[error("the server broke the protocol: {0}")]
    Protocol(String),
}

type Reader = Pin<Box<dyn AsyncRead + Send>>;
type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// A subscribed consumer session.
pub struct Consumer {
    reader: Reader,
    // Kept open: the server takes the end of the consumer's stream for a disconnect.
    _writer: Writer,
    // Kept alive with the session: dropping them closes the QUIC connection.
    _quic: Option<(quinn::Endpoint, quinn::Connection)>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").finish_non_exhaustive()
    }
}

impl Consumer {
    /// Connects, subscribes, and waits for the server's answer.
    pub async fn connect(
        options: &ClientOptions,
        subscriptions: Vec<Subscription>,
    ) -> Result<(Consumer, Vec<Start>), ClientError> {
        let config = client_config(&options.cert, &options.key, &options.ca)?;
        let name = ServerName::try_from(options.server_name.clone())
            .map_err(|_| ClientError::ServerName(options.server_name.clone()))?;
        let connect_error = |reason: String| ClientError::Connect {
            server: options.server,
            reason,
        };
        let (reader, mut writer, quic): (Reader, Writer, _) = match options.transport {
            Transport::Tls => {
                let tcp = tokio::net::TcpStream::connect(options.server)
                    .await
                    .map_err(|e| connect_error(e.to_string()))?;
                let _ = tcp.set_nodelay(true);
                let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| connect_error(format!("TLS handshake: {e}")))?;
                let (read, write) = tokio::io::split(tls);
                (Box::pin(read), Box::pin(write), None)
            }
            Transport::Quic => {
                let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(config)
                    .map_err(|e| connect_error(format!("QUIC configuration: {e}")))?;
                let bind: SocketAddr = if options.server.is_ipv6() {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                };
                let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| connect_error(e.to_string()))?;
                let mut client = quinn::ClientConfig::new(Arc::new(crypto));
                let mut transport = quinn::TransportConfig::default();
                // The server may wait long between records: keep the path (and NATs) alive.
                transport.keep_alive_interval(Some(std::time::Duration::from_secs(10)));
                client.transport_config(Arc::new(transport));
                endpoint.set_default_client_config(client);
                let connection = endpoint
                    .connect(options.server, &options.server_name)
                    .map_err(|e| connect_error(e.to_string()))?
                    .await
                    .map_err(|e| connect_error(format!("QUIC handshake: {e}")))?;
                let (send, recv) = connection
                    .open_bi()
                    .await
                    .map_err(|e| connect_error(format!("QUIC stream: {e}")))?;
                (Box::pin(recv), Box::pin(send), Some((endpoint, connection)))
            }
        };
        let mut request = Vec::new();
        Message::Subscribe(subscriptions).encode(&mut request);
        writer.write_all(&request).await?;
        writer.flush().await?;
        let mut consumer = Consumer {
            reader,
            _writer: writer,
            _quic: quic,
            buf: Vec::new(),
        };
        match consumer.next().await {
            Ok(Some(Message::Subscribed(starts))) => Ok((consumer, starts)),
            Ok(Some(other)) => Err(ClientError::Protocol(format!(
                "expected Subscribed, got {other:?}"
            ))),
            Ok(None) => Err(ClientError::Protocol("closed before answering".to_owned())),
            Err(ClientError::Io(e)) => Err(connect_error(e.to_string())),
            Err(e) => Err(e),
        }
    }

    /// The next message from the server; `Ok(None)` when it closed the session cleanly.
    pub async fn next(&mut self) -> Result<Option<Message>, ClientError> {
        match read_message(&mut self.reader, &mut self.buf, MAX_FRAME).await {
            Ok(Some(Message::Error { code, message })) => Err(ClientError::Refused { code, message }),
            Ok(message) => Ok(message),
            Err(e) => Err(ClientError::Io(e)),
        }
    }
}
