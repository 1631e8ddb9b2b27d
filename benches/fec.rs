//! FEC codec comparison on weir's block shapes: encode throughput, and decode throughput with
//! 5 % of the block's symbols lost, in MB/s of source data on one core.
//!
//! Each decode loses a different random set of symbols (cycling through 256 patterns), as on
//! a real link, so codecs that cache per-pattern work (reed-solomon-erasure caches its
//! inverted matrices) are not flattered by one pattern repeated.
//!
//! `cargo bench --bench fec`. The machine is shared: compare codecs within one run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// (label, symbol size, k, r)
const SHAPES: [(&str, usize, usize, usize); 4] = [
    ("mtu1500 k=64 r=7 (10%)", 1422, 64, 7),
    ("mtu1500 k=64 r=19 (30%)", 1422, 64, 19),
    ("mtu9000 k=64 r=7 (10%)", 8922, 64, 7),
    ("mtu1500 k=128 r=13 (10%)", 1422, 128, 13),
];
const MIN_TIME: Duration = Duration::from_millis(400);

const PATTERNS: usize = 256;

fn patterns(rng: &mut ChaCha8Rng, n: usize, r: usize) -> Vec<Vec<usize>> {
    (0..PATTERNS).map(|_| lost_indices(rng, n, r)).collect()
}

fn lost_indices(rng: &mut ChaCha8Rng, n: usize, r: usize) -> Vec<usize> {
    // 5 % of the block's symbols, at least one, never more than r.
    let lose = ((n as f64 * 0.05).round() as usize).clamp(1, r);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..lose {
        let j = rng.random_range(i..n);
        idx.swap(i, j);
    }
    idx.truncate(lose);
    idx
}

fn rate(bytes: usize, iters: u32, elapsed: Duration) -> f64 {
    bytes as f64 * f64::from(iters) / elapsed.as_secs_f64() / 1e6
}

fn time(mut f: impl FnMut()) -> (u32, Duration) {
    let start = Instant::now();
    let mut iters = 0;
    while start.elapsed() < MIN_TIME {
        f();
        iters += 1;
    }
    (iters, start.elapsed())
}

fn rs_erasure(s: usize, k: usize, r: usize, rng: &mut ChaCha8Rng) -> (f64, f64) {
    use reed_solomon_erasure::galois_8::ReedSolomon;
    let codec = ReedSolomon::new(k, r).unwrap();
    let mut shards: Vec<Vec<u8>> = (0..k + r).map(|_| vec![0u8; s]).collect();
    for sh in shards.iter_mut().take(k) {
        rng.fill(sh.as_mut_slice());
    }
    let (i, e) = time(|| codec.encode(&mut shards).unwrap());
    let enc = rate(k * s, i, e);
    let all = patterns(rng, k + r, r);
    let mut round = 0;
    let mut work = shards.clone();
    let (i, e) = time(|| {
        let lost = &all[round % PATTERNS];
        round += 1;
        let mut v: Vec<(&mut [u8], bool)> = work
            .iter_mut()
            .enumerate()
            .map(|(j, b)| (b.as_mut_slice(), !lost.contains(&j)))
            .collect();
        codec.reconstruct_data(&mut v).unwrap();
    });
    assert_eq!(work[..k], shards[..k]);
    (enc, rate(k * s, i, e))
}

fn rs_simd(s: usize, k: usize, r: usize, rng: &mut ChaCha8Rng) -> (f64, f64) {
    let data: Vec<Vec<u8>> = (0..k)
        .map(|_| {
            let mut v = vec![0u8; s];
            rng.fill(v.as_mut_slice());
            v
        })
        .collect();
    let mut recovery = Vec::new();
    let (i, e) = time(|| recovery = reed_solomon_simd::encode(k, r, &data).unwrap());
    let enc = rate(k * s, i, e);
    let all = patterns(rng, k + r, r);
    let mut round = 0;
    let (i, e) = time(|| {
        let lost = &all[round % PATTERNS];
        round += 1;
        let originals = data.iter().enumerate().filter(|(j, _)| !lost.contains(j));
        let recov = recovery
            .iter()
            .enumerate()
            .filter(|(j, _)| !lost.contains(&(j + k)));
        let restored = reed_solomon_simd::decode(k, r, originals, recov).unwrap();
        assert_eq!(restored.len(), lost.iter().filter(|j| **j < k).count());
    });
    (enc, rate(k * s, i, e))
}

fn raptorq(s: usize, k: usize, r: usize, rng: &mut ChaCha8Rng) -> (f64, f64) {
    use raptorq::{Decoder, Encoder, ObjectTransmissionInformation};
    let mut data = vec![0u8; k * s];
    rng.fill(data.as_mut_slice());
    let oti = ObjectTransmissionInformation::with_defaults(data.len() as u64, s as u16);
    let mut packets = Vec::new();
    let (i, e) = time(|| packets = Encoder::new(&data, oti).get_encoded_packets(r as u32));
    let enc = rate(k * s, i, e);
    let all = patterns(rng, packets.len(), r);
    let mut round = 0;
    let (i, e) = time(|| {
        let lost = &all[round % PATTERNS];
        round += 1;
        let mut dec = Decoder::new(oti);
        let mut out = None;
        for (j, p) in packets.iter().enumerate() {
            if !lost.contains(&j) {
                out = dec.decode(p.clone());
                if out.is_some() {
                    break;
                }
            }
        }
        assert!(out.is_some());
    });
    (enc, rate(k * s, i, e))
}

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    println!(
        "{:<26} {:<22} {:>12} {:>22}",
        "shape", "codec", "encode MB/s", "decode 5% lost MB/s"
    );
    for (label, s, k, r) in SHAPES {
        for (name, f) in [
            (
                "reed-solomon-erasure",
                rs_erasure as fn(usize, usize, usize, &mut ChaCha8Rng) -> (f64, f64),
            ),
            ("reed-solomon-simd", rs_simd),
            ("raptorq", raptorq),
        ] {
            let (enc, dec) = f(s, k, r, &mut rng);
            println!("{label:<26} {name:<22} {enc:>12.0} {dec:>22.0}");
        }
    }
}
