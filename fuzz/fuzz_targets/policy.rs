//! Policy parsing of arbitrary text never panics; every error names a position.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = weir::policy::parse(text, std::path::Path::new("fuzz.toml"));
    }
});
