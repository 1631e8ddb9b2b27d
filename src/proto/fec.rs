//! Block erasure coding: systematic Reed–Solomon over GF(2^8) (`reed-solomon-erasure`).
//!
//! A block is `k` source symbols followed by `r` repair symbols, all `symbol_size` bytes and
//! laid out contiguously in one buffer. Any `k` of the `k + r` symbols recover the block.
//! GF(2^8) allows `k + r <= 256`. The code was chosen by measurement (see `benches/fec.rs`):
//! at our block sizes (k <= 128) it decodes several times faster than the FFT-based
//! `reed-solomon-simd`, whose decode cost does not shrink with the number of losses.

use std::collections::HashMap;

use reed_solomon_erasure::galois_8::ReedSolomon;

/// The largest number of source symbols in a block.
pub const MAX_SOURCE_SYMBOLS: u16 = 128;
/// The largest number of symbols (source + repair) in a block.
pub const MAX_TOTAL_SYMBOLS: u16 = 256;
/// Codecs kept built; one per (k, r) shape.
const CODEC_CACHE_LIMIT: usize = 512;

/// Why encoding or decoding failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FecError {
    /// `k` or `r` is zero, or `k + r` exceeds [`MAX_TOTAL_SYMBOLS`], or `k` exceeds
    /// [`MAX_SOURCE_SYMBOLS`].
    #[error("unsupported block shape k={k} r={r}")]
    Shape {
        /// Source symbols.
        k: u16,
        /// Repair symbols.
        r: u16,
    },
    /// The buffer is not `(k + r) × symbol_size` bytes, or the presence list has the wrong length.
    #[error("block buffer does not match its shape")]
    Buffer,
    /// Fewer than `k` symbols are present.
    #[error("too few symbols to recover the block")]
    TooFewSymbols,
}

/// Fewest repair symbols in any block. Small blocks (sparse telemetry, flushed after the
/// deadline with one or two source symbols) would otherwise get a single repair symbol, and
/// two losses among two or three datagrams would lose them: at 1 % loss, one block in ten
/// thousand. Two make it one in a million, at a cost that only sparse traffic pays.
pub const MIN_REPAIR_SYMBOLS: u16 = 2;

/// Number of repair symbols for `k` source symbols at `repair_percent` overhead: rounded up,
/// at least [`MIN_REPAIR_SYMBOLS`], and within the field's limit.
pub fn repair_count(k: u16, repair_percent: u16) -> u16 {
    let wanted = (u32::from(k) * u32::from(repair_percent))
        .div_ceil(100)
        .max(u32::from(MIN_REPAIR_SYMBOLS));
    let room = u32::from(MAX_TOTAL_SYMBOLS.saturating_sub(k));
    u16::try_from(wanted.min(room)).unwrap_or(0)
}

/// Whether (k, r) is a block shape this code handles.
pub fn valid_shape(k: u16, r: u16) -> bool {
    k >= 1 && r >= 1 && k <= MAX_SOURCE_SYMBOLS && u32::from(k) + u32::from(r) <= u32::from(MAX_TOTAL_SYMBOLS)
}

/// Builds and caches one codec per block shape.
#[derive(Default)]
pub struct Fec {
    codecs: HashMap<(u16, u16), ReedSolomon>,
}

impl std::fmt::Debug for Fec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fec").field("codecs", &self.codecs.len()).finish()
    }
}

