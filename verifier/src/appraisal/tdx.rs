//! TDX appraisal: the checklist of docs/architecture.md#appraisal over a raw quote (v4, v5 with TD 1.0/1.5 bodies, trailing zero
//! padding tolerated), its collateral and the trust anchors, with `dcap-qvl` 0.7.1 and an explicit root as the engine
//! for steps 2–5. dcap-qvl's plain `verify` accepts every TCB status but Revoked, so the status is never judged here:
//! it is returned in the facts, and [`super::policy::apply_policy`] checks it against the allowed set.
//!
//! dcap-qvl reports failures as `anyhow` text; [`map_engine_error`] turns each into a stable code (tested one by one).
//!
//! A verdict is memoized per platform ([`super::tdx_memo`]), successes and the engine's refusals that the quote and
//! collateral alone decide (e.g. `tcb_not_supported`): a later quote from the same platform, with the same collateral
//! and anchors and identical bytes except REPORTDATA and the quote signature, inside every time window the full path
//! checked, only has its quote signature verified (aws-lc-rs, the per-request backend) over the received bytes.

use std::sync::OnceLock;

use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;
use der::Decode;
use locus_hw::tdx::SignedQuote;
use ring::digest::{Context, SHA256};
use serde_json::value::RawValue;

use super::roots::TrustAnchors;
use super::tdx_memo::{self, Window};
use super::x509::{pem_certificates, ParsedCert};
use super::Verified;
use crate::error::{ErrorCode, Refusal};

/// TDX collateral (Intel PCS), kept in the form dcap-qvl consumes, built once and reused for many quotes.
#[derive(Clone, Debug)]
pub struct TdxCollateral {
    inner: QuoteCollateralV3,
    /// Identity and time window for the memo, computed on first use from `inner`.
    memo: OnceLock<CollateralMemo>,
}

impl PartialEq for TdxCollateral {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl Eq for TdxCollateral {}

/// What the memo needs from the collateral: a digest of every byte field dcap-qvl uses, and the intersection of the
/// collateral's own time windows (`None` when one cannot be read: then nothing is memoized with it).
#[derive(Clone, Debug)]
struct CollateralMemo {
    identity: [u8; 32],
    window: Option<Window>,
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
        let (tcb_info, tcb_info_signature) =
            split_signed_json(parts.tcb_info_json, SignedBody::TcbInfo)?;
        let (qe_identity, qe_identity_signature) =
            split_signed_json(parts.qe_identity_json, SignedBody::EnclaveIdentity)?;
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
            memo: OnceLock::new(),
        })
    }

    /// Wrap collateral already in dcap-qvl's form (e.g. a PCCS client's answer). A PCK chain inside it is dropped:
    /// Locus takes the PCK chain from the quote.
    pub fn from_dcap_qvl(mut collateral: QuoteCollateralV3) -> TdxCollateral {
        collateral.pck_certificate_chain = None;
        TdxCollateral {
            inner: collateral,
            memo: OnceLock::new(),
        }
    }

    /// The collateral in dcap-qvl's form.
    pub fn as_dcap_qvl(&self) -> &QuoteCollateralV3 {
        &self.inner
    }

    fn memo_info(&self) -> &CollateralMemo {
        self.memo.get_or_init(|| {
            let c = &self.inner;
            let mut ctx = Context::new(&SHA256);
            ctx.update(b"locus/tdx-collateral/v1");
            for field in [
                c.pck_crl_issuer_chain.as_bytes(),
                &c.root_ca_crl,
                &c.pck_crl,
                c.tcb_info_issuer_chain.as_bytes(),
                c.tcb_info.as_bytes(),
                &c.tcb_info_signature,
                c.qe_identity_issuer_chain.as_bytes(),
                c.qe_identity.as_bytes(),
                &c.qe_identity_signature,
            ] {
                put(&mut ctx, field);
            }
            match &c.pck_certificate_chain {
                None => ctx.update(&[0]),
                Some(chain) => {
                    ctx.update(&[1]);
                    put(&mut ctx, chain.as_bytes());
                }
            }
            CollateralMemo {
                identity: finish(ctx),
                window: collateral_window(c),
            }
        })
    }
}

