//! Deterministic key derivation: every key of the simulated world comes from the world seed and a label, so the same
//! seed always yields byte-identical certificates and evidence.
//!
//! EC keys are SHA-512(seed ‖ label) reduced to a scalar; RSA keys are generated from a ChaCha20 stream seeded with
//! SHA-256(seed ‖ label) (slow: seconds per RSA-4096 key, hence the committed test keys for the default seed, see
//! [`crate::amd::embedded`]). ECDSA signatures are RFC 6979 deterministic; RSA-PSS salts come from a ChaCha20 stream
//! seeded with the seed, a label and the message, so they are deterministic too.

use p384::elliptic_curve::ops::Reduce;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256, Sha512};

/// RSA modulus size of the simulated AMD ARK/ASK keys, as AMD's.
pub const RSA_BITS: usize = 4096;

/// SHA-512 over the seed (u64 big-endian), a zero byte, and the label: the root of every derived value.
pub fn derive_bytes(seed: u64, label: &str) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(b"locus-sim-v1");
    h.update(seed.to_be_bytes());
    h.update([0u8]);
    h.update(label.as_bytes());
    h.finalize().into()
}

/// A ChaCha20 RNG seeded from the seed and a label (and optionally extra bytes such as the message being signed).
pub fn rng(seed: u64, label: &str, extra: &[u8]) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(derive_bytes(seed, label));
    h.update(extra);
    ChaCha20Rng::from_seed(h.finalize().into())
}

/// A P-384 ECDSA signing key derived from the seed and a label.
pub fn p384_key(seed: u64, label: &str) -> p384::ecdsa::SigningKey {
    let mut counter = 0u32;
    // Loops only if the reduced scalar is zero (probability ~2^-384).
    loop {
        let lbl = format!("p384:{label}:{counter}");
        let wide = derive_bytes(seed, &lbl);
        let mut b = [0u8; 48];
        b.copy_from_slice(&wide[..48]);
        let bytes = p384::FieldBytes::from(b);
        let scalar = <p384::Scalar as Reduce<p384::U384>>::reduce_bytes(&bytes);
        if let Ok(k) = p384::ecdsa::SigningKey::from_bytes(&scalar.to_bytes()) {
            return k;
        }
        counter += 1;
    }
}

/// A P-256 ECDSA signing key derived from the seed and a label.
pub fn p256_key(seed: u64, label: &str) -> p256::ecdsa::SigningKey {
    let mut counter = 0u32;
    loop {
        let lbl = format!("p256:{label}:{counter}");
        let wide = derive_bytes(seed, &lbl);
        let mut b = [0u8; 32];
        b.copy_from_slice(&wide[..32]);
        let bytes = p256::FieldBytes::from(b);
        let scalar = <p256::Scalar as Reduce<p256::U256>>::reduce_bytes(&bytes);
        if let Ok(k) = p256::ecdsa::SigningKey::from_bytes(&scalar.to_bytes()) {
            return k;
        }
        counter += 1;
    }
}

/// An RSA key of `bits` generated from a ChaCha20 stream seeded with the seed and label (seconds for 4096 bits).
pub fn rsa_key(seed: u64, label: &str, bits: usize) -> Result<rsa::RsaPrivateKey, rsa::Error> {
    let mut r = rng(seed, &format!("rsa:{label}"), &[]);
    rsa::RsaPrivateKey::new(&mut r, bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_keys_are_deterministic_and_label_separated() {
        let a = p384_key(7, "x").verifying_key().to_encoded_point(false);
        let b = p384_key(7, "x").verifying_key().to_encoded_point(false);
        let c = p384_key(7, "y").verifying_key().to_encoded_point(false);
        let d = p384_key(8, "x").verifying_key().to_encoded_point(false);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        let e = p256_key(7, "x").verifying_key().to_encoded_point(false);
        assert_eq!(e, p256_key(7, "x").verifying_key().to_encoded_point(false));
        assert_ne!(e, p256_key(7, "y").verifying_key().to_encoded_point(false));
    }

    #[test]
    fn small_rsa_keys_are_deterministic() {
        let a = rsa_key(1, "t", 512).expect("gen");
        let b = rsa_key(1, "t", 512).expect("gen");
        let c = rsa_key(2, "t", 512).expect("gen");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
