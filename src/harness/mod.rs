//! Loopback harness shared by `weir demo`, `weir bench` and the end-to-end tests: an
//! impairment relay for the link, collectors standing in for IT-side consumers, and child
//! processes for the daemons. Plain threads and blocking sockets: it measures the daemons, so
//! it should be simple and cheap, not clever.
//!
//! It is part of the library, not a test-only module, because the `weir` admin binary runs it:
//! `weir demo` uses `setup`, `process`, `drive`, `collect` and `pki`; `weir bench` uses all of
//! it, the impairment `relay` too. The daemons (`weir-send`, `weir-recv`, `weir-deliver`) call
//! none of it.

pub mod collect;
pub mod drive;
#[cfg(feature = "deliver")]
pub mod pki;
pub mod process;
pub mod relay;
pub mod setup;

/// SHA-256 (hex) of the first `len` bytes of the [`Pattern`] of `seed`: what a stream sent with
/// that seed must hash to when exactly `len` bytes of it arrived.
pub fn pattern_prefix_sha256(seed: u64, len: u64) -> String {
    let mut pattern = Pattern::new(seed);
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if let Some(chunk) = buf.get_mut(..n) {
            pattern.fill(chunk);
            hash.update(chunk);
        }
        left -= n as u64;
    }
    hex(hash.finish().as_ref())
}

/// Hex of a SHA-256 digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A deterministic, position-dependent byte stream: the 8-byte word at offset `8i` is
/// `(i × φ64) XOR seed`, little-endian. Cheap enough (a multiply per 8 bytes) that the load
/// generator and the checker do not compete with the daemons for CPU, and any reordering,
/// splice or corruption of the stream changes the bytes.
#[derive(Debug, Clone)]
pub struct Pattern {
    seed: u64,
    position: u64,
}

const PHI64: u64 = 0x9e37_79b9_7f4a_7c15;

impl Pattern {
    /// A stream seeded with `seed`, at position 0.
    pub fn new(seed: u64) -> Self {
        Pattern { seed, position: 0 }
    }

    fn word(&self, index: u64) -> [u8; 8] {
        (index.wrapping_mul(PHI64) ^ self.seed).to_le_bytes()
    }

    /// Fills `buf` with the next bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut i = 0;
        // Unaligned head, byte by byte.
        while i < buf.len() && self.position % 8 != 0 {
            if let Some(b) = buf.get_mut(i) {
                *b = self.byte_at(self.position);
            }
            i += 1;
            self.position += 1;
        }
        let rest = buf.get_mut(i..).unwrap_or_default();
        let mut chunks = rest.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.word(self.position / 8));
            self.position += 8;
        }
        for b in chunks.into_remainder() {
            *b = self.byte_at(self.position);
            self.position += 1;
        }
    }

    fn byte_at(&self, position: u64) -> u8 {
        let word = self.word(position / 8);
        word.get((position % 8) as usize).copied().unwrap_or(0)
    }

    /// Checks that `buf` is the next bytes of the stream, advancing past them.
    pub fn check(&mut self, buf: &[u8]) -> bool {
        let mut ok = true;
        let mut expected = [0u8; 4096];
        for chunk in buf.chunks(expected.len()) {
            let want = expected.get_mut(..chunk.len()).unwrap_or_default();
            self.fill(want);
            ok &= want == chunk;
        }
        ok
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::Pattern;

    #[test]
    fn pattern_is_the_same_whatever_the_chunking() {
        let mut whole = vec![0u8; 1000];
        Pattern::new(5).fill(&mut whole);
        let mut p = Pattern::new(5);
        let mut parts = Vec::new();
        for n in [3, 1, 8, 13, 975] {
            let mut b = vec![0u8; n];
            p.fill(&mut b);
            parts.extend(b);
        }
        assert_eq!(whole, parts);
        let mut c = Pattern::new(5);
        assert!(c.check(&whole[..7]) && c.check(&whole[7..]));
        let mut spliced = whole.clone();
        spliced.drain(100..108);
        assert!(!Pattern::new(5).check(&spliced));
        assert!(!Pattern::new(6).check(&whole));
    }
}
