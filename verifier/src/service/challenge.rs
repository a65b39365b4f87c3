//! Stateless challenges (docs/architecture.md#challenges), so any replica holding the shared MAC key can check a nonce another issued:
//!
//! ```text
//! nonce = t (8 bytes, big-endian unix seconds) ‖ rand (16) ‖ HMAC-SHA256(k, t ‖ rand)[0..16]
//! ```
//!
//! A nonce is valid from `t` until `t + ttl`. The tag comparison is constant-time: ring only compares full-length
//! tags, so the truncated tags are compared with the double-HMAC construction (`hmac::verify` of one tag under a
//! fresh per-process key against the HMAC of the other), which leaks nothing about where they differ.
//!
//! The MAC key rotates with an overlap ([`super::schedule`]): a new key is written with a not-before ahead of now, so
//! every replica has it before any replica issues with it; from its not-before it makes the nonces, and the key it
//! superseded still verifies nonces for [`retention`] (`ttl` + clock skew) after that, so a challenge issued just
//! before the switch can still be redeemed at any replica. The nonce format does not change: the check tries each
//! live key.

use std::time::Duration;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::schedule;
use crate::{ErrorCode, Refusal};

pub const NONCE_LEN: usize = 40;
const TAG_LEN: usize = 16;
/// How far in the future a nonce's `t` may lie (clock skew between replicas).
pub const MAX_CLOCK_SKEW: u64 = 30;

/// How long a superseded MAC key keeps verifying nonces after its successor's not-before: a nonce it made just
/// before the switch lives `ttl`, on a clock up to [`MAX_CLOCK_SKEW`] behind.
pub fn retention(ttl: Duration) -> Duration {
    ttl + Duration::from_secs(MAX_CLOCK_SKEW)
}

/// The challenge MAC keys shared by all replicas, plus a per-process comparison key.
pub struct ChallengeKey {
    /// Not-before of each key (unix seconds), strictly ascending; `macs[i]` is the key with `not_befores[i]`.
    not_befores: Vec<u64>,
    macs: Vec<hmac::Key>,
    compare: hmac::Key,
}

impl std::fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeKey")
            .field("not_befores", &self.not_befores)
            .finish_non_exhaustive()
    }
}

impl ChallengeKey {
    /// One key, active since forever. `secret` is the shared key material (32 bytes from the keys dir or Secret).
    pub fn new(secret: &[u8]) -> Result<Self, ring::error::Unspecified> {
        Self::with_schedule(&[(0, secret)])
    }

    /// Several keys with their not-befores (any order; at least one).
    pub fn with_schedule(keys: &[(u64, &[u8])]) -> Result<Self, ring::error::Unspecified> {
        if keys.is_empty() {
            return Err(ring::error::Unspecified);
        }
        let mut sorted: Vec<(u64, &[u8])> = keys.to_vec();
        sorted.sort_by_key(|(nb, _)| *nb);
        let rng = SystemRandom::new();
        let compare = hmac::Key::generate(hmac::HMAC_SHA256, &rng)?;
        Ok(ChallengeKey {
            not_befores: sorted.iter().map(|(nb, _)| *nb).collect(),
            macs: sorted
                .iter()
                .map(|(_, s)| hmac::Key::new(hmac::HMAC_SHA256, s))
                .collect(),
            compare,
        })
    }

    /// Not-before of the key that issues nonces at `now`.
    pub fn active_not_before(&self, now: u64) -> u64 {
        let i = schedule::active_index(&self.not_befores, now).unwrap_or(0);
        self.not_befores[i]
    }

