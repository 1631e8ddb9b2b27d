//! What a policy reload (SIGHUP) may change while the daemons run.
//!
//! Live: each channel's `allow_from`, `filter`, `on_violation`, `rate`, `priority` and
//! `max_message`. Everything else — the link, the `[send]` and `[recv]` sections, the set of
//! channels, their sources and sinks — shapes sockets, FEC blocks and sessions, and needs a
//! restart. A reload that touches any of it is refused whole, with the list of what would need
//! the restart, and the running policy stays in force: the policy in force is always exactly
//! one file's, so its fingerprint means what it says.

use std::path::Path;

use crate::policy::Policy;

/// Reads the policy at `path` for a reload of `in_force`: the new policy when it is valid and
/// changes only what can change live; otherwise `None`, after logging why the policy in force
/// stays (every validation error, or every change that needs a restart).
pub fn load_live(path: &Path, in_force: &Policy) -> Option<Policy> {
    let new = match crate::policy::load(path) {
        Ok(p) => p,
        Err(error) => {
            tracing::error!("reload refused, the policy in force stays: {error}");
            return None;
        }
    };
    let needs = restart_needed(in_force, &new);
    if !needs.is_empty() {
        tracing::error!(
            changes = %needs.join("; "),
            "reload refused: these changes need a restart; the policy in force stays"
        );
        return None;
    }
    Some(new)
}

/// The fields of `new` that differ from `old` and cannot change without a restart; empty
/// when the reload can be applied live.
pub fn restart_needed(old: &Policy, new: &Policy) -> Vec<String> {
    let mut needs = Vec::new();
    if old.link != new.link {
        needs.push("[link]".to_owned());
    }
    if old.send != new.send {
        needs.push("[send]".to_owned());
    }
    if old.recv != new.recv {
        needs.push("[recv]".to_owned());
    }
    let names = |p: &Policy| p.channels.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    if names(old) != names(new) {
        needs.push("the list of channels (added, removed or reordered)".to_owned());
    }
    for (a, b) in old.channels.iter().zip(&new.channels) {
        if a.name == b.name && (a.source != b.source || a.sinks != b.sinks) {
            needs.push(format!("channel {}: source or sinks", a.name));
        }
    }
    needs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn policy(extra: &str, source: &str) -> Policy {
        let text = format!(
            "[link]\nkey_file = \"k\"\n[send]\nto = \"127.0.0.1:5800\"\n\n[[channel]]\nname = \"a\"\nsource = {{ udp = \"{source}\" }}\n{extra}"
        );
        crate::policy::parse(&text, Path::new("p.toml")).unwrap()
    }

    #[test]
    fn channel_rules_change_live_structure_does_not() {
        let old = policy("", "127.0.0.1:1");
        assert!(restart_needed(&old, &policy("max_message = \"1 KiB\"", "127.0.0.1:1")).is_empty());
        assert_eq!(
            restart_needed(&old, &policy("", "127.0.0.1:2")),
            ["channel a: source or sinks"]
        );
    }
}
