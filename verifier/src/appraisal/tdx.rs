//! TDX appraisal: DESIGN §3's checklist (tdx.md §11) over a raw quote (v4, v5 with TD 1.0/1.5 bodies, trailing zero
//! padding tolerated), its collateral and the trust anchors, with `dcap-qvl` 0.7.1 and an explicit root as the engine
//! for steps 2–5. dcap-qvl's plain `verify` accepts every TCB status but Revoked, so the status is never judged here:
//! it is returned in the facts, and [`super::policy::apply_policy`] checks it against the allowed set.
//!
//! dcap-qvl reports failures as `anyhow` text; [`map_engine_error`] turns each into a stable code (tested one by one).

use dcap_qvl::quote::{Quote, Report};
use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;

use super::roots::TrustAnchors;
use super::x509::{pem_certificates, ParsedCert};
use super::Verified;
use crate::error::{ErrorCode, Refusal};

/// TDX collateral (tdx.md §4, §7), kept in the form dcap-qvl consumes, built once and reused for many quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxCollateral {
    inner: QuoteCollateralV3,
}

/// The collateral items as served by Intel PCS / a PCCS, or as files in the vectors' `collateral/` layout.
#[derive(Clone, Copy, Debug)]
pub struct TdxCollateralParts<'a> {
    /// `{"tcbInfo":{…},"signature":"<hex>"}`; the signature covers the exact text of the `tcbInfo` value.
    pub tcb_info_json: &'a str,
    pub tcb_info_issuer_chain_pem: &'a str,
    /// `{"enclaveIdentity":{…},"signature":"<hex>"}`.
    pub qe_identity_json: &'a str,
    pub qe_identity_issuer_chain_pem: &'a str,
    pub pck_crl_der: &'a [u8],
    pub pck_crl_issuer_chain_pem: &'a str,
    pub root_ca_crl_der: &'a [u8],
}

impl TdxCollateral {
    /// Build from the PCS items. Malformed items are `collateral_missing` (no usable collateral).
    pub fn from_parts(parts: TdxCollateralParts<'_>) -> Result<TdxCollateral, Refusal> {
        let (tcb_info, tcb_info_signature) = split_signed_json(parts.tcb_info_json, "tcbInfo")?;
        let (qe_identity, qe_identity_signature) =
            split_signed_json(parts.qe_identity_json, "enclaveIdentity")?;
        for (name, pem) in [
            ("TCB info issuer chain", parts.tcb_info_issuer_chain_pem),
            (
                "QE identity issuer chain",
                parts.qe_identity_issuer_chain_pem,
            ),
            ("PCK CRL issuer chain", parts.pck_crl_issuer_chain_pem),
        ] {
            let certs =
                pem_certificates(pem.as_bytes()).map_err(|e| missing(format!("{name}: {e}")))?;
            if certs.is_empty() {
                return Err(missing(format!("{name} holds no certificate")));
            }
        }
        Ok(TdxCollateral {
            inner: QuoteCollateralV3 {
                pck_crl_issuer_chain: parts.pck_crl_issuer_chain_pem.to_string(),
                root_ca_crl: parts.root_ca_crl_der.to_vec(),
                pck_crl: parts.pck_crl_der.to_vec(),
                tcb_info_issuer_chain: parts.tcb_info_issuer_chain_pem.to_string(),
                tcb_info: tcb_info.to_string(),
                tcb_info_signature,
                qe_identity_issuer_chain: parts.qe_identity_issuer_chain_pem.to_string(),
                qe_identity: qe_identity.to_string(),
                qe_identity_signature,
                // The PCK chain always comes from the quote (certification data type 5).
                pck_certificate_chain: None,
            },
        })
    }

    /// Wrap collateral already in dcap-qvl's form (e.g. a PCCS client's answer). A PCK chain inside it is dropped:
    /// Locus takes the PCK chain from the quote.
    pub fn from_dcap_qvl(mut collateral: QuoteCollateralV3) -> TdxCollateral {
        collateral.pck_certificate_chain = None;
        TdxCollateral { inner: collateral }
    }

