//! FEC `encode`/`reconstruct` with arbitrary (k, r, symbol size, buffer, presence list) return exactly the documented error and never panic; after a real encode of a valid shape any k surviving symbols reconstruct the source bit for bit (fewer give `TooFewSymbols`). Format: `weir_fuzz::fec`.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use weir::proto::fec::{repair_count, valid_shape, Fec, FecError, MAX_SOURCE_SYMBOLS};
use weir_fuzz::fec::{effective_size, fill, parse_all, present_len, Op, MAX_BLOCK};

/// What `encode` (`present == None`) or `reconstruct` must return, from the documented rules
/// (shape first, then buffer length, then presence list length, then the number present).
fn documented(k: u16, r: u16, len: usize, size: usize, present: Option<&[bool]>) -> Result<(), FecError> {
    if !valid_shape(k, r) {
        return Err(FecError::Shape { k, r });
    }
    let total = usize::from(k) + usize::from(r);
    if size == 0 || total.checked_mul(size) != Some(len) {
        return Err(FecError::Buffer);
    }
    if let Some(present) = present {
        if present.len() != total {
            return Err(FecError::Buffer);
        }
        if present.iter().filter(|p| **p).count() < usize::from(k) {
            return Err(FecError::TooFewSymbols);
        }
    }
    Ok(())
}

fn round_trip(fec: &mut Fec, k8: u8, r8: u8, size: u16, seed: u64, lost: &[u8]) {
    let (k, r) = (u16::from(k8), u16::from(r8));
    // Any k up to the maximum gets a repair count that is itself a valid shape.
    if (1..=MAX_SOURCE_SYMBOLS).contains(&k) {
        let pct = (seed >> 48) as u16;
        assert!(valid_shape(k, repair_count(k, pct)), "repair_count({k}, {pct})");
    }
    let size = effective_size(k8, r8, size);
    let total = usize::from(k) + usize::from(r);
    let mut block = vec![0u8; total * size];
    if !valid_shape(k, r) || size == 0 {
        let want = documented(k, r, block.len(), size, None);
        assert_eq!(fec.encode(k, r, &mut block, size), want);
        let present = vec![true; total];
        assert_eq!(fec.reconstruct(k, r, &mut block, &present, size), want);
        return;
    }
    let ks = usize::from(k) * size;
    fill(seed, &mut block[..ks]);
    fec.encode(k, r, &mut block, size)
        .expect("encode of a valid shape");
    let original = block.clone();
    let present: Vec<bool> = (0..total)
        .map(|i| lost.get(i / 8).is_none_or(|b| b & (1 << (i % 8)) == 0))
        .collect();
    for (i, p) in present.iter().enumerate() {
        if !p {
            // Whatever sits in a lost slot must not matter.
            block[i * size..(i + 1) * size].fill(0xa5 ^ i as u8);
        }
    }
    let have = present.iter().filter(|p| **p).count();
    let result = fec.reconstruct(k, r, &mut block, &present, size);
    if have < usize::from(k) {
        assert_eq!(result, Err(FecError::TooFewSymbols));
        return;
    }
    assert_eq!(result, Ok(()), "k={k} r={r} size={size} present={have}");
    assert!(
        block[..ks] == original[..ks],
        "k={k} r={r} size={size}: wrong source after reconstruct"
    );
    for (i, p) in present.iter().enumerate() {
        if *p {
            assert!(
                block[i * size..(i + 1) * size] == original[i * size..(i + 1) * size],
                "received symbol {i} changed"
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn raw_call(
    fec: &mut Fec,
    k8: u8,
    r8: u8,
    size: u16,
    reconstruct: bool,
    size_override: Option<u64>,
    len_delta: i16,
    present_delta: i8,
    bits: &[u8],
) {
    let (k, r) = (u16::from(k8), u16::from(r8));
    let base = effective_size(k8, r8, size);
    let total = usize::from(k) + usize::from(r);
    let len = ((total * base) as i64 + i64::from(len_delta)).clamp(0, 2 * MAX_BLOCK as i64) as usize;
    let mut block = vec![0u8; len];
    fill(
        u64::from(size) << 16 | u64::from(k8) << 8 | u64::from(r8),
        &mut block,
    );
    let call_size = size_override.map_or(base, |s| usize::try_from(s).unwrap_or(usize::MAX));
    if reconstruct {
        let present: Vec<bool> = (0..present_len(k8, r8, present_delta))
            .map(|i| bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
            .collect();
        let want = documented(k, r, len, call_size, Some(&present));
        assert_eq!(fec.reconstruct(k, r, &mut block, &present, call_size), want);
    } else {
        let want = documented(k, r, len, call_size, None);
        assert_eq!(fec.encode(k, r, &mut block, call_size), want);
    }
}

thread_local! {
    /// One codec cache for the whole run, as in a long-running receiver: building a codec for
    /// a large shape costs far more than using it, and results must not depend on the cache
    /// (it also gets filled past its limit and cleared).
    static FEC: RefCell<Fec> = RefCell::new(Fec::default());
}

fuzz_target!(|data: &[u8]| {
    FEC.with_borrow_mut(|fec| run(fec, data));
});

fn run(fec: &mut Fec, data: &[u8]) {
    for op in parse_all(data) {
        match op {
            Op::RoundTrip {
                k,
                r,
                size,
                seed,
                lost,
            } => round_trip(fec, k, r, size, seed, &lost),
            Op::RawCall {
                k,
                r,
                size,
                reconstruct,
                size_override,
                len_delta,
                present_delta,
                present,
            } => raw_call(
                fec,
                k,
                r,
                size,
                reconstruct,
                size_override,
                len_delta,
                present_delta,
                &present,
            ),
        }
    }
}
