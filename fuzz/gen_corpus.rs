//! Writes the seed corpora under `fuzz/corpus/<target>/`: real datagrams from a `Sender`,
//! scripts of sealed records for `receiver`, FEC shapes, frames, headers and the policies of
//! the repository. Deterministic: running it again rewrites the same files.
//!
//! ```sh
//! cd fuzz && cargo run --release --features gen --bin gen_corpus
//! cargo run --features gen --bin gen_corpus -- --print receiver <input>   # decode an input
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir::keys::LinkKey;
use weir::proto::frame::{FrameHeader, MessageKind};
use weir::proto::send::{Sender, SenderConfig};
use weir::proto::wire::{Header, Heartbeat, Kind, SymbolHeader, MAX_COUNTER, VERSION};
use weir_fuzz::fec::Op;
use weir_fuzz::rx::{
    encode_all, parse_all, BlockId, Body, FrameKind, FrameSpec, HeartbeatSpec, KeyChoice, Payload, Pn,
    Record, Seal, DGRAM_CH, FINGERPRINT, KEY1, MAX_MESSAGE, SESSIONS, STREAM_CH,
};

/// Channel selectors of `FrameSpec`.
const STREAM: u8 = 0;
const DGRAM: u8 = 1;
const UNDECLARED: u8 = 2;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus_dir(target);
    fs::create_dir_all(&dir).expect("create corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
    println!("{target}/{name}: {} bytes", bytes.len());
}

/// A receiver script, checked to parse back to itself.
fn script(name: &str, records: &[Record]) {
    let bytes = encode_all(records);
    assert_eq!(
        encode_all(&parse_all(&bytes)),
        bytes,
        "{name}: encoding does not round-trip"
    );
    write("receiver", name, &bytes);
}

fn sender(session: u64, budget: usize) -> Sender {
    Sender::new(SenderConfig {
        key: LinkKey {
            id: KEY1.0,
            secret: KEY1.1,
        },
        session,
        datagram_budget: budget,
        max_source_symbols: 16,
        repair_percent: 25,
        flush: Duration::from_millis(1),
        heartbeat: Duration::from_millis(100),
        fingerprint: FINGERPRINT,
        channels: vec![STREAM_CH, DGRAM_CH],
        max_message: MAX_MESSAGE,
    })
    .expect("sender config")
}

/// Every datagram the sender has ready at `now`.
fn drain(tx: &mut Sender, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while tx.poll_transmit(now, &mut buf).is_some() {
        out.push(std::mem::take(&mut buf));
    }
    out
}

/// A stream (open, data, end) and some datagrams, as real sealed datagrams of `session`.
fn sender_traffic(session: u64, budget: usize, dgram_len: usize) -> Vec<Vec<u8>> {
    let mut tx = sender(session, budget);
    let now = Instant::now();
    let mut out = drain(&mut tx, now); // the first heartbeat
    let pushes: [(u32, u32, MessageKind, Vec<u8>); 6] = [
        (STREAM_CH, 7, MessageKind::Open, Vec::new()),
        (
            STREAM_CH,
            7,
            MessageKind::Data,
            b"GET /historian/tags HTTP/1.1\r\n\r\n".to_vec(),
        ),
        (
            DGRAM_CH,
            0,
            MessageKind::Data,
            b"<13>Nov 21 16:00:00 plc1 temp=71.5".to_vec(),
        ),
        (
            STREAM_CH,
            7,
            MessageKind::Data,
            (0..dgram_len).map(|i| i as u8).collect(),
        ),
        (STREAM_CH, 7, MessageKind::End, Vec::new()),
        (DGRAM_CH, 0, MessageKind::Data, vec![0x55; 40]),
    ];
    for (channel, stream, kind, payload) in pushes {
        tx.push(now, channel, stream, kind, &payload).expect("push");
        tx.flush();
        out.extend(drain(&mut tx, now));
    }
    out.extend(drain(&mut tx, now + Duration::from_millis(150))); // the next heartbeat
    out
}

fn raw(dt: u8, bytes: &[u8]) -> Record {
    Record::Raw {
        dt,
        bytes: bytes.to_vec(),
    }
}

