//! TDX quote versions 4 and 5 (Intel DCAP `sgx_quote_4.h`, `sgx_quote_5.h`).
//!
//! ```text
//! header (48) │ v5 only: body_type u16, body_size u32 │ body (584 | 648) │ signature_data_len u32 │ signature data
//! signature data = signature (64, r‖s BE) │ attestation key (64, x‖y) │ cert type u16 (= 6) │ cert size u32 │
//!                  QE report (384) │ QE report signature (64) │ qe_auth_size u16 │ qe_auth_data │
//!                  inner cert type u16 (= 5) │ inner size u32 │ PCK chain PEM
//! ```
//! Every length field is walked and must agree with the fields it covers; bytes after the end of the signature data
//! must be zero (fixed-size quote buffers), anything else is `evidence_malformed`.
//!
//! One real vector (`tdx/v4-50806f-tcb-not-supported-gotdx`, from go-tdx-guest) ends with the ASCII text
//! `"\n\nextra bytes(only for testing purpose)\n"` after the structure; dcap-qvl and go-tdx-guest ignore such bytes.
//! They are covered by no signature, so a caller that wants to accept such quotes can say so explicitly with
//! [`Quote::parse_ignoring_trailing_bytes`]; the default stays strict.

use super::header::{QuoteHeader, HEADER_SIZE};
use super::report::{TdReport, TD_REPORT10_SIZE, TD_REPORT15_SIZE};
use super::{pem, EnclaveReport, ENCLAVE_REPORT_SIZE};
use crate::bytes::{Reader, Writer};
use crate::FormatError;

/// v5 body type of a TD report 1.0 body (also the implicit type of v4 quotes).
pub const BODY_TYPE_TD10: u16 = 2;
/// v5 body type of a TD report 1.5 body.
pub const BODY_TYPE_TD15: u16 = 3;
/// Certification data type 6: QE report certification data.
pub const CERT_DATA_QE_REPORT: u16 = 6;
/// Certification data type 5: the PCK certificate chain (PEM).
pub const CERT_DATA_PCK_CHAIN: u16 = 5;
/// Size of the v5 body descriptor (body_type u16, body_size u32).
pub const BODY_DESCRIPTOR_SIZE: usize = 6;
/// Size of the v4 signed range (header ‖ TD 1.0 body).
pub const V4_SIGNED_LEN: usize = HEADER_SIZE + TD_REPORT10_SIZE;
const _: () = assert!(V4_SIGNED_LEN == 632);
const _: () = assert!(HEADER_SIZE + BODY_DESCRIPTOR_SIZE + TD_REPORT15_SIZE == 702);

/// A parsed TDX quote.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quote {
    /// Offset 0, 48 bytes.
    pub header: QuoteHeader,
    /// v5: the body type at offset 48 (2 = TD 1.0, 3 = TD 1.5); v4: always 2 (not encoded).
    pub body_type: u16,
    /// The TD report body (v4 at 48; v5 at 54).
    pub body: TdReport,
    /// ECDSA P-256 signature r‖s (big-endian) by the attestation key over header ‖ (descriptor ‖) body.
    pub signature: [u8; 64],
    /// Attestation public key, raw x‖y.
    pub attestation_key: [u8; 64],
    /// The QE report (certification data type 6).
    pub qe_report: EnclaveReport,
    /// ECDSA P-256 signature r‖s by the PCK key over the 384 QE report bytes.
    pub qe_report_signature: [u8; 64],
    /// QE authentication data (32 bytes in practice).
    pub qe_auth_data: Vec<u8>,
    /// The PCK certificate chain, PEM (certification data type 5 inside type 6), verbatim.
    pub pck_cert_chain_pem: Vec<u8>,
}

/// What the parser accepts after the end of the quote structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trailing {
    /// Zero padding only (the default).
    ZerosOnly,
    /// Anything (explicitly requested by the caller).
    Ignore,
}

