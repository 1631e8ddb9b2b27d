//! Field values: the full file, defaults, ranges, units, cross-field limits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

#[test]
fn full_file_is_read() {
    let policy = ok(FULL);
    assert_eq!(policy.origin, Path::new(ORIGIN));
    let link = &policy.link;
    assert_eq!(link.key_file, Path::new("policies/keys/link.key"));
    assert_eq!(link.mtu, 9000);
    assert_eq!(link.repair_percent, 20);
    assert_eq!(link.bandwidth_bps, 800_000_000);
    assert_eq!(link.heartbeat, Duration::from_millis(500));
    assert_eq!(link.flush, Duration::from_millis(2));
    assert_eq!(link.block_symbols, 32);
    assert_eq!(link.reorder_window, Duration::from_millis(100));
    let send = policy.require_send().unwrap();
    assert_eq!(send.to, addr("192.0.2.2:5800"));
    assert_eq!(send.bind, Some(addr("192.0.2.1:0")));
    assert_eq!(send.queue, 16 << 20);
    assert_eq!(send.metrics, Some(addr("127.0.0.1:9100")));
    let recv = policy.require_recv().unwrap();
    assert_eq!(recv.listen, addr("192.0.2.2:5800"));
    assert_eq!(recv.socket_buffer, 64 << 20);
    assert_eq!(recv.queue, 2 << 20);
    assert_eq!(recv.spool, Path::new("/var/lib/weir"));
    assert_eq!(recv.metrics, Some(addr("127.0.0.1:9101")));
    assert_eq!(recv.deliver_state, Path::new("/var/lib/weir-deliver/state"));
    assert_eq!(recv.deliver_metrics, Some(addr("127.0.0.1:9102")));
    assert_eq!(recv.sink_after, SinkAfter::Write);
    assert_eq!(policy.channels.len(), 2);
    let historian = &policy.channels[0];
    assert_eq!(historian.name, "historian");
    assert_eq!(historian.id, ChannelId::for_name("historian"));
    assert_eq!(historian.source, Source::Tcp(addr("10.1.0.5:7000")));
    assert_eq!(
        historian.sinks,
        [
            Sink::Tcp(addr("10.20.0.8:7000")),
            Sink::Tcp(addr("10.20.0.9:7000"))
        ]
    );
    assert_eq!(historian.max_message, 64 << 10);
    let syslog = policy.channel_by_name("syslog").unwrap();
    assert_eq!(syslog.source, Source::Udp(addr("10.1.0.5:5514")));
    assert_eq!(syslog.sinks, [Sink::Udp(addr("10.20.0.9:514"))]);
    assert_eq!(syslog.max_message, 8192);
    assert_eq!(policy.channel_by_id(syslog.id), Some(syslog));
}

#[test]
fn channel_id_is_sha256_prefix_of_the_name() {
    // SHA-256("weir-channel:syslog"), first four bytes, big-endian.
    let digest = ring::digest::digest(&ring::digest::SHA256, b"weir-channel:syslog");
    let expected = u32::from_be_bytes(digest.as_ref()[..4].try_into().unwrap());
    assert_eq!(ChannelId::for_name("syslog").0, expected);
    assert_eq!(ChannelId(0xab).to_string(), "000000ab");
}

