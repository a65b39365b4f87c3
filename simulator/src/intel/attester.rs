//! The simulated TDX quoting stack: [`SimTdxAttester`] builds byte-exact quotes v4 (TD report 1.0) and v5 (body type
//! 3, TD report 1.5) for a [`TdxProfile`], the way Intel's TD quoting enclave does:
//!
//! 1. TD report body from the profile and the caller's REPORTDATA; header (att key type 2, TEE 0x81, Intel QE vendor
//!    id, `qe_svn`/`pce_svn` from the profile).
//! 2. QE report (384 bytes) whose REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes, signed by the
//!    platform's PCK key.
//! 3. Certification data type 6 holding the QE report, its signature, the auth data and type 5 = the PEM chain
//!    (PCK leaf, PCK Platform CA, root).
//! 4. ECDSA P-256 signature by the attestation key over header ‖ (v5 descriptor ‖) body.
//!
//! The layout comes from `locus_hw::tdx::Quote::to_bytes`, so the simulator and the parser share one definition of
//! the format; `dcap-qvl` checks the result independently.

use std::sync::Arc;

use locus_hw::attester::{AttestError, Attester, Evidence};
use locus_hw::tdx::{
    EnclaveReport, Quote, QuoteHeader, TdReport, ATT_KEY_TYPE_ECDSA_P256, BODY_TYPE_TD10,
    BODY_TYPE_TD15, INTEL_QE_VENDOR_ID, TEE_TYPE_TDX,
};
use locus_hw::TeeType;
use p256::ecdsa::SigningKey;

use super::collateral::{CollateralWindow, TdxCollateralFiles};
use super::keys;
use super::pki::{IntelPki, PckVariant};
use super::profile::{TdxProfile, OUT_OF_DATE_MODULE_SVN, TD_ATTRIBUTES_DEBUG};

/// A fault injected into what the simulated platform produces; each makes one verifier check fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TdxFault {
    /// The quote signature (attestation key over header ‖ body) does not verify: one byte of `s` is flipped after
    /// signing → `signature_invalid`.
    BadSignature,
    /// The PCK is issued by a look-alike hierarchy (same names, other keys); the chain ends at a foreign root
    /// → `chain_untrusted`.
    ForeignChain,
    /// The PCK's validity is 2023-01-01 .. 2024-12-31 → `certificate_expired`.
    ExpiredPck,
    /// The PCK's serial is listed in the PCK CRL (built-in profiles) → `revoked`.
    RevokedPck,
    /// The quote is genuine but [`SimTdxAttester::collateral`] returns TCB info / QE identity whose window lies in
    /// 2024 → `collateral_expired`.
    StaleCollateral,
    /// TD_ATTRIBUTES.DEBUG is set → `debug_enabled` (dcap-qvl rejects unless `allow_debug`).
    Debug,
    /// The TDX module SVN (`TEE_TCB_SVN[0]`, and `TEE_TCB_SVN2[0]` for TD 1.5) is lowered to the out-of-date module
    /// level: still verifies, status OutOfDate with advisory `SIM-SA-00201` → `tcb_status_rejected`.
    LowTcb,
    /// The QE report data carries non-zero bytes after the 32-byte key hash (the QE report still signed by the PCK)
    /// → `signature_invalid` (the report data must be SHA-256(attestation key ‖ auth data) ‖ 32 zero bytes).
    QeReportDataTail,
}

/// A simulated TDX platform + quoting enclave for one profile; implements [`Attester`] (name `"sim-tdx"`).
///
/// Deterministic: the same seed, profile, faults and report data give the same quote bytes (RFC 6979 signatures).
#[derive(Debug, Clone)]
pub struct SimTdxAttester {
    pki: Arc<IntelPki>,
    profile: TdxProfile,
    faults: Vec<TdxFault>,
    pck_key: SigningKey,
    attestation_key: SigningKey,
    /// The chain carried in the quote, issued for the current PCK variant.
    pck_chain_pem: String,
}

/// QE authentication data: 32 bytes, as Intel's QE emits (dcap-qvl requires exactly 32).
const QE_AUTH_DATA: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];

impl SimTdxAttester {
    /// An attester for `profile` (built-in or custom) in the world `pki`. Its PCK and attestation key derive from
    /// the seed and the profile name.
    pub fn new(pki: Arc<IntelPki>, profile: TdxProfile) -> Self {
        let pck_key = pki.pck_key(&profile);
        let attestation_key = pki.attestation_key(&profile);
        let pck_chain_pem = pki.pck_chain_pem(&profile, PckVariant::Genuine);
        Self {
            pki,
            profile,
            faults: Vec::new(),
            pck_key,
            attestation_key,
            pck_chain_pem,
        }
    }

