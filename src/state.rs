//! The receiver's state file: the replay floor that must survive a restart
//! ([`ReplayFloor`]). Text, three lines:
//!
//! ```text
//! weir-recv-state v1
//! session 6553f10000000001
//! packet_floor 65536
//! ```
//!
//! Written to a temporary file beside it, synced, renamed over the old one, and the
//! directory synced, so a crash leaves either the old floor or the new one, never a torn file.
//! A file that cannot be read or parsed is an error: the daemon refuses to start rather than
//! forget its floor (delete the file only if replays of earlier traffic do not matter).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::proto::recv::ReplayFloor;

const MAGIC: &str = "weir-recv-state v1";

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{path}: {source} (hint: the directory must exist and be writable by weir-recv)")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not a weir-recv state file.
    #[error("{path}: not a valid weir-recv state file ({why}); delete it only if replays of traffic received before it was written do not matter")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
}

/// Reads the floor; `None` when the file does not exist yet (first start).
pub fn load(path: &Path) -> Result<Option<ReplayFloor>, StateError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    let corrupt = |why| StateError::Corrupt {
        path: path.to_owned(),
        why,
    };
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(corrupt("bad first line"));
    }
    let session = lines
        .next()
        .and_then(|l| l.strip_prefix("session "))
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .ok_or_else(|| corrupt("bad session line"))?;
    let packet_floor = lines
        .next()
        .and_then(|l| l.strip_prefix("packet_floor "))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt("bad packet_floor line"))?;
    Ok(Some(ReplayFloor {
        session,
        packet_floor,
    }))
}

/// Stores `floor` durably (write, sync, rename, sync the directory).
pub fn store(path: &Path, floor: ReplayFloor) -> Result<(), StateError> {
    let io_error = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    // Private to weir-recv: weir-deliver, in the same group, has no business reading it.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_error)?;
    write!(
        file,
        "{MAGIC}\nsession {:016x}\npacket_floor {}\n",
        floor.session, floor.packet_floor
    )
    .map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    fs::rename(&tmp, path).map_err(io_error)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error)?;
    Ok(())
}

/// Checks at start-up that the state file's directory is writable, so a misconfiguration is
/// reported before traffic arrives rather than at the first floor.
pub fn check_writable(path: &Path) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    File::create(&tmp)
        .and_then(|_| fs::remove_file(&tmp))
        .map_err(|source| StateError::Io {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_corrupt() {
        let dir = std::env::temp_dir().join(format!("weir-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("recv.state");
        let _ = fs::remove_file(&path);
        assert!(load(&path).unwrap().is_none());
        check_writable(&path).unwrap();
        let floor = ReplayFloor {
            session: 0x6553_f100_0000_0001,
            packet_floor: 65_536,
        };
        store(&path, floor).unwrap();
        assert_eq!(load(&path).unwrap(), Some(floor));
        fs::write(&path, "weir-recv-state v1\nsession zz\n").unwrap();
        assert!(matches!(load(&path), Err(StateError::Corrupt { .. })));
        let missing_dir = dir.join("no/such/dir/recv.state");
        assert!(matches!(check_writable(&missing_dir), Err(StateError::Io { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }
}
