//! Header, symbol header and heartbeat parsing never panic, what parses re-encodes to the same bytes, and the documented bounds (block id, counters ≤ MAX_COUNTER) hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::reader::Reader;
use weir::proto::wire::{
    Header, Heartbeat, SymbolHeader, HEADER_LEN, HEARTBEAT_CHANNEL_LEN, HEARTBEAT_FIXED_LEN, MAX_COUNTER,
    SYMBOL_HEADER_LEN,
};

fuzz_target!(|data: &[u8]| {
    if let Some(h) = Header::parse(data) {
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(out.as_slice(), &data[..HEADER_LEN]);
    }
    let mut reader = Reader::new(data);
    if let Some(sh) = SymbolHeader::parse(&mut reader) {
        assert!(sh.block <= MAX_COUNTER);
        assert_eq!(reader.remaining(), data.len() - SYMBOL_HEADER_LEN);
        let mut out = Vec::new();
        sh.write(&mut out);
        assert_eq!(out.as_slice(), &data[..SYMBOL_HEADER_LEN]);
    }
    if let Some(hb) = Heartbeat::parse(data) {
        assert!(hb.next_block <= MAX_COUNTER);
        assert!(hb.channels.iter().all(|(_, seq)| *seq <= MAX_COUNTER));
        assert_eq!(
            data.len(),
            HEARTBEAT_FIXED_LEN + hb.channels.len() * HEARTBEAT_CHANNEL_LEN
        );
        let mut out = Vec::new();
        hb.write(&mut out);
        assert_eq!(out.as_slice(), data);
    }
});