    /// The collateral in dcap-qvl's form.
    pub fn as_dcap_qvl(&self) -> &QuoteCollateralV3 {
        &self.inner
    }
}

fn missing(msg: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::CollateralMissing, msg)
}

/// Split `{"<key>":{…},"signature":"<hex>"}` into the exact text of the `<key>` value and the decoded signature.
fn split_signed_json<'a>(text: &'a str, key: &str) -> Result<(&'a str, Vec<u8>), Refusal> {
    serde_json::from_str::<serde_json::Value>(text)
        .map_err(|e| missing(format!("{key} document is not JSON: {e}")))?;
    let body = json_member(text, key)
        .ok_or_else(|| missing(format!("collateral has no top-level \"{key}\"")))?;
    let sig = json_member(text, "signature")
        .ok_or_else(|| missing(format!("{key} document has no signature")))?;
    let sig: String = serde_json::from_str(sig)
        .map_err(|e| missing(format!("{key} signature is not a string: {e}")))?;
    let sig =
        hex::decode(sig.trim()).map_err(|e| missing(format!("{key} signature is not hex: {e}")))?;
    Ok((body, sig))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// End (exclusive) of the JSON string starting at `i` (which must be `"`).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    while let Some(&c) = b.get(j) {
        match c {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// End (exclusive) of the JSON value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                j += 1;
            }
            Some(j)
        }
    }
}

/// The exact text of a top-level member's value in a JSON object (no re-encoding: signatures cover these bytes).
pub(crate) fn json_member<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        if b.get(i) == Some(&b'}') {
            return None;
        }
        let k_end = string_end(b, i)?;
        let k = text.get(i + 1..k_end - 1)?;
        i = skip_ws(b, k_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let v_end = value_end(b, i)?;
        if k == key {
            return text.get(i..v_end);
        }
        i = skip_ws(b, v_end);
        match b.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

/// What a verified TDX quote says. Only [`appraise_tdx`] produces it wrapped in [`Verified`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxFacts {
    pub quote_version: u16,
    /// 2 = TD 1.0, 3 = TD 1.5 (v5 body type; 2 for every v4 quote).
    pub body_type: u16,
    pub tee_tcb_svn: [u8; 16],
    pub mr_seam: [u8; 48],
    pub mr_signer_seam: [u8; 48],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mr_td: [u8; 48],
    pub mr_config_id: [u8; 48],
    pub mr_owner: [u8; 48],
    pub mr_owner_config: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub report_data: [u8; 64],
    /// TD_ATTRIBUTES bit 0.
    pub debug: bool,
    pub fmspc: [u8; 6],
    /// From the PCK certificate: the platform identity for residency (DESIGN §4).
    pub ppid: Vec<u8>,
    /// Intel's TCB status string (tdx.md §6), e.g. `UpToDate`, `OutOfDate`.
    pub tcb_status: String,
    pub advisory_ids: Vec<String>,
}

const HEADER_LEN: usize = 48;
const TD10_LEN: usize = 584;
const TD15_LEN: usize = 648;
const TD15EX_LEN: usize = 885;

fn malformed(msg: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::EvidenceMalformed, msg)
}

fn le_u16(b: &[u8], at: usize) -> Result<u16, Refusal> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| malformed(format!("quote truncated at offset {at}")))
}

fn le_u32(b: &[u8], at: usize) -> Result<u32, Refusal> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| malformed(format!("quote truncated at offset {at}")))
}

/// The quote structure found by walking the length fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct QuoteStructure {
    len: usize,
    version: u16,
    body_type: u16,
    /// Offset of the first non-zero byte after the structure, if any.
    trailing_nonzero: Option<usize>,
}

impl QuoteStructure {
    /// Bytes after the structure may only be zero padding (DESIGN §3).
    fn check_trailing(&self) -> Result<(), Refusal> {
        match self.trailing_nonzero {
            Some(at) => Err(malformed(format!(
                "non-zero byte after the end of the quote structure at offset {at}"
            ))),
            None => Ok(()),
        }
    }
}

