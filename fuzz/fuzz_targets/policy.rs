//! Policy parsing of arbitrary text never panics; an error lists at least one problem, sorted by position (located ones first), each inside the text or explicitly position-less; a parsed policy parses again to the same policy and fingerprint.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("/etc/weir/fuzz.toml");
    match weir::policy::parse(text, origin) {
        Ok(policy) => {
            let again =
                weir::policy::parse(text, origin).expect("a policy parsed once fails the second time");
            assert!(again == policy, "parsing is not deterministic");
            assert!(again.fingerprint == policy.fingerprint);
        }
        Err(error) => {
            assert!(!error.diagnostics.is_empty(), "an error without a problem");
            let lines = text.split('\n').count();
            // Sorted by position, located problems first (src/policy/error.rs).
            let mut last = (false, 0, 0);
            for d in &error.diagnostics {
                assert_eq!(d.line == 0, d.column == 0, "half a position: {d:?}");
                assert!(d.line <= lines, "line {} of a {lines}-line text: {d:?}", d.line);
                if d.line > 0 {
                    // 1-based, in characters; one past the end of the line is the line end.
                    let width = text.split('\n').nth(d.line - 1).map_or(0, |l| l.chars().count());
                    assert!(
                        d.column <= width + 1,
                        "column {} of a {width}-character line: {d:?}",
                        d.column
                    );
                }
                let key = (d.line == 0, d.line, d.column);
                assert!(key >= last, "diagnostics not sorted: {:?}", error.diagnostics);
                last = key;
            }
            let rendered = error.to_string();
            assert!(!rendered.is_empty());
        }
    }
});