#[test]
fn defaults() {
    let policy = ok(&with_link(
        "[send]\nto = \"192.0.2.2:5800\"\n[recv]\nlisten = \"0.0.0.0:5800\"\n\
         [[channel]]\nname = \"a\"\nsource = { udp = \"127.0.0.1:9\" }",
    ));
    let link = &policy.link;
    assert_eq!(link.key_file, Path::new("policies/link.key"));
    assert_eq!(link.mtu, 1500);
    assert_eq!(link.repair_percent, 10);
    assert_eq!(link.bandwidth_bps, 1_000_000_000);
    assert_eq!(link.heartbeat, Duration::from_secs(1));
    assert_eq!(link.flush, Duration::from_millis(1));
    assert_eq!(link.block_symbols, 64);
    assert_eq!(link.reorder_window, Duration::from_millis(50));
    let send = policy.send.as_ref().unwrap();
    assert_eq!(send.bind, None);
    assert_eq!(send.queue, 4 << 20);
    assert_eq!(send.metrics, None);
    let recv = policy.recv.as_ref().unwrap();
    assert_eq!(recv.socket_buffer, 32 << 20);
    assert_eq!(recv.queue, 32 << 20);
    assert_eq!(recv.spool, Path::new("/var/lib/weir/spool"));
    assert_eq!(recv.spool, Path::new(limits::DEFAULT_SPOOL));
    assert_eq!(recv.state, Path::new("/var/lib/weir/recv.state"));
    assert_eq!(recv.metrics, None);
    assert_eq!(recv.deliver_state, Path::new("/var/lib/weir-deliver"));
    assert_eq!(recv.deliver_state, Path::new(limits::DEFAULT_DELIVER_STATE));
    assert_eq!(recv.deliver_metrics, None);
    assert_eq!(recv.sink_after, SinkAfter::Fsync);
    assert!(recv.serve.is_none());
    let channel = &policy.channels[0];
    assert_eq!(channel.max_message, 64 << 10);
    assert!(channel.sinks.is_empty());
}

#[test]
fn sections_are_optional_but_daemons_require_theirs() {
    let policy = ok(&with_link(""));
    assert!(policy.send.is_none() && policy.recv.is_none() && policy.channels.is_empty());
    let send = policy.require_send().unwrap_err().to_string();
    assert!(send.starts_with("policies/x.toml: send: "), "{send}");
    assert!(send.contains("[send]") && send.contains("hint:"), "{send}");
    let recv = policy.require_recv().unwrap_err().to_string();
    assert!(recv.starts_with("policies/x.toml: recv: "), "{recv}");
    assert!(recv.contains("listen"), "{recv}");
}

#[test]
fn link_and_key_file_are_required() {
    let missing = error("");
    assert_eq!((missing.line, missing.field.as_str()), (0, "link"));
    let key_file = error("[link]\nmtu = 1500\n");
    assert_eq!(key_file.field, "link.key_file");
    assert_eq!(key_file.line, 1);
    assert!(key_file.hint.unwrap().contains("weir keygen"));
}

#[test]
fn absolute_paths_are_kept() {
    let policy =
        ok("[link]\nkey_file = \"/etc/weir/link.key\"\n[recv]\nlisten = \"0.0.0.0:1\"\nspool = \"spool\"\n");
    assert_eq!(policy.link.key_file, Path::new("/etc/weir/link.key"));
    assert_eq!(policy.recv.unwrap().spool, PathBuf::from("policies/spool"));
}

#[test]
fn relative_recv_paths_resolve_against_the_policy_directory() {
    let text = with_link(
        "[recv]\nlisten = \"0.0.0.0:1\"\nspool = \"spool\"\nstate = \"recv.state\"\n\
         deliver_state = \"deliver\"",
    );
    let recv = parse(&text, Path::new("/etc/weir/conduit.toml"))
        .unwrap()
        .recv
        .unwrap();
    assert_eq!(recv.spool, Path::new("/etc/weir/spool"));
    assert_eq!(recv.state, Path::new("/etc/weir/recv.state"));
    assert_eq!(recv.deliver_state, Path::new("/etc/weir/deliver"));
    let absolute = ok(&with_link(
        "[recv]\nlisten = \"0.0.0.0:1\"\ndeliver_state = \"/srv/weir-deliver\"",
    ));
    assert_eq!(
        absolute.recv.unwrap().deliver_state,
        Path::new("/srv/weir-deliver")
    );
    let empty = error(&with_link("[recv]\nlisten = \"0.0.0.0:1\"\ndeliver_state = \"\""));
    assert_eq!((empty.line, empty.field.as_str()), (5, "recv.deliver_state"));
}

