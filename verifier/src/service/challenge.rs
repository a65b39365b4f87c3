//! Stateless challenges (DESIGN §2), so any replica holding the shared MAC key can check a nonce another issued:
//!
//! ```text
//! nonce = t (8 bytes, big-endian unix seconds) ‖ rand (16) ‖ HMAC-SHA256(k, t ‖ rand)[0..16]
//! ```
//!
//! A nonce is valid from `t` until `t + ttl`. The tag comparison is constant-time: ring only compares full-length
//! tags, so the truncated tags are compared with the double-HMAC construction (`hmac::verify` of one tag under a
//! fresh per-process key against the HMAC of the other), which leaks nothing about where they differ.

use std::time::Duration;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::{ErrorCode, Refusal};

pub const NONCE_LEN: usize = 40;
const TAG_LEN: usize = 16;
/// How far in the future a nonce's `t` may lie (clock skew between replicas).
pub const MAX_CLOCK_SKEW: u64 = 30;

/// The challenge MAC key shared by all replicas, plus a per-process comparison key.
pub struct ChallengeKey {
    mac: hmac::Key,
    compare: hmac::Key,
}

impl std::fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeKey(..)")
    }
}

impl ChallengeKey {
    /// `secret` is the shared key material (32 bytes from the state dir or Secret).
    pub fn new(secret: &[u8]) -> Result<Self, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        let compare = hmac::Key::generate(hmac::HMAC_SHA256, &rng)?;
        Ok(ChallengeKey {
            mac: hmac::Key::new(hmac::HMAC_SHA256, secret),
            compare,
        })
    }

    fn tag(&self, t_rand: &[u8]) -> [u8; TAG_LEN] {
        let full = hmac::sign(&self.mac, t_rand);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full.as_ref()[..TAG_LEN]);
        tag
    }

    /// A nonce issued at `now` with the given randomness.
    pub fn issue_with(&self, now: u64, rand: [u8; 16]) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&now.to_be_bytes());
        nonce[8..24].copy_from_slice(&rand);
        let tag = self.tag(&nonce[..24]);
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
    /// Returns the issue time.
    pub fn check(&self, nonce: &[u8], now: u64, ttl: Duration) -> Result<u64, Refusal> {
        if nonce.len() != NONCE_LEN {
            return Err(Refusal::new(
                ErrorCode::NonceInvalid,
                format!("nonce must be {NONCE_LEN} bytes, got {}", nonce.len()),
            ));
        }
        let expected = self.tag(&nonce[..24]);
        let got = &nonce[24..];
        let got_under_compare = hmac::sign(&self.compare, got);
        if hmac::verify(&self.compare, &expected, got_under_compare.as_ref()).is_err() {
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
}
