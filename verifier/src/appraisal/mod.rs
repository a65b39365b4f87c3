//! Sans-I/O appraisal of SEV-SNP reports and TDX quotes (docs/architecture.md#appraisal).
//!
//! Flow: raw evidence + endorsements/collateral (bytes) + [`TrustAnchors`] + `now` → [`appraise_snp`] /
//! [`appraise_tdx`] → `Verified<Facts>` or a coded [`Refusal`]. Nothing here opens a file or a socket; time is a
//! parameter. Policy (debug, VMPL, TCB status, minimum TCB, measurements) is a separate step: [`policy::apply_policy`].
//! A [`Verified`] value can only be built inside this module, so holding one proves the checklist ran.

pub mod policy;
mod roots;
mod snp;
mod tdx;
mod tdx_memo;
pub mod x509;

pub use policy::{apply_policy, match_reference_values, Policy, PolicyOutcome};
pub use roots::{
    intel_sgx_root_ca_der, is_simulator_cert, pinned_ark_sha256, TrustAnchors, ARK_GENOA_SHA256,
    ARK_MILAN_SHA256, ARK_TURIN_SHA256, INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_CA_SHA256,
};
pub use snp::{appraise_snp, Revocation, SnpEndorsements, SnpFacts, SnpPolicyFacts, SnpSigner};
pub use tdx::{appraise_tdx, PckFacts, TdxCollateral, TdxCollateralParts, TdxFacts};
#[doc(hidden)]
pub use tdx_memo::{Memos, TdxMemoStats};

use locus_hw::TeeType;

use crate::error::Refusal;

/// Facts that passed appraisal. Constructible only inside `appraisal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified<T> {
    facts: T,
    simulated: bool,
}

impl<T> Verified<T> {
    pub(in crate::appraisal) fn new(facts: T, simulated: bool) -> Self {
        Verified { facts, simulated }
    }

    /// The verified facts.
    pub fn facts(&self) -> &T {
        &self.facts
    }

    /// True when the evidence chained to a (trusted) simulator root rather than a vendor root.
    pub fn simulated(&self) -> bool {
        self.simulated
    }

    /// Change the facts' type while keeping the proof. Internal only: outside code converts with `From` (into
    /// [`Facts`]) and cannot swap in other facts.
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Verified<U> {
        Verified {
            facts: f(self.facts),
            simulated: self.simulated,
        }
    }
}

/// The facts of either TEE. One value per appraisal, so the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Facts {
    Snp(SnpFacts),
    Tdx(TdxFacts),
}

impl Facts {
    pub fn tee(&self) -> TeeType {
        match self {
            Facts::Snp(_) => TeeType::SevSnp,
            Facts::Tdx(_) => TeeType::Tdx,
        }
    }

    /// Debug state (SNP policy bit 19, TD_ATTRIBUTES bit 0).
    pub fn debug(&self) -> bool {
        match self {
            Facts::Snp(f) => f.policy.debug,
            Facts::Tdx(f) => f.debug,
        }
    }

    /// The bytes that identify the platform for residency (docs/architecture.md#residency-and-the-geo-fence): SNP CHIP_ID (VCEK) or cspID (VLEK), TDX PPID.
    pub fn platform_identity(&self) -> Vec<u8> {
        match self {
            Facts::Snp(f) => f.platform_identity(),
            Facts::Tdx(f) => f.ppid.clone(),
        }
    }

    /// True when the identity names a cloud provider (VLEK cspID), not one host.
    pub fn provider_level_identity(&self) -> bool {
        matches!(self, Facts::Snp(f) if f.signer == SnpSigner::Vlek && f.csp_id.is_some())
    }

    /// The launch measurement: SNP MEASUREMENT or TDX MRTD.
    pub fn measurement(&self) -> &[u8; 48] {
        match self {
            Facts::Snp(f) => &f.measurement,
            Facts::Tdx(f) => &f.mr_td,
        }
    }

    /// REPORT_DATA / REPORTDATA (the docs/architecture.md#evidence-binding binding).
    pub fn report_data(&self) -> &[u8; 64] {
        match self {
            Facts::Snp(f) => &f.report_data,
            Facts::Tdx(f) => &f.report_data,
        }
    }
}

impl From<Verified<SnpFacts>> for Verified<Facts> {
    fn from(v: Verified<SnpFacts>) -> Self {
        v.map(Facts::Snp)
    }
}

