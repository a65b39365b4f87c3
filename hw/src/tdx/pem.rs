//! A small, strict PEM splitter for certificate chains: only `CERTIFICATE` blocks, separated by whitespace (and the
//! NUL terminator C producers leave at the end).

use crate::FormatError;
use base64::Engine as _;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Decodes every certificate in `pem`, in order. No certificate, text outside the blocks, an unterminated block or
/// bad base64 → `evidence_malformed` naming `field`.
pub(crate) fn certificates(pem: &[u8], field: &'static str) -> Result<Vec<Vec<u8>>, FormatError> {
    let text = std::str::from_utf8(pem)
        .map_err(|e| FormatError::invalid(field, e.valid_up_to(), "PEM is not UTF-8"))?;
    let is_filler = |c: char| c.is_ascii_whitespace() || c == '\0';
    let mut certs = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start_matches(is_filler);
        if trimmed.is_empty() {
            break;
        }
        let at = text.len() - trimmed.len();
        let Some(after_begin) = trimmed.strip_prefix(BEGIN) else {
            return Err(FormatError::invalid(
                field,
                at,
                "text outside a CERTIFICATE block",
            ));
        };
        let Some(end) = after_begin.find(END) else {
            return Err(FormatError::invalid(
                field,
                at,
                "unterminated CERTIFICATE block",
            ));
        };
        let body: String = after_begin[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| FormatError::invalid(field, at, format!("bad base64: {e}")))?;
        if der.is_empty() {
            return Err(FormatError::invalid(field, at, "empty CERTIFICATE block"));
        }
        certs.push(der);
        rest = &after_begin[end + END.len()..];
    }
    if certs.is_empty() {
        return Err(FormatError::invalid(field, 0, "no certificate"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("{BEGIN}\n{b64}\n{END}\n")
    }

    #[test]
    fn splits_blocks_in_order_and_tolerates_trailing_nul() {
        let pem = format!("{}{}\0", block(&[1, 2, 3]), block(&[4, 5]));
        assert_eq!(
            certificates(pem.as_bytes(), "chain").ok(),
            Some(vec![vec![1, 2, 3], vec![4, 5]])
        );
    }

    #[test]
    fn garbage_is_evidence_malformed() {
        let cases = [
            String::new(),
            "\0\0".to_string(),
            format!("junk{}", block(&[1])),
            format!("{BEGIN}\nAAAA\n"),
            format!("{BEGIN}\n!!!!\n{END}"),
            format!("{BEGIN}\n{END}"),
        ];
        for pem in cases {
            let err = certificates(pem.as_bytes(), "chain").err();
            assert_eq!(err.map(|e| e.code()), Some("evidence_malformed"), "{pem:?}");
        }
        assert!(certificates(&[0xff, 0xfe], "chain").is_err());
    }
}