    fn tag(mac: &hmac::Key, t_rand: &[u8]) -> [u8; TAG_LEN] {
        let full = hmac::sign(mac, t_rand);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full.as_ref()[..TAG_LEN]);
        tag
    }

    /// A nonce issued at `now` with the given randomness, under the key active at `now`.
    pub fn issue_with(&self, now: u64, rand: [u8; 16]) -> [u8; NONCE_LEN] {
        // `with_schedule` refuses an empty set, so there is always an active key.
        let active = schedule::active_index(&self.not_befores, now).unwrap_or(0);
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&now.to_be_bytes());
        nonce[8..24].copy_from_slice(&rand);
        let tag = Self::tag(&self.macs[active], &nonce[..24]);
        nonce[24..].copy_from_slice(&tag);
        nonce
    }

    /// A nonce issued at `now` with fresh randomness.
    pub fn issue(&self, now: u64) -> Result<[u8; NONCE_LEN], Refusal> {
        let mut rand = [0u8; 16];
        SystemRandom::new()
            .fill(&mut rand)
            .map_err(|_| Refusal::new(ErrorCode::Internal, "system random source failed"))?;
        Ok(self.issue_with(now, rand))
    }

    /// Check a nonce at time `now`: MAC first (so a forged nonce is `nonce_invalid` whatever its time), then age.
    /// The MAC may be under any key live at `now` (the active one, one not yet active, or one superseded less than
    /// [`retention`]`(ttl)` ago). Returns the issue time.
    pub fn check(&self, nonce: &[u8], now: u64, ttl: Duration) -> Result<u64, Refusal> {
        if nonce.len() != NONCE_LEN {
            return Err(Refusal::new(
                ErrorCode::NonceInvalid,
                format!("nonce must be {NONCE_LEN} bytes, got {}", nonce.len()),
            ));
        }
        let got = &nonce[24..];
        let got_under_compare = hmac::sign(&self.compare, got);
        let retain = retention(ttl);
        // Every live key is tried (no early exit), so timing does not tell which one matched.
        let mut matched = false;
        for (i, mac) in self.macs.iter().enumerate() {
            if !schedule::is_live(&self.not_befores, i, now, retain) {
                continue;
            }
            let expected = Self::tag(mac, &nonce[..24]);
            matched |= hmac::verify(&self.compare, &expected, got_under_compare.as_ref()).is_ok();
        }
        if !matched {
            return Err(Refusal::new(
                ErrorCode::NonceInvalid,
                "nonce MAC does not verify: not issued by this verifier (or its key changed)",
            ));
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(&nonce[..8]);
        let issued = u64::from_be_bytes(t);
        if issued > now.saturating_add(MAX_CLOCK_SKEW) {
            return Err(Refusal::new(
                ErrorCode::NonceInvalid,
                format!("nonce issued in the future ({issued} > now {now})"),
            ));
        }
        let expires = issued.saturating_add(ttl.as_secs());
        if now >= expires {
            return Err(Refusal::new(
                ErrorCode::NonceExpired,
                format!("nonce issued at {issued} expired at {expires} (now {now})"),
            ));
        }
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(120);

    fn key() -> ChallengeKey {
        ChallengeKey::new(&[9u8; 32]).expect("key")
    }

    #[test]
    fn a_fresh_nonce_checks_and_returns_its_issue_time() {
        let k = key();
        let n = k.issue_with(1_000, [1; 16]);
        assert_eq!(&n[..8], &1_000u64.to_be_bytes());
        assert_eq!(k.check(&n, 1_000, TTL), Ok(1_000));
        assert_eq!(k.check(&n, 1_119, TTL), Ok(1_000));
    }

    #[test]
    fn another_replica_with_the_same_key_accepts_the_nonce() {
        let n = key().issue_with(5, [2; 16]);
        assert_eq!(key().check(&n, 6, TTL), Ok(5));
    }

    #[test]
    fn an_old_nonce_is_nonce_expired() {
        let k = key();
        let n = k.issue_with(1_000, [1; 16]);
        assert_eq!(
            k.check(&n, 1_120, TTL).map_err(|r| r.code),
            Err(ErrorCode::NonceExpired)
        );
    }

    #[test]
    fn a_forged_or_altered_nonce_is_nonce_invalid() {
        let k = key();
        let n = k.issue_with(1_000, [1; 16]);
        for i in [0, 7, 8, 23, 24, 39] {
            let mut bad = n;
            bad[i] ^= 1;
            assert_eq!(
                k.check(&bad, 1_000, TTL).map_err(|r| r.code),
                Err(ErrorCode::NonceInvalid),
                "byte {i}"
            );
        }
        let other = ChallengeKey::new(&[8u8; 32])
            .expect("key")
            .issue_with(1_000, [1; 16]);
        assert_eq!(
            k.check(&other, 1_000, TTL).map_err(|r| r.code),
            Err(ErrorCode::NonceInvalid)
        );
        assert_eq!(
            k.check(&n[..39], 1_000, TTL).map_err(|r| r.code),
            Err(ErrorCode::NonceInvalid)
        );
    }

    #[test]
    fn an_expired_forgery_is_invalid_not_expired() {
        let k = key();
        let mut n = k.issue_with(1, [1; 16]);
        n[30] ^= 0xff;
        assert_eq!(
            k.check(&n, 10_000, TTL).map_err(|r| r.code),
            Err(ErrorCode::NonceInvalid)
        );
    }

    #[test]
    fn a_nonce_from_the_future_is_invalid() {
        let k = key();
        let n = k.issue_with(10_000, [1; 16]);
        assert_eq!(
            k.check(&n, 1_000, TTL).map_err(|r| r.code),
            Err(ErrorCode::NonceInvalid)
        );
    }

    #[test]
    fn an_empty_schedule_is_refused() {
        assert!(ChallengeKey::with_schedule(&[]).is_err());
    }

    /// Key A since forever, key B from 10_000 (written at 9_700 with 300 s of pre-publication).
    fn rotated() -> ChallengeKey {
        ChallengeKey::with_schedule(&[(10_000, &[2u8; 32][..]), (0, &[1u8; 32][..])]).expect("keys")
    }

    #[test]
    fn after_a_rotation_the_new_key_issues_only_from_its_not_before() {
        let k = rotated();
        let a = ChallengeKey::new(&[1u8; 32]).expect("a");
        let b = ChallengeKey::new(&[2u8; 32]).expect("b");
        assert_eq!(k.active_not_before(9_999), 0);
        assert_eq!(k.issue_with(9_999, [3; 16]), a.issue_with(9_999, [3; 16]));
        assert_eq!(k.active_not_before(10_000), 10_000);
        assert_eq!(k.issue_with(10_000, [3; 16]), b.issue_with(10_000, [3; 16]));
    }

    #[test]
    fn a_replica_that_already_has_the_next_key_accepts_its_nonces_before_the_switch() {
        // A replica whose clock is ahead issues under B at 10_001 (its clock); one at 9_990 must accept it.
        let n = ChallengeKey::new(&[2u8; 32])
            .expect("b")
            .issue_with(10_001, [4; 16]);
        assert_eq!(rotated().check(&n, 9_990, TTL), Ok(10_001));
    }

    #[test]
    fn a_nonce_under_the_previous_key_verifies_during_the_overlap_and_is_nonce_invalid_after() {
        let k = rotated();
        let n = k.issue_with(9_999, [5; 16]);
        // Overlap: until B's not-before + ttl + skew (10_000 + 120 + 30).
        assert_eq!(k.check(&n, 10_000, TTL), Ok(9_999));
        assert_eq!(k.check(&n, 10_118, TTL), Ok(9_999));
        // Past its ttl but the key is still live: expired, as before rotation.
        assert_eq!(
            k.check(&n, 10_149, TTL).map_err(|r| r.code),
            Err(ErrorCode::NonceExpired)
        );
        // The key retired: its MAC no longer verifies at all.
        let refusal = k.check(&n, 10_150, TTL).expect_err("retired key");
        assert_eq!(refusal.code, ErrorCode::NonceInvalid);
        assert_eq!(
            refusal.message,
            "nonce MAC does not verify: not issued by this verifier (or its key changed)"
        );
    }

    #[test]
    fn retention_is_the_challenge_ttl_plus_the_clock_skew() {
        assert_eq!(retention(TTL), Duration::from_secs(150));
    }
}
