//! Fingerprint stability and sensitivity, channel table, link summary.

use std::path::Path;

use super::*;

#[test]
fn channel_table_is_aligned() {
    let table = ok(FULL).channel_table();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("NAME       ID        SOURCE"), "{table}");
    let id = ChannelId::for_name("syslog").to_string();
    assert!(
        lines[2].starts_with(&format!("syslog     {id}  udp 10.1.0.5:5514  8 KiB")),
        "{table}"
    );
    assert!(
        lines[1].ends_with("tcp 10.20.0.8:7000, tcp 10.20.0.9:7000"),
        "{table}"
    );
    let column = lines[0].find("SINKS").unwrap();
    assert_eq!(lines[2].find("udp 10.20.0.9:514"), Some(column), "{table}");
    assert_eq!(ok(&with_link("")).channel_table(), "(no channels)\n");
    let summary = ok(FULL).link_summary();
    assert!(summary.contains("datagram budget 8972 B over IPv4"), "{summary}");
    assert!(
        summary.contains("up to 32 source + 7 repair symbols"),
        "{summary}"
    );
}

#[test]
fn fingerprint_ignores_layout_and_spelling() {
    let reference = ok(FULL).fingerprint;
    let reformatted = r#"
[[channel]]
name="historian"   # the plant historian
sinks=[ { tcp="10.20.0.8:7000" } , { tcp="10.20.0.9:7000" } ]
source={tcp="10.1.0.5:7000"}
[[channel]]
max_message=8192
name="syslog"
sinks=[{udp="10.20.0.9:514"}]
source={udp="10.1.0.5:5514"}
[recv]
spool="/var/lib/weir"
queue=2097152
socket_buffer="64MiB"
listen="192.0.2.2:5800"
[send]
queue="16MiB"
bind="192.0.2.1:0"
to="192.0.2.2:5800"
[link]
reorder_window="0.1s"
block_symbols=32
flush="2000us"
heartbeat="500 ms"
bandwidth="100 MB/s"
repair=20
mtu=9000
key_file="keys/link.key"
"#;
    assert_eq!(ok(reformatted).fingerprint, reference);
    // Writing a default explicitly is the same policy.
    assert_eq!(
        ok(&with_link("")).fingerprint,
        ok(&with_link("mtu = 1500\nrepair = \"10%\"\nheartbeat = \"1s\"")).fingerprint
    );
    // The same file in another directory (relative paths resolve differently) is the same policy.
    assert_eq!(
        parse(FULL, Path::new("/etc/weir/conduit.toml"))
            .unwrap()
            .fingerprint,
        reference
    );
}

#[test]
fn fingerprint_changes_with_every_semantic_field() {
    let reference = ok(FULL).fingerprint;
    let changes = [
        ("\"keys/link.key\"", "\"keys/other.key\""),
        ("mtu            = 9000", "mtu = 8999"),
        ("\"20%\"", "\"21%\""),
        ("\"800 Mbit/s\"", "\"801 Mbit/s\""),
        ("\"500ms\"", "\"501ms\""),
        ("\"2ms\"", "\"3ms\""),
        ("block_symbols  = 32", "block_symbols = 33"),
        ("\"100ms\"", "\"101ms\""),
        ("to    = \"192.0.2.2:5800\"", "to = \"192.0.2.2:5801\""),
        ("bind  = \"192.0.2.1:0\"", ""),
        ("\"16 MiB\"", "\"15 MiB\""),
        (
            "listen        = \"192.0.2.2:5800\"",
            "listen = \"192.0.2.3:5800\"",
        ),
        ("\"64 MiB\"", "\"63 MiB\""),
        ("\"2 MiB\"", "\"3 MiB\""),
        ("\"/var/lib/weir\"", "\"/var/lib/weir2\""),
        ("\"historian\"", "\"historian2\""),
        ("{ tcp = \"10.1.0.5:7000\" }", "{ tcp = \"10.1.0.6:7000\" }"),
        ("{ tcp = \"10.20.0.8:7000\" }, ", ""),
        ("\"8 KiB\"", "\"9 KiB\""),
        ("[{ udp = \"10.20.0.9:514\" }]", "[]"),
    ];
    let mut seen = vec![reference];
    for (from, to) in changes {
        assert!(FULL.contains(from), "{from}");
        let changed = ok(&FULL.replacen(from, to, 1)).fingerprint;
        assert!(
            !seen.contains(&changed),
            "changing {from} to {to} kept a fingerprint"
        );
        seen.push(changed);
    }
    // Channel order is semantic (it is the order of the table and of the canonical form).
    let split = FULL.find("[[channel]]").unwrap();
    let (head, channels) = FULL.split_at(split);
    let second = channels.rfind("[[channel]]").unwrap();
    let reordered = format!("{head}{}\n{}", &channels[second..], &channels[..second]);
    let reordered = ok(&reordered);
    assert_eq!(reordered.channels[0].name, "syslog");
    assert!(!seen.contains(&reordered.fingerprint));
    // Dropping a whole side changes it too.
    let send_start = FULL.find("[send]").unwrap();
    let send_end = FULL.find("[recv]").unwrap();
    let without_send = format!("{}{}", &FULL[..send_start], &FULL[send_end..]);
    assert!(!seen.contains(&ok(&without_send).fingerprint));
}