/// Step 1 (structure): walk the length fields to the end of the quote structure.
fn quote_structure(raw: &[u8]) -> Result<QuoteStructure, Refusal> {
    let version = le_u16(raw, 0)?;
    let att_key_type = le_u16(raw, 2)?;
    let tee_type = le_u32(raw, 4)?;
    if !matches!(version, 4 | 5) {
        return Err(Refusal::new(
            ErrorCode::UnsupportedVersion,
            format!("quote version {version} (4 or 5 accepted)"),
        ));
    }
    if tee_type != 0x81 {
        return Err(malformed(format!(
            "tee_type {tee_type:#x} is not TDX (0x81)"
        )));
    }
    if att_key_type != 2 {
        return Err(malformed(format!(
            "att_key_type {att_key_type} is not 2 (ECDSA P-256)"
        )));
    }
    let (body_type, body_end) = if version == 4 {
        (2u16, HEADER_LEN + TD10_LEN)
    } else {
        let body_type = le_u16(raw, HEADER_LEN)?;
        let body_size = le_u32(raw, HEADER_LEN + 2)? as usize;
        let want = match body_type {
            2 => TD10_LEN,
            3 => TD15_LEN,
            4 => TD15EX_LEN,
            other => {
                return Err(Refusal::new(
                    ErrorCode::UnsupportedVersion,
                    format!("v5 body type {other}"),
                ));
            }
        };
        if body_size != want {
            return Err(malformed(format!(
                "v5 body size {body_size} is not {want} for body type {body_type}"
            )));
        }
        (body_type, HEADER_LEN + 6 + want)
    };
    let sig_len = le_u32(raw, body_end)? as usize;
    let end = body_end
        .checked_add(4)
        .and_then(|e| e.checked_add(sig_len))
        .filter(|e| *e <= raw.len())
        .ok_or_else(|| {
            malformed(format!(
                "signature data length {sig_len} runs past the end of the quote"
            ))
        })?;
    // The signature data must be exactly: signature (64) ‖ attestation key (64) ‖ certification data type 6 with its
    // size ‖ QE report (384) ‖ QE report signature (64) ‖ auth data (u16 size + data) ‖ certification data type 5
    // with its size ‖ PCK chain. The lengths are outside every signature, so they must agree with each other.
    let sig_start = body_end + 4;
    let outer_type = le_u16(raw, sig_start + 128)?;
    if outer_type != 6 {
        return Err(malformed(format!(
            "certification data type {outer_type} is not 6 (QE report certification data)"
        )));
    }
    let outer_size = le_u32(raw, sig_start + 130)? as usize;
    let qe_start = sig_start + 134;
    let auth_size = le_u16(raw, qe_start + 448)? as usize;
    let inner_at = qe_start + 450 + auth_size;
    let inner_type = le_u16(raw, inner_at)?;
    if inner_type != 5 {
        return Err(malformed(format!(
            "inner certification data type {inner_type} is not 5 (PCK chain)"
        )));
    }
    let inner_size = le_u32(raw, inner_at + 2)? as usize;
    let inner_end = inner_at + 6 + inner_size;
    if qe_start + outer_size != inner_end || inner_end != end {
        return Err(malformed(format!(
            "length fields disagree: signature data ends at {end}, certification data at {}, PCK chain at {inner_end}",
            qe_start + outer_size
        )));
    }
    Ok(QuoteStructure {
        len: end,
        version,
        body_type,
        trailing_nonzero: raw[end..].iter().position(|&b| b != 0).map(|p| end + p),
    })
}

