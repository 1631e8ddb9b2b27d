//! Loopback harness shared by `weir demo`, `weir bench` and the end-to-end tests: an
//! impairment relay for the link, collectors standing in for IT-side consumers, and child
//! processes for the two daemons. Plain threads and blocking sockets: it measures the
//! daemons, so it should be simple and cheap, not clever.

pub mod collect;
pub mod drive;
pub mod process;
pub mod relay;
pub mod setup;

/// Hex of a SHA-256 digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A deterministic pseudo-random byte stream (xorshift), so senders and checkers agree on
/// content without storing it.
#[derive(Debug, Clone)]
pub struct Pattern(u64);

impl Pattern {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Pattern(seed | 1)
    }

    /// Fills `buf` with the next bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            for (d, s) in chunk.iter_mut().zip(bytes) {
                *d = s;
            }
        }
    }
}