fn block(session: u8, shape: u8, frames: Vec<FrameSpec>) -> Record {
    let (k, r, _) = weir_fuzz::rx::shape_of(shape);
    Record::Block {
        dt: 1,
        seal: Seal::good(session),
        block: BlockId::Next,
        shape,
        frames,
        lost: vec![0; usize::from(k + r).div_ceil(8)],
        order: 0,
    }
}

fn heartbeat(session: u8) -> Record {
    Record::Sealed {
        dt: 1,
        seal: Seal::good(session),
        body: Body::Heartbeat(HeartbeatSpec::default()),
    }
}

fn stream_frames(stream: u8, data: &[u8]) -> Vec<FrameSpec> {
    vec![
        FrameSpec::whole(STREAM, FrameKind::Open, stream, b""),
        FrameSpec::whole(STREAM, FrameKind::Data, stream, data),
        FrameSpec::whole(DGRAM, FrameKind::Data, 0, b"<13>syslog line"),
    ]
}

fn receiver_seeds() {
    // Real sender output, byte for byte (the harness holds the same key).
    let traffic = sender_traffic(SESSIONS[0], 300, 700);
    script(
        "sender_stream",
        &traffic.iter().map(|d| raw(1, d)).collect::<Vec<_>>(),
    );
    // The same traffic with losses (one symbol here and there, then a whole burst), then a
    // long pause so the reorder window expires.
    let mut lossy: Vec<Record> = traffic
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 != 2 && !(9..13).contains(i))
        .map(|(_, d)| raw(3, d))
        .collect();
    lossy.push(Record::Tick { dt: 255 });
    script("sender_lossy", &lossy);
    // Reordered and duplicated.
    let mut shuffled: Vec<Record> = Vec::new();
    for pair in traffic.chunks(2) {
        for d in pair.iter().rev() {
            shuffled.push(raw(0, d));
        }
        shuffled.push(raw(0, &pair[0]));
    }
    script("sender_reordered", &shuffled);
    // A takeover by a newer sender run, stale replays of the old one, then a restart and the
    // same replays again.
    let newer = sender_traffic(SESSIONS[2], 1472, 100);
    let mut takeover: Vec<Record> = traffic.iter().take(6).map(|d| raw(1, d)).collect();
    takeover.extend(newer.iter().take(4).map(|d| raw(1, d)));
    takeover.push(raw(1, &traffic[1]));
    takeover.push(Record::Restart { dt: 10 });
    takeover.push(raw(1, &traffic[2]));
    takeover.push(raw(1, &newer[1]));
    takeover.extend(newer.iter().skip(4).map(|d| raw(1, d)));
    script("sender_takeover", &takeover);

    // Harness-built blocks: streams and datagrams, FEC recovery, a gap, heartbeats.
    let mut recovered = block(0, 0x13, stream_frames(1, b"recovered by FEC"));
    if let Record::Block { lost, order, .. } = &mut recovered {
        *lost = vec![0b0000_0101]; // two of 4 + 2 symbols
        *order = 1; // sent in reverse
    }
    let mut gap = block(
        0,
        0x00,
        vec![FrameSpec::whole(DGRAM, FrameKind::Data, 0, b"after a gap")],
    );
    if let Record::Block { block, .. } = &mut gap {
        *block = BlockId::Gap(2);
    }
    script(
        "blocks",
        &[
            heartbeat(0),
            block(0, 0x10, stream_frames(1, b"first chunk")),
            recovered,
            block(
                0,
                0x41,
                vec![
                    FrameSpec::whole(STREAM, FrameKind::Data, 1, b"more"),
                    FrameSpec::whole(STREAM, FrameKind::End, 1, b""),
                    FrameSpec::whole(STREAM, FrameKind::Open, 2, b""),
                ],
            ),
            gap,
            Record::Tick { dt: 30 },
            heartbeat(0),
            Record::Tick { dt: 210 },
        ],
    );
    // Fragments, oversize messages, an undeclared channel, stream-state errors.
    let big = FrameSpec {
        payload: Payload::Fill(10, 0x77),
        ..FrameSpec::whole(DGRAM, FrameKind::Data, 0, b"")
    };
    let first_half = FrameSpec {
        last: false,
        ..FrameSpec::whole(STREAM, FrameKind::Data, 3, b"first half, ")
    };
    let second_half = FrameSpec {
        first: false,
        ..FrameSpec::whole(STREAM, FrameKind::Data, 3, b"second half")
    };
    script(
        "frames_edge",
        &[
            block(0, 0x00, vec![FrameSpec::whole(STREAM, FrameKind::Open, 3, b"")]),
            block(0, 0x01, vec![first_half]),
            block(0, 0x00, vec![second_half, big]),
            block(
                0,
                0x00,
                vec![
                    FrameSpec::whole(UNDECLARED, FrameKind::Data, 0, b"nobody listens"),
                    FrameSpec::whole(STREAM, FrameKind::Data, 9, b"never opened"),
                    FrameSpec::whole(DGRAM, FrameKind::Open, 0, b""),
                    FrameSpec {
                        seq: Some(MAX_COUNTER),
                        ..FrameSpec::whole(DGRAM, FrameKind::Data, 0, b"at the cap")
                    },
                ],
            ),
            Record::Tick { dt: 250 },
        ],
    );
    // A message in three blocks whose middle block never arrives: the receiver must name it
    // lost, not join its first and last fragments.
    let part = |first, last, bytes: &[u8]| FrameSpec {
        first,
        last,
        ..FrameSpec::whole(STREAM, FrameKind::Data, 4, bytes)
    };
    let mut middle_lost = block(0, 0x00, vec![part(false, false, b"the middle, ")]);
    if let Record::Block { lost, .. } = &mut middle_lost {
        lost.fill(0xff);
    }
    script(
        "fragment_lost_between",
        &[
            block(0, 0x00, vec![FrameSpec::whole(STREAM, FrameKind::Open, 4, b"")]),
            block(0, 0x00, vec![part(true, false, b"the start, ")]),
            middle_lost,
            block(0, 0x00, vec![part(false, true, b"the end")]),
            Record::Tick { dt: 250 },
        ],
    );
    // Sealed datagrams at the edges of the header and body rules.
    let symbol = |block: u64, index: u8, k: u8, r: u8, bytes: &[u8]| Body::Symbol {
        block,
        index,
        k,
        r,
        bytes: bytes.to_vec(),
    };
    let sealed = |seal: Seal, body: Body| Record::Sealed { dt: 1, seal, body };
    let with = |f: fn(&mut Seal)| {
        let mut s = Seal::good(0);
        f(&mut s);
        s
    };
    script(
        "sealed_edge",
        &[
            sealed(
                Seal::good(0),
                symbol(
                    0,
                    0,
                    1,
                    1,
                    b"\x83\x22\x22\x22\x22\0\0\0\0\0\0\0\0\0\0\0\0\0\x02hi",
                ),
            ),
            sealed(Seal::good(0), symbol(1, 0, 0, 1, b"bad k")),
            sealed(Seal::good(0), symbol(1, 0, 129, 1, b"k too big")),
            sealed(Seal::good(0), symbol(1, 3, 1, 1, b"index out of range")),
            sealed(Seal::good(0), symbol(1, 0, 1, 1, b"")),
            sealed(Seal::good(0), symbol(MAX_COUNTER, 0, 1, 1, b"far future")),
            sealed(Seal::good(0), symbol(MAX_COUNTER + 1, 0, 1, 1, b"beyond the cap")),
            sealed(
                Seal::good(0),
                Body::Heartbeat(HeartbeatSpec {
                    wrong_fingerprint: true,
                    next_block: Some(1 << 40),
                    channels: Some(vec![(0, 5), (1, MAX_COUNTER), (2, 1)]),
                    counters: Some([1, 2, 3, 4, 1]),
                }),
            ),
            sealed(Seal::good(0), Body::Garbage(b"not a symbol".to_vec())),
            sealed(Seal::good(0), Body::Empty),
            sealed(with(|s| s.kind = Some(9)), Body::Empty),
            sealed(with(|s| s.version = Some(2)), Body::Empty),
            sealed(with(|s| s.key = KeyChoice::Second), Body::Empty),
            sealed(with(|s| s.key = KeyChoice::WrongSecret), Body::Empty),
            sealed(with(|s| s.key = KeyChoice::UnknownId), Body::Empty),
            sealed(with(|s| s.pn = Pn::Back(3)), Body::Empty),
            sealed(with(|s| s.pn = Pn::Ahead(100)), Body::Empty),
            sealed(with(|s| s.pn = Pn::Explicit(1 << 20)), Body::Empty),
            sealed(with(|s| s.pn = Pn::Explicit(100)), Body::Empty),
        ],
    );
    // Sessions: same second, older, newer; replays; restarts with the persisted floor.
    script(
        "sessions",
        &[
            block(0, 0x00, stream_frames(1, b"session 0")),
            block(1, 0x00, stream_frames(1, b"session 1, same second")),
            block(3, 0x00, stream_frames(1, b"older: stale")),
            Record::Replay { dt: 1, index: 0 },
            block(2, 0x00, stream_frames(1, b"newer")),
            Record::Replay { dt: 1, index: 4 },
            Record::Restart { dt: 50 },
            Record::Replay { dt: 1, index: 8 },
            block(2, 0x00, stream_frames(1, b"below the floor")),
            Record::Restart { dt: 50 },
            Record::Replay { dt: 1, index: 1 },
        ],
    );
    // Arbitrary bytes around the length and header checks.
    let mut header = Vec::new();
    Header {
        version: VERSION,
        kind: Kind::Data,
        key_id: KEY1.0,
        session: SESSIONS[0],
        packet_number: 0,
    }
    .write(&mut header);
    let mut forged = header.clone();
    forged.extend_from_slice(&[0; 16]);
    script(
        "raw_edge",
        &[
            raw(0, b""),
            raw(0, &[1; 35]),
            raw(0, &forged),
            raw(0, &[&header[..], &[0xab; 100]].concat()),
            raw(0, &[2; 36]),
        ],
    );
}