/// Where the parts sit inside the raw quote, for [`super::SignedQuote`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QuoteLayout {
    pub(crate) signed_len: usize,
    pub(crate) qe_report_offset: usize,
    pub(crate) structure_len: usize,
}

impl Quote {
    /// Parses a quote, walking its length fields; trailing zero padding is tolerated, any other trailing byte is
    /// `evidence_malformed`.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        Self::parse_with_layout(bytes, Trailing::ZerosOnly).map(|(q, _)| q)
    }

    /// Like [`Quote::parse`] but ignores whatever follows the quote structure (unsigned bytes some producers
    /// append; see the module docs). Use only where interoperability with such producers is wanted.
    pub fn parse_ignoring_trailing_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        Self::parse_with_layout(bytes, Trailing::Ignore).map(|(q, _)| q)
    }

    /// The length of the quote structure in `bytes` (the end of the signature data), excluding any padding.
    /// Does not look at the bytes after the structure.
    pub fn structure_len(bytes: &[u8]) -> Result<usize, FormatError> {
        Self::parse_with_layout(bytes, Trailing::Ignore).map(|(_, l)| l.structure_len)
    }

    pub(crate) fn parse_with_layout(
        bytes: &[u8],
        trailing: Trailing,
    ) -> Result<(Self, QuoteLayout), FormatError> {
        let mut r = Reader::new(bytes);
        let header = QuoteHeader::read(&mut r)?;
        let body_type = if header.version == 4 {
            BODY_TYPE_TD10
        } else {
            let body_type = r.u16("body_type")?;
            let body_size = r.u32("body_size")? as usize;
            let expected = match body_type {
                BODY_TYPE_TD10 => TD_REPORT10_SIZE,
                BODY_TYPE_TD15 => TD_REPORT15_SIZE,
                other => {
                    return Err(FormatError::UnsupportedVersion {
                        what: "TDX quote v5 body type",
                        version: other.into(),
                    })
                }
            };
            if body_size != expected {
                return Err(FormatError::invalid(
                    "body_size",
                    HEADER_SIZE + 2,
                    format!("{body_size} does not match body type {body_type} ({expected} bytes)"),
                ));
            }
            body_type
        };
        let body = TdReport::read(&mut r, body_type == BODY_TYPE_TD15)?;
        let signed_len = r.pos();

        let sig_len_offset = r.pos();
        let sig_len = r.u32("signature_data_len")? as usize;
        let sig_data_offset = r.pos();
        let sig_data = r.take(sig_len, "signature_data")?;
        let structure_len = r.pos();
        let nonzero_tail = bytes[structure_len..].iter().position(|&b| b != 0);
        if let (Trailing::ZerosOnly, Some(pos)) = (trailing, nonzero_tail) {
            return Err(FormatError::TrailingBytes {
                what: "TDX quote",
                offset: structure_len + pos,
            });
        }

        let mut s = Reader::new(sig_data);
        let signature = s.array("signature")?;
        let attestation_key = s.array("attestation_key")?;
        let cert_type = s.u16("certification_data_type")?;
        if cert_type != CERT_DATA_QE_REPORT {
            return Err(FormatError::invalid(
                "certification_data_type",
                sig_data_offset + s.pos() - 2,
                format!("{cert_type} (expected 6, QE report certification data)"),
            ));
        }
        let cert_size = s.u32("certification_data_size")? as usize;
        let cert_offset = sig_data_offset + s.pos();
        let cert_data = s.take(cert_size, "certification_data")?;
        if s.pos() != sig_data.len() {
            return Err(FormatError::invalid(
                "signature_data_len",
                sig_len_offset,
                format!(
                    "{sig_len} but the signature data ends after {} bytes",
                    s.pos()
                ),
            ));
        }

        let mut c = Reader::new(cert_data);
        let qe_report_offset = cert_offset + c.pos();
        let qe_report = EnclaveReport::read(&mut c)?;
        let qe_report_signature = c.array("qe_report_signature")?;
        let auth_len = c.u16("qe_auth_data_size")? as usize;
        let qe_auth_data = c.take(auth_len, "qe_auth_data")?.to_vec();
        let inner_type = c.u16("pck_cert_chain.certification_data_type")?;
        if inner_type != CERT_DATA_PCK_CHAIN {
            return Err(FormatError::invalid(
                "pck_cert_chain.certification_data_type",
                cert_offset + c.pos() - 2,
                format!("{inner_type} (expected 5, PCK certificate chain)"),
            ));
        }
        let inner_size = c.u32("pck_cert_chain.size")? as usize;
        let pck_cert_chain_pem = c.take(inner_size, "pck_cert_chain")?.to_vec();
        if c.pos() != cert_data.len() {
            return Err(FormatError::invalid(
                "certification_data_size",
                cert_offset - 4,
                format!(
                    "{cert_size} but the QE report certification data ends after {} bytes",
                    c.pos()
                ),
            ));
        }

        let quote = Quote {
            header,
            body_type,
            body,
            signature,
            attestation_key,
            qe_report,
            qe_report_signature,
            qe_auth_data,
            pck_cert_chain_pem,
        };
        let layout = QuoteLayout {
            signed_len,
            qe_report_offset,
            structure_len,
        };
        Ok((quote, layout))
    }

    /// Length of the signed range: 632 for v4, 48 + 6 + body for v5.
    pub fn signed_len(&self) -> usize {
        HEADER_SIZE + self.descriptor_len() + self.body.size()
    }

    fn descriptor_len(&self) -> usize {
        if self.header.version == 4 {
            0
        } else {
            BODY_DESCRIPTOR_SIZE
        }
    }

    /// Serializes the quote structure (no padding), the mirror image of [`Quote::parse`]; length fields are
    /// recomputed from the contents. For v4 the body is written as TD 1.0 whatever `body_type` says; for v5,
    /// `body_type` is written as given and must agree with the body (3 with the TD 1.5 fields, 2 without) for the
    /// result to parse.
    pub fn to_bytes(&self) -> Vec<u8> {
        let inner_len = self.pck_cert_chain_pem.len();
        let cert_len = ENCLAVE_REPORT_SIZE + 64 + 2 + self.qe_auth_data.len() + 2 + 4 + inner_len;
        let sig_len = 64 + 64 + 2 + 4 + cert_len;
        let mut w = Writer::with_capacity(self.signed_len() + 4 + sig_len);
        self.header.write(&mut w);
        if self.header.version == 4 {
            let mut body = self.body.clone();
            body.tee_tcb_svn2 = None;
            body.mr_service_td = None;
            body.write(&mut w);
        } else {
            w.u16(self.body_type).u32(self.body.size() as u32);
            self.body.write(&mut w);
        }
        // Lengths are u32/u16 by format; a quote carries a few KiB of PEM and 32 bytes of auth data.
        w.u32(sig_len as u32)
            .bytes(&self.signature)
            .bytes(&self.attestation_key)
            .u16(CERT_DATA_QE_REPORT)
            .u32(cert_len as u32);
        self.qe_report.write(&mut w);
        w.bytes(&self.qe_report_signature)
            .u16(self.qe_auth_data.len() as u16)
            .bytes(&self.qe_auth_data)
            .u16(CERT_DATA_PCK_CHAIN)
            .u32(inner_len as u32)
            .bytes(&self.pck_cert_chain_pem);
        w.into_vec()
    }

    /// The PCK certificate chain as DER certificates, leaf first, as listed in the PEM.
    pub fn pck_chain_der(&self) -> Result<Vec<Vec<u8>>, FormatError> {
        pem::certificates(&self.pck_cert_chain_pem, "pck_cert_chain")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tdx::INTEL_QE_VENDOR_ID;

    fn pem_of(ders: &[&[u8]]) -> Vec<u8> {
        use base64::Engine as _;
        let mut out = String::new();
        for der in ders {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            out.push_str(&format!(
                "-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n"
            ));
        }
        out.push('\0');
        out.into_bytes()
    }

    /// A quote of the given version with distinct bytes in every field.
    pub(crate) fn sample_quote(version: u16, td15: bool) -> Quote {
        let svn2 = td15.then_some([0x22; 16]);
        let service = td15.then_some([0x33; 48]);
        Quote {
            header: QuoteHeader {
                version,
                att_key_type: 2,
                tee_type: 0x81,
                qe_svn: 7,
                pce_svn: 13,
                qe_vendor_id: INTEL_QE_VENDOR_ID,
                user_data: [0x44; 20],
            },
            body_type: if td15 { BODY_TYPE_TD15 } else { BODY_TYPE_TD10 },
            body: TdReport {
                tee_tcb_svn: [1; 16],
                mr_seam: [2; 48],
                mr_signer_seam: [3; 48],
                seam_attributes: [4; 8],
                td_attributes: [0, 0, 0, 0x10, 0, 0, 0, 0],
                xfam: [5; 8],
                mr_td: [6; 48],
                mr_config_id: [7; 48],
                mr_owner: [8; 48],
                mr_owner_config: [9; 48],
                rtmr: [[10; 48], [11; 48], [12; 48], [13; 48]],
                report_data: [14; 64],
                tee_tcb_svn2: svn2,
                mr_service_td: service,
            },
            signature: [15; 64],
            attestation_key: [16; 64],
            qe_report: EnclaveReport {
                cpu_svn: [17; 16],
                misc_select: 0,
                reserved1: [0; 28],
                attributes: [18; 16],
                mr_enclave: [19; 32],
                reserved2: [0; 32],
                mr_signer: [20; 32],
                reserved3: [0; 96],
                isv_prod_id: 2,
                isv_svn: 6,
                reserved4: [0; 60],
                report_data: [21; 64],
            },
            qe_report_signature: [22; 64],
            qe_auth_data: (0..32).collect(),
            pck_cert_chain_pem: pem_of(&[&[0x30, 1, 1], &[0x30, 2, 2], &[0x30, 3, 3]]),
        }
    }

    fn code(bytes: &[u8]) -> Option<&'static str> {
        Quote::parse(bytes).err().map(|e| e.code())
    }

    fn field(bytes: &[u8]) -> Option<&'static str> {
        match Quote::parse(bytes).err()? {
            FormatError::Truncated { field, .. } | FormatError::InvalidField { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }

    /// Offset of the signature_data_len field.
    fn sig_len_at(q: &Quote) -> usize {
        q.signed_len()
    }

    #[test]
    fn v4_v5_td10_and_v5_td15_round_trip() {
        for (version, td15) in [(4, false), (5, false), (5, true)] {
            let q = sample_quote(version, td15);
            let bytes = q.to_bytes();
            assert_eq!(
                Quote::parse(&bytes).as_ref().ok(),
                Some(&q),
                "v{version} td15={td15}"
            );
            assert_eq!(Quote::structure_len(&bytes).ok(), Some(bytes.len()));
            let expected_signed = match (version, td15) {
                (4, _) => 632,
                (_, false) => 48 + 6 + 584,
                _ => 702,
            };
            assert_eq!(q.signed_len(), expected_signed);
            assert_eq!(
                u32::from_le_bytes(
                    bytes[expected_signed..expected_signed + 4]
                        .try_into()
                        .unwrap_or([0; 4])
                ) as usize,
                bytes.len() - expected_signed - 4,
                "signature_data_len covers the rest"
            );
            assert_eq!(q.pck_chain_der().ok().map(|c| c.len()), Some(3));
        }
    }

    #[test]
    fn v4_quote_layout_matches_the_spec_offsets() {
        let bytes = sample_quote(4, false).to_bytes();
        assert_eq!(&bytes[0..2], &4u16.to_le_bytes());
        assert_eq!(bytes[48], 1, "TEE_TCB_SVN at 48");
        assert_eq!(bytes[184], 6, "MRTD at 184");
        assert_eq!(bytes[568], 14, "REPORTDATA at 568");
        assert_eq!(bytes[636], 15, "signature at 636");
        assert_eq!(bytes[700], 16, "attestation key at 700");
        assert_eq!(
            &bytes[764..766],
            &6u16.to_le_bytes(),
            "cert data type at 764"
        );
        assert_eq!(bytes[770], 17, "QE report at 770");
        assert_eq!(bytes[1154], 22, "QE report signature at 1154");
        assert_eq!(
            &bytes[1218..1220],
            &32u16.to_le_bytes(),
            "qe_auth size at 1218"
        );
        assert_eq!(
            &bytes[1252..1254],
            &5u16.to_le_bytes(),
            "inner cert type at 1220 + 32"
        );
    }

    #[test]
    fn trailing_zero_padding_is_tolerated_and_nonzero_refused() {
        let mut bytes = sample_quote(4, false).to_bytes();
        let end = bytes.len();
        bytes.resize(end + 100, 0);
        assert!(Quote::parse(&bytes).is_ok());
        assert_eq!(Quote::structure_len(&bytes).ok(), Some(end));
        bytes[end + 50] = 1;
        assert_eq!(
            Quote::parse(&bytes).err(),
            Some(FormatError::TrailingBytes {
                what: "TDX quote",
                offset: end + 50
            })
        );
        assert_eq!(code(&bytes), Some("evidence_malformed"));
        assert!(Quote::parse_ignoring_trailing_bytes(&bytes).is_ok());
        assert_eq!(Quote::structure_len(&bytes).ok(), Some(end));
    }

    #[test]
    fn every_truncation_is_evidence_malformed() {
        for (version, td15) in [(4, false), (5, true)] {
            let bytes = sample_quote(version, td15).to_bytes();
            for len in 0..bytes.len() {
                assert_eq!(
                    code(&bytes[..len]),
                    Some("evidence_malformed"),
                    "v{version} cut at {len}"
                );
            }
        }
    }

    #[test]
    fn truncation_names_each_length_field() {
        let q = sample_quote(5, true);
        let bytes = q.to_bytes();
        let at = sig_len_at(&q);
        assert_eq!(field(&bytes[..49]), Some("body_type"));
        assert_eq!(field(&bytes[..52]), Some("body_size"));
        assert_eq!(field(&bytes[..60]), Some("body.tee_tcb_svn"));
        assert_eq!(field(&bytes[..at + 2]), Some("signature_data_len"));
        assert_eq!(field(&bytes[..at + 10]), Some("signature_data"));
        // Shrink each inner length so the data it should cover runs past its parent.
        let cert_size_at = at + 4 + 128 + 2;
        let mut short = bytes.clone();
        short[at..at + 4].copy_from_slice(&200u32.to_le_bytes());
        short.truncate(at + 4 + 200);
        assert_eq!(field(&short), Some("certification_data"));
        let auth_at = cert_size_at + 4 + 384 + 64;
        let mut big_auth = bytes.clone();
        big_auth[auth_at..auth_at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(field(&big_auth), Some("qe_auth_data"));
        let inner_size_at = auth_at + 2 + 32 + 2;
        let mut big_inner = bytes.clone();
        big_inner[inner_size_at..inner_size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(field(&big_inner), Some("pck_cert_chain"));
        let mut big_cert = bytes.clone();
        big_cert[cert_size_at..cert_size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(field(&big_cert), Some("certification_data"));
    }

    #[test]
    fn inconsistent_length_fields_are_evidence_malformed() {
        let q = sample_quote(4, false);
        let bytes = q.to_bytes();
        let at = sig_len_at(&q);
        // signature_data_len larger than its content (bytes appended inside the signature data).
        let mut longer = bytes.clone();
        let sig_len = u32::from_le_bytes(longer[at..at + 4].try_into().unwrap_or([0; 4]));
        longer[at..at + 4].copy_from_slice(&(sig_len + 2).to_le_bytes());
        longer.extend_from_slice(&[0, 0]);
        assert_eq!(field(&longer), Some("signature_data_len"));
        // certification_data_size larger than its content.
        let cert_size_at = at + 4 + 128 + 2;
        let mut cert_longer = bytes.clone();
        let cert_len = u32::from_le_bytes(
            cert_longer[cert_size_at..cert_size_at + 4]
                .try_into()
                .unwrap_or([0; 4]),
        );
        cert_longer[cert_size_at..cert_size_at + 4].copy_from_slice(&(cert_len + 2).to_le_bytes());
        cert_longer[at..at + 4].copy_from_slice(&(sig_len + 2).to_le_bytes());
        cert_longer.extend_from_slice(&[0, 0]);
        assert_eq!(field(&cert_longer), Some("certification_data_size"));
    }

    #[test]
    fn bogus_certification_data_types_are_evidence_malformed() {
        let q = sample_quote(4, false);
        let bytes = q.to_bytes();
        let outer_at = sig_len_at(&q) + 4 + 128;
        for bogus in [0u16, 1, 4, 5, 7, 0xFFFF] {
            let mut b = bytes.clone();
            b[outer_at..outer_at + 2].copy_from_slice(&bogus.to_le_bytes());
            assert_eq!(code(&b), Some("evidence_malformed"), "outer type {bogus}");
            assert_eq!(field(&b), Some("certification_data_type"));
        }
        let inner_at = outer_at + 6 + 384 + 64 + 2 + 32;
        for bogus in [0u16, 3, 4, 6] {
            let mut b = bytes.clone();
            b[inner_at..inner_at + 2].copy_from_slice(&bogus.to_le_bytes());
            assert_eq!(
                field(&b),
                Some("pck_cert_chain.certification_data_type"),
                "inner type {bogus}"
            );
        }
    }

    #[test]
    fn unsupported_versions_and_body_types() {
        let bytes = sample_quote(5, true).to_bytes();
        for v in [0u16, 1, 3, 6, 0xFFFF] {
            let mut b = bytes.clone();
            b[0..2].copy_from_slice(&v.to_le_bytes());
            assert_eq!(code(&b), Some("unsupported_version"), "version {v}");
        }
        for body_type in [0u16, 1, 4, 5] {
            let mut b = bytes.clone();
            b[48..50].copy_from_slice(&body_type.to_le_bytes());
            assert_eq!(
                code(&b),
                Some("unsupported_version"),
                "body type {body_type}"
            );
        }
    }

    #[test]
    fn body_size_must_match_body_type() {
        let bytes = sample_quote(5, true).to_bytes();
        for size in [0u32, 584, 647, 649, u32::MAX] {
            let mut b = bytes.clone();
            b[50..54].copy_from_slice(&size.to_le_bytes());
            assert_eq!(field(&b), Some("body_size"), "size {size}");
            assert_eq!(code(&b), Some("evidence_malformed"));
        }
    }

    #[test]
    fn non_tdx_headers_are_evidence_malformed() {
        let bytes = sample_quote(4, false).to_bytes();
        let mut sgx = bytes.clone();
        sgx[4] = 0;
        assert_eq!(field(&sgx), Some("header.tee_type"));
        let mut p384 = bytes.clone();
        p384[2] = 3;
        assert_eq!(field(&p384), Some("header.att_key_type"));
        assert_eq!(code(&p384), Some("evidence_malformed"));
    }

    #[test]
    fn v4_to_bytes_ignores_td15_fields() {
        let mut q = sample_quote(4, false);
        q.body.tee_tcb_svn2 = Some([9; 16]);
        let parsed = Quote::parse(&q.to_bytes()).ok();
        assert_eq!(parsed.map(|p| p.body.tee_tcb_svn2), Some(None));
    }
}
