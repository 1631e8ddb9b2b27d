//! The consumer protocol's message decoder over arbitrary frame bodies never panics, and every
//! message it accepts re-encodes to a frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::consumer::protocol::{Message, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    // An Error's text is cut to 4096 bytes when encoded, possibly inside a character.
    if matches!(&message, Message::Error { message, .. } if message.len() > 4096) {
        return;
    }
    let mut frame = Vec::new();
    message.encode(&mut frame);
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(len, frame.len() - 4);
    assert!(len <= MAX_FRAME || matches!(message, Message::Record(_)));
    assert_eq!(Message::decode(&frame[4..]).as_ref(), Ok(&message));
});
