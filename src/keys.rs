//! Pre-shared link keys: generating, storing and loading the 256-bit keys that authenticate the
//! link.
//!
//! Contract:
//! - A key file is text, one key per line, `#` starts a comment (whole line or end of line):
//!
//!   ```text
//!   # weir link key; keep secret, mode 0600
//!   weir-psk-v1 <key id, decimal 0..=65535> <64 lowercase hex characters>
//!   ```
//!
//! - The sender seals with the **first** key listed ([`KeyRing::primary`]); the receiver accepts
//!   every key listed ([`KeyRing::get`]). To roll a key over: generate a new key, list it first
//!   on the sender and list both on the receiver during the overlap, then drop the old one.
//! - [`generate`] creates a new file with mode 0600 at creation and never overwrites one;
//!   [`load`] refuses a file that group or others may access, a malformed line (naming its
//!   number), duplicate ids and a file without keys.
//! - Secrets never appear in `Debug` output or error messages, not even a malformed one: a line
//!   is described, never quoted.
//! - Keys are only as safe as the memory of the process: they are not zeroised on drop.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

/// The tag that starts every key line.
pub const KEY_FORMAT: &str = "weir-psk-v1";

/// Largest key file we read, in bytes: room for a few hundred keys and comments.
pub const MAX_KEY_FILE: u64 = 64 << 10;

pub use crate::proto::key::{LinkKey, SECRET_LEN};

/// The keys of one key file: never empty, ids unique, in file order.
#[derive(Debug, Clone)]
pub struct KeyRing {
    primary: LinkKey,
    others: Vec<LinkKey>,
}

impl KeyRing {
    /// A ring holding the single key `key` (for tests and tools).
    pub fn single(key: LinkKey) -> Self {
        Self {
            primary: key,
            others: Vec::new(),
        }
    }

    /// The first key in the file: the one the sender seals with.
    pub fn primary(&self) -> &LinkKey {
        &self.primary
    }

    /// The key with id `id`, if listed: the receiver accepts any listed key.
    pub fn get(&self, id: u16) -> Option<&LinkKey> {
        self.iter().find(|key| key.id == id)
    }

    /// Every key, in file order (the primary first).
    pub fn iter(&self) -> impl Iterator<Item = &LinkKey> {
        std::iter::once(&self.primary).chain(self.others.iter())
    }

    /// Number of keys (at least 1).
    pub fn len(&self) -> usize {
        1 + self.others.len()
    }

    /// Always false: a ring has at least one key.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Why a key file could not be generated or loaded. Every variant names the file; none carries
/// key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file does not exist.
    #[error("key file {path} does not exist (hint: run `weir keygen {path}`)", path = .path.display())]
    Missing {
        /// The key file.
        path: PathBuf,
    },
    /// `generate` found a file already there and left it alone.
    #[error("key file {path} already exists; refusing to overwrite it (hint: remove it first if you really mean to replace the key, or choose another path)", path = .path.display())]
    AlreadyExists {
        /// The key file.
        path: PathBuf,
    },
    /// Group or others may access the file.
    #[error("key file {path} has mode {mode:04o}, which lets group or others access it (hint: chmod 600 {path})", path = .path.display())]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is not a regular file.
    #[error("key file {path} is not a regular file", path = .path.display())]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// The file is larger than [`MAX_KEY_FILE`].
    #[error("key file {path} is larger than {MAX_KEY_FILE} bytes", path = .path.display())]
    TooLarge {
        /// The key file.
        path: PathBuf,
    },
    /// Reading or writing the file failed.
    #[error("key file {path}: {source}", path = .path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line is not `weir-psk-v1 <id> <64 lowercase hex>`.
    #[error("key file {path}:{line}: {reason}", path = .path.display())]
    BadLine {
        /// The key file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong; describes the line without quoting it.
        reason: String,
    },
    /// Two lines have the same key id.
    #[error("key file {path}:{line}: key id {id} is already used on line {first_line}", path = .path.display())]
    DuplicateId {
        /// The key file.
        path: PathBuf,
        /// The repeated id.
        id: u16,
        /// Line of the first key with this id.
        first_line: usize,
        /// Line of the repeat.
        line: usize,
    },
    /// The file holds no key line.
    #[error("key file {path} contains no key (hint: run `weir keygen` to create one)", path = .path.display())]
    Empty {
        /// The key file.
        path: PathBuf,
    },
    /// The system random number generator failed.
    #[error("cannot generate a key for {path}: the system random number generator failed", path = .path.display())]
    Random {
        /// The key file.
        path: PathBuf,
    },
}