/// Length-prefixed input to a digest.
fn put(ctx: &mut Context, bytes: &[u8]) {
    ctx.update(&(bytes.len() as u64).to_be_bytes());
    ctx.update(bytes);
}

fn finish(ctx: Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `issueDate`/`nextUpdate` of a TCB info or QE identity body (the fields dcap-qvl checks).
#[derive(serde::Deserialize)]
struct IssuedWindow {
    #[serde(rename = "issueDate")]
    issue_date: String,
    #[serde(rename = "nextUpdate")]
    next_update: String,
}

fn rfc3339_secs(text: &str) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

fn json_window(w: Window, json: &str) -> Option<Window> {
    let d: IssuedWindow = serde_json::from_str(json).ok()?;
    Some(w.and(rfc3339_secs(&d.issue_date)?, rfc3339_secs(&d.next_update)?))
}

/// A CRL is usable from thisUpdate while `now < nextUpdate` (webpki's rule).
fn crl_window(w: Window, der: &[u8]) -> Option<Window> {
    let crl = x509_cert::crl::CertificateList::from_der(der).ok()?;
    let tbs = &crl.tbs_cert_list;
    let this_update = tbs.this_update.to_unix_duration().as_secs();
    let next_update = tbs.next_update?.to_unix_duration().as_secs();
    Some(w.and(this_update, next_update.checked_sub(1)?))
}

fn cert_window(w: Window, der: &[u8]) -> Option<Window> {
    let (not_before, not_after) = ParsedCert::parse(der, "memo").ok()?.validity();
    Some(w.and(not_before, not_after))
}

fn pem_window(mut w: Window, pem: &str) -> Option<Window> {
    let certs = pem_certificates(pem.as_bytes()).ok()?;
    if certs.is_empty() {
        return None;
    }
    for der in &certs {
        w = cert_window(w, der)?;
    }
    Some(w)
}

/// The intersection of the collateral's windows: TCB info and QE identity issueDate..nextUpdate, both CRLs, and every
/// certificate of the three issuer chains.
fn collateral_window(c: &QuoteCollateralV3) -> Option<Window> {
    let mut w = json_window(Window::ALL, &c.tcb_info)?;
    w = json_window(w, &c.qe_identity)?;
    w = crl_window(w, &c.root_ca_crl)?;
    w = crl_window(w, &c.pck_crl)?;
    w = pem_window(w, &c.tcb_info_issuer_chain)?;
    w = pem_window(w, &c.qe_identity_issuer_chain)?;
    w = pem_window(w, &c.pck_crl_issuer_chain)?;
    if let Some(chain) = &c.pck_certificate_chain {
        w = pem_window(w, chain)?;
    }
    Some(w)
}

/// Offset of REPORTDATA inside a TD report body (after TEE_TCB_SVN … RTMR3).
const REPORT_DATA_OFFSET: usize = 520;

/// The memo key of a quote (see [`super::tdx_memo`]), or `None` if the ranges are not where they must be.
fn memo_key(
    signed: &SignedQuote,
    collateral_identity: &[u8; 32],
    anchors: &TrustAnchors,
) -> Option<[u8; 32]> {
    let quote = signed.quote();
    let signed_bytes = signed.signed_bytes();
    let structure = signed.structure_bytes();
    let body_start = signed_bytes.len().checked_sub(quote.body.size())?;
    let rd = body_start + REPORT_DATA_OFFSET;
    if signed_bytes.get(rd..rd + 64)? != quote.body.report_data.as_slice() {
        return None;
    }
    let sig_len_field = structure.get(signed_bytes.len()..signed_bytes.len() + 4)?;
    let after_signature = structure.get(signed_bytes.len() + 4 + 64..)?;
    let mut ctx = Context::new(&SHA256);
    ctx.update(b"locus/tdx-memo/v2");
    ctx.update(collateral_identity);
    // The root in use and the simulator verdict follow from the PCK chain (hashed below) and these anchors.
    put(&mut ctx, anchors.intel_root_der());
    ctx.update(&[u8::from(anchors.trusts_simulator())]);
    ctx.update(&quote.header.version.to_be_bytes());
    ctx.update(&quote.body_type.to_be_bytes());
    // Header ‖ (descriptor ‖) body with REPORTDATA zeroed.
    ctx.update(&(signed_bytes.len() as u64).to_be_bytes());
    ctx.update(&signed_bytes[..rd]);
    ctx.update(&[0u8; 64]);
    ctx.update(&signed_bytes[rd + 64..]);
    // Signature data without the quote signature.
    put(&mut ctx, sig_len_field);
    put(&mut ctx, after_signature);
    Some(finish(ctx))
}

fn missing(msg: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::CollateralMissing, msg)
}

