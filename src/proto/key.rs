//! The pre-shared link key as the protocol uses it: an id and a 256-bit secret. Loading key
//! files, their format and their permissions belong to the `keys` module, outside the
//! protocol.

use std::fmt;

/// Length of a link key secret, in bytes.
pub const SECRET_LEN: usize = 32;

/// One pre-shared link key. `Debug` shows the id only, never the secret.
#[derive(Clone)]
pub struct LinkKey {
    /// Key id, carried in every datagram header so the receiver knows which key to use.
    pub id: u16,
    /// The 256-bit secret.
    pub secret: [u8; SECRET_LEN],
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}
