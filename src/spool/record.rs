//! Encoding and checked decoding of segment headers and records (layouts in the module doc of
//! [`crate::spool`]). Every byte read from disk goes through [`Reader`]; a length is checked
//! against [`MAX_RECORD`] before anything is allocated for it.

use std::io::{self, Read};

use super::{NewRecord, Record, RecordKind, MAX_RECORD};
use crate::proto::reader::{PutBytes, Reader};

/// Magic at the start of every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"weirspl\0";
/// Segment format version.
pub(crate) const VERSION: u32 = 1;
/// Bytes of the segment header.
pub(crate) const SEGMENT_HEADER: usize = 24;
/// Bytes of a record header.
pub(crate) const RECORD_HEADER: usize = 40;
/// Bytes of a record header covered by the CRC (everything after it).
const CRC_COVERED: usize = RECORD_HEADER - 8;

/// The segment header for a segment starting at `base`.
pub(crate) fn segment_header(base: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEGMENT_HEADER);
    out.extend_from_slice(&MAGIC);
    out.put_u32(VERSION);
    out.put_u32(0);
    out.put_u64(base);
    out
}

/// Checks a segment header read from disk against the base in the file's name.
pub(crate) fn check_segment_header(bytes: &[u8], base: u64) -> Result<(), &'static str> {
    let mut r = Reader::new(bytes);
    let magic: [u8; 8] = r.array().ok_or("shorter than a segment header")?;
    if magic != MAGIC {
        return Err("wrong magic");
    }
    let version = r.u32().ok_or("shorter than a segment header")?;
    if version != VERSION {
        return Err("unsupported format version");
    }
    let reserved = r.u32().ok_or("shorter than a segment header")?;
    if reserved != 0 {
        return Err("reserved field not zero");
    }
    let stored = r.u64().ok_or("shorter than a segment header")?;
    if stored != base {
        return Err("base offset differs from the file name");
    }
    Ok(())
}

/// The header fields after the CRC, as stored.
fn covered(offset: u64, seq: u64, time_ns: u64, stream: u32, kind: RecordKind) -> [u8; CRC_COVERED] {
    let mut out = [0u8; CRC_COVERED];
    let bytes = offset
        .to_be_bytes()
        .into_iter()
        .chain(seq.to_be_bytes())
        .chain(time_ns.to_be_bytes())
        .chain(stream.to_be_bytes())
        .chain([kind.to_byte(), 0, 0, 0]);
    for (slot, byte) in out.iter_mut().zip(bytes) {
        *slot = byte;
    }
    out
}

/// Appends `record` with offset `offset` to `out`. The caller has checked the payload length.
pub(crate) fn encode(out: &mut Vec<u8>, offset: u64, record: &NewRecord<'_>) {
    let tail = covered(offset, record.seq, record.time_ns, record.stream, record.kind);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&tail), record.payload);
    // Lengths over MAX_RECORD (< u32::MAX) were refused by the caller.
    out.put_u32(u32::try_from(record.payload.len()).unwrap_or(u32::MAX));
    out.put_u32(crc);
    out.extend_from_slice(&tail);
    out.extend_from_slice(record.payload);
}

/// A record header that passed its structural checks (not yet the CRC, which needs the
/// payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) len: usize,
    crc: u32,
    pub(crate) offset: u64,
    pub(crate) seq: u64,
    pub(crate) time_ns: u64,
    pub(crate) stream: u32,
    pub(crate) kind: RecordKind,
    tail: [u8; CRC_COVERED],
}

impl Header {
    /// Bytes of the whole record on disk.
    pub(crate) fn record_bytes(&self) -> u64 {
        (RECORD_HEADER + self.len) as u64
    }

    /// Whether `payload` is the one this header's CRC covers.
    pub(crate) fn crc_ok(&self, payload: &[u8]) -> bool {
        crc32c::crc32c_append(crc32c::crc32c(&self.tail), payload) == self.crc
    }

    /// The record, given its checked payload.
    pub(crate) fn into_record(self, payload: Vec<u8>) -> Record {
        Record {
            offset: self.offset,
            seq: self.seq,
            time_ns: self.time_ns,
            stream: self.stream,
            kind: self.kind,
            payload,
        }
    }
}

