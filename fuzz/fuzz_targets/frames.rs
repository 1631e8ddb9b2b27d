//! The frame parser over arbitrary block data never panics, stops after its first error, and every frame it returns re-encodes to exactly the bytes it was parsed from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::frame::Frames;
use weir::proto::wire::MAX_COUNTER;

fuzz_target!(|data: &[u8]| {
    let mut errors = 0;
    let mut rebuilt = Vec::new();
    for frame in Frames::new(data) {
        assert_eq!(errors, 0, "a frame after an error");
        match frame {
            Ok((header, bytes)) => {
                assert!(header.seq <= MAX_COUNTER);
                header.write(bytes, &mut rebuilt);
                assert!(
                    data.starts_with(&rebuilt),
                    "frame {header:?} does not re-encode to its bytes"
                );
            }
            Err(_) => errors += 1,
        }
    }
});