#[test]
fn sink_after_is_fsync_or_write() {
    let recv = |extra: &str| {
        ok(&with_link(&format!("[recv]\nlisten = \"0.0.0.0:1\"\n{extra}")))
            .recv
            .unwrap()
    };
    assert_eq!(recv("").sink_after, SinkAfter::Fsync);
    assert_eq!(recv("sink_after = \"fsync\"").sink_after, SinkAfter::Fsync);
    assert_eq!(recv("sink_after = \"write\"").sink_after, SinkAfter::Write);
    assert_eq!(SinkAfter::Write.to_string(), "write");
    let bad = error(&with_link(
        "[recv]\nlisten = \"0.0.0.0:1\"\nsink_after = \"fsynced\"",
    ));
    assert_eq!((bad.line, bad.column), (5, 14));
    assert_eq!(bad.field, "recv.sink_after");
    assert_eq!(bad.message, "\"fsynced\" is not one of \"fsync\", \"write\"");
    let hint = bad.hint.unwrap();
    assert!(hint.contains("\"fsync\"") && hint.contains("\"write\""), "{hint}");
    let wrong_type = error(&with_link("[recv]\nlisten = \"0.0.0.0:1\"\nsink_after = true"));
    assert_eq!(wrong_type.field, "recv.sink_after");
}

#[test]
fn deliver_metrics_is_checked_and_differs_from_recv_metrics() {
    let recv = |extra: &str| format!("[recv]\nlisten = \"0.0.0.0:5800\"\n{extra}");
    let both = ok(&with_link(&recv(
        "metrics = \"127.0.0.1:9101\"\ndeliver_metrics = \"127.0.0.1:9102\"",
    )));
    assert_eq!(
        both.recv.as_ref().unwrap().deliver_metrics,
        Some(addr("127.0.0.1:9102"))
    );
    let alone = ok(&with_link(&recv("deliver_metrics = \"[::1]:9102\"")));
    assert_eq!(alone.recv.unwrap().deliver_metrics, Some(addr("[::1]:9102")));
    let bad = error(&with_link(&recv("deliver_metrics = \"localhost:9102\"")));
    assert_eq!(bad.field, "recv.deliver_metrics");
    assert!(bad.message.contains("not an IP:PORT"), "{bad}");
    for (metrics, deliver) in [
        ("127.0.0.1:9101", "127.0.0.1:9101"),
        ("0.0.0.0:9101", "127.0.0.1:9101"),
        ("127.0.0.1:9101", "0.0.0.0:9101"),
        ("[::]:9101", "127.0.0.1:9101"),
    ] {
        let same = error(&with_link(&recv(&format!(
            "metrics = \"{metrics}\"\ndeliver_metrics = \"{deliver}\""
        ))));
        assert_eq!(same.field, "recv.deliver_metrics", "{metrics} {deliver}");
        assert_eq!(same.line, 6);
        assert!(same.message.contains("recv.metrics"), "{same}");
        assert!(same.hint.unwrap().contains("port"));
    }
    // Reported together with the other problems of [recv].
    let diagnostics = errors(&with_link(&recv(
        "metrics = \"127.0.0.1:9101\"\ndeliver_metrics = \"127.0.0.1:9101\"\nsink_after = \"now\"",
    )));
    let fields: Vec<&str> = diagnostics.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        ["recv.deliver_metrics", "recv.sink_after"],
        "{diagnostics:#?}"
    );
    // Different ports, different addresses, an IPv4 wildcard and a specific IPv6 address, and
    // two ephemeral ports can all be bound side by side.
    for (metrics, deliver) in [
        ("127.0.0.1:9101", "127.0.0.1:9102"),
        ("127.0.0.1:9101", "127.0.0.2:9101"),
        ("0.0.0.0:9101", "[::1]:9101"),
        ("127.0.0.1:0", "127.0.0.1:0"),
    ] {
        ok(&with_link(&recv(&format!(
            "metrics = \"{metrics}\"\ndeliver_metrics = \"{deliver}\""
        ))));
    }
}

