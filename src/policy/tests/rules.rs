//! Access and traffic rules of a channel: `allow_from`, `on_violation`, `rate`, `priority`, and
//! `Channel::allows`.

use std::net::IpAddr;

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn single_error(transport: &str, extra: &str) -> Diagnostic {
    error(&one_channel(transport, extra))
}

#[test]
fn rules_default_to_open_and_unlimited() {
    for transport in ["tcp", "udp"] {
        let channel = channel_ok(transport, "");
        assert_eq!(channel.allow_from, None);
        assert!(channel.allows(ip("203.0.113.9")) && channel.allows(ip("2001:db8::1")));
        assert_eq!(channel.filter, Filter::default());
        assert!(channel.filter.is_empty());
        assert_eq!(channel.on_violation, OnViolation::Drop);
        assert_eq!(channel.rate, None);
        assert_eq!(channel.priority, Priority::NORMAL);
        assert_eq!(channel.priority.get(), 2);
    }
}

#[test]
fn allow_from_takes_addresses_and_networks() {
    let channel = channel_ok(
        "udp",
        "allow_from = [\"10.1.0.0/24\", \"192.0.2.7\", \"2001:db8::/32\", \" 2001:db8:1::5 \"]",
    );
    let networks: Vec<String> = channel
        .allow_from
        .as_ref()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        networks,
        [
            "10.1.0.0/24",
            "192.0.2.7/32",
            "2001:db8::/32",
            "2001:db8:1::5/128"
        ]
    );
    assert!(channel.allows(ip("10.1.0.0")));
    assert!(channel.allows(ip("10.1.0.255")));
    assert!(!channel.allows(ip("10.1.1.0")));
    assert!(channel.allows(ip("192.0.2.7")));
    assert!(!channel.allows(ip("192.0.2.8")));
    assert!(channel.allows(ip("2001:db8:ffff::1")));
    assert!(!channel.allows(ip("2001:db9::1")));
    // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6 addresses.
    assert!(channel.allows(ip("::ffff:10.1.0.9")));
    assert!(channel.allows(ip("::ffff:192.0.2.7")));
    assert!(!channel.allows(ip("::ffff:192.0.2.8")));
    // An IPv4 network never matches a plain IPv6 address with the same low bits.
    assert!(!channel.allows(ip("::10.1.0.9")));
    let open = channel_ok("udp", "allow_from = [\"0.0.0.0/0\"]");
    assert!(open.allows(ip("198.51.100.1")) && open.allows(ip("::ffff:198.51.100.1")));
    assert!(!open.allows(ip("2001:db8::1")));
    // A network written in IPv4-mapped form matches the IPv4 peer too.
    let mapped = channel_ok("tcp", "allow_from = [\"::ffff:10.1.0.0/120\"]");
    assert!(mapped.allows(ip("10.1.0.7")) && mapped.allows(ip("::ffff:10.1.0.7")));
    assert!(!mapped.allows(ip("10.1.1.7")));
}

#[test]
fn allow_from_errors() {
    let empty = single_error("udp", "allow_from = []");
    assert_eq!((empty.line, empty.column), (6, 14));
    assert_eq!(empty.field, "channel[0].allow_from");
    assert!(empty.message.contains("is empty"), "{empty}");
    assert!(empty.hint.unwrap().contains("remove the field to allow any peer"));

    let bad = single_error("udp", "allow_from = [\"10.1.0.0/24\", \"10.1.0.0/33\"]");
    assert_eq!((bad.line, bad.column), (6, 30));
    assert_eq!(bad.field, "channel[0].allow_from[1]");
    assert!(bad.message.contains("not a CIDR network"), "{bad}");
    for text in ["plc.example", "10.1.0", "10.1.0.0/", "/24", "fe80::1%eth0", ""] {
        let diagnostic = single_error("tcp", &format!("allow_from = [{text:?}]"));
        assert_eq!(diagnostic.field, "channel[0].allow_from[0]", "{text}");
    }

    let host_bits = single_error("udp", "allow_from = [\"10.1.0.5/24\"]");
    assert!(host_bits.message.contains("host bits"), "{host_bits}");
    let hint = host_bits.hint.unwrap();
    assert!(
        hint.contains("\"10.1.0.0/24\"") && hint.contains("\"10.1.0.5\""),
        "{hint}"
    );

    let twice = single_error("udp", "allow_from = [\"192.0.2.7\", \"192.0.2.7/32\"]");
    assert_eq!(twice.field, "channel[0].allow_from[1]");
    assert!(twice.message.contains("listed twice"), "{twice}");

    let wrong_type = single_error("udp", "allow_from = \"10.1.0.0/24\"");
    assert_eq!(wrong_type.field, "channel[0].allow_from");
    assert!(wrong_type.message.contains("invalid type"), "{wrong_type}");
}

