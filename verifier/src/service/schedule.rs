//! When a shared key signs and how long it stays trusted, computed from the keys' not-before times alone, so every
//! replica reading the same keys directory makes the same choice at the same time without talking to the others.
//!
//! A key is written with a `not_before` (unix seconds) some time ahead of now: replicas load it and publish it
//! (the JWKS for a signing key) while the previous key still signs. At `not_before` it becomes the active key
//! everywhere. The key it supersedes stays *live* — published, or accepted for nonces — for `retain` after that,
//! long enough for everything it made to expire; then rotation prunes it.
//!
//! Both the WIT signing keys and the challenge MAC keys follow this schedule; the callers keep their keys in a slice
//! sorted by `not_before` (strictly increasing, which file names keyed by `not_before` guarantee) and ask here.

use std::time::Duration;

/// Index of the key that is active at `now` in `not_befores` (sorted ascending, non-empty): the newest whose
/// not-before has passed. A clock behind every key's not-before uses the earliest key (already published
/// everywhere) rather than failing. `None` only for an empty slice.
pub fn active_index(not_befores: &[u64], now: u64) -> Option<usize> {
    if not_befores.is_empty() {
        return None;
    }
    Some(not_befores.iter().rposition(|&nb| nb <= now).unwrap_or(0))
}

/// Whether key `i` is live at `now`: it has no successor, or its successor's not-before is less than `retain` ago
/// (or still ahead). Keys ahead of their not-before are live, which is what pre-publishes them.
pub fn is_live(not_befores: &[u64], i: usize, now: u64, retain: Duration) -> bool {
    match not_befores.get(i + 1) {
        None => i < not_befores.len(),
        Some(&next) => next.saturating_add(retain.as_secs()) > now,
    }
}

/// The not-before for a key added at `now` that should activate `ahead` later: never at or before the newest
/// existing key's, so not-befores stay strictly increasing and a later rotation always wins.
pub fn next_not_before(not_befores: &[u64], now: u64, ahead: Duration) -> u64 {
    let wanted = now.saturating_add(ahead.as_secs());
    match not_befores.last() {
        Some(&newest) if newest >= wanted => newest.saturating_add(1),
        _ => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETAIN: Duration = Duration::from_secs(100);

    #[test]
    fn the_newest_key_whose_not_before_has_passed_is_active() {
        let nbs = [0, 1_000, 2_000];
        assert_eq!(active_index(&nbs, 0), Some(0));
        assert_eq!(active_index(&nbs, 999), Some(0));
        assert_eq!(active_index(&nbs, 1_000), Some(1));
        assert_eq!(active_index(&nbs, 1_999), Some(1));
        assert_eq!(active_index(&nbs, 2_000), Some(2));
        assert_eq!(active_index(&nbs, u64::MAX), Some(2));
        assert_eq!(active_index(&[], 5), None);
    }

    #[test]
    fn a_clock_behind_every_not_before_uses_the_earliest_key() {
        assert_eq!(active_index(&[500, 600], 10), Some(0));
    }

    #[test]
    fn a_superseded_key_is_live_for_retain_after_its_successor_activates_and_a_pending_key_is_live_at_once(
    ) {
        let nbs = [0, 1_000, 2_000];
        // Before 1_000: key 0 signs, keys 1 and 2 are pre-published.
        assert!((0..3).all(|i| is_live(&nbs, i, 500, RETAIN)));
        // Key 0 is retained until 1_000 + retain.
        assert!(is_live(&nbs, 0, 1_099, RETAIN));
        assert!(!is_live(&nbs, 0, 1_100, RETAIN));
        // The newest is always live; an index past the end never is.
        assert!(is_live(&nbs, 2, u64::MAX, RETAIN));
        assert!(!is_live(&nbs, 3, 0, RETAIN));
    }

    #[test]
    fn next_not_before_is_ahead_of_now_and_strictly_after_the_newest() {
        let ahead = Duration::from_secs(300);
        assert_eq!(next_not_before(&[], 1_000, ahead), 1_300);
        assert_eq!(next_not_before(&[0], 1_000, ahead), 1_300);
        // Rotating twice within the pre-publication window: the second key follows the first by a second.
        assert_eq!(next_not_before(&[0, 1_300], 1_000, ahead), 1_301);
        assert_eq!(next_not_before(&[0, 1_300], 1_000, Duration::ZERO), 1_301);
    }
}
