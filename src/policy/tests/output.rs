//! Fingerprint stability and sensitivity, channel table, link summary.

use std::path::Path;

use super::*;

#[test]
fn channel_table_is_aligned() {
    let table = ok(FULL).channel_table();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert_eq!(
        lines[0]
            .split("  ")
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .collect::<Vec<_>>(),
        [
            "NAME",
            "ID",
            "SOURCE",
            "ALLOW",
            "FILTERS",
            "RATE",
            "PRIO",
            "MAX MESSAGE",
            "SINKS"
        ],
        "{table}"
    );
    let id = ChannelId::for_name("syslog").to_string();
    assert!(
        lines[2].starts_with(&format!("syslog     {id}  udp 10.1.0.5:5514  any  ")),
        "{table}"
    );
    let cells = |line: &str| -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        cells(lines[1])[3..],
        [
            "10.1.0.0/24, 192.0.2.7",
            "utf8",
            "200 Mbit/s",
            "3",
            "64 KiB",
            "tcp 10.20.0.8:7000, tcp 10.20.0.9:7000"
        ],
        "{table}"
    );
    assert_eq!(
        cells(lines[2])[3..],
        [
            "any",
            "utf8,pattern",
            "1000 msg/s",
            "1",
            "8 KiB",
            "udp 10.20.0.9:514"
        ],
        "{table}"
    );
    for (header, cell) in [
        ("ALLOW", "any"),
        ("FILTERS", "utf8,pattern"),
        ("RATE", "1000 msg/s"),
        ("SINKS", "udp 10.20.0.9:514"),
    ] {
        assert_eq!(lines[0].find(header), lines[2].find(cell), "{header}\n{table}");
    }
    let plain = ok(&one_channel("tcp", "")).channel_table();
    let plain = cells(plain.lines().nth(1).unwrap());
    assert_eq!(plain[3..], ["any", "-", "-", "2", "64 KiB", "-"]);
    assert_eq!(ok(&with_link("")).channel_table(), "(no channels)\n");
    let summary = ok(FULL).link_summary();
    assert!(summary.contains("datagram budget 8972 B over IPv4"), "{summary}");
    assert!(
        summary.contains("up to 32 source + 7 repair symbols"),
        "{summary}"
    );
}

#[test]
fn json_views() {
    let policy = ok(FULL);
    let json = policy.to_json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["file"], ORIGIN);
    assert_eq!(json["fingerprint"], policy.fingerprint.to_string());
    assert_eq!(json["fingerprint_full"], policy.fingerprint.full_hex());
    assert_eq!(json["errors"], serde_json::json!([]));
    assert_eq!(json["link"]["mtu"], 9000);
    assert_eq!(json["link"]["bandwidth_bps"], 800_000_000);
    assert_eq!(json["link"]["heartbeat_ns"], 500_000_000);
    assert_eq!(json["send"]["bind"], "192.0.2.1:0");
    assert_eq!(json["recv"]["spool"], "/var/lib/weir");
    assert_eq!(json["recv"]["deliver_state"], "/var/lib/weir-deliver/state");
    assert_eq!(json["recv"]["deliver_metrics"], "127.0.0.1:9102");
    assert_eq!(json["recv"]["sink_after"], "write");
    let defaults = ok(&with_link("[recv]\nlisten = \"0.0.0.0:1\"")).to_json();
    assert_eq!(defaults["recv"]["spool"], "/var/lib/weir/spool");
    assert_eq!(defaults["recv"]["deliver_state"], "/var/lib/weir-deliver");
    assert_eq!(defaults["recv"]["deliver_metrics"], serde_json::Value::Null);
    assert_eq!(defaults["recv"]["sink_after"], "fsync");
    let historian = &json["channels"][0];
    assert_eq!(historian["name"], "historian");
    assert_eq!(historian["id"], ChannelId::for_name("historian").to_string());
    assert_eq!(historian["source"], serde_json::json!({ "tcp": "10.1.0.5:7000" }));
    assert_eq!(
        historian["allow_from"],
        serde_json::json!(["10.1.0.0/24", "192.0.2.7/32"])
    );
    assert_eq!(historian["on_violation"], "close");
    assert_eq!(historian["rate"]["bytes_per_sec"], 25_000_000);
    assert_eq!(historian["rate"]["messages_per_sec"], serde_json::Value::Null);
    assert_eq!(historian["priority"], 3);
    let syslog = &json["channels"][1];
    assert_eq!(syslog["allow_from"], serde_json::Value::Null);
    assert_eq!(
        syslog["filter"],
        serde_json::json!({ "utf8": true, "pattern": "^<\\d{1,3}>", "json": false })
    );
    assert_eq!(syslog["rate"]["burst_messages"], 50);
    assert_eq!(syslog["sinks"], serde_json::json!([{ "udp": "10.20.0.9:514" }]));

    let text =
        with_link("mtu = 1\n[[channel]]\nname = \"c\"\nsource = { udp = \"127.0.0.1:9\" }\ncolour = 1");
    let error = parse(&text, Path::new(ORIGIN)).unwrap_err();
    let json = error.to_json();
    assert_eq!(json["valid"], false);
    assert_eq!(json["file"], ORIGIN);
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[0]["column"], 7);
    assert_eq!(errors[0]["field"], "link.mtu");
    assert!(errors[0]["message"].as_str().unwrap().contains("out of range"));
    assert!(errors[0]["hint"].is_string());
    assert_eq!(errors[1]["field"], "channel[0].colour");
    assert_eq!(errors[1]["hint"], serde_json::Value::Null);
}

