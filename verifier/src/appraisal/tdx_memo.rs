//! A bounded memo of successful TDX appraisals per platform, owned by the verifier instance:
//! it lives in that instance's [`super::TrustAnchors`] (an entry is only true under the anchors it was made with, so
//! the two share a lifetime) and is handed to the core with them; nothing here is process-wide.
//!
//! The key covers everything the full path's verdict depends on except REPORTDATA and the quote signature: the
//! collateral identity, the root in use and the simulator-trust mode, the quote header, the body with REPORTDATA
//! zeroed and the signature data without the 64-byte quote signature (attestation key, QE report, its signature, QE
//! auth data, PCK chain). The value is what the full path took from dcap-qvl plus the intersection of every time
//! window the full path checks. A hit re-verifies the quote signature (ring, P-256) over the received bytes; only
//! successes are stored, and a hit outside its window falls back to the full path.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Entries kept before the memo is cleared (simple eviction).
pub(crate) const CAPACITY: usize = 4096;

/// An inclusive validity window `[not_before, not_after]` in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) not_before: u64,
    pub(crate) not_after: u64,
}

impl Window {
    /// No constraint yet.
    pub(crate) const ALL: Window = Window {
        not_before: 0,
        not_after: u64::MAX,
    };

    /// The intersection with `[not_before, not_after]`.
    pub(crate) fn and(self, not_before: u64, not_after: u64) -> Window {
        Window {
            not_before: self.not_before.max(not_before),
            not_after: self.not_after.min(not_after),
        }
    }

    pub(crate) fn contains(self, now: u64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// What the full path took from dcap-qvl and the PCK certificate, and when it stays true.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) window: Window,
    pub(crate) fmspc: [u8; 6],
    pub(crate) ppid: Vec<u8>,
    pub(crate) tcb_status: String,
    pub(crate) advisory_ids: Vec<String>,
    pub(crate) pck: super::tdx::PckFacts,
}

/// The appraisal memos of one verifier instance.
#[derive(Debug, Default)]
pub struct Memos {
    tdx: Mutex<HashMap<[u8; 32], Entry>>,
    /// Verified RSA-PSS certificate signatures, keyed by the exact bytes of issuer and subject.
    links: Mutex<HashSet<[u8; 32]>>,
    hits: AtomicU64,
    misses: AtomicU64,
    stores: AtomicU64,
}

impl Memos {
    fn tdx(&self) -> MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // The map holds only complete entries (inserted under the lock), so a poisoned lock still guards a sound map.
        self.tdx.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry for `key` usable at `now`, counted as a hit; otherwise counted as a miss.
    pub(crate) fn lookup(&self, key: &[u8; 32], now: u64) -> Option<Entry> {
        let found = self
            .tdx()
            .get(key)
            .filter(|e| e.window.contains(now))
            .cloned();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remember a successful verdict (clearing the memo first when it is full).
    pub(crate) fn store(&self, key: [u8; 32], entry: Entry) {
        let mut m = self.tdx();
        if m.len() >= CAPACITY && !m.contains_key(&key) {
            m.clear();
        }
        m.insert(key, entry);
        self.stores.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn link_verified(&self, id: &[u8; 32]) -> bool {
        self.links.lock().map(|m| m.contains(id)).unwrap_or(false)
    }

    pub(crate) fn remember_link(&self, id: [u8; 32]) {
        if let Ok(mut m) = self.links.lock() {
            if m.len() >= CAPACITY {
                m.clear();
            }
            m.insert(id);
        }
    }

    /// This instance's TDX memo activity.
    pub fn stats(&self) -> TdxMemoStats {
        TdxMemoStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stores: self.stores.load(Ordering::Relaxed),
        }
    }
}

/// Memo activity of one verifier instance.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TdxMemoStats {
    /// Lookups answered from the memo (the quote signature was then checked on the received bytes).
    pub hits: u64,
    /// Lookups that went to the full path (no entry, or outside its window).
    pub misses: u64,
    /// Successful full-path verdicts stored.
    pub stores: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(nb: u64, na: u64) -> Entry {
        Entry {
            window: Window {
                not_before: nb,
                not_after: na,
            },
            fmspc: [1; 6],
            ppid: vec![2; 16],
            tcb_status: "UpToDate".into(),
            advisory_ids: vec![],
            pck: super::super::tdx::PckFacts {
                pce_id: [0, 0],
                sgx_type: 0,
                dynamic_platform: None,
                cached_keys: None,
                smt_enabled: None,
            },
        }
    }

    #[test]
    fn windows_are_inclusive_intersections() {
        let w = Window::ALL.and(10, 100).and(20, 200);
        assert_eq!(
            w,
            Window {
                not_before: 20,
                not_after: 100
            }
        );
        assert!(w.contains(20) && w.contains(100));
        assert!(!w.contains(19) && !w.contains(101));
        assert!(!Window::ALL.and(50, 40).contains(45));
    }

    #[test]
    fn an_entry_is_a_hit_only_inside_its_window() {
        let memos = Memos::default();
        let key = [0xa1; 32];
        memos.store(key, entry(100, 200));
        assert_eq!(memos.lookup(&key, 150), Some(entry(100, 200)));
        assert_eq!(memos.lookup(&key, 99), None);
        assert_eq!(memos.lookup(&key, 201), None);
        assert_eq!(memos.lookup(&[0xa2; 32], 150), None);
        assert_eq!(memos.stats().hits, 1);
        assert_eq!(memos.stats().misses, 3);
        assert_eq!(memos.stats().stores, 1);
    }

    #[test]
    fn two_instances_do_not_share_entries() {
        let (a, b) = (Memos::default(), Memos::default());
        a.store([1; 32], entry(0, 10));
        assert!(a.lookup(&[1; 32], 5).is_some());
        assert!(b.lookup(&[1; 32], 5).is_none());
    }
}
