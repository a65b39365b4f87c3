//! Bounded memos of appraisal verdicts, owned by the verifier instance: they live in that instance's
//! [`super::TrustAnchors`] (an entry is only true under the anchors it was made with, so the two share a lifetime)
//! and are handed to the core with them; nothing here is process-wide.
//!
//! TDX, per platform: the key covers everything the full path's verdict depends on except REPORTDATA and the quote
//! signature: the collateral identity, the pinned root and the simulator-trust mode, the quote header, the body with
//! REPORTDATA zeroed and the signature data without the 64-byte quote signature (attestation key, QE report, its
//! signature, QE auth data, PCK chain). The value is the verdict, an acceptance (what the full path took from
//! dcap-qvl) or a refusal of the engine that the key alone decides (e.g. `tcb_not_supported`), plus the intersection
//! of every time window the full path checks. A hit re-verifies the quote signature (aws-lc-rs, P-256) over the
//! received bytes first; a hit outside its window falls back to the full path, and so does a refusal hit whose
//! quote signature does not verify (the full path then decides which failure it reports).
//!
//! SEV-SNP, per set of endorsements: the chain steps' facts (see `snp::SnpChain`), successes only, within the
//! certificates' and the CRL's windows.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::lru::Lru;

/// Most verdicts kept; beyond it the least recently used entry is evicted (one at a time, never the whole memo).
pub(crate) const CAPACITY: usize = 4096;

/// Most verdicts kept per platform (PPID). A genuine TD can mint quotes with ever new bodies (it extends its own
/// RTMRs), each a distinct key; this cap makes its host's oldest entry the one to go, so one platform can never push
/// out the verdicts of others.
pub(crate) const PER_PLATFORM: usize = 64;

/// Most verified certificate links kept (least recently used evicted first).
pub(crate) const LINK_CAPACITY: usize = 4096;
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

/// A TDX verdict and when it stays true.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) window: Window,
    /// The platform the verdict is about (PPID; for a refusal, the PCK leaf's PPID or digest): the per-platform
    /// bound's grouping.
    pub(crate) ppid: Vec<u8>,
    pub(crate) verdict: Verdict,
}

/// What the full path concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted: what the full path took from dcap-qvl and the PCK certificate.
    Accepted {
        fmspc: [u8; 6],
        tcb_status: String,
        advisory_ids: Vec<String>,
        pck: super::tdx::PckFacts,
        /// The PCK chain ended at a trusted simulator root.
        simulated: bool,
    },
    /// Refused by the engine for a reason the key decides (never a time-window code).
    Refused(crate::error::Refusal),
}

/// Most SEV-SNP chain verdicts kept (least recently used evicted first).
pub(crate) const SNP_CAPACITY: usize = 4096;

/// The appraisal memos of one verifier instance.
#[derive(Debug)]
pub struct Memos {
    tdx: Mutex<TdxMemo>,
    /// Verified RSA-PSS certificate signatures, keyed by the exact bytes of issuer and subject.
    links: Mutex<Lru<[u8; 32], ()>>,
    /// SEV-SNP chain verdicts per set of endorsements, with their window.
    snp: Mutex<Lru<[u8; 32], (Window, super::snp::SnpChain)>>,
    hits: AtomicU64,
    misses: AtomicU64,
    stores: AtomicU64,
    evictions: AtomicU64,
}

impl Default for Memos {
    fn default() -> Self {
        Memos::with_capacity(CAPACITY, PER_PLATFORM, LINK_CAPACITY)
    }
}

/// The TDX verdicts, least recently used first, and per platform the keys it holds, oldest first.
#[derive(Debug)]
struct TdxMemo {
    entries: Lru<[u8; 32], Entry>,
    by_platform: HashMap<Vec<u8>, VecDeque<[u8; 32]>>,
    per_platform: usize,
}

