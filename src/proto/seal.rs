//! Per-datagram authenticated encryption: AES-256-GCM through `ring`.
//!
//! The per-session key is `HKDF-SHA256(salt = "weir link v1", ikm = pre-shared key,
//! info = "session key" ‖ session id (8 B) ‖ key id (2 B))`. Each sender run draws a new
//! session id, so a restarted sender never reuses a (key, nonce) pair. The nonce is
//! `0x00000000 ‖ packet number (8 B, big-endian)`; packet numbers never repeat in a session.
//! The 20-byte clear header is the associated data.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

use super::wire::{HEADER_LEN, TAG_LEN};
use crate::proto::key::LinkKey;

const HKDF_SALT: &[u8] = b"weir link v1";
const HKDF_LABEL: &[u8] = b"session key";

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The datagram is shorter than a header and a tag.
    #[error("datagram too short to hold a header and a tag")]
    TooShort,
    /// The tag did not verify: wrong key, forged or corrupted datagram.
    #[error("authentication failed")]
    Forged,
    /// `ring` refused the key or input (cannot happen with valid sizes).
    #[error("AEAD key setup failed")]
    Crypto,
}

/// The AEAD key for one (pre-shared key, session) pair.
pub struct SessionKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// Derives the session key from the pre-shared key and the session id.
    pub fn derive(psk: &LinkKey, session: u64) -> Result<SessionKey, SealError> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT);
        let prk = salt.extract(&psk.secret);
        let session_bytes = session.to_be_bytes();
        let key_id_bytes = psk.id.to_be_bytes();
        let info: [&[u8]; 3] = [HKDF_LABEL, &session_bytes, &key_id_bytes];
        let okm = prk
            .expand(&info, &aead::AES_256_GCM)
            .map_err(|_| SealError::Crypto)?;
        let unbound: UnboundKey = okm.into();
        Ok(SessionKey {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Seals the datagram that starts at `start` in `buf`: its first [`HEADER_LEN`] bytes are
    /// the header (associated data), the rest is the body, encrypted in place; the tag is
    /// appended.
    pub fn seal(&self, packet_number: u64, buf: &mut Vec<u8>, start: usize) -> Result<(), SealError> {
        let datagram = buf.get_mut(start..).ok_or(SealError::TooShort)?;
        let (header, body) = datagram
            .split_at_mut_checked(HEADER_LEN)
            .ok_or(SealError::TooShort)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(packet_number), Aad::from(&*header), body)
            .map_err(|_| SealError::Crypto)?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens a datagram in place and returns its plaintext body.
    pub fn open<'a>(&self, packet_number: u64, datagram: &'a mut [u8]) -> Result<&'a [u8], SealError> {
        if datagram.len() < HEADER_LEN + TAG_LEN {
            return Err(SealError::TooShort);
        }
        let (header, sealed) = datagram
            .split_at_mut_checked(HEADER_LEN)
            .ok_or(SealError::TooShort)?;
        let plain = self
            .key
            .open_in_place(nonce(packet_number), Aad::from(&*header), sealed)
            .map_err(|_| SealError::Forged)?;
        Ok(plain)
    }
}

fn nonce(packet_number: u64) -> Nonce {
    let mut bytes = [0u8; aead::NONCE_LEN];
    for (dst, src) in bytes.iter_mut().skip(4).zip(packet_number.to_be_bytes()) {
        *dst = src;
    }
    Nonce::assume_unique_for_key(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn key(id: u16, fill: u8) -> LinkKey {
        LinkKey {
            id,
            secret: [fill; 32],
        }
    }

    #[test]
    fn seal_then_open_round_trips() {
        let k = SessionKey::derive(&key(1, 9), 77).unwrap();
        let mut buf = vec![0xaa; 5];
        buf.extend_from_slice(&[1u8; HEADER_LEN]);
        buf.extend_from_slice(b"hello");
        k.seal(3, &mut buf, 5).unwrap();
        assert_eq!(buf.len(), 5 + HEADER_LEN + 5 + TAG_LEN);
        assert_eq!(k.open(3, &mut buf[5..]).unwrap(), b"hello");
    }

    #[test]
    fn wrong_nonce_key_session_or_header_is_forged() {
        let k = SessionKey::derive(&key(1, 9), 77).unwrap();
        let mut sealed = vec![2u8; HEADER_LEN];
        sealed.extend_from_slice(b"payload");
        k.seal(3, &mut sealed, 0).unwrap();

        let open_with = |sk: &SessionKey, pn: u64, mut d: Vec<u8>| sk.open(pn, &mut d).map(<[u8]>::to_vec);
        assert_eq!(open_with(&k, 4, sealed.clone()), Err(SealError::Forged));
        let other_session = SessionKey::derive(&key(1, 9), 78).unwrap();
        assert_eq!(
            open_with(&other_session, 3, sealed.clone()),
            Err(SealError::Forged)
        );
        let other_id = SessionKey::derive(&key(2, 9), 77).unwrap();
        assert_eq!(open_with(&other_id, 3, sealed.clone()), Err(SealError::Forged));
        let mut header_flip = sealed.clone();
        header_flip[0] ^= 1;
        assert_eq!(open_with(&k, 3, header_flip), Err(SealError::Forged));
        assert_eq!(
            open_with(&k, 3, sealed[..HEADER_LEN + TAG_LEN - 1].to_vec()),
            Err(SealError::TooShort)
        );
        assert_eq!(open_with(&k, 3, sealed).unwrap(), b"payload");
    }
}
