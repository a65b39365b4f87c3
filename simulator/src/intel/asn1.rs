//! Small DER and PEM writers for the fixed structures of the simulated Intel PKI.
//!
//! The SGX PCK extension and the PKIX extension values are written TLV by TLV so that their shapes match Intel's
//! certificates byte for byte (tags, INTEGER vs ENUMERATED vs OCTET STRING, nesting); the enclosing certificate and
//! CRL structures use the `x509-cert` types.

use base64::Engine as _;
use const_oid::ObjectIdentifier;

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_ENUMERATED: u8 = 0x0A;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// One DER TLV with a definite, minimal length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// SEQUENCE of already-encoded elements.
pub(crate) fn sequence(elements: &[Vec<u8>]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &elements.concat())
}

pub(crate) fn oid(oid: &ObjectIdentifier) -> Vec<u8> {
    tlv(TAG_OID, oid.as_bytes())
}

/// Minimal two's-complement content octets of a non-negative integer.
fn uint_content(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut content = bytes[skip..].to_vec();
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    content
}

pub(crate) fn uint(value: u64) -> Vec<u8> {
    tlv(TAG_INTEGER, &uint_content(value))
}

pub(crate) fn enumerated(value: u64) -> Vec<u8> {
    tlv(TAG_ENUMERATED, &uint_content(value))
}

pub(crate) fn boolean(value: bool) -> Vec<u8> {
    tlv(TAG_BOOLEAN, &[if value { 0xFF } else { 0x00 }])
}

pub(crate) fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, bytes)
}

/// PEM armour with 64-character lines and a trailing newline (RFC 7468 strict form).
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A chain of certificates as concatenated PEM blocks, in the given order (leaf first).
pub(crate) fn pem_chain<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    ders.into_iter()
        .map(|der| pem("CERTIFICATE", der))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(uint(0), [0x02, 0x01, 0x00]);
        assert_eq!(uint(11), [0x02, 0x01, 0x0B]);
        assert_eq!(uint(0x80), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(0x1234), [0x02, 0x02, 0x12, 0x34]);
        assert_eq!(enumerated(1), [0x0A, 0x01, 0x01]);
    }

    #[test]
    fn long_lengths_use_the_minimal_long_form() {
        let content = vec![0u8; 300];
        let encoded = tlv(TAG_SEQUENCE, &content);
        assert_eq!(&encoded[..4], &[0x30, 0x82, 0x01, 0x2C]);
        assert_eq!(tlv(TAG_SEQUENCE, &[0u8; 0x80])[..3], [0x30, 0x81, 0x80]);
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let text = pem("CERTIFICATE", &[7u8; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END CERTIFICATE-----"));
    }
}
