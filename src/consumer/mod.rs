//! The consumer side of `weir-recv`'s consumer server: the protocol both ends speak, their TLS
//! configuration, and a client (`weir sub`, tests, benchmarks) for TLS over TCP and for QUIC.

pub mod client;
pub mod protocol;
pub mod tls;