/// A signed PCS document, `{"tcbInfo":{…},"signature":"<hex>"}` or `{"enclaveIdentity":{…},"signature":"<hex>"}`.
/// The body is kept as the exact text received (no re-encoding: the signature covers these bytes).
#[derive(serde::Deserialize)]
struct SignedDocument<'a> {
    #[serde(borrow, rename = "tcbInfo")]
    tcb_info: Option<&'a RawValue>,
    #[serde(borrow, rename = "enclaveIdentity")]
    enclave_identity: Option<&'a RawValue>,
    signature: Option<String>,
}

/// Which body a signed PCS document carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SignedBody {
    TcbInfo,
    EnclaveIdentity,
}

impl SignedBody {
    fn key(self) -> &'static str {
        match self {
            SignedBody::TcbInfo => "tcbInfo",
            SignedBody::EnclaveIdentity => "enclaveIdentity",
        }
    }
}

/// Split a signed PCS document into the exact text of its body and the decoded signature.
fn split_signed_json(text: &str, kind: SignedBody) -> Result<(&str, Vec<u8>), Refusal> {
    let key = kind.key();
    let doc: SignedDocument<'_> = serde_json::from_str(text)
        .map_err(|e| missing(format!("{key} document is not a JSON object: {e}")))?;
    let body = match kind {
        SignedBody::TcbInfo => doc.tcb_info,
        SignedBody::EnclaveIdentity => doc.enclave_identity,
    }
    .ok_or_else(|| missing(format!("collateral has no top-level \"{key}\"")))?;
    let sig = doc
        .signature
        .ok_or_else(|| missing(format!("{key} document has no signature")))?;
    let sig =
        hex::decode(sig.trim()).map_err(|e| missing(format!("{key} signature is not hex: {e}")))?;
    Ok((body.get(), sig))
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
    /// From the PCK certificate: the platform identity for residency (docs/architecture.md#residency-and-the-geo-fence).
    pub ppid: Vec<u8>,
    /// Intel's TCB status string, e.g. `UpToDate`, `OutOfDate`.
    pub tcb_status: String,
    pub advisory_ids: Vec<String>,
    /// MRSERVICETD of a TD 1.5 body; zero for TD 1.0 (which cannot bind service TDs).
    pub mr_service_td: [u8; 48],
    /// The PCK certificate's SGX extensions beyond FMSPC and PPID, for policy to judge.
    pub pck: PckFacts,
}

/// What the PCK certificate says about the platform (SGX extensions `.3` PCE-ID, `.5` SGX type, and the
/// Platform CA flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PckFacts {
    pub pce_id: [u8; 2],
    /// 0 = Standard, 1 = Scalable, 2 = Scalable with integrity.
    pub sgx_type: u64,
    /// Platform CA certificates only (`None` for a Processor CA PCK).
    pub dynamic_platform: Option<bool>,
    pub cached_keys: Option<bool>,
    pub smt_enabled: Option<bool>,
}

