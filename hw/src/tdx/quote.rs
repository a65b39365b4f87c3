//! TDX quote versions 4 and 5 (tdx.md §1–§2).
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
    /// recomputed from the contents. For v4 the body is written as TD 1.0 whatever `body_type` says.
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