/// Parses a record header; `None` if it is not a valid one (length over [`MAX_RECORD`],
/// unknown kind, reserved bytes set).
pub(crate) fn decode_header(bytes: &[u8; RECORD_HEADER]) -> Option<Header> {
    let mut r = Reader::new(bytes);
    let len = usize::try_from(r.u32()?).ok()?;
    if len > MAX_RECORD {
        return None;
    }
    let crc = r.u32()?;
    let tail: [u8; CRC_COVERED] = r.array()?;
    let mut t = Reader::new(&tail);
    let offset = t.u64()?;
    let seq = t.u64()?;
    let time_ns = t.u64()?;
    let stream = t.u32()?;
    let kind = RecordKind::from_byte(t.u8()?)?;
    if t.array::<3>()? != [0, 0, 0] {
        return None;
    }
    Some(Header {
        len,
        crc,
        offset,
        seq,
        time_ns,
        stream,
        kind,
        tail,
    })
}

/// What reading a record header from a segment found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderRead {
    /// A structurally valid header.
    Header(Header),
    /// The segment ends cleanly here.
    End,
    /// The segment ends inside a header.
    Torn,
    /// The bytes are not a valid header.
    Bad,
}

/// Fills `buf` as far as `r` allows; returns how many bytes were read (less than `buf.len()`
/// only at end of file).
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads the next record header from `r`.
pub(crate) fn read_header(r: &mut impl Read) -> io::Result<HeaderRead> {
    let mut bytes = [0u8; RECORD_HEADER];
    let n = read_full(r, &mut bytes)?;
    Ok(match n {
        0 => HeaderRead::End,
        RECORD_HEADER => decode_header(&bytes).map_or(HeaderRead::Bad, HeaderRead::Header),
        _ => HeaderRead::Torn,
    })
}

/// Reads the payload of `header` into `payload` (replacing its contents) and checks the CRC.
/// `Ok(false)` if the segment ends inside the payload or the CRC is wrong.
pub(crate) fn read_payload(r: &mut impl Read, header: &Header, payload: &mut Vec<u8>) -> io::Result<bool> {
    payload.clear();
    payload.resize(header.len, 0);
    let n = read_full(r, payload)?;
    Ok(n == header.len && header.crc_ok(payload))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> NewRecord<'_> {
        NewRecord {
            seq: 77,
            time_ns: 1_700_000_000_000_000_000,
            stream: 9,
            kind: RecordKind::Abort,
            payload,
        }
    }

    #[test]
    fn record_round_trips_and_every_bit_flip_is_caught() {
        let mut buf = Vec::new();
        encode(&mut buf, 42, &sample(b"hello spool"));
        assert_eq!(buf.len(), RECORD_HEADER + 11);
        let mut r = buf.as_slice();
        let HeaderRead::Header(h) = read_header(&mut r).unwrap() else {
            panic!("no header")
        };
        let mut payload = Vec::new();
        assert!(read_payload(&mut r, &h, &mut payload).unwrap());
        let rec = h.into_record(payload);
        assert_eq!(
            (rec.offset, rec.seq, rec.stream, rec.kind),
            (42, 77, 9, RecordKind::Abort)
        );
        assert_eq!(rec.payload, b"hello spool");

        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let mut r = bad.as_slice();
            let ok = match read_header(&mut r).unwrap() {
                HeaderRead::Header(h) => {
                    let mut payload = Vec::new();
                    read_payload(&mut r, &h, &mut payload).unwrap()
                }
                _ => false,
            };
            assert!(!ok, "bit {bit} flipped and the record still passed");
        }
    }

    #[test]
    fn oversized_length_is_bad_without_allocating() {
        let mut buf = Vec::new();
        encode(&mut buf, 0, &sample(b"x"));
        buf[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(read_header(&mut buf.as_slice()).unwrap(), HeaderRead::Bad);
        assert_eq!(read_header(&mut &buf[..10]).unwrap(), HeaderRead::Torn);
        assert_eq!(read_header(&mut &buf[..0]).unwrap(), HeaderRead::End);
    }

    #[test]
    fn segment_header_checks() {
        let h = segment_header(1234);
        assert_eq!(h.len(), SEGMENT_HEADER);
        assert_eq!(check_segment_header(&h, 1234), Ok(()));
        assert!(check_segment_header(&h, 1235).is_err());
        assert!(check_segment_header(&h[..20], 1234).is_err());
        let mut bad = h.clone();
        bad[0] ^= 1;
        assert!(check_segment_header(&bad, 1234).is_err());
        let mut v2 = h;
        v2[11] = 2;
        assert!(check_segment_header(&v2, 1234).is_err());
    }
}
