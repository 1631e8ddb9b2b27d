//! The protocol's own tests that need more than one module: known-answer vectors (`kat`),
//! sender and receiver under a seeded impairment (`sim`, `fragments`), and hostile input
//! (`hostile`). Kept apart so `src/proto/` shows the protocol and not its tests.

mod fragments;
mod hostile;
mod kat;
pub(crate) mod sim;
