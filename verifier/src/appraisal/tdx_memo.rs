//! A bounded, process-wide memo of successful TDX appraisals per platform (performance.md §2.3).
//!
//! The key covers everything the full path's verdict depends on except REPORTDATA and the quote signature: the
//! collateral identity, the root in use and the simulator-trust mode, the quote header, the body with REPORTDATA
//! zeroed and the signature data without the 64-byte quote signature (attestation key, QE report, its signature, QE
//! auth data, PCK chain). The value is what the full path took from dcap-qvl plus the intersection of every time
//! window the full path checks. A hit re-verifies the quote signature (ring, P-256) over the received bytes; only
//! successes are stored, and a hit outside its window falls back to the full path.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

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

fn memo() -> MutexGuard<'static, HashMap<[u8; 32], Entry>> {
    static MEMO: OnceLock<Mutex<HashMap<[u8; 32], Entry>>> = OnceLock::new();
    let m = MEMO.get_or_init(|| Mutex::new(HashMap::new()));
    // The map holds only complete entries (inserted under the lock), so a poisoned lock still guards a sound map.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The entry for `key` usable at `now`, counted as a hit; otherwise counted as a miss.
pub(crate) fn lookup(key: &[u8; 32], now: u64) -> Option<Entry> {
    let found = memo().get(key).filter(|e| e.window.contains(now)).cloned();
    STATS.with(|s| {
        let mut v = s.get();
        if found.is_some() {
            v.hits += 1;
        } else {
            v.misses += 1;
        }
        s.set(v);
    });
    found
}

/// Remember a successful verdict (clearing the memo first when it is full).
pub(crate) fn store(key: [u8; 32], entry: Entry) {
    let mut m = memo();
    if m.len() >= CAPACITY && !m.contains_key(&key) {
        m.clear();
    }
    m.insert(key, entry);
    STATS.with(|s| {
        let mut v = s.get();
        v.stores += 1;
        s.set(v);
    });
}

/// Memo activity of the calling thread (appraisal runs synchronously on the caller's thread, so tests running in
/// parallel do not see each other's counts).
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

thread_local! {
    static STATS: Cell<TdxMemoStats> = const { Cell::new(TdxMemoStats { hits: 0, misses: 0, stores: 0 }) };
}

/// The calling thread's memo counters (for tests and benchmarks).
#[doc(hidden)]
pub fn tdx_memo_stats() -> TdxMemoStats {
    STATS.with(Cell::get)
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
        let key = [0xa1; 32];
        store(key, entry(100, 200));
        let before = tdx_memo_stats();
        assert_eq!(lookup(&key, 150), Some(entry(100, 200)));
        assert_eq!(lookup(&key, 99), None);
        assert_eq!(lookup(&key, 201), None);
        assert_eq!(lookup(&[0xa2; 32], 150), None);
        let after = tdx_memo_stats();
        assert_eq!(after.hits - before.hits, 1);
        assert_eq!(after.misses - before.misses, 3);
    }
}
