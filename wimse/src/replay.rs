//! A bounded, thread-safe cache of WPT `jti` values (draft-ietf-wimse-wpt §4: replay cache per sender over the
//! validity window).
//!
//! Entries expire at the token's `exp` plus the clock skew, so a jti is remembered for as long as its token could be
//! accepted. When the cache is full of unexpired entries it fails closed (`overloaded`): evicting a live entry would
//! reopen a replay window.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crate::error::WimseError;

/// Default capacity.
pub const DEFAULT_CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
struct State {
    /// key → expiry.
    entries: HashMap<String, u64>,
    /// (expiry, key), to purge in expiry order.
    by_expiry: BTreeSet<(u64, String)>,
}

impl State {
    fn purge(&mut self, now: u64) {
        while let Some((exp, _)) = self.by_expiry.first() {
            if *exp > now {
                break;
            }
            if let Some((_, key)) = self.by_expiry.pop_first() {
                self.entries.remove(&key);
            }
        }
    }
}

/// The replay cache. Share one per relying party (it is `Sync`).
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    state: Mutex<State>,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl ReplayCache {
    /// A cache holding at most `capacity` live entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Record `key` (sender and jti) until `expires_at`; refuse it if already recorded and not yet expired at `now`.
    /// Check and insert are one atomic step.
    pub fn check_and_insert(&self, key: &str, expires_at: u64, now: u64) -> Result<(), WimseError> {
        // A poisoned lock only means another thread panicked mid-update of plain maps; the data stays consistent
        // enough to keep refusing replays, so carry on with it.
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.purge(now);
        if st.entries.contains_key(key) {
            return Err(WimseError::Replayed);
        }
        if expires_at <= now {
            // Nothing to remember: such a token is refused as expired anyway.
            return Ok(());
        }
        if st.entries.len() >= self.capacity {
            return Err(WimseError::Overloaded);
        }
        st.entries.insert(key.to_owned(), expires_at);
        st.by_expiry.insert((expires_at, key.to_owned()));
        Ok(())
    }

    /// Live entries (after purging at `now`).
    pub fn len(&self, now: u64) -> usize {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.purge(now);
        st.entries.len()
    }

    /// Whether no live entry remains at `now`.
    pub fn is_empty(&self, now: u64) -> bool {
        self.len(now) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn second_use_is_replayed_until_expiry() {
        let c = ReplayCache::new(10);
        c.check_and_insert("a", 100, 50).unwrap();
        assert_eq!(
            c.check_and_insert("a", 100, 60).unwrap_err().code(),
            "replayed"
        );
        // After expiry the entry is gone (the token itself would then be refused as expired).
        c.check_and_insert("a", 200, 100).unwrap();
    }

    #[test]
    fn full_cache_fails_closed_then_recovers_after_expiry() {
        let c = ReplayCache::new(2);
        c.check_and_insert("a", 100, 0).unwrap();
        c.check_and_insert("b", 150, 0).unwrap();
        assert_eq!(
            c.check_and_insert("c", 150, 10).unwrap_err().code(),
            "overloaded"
        );
        assert_eq!(c.len(10), 2);
        c.check_and_insert("c", 150, 100).unwrap();
        assert_eq!(c.len(100), 2);
        assert!(c.is_empty(150));
    }

    #[test]
    fn concurrent_inserts_of_one_key_accept_exactly_one() {
        let c = Arc::new(ReplayCache::new(1000));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || c.check_and_insert("same", 100, 1).is_ok())
            })
            .collect();
        let ok = handles
            .into_iter()
            .filter(|_| true)
            .map(|h| h.join().unwrap())
            .filter(|b| *b)
            .count();
        assert_eq!(ok, 1);
    }
}
