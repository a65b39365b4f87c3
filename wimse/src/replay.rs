//! A bounded, thread-safe cache of WPT `jti` values (draft-ietf-wimse-wpt §4: replay cache per sender over the
//! validity window).
//!
//! Entries expire at the token's `exp` plus the clock skew, so a jti is remembered for as long as its token could be
//! accepted. Three bounds keep one sender from harming the others:
//! 1. a `jti` longer than [`ReplayLimits::max_jti_len`] is refused (`jti_too_long`), so an entry's size is bounded;
//! 2. each sender holds at most [`ReplayLimits::per_sender`] live entries (`replay_quota_exceeded`): a sender that
//!    floods the cache fills only its own quota and is refused, while every other sender keeps its room;
//! 3. the whole cache holds at most [`ReplayLimits::capacity`] live entries; when full of unexpired entries it fails
//!    closed (`overloaded`). No live entry is ever evicted early: that would reopen a replay window.
//!
//! The sender is the WIT `sub` (the authenticated Workload Identifier), not the `cnf` key thumbprint: a workload gets a
//! new key at every renewal, and could re-attest to multiply its quota if the quota were per key; per identifier it is
//! bounded by what the identity is allowed, whatever the number of keys or replicas. Replicas of one workload share
//! one quota, so size [`ReplayLimits::per_sender`] for the busiest identity.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::error::WimseError;

/// Default total capacity (live entries).
pub const DEFAULT_CAPACITY: usize = 100_000;
/// Default live entries per sender (a tenth of the total: ten senders at their quota still leave the cache usable).
pub const DEFAULT_PER_SENDER: usize = 10_000;
/// Default longest `jti`, bytes. The draft recommends 128 random bits (22 base64url characters); a UUID is 36.
pub const DEFAULT_MAX_JTI_LEN: usize = 128;

/// The bounds of a [`ReplayCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Live entries in total (at least 1).
    pub capacity: usize,
    /// Live entries per sender (at least 1, at most `capacity`).
    pub per_sender: usize,
    /// Longest `jti` accepted, bytes (at least 1).
    pub max_jti_len: usize,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            per_sender: DEFAULT_PER_SENDER,
            max_jti_len: DEFAULT_MAX_JTI_LEN,
        }
    }
}

impl ReplayLimits {
    fn normalised(self) -> Self {
        let capacity = self.capacity.max(1);
        Self {
            capacity,
            per_sender: self.per_sender.clamp(1, capacity),
            max_jti_len: self.max_jti_len.max(1),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// (sender, jti) → expiry. The sender string is shared by all its entries.
    entries: HashMap<(Arc<str>, String), u64>,
    /// (expiry, sender, jti), to purge in expiry order.
    by_expiry: BTreeSet<(u64, Arc<str>, String)>,
    /// Live entries per sender; a sender with none is removed.
    per_sender: HashMap<Arc<str>, usize>,
}

impl State {
    fn purge(&mut self, now: u64) {
        while let Some((exp, _, _)) = self.by_expiry.first() {
            if *exp > now {
                break;
            }
            if let Some((_, sender, jti)) = self.by_expiry.pop_first() {
                if let Some(n) = self.per_sender.get_mut(&sender) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_sender.remove(&sender);
                    }
                }
                self.entries.remove(&(sender, jti));
            }
        }
    }

    /// The shared copy of `sender` if it has entries, else a new one.
    fn sender_key(&self, sender: &str) -> Arc<str> {
        self.per_sender
            .get_key_value(sender)
            .map(|(k, _)| Arc::clone(k))
            .unwrap_or_else(|| Arc::from(sender))
    }
}

/// The replay cache. Share one per relying party across threads.
#[derive(Debug)]
pub struct ReplayCache {
    limits: ReplayLimits,
    state: Mutex<State>,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::with_limits(ReplayLimits::default())
    }
}

impl ReplayCache {
    /// A cache holding at most `capacity` live entries (at least 1), with the default per-sender quota (capped at
    /// `capacity`) and `jti` length cap.
    pub fn new(capacity: usize) -> Self {
        Self::with_limits(ReplayLimits {
            capacity,
            ..ReplayLimits::default()
        })
    }

