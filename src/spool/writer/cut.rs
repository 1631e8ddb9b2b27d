//! Streams cut by records the spool could not store.
//!
//! The link receiver breaks a stream when the *link* lost part of it, and says so with an
//! `Abort` record. Records can also be dropped on the IT host itself — the spool queue was full,
//! the disk was full, a write failed — and then the stream's bytes in the spool have a hole that
//! the link never saw. This module keeps every channel's log a well-formed run of streams
//! anyway:
//!
//! - the `Lost` record for such a drop is followed by an `Abort` (sequence number 0) for every
//!   stream open in the spool at that point, because the dropped records may have belonged to
//!   any of them;
//! - later records of a stream that is not open in the spool (it was cut, or its `Open` was
//!   dropped) are not stored: `Data` is counted (`drops_cut`), an `End` or `Abort` is superseded
//!   by the `Abort` already stored;
//! - a stream ends cleanly (`End`) in the spool only if every record of it was stored.
//!
//! Datagram channels (stream 0) and `Lost` records of link loss pass unchanged.

use std::collections::BTreeSet;

use super::feed::Input;
use crate::spool::{NewRecord, RecordKind};

/// What to append for a run of inputs, and the state to keep if the append succeeds.
#[derive(Debug)]
pub(super) struct Plan<'a> {
    /// The records to append, in order.
    pub records: Vec<NewRecord<'a>>,
    /// Streams open in the spool after these records.
    pub open: BTreeSet<u32>,
    /// `Data` records not stored because their stream is not open in the spool.
    pub discarded: u64,
}

/// Plans the records for `inputs`, given the streams open in the spool (`open`).
pub(super) fn plan<'a>(
    open: &BTreeSet<u32>,
    inputs: impl IntoIterator<Item = &'a Input>,
    time_ns: u64,
) -> Plan<'a> {
    let mut open = open.clone();
    let mut records = Vec::new();
    let mut discarded = 0;
    for input in inputs {
        let record = NewRecord {
            seq: input.seq,
            time_ns,
            stream: input.stream,
            kind: input.kind,
            payload: &input.payload,
        };
        if input.kind == RecordKind::Lost {
            records.push(record);
            if input.cuts_streams {
                records.extend(std::mem::take(&mut open).into_iter().map(|stream| NewRecord {
                    seq: 0,
                    time_ns,
                    stream,
                    kind: RecordKind::Abort,
                    payload: &[],
                }));
            }
            continue;
        }
        if input.stream == 0 {
            records.push(record);
            continue;
        }
        match input.kind {
            RecordKind::Open => {
                open.insert(input.stream);
                records.push(record);
            }
            _ if open.contains(&input.stream) => {
                if matches!(input.kind, RecordKind::End | RecordKind::Abort) {
                    open.remove(&input.stream);
                }
                records.push(record);
            }
            RecordKind::Data => discarded += 1,
            _ => {}
        }
    }
    Plan {
        records,
        open,
        discarded,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::spool::writer::feed::LossSpan;

    fn input(seq: u64, stream: u32, kind: RecordKind) -> Input {
        Input {
            channel: 7,
            seq,
            stream,
            kind,
            payload: vec![1; 3],
            cuts_streams: false,
        }
    }

    fn kinds(plan: &Plan<'_>) -> Vec<(u64, u32, RecordKind)> {
        plan.records.iter().map(|r| (r.seq, r.stream, r.kind)).collect()
    }

    #[test]
    fn a_drop_aborts_every_open_stream_and_discards_the_rest_of_them() {
        use RecordKind::*;
        let before = [
            input(0, 1, Open),
            input(1, 1, Data),
            input(2, 2, Open),
            input(3, 0, Data),
        ];
        let first = plan(&BTreeSet::new(), &before, 9);
        assert_eq!(first.open, BTreeSet::from([1, 2]));
        assert_eq!(first.records.len(), 4);
        // Messages 4..=5 were dropped by the spool (one of them stream 1's data); then more of
        // both streams arrives, a new stream opens, and stream 2 ends.
        let after = [
            Input::lost(7, LossSpan { first: 4, last: 5 }),
            input(6, 1, Data),
            input(7, 3, Open),
            input(8, 3, Data),
            input(9, 2, End),
            input(10, 0, Data),
        ];
        let second = plan(&first.open, &after, 9);
        assert_eq!(
            kinds(&second),
            [
                (4, 0, Lost),
                (0, 1, Abort),
                (0, 2, Abort),
                (7, 3, Open),
                (8, 3, Data),
                (10, 0, Data),
            ]
        );
        assert_eq!(second.discarded, 1, "stream 1's data after the cut");
        assert_eq!(second.open, BTreeSet::from([3]));
    }

    #[test]
    fn a_link_loss_record_passes_and_the_link_aborts_the_streams_itself() {
        use RecordKind::*;
        let open = BTreeSet::from([1]);
        let inputs = [
            input(4, 0, Lost),
            // The receiver's own abort of the broken stream (sequence number 0).
            Input {
                seq: 0,
                ..input(0, 1, Abort)
            },
        ];
        let p = plan(&open, &inputs, 9);
        assert_eq!(kinds(&p), [(4, 0, Lost), (0, 1, Abort)]);
        assert!(p.open.is_empty());
        assert_eq!(p.discarded, 0);
    }

    #[test]
    fn a_stream_whose_open_was_dropped_is_never_stored() {
        use RecordKind::*;
        let inputs = [
            Input::lost(7, LossSpan { first: 0, last: 0 }),
            input(1, 5, Data),
            input(2, 5, End),
        ];
        let p = plan(&BTreeSet::new(), &inputs, 9);
        assert_eq!(kinds(&p), [(0, 0, Lost)]);
        assert_eq!(p.discarded, 1);
    }
}
