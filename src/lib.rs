//! weir: a one-way gateway between an industrial (OT) and an enterprise (IT) network.
//!
//! Layers, each depending only on those below it:
//! - [`proto`]: the link protocol as a sans-IO state machine (wire, seal, replay, FEC, frames).
//! - [`policy`] and [`keys`]: the conduit's policy file and pre-shared keys, parsed and validated.
//! - [`net`]: the one-way UDP link sockets (send-only, receive-only), batching and pacing.
//! - OT side (feature `send`): [`sources`] feed [`send`], the link thread of `weir-send`.
//! - IT side, link process (feature `recv`): [`recv`], the link thread of `weir-recv`, feeds the
//!   spool ([`spooler`] writes the durable per-channel logs of [`spool`]).
//! - IT side, delivery process (feature `deliver`): [`deliver`] reads the spool and re-emits it
//!   to sinks; [`serve`] streams it to consumers over mutual TLS.
//! - [`consumer`]: the consumer protocol and client (`weir sub`).

pub mod cli;
#[cfg(feature = "deliver")]
pub mod consumer;
#[cfg(feature = "deliver")]
pub mod deliver;
pub mod harness;
pub mod keys;
pub mod logging;
pub mod net;
pub mod observe;
#[cfg(feature = "deliver")]
pub mod pki;
pub mod policy;
pub mod privilege;
pub mod proto;
#[cfg(feature = "recv")]
pub mod recv;
pub mod reload;
#[cfg(feature = "send")]
pub mod send;
#[cfg(feature = "deliver")]
pub mod serve;
pub mod signals;
#[cfg(feature = "send")]
pub mod sources;
#[cfg(any(feature = "recv", feature = "deliver"))]
pub mod spool;
#[cfg(feature = "recv")]
pub mod spooler;
#[cfg(feature = "recv")]
pub mod state;
pub mod status;