impl PckFacts {
    fn of(pck: &dcap_qvl::intel::PckExtension) -> Result<PckFacts, Refusal> {
        let pce_id: [u8; 2] = pck.pce_id.as_slice().try_into().map_err(|_| {
            Refusal::new(
                ErrorCode::ChainUntrusted,
                format!("PCK PCE-ID is {} bytes, not 2", pck.pce_id.len()),
            )
        })?;
        Ok(PckFacts {
            pce_id,
            sgx_type: pck.sgx_type,
            dynamic_platform: pck.dynamic_platform,
            cached_keys: pck.cached_keys,
            smt_enabled: pck.smt_enabled,
        })
    }
}

/// `pceId` of a TCB info body (hex, 2 bytes).
#[derive(serde::Deserialize)]
struct TcbInfoPceId {
    #[serde(rename = "pceId")]
    pce_id: String,
}

/// Beyond dcap-qvl (docs/architecture.md#appraisal TDX): the TCB info must be for this platform's PCE (`pceId` = the PCK's PCE-ID); dcap-qvl
/// 0.7.1 compares FMSPC only.
fn check_tcb_info_pce_id(tcb_info_json: &str, pck: &PckFacts) -> Result<(), Refusal> {
    let body: TcbInfoPceId = serde_json::from_str(tcb_info_json)
        .map_err(|e| missing(format!("TCB info has no usable pceId: {e}")))?;
    let want = hex::decode(body.pce_id.trim())
        .map_err(|e| missing(format!("TCB info pceId is not hex: {e}")))?;
    if want.as_slice() != pck.pce_id.as_slice() {
        return Err(missing(format!(
            "TCB info is for PCE-ID {} but the PCK certificate has {}",
            hex::encode(&want),
            hex::encode(pck.pce_id)
        )));
    }
    Ok(())
}

/// Beyond dcap-qvl: the QE report data is SHA-256(attestation key ‖ auth data) ‖ 32 zero bytes; dcap-qvl
/// 0.7.1 compares the first half only.
fn check_qe_report_data_tail(signed: &SignedQuote) -> Result<(), Refusal> {
    let tail = &signed.quote().qe_report.report_data[32..];
    if tail.iter().any(|&b| b != 0) {
        return Err(Refusal::new(
            ErrorCode::SignatureInvalid,
            "QE report data bytes 32..63 are not zero: the QE report does not bind this attestation key alone",
        ));
    }
    Ok(())
}

fn malformed(msg: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::EvidenceMalformed, msg)
}

