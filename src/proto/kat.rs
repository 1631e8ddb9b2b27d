//! Known-answer test vectors: they freeze the link protocol's wire format, version 1
//! (`PROTOCOL.md`, section "Test vectors").
//!
//! Every constant here was produced once by the code and pasted in as a literal; the crypto and
//! channel-id vectors were also computed independently from `PROTOCOL.md` (Python
//! `cryptography` + `hashlib`) and agree. A failure means the bytes on the wire changed: a
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

use super::frame::{FrameHeader, Frames, MessageKind};
use super::recv::{ChannelSpec, Event, Receiver, ReceiverConfig};
use super::seal::SessionKey;
use super::send::{Sender, SenderConfig};
use super::wire::{Header, Heartbeat, Kind};
use crate::keys::LinkKey;
use crate::policy::ChannelId;

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
/// | 1–4 | 1–4 | data  | block 0, k 4, r 2, source symbols 0..4 of 150 B (A's 1st fragment) |
/// | 5–6 | 5–6 | data  | block 0, repair symbols 4, 5                                      |
/// | 7–8 | 7–8 | data  | block 1, k 2, r 2, symbols of 129 B (A's last fragment, B, 1 B pad) |
/// | 9–10 | 9–10 | data  | block 1, repair symbols 2, 3 (at least two: `MIN_REPAIR_SYMBOLS`) |
/// | 11 | 11 | heartbeat | next_block 2, 11 datagrams / 2022 B sent, 2 messages, (aa0ca79f, 2) |
#[rustfmt::skip]
const DATAGRAMS: [&str; 12] = [
    concat!(
        "010200076553f100000000010000000000000000",
        "65501563e3d5d0502c29b3e08a49964e6bba198dd9baac0c4eaa26c96be17b51c5d3bc6e380117a13160e0c20ded3dd6",
        "ef0f1bdf9c7444f5efd714299a513155a4fe8c10e1f8fe5e31430e47f130b3945146dbad4bdf",
    ),
    concat!(
        "010100076553f100000000010000000000000001",
        "c82fa87344f47ddb812937c5c8ae94b1b8b6b9abcdaa7571f450536f3ed4a3804f9271bcf8c74f7a28044c3709f213e5",
        "bff1e789ddcf1d1839e7f6014c93c70da0055dafa5fb8406f334f311d4f38aa33f16de26f5bd183cba4e4b3cadbb18eb",
        "a0510a9ce6ca7083fc92fa557e5d4886bfac1fbdcebf924b6232cadb3d6d2be4fc3047075d4b5bfb3f09a2325eb38f0f",
        "10c3232bb52d86cf3bf4b930b92000d58bf4871075f2eaca76237ba54973e289e9901df9",
    ),
    concat!(
        "010100076553f100000000010000000000000002",
        "8ec755ee0746706455aacde05f753264383837c1f01788c0d6d28d93c22aa7d9cc6758f6727b828fdc9ee5fbad703282",
        "fb475f5c5070b41b235c9849c1ae104610519bac49a2da020c5c3ade24ba3149db16c16211c19ce396b1098e3a0391b7",
        "975e325d17ae25913fd650efdba4d8402f8b6667478f7e819946e72e04946157158a453bf2f1654252374c3ec7de6bcf",
        "024da63dbfe5b59ca782d695188e54a43f3eca66565c5f0bacf26a902c5654db9456399a",
    ),
    concat!(
        "010100076553f100000000010000000000000003",
        "f82f9cffd7861c76830b3bf089acbea387e7dbf509635a046b228e753e3e09cfc227bc617f9148c17adb6f8dd9dd4855",
        "1fdae9d1f50d4b43dd9438bcc8932f5904de2f9146a2d396f9610508f9a423970da508399a86daea1c47fceba9297496",
        "1fd867c77a3dbcf54643d0fa71c6a15c7c874f0587d96824fb0127630c6076f9db427b1b0793f84d937bc396ba8da17f",
        "6b54995e2b0003ac8b06d14c191ecb848f477903f2f4c322e9551ddc76433204f6d81a4c",
    ),
    concat!(
        "010100076553f100000000010000000000000004",
        "7ee7328244e36dd4b2ad84bec67c83170eb61614217d5c0a5bc0b6a813d17f7424c740e3e5a8d593ba48a8e28dc2716a",
        "702bd657194623ba7e2b29ed9b2d6a7c1c2b53dd01113797713383d994636ed0d46a820dce57127e93edd4c97c6da723",
        "ba06d2a3b7ec52b2b09eaf5e3ad8163bb0ce66d1c5fa08aa06dadc136b7bc4080a4fbe064271abb79ae4d9ff0eb4a8f9",
        "2ac31f7c509c0686d2a62cfc11a9052063b3ac5e28fde257e53ec69088102b01a732eb3f",
    ),
    concat!(
        "010100076553f100000000010000000000000005",
        "cd4086f8a9fb18cd9d52982c213f414143fc996f9e1ff12bd6026b1d3978b7111fcb3a2c9fc87e2ebdb22ffdf1c3c461",
        "c75ff31516a509757ed19a68020be84984ca66c159f829aad980d2bd0832033971802f102d71fddf80dda9dfd8ce2a86",
        "261e6b92b463ef571bf3eeb4ad917899a297e1d8d54ee3c556d3780ee8eeb0bf1b0e23e47ac4c712241f9d3e61bb2d47",
        "50f28a756d71e89b1ce4b6abff2f8502ca29d6f0f9dcc26181eca735ddbb328fd33dce4b",
    ),
    concat!(
        "010100076553f100000000010000000000000006",
        "412ce649998a434427335fec8b28d0bf140eae8db9c6dc277c3b79e21c27889108498cacbf81f3fd9bd602518b71ff7b",
        "b1e98e7dd7b83ce501b8f27a3172c12b2abc5e4d6ffbf6aec3b46a80c806467e0a512a12d57489664625dd5eb76edcaa",
        "17b53bd40e4d9ae3bde4d7980ad8f3512d51aa63d59c27cee5a01bd454780ed5b58f2005519a49fd08dd0d9776ed6128",
        "e97c4b9e18dd716b0b6d28b93ca84ad32196830286832e0e863e9d5e50577e628229ec62",
    ),
    concat!(
        "010100076553f100000000010000000000000007",
        "fb46f1ea29bb60b2c5dc542a0a4f5f35aec2218b4d3b77cd100051a64b40273b4399954b5d6ac1d352017d6f85c1fe28",
        "9086554c4749e3fa1c33dce0bf0b7f42d7b04b77575277ce228dbc5f84ecf518fbbfa67daae5ba118381c9a8b5cdc374",
        "3415cc0b7946223d1692451ea6e38f4b75fd7d4d5eae36d8c938e045580ce6f0e25cc6acfca04440f0bc412d678ae4f5",
        "3d7dbb612e7d138f95bd6a3604e819",
    ),
    concat!(
        "010100076553f100000000010000000000000008",
        "7e48159a2325935692aa558ab7343a4418814238b93294bd3dbc1eb8fc63b6395dd23de23395d8a8320f4c1f6bf425ee",
        "677595fd8a140256095b2c6ddeeadc27d726b57690623aec6e472bff84c2b84aad9337c8f00b67a6a5e058a997bb86ca",
        "18de4fc660648ee48cd1e2c383303cdfbca41df744de2c20b94fe71555d7807ba4540005ee22b75fd2dafc35d16cfe67",
        "c6138a62933ef0fe34e2ca85da93de",
    ),
    concat!(
        "010100076553f100000000010000000000000009",
        "45a8b14437327b31f3712389da599c2cb5d67c37e348840cdc29b96749430e3cb5692d8bc5e4a183d227671922006f27",
        "7ec374e641f0d07e229884ed7ff9e79af8e718aba67327195d8e69ceb16374d7891ba0f5e2a38bb1d49f58c6052c6454",
        "52d7b914028e5f68901e89456f93e02fecdd45aba5f6ea180685ed1c2930dd71d3b44688758cb95d7fb9b3ba64b5dd6f",
        "5969767be5f4b6c39ee33c4720ef50",
    ),
    concat!(
        "010100076553f10000000001000000000000000a",
        "c9db1b6274a20e1ac79bcc1c7114eb148621580a214061685b6ca9c1049509d0834be49d79cdf29f42d882bed728ff84",
        "3b9bdde60665839c105ed177cb940d25cf8abcb312e4e5f094e0a9cf002cdcbd99bdd57c3bdbff165e2c63b3f46f2ddf",
        "321926fea1072e1a59d582c300cad74a8198fcf48ba7708f9c632455cc201e2bae1e227cd9b425fbdb25fee7b309b8ff",
        "616e3adf3fc4a22a151a46c2e0baec",
    ),
    concat!(
        "010200076553f10000000001000000000000000b",
        "09dda216a932c137f64b0d5ae8b7fb139cbce3ddb823a4cee796dcbfead64942c869c7fda3ca44d866cb2056d350dd80",
        "4a3acd4ed8a8c94a3f48c4e50dae78a5bb7e54ac264747030af980bbb83d43bde91dc0f2c05d",
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
/// Header: version 1, kind 1 (data), key id 7, session KAT_SESSION, packet number 0x01020304.
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
    "87", "aa0ca79f", "00000003", "0000000000000010", "0000", "",
    "81", "aa0ca79f", "00000003", "0000000000000011", "0003", "616263",
    "80", "aa0ca79f", "00000003", "0000000000000011", "0002", "6465",
    "82", "aa0ca79f", "00000003", "0000000000000011", "0001", "66",
    "8b", "aa0ca79f", "00000003", "0000000000000012", "0000", "",
    "8f", "aa0ca79f", "00000004", "0000000000000013", "0000", "",
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
    let h = |stream, seq, kind, first, last| FrameHeader {
        channel: 0xaa0c_a79f,
        stream,
        seq,
        kind,
        first,
        last,
    };
    vec![
        (h(3, 0x10, MessageKind::Open, true, true), vec![]),
        (h(3, 0x11, MessageKind::Data, true, false), b"abc".to_vec()),
        (h(3, 0x11, MessageKind::Data, false, false), b"de".to_vec()),
        (h(3, 0x11, MessageKind::Data, false, true), b"f".to_vec()),
        (h(3, 0x12, MessageKind::End, true, true), vec![]),
        (h(4, 0x13, MessageKind::Abort, true, true), vec![]),
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
                version: 1,
                kind,
                key_id: KAT_KEY_ID,
                session: KAT_SESSION,
                packet_number: i as u64,
            },
            "datagram {i}"
        );
    }
    let lens: Vec<usize> = want.iter().map(Vec::len).collect();
    // Heartbeat: 20 + 58 + 12 + 16; block 0: 20 + 14 + 150 + 16; block 1: 20 + 14 + 129 + 16.
    assert_eq!(lens, [106, 200, 200, 200, 200, 200, 200, 179, 179, 179, 179, 106]);
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