/// Turn a dcap-qvl failure (its full `{:#}` error chain) into a stable code. Matches dcap-qvl 0.7.1's messages and
/// webpki's error names, most specific first. An unrecognised failure is still a refusal of the evidence, reported
/// as `evidence_malformed` with the engine's text.
pub(crate) fn map_engine_error(text: &str) -> Refusal {
    let has = |needle: &str| text.contains(needle);
    let code = if has("Revoked") || has("CertRevoked") {
        ErrorCode::Revoked
    } else if has("CrlExpired")
        || has("CrlNotValidYet")
        || has("TCBInfo expired")
        || has("TCBInfo issue date is in the future")
        || has("QE Identity expired")
        || has("QE Identity issue date is in the future")
    {
        ErrorCode::CollateralExpired
    } else if has("CertExpired") || has("CertNotValidYet") {
        ErrorCode::CertificateExpired
    } else if has("No matching TCB level")
        || has("below minimum required from TDX module TCB levels")
        || has("No TDX module identity")
        || has("QE ISVSVN")
        || has("TDX module MRSIGNER mismatch")
        || has("TDX module SEAMATTRIBUTES")
    {
        ErrorCode::TcbNotSupported
    } else if has("signature is invalid")
        || has("Signature is invalid")
        || has("BadSignature")
        || has("InvalidCrlSignatureForPublicKey")
        || has("InvalidSignatureForPublicKey")
        || has("QE report hash mismatch")
    {
        ErrorCode::SignatureInvalid
    } else if has("UnknownIssuer")
        || has("Failed to load root ca")
        || has("QE MRSIGNER mismatch")
        || has("QE ISVPRODID mismatch")
        || has("QE MISCSELECT mismatch")
        || has("QE ATTRIBUTES mismatch")
        || has("QE report validation failed")
        || has("must be issued directly by the root CA")
        || has("UnknownRevocationStatus")
    {
        ErrorCode::ChainUntrusted
    } else if has("Fmspc mismatch")
        || has("non-TDX TCB info")
        || has("Unsupported QE Identity id/version")
        || has("Failed to decode TcbInfo")
        || has("Failed to decode QeIdentity")
        || has("Failed to parse root CA CRL")
        || has("Failed to parse PCK CRL")
    {
        ErrorCode::CollateralMissing
    } else if has("Debug mode is enabled") || has("TD profiling is enabled") {
        ErrorCode::DebugEnabled
    } else if has("Reserved bits in TD attributes")
        || has("TD migration is enabled")
        || has("SERVTD_EXT is enabled")
        || has("SEPT_VE_DISABLE is not enabled")
        || has("Invalid MR service TD")
    {
        // TD attributes no TDX attestation accepts (tdx.md §3): the evidence is not a TD Locus can appraise.
        ErrorCode::EvidenceMalformed
    } else {
        ErrorCode::EvidenceMalformed
    };
    Refusal::new(code, format!("dcap-qvl: {text}"))
}