impl TdxMemo {
    /// Forget `key` in its platform's list (after the entry left `entries`).
    fn unlist(&mut self, ppid: &[u8], key: &[u8; 32]) {
        if let Some(keys) = self.by_platform.get_mut(ppid) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_platform.remove(ppid);
            }
        }
    }

    /// Store `entry`; returns how many entries were evicted to make room.
    fn store(&mut self, key: [u8; 32], entry: Entry) -> u64 {
        let mut evicted = 0;
        if let Some(old) = self.entries.remove(&key) {
            self.unlist(&old.ppid, &key);
        }
        let keys = self.by_platform.entry(entry.ppid.clone()).or_default();
        while keys.len() >= self.per_platform {
            let Some(victim) = keys.pop_front() else {
                break;
            };
            self.entries.remove(&victim);
            evicted += 1;
        }
        keys.push_back(key);
        if let Some((victim, old)) = self.entries.insert(key, entry) {
            self.unlist(&old.ppid, &victim);
            evicted += 1;
        }
        evicted
    }
}

impl Memos {
    /// Memos with explicit bounds (tests use small ones).
    pub(crate) fn with_capacity(tdx: usize, per_platform: usize, links: usize) -> Self {
        Memos {
            tdx: Mutex::new(TdxMemo {
                entries: Lru::new(tdx),
                by_platform: HashMap::new(),
                per_platform: per_platform.max(1),
            }),
            links: Mutex::new(Lru::new(links)),
            snp: Mutex::new(Lru::new(SNP_CAPACITY)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stores: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn tdx(&self) -> MutexGuard<'_, TdxMemo> {
        // Every mutation completes under the lock without panicking paths in between, so a poisoned lock still
        // guards a sound memo.
        self.tdx.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn links(&self) -> MutexGuard<'_, Lru<[u8; 32], ()>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snp(&self) -> MutexGuard<'_, Lru<[u8; 32], (Window, super::snp::SnpChain)>> {
        self.snp.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count a lookup (TDX and SEV-SNP alike) and pass its result on.
    fn counted<T>(&self, found: Option<T>) -> Option<T> {
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Count a store and whether it evicted an entry.
    fn stored(&self, evicted: u64) {
        self.stores.fetch_add(1, Ordering::Relaxed);
        self.evictions.fetch_add(evicted, Ordering::Relaxed);
    }

    /// The entry for `key` usable at `now`, counted as a hit; otherwise counted as a miss.
    pub(crate) fn lookup(&self, key: &[u8; 32], now: u64) -> Option<Entry> {
        let found = self
            .tdx()
            .entries
            .get(key)
            .filter(|e| e.window.contains(now))
            .cloned();
        self.counted(found)
    }

    /// Remember a successful verdict, evicting (one at a time) the platform's oldest entry when it holds
    /// [`PER_PLATFORM`], else the least recently used entry when the memo is full.
    pub(crate) fn store(&self, key: [u8; 32], entry: Entry) {
        let evicted = self.tdx().store(key, entry);
        self.stored(evicted);
    }

    /// The SEV-SNP chain verdict for `key` usable at `now`, if it is `same` (reached on exactly the bytes at hand);
    /// anything else is a miss. Hits and misses are counted with the TDX ones.
    pub(crate) fn snp_lookup(
        &self,
        key: &[u8; 32],
        now: u64,
        same: impl FnOnce(&super::snp::SnpChain) -> bool,
    ) -> Option<super::snp::SnpChain> {
        let found = self
            .snp()
            .get(key)
            .filter(|(w, chain)| w.contains(now) && same(chain))
            .map(|(_, chain)| chain.clone());
        self.counted(found)
    }

    /// Remember a verified SEV-SNP chain for as long as `window` holds.
    pub(crate) fn snp_store(&self, key: [u8; 32], window: Window, chain: super::snp::SnpChain) {
        let evicted = self.snp().insert(key, (window, chain)).is_some();
        self.stored(u64::from(evicted));
    }

    pub(crate) fn link_verified(&self, id: &[u8; 32]) -> bool {
        self.links().get(id).is_some()
    }

    pub(crate) fn remember_link(&self, id: [u8; 32]) {
        self.links().insert(id, ());
    }

    /// This instance's TDX memo activity.
    pub fn stats(&self) -> TdxMemoStats {
        TdxMemoStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stores: self.stores.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
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
    /// Verdicts evicted (one at a time) to keep the memo within its bounds.
    pub evictions: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(nb: u64, na: u64) -> Entry {
        entry_on(&[2; 16], nb, na)
    }

    fn entry_on(ppid: &[u8], nb: u64, na: u64) -> Entry {
        Entry {
            window: Window {
                not_before: nb,
                not_after: na,
            },
            ppid: ppid.to_vec(),
            verdict: Verdict::Accepted {
                fmspc: [1; 6],
                tcb_status: "UpToDate".into(),
                advisory_ids: vec![],
                pck: super::super::tdx::PckFacts {
                    pce_id: [0, 0],
                    sgx_type: 0,
                    dynamic_platform: None,
                    cached_keys: None,
                    smt_enabled: None,
                },
                simulated: false,
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

    fn key(platform: u8, n: u32) -> [u8; 32] {
        let mut k = [platform; 32];
        k[..4].copy_from_slice(&n.to_be_bytes());
        k
    }

    #[test]
    fn one_platform_minting_distinct_quotes_never_evicts_another_platforms_verdicts() {
        let memos = Memos::default();
        // A fleet of 60 genuine platforms, one verdict each.
        for p in 0..60u8 {
            memos.store(key(p, 0), entry_on(&[p; 16], 0, 1_000));
        }
        // One genuine TD on platform 0xee mints ten times the memo's capacity of distinct valid quotes.
        for n in 0..(CAPACITY as u32 * 10) {
            memos.store(key(0xee, n), entry_on(&[0xee; 16], 0, 1_000));
        }
        for p in 0..60u8 {
            assert!(
                memos.lookup(&key(p, 0), 500).is_some(),
                "platform {p} lost its verdict"
            );
        }
        // The flooder keeps only its newest PER_PLATFORM entries.
        let newest = CAPACITY as u32 * 10 - 1;
        assert!(memos.lookup(&key(0xee, newest), 500).is_some());
        assert!(memos
            .lookup(&key(0xee, newest - PER_PLATFORM as u32), 500)
            .is_none());
        assert_eq!(memos.tdx().entries.len(), 60 + PER_PLATFORM);
    }

    #[test]
    fn a_full_memo_evicts_one_least_recently_used_verdict_not_all() {
        let memos = Memos::with_capacity(4, 4, 4);
        for p in 0..4u8 {
            memos.store(key(p, 0), entry_on(&[p; 16], 0, 1_000));
        }
        // Platform 0 is used again, so platform 1 is the least recently used.
        assert!(memos.lookup(&key(0, 0), 1).is_some());
        memos.store(key(9, 0), entry_on(&[9; 16], 0, 1_000));
        assert!(memos.lookup(&key(1, 0), 1).is_none());
        for p in [0u8, 2, 3, 9] {
            assert!(memos.lookup(&key(p, 0), 1).is_some(), "platform {p}");
        }
        assert_eq!(memos.stats().evictions, 1);
        // The per-platform lists follow the evictions.
        assert!(!memos.tdx().by_platform.contains_key([1u8; 16].as_slice()));
    }

    #[test]
    fn restoring_a_key_replaces_it_without_eviction() {
        let memos = Memos::with_capacity(2, 2, 2);
        memos.store(key(1, 0), entry_on(&[1; 16], 0, 10));
        memos.store(key(1, 0), entry_on(&[1; 16], 0, 20));
        memos.store(key(2, 0), entry_on(&[2; 16], 0, 10));
        assert_eq!(memos.stats().evictions, 0);
        assert_eq!(
            memos.lookup(&key(1, 0), 15),
            Some(entry_on(&[1; 16], 0, 20))
        );
        assert_eq!(
            memos
                .tdx()
                .by_platform
                .get([1u8; 16].as_slice())
                .map(VecDeque::len),
            Some(1)
        );
    }

    #[test]
    fn certificate_links_are_evicted_one_at_a_time() {
        let memos = Memos::with_capacity(1, 1, 3);
        for i in 0..3u8 {
            memos.remember_link([i; 32]);
        }
        // The ASK→ARK link used on every appraisal stays while a flood of one-off links passes through.
        for i in 10..200u8 {
            assert!(memos.link_verified(&[0; 32]));
            memos.remember_link([i; 32]);
        }
        assert!(memos.link_verified(&[0; 32]));
        assert!(memos.link_verified(&[199; 32]));
        assert!(!memos.link_verified(&[1; 32]));
    }
}