#[test]
fn fingerprint_ignores_layout_and_spelling() {
    let reference = ok(FULL).fingerprint;
    let reformatted = r#"
[[channel]]
name="historian"   # the plant historian
priority=3
rate={bytes="25 MB/s",burst="2500000"}   # the default burst, 1/10 s
on_violation="close"
filter={json=false,utf8=true}
allow_from=[ "10.1.0.0/24","192.0.2.7/32" ]
sinks=[ { tcp="10.20.0.8:7000" } , { tcp="10.20.0.9:7000" } ]
source={tcp="10.1.0.5:7000"}
[[channel]]
max_message=8192
priority=1
rate={burst_messages=50,messages=1000}
filter={pattern="^<\\d{1,3}>",utf8=true}
name="syslog"
sinks=[{udp="10.20.0.9:514"}]
source={udp="10.1.0.5:5514"}
[recv]
sink_after="write"
deliver_metrics="127.0.0.1:9102"
metrics="127.0.0.1:9101"
deliver_state="/var/lib/weir-deliver/state"
spool="/var/lib/weir"
queue=2097152
socket_buffer="64MiB"
listen="192.0.2.2:5800"
[send]
queue="16MiB"
metrics="127.0.0.1:9100"
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
    let recv = |extra: &str| ok(&with_link(&format!("[recv]\nlisten = \"0.0.0.0:1\"\n{extra}")));
    assert_eq!(
        recv("").fingerprint,
        recv(
            "spool = \"/var/lib/weir/spool\"\ndeliver_state = \"/var/lib/weir-deliver\"\n\
             sink_after = \"fsync\""
        )
        .fingerprint
    );
    assert_eq!(
        ok(&one_channel("udp", "")).fingerprint,
        ok(&one_channel(
            "udp",
            "priority = 2\non_violation = \"drop\"\nfilter = { utf8 = false, json = false }"
        ))
        .fingerprint
    );
    assert_eq!(
        ok(&one_channel("udp", "rate = { messages = 1000 }")).fingerprint,
        ok(&one_channel(
            "udp",
            "rate = { messages = 1000, burst_messages = 100 }"
        ))
        .fingerprint
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
fn canonical_text_of_the_recv_side() {
    let recv = |extra: &str| {
        let policy = ok(&with_link(&format!("[recv]\nlisten = \"0.0.0.0:1\"\n{extra}")));
        fingerprint::canonical_text(&policy)
    };
    // The spool and its settings are always written, with their defaults.
    let defaults = recv("");
    assert!(
        defaults.contains("\nrecv.spool \"/var/lib/weir/spool\"\n"),
        "{defaults}"
    );
    assert!(defaults.contains("\nrecv.segment 67108864\n"), "{defaults}");
    assert!(defaults.contains("\nrecv.retain_age_ns none\n"), "{defaults}");
    // weir-deliver's settings only when not at their default.
    assert!(
        !defaults.contains("deliver") && !defaults.contains("sink_after"),
        "{defaults}"
    );
    // (`parse` resolves relative paths after the fingerprint is taken: use an absolute one.)
    let set =
        recv("deliver_state = \"/srv/d\"\ndeliver_metrics = \"127.0.0.1:9102\"\nsink_after = \"write\"");
    for line in [
        "recv.deliver_state \"/srv/d\"",
        "recv.deliver_metrics 127.0.0.1:9102",
        "recv.sink_after write",
    ] {
        assert!(set.contains(&format!("\n{line}\n")), "{line}\n{set}");
    }
}

#[test]
fn fingerprint_changes_with_every_semantic_field() {
    let reference = ok(FULL).fingerprint;
    let changes = [
        ("\"10.1.0.0/24\", ", ""),
        ("\"192.0.2.7\"", "\"192.0.2.8\""),
        ("on_violation = \"close\"", ""),
        ("\"200 Mbit/s\"", "\"201 Mbit/s\""),
        ("rate         = { bytes = \"200 Mbit/s\" }", ""),
        (
            "{ bytes = \"200 Mbit/s\" }",
            "{ bytes = \"200 Mbit/s\", burst = \"1 MiB\" }",
        ),
        ("priority     = 3", "priority = 2"),
        ("'^<\\d{1,3}>'", "'^<\\d{1,2}>'"),
        ("utf8 = true, pattern", "utf8 = false, pattern"),
        (
            "pattern = '^<\\d{1,3}>' }",
            "pattern = '^<\\d{1,3}>', json = true }",
        ),
        ("messages = 1000", "messages = 1001"),
        ("burst_messages = 50", "burst_messages = 51"),
        ("priority    = 1", ""),
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
        (
            "\"/var/lib/weir-deliver/state\"",
            "\"/var/lib/weir-deliver/other\"",
        ),
        ("deliver_state   = \"/var/lib/weir-deliver/state\"", ""),
        ("\"127.0.0.1:9102\"", "\"127.0.0.1:9103\""),
        ("deliver_metrics = \"127.0.0.1:9102\"", ""),
        ("sink_after      = \"write\"", ""),
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