/// Appraise a raw TDX quote against `collateral`.
pub fn appraise_tdx(
    raw: &[u8],
    collateral: &TdxCollateral,
    anchors: &TrustAnchors,
    now_unix: u64,
) -> Result<Verified<TdxFacts>, Refusal> {
    // Step 1: parse header, body and signature data (v4, v5 types 2/3/4); trailing zero padding tolerated. Non-zero
    // bytes after the structure are refused too, but only once the quote itself has been judged, so a quote's own
    // failure (e.g. no matching TCB level) is what gets reported; the bytes are outside every signature.
    let structure = quote_structure(raw)?;
    let (quote_version, body_type) = (structure.version, structure.body_type);
    let quote_bytes = &raw[..structure.len];
    let quote =
        Quote::parse(quote_bytes).map_err(|e| malformed(format!("quote does not parse: {e:#}")))?;
    let chain = dcap_qvl::intel::extract_cert_chain(&quote)
        .map_err(|e| malformed(format!("quote has no PCK certificate chain: {e:#}")))?;
    let pck_leaf = chain
        .first()
        .ok_or_else(|| malformed("empty PCK certificate chain"))?;

    // Step 2 (root): the chain must end at the pinned Intel SGX Root CA, or at a trusted simulator root.
    let mut root_der = anchors.intel_root_der().to_vec();
    let mut simulated = false;
    if let Some(last) = chain
        .last()
        .filter(|c| chain.len() > 1 && c.as_slice() != anchors.intel_root_der())
    {
        let last_cert = ParsedCert::parse(last, "PCK chain root")?;
        if last_cert.self_issued() {
            anchors.judge_unpinned_root(
                &last_cert,
                "PCK chain does not end at the pinned Intel SGX Root CA",
            )?;
            root_der = last.clone();
            simulated = true;
        }
    }

    // Steps 2–5: PCK chain with both CRLs, QE report signature and binding, quote signature, TCB info and QE
    // identity (signatures, chains, windows) and Intel's TCB-level matching. Debug is judged by policy, not here.
    let verifier = QuoteVerifier::new(root_der).allow_debug(true);
    let verified = verifier
        .verify(quote_bytes, collateral.as_dcap_qvl(), now_unix)
        .map_err(|e| map_engine_error(&format!("{e:#}")))?;
    structure.check_trailing()?;

    // Step 6: facts out.
    let td = match &verified.report {
        Report::TD10(r) => r,
        Report::TD15(r) => &r.base,
        Report::TD15Ex(r) => &r.base.base,
        Report::SgxEnclave(_) => return Err(malformed("an SGX enclave quote is not TDX evidence")),
    };
    let pck = dcap_qvl::intel::parse_pck_extension(pck_leaf).map_err(|e| {
        Refusal::new(
            ErrorCode::ChainUntrusted,
            format!("PCK certificate extensions: {e:#}"),
        )
    })?;
    let facts = TdxFacts {
        quote_version,
        body_type,
        tee_tcb_svn: td.tee_tcb_svn,
        mr_seam: td.mr_seam,
        mr_signer_seam: td.mr_signer_seam,
        td_attributes: td.td_attributes,
        xfam: td.xfam,
        mr_td: td.mr_td,
        mr_config_id: td.mr_config_id,
        mr_owner: td.mr_owner,
        mr_owner_config: td.mr_owner_config,
        rtmr: [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3],
        report_data: td.report_data,
        debug: td.td_attributes[0] & 1 != 0,
        fmspc: pck.fmspc,
        ppid: verified.ppid.clone(),
        tcb_status: verified.status.clone(),
        advisory_ids: verified.advisory_ids.clone(),
    };
    Ok(Verified::new(facts, simulated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_member_returns_the_exact_value_text() {
        let text = r#" { "tcbInfo" : {"a":"x}\"y","b":[1,{"c":2}]} , "signature":"abcd" } "#;
        assert_eq!(
            json_member(text, "tcbInfo"),
            Some(r#"{"a":"x}\"y","b":[1,{"c":2}]}"#)
        );
        assert_eq!(json_member(text, "signature"), Some(r#""abcd""#));
        assert_eq!(json_member(text, "missing"), None);
        assert_eq!(json_member("[1]", "x"), None);
    }

    #[test]
    fn only_zero_padding_may_follow_the_quote_structure() {
        let mut raw = minimal_v4(10);
        let end = raw.len() - 10;
        let s = quote_structure(&raw).expect("structure");
        assert_eq!(s.len, end);
        assert_eq!(s.check_trailing(), Ok(()));
        let last = raw.len() - 1;
        raw[last] = 1;
        let s = quote_structure(&raw).expect("structure");
        assert_eq!(s.trailing_nonzero, Some(last));
        assert_eq!(
            s.check_trailing().err().map(|r| r.code),
            Some(ErrorCode::EvidenceMalformed)
        );
    }

    /// A v4 quote skeleton whose length fields agree (zero auth data, empty PCK chain), plus `pad` zero bytes.
    fn minimal_v4(pad: usize) -> Vec<u8> {
        let sig_start = HEADER_LEN + TD10_LEN + 4;
        let sig_len = 64 + 64 + 6 + 384 + 64 + 2 + 6;
        let mut raw = vec![0u8; sig_start + sig_len + pad];
        raw[0] = 4;
        raw[2] = 2;
        raw[4] = 0x81;
        raw[sig_start - 4..sig_start].copy_from_slice(&(sig_len as u32).to_le_bytes());
        raw[sig_start + 128] = 6;
        raw[sig_start + 130..sig_start + 134]
            .copy_from_slice(&((384 + 64 + 2 + 6) as u32).to_le_bytes());
        raw[sig_start + 134 + 450] = 5;
        raw
    }

    #[test]
    fn length_fields_that_disagree_are_evidence_malformed() {
        let sig_start = HEADER_LEN + TD10_LEN + 4;
        for (at, delta) in [
            (sig_start - 4, 1u8),
            (sig_start + 130, 1),
            (sig_start + 134 + 452, 1),
        ] {
            let mut raw = minimal_v4(10);
            raw[at] = raw[at].wrapping_add(delta);
            assert_eq!(
                quote_structure(&raw).err().map(|r| r.code),
                Some(ErrorCode::EvidenceMalformed),
                "length at {at}"
            );
        }
        let mut raw = minimal_v4(0);
        raw[sig_start + 128] = 7;
        assert_eq!(
            quote_structure(&raw).err().map(|r| r.code),
            Some(ErrorCode::EvidenceMalformed)
        );
    }

    #[test]
    fn unknown_quote_version_is_unsupported_version() {
        let mut raw = vec![0u8; 700];
        raw[0] = 3;
        raw[4] = 0x81;
        assert_eq!(
            quote_structure(&raw).err().map(|r| r.code),
            Some(ErrorCode::UnsupportedVersion)
        );
        raw[0] = 5;
        raw[2] = 2;
        raw[HEADER_LEN] = 9;
        assert_eq!(
            quote_structure(&raw).err().map(|r| r.code),
            Some(ErrorCode::UnsupportedVersion)
        );
    }

    #[test]
    fn engine_messages_map_to_their_codes() {
        let cases = [
            ("TCB status is invalid: Revoked", ErrorCode::Revoked),
            (
                "Failed to verify certificate chain: CertRevoked",
                ErrorCode::Revoked,
            ),
            (
                "CrlExpired { time: UnixTime(1), next_update: UnixTime(0) }",
                ErrorCode::CollateralExpired,
            ),
            ("TCBInfo expired", ErrorCode::CollateralExpired),
            ("QE Identity expired", ErrorCode::CollateralExpired),
            (
                "Failed to verify certificate chain: CertExpired { time: .. }",
                ErrorCode::CertificateExpired,
            ),
            ("No matching TCB level found", ErrorCode::TcbNotSupported),
            (
                "ISV enclave report signature is invalid",
                ErrorCode::SignatureInvalid,
            ),
            (
                "Signature is invalid for qe_report in quote",
                ErrorCode::SignatureInvalid,
            ),
            (
                "Signature is invalid for tcb_info in quote_collateral",
                ErrorCode::SignatureInvalid,
            ),
            ("QE report hash mismatch", ErrorCode::SignatureInvalid),
            (
                "Failed to verify certificate chain: UnknownIssuer",
                ErrorCode::ChainUntrusted,
            ),
            ("Fmspc mismatch", ErrorCode::CollateralMissing),
            ("Debug mode is enabled", ErrorCode::DebugEnabled),
            (
                "SEPT_VE_DISABLE is not enabled",
                ErrorCode::EvidenceMalformed,
            ),
            ("Invalid MR service TD", ErrorCode::EvidenceMalformed),
            (
                "Failed to verify certificate chain: CertNotValidYet",
                ErrorCode::CertificateExpired,
            ),
            (
                "QE MRSIGNER mismatch: expected A, got B",
                ErrorCode::ChainUntrusted,
            ),
            (
                "TDX module ISVSVN 1 is below minimum required from TDX module TCB levels",
                ErrorCode::TcbNotSupported,
            ),
            (
                "Failed to decode quote: Not enough data",
                ErrorCode::EvidenceMalformed,
            ),
        ];
        for (msg, code) in cases {
            assert_eq!(map_engine_error(msg).code, code, "{msg}");
        }
    }
}