impl From<Verified<TdxFacts>> for Verified<Facts> {
    fn from(v: Verified<TdxFacts>) -> Self {
        v.map(Facts::Tdx)
    }
}

impl Verified<Facts> {
    /// The success object of `locus-verifier appraise` (docs/operations.md#appraising-evidence-offline) as one line of JSON, fields in the contract's
    /// order (serialized from structs, so the order does not depend on `serde_json` features).
    pub fn to_cli_json(&self) -> String {
        let out = match &self.facts {
            Facts::Snp(f) => serde_json::to_string(&CliSnp {
                verified: true,
                tee: "sev-snp",
                simulated: self.simulated,
                product: f.product.kds_name(),
                report_version: f.report_version,
                signer: f.signer,
                measurement: hex::encode(f.measurement),
                report_data: hex::encode(f.report_data),
                host_data: hex::encode(f.host_data),
                chip_id: hex::encode(f.chip_id),
                vmpl: f.vmpl,
                policy: f.policy,
                reported_tcb: CliTcb {
                    fmc: f.reported_tcb.fmc,
                    bootloader: f.reported_tcb.bootloader,
                    tee: f.reported_tcb.tee,
                    snp: f.reported_tcb.snp,
                    microcode: f.reported_tcb.microcode,
                },
                revocation: f.revocation,
            }),
            Facts::Tdx(f) => serde_json::to_string(&CliTdx {
                verified: true,
                tee: "tdx",
                simulated: self.simulated,
                quote_version: f.quote_version,
                mr_td: hex::encode(f.mr_td),
                rtmr: f.rtmr.iter().map(hex::encode).collect(),
                mr_config_id: hex::encode(f.mr_config_id),
                mr_owner: hex::encode(f.mr_owner),
                mr_owner_config: hex::encode(f.mr_owner_config),
                mr_seam: hex::encode(f.mr_seam),
                report_data: hex::encode(f.report_data),
                td_attributes: hex::encode(f.td_attributes),
                debug: f.debug,
                fmspc: hex::encode(f.fmspc),
                tcb_status: &f.tcb_status,
                advisory_ids: &f.advisory_ids,
                revocation: Revocation::Checked,
            }),
        };
        // Serializing plain structs of strings, numbers and bools cannot fail.
        out.unwrap_or_else(|e| {
            format!(
                "{{\"verified\":false,\"error\":{{\"code\":\"internal\",\"message\":\"{e}\"}}}}"
            )
        })
    }
}

#[derive(serde::Serialize)]
struct CliTcb {
    fmc: Option<u8>,
    bootloader: u8,
    tee: u8,
    snp: u8,
    microcode: u8,
}

#[derive(serde::Serialize)]
struct CliSnp {
    verified: bool,
    tee: &'static str,
    simulated: bool,
    product: &'static str,
    report_version: u32,
    signer: SnpSigner,
    measurement: String,
    report_data: String,
    host_data: String,
    chip_id: String,
    vmpl: u32,
    policy: SnpPolicyFacts,
    reported_tcb: CliTcb,
    /// `checked` when a valid AMD CRL was consulted; `unchecked` otherwise (reported, refused only under `--policy`).
    revocation: Revocation,
}

#[derive(serde::Serialize)]
struct CliTdx<'a> {
    verified: bool,
    tee: &'static str,
    simulated: bool,
    quote_version: u16,
    mr_td: String,
    rtmr: Vec<String>,
    mr_config_id: String,
    mr_owner: String,
    mr_owner_config: String,
    mr_seam: String,
    report_data: String,
    td_attributes: String,
    debug: bool,
    fmspc: String,
    tcb_status: &'a str,
    advisory_ids: &'a [String],
    /// Always `checked`: dcap-qvl checks both Intel CRLs.
    revocation: Revocation,
}

#[derive(serde::Serialize)]
struct CliError<'a> {
    code: &'static str,
    message: &'a str,
}

#[derive(serde::Serialize)]
struct CliRefusal<'a> {
    verified: bool,
    error: CliError<'a>,
}

/// The failure object of `locus-verifier appraise` (docs/operations.md#appraising-evidence-offline).
pub fn refusal_cli_json(refusal: &Refusal) -> String {
    let body = CliRefusal {
        verified: false,
        error: CliError {
            code: refusal.code.as_str(),
            message: &refusal.message,
        },
    };
    serde_json::to_string(&body).unwrap_or_else(|_| {
        format!(
            "{{\"verified\":false,\"error\":{{\"code\":\"{}\"}}}}",
            refusal.code
        )
    })
}