/// Creates a new key file at `path` holding one fresh random key with id `id`, mode 0600.
/// Refuses to overwrite an existing file.
pub fn generate(path: &Path, id: u16) -> Result<LinkKey, KeyError> {
    let mut secret = [0u8; SECRET_LEN];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| KeyError::Random {
            path: path.to_path_buf(),
        })?;
    let key = LinkKey { id, secret };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|error| match error.kind() {
            io::ErrorKind::AlreadyExists => KeyError::AlreadyExists {
                path: path.to_path_buf(),
            },
            _ => KeyError::Io {
                path: path.to_path_buf(),
                source: error,
            },
        })?;
    let text = format!(
        "# weir link key: keep it secret, mode 0600, identical on both hosts.\n\
         # The sender seals with the first key; the receiver accepts every key listed.\n\
         {}\n",
        key_line(&key)
    );
    let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
    if let Err(error) = written {
        // Leave no half-written key behind; a retry must be able to create the file.
        drop(file);
        let _ = fs::remove_file(path);
        return Err(KeyError::Io {
            path: path.to_path_buf(),
            source: error,
        });
    }
    Ok(key)
}

/// Loads the key file at `path`. See the module documentation for what is refused.
pub fn load(path: &Path) -> Result<KeyRing, KeyError> {
    let io_error = |error: io::Error| match error.kind() {
        io::ErrorKind::NotFound => KeyError::Missing {
            path: path.to_path_buf(),
        },
        _ => KeyError::Io {
            path: path.to_path_buf(),
            source: error,
        },
    };
    let file = fs::File::open(path).map_err(io_error)?;
    // Check the file we opened, not the path, so it cannot be swapped in between.
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|error| match error.kind() {
            io::ErrorKind::InvalidData => KeyError::BadLine {
                path: path.to_path_buf(),
                line: 0,
                reason: "the file is not UTF-8 text".to_owned(),
            },
            _ => io_error(error),
        })?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    parse(&text, path)
}

/// Parses the text of a key file; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<KeyRing, KeyError> {
    let mut keys: Vec<(usize, LinkKey)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let content = line.split_once('#').map_or(line, |(before, _)| before).trim();
        if content.is_empty() {
            continue;
        }
        let key = parse_line(content).map_err(|reason| KeyError::BadLine {
            path: path.to_path_buf(),
            line: number,
            reason: reason.to_owned(),
        })?;
        if let Some((first_line, _)) = keys.iter().find(|(_, known)| known.id == key.id) {
            return Err(KeyError::DuplicateId {
                path: path.to_path_buf(),
                id: key.id,
                first_line: *first_line,
                line: number,
            });
        }
        keys.push((number, key));
    }
    let mut keys = keys.into_iter().map(|(_, key)| key);
    let primary = keys.next().ok_or_else(|| KeyError::Empty {
        path: path.to_path_buf(),
    })?;
    Ok(KeyRing {
        primary,
        others: keys.collect(),
    })
}

/// One key line, without comment or surrounding spaces. Errors describe, never quote.
fn parse_line(content: &str) -> Result<LinkKey, &'static str> {
    let mut fields = content.split_whitespace();
    if fields.next() != Some(KEY_FORMAT) {
        return Err("a key line must start with `weir-psk-v1`");
    }
    let (Some(id), Some(hex), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err("a key line must be `weir-psk-v1 <key id> <64 lowercase hex characters>`");
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the key id must be a decimal number 0..=65535");
    }
    let id: u16 = id
        .parse()
        .map_err(|_| "the key id must be a decimal number 0..=65535")?;
    let secret = decode_secret(hex)?;
    Ok(LinkKey { id, secret })
}