fn fec_seeds() {
    let round_trip = |k: u8, r: u8, size: u16, lost: &[u8]| Op::RoundTrip {
        k,
        r,
        size,
        seed: 0x0123_4567_89ab_cdef,
        lost: lost.to_vec(),
    };
    let seeds: [(&str, Vec<Op>); 5] = [
        (
            "small",
            vec![round_trip(1, 1, 10, &[1]), round_trip(5, 2, 33, &[0b0100_0010])],
        ),
        (
            "large",
            vec![round_trip(64, 7, 1400, &[0xff, 0, 0, 0, 0, 0, 0, 0, 0])],
        ),
        ("max_shape", vec![round_trip(128, 128, 16, &[0xaa; 32])]),
        ("too_few", vec![round_trip(4, 2, 100, &[0b0000_0111])]),
        (
            "raw_calls",
            vec![
                Op::RawCall {
                    k: 0,
                    r: 1,
                    size: 8,
                    reconstruct: false,
                    size_override: None,
                    len_delta: 0,
                    present_delta: 0,
                    present: vec![],
                },
                Op::RawCall {
                    k: 2,
                    r: 1,
                    size: 8,
                    reconstruct: true,
                    size_override: None,
                    len_delta: -1,
                    present_delta: -1,
                    present: vec![0b11],
                },
                Op::RawCall {
                    k: 3,
                    r: 2,
                    size: 8,
                    reconstruct: true,
                    size_override: None,
                    len_delta: 0,
                    present_delta: 0,
                    present: vec![0b1_1001],
                },
                Op::RawCall {
                    k: 2,
                    r: 2,
                    size: 4,
                    reconstruct: false,
                    size_override: Some(1 << 40),
                    len_delta: 0,
                    present_delta: 0,
                    present: vec![],
                },
            ],
        ),
    ];
    for (name, ops) in seeds {
        let mut bytes = Vec::new();
        for op in &ops {
            op.encode(&mut bytes);
        }
        let mut again = Vec::new();
        for op in weir_fuzz::fec::parse_all(&bytes) {
            op.encode(&mut again);
        }
        assert_eq!(again, bytes, "{name}: encoding does not round-trip");
        write("fec_decode", name, &bytes);
    }
}

