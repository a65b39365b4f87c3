//! A quote together with the exact bytes it was parsed from; signatures are checked over these bytes.

use super::quote::{Quote, QuoteLayout, Trailing};
use super::ENCLAVE_REPORT_SIZE;
use crate::FormatError;

/// The raw quote bytes (padding included, as received) and their parsed view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedQuote {
    raw: Vec<u8>,
    quote: Quote,
    layout: QuoteLayout,
}

impl SignedQuote {
    /// Parses `raw` (see [`Quote::parse`]: only zero padding may follow the structure) and keeps a copy of it.
    pub fn parse(raw: &[u8]) -> Result<Self, FormatError> {
        Self::parse_with(raw, Trailing::ZerosOnly)
    }

    /// Like [`SignedQuote::parse`] but accepts any bytes after the quote structure (see
    /// [`Quote::parse_ignoring_trailing_bytes`]); they stay visible through [`SignedQuote::trailing_bytes`].
    pub fn parse_ignoring_trailing_bytes(raw: &[u8]) -> Result<Self, FormatError> {
        Self::parse_with(raw, Trailing::Ignore)
    }

    fn parse_with(raw: &[u8], trailing: Trailing) -> Result<Self, FormatError> {
        let (quote, layout) = Quote::parse_with_layout(raw, trailing)?;
        Ok(SignedQuote {
            raw: raw.to_vec(),
            quote,
            layout,
        })
    }

    /// The bytes after the quote structure (padding), covered by no signature.
    pub fn trailing_bytes(&self) -> &[u8] {
        &self.raw[self.layout.structure_len..]
    }

    /// The bytes as received, including any trailing zero padding.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The parsed view.
    pub fn quote(&self) -> &Quote {
        &self.quote
    }

    /// The end of the quote structure (start of the zero padding, if any).
    pub fn structure_len(&self) -> usize {
        self.layout.structure_len
    }

    /// The quote structure without padding, `raw[..structure_len]`.
    pub fn structure_bytes(&self) -> &[u8] {
        &self.raw[..self.layout.structure_len]
    }

    /// The range the attestation key signed: header ‖ (v5 body descriptor ‖) body.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..self.layout.signed_len]
    }

    /// The 384 raw QE report bytes the PCK key signed.
    pub fn qe_report_bytes(&self) -> &[u8] {
        let start = self.layout.qe_report_offset;
        &self.raw[start..start + ENCLAVE_REPORT_SIZE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tdx::quote::tests::sample_quote;

    #[test]
    fn exposes_the_raw_signed_ranges_of_a_padded_quote() {
        for (version, td15, signed_len) in [(4, false, 632), (5, true, 702)] {
            let q = sample_quote(version, td15);
            let structure = q.to_bytes();
            let mut raw = structure.clone();
            raw.resize(structure.len() + 64, 0);
            let Ok(s) = SignedQuote::parse(&raw) else {
                panic!("padded quote must parse")
            };
            assert_eq!(s.raw(), &raw[..]);
            assert_eq!(s.quote(), &q);
            assert_eq!(s.structure_len(), structure.len());
            assert_eq!(s.structure_bytes(), &structure[..]);
            assert_eq!(s.trailing_bytes(), &[0u8; 64][..]);
            assert_eq!(s.signed_bytes(), &structure[..signed_len]);
            let qe_at = signed_len + 4 + 64 + 64 + 6;
            assert_eq!(
                s.qe_report_bytes(),
                &structure[qe_at..qe_at + ENCLAVE_REPORT_SIZE]
            );
            assert_eq!(s.qe_report_bytes(), &q.qe_report.to_bytes()[..]);
        }
    }

    #[test]
    fn lenient_parse_keeps_unsigned_trailing_text_visible() {
        let mut raw = sample_quote(4, false).to_bytes();
        let end = raw.len();
        raw.extend_from_slice(b"\n\nextra bytes\n");
        assert_eq!(
            SignedQuote::parse(&raw).err().map(|e| e.code()),
            Some("evidence_malformed")
        );
        let Ok(s) = SignedQuote::parse_ignoring_trailing_bytes(&raw) else {
            panic!("lenient parse accepts trailing text")
        };
        assert_eq!(s.structure_len(), end);
        assert_eq!(s.trailing_bytes(), b"\n\nextra bytes\n");
    }
}