    /// Adds a fault. Certificate faults (`ForeignChain`, `ExpiredPck`, `RevokedPck`) replace the PCK; the last one
    /// added wins.
    pub fn with_fault(mut self, fault: TdxFault) -> Self {
        let variant = match fault {
            TdxFault::ForeignChain => Some(PckVariant::Foreign),
            TdxFault::ExpiredPck => Some(PckVariant::Expired),
            TdxFault::RevokedPck => Some(PckVariant::Revoked),
            _ => None,
        };
        if let Some(variant) = variant {
            self.pck_chain_pem = self.pki.pck_chain_pem(&self.profile, variant);
        }
        if !self.faults.contains(&fault) {
            self.faults.push(fault);
        }
        self
    }

    /// The profile this attester reports.
    pub fn profile(&self) -> &TdxProfile {
        &self.profile
    }

    /// The faults applied, in the order added.
    pub fn faults(&self) -> &[TdxFault] {
        &self.faults
    }

    /// The PCK chain PEM (leaf, Platform CA, root) this attester's quotes carry.
    pub fn pck_chain_pem(&self) -> &str {
        &self.pck_chain_pem
    }

    /// Collateral to verify this attester's quotes with: current, or stale under [`TdxFault::StaleCollateral`].
    pub fn collateral(&self) -> TdxCollateralFiles {
        let window = if self.has(TdxFault::StaleCollateral) {
            CollateralWindow::Stale
        } else {
            CollateralWindow::Current
        };
        self.pki.collateral(window)
    }

    fn has(&self, fault: TdxFault) -> bool {
        self.faults.contains(&fault)
    }

    /// The TD report body this platform reports for `report_data` (faults applied).
    pub fn td_report(&self, report_data: &[u8; 64]) -> TdReport {
        let p = &self.profile;
        let td15 = p.quote_version == 5;
        let mut tee_tcb_svn = p.tee_tcb_svn;
        let mut tee_tcb_svn2 = p.tee_tcb_svn2;
        let mut td_attributes = p.td_attributes;
        if self.has(TdxFault::LowTcb) {
            tee_tcb_svn[0] = OUT_OF_DATE_MODULE_SVN;
            tee_tcb_svn2[0] = OUT_OF_DATE_MODULE_SVN;
        }
        if self.has(TdxFault::Debug) {
            td_attributes = (u64::from_le_bytes(td_attributes) | TD_ATTRIBUTES_DEBUG).to_le_bytes();
        }
        TdReport {
            tee_tcb_svn,
            mr_seam: p.mr_seam,
            mr_signer_seam: p.mr_signer_seam,
            seam_attributes: p.seam_attributes,
            td_attributes,
            xfam: p.xfam,
            mr_td: p.mr_td,
            mr_config_id: p.mr_config_id,
            mr_owner: p.mr_owner,
            mr_owner_config: p.mr_owner_config,
            rtmr: p.rtmr,
            report_data: *report_data,
            tee_tcb_svn2: td15.then_some(tee_tcb_svn2),
            mr_service_td: td15.then_some(p.mr_service_td),
        }
    }

    fn qe_report(&self, attestation_key: &[u8; 64]) -> EnclaveReport {
        let qe = self.pki.qe_values();
        let mut binding = Vec::with_capacity(96);
        binding.extend_from_slice(attestation_key);
        binding.extend_from_slice(&QE_AUTH_DATA);
        let mut report_data = [0u8; 64];
        report_data[..32].copy_from_slice(&keys::sha256(&binding));
        if self.has(TdxFault::QeReportDataTail) {
            report_data[63] = 1;
        }
        EnclaveReport {
            cpu_svn: self.profile.cpu_svn,
            misc_select: qe.miscselect,
            reserved1: [0; 28],
            attributes: qe.attributes,
            mr_enclave: qe.mrenclave,
            reserved2: [0; 32],
            mr_signer: qe.mrsigner,
            reserved3: [0; 96],
            isv_prod_id: qe.isvprodid,
            isv_svn: self.profile.qe_svn,
            reserved4: [0; 60],
            report_data,
        }
    }

    /// The parsed view of the quote for `report_data`, fully signed (what [`SimTdxAttester::quote`] encodes).
    pub fn quote_struct(&self, report_data: &[u8; 64]) -> Quote {
        let p = &self.profile;
        let mut user_data = [0u8; 20];
        user_data[..16].copy_from_slice(&keys::derive_bytes::<16>(
            self.pki.seed(),
            &format!("intel/qe-id/{}", p.name),
        ));
        let attestation_key = keys::raw_public_key(&self.attestation_key);
        let qe_report = self.qe_report(&attestation_key);
        let qe_report_signature = keys::sign_raw(&self.pck_key, &qe_report.to_bytes());
        let mut quote = Quote {
            header: QuoteHeader {
                version: p.quote_version,
                att_key_type: ATT_KEY_TYPE_ECDSA_P256,
                tee_type: TEE_TYPE_TDX,
                qe_svn: p.qe_svn,
                pce_svn: p.pce_svn,
                qe_vendor_id: INTEL_QE_VENDOR_ID,
                user_data,
            },
            body_type: if p.quote_version == 5 {
                BODY_TYPE_TD15
            } else {
                BODY_TYPE_TD10
            },
            body: self.td_report(report_data),
            signature: [0; 64],
            attestation_key,
            qe_report,
            qe_report_signature,
            qe_auth_data: QE_AUTH_DATA.to_vec(),
            pck_cert_chain_pem: self.pck_chain_pem.as_bytes().to_vec(),
        };
        let unsigned = quote.to_bytes();
        let signed_len = quote.signed_len().min(unsigned.len());
        let mut signature = keys::sign_raw(&self.attestation_key, &unsigned[..signed_len]);
        if self.has(TdxFault::BadSignature) {
            signature[63] ^= 0x01;
        }
        quote.signature = signature;
        quote
    }

