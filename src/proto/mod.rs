//! The link protocol, pure: no tokio, no sockets, no files, no clock. Time is passed in.
//!
//! [`send::Sender`] turns messages into sealed datagrams; [`recv::Receiver`] turns datagrams
//! back into messages and exact loss reports. Byte layouts are in `PROTOCOL.md` and in the
//! doc comments of [`wire`] and [`frame`].

pub mod fec;
pub mod frame;
pub mod key;
pub mod reader;
pub mod recv;
pub mod replay;
pub mod seal;
pub mod send;
pub mod wire;

#[cfg(test)]
mod tests;
