//! weir: a one-way gateway between an industrial (OT) and an enterprise (IT) network.
//!
//! Layers, each depending only on those below it:
//! - [`proto`]: the link protocol as a sans-IO state machine (wire, seal, replay, FEC, frames).
//! - [`policy`] and [`keys`]: the conduit's policy file and pre-shared keys, parsed and validated.
//! - [`net`]: the one-way UDP link sockets (send-only, receive-only), batching and pacing.
//! - OT side (feature `send`): [`sources`] feed [`ot_link`], the link thread of `weir-send`.
//! - IT side, link process (feature `recv`): [`it_link`], the link thread of `weir-recv`, feeds
//!   the spool ([`spool`]'s writer thread appends to its durable per-channel logs).
//! - IT side, delivery process (feature `deliver`): [`deliver`] reads the spool and re-emits it
//!   to sinks; [`serve`] streams it to consumers over mutual TLS.
//! - [`consumer`]: the consumer protocol and client (`weir sub`).

pub mod cli;
#[cfg(feature = "deliver")]
pub mod consumer;
#[cfg(feature = "deliver")]
pub mod deliver;
pub mod harness;
#[cfg(feature = "recv")]
pub mod it_link;
pub mod keys;
pub mod logging;
pub mod net;
pub mod observe;
#[cfg(feature = "send")]
pub mod ot_link;
#[cfg(feature = "deliver")]
pub mod pki;
pub mod policy;
pub mod privilege;
pub mod proto;
pub mod reload;
#[cfg(feature = "deliver")]
pub mod serve;
pub mod signals;
#[cfg(feature = "send")]
pub mod sources;
#[cfg(any(feature = "recv", feature = "deliver"))]
pub mod spool;
#[cfg(feature = "recv")]
pub mod state;
pub mod status;