fn decode_secret(hex: &str) -> Result<[u8; SECRET_LEN], &'static str> {
    if hex.len() != SECRET_LEN * 2 {
        return Err("the key must be exactly 64 hex characters (32 bytes)");
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Err("the key must be written in lowercase hex"),
        _ => Err("the key contains a character that is not hex"),
    };
    let mut secret = [0u8; SECRET_LEN];
    for (byte, pair) in secret.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let [high, low] = pair else {
            return Err("the key must be exactly 64 hex characters (32 bytes)");
        };
        *byte = (nibble(*high)? << 4) | nibble(*low)?;
    }
    Ok(secret)
}

fn key_line(key: &LinkKey) -> String {
    let mut hex = String::with_capacity(SECRET_LEN * 2);
    for byte in key.secret {
        hex.push_str(&format!("{byte:02x}"));
    }
    format!("{KEY_FORMAT} {} {hex}", key.id)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    const HEX_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const HEX_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weir-keys-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_with_mode(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn parse_text(text: &str) -> Result<KeyRing, KeyError> {
        parse(text, Path::new("link.key"))
    }

    #[test]
    fn generate_then_load_round_trips() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("link.key");
        let generated = generate(&path, 7).unwrap();
        let ring = load(&path).unwrap();
        assert_eq!(ring.len(), 1);
        assert_eq!(ring.primary().id, 7);
        assert_eq!(ring.primary().secret, generated.secret);
        assert_ne!(generated.secret, [0u8; 32]);
        let other = generate(&dir.join("other.key"), 7).unwrap();
        assert_ne!(other.secret, generated.secret);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn generate_sets_mode_0600_at_creation() {
        let dir = temp_dir("mode");
        let path = dir.join("link.key");
        generate(&path, 1).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn generate_refuses_to_overwrite() {
        let dir = temp_dir("overwrite");
        let path = dir.join("link.key");
        write_with_mode(&path, "precious\n", 0o600);
        let error = generate(&path, 1).unwrap_err();
        assert!(matches!(error, KeyError::AlreadyExists { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("already exists"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious\n");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn load_rejects_group_or_other_access() {
        let dir = temp_dir("perm");
        let path = dir.join("link.key");
        for mode in [0o644, 0o640, 0o604, 0o660] {
            write_with_mode(&path, &format!("weir-psk-v1 1 {HEX_A}\n"), mode);
            let error = load(&path).unwrap_err();
            assert!(
                matches!(error, KeyError::Permissions { mode: m, .. } if m == mode),
                "{error:?}"
            );
            let message = error.to_string();
            assert!(
                message.contains(&format!("chmod 600 {}", path.display())),
                "{message}"
            );
            assert!(!message.contains(HEX_A), "{message}");
        }
        write_with_mode(&path, &format!("weir-psk-v1 1 {HEX_A}\n"), 0o400);
        assert!(load(&path).is_ok());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn load_missing_file_hints_keygen() {
        let path = Path::new("/nonexistent/weir/link.key");
        let error = load(path).unwrap_err();
        assert!(matches!(error, KeyError::Missing { .. }), "{error:?}");
        assert!(error
            .to_string()
            .contains("run `weir keygen /nonexistent/weir/link.key`"));
    }

    #[test]
    fn load_rejects_a_directory() {
        let dir = temp_dir("dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(load(&dir), Err(KeyError::NotAFile { .. })));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn first_key_is_primary_and_all_are_accepted() {
        let text =
            format!("# rotation in progress\n\nweir-psk-v1 2 {HEX_B}   # new\n  weir-psk-v1 1 {HEX_A}\n");
        let ring = parse_text(&text).unwrap();
        assert_eq!(ring.len(), 2);
        assert!(!ring.is_empty());
        assert_eq!(ring.primary().id, 2);
        assert_eq!(ring.primary().secret[0], 0xff);
        assert_eq!(ring.get(1).unwrap().secret[1], 0x11);
        assert!(ring.get(3).is_none());
        let ids: Vec<u16> = ring.iter().map(|key| key.id).collect();
        assert_eq!(ids, [2, 1]);
        assert!(parse_text(&format!("weir-psk-v1 65535 {HEX_A}")).is_ok());
        assert!(parse_text(&format!("weir-psk-v1 0 {HEX_A}")).is_ok());
    }

    fn bad_line(text: &str) -> (usize, String) {
        match parse_text(text) {
            Err(KeyError::BadLine { line, reason, .. }) => (line, reason),
            other => panic!("expected BadLine, got {other:?}"),
        }
    }

    #[test]
    fn bad_lines_are_named_by_number_without_quoting_the_key() {
        let upper = HEX_A.to_uppercase();
        let short = &HEX_A[..63];
        let not_hex = format!("{}g", &HEX_A[..63]);
        let cases = [
            (format!("weir-psk-v1 1 {upper}"), "lowercase"),
            (format!("weir-psk-v1 1 {short}"), "64 hex"),
            (format!("weir-psk-v1 1 {HEX_A}0"), "64 hex"),
            (format!("weir-psk-v1 1 {not_hex}"), "not hex"),
            (format!("weir-psk-v2 1 {HEX_A}"), "must start with"),
            (HEX_A.to_owned(), "must start with"),
            (format!("weir-psk-v1 {HEX_A}"), "<key id>"),
            (format!("weir-psk-v1 1 {HEX_A} extra"), "<key id>"),
            (format!("weir-psk-v1 65536 {HEX_A}"), "0..=65535"),
            (format!("weir-psk-v1 -1 {HEX_A}"), "0..=65535"),
            (format!("weir-psk-v1 +1 {HEX_A}"), "0..=65535"),
            (format!("weir-psk-v1 0x1 {HEX_A}"), "0..=65535"),
        ];
        for (line, expected) in cases {
            let text = format!("# header\nweir-psk-v1 9 {HEX_B}\n{line}\n");
            let (number, reason) = bad_line(&text);
            assert_eq!(number, 3, "{line}");
            assert!(reason.contains(expected), "{line}: {reason}");
            let message = parse_text(&text).unwrap_err().to_string();
            assert!(message.starts_with("key file link.key:3: "), "{message}");
            for secret in [HEX_A, HEX_B, upper.as_str(), short] {
                assert!(!message.contains(secret), "{message}");
            }
        }
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let text = format!("weir-psk-v1 4 {HEX_A}\n# x\nweir-psk-v1 4 {HEX_B}\n");
        match parse_text(&text) {
            Err(KeyError::DuplicateId {
                id, first_line, line, ..
            }) => assert_eq!((id, first_line, line), (4, 1, 3)),
            other => panic!("expected DuplicateId, got {other:?}"),
        }
    }

    #[test]
    fn empty_files_are_rejected() {
        for text in ["", "\n\n", "# only a comment\n   # another\n"] {
            assert!(matches!(parse_text(text), Err(KeyError::Empty { .. })));
        }
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let key = LinkKey {
            id: 3,
            secret: [0xab; 32],
        };
        let ring = KeyRing::single(key.clone());
        for text in [format!("{key:?}"), format!("{ring:?}"), format!("{key:#?}")] {
            assert!(!text.contains("ab, ") && !text.contains("171"), "{text}");
            assert!(!text.contains("abab"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
    }

    #[test]
    fn generated_line_parses_back() {
        let key = LinkKey {
            id: 12,
            secret: [0x5a; 32],
        };
        let ring = parse_text(&key_line(&key)).unwrap();
        assert_eq!(ring.primary().id, 12);
        assert_eq!(ring.primary().secret, [0x5a; 32]);
    }
}
