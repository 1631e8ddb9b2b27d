//! The receiver fed arbitrary datagram sequences: no panic, no stall, bounded state.
//! Input: a sequence of (u16 length, bytes) records. Without the link key the inputs stop at
//! authentication; the authenticated paths are covered by the seeded tests in src/proto.
#![no_main]
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use weir::keys::LinkKey;
use weir::proto::recv::{ChannelSpec, Receiver, ReceiverConfig};

fuzz_target!(|data: &[u8]| {
    let mut rx = Receiver::new(ReceiverConfig {
        keys: vec![LinkKey { id: 1, secret: [0x42; 32] }],
        fingerprint: [0; 16],
        channels: vec![ChannelSpec { id: 1, streams: true, max_message: 1 << 16 }],
        reorder_window: Duration::from_millis(20),
        max_pending_bytes: 1 << 20,
    });
    let mut now = Instant::now();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let mut datagram = rest[2..2 + len].to_vec();
        rest = &rest[2 + len..];
        rx.handle(now, &mut datagram);
        now += Duration::from_millis(1);
        rx.handle_timeout(now);
        while rx.poll_event().is_some() {}
    }
    assert!(rx.pending_blocks() <= 1 << 20);
});
