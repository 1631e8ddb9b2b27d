//! Known-answer test vectors: they freeze the link protocol's wire format, version 2
//! (`PROTOCOL.md`, section "Test vectors").
//!
//! Every constant here was produced once by the code and pasted in as a literal; the crypto and
//! channel-id vectors were also computed independently from `PROTOCOL.md` (Python
//! `cryptography` + `hashlib`) and agree, and the version 2 datagrams were opened and their
//! frames reassembled by offset by an independent script (`PROTOCOL.md` §14). A failure means the bytes on the wire changed: a
//! receiver built from the old code can no longer talk to a sender built from the new one.
//!
//! To change the wire format deliberately: bump `wire::VERSION`, update `PROTOCOL.md`, then run
//! `cargo test --lib proto::kat::print_vectors -- --ignored --nocapture`, check the printed
//! values against the new `PROTOCOL.md` (ideally with an independent implementation), and paste
//! them over the constants below. Never regenerate just to make a red test green.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use crate::keys::LinkKey;
use crate::policy::ChannelId;
use crate::proto::frame::{FrameHeader, Frames, MessageKind};
use crate::proto::recv::{ChannelSpec, Event, Receiver, ReceiverConfig};
use crate::proto::seal::SessionKey;
use crate::proto::send::{Sender, SenderConfig};
use crate::proto::wire::{Header, Heartbeat, Kind};

const KAT_KEY_ID: u16 = 7;
const KAT_SESSION: u64 = 0x6553_f100_0000_0001;
const KAT_FINGERPRINT: [u8; 16] = *b"weir kat policy!";
const KAT_FLUSH: Duration = Duration::from_millis(1);
const KAT_HEARTBEAT: Duration = Duration::from_millis(100);

fn kat_key() -> LinkKey {
    let mut secret = [0u8; 32];
    for (i, b) in secret.iter_mut().enumerate() {
        *b = i as u8;
    }
    LinkKey {
        id: KAT_KEY_ID,
        secret,
    }
}

fn kat_channel() -> u32 {
    ChannelId::for_name("telemetry").0
}

/// Message A: 650 bytes, fragmented over blocks 0 and 1.
fn message_a() -> Vec<u8> {
    (0..650u32).map(|i| (i % 251) as u8).collect()
}

/// Message B: 150 bytes, in block 1 after A's last fragment.
fn message_b() -> Vec<u8> {
    b"weir known-answer vector, message B. "
        .iter()
        .copied()
        .cycle()
        .take(150)
        .collect()
}

fn kat_sender() -> Sender {
    Sender::new(SenderConfig {
        key: kat_key(),
        session: KAT_SESSION,
        datagram_budget: 200,
        max_source_symbols: 4,
        repair_percent: 50,
        flush: KAT_FLUSH,
        heartbeat: KAT_HEARTBEAT,
        fingerprint: KAT_FINGERPRINT,
        channels: vec![kat_channel()],
        max_message: 4096,
    })
    .unwrap()
}

fn kat_receiver() -> Receiver {
    Receiver::new(ReceiverConfig {
        keys: vec![kat_key()],
        fingerprint: KAT_FINGERPRINT,
        channels: vec![ChannelSpec {
            id: kat_channel(),
            streams: false,
            max_message: 4096,
        }],
        reorder_window: Duration::from_millis(20),
        max_pending_bytes: 1 << 20,
        replay_floor: None,
    })
}

