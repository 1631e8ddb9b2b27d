//! Header, symbol header and heartbeat parsing never panic, and what parses re-encodes to the
//! same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weir::proto::reader::Reader;
use weir::proto::wire::{Header, Heartbeat, SymbolHeader, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if let Some(h) = Header::parse(data) {
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(out.as_slice(), &data[..HEADER_LEN]);
    }
    let _ = SymbolHeader::parse(&mut Reader::new(data));
    if let Some(hb) = Heartbeat::parse(data) {
        let mut out = Vec::new();
        hb.write(&mut out);
        assert_eq!(out.as_slice(), data);
    }
});