    /// A cache with these bounds.
    pub fn with_limits(limits: ReplayLimits) -> Self {
        Self {
            limits: limits.normalised(),
            state: Mutex::new(State::default()),
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> ReplayLimits {
        self.limits
    }

    /// Record `jti` from `sender` until `expires_at`; refuse it if already recorded and not yet expired at `now`.
    /// Check and insert are one atomic step. Refusals, in order: `jti_too_long`, `replayed`,
    /// `replay_quota_exceeded` (this sender's quota), `overloaded` (the whole cache).
    pub fn check_and_insert(
        &self,
        sender: &str,
        jti: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<(), WimseError> {
        if jti.len() > self.limits.max_jti_len {
            return Err(WimseError::JtiTooLong {
                len: jti.len(),
                max: self.limits.max_jti_len,
            });
        }
        // A poisoned lock only means another thread panicked mid-update of plain maps; the data stays consistent
        // enough to keep refusing replays, so carry on with it.
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.purge(now);
        let sender = st.sender_key(sender);
        let key = (sender, jti.to_owned());
        if st.entries.contains_key(&key) {
            return Err(WimseError::Replayed);
        }
        if expires_at <= now {
            // Nothing to remember: such a token is refused as expired anyway.
            return Ok(());
        }
        if st.per_sender.get(&key.0).copied().unwrap_or(0) >= self.limits.per_sender {
            return Err(WimseError::ReplayQuotaExceeded {
                quota: self.limits.per_sender,
            });
        }
        if st.entries.len() >= self.limits.capacity {
            return Err(WimseError::Overloaded);
        }
        *st.per_sender.entry(Arc::clone(&key.0)).or_insert(0) += 1;
        st.by_expiry
            .insert((expires_at, Arc::clone(&key.0), key.1.clone()));
        st.entries.insert(key, expires_at);
        Ok(())
    }

    /// Live entries (after purging at `now`).
    pub fn len(&self, now: u64) -> usize {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.purge(now);
        st.entries.len()
    }

    /// Live entries of one sender (after purging at `now`).
    pub fn len_of(&self, sender: &str, now: u64) -> usize {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.purge(now);
        st.per_sender.get(sender).copied().unwrap_or(0)
    }

    /// Whether no live entry remains at `now`.
    pub fn is_empty(&self, now: u64) -> bool {
        self.len(now) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(capacity: usize, per_sender: usize) -> ReplayLimits {
        ReplayLimits {
            capacity,
            per_sender,
            max_jti_len: 16,
        }
    }

    #[test]
    fn second_use_is_replayed_until_expiry() {
        let c = ReplayCache::new(10);
        c.check_and_insert("s", "a", 100, 50).unwrap();
        assert_eq!(
            c.check_and_insert("s", "a", 100, 60).unwrap_err().code(),
            "replayed"
        );
        // After expiry the entry is gone (the token itself would then be refused as expired).
        c.check_and_insert("s", "a", 200, 100).unwrap();
    }

    #[test]
    fn the_same_jti_from_two_senders_is_two_entries() {
        let c = ReplayCache::new(10);
        c.check_and_insert("s1", "a", 100, 0).unwrap();
        c.check_and_insert("s2", "a", 100, 0).unwrap();
        assert_eq!(c.len(0), 2);
    }

    #[test]
    fn full_cache_fails_closed_then_recovers_after_expiry() {
        let c = ReplayCache::new(2);
        c.check_and_insert("s1", "a", 100, 0).unwrap();
        c.check_and_insert("s2", "b", 150, 0).unwrap();
        assert_eq!(
            c.check_and_insert("s3", "c", 150, 10).unwrap_err().code(),
            "overloaded"
        );
        assert_eq!(c.len(10), 2);
        c.check_and_insert("s3", "c", 150, 100).unwrap();
        assert_eq!(c.len(100), 2);
        assert!(c.is_empty(150));
    }

    #[test]
    fn a_flooding_sender_fills_only_its_quota_and_never_evicts_another() {
        let c = ReplayCache::with_limits(limits(10, 3));
        c.check_and_insert("victim", "v1", 1000, 0).unwrap();
        for i in 0..3 {
            c.check_and_insert("flood", &format!("f{i}"), 1000, 0)
                .unwrap();
        }
        for i in 3..100 {
            assert_eq!(
                c.check_and_insert("flood", &format!("f{i}"), 1000, 1)
                    .unwrap_err()
                    .code(),
                "replay_quota_exceeded"
            );
        }
        assert_eq!(c.len_of("flood", 1), 3);
        // The victim's entry is still there (a replay is still caught) and it can keep adding proofs.
        assert_eq!(
            c.check_and_insert("victim", "v1", 1000, 2)
                .unwrap_err()
                .code(),
            "replayed"
        );
        for i in 2..=3 {
            c.check_and_insert("victim", &format!("v{i}"), 1000, 2)
                .unwrap();
        }
        // The flooder's quota frees up as its entries expire.
        assert_eq!(c.len_of("flood", 1000), 0);
        c.check_and_insert("flood", "f-late", 2000, 1000).unwrap();
    }

    #[test]
    fn quota_counts_live_entries_only() {
        let c = ReplayCache::with_limits(limits(10, 2));
        c.check_and_insert("s", "a", 10, 0).unwrap();
        c.check_and_insert("s", "b", 20, 0).unwrap();
        assert_eq!(
            c.check_and_insert("s", "c", 30, 5).unwrap_err().code(),
            "replay_quota_exceeded"
        );
        // At 10 "a" expired: room for one more.
        c.check_and_insert("s", "c", 30, 10).unwrap();
        assert_eq!(c.len_of("s", 10), 2);
    }

    #[test]
    fn overlong_jti_is_refused_before_anything_is_stored() {
        let c = ReplayCache::with_limits(limits(10, 10));
        c.check_and_insert("s", &"j".repeat(16), 100, 0).unwrap();
        let e = c
            .check_and_insert("s", &"j".repeat(17), 100, 0)
            .unwrap_err();
        assert_eq!(e.code(), "jti_too_long");
        assert_eq!(e, WimseError::JtiTooLong { len: 17, max: 16 });
        assert_eq!(c.len(0), 1);
    }

    #[test]
    fn limits_are_normalised() {
        let l = ReplayCache::with_limits(ReplayLimits {
            capacity: 0,
            per_sender: 50,
            max_jti_len: 0,
        })
        .limits();
        assert_eq!((l.capacity, l.per_sender, l.max_jti_len), (1, 1, 1));
        assert_eq!(ReplayCache::new(5).limits().per_sender, 5);
    }

    #[test]
    fn concurrent_inserts_of_one_key_accept_exactly_one() {
        let c = Arc::new(ReplayCache::new(1000));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || c.check_and_insert("s", "same", 100, 1).is_ok())
            })
            .collect();
        let ok = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|b| *b)
            .count();
        assert_eq!(ok, 1);
    }
}
