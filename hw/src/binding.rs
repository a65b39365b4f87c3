//! The evidence binding of docs/architecture.md#evidence-binding, shared by the agent (which puts it in its evidence) and the verifier (which
//! recomputes it):
//!
//! ```text
//! report_data = SHA-512( "locus-attest-v1" ‖ 0x00 ‖ nonce ‖ jwk_thumbprint )
//! ```
//!
//! `nonce` is the raw bytes of the verifier's challenge and `jwk_thumbprint` the RFC 7638 SHA-256 thumbprint of the
//! agent's public JWK, so the evidence names both the challenge and the key the credential will be bound to. The label
//! names the algorithm: a future binding is a new label, never a silent change.

use sha2::{Digest, Sha512};

/// The binding label.
pub const LABEL: &[u8] = b"locus-attest-v1";

/// The 64 bytes of report data for `nonce` and a key with thumbprint `jwk_thumbprint`.
pub fn report_data(nonce: &[u8], jwk_thumbprint: &[u8; 32]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(LABEL);
    h.update([0u8]);
    h.update(nonce);
    h.update(jwk_thumbprint);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independently_computed_vector() {
        // python3: hashlib.sha512(b"locus-attest-v1" + b"\0" + bytes(range(32)) + b"\xab" * 32).hexdigest()
        let nonce: Vec<u8> = (0u8..32).collect();
        let want = "9c99ce947bc83d7c7bed546eeec9f9722aa3b3b6a7f17552af37c97a7affe4b0\
                    a07f0a7fddaf3cbd7d6201af1ab264cc0b6528966b58ff4c25c8fdae8f0ebcbd";
        assert_eq!(hex::encode(report_data(&nonce, &[0xab; 32])), want);
    }

    #[test]
    fn nonce_and_key_both_change_the_binding() {
        let base = report_data(b"nonce-1", &[1; 32]);
        assert_ne!(base, report_data(b"nonce-2", &[1; 32]));
        assert_ne!(base, report_data(b"nonce-1", &[2; 32]));
    }
}