    /// The raw quote for `report_data` (no trailing padding).
    pub fn quote(&self, report_data: &[u8; 64]) -> Vec<u8> {
        self.quote_struct(report_data).to_bytes()
    }
}

impl Attester for SimTdxAttester {
    fn name(&self) -> &str {
        "sim-tdx"
    }

    fn tee(&self) -> TeeType {
        TeeType::Tdx
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        Ok(Evidence {
            tee: TeeType::Tdx,
            raw: self.quote(report_data),
            // The PCK chain travels inside the quote (certification data type 5).
            certs: Vec::new(),
        })
    }
}

impl IntelPki {
    /// An attester for `profile` (built-in or custom; a custom profile gets its own PCK and keys by name).
    pub fn attester(self: &Arc<Self>, profile: &TdxProfile) -> SimTdxAttester {
        SimTdxAttester::new(Arc::clone(self), profile.clone())
    }

    /// An attester for the built-in profile `name`.
    pub fn attester_by_name(self: &Arc<Self>, name: &str) -> Option<SimTdxAttester> {
        self.profile(name).map(|profile| self.attester(profile))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::profile::{TDX_FRA_1, TDX_IAD_1};
    use std::sync::OnceLock;

    fn pki() -> &'static Arc<IntelPki> {
        static PKI: OnceLock<Arc<IntelPki>> = OnceLock::new();
        PKI.get_or_init(|| Arc::new(IntelPki::new(42)))
    }

    fn attester(name: &str) -> SimTdxAttester {
        pki()
            .attester_by_name(name)
            .unwrap_or_else(|| panic!("built-in {name}"))
    }

    #[test]
    fn v4_quote_has_the_spec_offsets() {
        let quote = attester(TDX_FRA_1).quote(&[0xA5; 64]);
        assert_eq!(&quote[0..2], &4u16.to_le_bytes());
        assert_eq!(&quote[2..4], &2u16.to_le_bytes());
        assert_eq!(&quote[4..8], &0x81u32.to_le_bytes());
        assert_eq!(&quote[12..28], &INTEL_QE_VENDOR_ID);
        assert_eq!(&quote[568..632], &[0xA5; 64]);
        // signature data length at 632, certification data type 6 at 764, QE report at 770.
        let sig_len = u32::from_le_bytes([quote[632], quote[633], quote[634], quote[635]]) as usize;
        assert_eq!(636 + sig_len, quote.len());
        assert_eq!(&quote[764..766], &6u16.to_le_bytes());
    }

    #[test]
    fn v5_quote_carries_a_td15_body() {
        let quote = attester(TDX_IAD_1).quote(&[1; 64]);
        assert_eq!(&quote[0..2], &5u16.to_le_bytes());
        assert_eq!(&quote[48..50], &3u16.to_le_bytes());
        assert_eq!(&quote[50..54], &648u32.to_le_bytes());
        // REPORTDATA of the body at 54 + 520.
        assert_eq!(&quote[574..638], &[1; 64]);
    }

    #[test]
    fn qe_report_binds_the_attestation_key() {
        let quote = attester(TDX_FRA_1).quote_struct(&[0; 64]);
        let mut binding = quote.attestation_key.to_vec();
        binding.extend_from_slice(&quote.qe_auth_data);
        assert_eq!(quote.qe_report.report_data[..32], keys::sha256(&binding));
        assert_eq!(quote.qe_report.report_data[32..], [0; 32]);
    }

    #[test]
    fn quotes_are_deterministic() {
        let a = attester(TDX_FRA_1);
        assert_eq!(a.quote(&[3; 64]), a.quote(&[3; 64]));
        assert_ne!(a.quote(&[3; 64]), a.quote(&[4; 64]));
    }

    #[test]
    fn debug_and_low_tcb_faults_change_the_body() {
        let report = attester(TDX_FRA_1)
            .with_fault(TdxFault::Debug)
            .with_fault(TdxFault::LowTcb)
            .td_report(&[0; 64]);
        assert!(report.debug());
        assert_eq!(report.tee_tcb_svn[0], OUT_OF_DATE_MODULE_SVN);
    }

    #[test]
    fn attest_returns_tdx_evidence() {
        let evidence = attester(TDX_FRA_1).attest(&[9; 64]).map_err(|e| e.code());
        let evidence = evidence.unwrap_or_else(|code| panic!("attest failed: {code}"));
        assert_eq!(evidence.tee, TeeType::Tdx);
        assert_eq!(TeeType::detect(&evidence.raw), Some(TeeType::Tdx));
    }
}