/// Bytes after the quote structure may only be zero padding (docs/architecture.md#appraisal); they are covered by no signature.
fn check_trailing(signed: &SignedQuote) -> Result<(), Refusal> {
    match signed.trailing_bytes().iter().position(|&b| b != 0) {
        Some(at) => Err(malformed(format!(
            "non-zero byte after the end of the quote structure at offset {}",
            signed.structure_len() + at
        ))),
        None => Ok(()),
    }
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
    } else if has("TD migration is enabled") {
        ErrorCode::MigrationEnabled
    } else if has("Reserved bits in TD attributes")
        || has("SERVTD_EXT is enabled")
        || has("SEPT_VE_DISABLE is not enabled")
        || has("Invalid MR service TD")
    {
        // TD attributes no TDX attestation accepts (TDX Module ABI): the evidence is not a TD Locus can appraise.
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
    // Step 1: parse header, body and signature data (v4; v5 body types 2 and 3), walking every length field
    // (locus_hw). Non-zero bytes after the structure are refused too, but only once the quote itself has been judged,
    // so a quote's own failure (e.g. no matching TCB level) is what gets reported; the bytes are outside every
    // signature.
    let signed = SignedQuote::parse_ignoring_trailing_bytes(raw).map_err(Refusal::from)?;

    // Memo (`tdx_memo`): the same platform, collateral and anchors, judged before at a time inside every
    // window the full path checks; only the quote signature over the received bytes is left to verify. The key
    // covers the PCK chain's bytes, so the root it ends at (and whether that is a simulator's) comes with the entry:
    // a hit decodes no certificate.
    let collateral_memo = collateral.memo_info();
    let key = collateral_memo
        .window
        .and_then(|_| memo_key(&signed, &collateral_memo.identity, anchors));
    if let Some(hit) = key
        .as_ref()
        .and_then(|k| anchors.memos().lookup(k, now_unix))
    {
        match hit.verdict {
            tdx_memo::Verdict::Accepted {
                fmspc,
                tcb_status,
                advisory_ids,
                pck,
                simulated,
            } => {
                verify_quote_signature(&signed)?;
                check_trailing(&signed)?;
                let facts = facts_of(&signed, fmspc, hit.ppid, tcb_status, advisory_ids, pck);
                return Ok(Verified::new(facts, simulated));
            }
            // A validly signed quote with this key gets the engine's refusal again; a bad signature goes the full
            // way, so the reported failure is the one the engine's own order gives.
            tdx_memo::Verdict::Refused(refusal) if verify_quote_signature(&signed).is_ok() => {
                return Err(refusal);
            }
            tdx_memo::Verdict::Refused(_) => {}
        }
    }

    let quote = signed.quote();
    let chain = quote
        .pck_chain_der()
        .map_err(|e| malformed(format!("quote has no usable PCK certificate chain: {e}")))?;
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
    // Debug and service-TD binding are judged by policy (so each has its own code and option), not by the engine.
    // MIGRATABLE stays refused by dcap-qvl 0.7.1 itself (no option exists), mapped to `migration_enabled`.
    let verifier = QuoteVerifier::new(root_der.clone())
        .allow_debug(true)
        .allow_service_td(true);
    // The windows the full path checks, for the memo: the collateral's and the quote's own certificates'.
    let memo_window = |now: u64| {
        collateral_memo.window.and_then(|window| {
            chain
                .iter()
                .chain(std::iter::once(&root_der))
                .try_fold(window, |w, der| cert_window(w, der))
                .filter(|w| w.contains(now))
        })
    };
    let verified =
        match verifier.verify(signed.structure_bytes(), collateral.as_dcap_qvl(), now_unix) {
            Ok(v) => v,
            Err(e) => {
                let refusal = map_engine_error(&format!("{e:#}"));
                // A refusal the key decides is memoised like a success: only for a validly signed quote, inside every
                // window (so never a time-window code), per platform.
                let timely = !matches!(
                    refusal.code,
                    ErrorCode::CollateralExpired | ErrorCode::CertificateExpired
                );
                if let (Some(key), Some(window), true) = (key, memo_window(now_unix), timely) {
                    if verify_quote_signature(&signed).is_ok() {
                        let ppid = dcap_qvl::intel::parse_pck_extension(pck_leaf)
                            .map(|p| p.ppid)
                            .unwrap_or_else(|_| super::x509::sha256(pck_leaf).to_vec());
                        anchors.memos().store(
                            key,
                            tdx_memo::Entry {
                                window,
                                ppid,
                                verdict: tdx_memo::Verdict::Refused(refusal.clone()),
                            },
                        );
                    }
                }
                return Err(refusal);
            }
        };
    check_trailing(&signed)?;

    // Step 6: facts out, from the bytes dcap-qvl just verified, after the two checks dcap-qvl leaves out.
    let pck = dcap_qvl::intel::parse_pck_extension(pck_leaf).map_err(|e| {
        Refusal::new(
            ErrorCode::ChainUntrusted,
            format!("PCK certificate extensions: {e:#}"),
        )
    })?;
    let pck_facts = PckFacts::of(&pck)?;
    check_qe_report_data_tail(&signed)?;
    check_tcb_info_pce_id(&collateral.as_dcap_qvl().tcb_info, &pck_facts)?;
    if let (Some(key), Some(window)) = (key, memo_window(now_unix)) {
        anchors.memos().store(
            key,
            tdx_memo::Entry {
                window,
                ppid: verified.ppid.clone(),
                verdict: tdx_memo::Verdict::Accepted {
                    fmspc: pck.fmspc,
                    tcb_status: verified.status.clone(),
                    advisory_ids: verified.advisory_ids.clone(),
                    pck: pck_facts.clone(),
                    simulated,
                },
            },
        );
    }
    let facts = facts_of(
        &signed,
        pck.fmspc,
        verified.ppid,
        verified.status,
        verified.advisory_ids,
        pck_facts,
    );
    Ok(Verified::new(facts, simulated))
}

