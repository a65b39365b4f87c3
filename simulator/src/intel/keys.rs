//! Deterministic key and identifier derivation for the simulated Intel world.
//!
//! Every secret is `SHA-512(seed_be ‖ label)` reduced to a P-256 scalar (the first 32 bytes; in the negligible case
//! that they are not a valid scalar, the label is extended with a counter and hashed again). Signing uses RFC 6979
//! deterministic ECDSA, so the same seed always gives byte-identical certificates, collateral and quotes.

use p256::ecdsa::{signature::Signer as _, Signature, SigningKey};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// Derives the P-256 signing key named `label` from `seed`.
pub(crate) fn derive_p256(seed: u64, label: &str) -> SigningKey {
    let mut counter: u32 = 0;
    loop {
        let mut hasher = Sha512::new();
        hasher.update(seed.to_be_bytes());
        hasher.update(label.as_bytes());
        if counter > 0 {
            hasher.update(counter.to_be_bytes());
        }
        let digest = hasher.finalize();
        if let Ok(key) = SigningKey::from_slice(&digest[..32]) {
            return key;
        }
        counter += 1;
    }
}

/// `N` bytes of `SHA-512(seed_be ‖ label)` (N ≤ 64): identifiers such as PPIDs, serials, QE measurements.
pub(crate) fn derive_bytes<const N: usize>(seed: u64, label: &str) -> [u8; N] {
    let mut hasher = Sha512::new();
    hasher.update(seed.to_be_bytes());
    hasher.update(label.as_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; N];
    out.copy_from_slice(&digest[..N]);
    out
}

/// A 20-byte certificate serial (Intel's size) that is positive and has no leading zero octet.
pub(crate) fn derive_serial(seed: u64, label: &str) -> [u8; 20] {
    let mut serial = derive_bytes::<20>(seed, &format!("serial/{label}"));
    serial[0] = (serial[0] & 0x7F) | 0x10;
    serial
}

/// SHA-384 of a text label: stand-in measurements (MRTD, RTMRs, MRSEAM) of the simulated software.
pub(crate) fn measurement48(label: &str) -> [u8; 48] {
    Sha384::digest(label.as_bytes()).into()
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// ECDSA P-256 / SHA-256 signature as raw `r ‖ s` (big-endian), the form used inside quotes and PCS JSON.
pub(crate) fn sign_raw(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    let signature: Signature = key.sign(message);
    signature.to_bytes().into()
}

/// ECDSA P-256 / SHA-256 signature as DER `Ecdsa-Sig-Value`, the form used in certificates and CRLs.
pub(crate) fn sign_der(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let signature: Signature = key.sign(message);
    signature.to_der().as_bytes().to_vec()
}

/// Raw uncompressed public key `x ‖ y` (64 bytes), the quote's attestation-key form.
pub(crate) fn raw_public_key(key: &SigningKey) -> [u8; 64] {
    let point = key.verifying_key().to_encoded_point(false);
    let mut out = [0u8; 64];
    // An uncompressed SEC1 point is 0x04 ‖ x ‖ y (65 bytes).
    out.copy_from_slice(&point.as_bytes()[1..65]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_label_give_the_same_key() {
        let a = derive_p256(7, "intel/root");
        let b = derive_p256(7, "intel/root");
        assert_eq!(a.to_bytes(), b.to_bytes());
    }

    #[test]
    fn seed_and_label_both_change_the_key() {
        let base = derive_p256(7, "intel/root").to_bytes();
        assert_ne!(base, derive_p256(8, "intel/root").to_bytes());
        assert_ne!(base, derive_p256(7, "intel/tcb-signing").to_bytes());
    }

    #[test]
    fn serials_are_positive_without_leading_zero() {
        for label in ["a", "b", "c", "d", "e"] {
            let serial = derive_serial(1, label);
            assert_ne!(serial[0], 0);
            assert_eq!(serial[0] & 0x80, 0);
        }
    }

    #[test]
    fn signatures_are_deterministic() {
        let key = derive_p256(1, "k");
        assert_eq!(sign_raw(&key, b"msg"), sign_raw(&key, b"msg"));
    }
}
