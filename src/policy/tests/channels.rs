//! Channel rules: names, ids, sources, sinks, count.

use super::*;

#[test]
fn channel_names_are_checked_and_unique() {
    for bad in ["", "Syslog", "-a", ".a", "a b", "a/b", "ü", &"a".repeat(64)] {
        let diagnostic = error(&with_link(&format!(
            "[[channel]]\nname = {bad:?}\nsource = {{ udp = \"127.0.0.1:9\" }}"
        )));
        assert_eq!(diagnostic.field, "channel[0].name", "{bad}");
    }
    for good in ["a", "0", "a.b_c-d", &"a".repeat(63)] {
        ok(&with_link(&format!(
            "[[channel]]\nname = {good:?}\nsource = {{ udp = \"127.0.0.1:9\" }}"
        )));
    }
    let duplicate = error(&with_link(
        "[[channel]]\nname = \"a\"\nsource = { udp = \"127.0.0.1:9\" }\n\
         [[channel]]\nname = \"a\"\nsource = { udp = \"127.0.0.1:10\" }",
    ));
    assert_eq!((duplicate.line, duplicate.field.as_str()), (7, "channel[1].name"));
    assert!(
        duplicate.message.contains("already used by channel[0] on line 4"),
        "{duplicate}"
    );
}

#[test]
fn colliding_channel_ids_are_rejected() {
    // Found by search: distinct names whose ids collide.
    assert_eq!(ChannelId::for_name("c34757"), ChannelId::for_name("c146481"));
    let diagnostic = error(&with_link(
        "[[channel]]\nname = \"c34757\"\nsource = { udp = \"127.0.0.1:9\" }\n\
         [[channel]]\nname = \"c146481\"\nsource = { udp = \"127.0.0.1:10\" }",
    ));
    assert_eq!(diagnostic.field, "channel[1].name");
    assert!(diagnostic.message.contains("collides"), "{diagnostic}");
}

#[test]
fn sinks_match_the_source_transport() {
    let udp_on_tcp = error(&with_link(
        "[[channel]]\nname = \"s\"\nsource = { tcp = \"127.0.0.1:9\" }\nsinks = [{ udp = \"127.0.0.1:10\" }]",
    ));
    assert_eq!(udp_on_tcp.field, "channel[0].sinks[0]");
    assert!(
        udp_on_tcp
            .message
            .contains("udp sink cannot re-emit a tcp source"),
        "{udp_on_tcp}"
    );
    let tcp_on_udp = error(&with_link(
        "[[channel]]\nname = \"s\"\nsource = { udp = \"127.0.0.1:9\" }\nsinks = [{ tcp = \"127.0.0.1:10\" }]",
    ));
    assert!(
        tcp_on_udp
            .message
            .contains("tcp sink cannot re-emit a udp source"),
        "{tcp_on_udp}"
    );
    let twice = error(&with_link(
        "[[channel]]\nname = \"s\"\nsource = { udp = \"127.0.0.1:9\" }\n\
         sinks = [{ udp = \"127.0.0.1:10\" }, { udp = \"127.0.0.1:10\" }]",
    ));
    assert_eq!(twice.field, "channel[0].sinks[1]");
}

#[test]
fn endpoints_name_exactly_one_transport_and_a_literal_address() {
    let both = error_for_source("{ tcp = \"127.0.0.1:9\", udp = \"127.0.0.1:9\" }");
    assert!(both.message.contains("both"), "{both}");
    let neither = error_for_source("{}");
    assert!(neither.message.contains("exactly one"), "{neither}");
    let host = error_for_source("{ udp = \"plc.example:502\" }");
    assert!(host.message.contains("not an IP:PORT"), "{host}");
    let sink_port_zero = error_for_channel("sinks = [{ udp = \"10.0.0.1:0\" }]");
    assert!(
        sink_port_zero.message.contains("not a destination"),
        "{sink_port_zero}"
    );
    let to_unspecified = error(&with_link("[send]\nto = \"0.0.0.0:5800\""));
    assert_eq!(to_unspecified.field, "send.to");
    let families = error(&with_link("[send]\nto = \"192.0.2.2:1\"\nbind = \"[::1]:0\""));
    assert_eq!(families.field, "send.bind");
    let ipv6 = ok(&with_link("[send]\nto = \"[2001:db8::2]:5800\""));
    assert_eq!(ipv6.link.datagram_budget(&ipv6.send.unwrap().to), 1452);
}

fn error_for_source(source: &str) -> Diagnostic {
    let diagnostic = error(&with_link(&format!(
        "[[channel]]\nname = \"c\"\nsource = {source}"
    )));
    assert_eq!(diagnostic.field, "channel[0].source");
    assert_eq!(diagnostic.line, 5);
    diagnostic
}

#[test]
fn two_channels_cannot_read_one_source() {
    let diagnostic = error(&with_link(
        "[[channel]]\nname = \"a\"\nsource = { udp = \"127.0.0.1:9\" }\n\
         [[channel]]\nname = \"b\"\nsource = { udp = \"127.0.0.1:9\" }",
    ));
    assert_eq!(diagnostic.field, "channel[1].source");
    // The same port over the other transport, and port 0 (any free port), are fine.
    ok(&with_link(
        "[[channel]]\nname = \"a\"\nsource = { udp = \"127.0.0.1:9\" }\n\
         [[channel]]\nname = \"b\"\nsource = { tcp = \"127.0.0.1:9\" }\n\
         [[channel]]\nname = \"c\"\nsource = { tcp = \"127.0.0.1:0\" }\n\
         [[channel]]\nname = \"d\"\nsource = { tcp = \"127.0.0.1:0\" }",
    ));
}

#[test]
fn channel_count_is_bounded() {
    let channels = |count: usize| -> String {
        (0..count)
            .map(|i| {
                format!(
                    "[[channel]]\nname = \"c{i}\"\nsource = {{ udp = \"127.0.0.1:{}\" }}\n",
                    1000 + i
                )
            })
            .collect()
    };
    assert_eq!(ok(&with_link(&channels(MAX_CHANNELS))).channels.len(), 64);
    let diagnostic = error(&with_link(&channels(MAX_CHANNELS + 1)));
    assert_eq!(diagnostic.field, "channel[64]");
    assert!(diagnostic.message.contains("more than 64"), "{diagnostic}");
}