/// Drives the KAT sender through a fixed script and returns every datagram, in order:
/// heartbeat (first poll) · push A and B · block 0 · flush deadline · block 1 · heartbeat.
fn kat_datagrams() -> Vec<Vec<u8>> {
    let mut tx = kat_sender();
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut drain = |tx: &mut Sender, now: Instant, out: &mut Vec<Vec<u8>>| loop {
        buf.clear();
        if tx.poll_transmit(now, &mut buf).is_none() {
            break;
        }
        out.push(buf.clone());
    };
    drain(&mut tx, t0, &mut out);
    assert_eq!(out.len(), 1, "the first poll emits exactly one heartbeat");
    assert_eq!(
        tx.push(t0, kat_channel(), 0, MessageKind::Data, &message_a()),
        Ok(0)
    );
    assert_eq!(
        tx.push(t0, kat_channel(), 0, MessageKind::Data, &message_b()),
        Ok(1)
    );
    drain(&mut tx, t0, &mut out);
    drain(&mut tx, t0 + KAT_FLUSH, &mut out);
    drain(&mut tx, t0 + KAT_HEARTBEAT, &mut out);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The datagrams of [`kat_datagrams`]: each is the 20-byte clear header, then the sealed body
/// and its 16-byte tag.
///
/// | # | pn | kind      | content                                                          |
/// |---|----|-----------|------------------------------------------------------------------|
/// | 0 | 0  | heartbeat | next_block 0, counters 0, channel (aa0ca79f, next seq 0)          |
/// | 1–4 | 1–4 | data  | block 0, k 4, r 2, source symbols 0..4 of 150 B (A's first 577 B, offset 0) |
/// | 5–6 | 5–6 | data  | block 0, repair symbols 4, 5                                      |
/// | 7–8 | 7–8 | data  | block 1, k 2, r 2, symbols of 135 B (A's last 73 B at offset 577, B, 1 B pad) |
/// | 9–10 | 9–10 | data  | block 1, repair symbols 2, 3 (at least two: `MIN_REPAIR_SYMBOLS`) |
/// | 11 | 11 | heartbeat | next_block 2, 11 datagrams / 2046 B sent, 2 messages, (aa0ca79f, 2) |
#[rustfmt::skip]
const DATAGRAMS: [&str; 12] = [
    concat!(
        "020200076553f100000000010000000000000000",
        "65501563e3d5d0502c29b3e08a49964e6bba198dd9baac0c4eaa26c96be17b51c5d3bc6e380117a13160e0c20ded3dd6",
        "ef0f1bdf9c7444f5efd714299a513155a4fe8c10e1f8e53ed0311dbfdec09ea619aab333c188",
    ),
    concat!(
        "020100076553f100000000010000000000000001",
        "c82fa87344f47ddb812937c5c8ae94b1b8b6b9abcdaa7571f450536f3ed4a3820a9270bcbac34b7e2c08403b05f617e1",
        "bbedfb95c1cb191c3debfa0d4097c309a439619399ff8002f738ff1dd8f78ea73b0ac23ae9b91c38be424730a1bf1cef",
        "a42d76e09ace7487f89ef65972594c82bbb003a1d2bb964f663ec6d731692fe0f80c7b3b614f5fff3b05ae3e52b78b0b",
        "14df3f37a92982cb3ff8b53cb52404d18f087becb347f105b9662ee7a93cb54b0c63410b",
    ),
    concat!(
        "020100076553f100000000010000000000000002",
        "8ec755ee0746706455aacde05f75ce603c3c33cdfc1b84c4d2d6898fde36bbddc8635cfa7e778e8bd89ae1c7914c0e86",
        "ff435b505c7cb81f27589c55ddb20c4214559fa045aed60608583ea258c64d4ddf12c56e1dcd90e792b50d92261f8db3",
        "935a36511ba229953bd254d3e798e4442b8f626b4b8372859d42e33218887d53118e4137fefd92bba9ce483ac3da67c3",
        "0e41a239bbe1a980bb9ed2911c8a58a83332ce62483681819f45332c0527e8d59aaa3d74",
    ),
    concat!(
        "020100076553f100000000010000000000000003",
        "f82f9cffd7861c76830b3bf089acbaa7bbdbe7c90d675e00672e82793a3a0dcbde3ba07d7b954cc576d76381ddd94c51",
        "63a695adf1094f47d19834b0cc972b5d18c2338d42a6d792f56d0904fda02793319934059e82deee104bf0e7ad2d7092",
        "03c47bdb7e39b8f14a4fdcf675c2a558807bb3f983dd6c20f70d2b6f086472fdc75e67070397fc499f77cf9abe89a57b",
        "5768a5622f0407a8870add401d1acf80935b651f31433efb0ff3eb46e73f613472ea92c0",
    ),
    concat!(
        "020100076553f100000000010000000000000004",
        "7ee7328244e36dd4b2ad84bec67c87130ab21a182d71580e5fc4cad46fad7b7020c34cefe9a4d197be4cb4fe91de756e",
        "742fda5b154a27be7a2f15d1a7116e78182f5fd10d1d339375379fc5887f6ad4d06e8e01c2a0eb856ae9d0cd7861ab2f",
        "b602d6a7b3f04eaeac9aab5a3ed41a37bcca62d5c1c634963aded8176f77c804064bba02466db7ab86e0ddfb0ab8a4f5",
        "26c71b7854e07afaaea228f815a5092c6fb7a85a43e8b1cddb16af4da098e756257e815e",
    ),
    concat!(
        "020100076553f100000000010000000000000005",
        "cd4086f8a9fb18cd9d52982c213f4629fc438690b63779432efabdf64203e24f230e44a90f8c9a2a29fe9ed64aa05a65",
        "e00d010727e1ed71ea9d915ea475d14d2d515d1a2fbccdae4dcc63c5e002ce3da22629f61cf5a14bac91e5ae3957b322",
        "2f0b7e67ec7af6ae72bfa262ebaf463dd030469f44ed4086859f347f0977291b1295b89facdd95e87650d172bd1f6903",
        "c3b42cd31c5bff8c9b95fae7238bc14623ddc2e443bed96d3a3c805c4114b091adbc4b53",
    ),
    concat!(
        "020100076553f100000000010000000000000006",
        "412ce649998a434427335fec8b2819cb273d0df685fa7053a8ef8e603e0589ddbec0896de8cd2ff93f92eb8af0eac97f",
        "9bfe0922a6f4e0e1a5fc619c77d4b02fd3dfad66b9b72aaa67f083d53d13fe7a492fc424a4d8d9ca6e61996f268f3d3e",
        "7e850b3c1b3ceb4ab4a093eedc7e55c545946f7e34972c1d96e45fe5c599ef41dcec43be17eba89efd5349d392792d64",
        "e2da35e021fa2339f95c6cfdd83c069f90d81594628b19d4600bc6306c22b6c83a683c08",
    ),
    concat!(
        "020100076553f100000000010000000000000007",
        "fb46f1ea29bb60b2c5dc542a0a4f5f35aec2218b4d3b77cd100051a64b40273b06d4841a4672d9cb4a1975678dc9f620",
        "988e6d747f71dbc2240bd4e8b703774adfb8536f4f4a6fd63a95b4578ce4fd10f3b75e85521d42e97b79c1a0bdc5cb7c",
        "3c1dd413615e2d1a94ba4a8f34700ce1795ae24d5eae37d85f4f852c2a2c8c9e8d2ba8810bb9525ee7ee0a356d9efef4",
        "c51035d48e20ec013771bb01d0cabf80918eaef9ef",
    ),
    concat!(
        "020100076553f100000000010000000000000008",
        "7e48159a2325935692aa558ab734271642c44c29a533d9fa35f92fe5bd73b6706ddc76fb398bc4a5380f501f60ab64f6",
        "716184e0d84e475818472d2099e299168a67a576d95234a7774d35e389c8b856ad986889e81d73b7b8b202ec99aa9acb",
        "559947835139cff48c98d2cdc82936c1a0a917f758de277ff857f10144cad221e15a1119ef6ff05797eba174c16cde52",
        "37b6d783276d5af1f69e93856af1c5f79e52806bdc",
    ),
    concat!(
        "020100076553f100000000010000000000000009",
        "45a8b14437327b31f3712389da59a688015c6015db4a1e82cca3dbddcb630eae1aa2884afcf0b1b1ee0f47012ca6f50f",
        "4af31e94ad0c122a48e89e6fe9f175e05a7d10831c3b13a747b24deeb36f6cf791150b62c79ab686fb2ef4540116444e",
        "d04181b6481ccc210bf4f8f752096cf0c033edab9df6ffa6232c6e8f9d6ac777e831d6c7733d0d6fcc2dd4105a89b3e0",
        "57fdef347b829e02b3577afac1e4bc4cf910d1118f",
    ),
    concat!(
        "020100076553f10000000001000000000000000a",
        "c9db1b6274a20e1ac79bcc1c7114cce268ee4a390543b6a143a3fa26c7a5090b59c31b1451dfe6b86ce8b6aedad92cbc",
        "11b79eb180fb3cfe530ac2b0129cd2663859bc83f984c71d8fce9bfb0722cc8989b0d952fe0c2ec894379d6cf64c19cc",
        "f5c00e01c2d0f364405ecceee4dad221bddcc1f4afa76f6e6ea5d4bb1b473c19bfe2cd022951c0df3ad28f149721ec5a",
        "953f26769d244bf3b4af8e34e4bb882d62da62460d",
    ),
    concat!(
        "020200076553f10000000001000000000000000b",
        "09dda216a932c137f64b0d5ae8b7fb139cbce3ddb823a4cee796dcbfead64942c869c7fda3ca44c066cb2056d350dd80",
        "4a3acd4ed8a8c94a3f48c4e50dae78a5bb7e54ac26477262b487a8d912d34467ae4f9e780231",
    ),
];
/// The channel called "telemetry", and two more names.
const CHANNEL_IDS: [(&str, u32); 3] = [
    ("telemetry", 0xaa0c_a79f),
    ("historian", 0xd643_605f),
    ("syslog", 0xc245_ef84),
];

/// The session key: HKDF-SHA256(salt "weir link v1", ikm 00 01 .. 1f,
/// info "session key" ‖ 6553f10000000001 ‖ 0007), 32 bytes.
const SESSION_KEY: &str = "ffe93e3d6dafe8e18a0792c4bc423c1503cb69fd11cc75eb666431b408f69c07";
/// Header: version 1, kind 1 (data), key id 7, session KAT_SESSION, packet number 0x01020304
/// (sealing does not read the version byte; the vector predates version 2).
const SEAL_HEADER: &str = "010100076553f100000000010000000001020304";
/// Body: "weir seal vector".
const SEAL_BODY: &str = "77656972207365616c20766563746f72";
const SEAL_PN: u64 = 0x0102_0304;
/// header ‖ AES-256-GCM(key, nonce 00000000 ‖ 0000000001020304, aad header, body) ‖ tag.
const SEALED: &str = concat!(
    "010100076553f100000000010000000001020304",
    "74e2ee321653f29f090a238b32cf5cff",
    "4c7538dd37fb6593d94a37d8b9e24b06",
);

/// [`kat_frames`], concatenated.
#[rustfmt::skip]
const FRAMES: &str = concat!(
    "87", "aa0ca79f", "00000003", "0000000000000010", "00000000", "0000", "",
    "81", "aa0ca79f", "00000003", "0000000000000011", "00000000", "0003", "616263",
    "80", "aa0ca79f", "00000003", "0000000000000011", "00000003", "0002", "6465",
    "82", "aa0ca79f", "00000003", "0000000000000011", "00000005", "0001", "66",
    "8b", "aa0ca79f", "00000003", "0000000000000012", "00000000", "0000", "",
    "8f", "aa0ca79f", "00000004", "0000000000000013", "00000000", "0000", "",
);

/// [`kat_heartbeat`].
#[rustfmt::skip]
const HEARTBEAT: &str = concat!(
    "77656972206b617420706f6c69637921", // fingerprint "weir kat policy!"
    "0000000000000102",                 // next block
    "0000000000000304",                 // datagrams sent
    "0000000005060708",                 // bytes sent
    "0000000000000009",                 // messages sent
    "0000000000000001",                 // messages dropped
    "0002",                             // channel entries
    "aa0ca79f", "0000000000000002",
    "d643605f", "0000010000000000",
);

#[test]
#[ignore = "prints the vectors; run only to regenerate them deliberately (see the module doc)"]
fn print_vectors() {
    for (i, d) in kat_datagrams().iter().enumerate() {
        println!("datagram {i}: {}", hex(d));
    }
    for (name, _) in CHANNEL_IDS {
        println!("channel id {name}: {:08x}", ChannelId::for_name(name).0);
    }
    println!("sealed: {}", hex(&seal_vector_output()));
    println!("frames: {}", hex(&frames_vector_output()));
    println!("heartbeat: {}", hex(&heartbeat_vector_output()));
}

fn seal_vector_output() -> Vec<u8> {
    let key = SessionKey::derive(&kat_key(), KAT_SESSION).unwrap();
    let mut buf = unhex(SEAL_HEADER);
    buf.extend_from_slice(&unhex(SEAL_BODY));
    key.seal(SEAL_PN, &mut buf, 0).unwrap();
    buf
}

fn kat_frames() -> Vec<(FrameHeader, Vec<u8>)> {
    let h = |stream, seq, kind, offset, last| FrameHeader {
        channel: 0xaa0c_a79f,
        stream,
        seq,
        kind,
        offset,
        last,
    };
    vec![
        (h(3, 0x10, MessageKind::Open, 0, true), vec![]),
        (h(3, 0x11, MessageKind::Data, 0, false), b"abc".to_vec()),
        (h(3, 0x11, MessageKind::Data, 3, false), b"de".to_vec()),
        (h(3, 0x11, MessageKind::Data, 5, true), b"f".to_vec()),
        (h(3, 0x12, MessageKind::End, 0, true), vec![]),
        (h(4, 0x13, MessageKind::Abort, 0, true), vec![]),
    ]
}

fn frames_vector_output() -> Vec<u8> {
    let mut out = Vec::new();
    for (h, bytes) in kat_frames() {
        h.write(&bytes, &mut out);
    }
    out
}

fn kat_heartbeat() -> Heartbeat {
    Heartbeat {
        fingerprint: KAT_FINGERPRINT,
        next_block: 0x0102,
        datagrams_sent: 0x0304,
        bytes_sent: 0x0506_0708,
        messages_sent: 9,
        messages_dropped: 1,
        channels: vec![(0xaa0c_a79f, 2), (0xd643_605f, 0x0100_0000_0000)],
    }
}

fn heartbeat_vector_output() -> Vec<u8> {
    let mut out = Vec::new();
    kat_heartbeat().write(&mut out);
    out
}

fn expected_datagrams() -> Vec<Vec<u8>> {
    DATAGRAMS.iter().map(|d| unhex(d)).collect()
}

#[test]
fn sender_reproduces_the_datagram_vectors() {
    let got = kat_datagrams();
    let want = expected_datagrams();
    assert_eq!(got.len(), want.len(), "number of datagrams");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            g == w,
            "datagram {i} differs:\n got  {}\n want {}",
            hex(g),
            hex(w)
        );
    }
    // The clear headers, field by field, so a failure above is easy to place.
    for (i, d) in want.iter().enumerate() {
        let h = Header::parse(d).unwrap();
        let kind = if i == 0 || i == want.len() - 1 {
            Kind::Heartbeat
        } else {
            Kind::Data
        };
        assert_eq!(
            h,
            Header {
                version: 2,
                kind,
                key_id: KAT_KEY_ID,
                session: KAT_SESSION,
                packet_number: i as u64,
            },
            "datagram {i}"
        );
    }
    let lens: Vec<usize> = want.iter().map(Vec::len).collect();
    // Heartbeat: 20 + 58 + 12 + 16; block 0: 20 + 14 + 150 + 16; block 1: 20 + 14 + 135 + 16.
    assert_eq!(lens, [106, 200, 200, 200, 200, 200, 200, 185, 185, 185, 185, 106]);
}

