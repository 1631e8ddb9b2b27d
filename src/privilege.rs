//! Dropping root after start-up: both daemons bind their sockets and read their key as root
//! (when started so), then become an unprivileged user for the rest of their life.

use nix::unistd::{setgid, setgroups, setuid, Gid, Uid, User};

/// Why the switch did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// No such user in the user database.
    #[error("user {0:?} does not exist (hint: create it, e.g. with dist/weir.sysusers.conf)")]
    NoSuchUser(String),
    /// Looking the user up failed.
    #[error("cannot look up user {0:?}: {1}")]
    Lookup(String, nix::Error),
    /// Started unprivileged as another user: switching is impossible.
    #[error("--user {0:?} needs the daemon to start as root (it runs as uid {1})")]
    NotRoot(String, u32),
    /// A set*id call failed.
    #[error("cannot switch to user {0:?}: {1}")]
    Switch(String, nix::Error),
    /// After the switch, root could be regained: refuse to run.
    #[error("after switching to {0:?} the process could become root again; refusing to run")]
    Regainable(String),
}

/// Switches the whole process (every thread) to `name`'s uid, gid and no supplementary
/// groups. A no-op when already running as that user.
pub fn drop_to(name: &str) -> Result<(), PrivilegeError> {
    let user = User::from_name(name)
        .map_err(|e| PrivilegeError::Lookup(name.to_owned(), e))?
        .ok_or_else(|| PrivilegeError::NoSuchUser(name.to_owned()))?;
    let me = Uid::effective();
    if me == user.uid {
        return Ok(());
    }
    if !me.is_root() {
        return Err(PrivilegeError::NotRoot(name.to_owned(), me.as_raw()));
    }
    let switch = |e| PrivilegeError::Switch(name.to_owned(), e);
    setgroups(&[user.gid]).map_err(switch)?;
    setgid(user.gid).map_err(switch)?;
    setuid(user.uid).map_err(switch)?;
    if setuid(Uid::from_raw(0)).is_ok() || setgid(Gid::from_raw(0)).is_ok() && user.gid.as_raw() != 0 {
        return Err(PrivilegeError::Regainable(name.to_owned()));
    }
    tracing::info!(
        user = name,
        uid = user.uid.as_raw(),
        gid = user.gid.as_raw(),
        "dropped root privileges"
    );
    Ok(())
}

/// Warns when a daemon keeps running as root.
pub fn warn_if_root() {
    if Uid::effective().is_root() {
        tracing::warn!("running as root: pass --user NAME to drop privileges after start-up");
    }
}
