//! weir: a one-way gateway between an industrial (OT) and an enterprise (IT) network.
//!
//! Layers, each depending only on those below it:
//! - [`proto`]: the link protocol as a sans-IO state machine (wire, seal, replay, FEC, frames).
//! - [`policy`] and [`keys`]: the conduit's policy file and pre-shared keys, parsed and validated.
//! - [`net`]: the one-way UDP link sockets (send-only, receive-only), batching and pacing.
//! - OT side (feature `send`): [`sources`] feed [`send`], the link thread of `weir-send`.
//! - IT side (feature `recv`): [`recv`], the link thread of `weir-recv`, feeds [`sinks`] and the
//!   spool ([`spooler`] writes the durable per-channel logs of [`spool`]), which [`serve`]
//!   streams to consumers over mutual TLS.
//! - [`consumer`]: the consumer protocol and client (`weir sub`).

#[cfg(feature = "recv")]
pub mod consumer;
pub mod harness;
pub mod keys;
pub mod logging;
pub mod net;
pub mod observe;
#[cfg(feature = "recv")]
pub mod pki;
pub mod policy;
pub mod privilege;
pub mod proto;
#[cfg(feature = "recv")]
pub mod recv;
pub mod reload;
#[cfg(feature = "send")]
pub mod send;
#[cfg(feature = "recv")]
pub mod serve;
pub mod signals;
#[cfg(feature = "recv")]
pub mod sinks;
#[cfg(feature = "send")]
pub mod sources;
#[cfg(feature = "recv")]
pub mod spool;
#[cfg(feature = "recv")]
pub mod spooler;
#[cfg(feature = "recv")]
pub mod state;
pub mod status;
