//! Rate-limited security summaries of the receiver's drop counters, with named `event`
//! fields: `auth_failure` (forged, unknown key), `replay` (replayed, too old, stale session)
//! and `policy_drop` (frames this side's policy refuses). The caller decides the interval.

use crate::proto::recv::Counters;

/// Summarises authentication failures, replays and policy drops since `before`, one line
/// per kind that moved.
pub fn log_security(before: &Counters, now: &Counters) {
    let d = |f: fn(&Counters) -> u64| f(now).saturating_sub(f(before));
    let (forged, unknown_key) = (d(|c| c.drop_forged), d(|c| c.drop_unknown_key));
    if forged + unknown_key > 0 {
        tracing::warn!(
            event = "auth_failure",
            forged,
            unknown_key,
            total = now.drop_forged + now.drop_unknown_key,
            "datagrams failed authentication (forged, corrupted or wrong key)"
        );
    }
    let (replay, too_old, stale_session) = (
        d(|c| c.drop_replay),
        d(|c| c.drop_too_old),
        d(|c| c.drop_stale_session),
    );
    if replay + too_old + stale_session > 0 {
        tracing::warn!(
            event = "replay",
            replay,
            too_old,
            stale_session,
            "replayed or stale datagrams refused"
        );
    }
    let (unknown_channel, oversize) = (d(|c| c.drop_unknown_channel), d(|c| c.drop_oversize));
    if unknown_channel + oversize > 0 {
        tracing::warn!(
            event = "policy_drop",
            unknown_channel,
            oversize,
            "frames refused by this side's policy"
        );
    }
}