struct OkmLen(usize);

impl ring::hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// The documented construction, built from `ring` primitives directly rather than through
/// [`SessionKey`]: HKDF, then AES-256-GCM with the documented nonce and associated data.
fn documented_seal(header: &[u8], body: &[u8], pn: u64) -> (Vec<u8>, Vec<u8>) {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    use ring::hkdf::{Salt, HKDF_SHA256};
    let prk = Salt::new(HKDF_SHA256, b"weir link v1").extract(&kat_key().secret);
    let session = KAT_SESSION.to_be_bytes();
    let key_id = KAT_KEY_ID.to_be_bytes();
    let info: [&[u8]; 3] = [b"session key", &session, &key_id];
    let mut okm = [0u8; 32];
    prk.expand(&info, OkmLen(32)).unwrap().fill(&mut okm).unwrap();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &okm).unwrap());
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&pn.to_be_bytes());
    let mut sealed = body.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(header),
        &mut sealed,
    )
    .unwrap();
    let mut out = header.to_vec();
    out.extend_from_slice(&sealed);
    (okm.to_vec(), out)
}

#[test]
fn session_key_and_seal_vector() {
    let header = unhex(SEAL_HEADER);
    let body = unhex(SEAL_BODY);
    assert_eq!(body, b"weir seal vector");
    assert_eq!(
        Header::parse(&header).unwrap(),
        Header {
            version: 1,
            kind: Kind::Data,
            key_id: KAT_KEY_ID,
            session: KAT_SESSION,
            packet_number: SEAL_PN,
        }
    );
    // The documentation's recipe gives the frozen key and datagram ...
    let (okm, documented) = documented_seal(&header, &body, SEAL_PN);
    assert_eq!(hex(&okm), SESSION_KEY);
    assert_eq!(hex(&documented), SEALED);
    // ... and so does the implementation.
    let sealed = seal_vector_output();
    assert_eq!(hex(&sealed), SEALED);
    let key = SessionKey::derive(&kat_key(), KAT_SESSION).unwrap();
    let mut opened = unhex(SEALED);
    assert_eq!(key.open(SEAL_PN, &mut opened).unwrap(), &body[..]);
    // The key depends on the session and on the key id.
    let other_id = LinkKey {
        id: KAT_KEY_ID + 1,
        ..kat_key()
    };
    for other in [
        SessionKey::derive(&kat_key(), KAT_SESSION + 1).unwrap(),
        SessionKey::derive(&other_id, KAT_SESSION).unwrap(),
    ] {
        let mut d = unhex(SEALED);
        assert!(other.open(SEAL_PN, &mut d).is_err());
    }
}

