//! Content filters: validation of `filter`, `Filter::check`, `Utf8Stream`.

use super::*;

fn filter(transport: &str, filter: &str) -> Filter {
    channel_ok(transport, &format!("filter = {filter}")).filter
}

fn filter_error(transport: &str, filter: &str) -> Diagnostic {
    error(&one_channel(transport, &format!("filter = {filter}")))
}

#[test]
fn filter_fields() {
    let syslog = filter("udp", "{ utf8 = true, pattern = '^<\\d{1,3}>' }");
    assert!(syslog.utf8 && !syslog.json);
    assert_eq!(syslog.pattern_text(), Some("^<\\d{1,3}>"));
    assert_eq!(syslog.rules(), ["utf8", "pattern"]);
    let all = filter("udp", "{ utf8 = true, pattern = '.', json = true }");
    assert_eq!(all.rules(), ["utf8", "pattern", "json"]);
    let none = filter("udp", "{}");
    assert!(none.is_empty() && none.rules().is_empty());
    assert_eq!(none, Filter::default());
    // Only utf8 is allowed on a stream.
    let stream = filter("tcp", "{ utf8 = true, json = false }");
    assert_eq!(stream.rules(), ["utf8"]);
}

#[test]
fn stream_channels_take_only_utf8() {
    let pattern = filter_error("tcp", "{ utf8 = true, pattern = '^<' }");
    assert_eq!((pattern.line, pattern.column), (6, 35));
    assert_eq!(pattern.field, "channel[0].filter.pattern");
    assert!(pattern.message.contains("tcp channel"), "{pattern}");
    assert!(pattern.hint.unwrap().contains("no message boundaries"));
    let json = filter_error("tcp", "{ json = true }");
    assert_eq!(json.field, "channel[0].filter.json");
    assert!(json
        .hint
        .unwrap()
        .contains("only `utf8` is checked, incrementally"));
    // Both at once are both reported.
    let both = errors(&one_channel("tcp", "filter = { json = true, pattern = 'x' }"));
    assert_eq!(both.len(), 2, "{both:#?}");
}

#[test]
fn bad_patterns_are_located_with_the_regex_error() {
    let unclosed = filter_error("udp", "{ pattern = '^(<\\d' }");
    assert_eq!((unclosed.line, unclosed.column), (6, 22));
    assert_eq!(unclosed.field, "channel[0].filter.pattern");
    assert!(
        unclosed
            .message
            .starts_with("is not a usable regex: unclosed group"),
        "{unclosed}"
    );
    assert!(unclosed.message.contains("at character 2"), "{unclosed}");
    assert!(!unclosed.message.contains('\n'), "{unclosed}");
    assert!(unclosed.hint.unwrap().contains("literal string"));
    let look_around = filter_error("udp", "{ pattern = '(?=x)' }");
    assert!(look_around.message.contains("look-around"), "{look_around}");
    let multi_line = filter_error("udp", "{ pattern = \"a\\n(b\" }");
    assert!(!multi_line.message.contains('\n'), "{multi_line}");
    assert!(multi_line.message.contains("unclosed group"), "{multi_line}");
    let empty = filter_error("udp", "{ pattern = '' }");
    assert!(empty.message.contains("is empty"), "{empty}");
    let type_error = filter_error("udp", "{ utf8 = \"yes\" }");
    assert_eq!(type_error.field, "channel[0].filter.utf8");
    let unknown = filter_error("udp", "{ ascii = true }");
    assert_eq!(unknown.field, "channel[0].filter.ascii");
}

#[test]
fn pattern_size_is_bounded() {
    // Unicode classes compile large: 50 × \w is far beyond 256 KiB of program.
    let big = filter_error("udp", "{ pattern = '\\w{50}\\w{50}\\w{50}' }");
    assert!(
        big.message
            .contains("compiles to more than 256 KiB (the limit for a filter pattern)"),
        "{big}"
    );
    assert_eq!(big.field, "channel[0].filter.pattern");
    assert!(big.hint.unwrap().contains("(?-u:\\w)"));
    // Characters, not bytes, are counted: 4097 two-byte characters are too long.
    let wide = filter_error("udp", &format!("{{ pattern = '{}' }}", "é".repeat(4097)));
    assert!(wide.message.contains("4097 characters"), "{wide}");
    // The length limit: exactly MAX_PATTERN_LEN characters are fine, one more is not.
    let max = limits::MAX_PATTERN_LEN;
    let exact = filter("udp", &format!("{{ pattern = '{}' }}", "a".repeat(max)));
    assert_eq!(exact.pattern_text().unwrap().chars().count(), max);
    let long = filter_error("udp", &format!("{{ pattern = '{}' }}", "a".repeat(max + 1)));
    assert!(
        long.message.contains("4097 characters long, more than 4096"),
        "{long}"
    );
}