/// (section header, key, lowest valid, highest valid, just below, just above)
const RANGES: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("link", "mtu", "576", "65535", "575", "65536"),
    ("link", "repair", "\"1%\"", "\"200%\"", "\"0%\"", "\"201%\""),
    ("link", "repair", "1", "200", "0", "201"),
    (
        "link",
        "bandwidth",
        "\"1 Kbit/s\"",
        "\"400 Gbit/s\"",
        "\"999 bit/s\"",
        "\"400000000001 bit/s\"",
    ),
    (
        "link",
        "heartbeat",
        "\"10ms\"",
        "\"60s\"",
        "\"9999us\"",
        "\"60001ms\"",
    ),
    (
        "link",
        "flush",
        "\"50us\"",
        "\"100ms\"",
        "\"49us\"",
        "\"100001us\"",
    ),
    ("link", "block_symbols", "1", "128", "0", "129"),
    (
        "link",
        "reorder_window",
        "\"1ms\"",
        "\"10s\"",
        "\"999us\"",
        "\"10001ms\"",
    ),
    ("send", "queue", "\"64 KiB\"", "\"1 GiB\"", "65535", "1073741825"),
    (
        "recv",
        "socket_buffer",
        "\"64 KiB\"",
        "\"1 GiB\"",
        "\"65535 B\"",
        "1073741825",
    ),
    ("recv", "queue", "65536", "\"1 GiB\"", "\"65535\"", "1073741825"),
    ("channel", "max_message", "1", "\"16 MiB\"", "0", "16777217"),
];

fn range_file(section: &str, key: &str, value: &str) -> String {
    // block_symbols 128 with the default 10% repair stays within 256 symbols, and so does
    // repair 200% with block_symbols 64 … but not both at their maximum: keep k small then.
    let link_extra = if key == "repair" {
        "block_symbols = 8\n"
    } else {
        ""
    };
    let body = format!("{key} = {value}\n");
    // A 16 MiB max_message needs queues that can hold it.
    let big_queue = "queue = \"1 GiB\"\n";
    let (link, send, recv, channel) = match section {
        "link" => (body.as_str(), "", "", ""),
        "send" => ("", body.as_str(), "", ""),
        "recv" => ("", "", body.as_str(), ""),
        _ => ("", big_queue, big_queue, body.as_str()),
    };
    format!(
        "[link]\nkey_file = \"k\"\n{link_extra}{link}\n\
         [send]\nto = \"192.0.2.2:1\"\n{send}\n\
         [recv]\nlisten = \"0.0.0.0:1\"\n{recv}\n\
         [[channel]]\nname = \"c\"\nsource = {{ udp = \"127.0.0.1:9\" }}\n{channel}"
    )
}

#[test]
fn every_range_edge() {
    for (section, key, low, high, below, above) in RANGES {
        for good in [low, high] {
            if let Err(error) = parse(&range_file(section, key, good), Path::new(ORIGIN)) {
                panic!("{section}.{key} = {good} should be valid:\n{error}");
            }
        }
        for bad in [below, above] {
            let diagnostic = error(&range_file(section, key, bad));
            let field = if *section == "channel" {
                format!("channel[0].{key}")
            } else {
                format!("{section}.{key}")
            };
            assert_eq!(diagnostic.field, field, "{bad}");
            assert!(
                diagnostic.message.contains("out of range"),
                "{section}.{key} = {bad}: {diagnostic}"
            );
            assert!(diagnostic.hint.is_some());
        }
    }
}

#[test]
fn range_message_matches_the_documented_form() {
    let text = with_link("mtu = 70000");
    let error = parse(&text, Path::new(ORIGIN)).unwrap_err().to_string();
    assert!(
        error.starts_with("policies/x.toml:3:7: link.mtu: 70000 is out of range 576..=65535 (hint: "),
        "{error}"
    );
    let size = error_for_channel("max_message = \"32 MiB\"");
    assert_eq!(size.message, "\"32 MiB\" is out of range 1 B..=16 MiB");
}