#[test]
fn channel_id_vectors() {
    for (name, id) in CHANNEL_IDS {
        assert_eq!(ChannelId::for_name(name).0, id, "{name}");
    }
    assert_eq!(kat_channel(), 0xaa0c_a79f);
}

#[test]
fn frame_vector() {
    let encoded = frames_vector_output();
    assert_eq!(hex(&encoded), FRAMES);
    // Decoding, with the block's zero padding after the frames.
    let mut block = unhex(FRAMES);
    block.extend_from_slice(&[0; 7]);
    let parsed: Vec<(FrameHeader, Vec<u8>)> = Frames::new(&block)
        .map(|f| f.map(|(h, b)| (h, b.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(parsed, kat_frames());
}

#[test]
fn heartbeat_vector() {
    assert_eq!(hex(&heartbeat_vector_output()), HEARTBEAT);
    assert_eq!(Heartbeat::parse(&unhex(HEARTBEAT)), Some(kat_heartbeat()));
}

fn messages(events: &[Event]) -> Vec<(u32, u64, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message {
                channel,
                stream: 0,
                kind: MessageKind::Data,
                seq,
                payload,
            } => Some((*channel, *seq, payload.clone())),
            _ => None,
        })
        .collect()
}

fn receive(datagrams: &[Vec<u8>], skip: &[usize]) -> (Vec<Event>, Receiver) {
    let mut rx = kat_receiver();
    let now = Instant::now();
    let mut events = Vec::new();
    for (i, d) in datagrams.iter().enumerate() {
        if skip.contains(&i) {
            continue;
        }
        rx.handle(now, &mut d.clone());
        while let Some(e) = rx.poll_event() {
            events.push(e);
        }
    }
    // Let the reorder window pass so an incomplete block is given up.
    rx.handle_timeout(now + Duration::from_secs(1));
    while let Some(e) = rx.poll_event() {
        events.push(e);
    }
    (events, rx)
}

#[test]
fn receiver_decodes_the_datagram_vectors() {
    let (events, rx) = receive(&expected_datagrams(), &[]);
    let ch = kat_channel();
    assert_eq!(messages(&events), [(ch, 0, message_a()), (ch, 1, message_b())]);
    assert_eq!(
        events.first(),
        Some(&Event::SessionStarted {
            session: KAT_SESSION,
            previous: None,
        })
    );
    let heartbeats: Vec<&Heartbeat> = events
        .iter()
        .filter_map(|e| match e {
            Event::Heartbeat {
                session: KAT_SESSION,
                heartbeat,
                fingerprint_matches: true,
            } => Some(heartbeat),
            _ => None,
        })
        .collect();
    assert_eq!(heartbeats.len(), 2);
    assert_eq!(heartbeats[0].next_block, 0);
    assert_eq!(heartbeats[0].channels, [(ch, 0)]);
    assert_eq!(
        (
            heartbeats[1].next_block,
            heartbeats[1].datagrams_sent,
            heartbeats[1].messages_sent
        ),
        (2, 11, 2)
    );
    assert_eq!(heartbeats[1].channels, [(ch, 2)]);
    let c = rx.counters();
    assert_eq!(c.drops().iter().map(|(_, n)| n).sum::<u64>(), 0, "{c:?}");
    assert_eq!((c.blocks_decoded, c.messages, c.symbols_recovered), (2, 2, 0));
}

#[test]
fn repair_symbols_of_the_vectors_recover_lost_source_symbols() {
    // Lose two of block 0's four source symbols (its whole repair budget) and one of block 1's.
    let (events, rx) = receive(&expected_datagrams(), &[1, 3, 8]);
    let ch = kat_channel();
    assert_eq!(messages(&events), [(ch, 0, message_a()), (ch, 1, message_b())]);
    assert_eq!(rx.counters().symbols_recovered, 3);
    // One more loss in block 0 is beyond repair: A, which starts there, is reported lost;
    // B, wholly in block 1, still arrives.
    let (events, rx) = receive(&expected_datagrams(), &[1, 3, 5]);
    assert_eq!(messages(&events), [(ch, 1, message_b())]);
    assert!(events.contains(&Event::Lost {
        channel: ch,
        first_seq: 0,
        count: 1,
    }));
    assert_eq!(rx.counters().blocks_lost, 1);
}
