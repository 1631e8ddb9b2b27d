//! Frame parsing over arbitrary block data never panics and stops after an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weir::proto::frame::Frames;

fuzz_target!(|data: &[u8]| {
    let mut errors = 0;
    for frame in Frames::new(data) {
        if frame.is_err() {
            errors += 1;
        }
    }
    assert!(errors <= 1);
});
