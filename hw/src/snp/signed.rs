//! A report together with the exact bytes it was parsed from: signatures are checked over these bytes, never over a
//! re-encoding (as the `sev` crate does).

use super::report::{AttestationReport, SIGNATURE_COMPONENT_LEN, SIGNATURE_OFFSET, SIGNED_LEN};
use crate::FormatError;

/// Significant bytes of each P-384 signature component.
const P384_SCALAR_LEN: usize = 48;

/// The raw report bytes and their parsed view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedReport {
    raw: Vec<u8>,
    report: AttestationReport,
}

impl SignedReport {
    /// Parses `raw` (see [`AttestationReport::parse`]) and keeps a copy of it.
    pub fn parse(raw: &[u8]) -> Result<Self, FormatError> {
        let report = AttestationReport::parse(raw)?;
        Ok(SignedReport {
            raw: raw.to_vec(),
            report,
        })
    }

    /// The bytes as received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The parsed view.
    pub fn report(&self) -> &AttestationReport {
        &self.report
    }

    /// The signed range, `raw[0..0x2A0]`.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..SIGNED_LEN]
    }

    /// The signature as `r ‖ s`, 48 bytes each, big-endian — the input ring's `ECDSA_P384_SHA384_FIXED` expects.
    /// Refuses (`evidence_malformed`) when the zero padding above byte 48 of either component is not zero, since
    /// those bytes would otherwise be silently ignored.
    pub fn signature_p384_fixed(&self) -> Result<[u8; 96], FormatError> {
        let mut out = [0u8; 96];
        for (i, name) in ["SIGNATURE.R", "SIGNATURE.S"].into_iter().enumerate() {
            let start = SIGNATURE_OFFSET + i * SIGNATURE_COMPONENT_LEN;
            let component = &self.raw[start..start + SIGNATURE_COMPONENT_LEN];
            let (scalar_le, padding) = component.split_at(P384_SCALAR_LEN);
            if let Some(pos) = padding.iter().position(|&b| b != 0) {
                return Err(FormatError::invalid(
                    name,
                    start + P384_SCALAR_LEN + pos,
                    "non-zero padding above the 48-byte P-384 scalar",
                ));
            }
            let dst = &mut out[i * P384_SCALAR_LEN..(i + 1) * P384_SCALAR_LEN];
            for (d, s) in dst.iter_mut().zip(scalar_le.iter().rev()) {
                *d = *s;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snp::report::tests::sample_report_bytes;

    #[test]
    fn keeps_raw_bytes_and_signed_range() {
        let raw = sample_report_bytes(3);
        let Ok(s) = SignedReport::parse(&raw) else {
            panic!("must parse")
        };
        assert_eq!(s.raw(), &raw[..]);
        assert_eq!(s.signed_bytes(), &raw[..0x2A0]);
        assert_eq!(s.report().version, 3);
    }

    #[test]
    fn fixed_signature_is_reversed_r_then_s() {
        let mut raw = vec![0u8; crate::snp::REPORT_SIZE];
        raw[0] = 2;
        for i in 0..48 {
            raw[0x2A0 + i] = i as u8; // r little-endian: 0,1,..,47
            raw[0x2E8 + i] = 100 + i as u8;
        }
        let Ok(s) = SignedReport::parse(&raw) else {
            panic!("must parse")
        };
        let Ok(sig) = s.signature_p384_fixed() else {
            panic!("padding is zero")
        };
        assert_eq!(sig[0], 47);
        assert_eq!(sig[47], 0);
        assert_eq!(sig[48], 147);
        assert_eq!(sig[95], 100);
    }

    #[test]
    fn non_zero_signature_padding_is_evidence_malformed() {
        for offset in [0x2D0, 0x2E7, 0x318, 0x32F] {
            let mut raw = vec![0u8; crate::snp::REPORT_SIZE];
            raw[0] = 2;
            raw[offset] = 1;
            let Ok(s) = SignedReport::parse(&raw) else {
                panic!("must parse")
            };
            let err = s.signature_p384_fixed().err();
            assert_eq!(
                err.as_ref().map(|e| e.code()),
                Some("evidence_malformed"),
                "{offset:#x}"
            );
        }
    }
}