#[allow(clippy::too_many_arguments)]
fn frame(
    out: &mut Vec<u8>,
    channel: u32,
    stream: u32,
    seq: u64,
    kind: MessageKind,
    offset: u32,
    last: bool,
    bytes: &[u8],
) {
    FrameHeader {
        channel,
        stream,
        seq,
        kind,
        offset,
        last,
    }
    .write(bytes, out);
}

fn frames_seeds() {
    let mut block = Vec::new();
    frame(&mut block, STREAM_CH, 1, 0, MessageKind::Open, 0, true, b"");
    frame(
        &mut block,
        STREAM_CH,
        1,
        1,
        MessageKind::Data,
        0,
        false,
        b"a fragment",
    );
    frame(
        &mut block,
        STREAM_CH,
        1,
        1,
        MessageKind::Data,
        10,
        true,
        b"its end",
    );
    frame(
        &mut block,
        DGRAM_CH,
        0,
        0,
        MessageKind::Data,
        0,
        true,
        b"<13>a datagram",
    );
    frame(&mut block, STREAM_CH, 1, 2, MessageKind::Abort, 0, true, b"");
    let mut padded = block.clone();
    padded.resize(padded.len() + 40, 0);
    write("frames", "padded", &padded);
    write("frames", "truncated", &block[..block.len() - 3]);
    let mut bad = block.clone();
    bad.push(0xf0);
    bad.extend_from_slice(&[1, 2, 3]);
    write("frames", "bad_flags", &bad);
    let mut capped = Vec::new();
    frame(
        &mut capped,
        DGRAM_CH,
        0,
        MAX_COUNTER,
        MessageKind::Data,
        0,
        true,
        b"cap",
    );
    frame(
        &mut capped,
        DGRAM_CH,
        0,
        MAX_COUNTER + 1,
        MessageKind::Data,
        0,
        true,
        b"over",
    );
    write("frames", "seq_cap", &capped);
    // A continuation fragment claiming offset 0, and a first fragment at offset 5.
    let mut offsets = Vec::new();
    frame(
        &mut offsets,
        DGRAM_CH,
        0,
        1,
        MessageKind::Data,
        5,
        true,
        b"first?",
    );
    offsets[0] |= 0x01;
    write("frames", "first_flag_with_offset", &offsets);
}

