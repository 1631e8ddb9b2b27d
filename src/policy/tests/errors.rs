//! Error reporting: locations, unknown and unsupported fields, many errors at once.

use std::path::Path;

use super::*;

#[test]
fn unknown_fields_are_rejected_with_their_line() {
    let diagnostic = error(&with_link("mtu_size = 1500"));
    assert_eq!((diagnostic.line, diagnostic.column), (3, 1));
    assert_eq!(diagnostic.field, "link.mtu_size");
    assert!(
        diagnostic.message.contains("unknown field `mtu_size`"),
        "{diagnostic}"
    );

    let nested = error_for_channel("sinks = [{ udp = \"10.0.0.1:1\" }, { file = \"/tmp/x\" }]");
    assert_eq!(nested.line, 6);
    assert_eq!(nested.field, "channel[0].sinks[1].file");
    assert!(nested.message.contains("unknown field `file`"), "{nested}");

    let section = error(&with_link("[channels]\nname = \"x\""));
    assert_eq!((section.line, section.field.as_str()), (3, "channels"));
    assert!(section.hint.unwrap().contains("[[channel]]"));
}

#[test]
fn syntax_errors_are_located() {
    let diagnostics = errors("[link]\nkey_file = \"k\nmtu = = 3\n");
    assert!(diagnostics.iter().all(|d| d.line >= 2), "{diagnostics:#?}");
    let duplicate = error("[link]\nkey_file = \"k\"\nmtu = 1\nmtu = 2\n");
    assert_eq!((duplicate.line, duplicate.column), (4, 1));
    assert_eq!(duplicate.message, "duplicate key `mtu`");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"[link]
key_file = "k"
mtu = 70000
flush = "1s"

[send]
queue = "1 MiB"

[[channel]]
name = "Bad Name"
source = { udp = "127.0.0.1:9" }

[[channel]]
name = "ok"
source = { udp = "127.0.0.1:10" }
colour = "blue"

[[channel]]
name = "stream"
source = { tcp = "127.0.0.1:11" }
sinks = [{ udp = "127.0.0.1:12" }]
filter = { utf8 = true, pattern = '^<' }
"#;
    let diagnostics = errors(text);
    let found: Vec<(usize, &str)> = diagnostics.iter().map(|d| (d.line, d.field.as_str())).collect();
    assert_eq!(
        found,
        [
            (3, "link.mtu"),
            (4, "link.flush"),
            (6, "send.to"),
            (10, "channel[0].name"),
            (16, "channel[1].colour"),
            (21, "channel[2].sinks[0]"),
            (22, "channel[2].filter.pattern"),
        ],
        "{diagnostics:#?}"
    );
    let rendered = parse(text, Path::new(ORIGIN)).unwrap_err().to_string();
    assert_eq!(rendered.lines().count(), 7, "{rendered}");
    assert!(rendered.lines().all(|line| line.starts_with("policies/x.toml:")));
}

#[test]
fn consumer_server_rules() {
    // The spool always has a directory (by default /var/lib/weir/spool): [recv.serve] needs no
    // `spool` line.
    let serve_default_spool = ok(&with_link(
        "[recv]\nlisten = \"0.0.0.0:1\"\n[recv.serve]\ntls = \"0.0.0.0:7443\"\ncert = \"s.pem\"\nkey = \"s.key\"\nclient_ca = \"ca.pem\"",
    ));
    let recv = serve_default_spool.recv.unwrap();
    assert_eq!(recv.spool, Path::new("/var/lib/weir/spool"));
    assert_eq!(recv.serve.unwrap().cert, Path::new("policies/s.pem"));
    let consumers_without_serve = error(&with_link(
        "[recv]\nlisten = \"0.0.0.0:1\"\n[[channel]]\nname = \"c\"\nsource = { udp = \"127.0.0.1:9\" }\n\
         consumers = [\"siem.corp.example\"]",
    ));
    assert_eq!(consumers_without_serve.field, "channel[0].consumers");
    assert!(
        consumers_without_serve.message.contains("no [recv.serve]"),
        "{consumers_without_serve}"
    );
    assert!(consumers_without_serve.hint.unwrap().contains("[recv.serve]"));
    let incomplete = error(&with_link(
        "[recv]\nlisten = \"0.0.0.0:1\"\nspool = \"s\"\n[recv.serve]\ncert = \"s.pem\"\nkey = \"s.key\"\nclient_ca = \"ca.pem\"",
    ));
    assert_eq!(incomplete.field, "recv.serve");
    assert!(incomplete.message.contains("`tls`, `quic`"), "{incomplete}");
    let bad_identity = error_for_channel("consumers = [\"not a name\"]");
    assert_eq!(bad_identity.field, "channel[0].consumers[0]");
    assert!(bad_identity.message.contains("spaces"), "{bad_identity}");
    let twice = error_for_channel("consumers = [\"SIEM.corp.example\", \"siem.corp.example\"]");
    assert!(twice.message.contains("listed twice"), "{twice}");
    let small_retain = error(&with_link(
        "[recv]\nlisten = \"0.0.0.0:1\"\nspool = \"s\"\nsegment = \"64 MiB\"\nretain = \"100 MiB\"",
    ));
    assert_eq!(small_retain.field, "recv.retain");
}

#[test]
fn sections_of_the_wrong_shape() {
    assert_eq!(error(&with_link("[[send]]\nto = \"192.0.2.2:1\"")).field, "send");
    let channel = error("channel = 5\n[link]\nkey_file = \"k\"");
    assert_eq!((channel.line, channel.field.as_str()), (1, "channel"));
}

#[test]
fn load_names_the_file() {
    let path = Path::new("/nonexistent/weir/policy.toml");
    let error = load(path).unwrap_err();
    assert_eq!(error.origin, path);
    let text = error.to_string();
    assert!(
        text.starts_with("/nonexistent/weir/policy.toml: cannot read"),
        "{text}"
    );
}

#[test]
fn load_reads_a_file() {
    let dir = std::env::temp_dir().join(format!("weir-policy-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("conduit.toml");
    std::fs::write(&path, FULL).unwrap();
    let policy = load(&path).unwrap();
    assert_eq!(policy.link.key_file, dir.join("keys/link.key"));
    assert_eq!(policy.fingerprint, ok(FULL).fingerprint);
    std::fs::remove_dir_all(dir).unwrap();
}
