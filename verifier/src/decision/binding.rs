//! The report-data binding of docs/architecture.md#evidence-binding: evidence is bound to the challenge and to the agent's key by
//!
//! ```text
//! report_data = SHA-512( "locus-attest-v1" ‖ 0x00 ‖ nonce ‖ jwk_thumbprint )
//! ```
//!
//! with `jwk_thumbprint` the RFC 7638 SHA-256 thumbprint of the agent's public JWK. The label names the algorithm:
//! a future binding is a new label, never a silent change.

pub use locus_hw::binding::{report_data, LABEL};

use crate::{ErrorCode, Refusal};

/// Check that evidence's report data binds `nonce` and the key with `jwk_thumbprint`.
pub fn check(
    evidence_report_data: &[u8],
    nonce: &[u8],
    jwk_thumbprint: &[u8; 32],
) -> Result<(), Refusal> {
    let expected = report_data(nonce, jwk_thumbprint);
    if evidence_report_data != expected.as_slice() {
        return Err(Refusal::new(
            ErrorCode::ReportDataMismatch,
            format!(
                "evidence report_data {} is not SHA-512(\"locus-attest-v1\" ‖ 0 ‖ nonce ‖ thumbprint) = {} \
                 (evidence made for another challenge or key)",
                hex::encode(evidence_report_data),
                hex::encode(expected)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha512};

    #[test]
    fn report_data_is_sha512_of_label_zero_nonce_thumbprint() {
        let nonce = [1u8; 40];
        let tp = [2u8; 32];
        let mut input = b"locus-attest-v1\x00".to_vec();
        input.extend_from_slice(&nonce);
        input.extend_from_slice(&tp);
        let want: [u8; 64] = Sha512::digest(&input).into();
        assert_eq!(report_data(&nonce, &tp), want);
        assert!(check(&want, &nonce, &tp).is_ok());
    }

    #[test]
    fn another_key_or_nonce_is_report_data_mismatch() {
        let nonce = [1u8; 40];
        let rd = report_data(&nonce, &[2; 32]);
        assert_eq!(
            check(&rd, &nonce, &[3; 32]).map_err(|r| r.code),
            Err(ErrorCode::ReportDataMismatch)
        );
        assert_eq!(
            check(&rd, &[0; 40], &[2; 32]).map_err(|r| r.code),
            Err(ErrorCode::ReportDataMismatch)
        );
        assert_eq!(
            check(&rd[..63], &nonce, &[2; 32]).map_err(|r| r.code),
            Err(ErrorCode::ReportDataMismatch)
        );
    }
}