#[test]
fn check_reports_each_violation() {
    let syslog = filter("udp", "{ utf8 = true, pattern = '^<\\d{1,3}>' }");
    assert_eq!(syslog.check(b"<13>Oct 11 22:14:15 plc1 started"), Ok(()));
    assert_eq!(syslog.check(b"<1234>x"), Err(FilterViolation::PatternMismatch));
    assert_eq!(syslog.check(b"hello"), Err(FilterViolation::PatternMismatch));
    assert_eq!(syslog.check(b""), Err(FilterViolation::PatternMismatch));
    // utf8 is checked first.
    assert_eq!(syslog.check(b"<13>\xff"), Err(FilterViolation::NotUtf8));

    // Without utf8 the pattern matches bytes, invalid UTF-8 included.
    let bytes = filter("udp", "{ pattern = '(?-u)^\\xff' }");
    assert_eq!(bytes.check(b"\xff\xfe"), Ok(()));
    assert_eq!(bytes.check(b"\xfe"), Err(FilterViolation::PatternMismatch));

    let json = filter("udp", "{ json = true }");
    for good in [
        &b"{\"a\": [1, 2.5, null, true]}"[..],
        b" 42 ",
        b"\"\xc3\xa9\"",
        b"[]",
    ] {
        assert_eq!(json.check(good), Ok(()), "{good:?}");
    }
    for bad in [
        &b""[..],
        b"{",
        b"{} {}",
        b"{\"a\":1,}",
        b"nul",
        b"\"\xff\"",
        b"'a'",
    ] {
        assert_eq!(json.check(bad), Err(FilterViolation::NotJson), "{bad:?}");
    }
    // Deep nesting is a violation, not a stack overflow.
    let deep = "[".repeat(100_000);
    assert_eq!(json.check(deep.as_bytes()), Err(FilterViolation::NotJson));

    let utf8 = filter("udp", "{ utf8 = true }");
    assert_eq!(utf8.check("π ≈ 3.14 🙂".as_bytes()), Ok(()));
    assert_eq!(utf8.check(b""), Ok(()));
    for bad in [&b"\xff"[..], b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf"] {
        assert_eq!(utf8.check(bad), Err(FilterViolation::NotUtf8), "{bad:?}");
    }
    assert_eq!(Filter::default().check(b"\xff\x00anything"), Ok(()));

    let reasons = [
        FilterViolation::NotUtf8,
        FilterViolation::PatternMismatch,
        FilterViolation::NotJson,
    ]
    .map(|violation| violation.reason());
    assert_eq!(reasons, ["filter_utf8", "filter_pattern", "filter_json"]);
    assert_eq!(
        FilterViolation::NotJson.to_string(),
        "not a well-formed JSON value"
    );
}

#[test]
fn utf8_stream_accepts_characters_split_anywhere() {
    let text = "a€𝄞é—ok".as_bytes();
    for first in 0..=text.len() {
        for second in first..=text.len() {
            let mut stream = Utf8Stream::new();
            for chunk in [&text[..first], &text[first..second], &text[second..]] {
                assert_eq!(stream.push(chunk), Ok(()), "{first} {second}");
            }
            assert_eq!(stream.finish(), Ok(()), "{first} {second}");
        }
    }
    // One byte at a time.
    let mut stream = Utf8Stream::new();
    for byte in text {
        stream.push(std::slice::from_ref(byte)).unwrap();
    }
    stream.finish().unwrap();
}

#[test]
fn utf8_stream_rejects_bad_bytes_and_a_cut_character() {
    let mut cut = Utf8Stream::new();
    cut.push("ok€".as_bytes().get(..4).unwrap()).unwrap();
    assert_eq!(cut.finish(), Err(FilterViolation::NotUtf8));

    let mut bad = Utf8Stream::new();
    assert_eq!(bad.push(b"ok\xff"), Err(FilterViolation::NotUtf8));

    // A pending lead byte followed by a byte that cannot continue it.
    let mut broken = Utf8Stream::new();
    broken.push(b"\xe2\x82").unwrap();
    assert_eq!(broken.push(b"A"), Err(FilterViolation::NotUtf8));

    // The character completes, and the rest of the chunk is still checked.
    let mut later = Utf8Stream::new();
    later.push(b"\xe2").unwrap();
    assert_eq!(later.push(b"\x82\xacok\xc0"), Err(FilterViolation::NotUtf8));

    // Every split of invalid text is rejected somewhere.
    let invalid = b"ab\xf0\x9f\x99x";
    for split in 0..=invalid.len() {
        let mut stream = Utf8Stream::new();
        let result = stream
            .push(&invalid[..split])
            .and_then(|()| stream.push(&invalid[split..]))
            .and_then(|()| stream.finish());
        assert_eq!(result, Err(FilterViolation::NotUtf8), "{split}");
    }
}