impl Fec {
    fn codec(&mut self, k: u16, r: u16) -> Result<&ReedSolomon, FecError> {
        if !valid_shape(k, r) {
            return Err(FecError::Shape { k, r });
        }
        if self.codecs.len() >= CODEC_CACHE_LIMIT && !self.codecs.contains_key(&(k, r)) {
            self.codecs.clear();
        }
        match self.codecs.entry((k, r)) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let codec =
                    ReedSolomon::new(usize::from(k), usize::from(r)).map_err(|_| FecError::Shape { k, r })?;
                Ok(e.insert(codec))
            }
        }
    }

    /// Fills the `r` repair symbols of `block` from its `k` source symbols.
    pub fn encode(&mut self, k: u16, r: u16, block: &mut [u8], symbol_size: usize) -> Result<(), FecError> {
        check_len(k, r, block.len(), symbol_size)?;
        let codec = self.codec(k, r)?;
        let mut shards: Vec<&mut [u8]> = block.chunks_mut(symbol_size).collect();
        codec.encode(&mut shards).map_err(|_| FecError::Buffer)
    }

    /// Recovers the missing source symbols of `block` in place. `present[i]` says whether
    /// symbol `i` was received; repair symbols are not recomputed.
    pub fn reconstruct(
        &mut self,
        k: u16,
        r: u16,
        block: &mut [u8],
        present: &[bool],
        symbol_size: usize,
    ) -> Result<(), FecError> {
        check_len(k, r, block.len(), symbol_size)?;
        if present.len() != usize::from(k) + usize::from(r) {
            return Err(FecError::Buffer);
        }
        if present.iter().filter(|p| **p).count() < usize::from(k) {
            return Err(FecError::TooFewSymbols);
        }
        let codec = self.codec(k, r)?;
        let mut shards: Vec<(&mut [u8], bool)> = block
            .chunks_mut(symbol_size)
            .zip(present.iter().copied())
            .collect();
        codec
            .reconstruct_data(&mut shards)
            .map_err(|_| FecError::TooFewSymbols)
    }
}

fn check_len(k: u16, r: u16, len: usize, symbol_size: usize) -> Result<(), FecError> {
    if !valid_shape(k, r) {
        return Err(FecError::Shape { k, r });
    }
    let expected = (usize::from(k) + usize::from(r)).checked_mul(symbol_size);
    if symbol_size == 0 || expected != Some(len) {
        return Err(FecError::Buffer);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn repair_counts() {
        assert_eq!(repair_count(1, 10), 2);
        assert_eq!(repair_count(20, 10), 2);
        assert_eq!(repair_count(64, 10), 7);
        assert_eq!(repair_count(100, 10), 10);
        assert_eq!(repair_count(128, 200), 128);
        assert!(valid_shape(128, 128));
        assert!(!valid_shape(129, 1));
        assert!(!valid_shape(1, 0));
    }

    #[test]
    fn any_k_symbols_recover_the_block() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut fec = Fec::default();
        for (k, r, s) in [(1u16, 1u16, 10usize), (5, 2, 33), (64, 7, 1400), (128, 128, 16)] {
            let n = usize::from(k + r);
            let mut block = vec![0u8; n * s];
            rng.fill(&mut block[..usize::from(k) * s]);
            fec.encode(k, r, &mut block, s).unwrap();
            let original = block.clone();
            for _ in 0..5 {
                // Drop exactly r random symbols.
                let mut present = vec![true; n];
                let mut dropped = 0;
                while dropped < r {
                    let i = rng.random_range(0..n);
                    if present[i] {
                        present[i] = false;
                        dropped += 1;
                        block[i * s..(i + 1) * s].fill(0xee);
                    }
                }
                fec.reconstruct(k, r, &mut block, &present, s).unwrap();
                assert_eq!(
                    block[..usize::from(k) * s],
                    original[..usize::from(k) * s],
                    "k={k} r={r}"
                );
                block.copy_from_slice(&original);
            }
            let mut present = vec![true; n];
            for p in present.iter_mut().take(usize::from(r) + 1) {
                *p = false;
            }
            assert_eq!(
                fec.reconstruct(k, r, &mut block, &present, s),
                Err(FecError::TooFewSymbols)
            );
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let mut fec = Fec::default();
        assert_eq!(fec.encode(0, 1, &mut [], 1), Err(FecError::Shape { k: 0, r: 1 }));
        assert_eq!(fec.encode(2, 1, &mut [0; 5], 2), Err(FecError::Buffer));
        assert_eq!(
            fec.reconstruct(2, 1, &mut [0; 6], &[true, true], 2),
            Err(FecError::Buffer)
        ); // Found by the fec_decode fuzzer: a symbol size whose block length overflows usize.
        assert_eq!(
            fec.encode(2, 1, &mut [0; 6], usize::MAX / 2),
            Err(FecError::Buffer)
        );
    }
}