fn wire_seeds() {
    let traffic = sender_traffic(SESSIONS[0], 300, 100);
    write("wire_header", "heartbeat_datagram", &traffic[0]);
    write("wire_header", "data_datagram", &traffic[1]);
    let mut hb = Vec::new();
    Heartbeat {
        fingerprint: FINGERPRINT,
        next_block: 3,
        datagrams_sent: 10,
        bytes_sent: 4000,
        messages_sent: 6,
        messages_dropped: 1,
        channels: vec![(STREAM_CH, 4), (DGRAM_CH, 2)],
    }
    .write(&mut hb);
    write("wire_header", "heartbeat_body", &hb);
    let mut sh = Vec::new();
    SymbolHeader {
        block: MAX_COUNTER,
        index: 3,
        k: 4,
        r: 2,
    }
    .write(&mut sh);
    sh.extend_from_slice(b"symbol bytes");
    write("wire_header", "symbol_body", &sh);
}

fn policy_seeds() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut policies = 0;
    for entry in fs::read_dir(repo.join("policies")).expect("policies/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_name().expect("name").to_string_lossy().into_owned();
            write("policy", &name, &fs::read(&path).expect("read policy"));
            policies += 1;
        }
    }
    assert!(policies > 0, "no policies/*.toml");
    // The README's example policy (the first ```toml block).
    let readme = fs::read_to_string(repo.join("README.md")).expect("README.md");
    if let Some(start) = readme.find("```toml\n") {
        let body = &readme[start + 8..];
        if let Some(end) = body.find("```") {
            write("policy", "readme.toml", &body.as_bytes()[..end]);
        }
    }
    write(
        "policy",
        "minimal.toml",
        b"[link]\nkey_file = \"k\"\n[send]\nto = \"127.0.0.1:1\"\n[[channel]]\nname = \"a\"\nsource = { udp = \"127.0.0.1:2\" }\n",
    );
    write(
        "policy",
        "errors.toml",
        "[link]\nkey_file = \"k\"\nmtu = 70000\nrepair = \"-5%\"\nbogus = 1\n[[channel]]\nname = \"é\"\nsource = { tcp = \"[::1]:x\" }\n[[channel]]\nname = \"é\"\n"
            .as_bytes(),
    );
}