/// The quote signature (ECDSA P-256, r‖s) by the attestation key over the received header ‖ (descriptor ‖) body.
fn verify_quote_signature(signed: &SignedQuote) -> Result<(), Refusal> {
    let quote = signed.quote();
    let mut point = [0u8; 65];
    point[0] = 0x04;
    point[1..].copy_from_slice(&quote.attestation_key);
    if super::x509::verify_p256_fixed(&point, signed.signed_bytes(), &quote.signature) {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::SignatureInvalid,
            "quote signature does not verify with the attestation key",
        ))
    }
}

/// The facts: the TD fields from the verified body, the rest from the engine's verdict.
fn facts_of(
    signed: &SignedQuote,
    fmspc: [u8; 6],
    ppid: Vec<u8>,
    tcb_status: String,
    advisory_ids: Vec<String>,
    pck: PckFacts,
) -> TdxFacts {
    let quote = signed.quote();
    let td = &quote.body;
    TdxFacts {
        quote_version: quote.header.version,
        body_type: quote.body_type,
        tee_tcb_svn: td.tee_tcb_svn,
        mr_seam: td.mr_seam,
        mr_signer_seam: td.mr_signer_seam,
        td_attributes: td.td_attributes,
        xfam: td.xfam,
        mr_td: td.mr_td,
        mr_config_id: td.mr_config_id,
        mr_owner: td.mr_owner,
        mr_owner_config: td.mr_owner_config,
        rtmr: td.rtmr,
        report_data: td.report_data,
        debug: td.debug(),
        fmspc,
        ppid,
        tcb_status,
        advisory_ids,
        mr_service_td: td.mr_service_td.unwrap_or([0; 48]),
        pck,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_documents_split_into_the_exact_body_text_and_the_signature() {
        let text =
            r#" { "tcbInfo" : {"a":"x}\"y","b":[1,{"c":2}],  "d": 1.50} , "signature":" abcd " } "#;
        let (body, sig) = split_signed_json(text, SignedBody::TcbInfo).expect("split");
        assert_eq!(body, r#"{"a":"x}\"y","b":[1,{"c":2}],  "d": 1.50}"#);
        assert_eq!(sig, vec![0xab, 0xcd]);
        let text = r#"{"signature":"00","enclaveIdentity":{"id":"TD_QE"}}"#;
        let (body, sig) = split_signed_json(text, SignedBody::EnclaveIdentity).expect("split");
        assert_eq!(body, r#"{"id":"TD_QE"}"#);
        assert_eq!(sig, vec![0]);
    }

    #[test]
    fn unusable_signed_documents_are_collateral_missing() {
        for (text, kind) in [
            (
                r#"{"tcbInfo":{},"signature":"00"}"#,
                SignedBody::EnclaveIdentity,
            ),
            (r#"{"tcbInfo":{}}"#, SignedBody::TcbInfo),
            (r#"{"tcbInfo":{},"signature":7}"#, SignedBody::TcbInfo),
            (r#"{"tcbInfo":{},"signature":"xyz"}"#, SignedBody::TcbInfo),
            (
                r#"{"tcbInfo":{},"tcbInfo":{},"signature":"00"}"#,
                SignedBody::TcbInfo,
            ),
            (
                r#"{"tcbInfo":{},"signature":"00"} trailing"#,
                SignedBody::TcbInfo,
            ),
            (r#"[{"tcbInfo":{}}]"#, SignedBody::TcbInfo),
            ("", SignedBody::TcbInfo),
        ] {
            assert_eq!(
                split_signed_json(text, kind).err().map(|r| r.code),
                Some(ErrorCode::CollateralMissing),
                "{text}"
            );
        }
    }

    fn anchors() -> TrustAnchors {
        TrustAnchors::pinned().expect("pinned anchors")
    }

    /// Empty collateral: every quote below is refused at step 1, before collateral is looked at.
    fn no_collateral() -> TdxCollateral {
        TdxCollateral::from_dcap_qvl(QuoteCollateralV3 {
            pck_crl_issuer_chain: String::new(),
            root_ca_crl: Vec::new(),
            pck_crl: Vec::new(),
            tcb_info_issuer_chain: String::new(),
            tcb_info: String::new(),
            tcb_info_signature: Vec::new(),
            qe_identity_issuer_chain: String::new(),
            qe_identity: String::new(),
            qe_identity_signature: Vec::new(),
            pck_certificate_chain: None,
        })
    }

    fn step1_code(raw: &[u8]) -> Option<ErrorCode> {
        appraise_tdx(raw, &no_collateral(), &anchors(), 0)
            .err()
            .map(|r| r.code)
    }

    const HEADER_LEN: usize = 48;
    const TD10_LEN: usize = 584;

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
    fn only_zero_padding_may_follow_the_quote_structure() {
        let mut raw = minimal_v4(10);
        let end = raw.len() - 10;
        let s = SignedQuote::parse_ignoring_trailing_bytes(&raw).expect("structure");
        assert_eq!(s.structure_len(), end);
        assert_eq!(check_trailing(&s), Ok(()));
        let last = raw.len() - 1;
        raw[last] = 1;
        let s = SignedQuote::parse_ignoring_trailing_bytes(&raw).expect("structure");
        let refusal = check_trailing(&s).expect_err("non-zero trailing byte");
        assert_eq!(refusal.code, ErrorCode::EvidenceMalformed);
        assert!(refusal.message.contains(&last.to_string()), "{refusal:?}");
    }

    #[test]
    fn a_well_formed_skeleton_gets_past_the_length_walk() {
        // The skeleton's PCK chain is empty, so it is refused right after the walk, still at step 1.
        let refusal = appraise_tdx(&minimal_v4(10), &no_collateral(), &anchors(), 0)
            .expect_err("empty chain");
        assert_eq!(refusal.code, ErrorCode::EvidenceMalformed);
        assert!(
            refusal.message.contains("PCK certificate chain"),
            "{refusal:?}"
        );
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
                step1_code(&raw),
                Some(ErrorCode::EvidenceMalformed),
                "length at {at}"
            );
            assert!(SignedQuote::parse_ignoring_trailing_bytes(&raw).is_err());
        }
        let mut raw = minimal_v4(0);
        raw[sig_start + 128] = 7;
        assert_eq!(step1_code(&raw), Some(ErrorCode::EvidenceMalformed));
        let mut raw = minimal_v4(0);
        raw[sig_start + 134 + 450] = 4;
        assert_eq!(step1_code(&raw), Some(ErrorCode::EvidenceMalformed));
        assert_eq!(step1_code(&raw[..700]), Some(ErrorCode::EvidenceMalformed));
        assert_eq!(step1_code(&[]), Some(ErrorCode::EvidenceMalformed));
    }

    #[test]
    fn non_tdx_headers_are_evidence_malformed() {
        let mut sgx = minimal_v4(0);
        sgx[4] = 0;
        assert_eq!(step1_code(&sgx), Some(ErrorCode::EvidenceMalformed));
        let mut p384 = minimal_v4(0);
        p384[2] = 3;
        assert_eq!(step1_code(&p384), Some(ErrorCode::EvidenceMalformed));
    }

    #[test]
    fn unknown_quote_version_is_unsupported_version() {
        let mut raw = vec![0u8; 700];
        raw[0] = 3;
        raw[4] = 0x81;
        assert_eq!(step1_code(&raw), Some(ErrorCode::UnsupportedVersion));
        raw[0] = 5;
        raw[2] = 2;
        raw[HEADER_LEN] = 9;
        assert_eq!(step1_code(&raw), Some(ErrorCode::UnsupportedVersion));
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