#[test]
fn allow_from_length_is_bounded() {
    let list = |count: usize| -> String {
        let entries: Vec<String> = (0..count)
            .map(|i| format!("\"10.{}.{}.0/24\"", i / 256, i % 256))
            .collect();
        format!("allow_from = [{}]", entries.join(", "))
    };
    let channel = channel_ok("udp", &list(limits::MAX_ALLOW_FROM));
    assert_eq!(channel.allow_from.unwrap().len(), limits::MAX_ALLOW_FROM);
    let too_many = single_error("udp", &list(limits::MAX_ALLOW_FROM + 1));
    assert!(too_many.message.contains("more than 256"), "{too_many}");
}

#[test]
fn on_violation_values_and_transports() {
    let close = channel_ok("tcp", "filter = { utf8 = true }\non_violation = \"close\"");
    assert_eq!(close.on_violation, OnViolation::Close);
    let drop = channel_ok("tcp", "filter = { utf8 = true }\non_violation = \"drop\"");
    assert_eq!(drop.on_violation, OnViolation::Drop);
    assert_eq!(
        channel_ok("udp", "on_violation = \"drop\"").on_violation,
        OnViolation::Drop
    );

    let on_udp = single_error("udp", "filter = { utf8 = true }\non_violation = \"close\"");
    assert_eq!(
        (on_udp.line, on_udp.field.as_str()),
        (7, "channel[0].on_violation")
    );
    assert!(on_udp.message.contains("only valid on tcp"), "{on_udp}");

    let no_filter = single_error("tcp", "on_violation = \"close\"");
    assert!(no_filter.message.contains("no effect"), "{no_filter}");

    let unknown = single_error("tcp", "on_violation = \"reset\"");
    assert!(unknown.message.contains("\"reset\" is not one of"), "{unknown}");
}

#[test]
fn rate_fields_and_defaults() {
    let bytes = channel_ok("tcp", "rate = { bytes = \"200 Mbit/s\" }")
        .rate
        .unwrap();
    assert_eq!(bytes.bytes_per_sec, Some(25_000_000));
    assert_eq!(bytes.burst_bytes, 2_500_000); // 1/10 s
    assert_eq!((bytes.messages_per_sec, bytes.burst_messages), (None, 0));
    assert_eq!(bytes.summary(), "200 Mbit/s");

    // A slow rate's default burst is still one max_message.
    let slow = channel_ok("udp", "max_message = \"8 KiB\"\nrate = { bytes = \"64 Kbit/s\" }");
    assert_eq!(slow.rate.unwrap().burst_bytes, 8192);

    let messages = channel_ok("udp", "rate = { messages = 1000 }").rate.unwrap();
    assert_eq!(
        (messages.messages_per_sec, messages.burst_messages),
        (Some(1000), 100)
    );
    assert_eq!((messages.bytes_per_sec, messages.burst_bytes), (None, 0));
    assert_eq!(messages.summary(), "1000 msg/s");
    let few = channel_ok("udp", "rate = { messages = 5 }").rate.unwrap();
    assert_eq!(few.burst_messages, 1);

    let all = channel_ok(
        "udp",
        "rate = { bytes = \"100 MB/s\", messages = 1000, burst = \"1 MiB\", burst_messages = 7 }",
    )
    .rate
    .unwrap();
    assert_eq!(
        all,
        RateLimit {
            bytes_per_sec: Some(100_000_000),
            burst_bytes: 1 << 20,
            messages_per_sec: Some(1000),
            burst_messages: 7,
        }
    );
    assert_eq!(all.summary(), "800 Mbit/s, 1000 msg/s");
    // Bits that do not make a whole byte are rounded down.
    let odd = channel_ok("udp", "rate = { bytes = \"1001 bit/s\" }")
        .rate
        .unwrap();
    assert_eq!(odd.bytes_per_sec, Some(125));
}

#[test]
fn rate_errors() {
    let empty = single_error("udp", "rate = {}");
    assert_eq!((empty.line, empty.field.as_str()), (6, "channel[0].rate"));
    assert!(empty.message.contains("needs `bytes` or `messages`"), "{empty}");

    let no_unit = single_error("udp", "rate = { bytes = 1000 }");
    assert_eq!(no_unit.field, "channel[0].rate.bytes");
    assert!(no_unit.message.contains("needs a unit"), "{no_unit}");

    let zero = single_error("udp", "rate = { messages = 0 }");
    assert_eq!(zero.field, "channel[0].rate.messages");
    assert!(zero.message.contains("out of range"), "{zero}");

    let burst_alone = single_error("udp", "rate = { messages = 10, burst = \"1 MiB\" }");
    assert_eq!(burst_alone.field, "channel[0].rate.burst");
    assert!(burst_alone.message.contains("without `bytes`"), "{burst_alone}");
    let burst_messages_alone = single_error("udp", "rate = { bytes = \"1 Mbit/s\", burst_messages = 10 }");
    assert_eq!(burst_messages_alone.field, "channel[0].rate.burst_messages");

    let string = single_error("udp", "rate = \"200 Mbit/s\"");
    assert!(string.message.contains("bytes = \"200 Mbit/s\""), "{string}");
    let unknown = single_error("udp", "rate = { bits = \"1 Mbit/s\" }");
    assert_eq!(unknown.field, "channel[0].rate.bits");
}

