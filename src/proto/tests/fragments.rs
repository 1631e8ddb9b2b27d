//! Messages that span many FEC blocks, under loss the code cannot repair: a message that lost
//! any fragment is never delivered, whatever block its other fragments were in. Every message
//! is delivered byte-identical or accounted lost (`sim::check_accounting`), and no stream is
//! spliced across a lost block.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::sim::{check_accounting, run_through, workload_sized, Impairment, Link, Sent, Shape};

/// Small blocks, so a message of 20 blocks stays small: 250-byte symbols, 4 source symbols
/// and (at 50 % repair) 2 repair symbols per block, 1000 bytes of frames per block.
const SMALL: Shape = Shape {
    budget: 300,
    block_symbols: 4,
};
const BLOCK_BYTES: usize = 1000;
const DATAGRAMS_PER_BLOCK: usize = 6;
const REPAIR: u16 = 50;

/// Messages of 1 to 20 blocks on both channels.
fn long_messages(seed: u64) -> Vec<Sent> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    workload_sized(&mut rng, 150, 20 * BLOCK_BYTES, 20 * BLOCK_BYTES)
}

/// Runs `work` through `link` and checks the accounting; returns (delivered, lost) and how
/// many delivered messages spanned more than two blocks.
fn run_checked(seed: u64, link: Link, work: &[Sent]) -> (usize, usize, usize) {
    let (seqs, outcome, rx) = run_through(seed, link, REPAIR, SMALL, work);
    let (delivered, lost) = check_accounting(work, &seqs, &outcome);
    let c = rx.counters();
    assert_eq!(c.drop_forged + c.drop_replay, 0, "seed {seed}: {c:?}");
    let long = outcome
        .delivered
        .values()
        .filter(|(_, _, payload)| payload.len() > 2 * BLOCK_BYTES)
        .count();
    (delivered, lost, long)
}

const NO_IMPAIRMENT: Impairment = Impairment {
    loss: 0.0,
    burst: 1.0,
    reorder: 0.0,
    duplicate: 0.0,
};

#[test]
fn bursts_of_every_length_up_to_several_blocks_never_splice_a_message() {
    let (mut lost_total, mut long_total) = (0, 0);
    for length in 1..=3 * DATAGRAMS_PER_BLOCK + 2 {
        let seed = 1000 + length as u64;
        let work = long_messages(seed);
        let link = Link::with_runs(seed, NO_IMPAIRMENT, length, 150);
        let (_, lost, long) = run_checked(seed, link, &work);
        if length > 2 {
            // Two losses per block are within repair: only longer runs can lose a block.
            assert!(lost > 0, "a run of {length} datagrams lost nothing");
        } else {
            assert_eq!(lost, 0, "a run of {length} datagrams is within repair");
        }
        lost_total += lost;
        long_total += long;
    }
    assert!(long_total > 100, "few long messages delivered: {long_total}");
    assert!(lost_total > 100, "few messages lost: {lost_total}");
}

#[test]
fn random_loss_reordering_and_duplicates_never_splice_a_message() {
    for (i, (loss, burst)) in [(0.02, 1.0), (0.05, 1.0), (0.10, 1.0), (0.03, 4.0), (0.08, 10.0)]
        .into_iter()
        .enumerate()
    {
        let seed = 2000 + i as u64;
        let work = long_messages(seed);
        let imp = Impairment {
            loss,
            burst,
            reorder: 0.03,
            duplicate: 0.03,
        };
        let (seqs, outcome, rx) = run_through(seed, Link::new(seed, imp), REPAIR, SMALL, &work);
        let (delivered, lost) = check_accounting(&work, &seqs, &outcome);
        assert!(delivered > 0, "loss {loss} burst {burst}: {:?}", rx.counters());
        if loss >= 0.05 {
            assert!(lost > 0, "loss {loss} burst {burst}: {:?}", rx.counters());
        }
    }
}

#[test]
fn one_lost_block_inside_a_long_message_loses_that_message_only() {
    // One datagram channel message of 12 blocks between two short ones; the link drops the
    // six datagrams of a block in the middle of the long message.
    let mut work = Vec::new();
    for len in [100, 12 * BLOCK_BYTES, 100] {
        work.push(Sent {
            channel: super::sim::DGRAM_CH,
            stream: 0,
            kind: crate::proto::frame::MessageKind::Data,
            payload: (0..len).map(|i| (i % 253) as u8).collect(),
        });
    }
    let mut link = Link::new(3, NO_IMPAIRMENT);
    // The heartbeat is datagram 0; block 0 (short message and the long one's start) 1..=6;
    // block 5 lies inside the long message.
    link.drop_range(1 + 5 * DATAGRAMS_PER_BLOCK..1 + 6 * DATAGRAMS_PER_BLOCK);
    let (seqs, outcome, rx) = run_through(3, link, REPAIR, SMALL, &work);
    check_accounting(&work, &seqs, &outcome);
    assert_eq!(rx.counters().blocks_lost, 1, "{:?}", rx.counters());
    assert_eq!(
        outcome.lost.get(&super::sim::DGRAM_CH),
        Some(&vec![(1, 1)]),
        "exactly the long message is named lost"
    );
    assert!(outcome.delivered.contains_key(&(super::sim::DGRAM_CH, 0)));
    assert!(outcome.delivered.contains_key(&(super::sim::DGRAM_CH, 2)));
    assert_eq!(rx.counters().messages_lost, 1);
}