/// Minimal reproducers of the findings (fuzz/README.md), written to `artifacts-found/`: each
/// crashed its target before the library was fixed, and must pass since (regression inputs).
fn findings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts-found");
    fs::create_dir_all(&dir).expect("create artifacts-found/");
    let one = |session: u8, text: &[u8]| {
        let mut b = block(
            session,
            0x00,
            vec![FrameSpec::whole(DGRAM, FrameKind::Data, 0, text)],
        );
        if let Record::Block { dt, .. } = &mut b {
            *dt = 0;
        }
        b
    };
    let save = |name: &str, bytes: Vec<u8>| {
        fs::write(dir.join(name), &bytes).expect("write reproducer");
        println!("artifacts-found/{name}: {} bytes", bytes.len());
    };
    // 1: sessions 0 and 1 start in the same second; 1 replaces 0; the receiver restarts with
    // the floor of session 1; the first datagram of session 0, replayed, is accepted and its
    // message delivered a second time; then the first datagram of session 1 (below the
    // floor it persisted) is accepted again too, because the floor moved to session 0.
    save(
        "receiver-same-second-replay-after-restart",
        encode_all(&[
            one(0, b"session 0, before the restart"),
            one(1, b"session 1, before the restart"),
            Record::Restart { dt: 0 },
            Record::Replay { dt: 0, index: 0 },
            Record::Replay { dt: 0, index: 2 },
        ]),
    );
    // 2: a datagram with packet number u64::MAX is accepted; the floor saturates at u64::MAX
    // (not above it); after a restart the same datagram is accepted again. (Only a key holder
    // can seal such a packet number: no sender gets there.)
    save(
        "receiver-max-packet-number-replay-after-restart",
        encode_all(&[
            Record::Sealed {
                dt: 0,
                seal: Seal {
                    pn: Pn::Explicit(u64::MAX),
                    ..Seal::good(0)
                },
                body: Body::Heartbeat(HeartbeatSpec::default()),
            },
            Record::Restart { dt: 0 },
            Record::Replay { dt: 0, index: 0 },
        ]),
    );
    // 4: session 0 accepts packet 0 (its floor becomes 0 + 256, the smallest step); the
    // receiver restarts with that floor; packet 300 of session 0 (above the floor) makes it
    // current again with a fresh replay window; packet 0, replayed, is inside that window and
    // accepted a second time.
    save(
        "receiver-floor-session-replay-inside-window",
        encode_all(&[
            Record::Sealed {
                dt: 0,
                seal: Seal::good(0),
                body: Body::Heartbeat(HeartbeatSpec::default()),
            },
            Record::Restart { dt: 0 },
            Record::Sealed {
                dt: 0,
                seal: Seal {
                    pn: Pn::Explicit(300),
                    ..Seal::good(0)
                },
                body: Body::Heartbeat(HeartbeatSpec::default()),
            },
            Record::Replay { dt: 0, index: 0 },
        ]),
    );
    // 3: `Fec::encode(2, 2, buf, 1 << 62)`: `(k + r) × symbol_size` overflows in `check_len`.
    let mut bytes = Vec::new();
    Op::RawCall {
        k: 2,
        r: 2,
        size: 4,
        reconstruct: false,
        size_override: Some(1 << 62),
        len_delta: 0,
        present_delta: 0,
        present: vec![],
    }
    .encode(&mut bytes);
    save("fec_decode-symbol-size-overflow", bytes);
}

fn main() {
    // `gen_corpus --print <target> <file>`: shows how a fuzz input of `target` decodes.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, target, file] = args.as_slice() {
        if flag == "--print" {
            let data = fs::read(file).expect("read input");
            match target.as_str() {
                "receiver" => parse_all(&data).iter().for_each(|r| println!("{r:?}")),
                "fec_decode" => weir_fuzz::fec::parse_all(&data)
                    .iter()
                    .for_each(|op| println!("{op:?}")),
                other => panic!("no structured format for {other}"),
            }
            return;
        }
    }
    receiver_seeds();
    findings();
    fec_seeds();
    frames_seeds();
    wire_seeds();
    policy_seeds();
}