#[test]
fn burst_holds_the_largest_message() {
    let rate =
        |burst: &str| format!("max_message = \"8 KiB\"\nrate = {{ bytes = \"1 Mbit/s\", burst = {burst} }}");
    let exact = channel_ok("udp", &rate("\"8 KiB\"")).rate.unwrap();
    assert_eq!(exact.burst_bytes, 8192);
    let short = single_error("udp", &rate("8191"));
    assert_eq!((short.line, short.field.as_str()), (7, "channel[0].rate.burst"));
    assert!(
        short
            .message
            .contains("smaller than the channel's max_message (8 KiB)"),
        "{short}"
    );
    assert!(short.message.contains("could never pass"), "{short}");
    // Together with a bad max_message only that one is reported.
    let diagnostics = errors(&one_channel(
        "udp",
        "max_message = 0\nrate = { bytes = \"1 Mbit/s\", burst = 1 }",
    ));
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    assert_eq!(diagnostics[0].field, "channel[0].max_message");
}

#[test]
fn channel_rate_stays_within_the_link_bandwidth() {
    let file = |rate: &str| {
        format!(
            "[link]\nkey_file = \"k\"\nbandwidth = \"100 Mbit/s\"\n\
             [[channel]]\nname = \"ok\"\nsource = {{ udp = \"127.0.0.1:8\" }}\n\
             [[channel]]\nname = \"c\"\nsource = {{ udp = \"127.0.0.1:9\" }}\n\
             rate = {{ messages = 10, bytes = {rate} }}\n"
        )
    };
    let exact = ok(&file("\"100 Mbit/s\""));
    assert_eq!(exact.channels[1].rate.unwrap().bytes_per_sec, Some(12_500_000));
    let over = error(&file("\"100000008 bit/s\""));
    assert_eq!((over.line, over.column), (10, 33));
    assert_eq!(over.field, "channel[1].rate.bytes");
    assert!(
        over.message.contains("more than link.bandwidth (100 Mbit/s)"),
        "{over}"
    );
    assert!(over.hint.unwrap().contains("raise link.bandwidth"));
    // The default bandwidth, 1 Gbit/s, applies when the link does not say.
    ok(&one_channel("udp", "rate = { bytes = \"1 Gbit/s\" }"));
    let over_default = single_error("udp", "rate = { bytes = \"1001 Mbit/s\" }");
    assert!(over_default.message.contains("(1 Gbit/s)"), "{over_default}");
}

#[test]
fn priority_levels() {
    assert_eq!(PRIORITY_LEVELS, 3);
    for (written, priority) in [(1, Priority::HIGH), (2, Priority::NORMAL), (3, Priority::BULK)] {
        let channel = channel_ok("udp", &format!("priority = {written}"));
        assert_eq!(channel.priority, priority);
        assert_eq!(usize::from(channel.priority.get()), channel.priority.index() + 1);
    }
    assert!(Priority::HIGH < Priority::BULK);
    assert_eq!(Priority::ALL.map(|p| p.index()), [0, 1, 2]);
    assert_eq!(Priority::new(0), None);
    assert_eq!(Priority::new(4), None);
    assert_eq!(Priority::default(), Priority::NORMAL);
    for bad in ["0", "4", "-1"] {
        let diagnostic = single_error("udp", &format!("priority = {bad}"));
        assert_eq!(diagnostic.field, "channel[0].priority");
        assert!(diagnostic.message.contains("out of range 1..=3"), "{diagnostic}");
        assert!(diagnostic.hint.unwrap().contains("served first"));
    }
    let text = single_error("udp", "priority = \"high\"");
    assert!(text.message.contains("invalid type"), "{text}");
}

#[test]
fn rate_range_edges() {
    let rate = |body: &str| format!("max_message = 1\nrate = {{ {body} }}");
    for good in [
        "messages = 1",
        "messages = 100000000",
        "bytes = \"8 bit/s\"",
        "bytes = \"1 Gbit/s\"",
        "messages = 1, burst_messages = 1",
        "messages = 1, burst_messages = 100000000",
        "bytes = \"8 bit/s\", burst = 1",
        "bytes = \"8 bit/s\", burst = \"64 GiB\"",
    ] {
        channel_ok("udp", &rate(good));
    }
    for (bad, field) in [
        ("messages = 0", "messages"),
        ("messages = 100000001", "messages"),
        ("bytes = \"7 bit/s\"", "bytes"),
        ("messages = 1, burst_messages = 0", "burst_messages"),
        ("messages = 1, burst_messages = 100000001", "burst_messages"),
        ("bytes = \"8 bit/s\", burst = 0", "burst"),
        ("bytes = \"8 bit/s\", burst = \"65 GiB\"", "burst"),
    ] {
        let diagnostic = single_error("udp", &rate(bad));
        assert_eq!(diagnostic.field, format!("channel[0].rate.{field}"), "{bad}");
        assert!(diagnostic.message.contains("out of range"), "{bad}: {diagnostic}");
    }
    // The smallest rate is one byte per second.
    let slow = channel_ok("udp", &rate("bytes = \"8 bit/s\"")).rate.unwrap();
    assert_eq!((slow.bytes_per_sec, slow.burst_bytes), (Some(1), 1));
}