#[test]
fn unit_and_type_errors_are_located() {
    let unit = error(&with_link("bandwidth = \"800 Mbps\""));
    assert_eq!((unit.line, unit.column), (3, 13));
    assert!(unit.message.contains("unknown unit `Mbps`"), "{unit}");
    let no_unit = error(&with_link("heartbeat = 5"));
    assert!(no_unit.message.contains("needs a unit"), "{no_unit}");
    let negative = error_for_channel("max_message = -1");
    assert!(negative.message.contains("negative"), "{negative}");
    let wrong_type = error(&with_link("mtu = \"1500\""));
    assert_eq!((wrong_type.line, wrong_type.field.as_str()), (3, "link.mtu"));
    assert!(wrong_type.message.contains("invalid type"), "{wrong_type}");
    let endpoint = error_for_channel("sinks = [\"udp\"]");
    assert_eq!(endpoint.field, "channel[0].sinks[0]");
    assert!(
        endpoint
            .message
            .contains("expected a table such as { udp = \"IP:PORT\" }"),
        "{endpoint}"
    );
    let float = error(&with_link("flush = 1.5"));
    assert!(float.message.contains("a string with a unit"), "{float}");
}

#[test]
fn queues_hold_the_largest_message() {
    let text = with_link(
        "[send]\nto = \"192.0.2.2:1\"\n[recv]\nlisten = \"0.0.0.0:1\"\nqueue = \"8 MiB\"\n\
         [[channel]]\nname = \"big\"\nsource = { tcp = \"127.0.0.1:9\" }\nmax_message = \"16 MiB\"",
    );
    let diagnostics = errors(&text);
    let fields: Vec<&str> = diagnostics.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["send.queue", "recv.queue"], "{diagnostics:#?}");
    assert!(diagnostics[0].message.contains("\"big\""));
}

#[test]
fn fec_block_stays_within_256_symbols() {
    ok(&with_link("block_symbols = 128\nrepair = \"100%\""));
    let diagnostic = error(&with_link("block_symbols = 128\nrepair = \"101%\""));
    assert_eq!(diagnostic.field, "link.block_symbols");
    assert!(diagnostic.message.contains("258 symbols"), "{diagnostic}");
    let link = ok(&with_link("repair = \"10%\"")).link;
    assert_eq!(link.repair_symbols(64), 7);
    assert_eq!(link.repair_symbols(1), 2);
    assert_eq!(link.repair_symbols(0), 0);
}

#[test]
fn metrics_addresses_are_checked_and_fingerprinted() {
    let base = "[send]\nto = \"192.0.2.2:5800\"\n[recv]\nlisten = \"0.0.0.0:5800\"\n";
    let without = ok(&with_link(base));
    let with = ok(&with_link(&base.replace(
        "[recv]\n",
        "metrics = \"127.0.0.1:9100\"\n[recv]\nmetrics = \"127.0.0.1:9101\"\n",
    )));
    assert_eq!(with.send.as_ref().unwrap().metrics, Some(addr("127.0.0.1:9100")));
    assert_eq!(with.recv.as_ref().unwrap().metrics, Some(addr("127.0.0.1:9101")));
    assert_ne!(with.fingerprint, without.fingerprint);
    let json = with.to_json();
    assert_eq!(json["recv"]["metrics"], "127.0.0.1:9101");
    let bad = with_link(&base.replace("[recv]\n", "[recv]\nmetrics = \"nowhere\"\n"));
    assert_eq!(error(&bad).field, "recv.metrics");
}

#[test]
fn reference_policy_documents_the_recv_defaults() {
    let text = include_str!("../../../policies/reference.toml");
    let policy = match parse(text, Path::new("policies/reference.toml")) {
        Ok(policy) => policy,
        Err(error) => panic!("policies/reference.toml is not valid:\n{error}"),
    };
    let recv = policy.recv.unwrap();
    assert_eq!(recv.spool, Path::new(limits::DEFAULT_SPOOL));
    assert_eq!(recv.state, Path::new(limits::DEFAULT_RECV_STATE));
    assert_eq!(recv.deliver_state, Path::new(limits::DEFAULT_DELIVER_STATE));
    assert_eq!(recv.deliver_metrics, None);
    assert_eq!(recv.sink_after, SinkAfter::Fsync);
    // Every commented-out field is valid when uncommented (`# name = value` lines only).
    let uncommented = text
        .replace("# metrics     =", "metrics =")
        .replace("# deliver_metrics =", "deliver_metrics =");
    let recv = parse(&uncommented, Path::new("policies/reference.toml"))
        .unwrap()
        .recv
        .unwrap();
    assert!(recv.metrics.is_some() && recv.deliver_metrics.is_some());
}
