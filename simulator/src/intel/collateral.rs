//! Simulated Intel PCS collateral: TCB info v3 (`id` "TDX") and QE identity v2 (`id` "TD_QE"), signed as Intel PCS
//! signs them — `{"tcbInfo":<text>,"signature":"<hex r‖s>"}` where the ECDSA P-256/SHA-256 signature by the TCB
//! Signing key covers the exact bytes of `<text>` — plus the CRLs and issuer chains, bundled as
//! [`TdxCollateralFiles`] in the layout of the project's TDX vectors.
//!
//! The TCB model (see [`super::profile`]): one FMSPC; platform levels *up to date* and *out of date* (advisories
//! [`PLATFORM_ADVISORIES`]); module identity `TDX_01` with levels ISVSVN 5 up to date and 3 out of date
//! ([`MODULE_ADVISORIES`]); one QE level, ISVSVN 4 up to date.

use std::io;
use std::path::Path;

use serde::Serialize;

use super::asn1;
use super::profile::{
    MODULE_ADVISORIES, OUT_OF_DATE_CPU_SVN, OUT_OF_DATE_MODULE_SVN, OUT_OF_DATE_PCE_SVN,
    PLATFORM_ADVISORIES, SIM_FMSPC, SIM_PCE_ID, SIM_QE_ISVPRODID, SIM_QE_ISVSVN,
    SIM_TDX_MODULE_VERSION, UP_TO_DATE_CPU_SVN, UP_TO_DATE_MODULE_SVN, UP_TO_DATE_PCE_SVN,
};

/// 2025-01-01T00:00:00Z: start of every validity window of the simulated PKI and current collateral.
pub const VALID_FROM_UNIX: u64 = 1_735_689_600;
/// 2049-12-31T23:59:59Z: end of the certificates' validity (the last instant UTCTime can express).
pub const CERTS_VALID_UNTIL_UNIX: u64 = 2_524_607_999;
/// 2049-12-31T00:00:00Z: `nextUpdate` of current collateral and CRLs — long enough for a committed example.
pub const COLLATERAL_NEXT_UPDATE_UNIX: u64 = 2_524_521_600;
/// 2024-01-01T00:00:00Z: `issueDate` of stale collateral.
pub const STALE_ISSUE_UNIX: u64 = 1_704_067_200;
/// 2024-02-01T00:00:00Z: `nextUpdate` of stale collateral — in the past for any `now` the simulator is used at.
pub const STALE_NEXT_UPDATE_UNIX: u64 = 1_706_745_600;
/// A verification time inside every current window (2026-01-01T00:00:00Z), for tests and examples.
pub const SIM_VERIFICATION_TIME_UNIX: u64 = 1_767_225_600;

/// `tcbEvaluationDataNumber` of the simulated TCB info and QE identity.
pub const SIM_TCB_EVALUATION_DATA_NUMBER: u32 = 18;

/// The TDX module signer: Intel's module has MRSIGNERSEAM zero, and so does the simulated one.
const MODULE_MRSIGNER: [u8; 48] = [0; 48];

/// Which validity window the signed JSON collateral (TCB info, QE identity) carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CollateralWindow {
    /// 2025-01-01 .. 2049-12-31: valid at any realistic `now`.
    #[default]
    Current,
    /// 2024-01-01 .. 2024-02-01: expired (the `StaleCollateral` fault). CRLs and certificates stay current, so the
    /// only refusal is the expired TCB info / QE identity.
    Stale,
}

impl CollateralWindow {
    fn dates(self) -> (String, String) {
        match self {
            Self::Current => (
                rfc3339(VALID_FROM_UNIX),
                rfc3339(COLLATERAL_NEXT_UPDATE_UNIX),
            ),
            Self::Stale => (rfc3339(STALE_ISSUE_UNIX), rfc3339(STALE_NEXT_UPDATE_UNIX)),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the PCS date format. Only called with the simulator's own date constants (1970..2049).
pub(crate) fn rfc3339(unix_seconds: u64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    i64::try_from(unix_seconds)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|date| date.format(&format).ok())
        .expect("simulator dates lie between 1970 and 2049")
}

#[derive(Serialize)]
struct Svn {
    svn: u8,
}

fn components(svns: &[u8; 16]) -> Vec<Svn> {
    svns.iter().map(|svn| Svn { svn: *svn }).collect()
}

#[derive(Serialize)]
struct PlatformTcb {
    sgxtcbcomponents: Vec<Svn>,
    pcesvn: u16,
    tdxtcbcomponents: Vec<Svn>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlatformTcbLevel {
    tcb: PlatformTcb,
    tcb_date: &'static str,
    tcb_status: &'static str,
    #[serde(rename = "advisoryIDs", skip_serializing_if = "Vec::is_empty")]
    advisory_ids: Vec<&'static str>,
}

#[derive(Serialize)]
struct IsvSvn {
    isvsvn: u16,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IsvTcbLevel {
    tcb: IsvSvn,
    tcb_date: &'static str,
    tcb_status: &'static str,
    #[serde(rename = "advisoryIDs", skip_serializing_if = "Vec::is_empty")]
    advisory_ids: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TdxModule {
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TdxModuleIdentity {
    id: String,
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
    tcb_levels: Vec<IsvTcbLevel>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfo {
    id: &'static str,
    version: u8,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u8,
    tcb_evaluation_data_number: u32,
    tdx_module: TdxModule,
    tdx_module_identities: Vec<TdxModuleIdentity>,
    tcb_levels: Vec<PlatformTcbLevel>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QeIdentity {
    id: &'static str,
    version: u8,
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: u32,
    miscselect: String,
    miscselect_mask: String,
    attributes: String,
    attributes_mask: String,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<IsvTcbLevel>,
}

fn upper_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// TDX components of a platform TCB level: components 0–1 (module SVN and version) are rated by the module
/// identity when the module version is non-zero; component 2 is the TDX late microcode update.
fn tdx_components(module_svn: u8, microcode_svn: u8) -> [u8; 16] {
    let mut svns = [0u8; 16];
    svns[0] = module_svn;
    svns[2] = microcode_svn;
    svns
}

/// The exact text of the `tcbInfo` value (compact JSON, PCS field order).
pub(crate) fn tcb_info_text(window: CollateralWindow) -> String {
    let (issue_date, next_update) = window.dates();
    let info = TcbInfo {
        id: "TDX",
        version: 3,
        issue_date,
        next_update,
        fmspc: upper_hex(&SIM_FMSPC),
        pce_id: upper_hex(&SIM_PCE_ID),
        tcb_type: 0,
        tcb_evaluation_data_number: SIM_TCB_EVALUATION_DATA_NUMBER,
        tdx_module: TdxModule {
            mrsigner: upper_hex(&MODULE_MRSIGNER),
            attributes: upper_hex(&[0u8; 8]),
            attributes_mask: upper_hex(&[0xFFu8; 8]),
        },
        tdx_module_identities: vec![TdxModuleIdentity {
            id: format!("TDX_{SIM_TDX_MODULE_VERSION:02X}"),
            mrsigner: upper_hex(&MODULE_MRSIGNER),
            attributes: upper_hex(&[0u8; 8]),
            attributes_mask: upper_hex(&[0xFFu8; 8]),
            tcb_levels: vec![
                IsvTcbLevel {
                    tcb: IsvSvn {
                        isvsvn: u16::from(UP_TO_DATE_MODULE_SVN),
                    },
                    tcb_date: "2024-11-13T00:00:00Z",
                    tcb_status: "UpToDate",
                    advisory_ids: Vec::new(),
                },
                IsvTcbLevel {
                    tcb: IsvSvn {
                        isvsvn: u16::from(OUT_OF_DATE_MODULE_SVN),
                    },
                    tcb_date: "2023-08-09T00:00:00Z",
                    tcb_status: "OutOfDate",
                    advisory_ids: MODULE_ADVISORIES.to_vec(),
                },
            ],
        }],
        tcb_levels: vec![
            PlatformTcbLevel {
                tcb: PlatformTcb {
                    sgxtcbcomponents: components(&UP_TO_DATE_CPU_SVN),
                    pcesvn: UP_TO_DATE_PCE_SVN,
                    tdxtcbcomponents: components(&tdx_components(UP_TO_DATE_MODULE_SVN, 3)),
                },
                tcb_date: "2024-11-13T00:00:00Z",
                tcb_status: "UpToDate",
                advisory_ids: Vec::new(),
            },
            PlatformTcbLevel {
                tcb: PlatformTcb {
                    sgxtcbcomponents: components(&OUT_OF_DATE_CPU_SVN),
                    pcesvn: OUT_OF_DATE_PCE_SVN,
                    tdxtcbcomponents: components(&tdx_components(OUT_OF_DATE_MODULE_SVN, 2)),
                },
                tcb_date: "2023-08-09T00:00:00Z",
                tcb_status: "OutOfDate",
                advisory_ids: PLATFORM_ADVISORIES.to_vec(),
            },
        ],
    };
    serde_json::to_string(&info).expect("plain structs with string keys always serialize")
}

/// Identity of the simulated TD quoting enclave, as carried in its QE report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeValues {
    /// MRSIGNER of the QE (derived from the seed).
    pub mrsigner: [u8; 32],
    /// MRENCLAVE of the QE (derived from the seed).
    pub mrenclave: [u8; 32],
    /// ATTRIBUTES of the QE report (INIT, MODE64BIT, PROVISIONKEY; XFRM x87|SSE|AVX…): not a debug enclave.
    pub attributes: [u8; 16],
    /// MISCSELECT.
    pub miscselect: u32,
    /// ISVPRODID.
    pub isvprodid: u16,
}

/// The exact text of the `enclaveIdentity` value.
pub(crate) fn qe_identity_text(window: CollateralWindow, qe: &QeValues) -> String {
    let (issue_date, next_update) = window.dates();
    let identity = QeIdentity {
        id: "TD_QE",
        version: 2,
        issue_date,
        next_update,
        tcb_evaluation_data_number: SIM_TCB_EVALUATION_DATA_NUMBER,
        miscselect: upper_hex(&qe.miscselect.to_le_bytes()),
        miscselect_mask: upper_hex(&[0xFF; 4]),
        attributes: upper_hex(&[0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        attributes_mask: upper_hex(&[
            0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0,
        ]),
        mrsigner: upper_hex(&qe.mrsigner),
        isvprodid: SIM_QE_ISVPRODID,
        tcb_levels: vec![IsvTcbLevel {
            tcb: IsvSvn {
                isvsvn: SIM_QE_ISVSVN,
            },
            tcb_date: "2024-11-13T00:00:00Z",
            tcb_status: "UpToDate",
            advisory_ids: Vec::new(),
        }],
    };
    serde_json::to_string(&identity).expect("plain structs with string keys always serialize")
}

/// One signed PCS document: the exact value text and the raw `r ‖ s` signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedJson {
    /// Exact text of the inner object (`tcbInfo` / `enclaveIdentity` value) — the signed bytes.
    pub body: String,
    /// ECDSA P-256/SHA-256 signature over `body`, raw `r ‖ s` (64 bytes).
    pub signature: [u8; 64],
}

impl SignedJson {
    /// The PCS response form `{"<key>":<body>,"signature":"<hex>"}`.
    pub fn envelope(&self, key: &str) -> String {
        format!(
            "{{\"{key}\":{},\"signature\":\"{}\"}}",
            self.body,
            hex::encode(self.signature)
        )
    }
}

/// Collateral for the simulated TDX platforms, in the files of the vectors' `collateral/` layout
/// (Intel PCS collateral formats). Produced by [`super::IntelPki::collateral`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxCollateralFiles {
    /// `tcb_info.json`: `{"tcbInfo":{…},"signature":"<hex r‖s>"}`.
    pub tcb_info_json: String,
    /// `tcb_info_issuer_chain.pem`: TCB Signing, Root.
    pub tcb_info_issuer_chain_pem: String,
    /// `qe_identity.json`: `{"enclaveIdentity":{…},"signature":"…"}`.
    pub qe_identity_json: String,
    /// `qe_identity_issuer_chain.pem`: TCB Signing, Root.
    pub qe_identity_issuer_chain_pem: String,
    /// `pck_crl.der`: CRL of the PCK Platform CA.
    pub pck_crl_der: Vec<u8>,
    /// `pck_crl_issuer_chain.pem`: PCK Platform CA, Root.
    pub pck_crl_issuer_chain_pem: String,
    /// `root_ca_crl.der`: CRL of the root CA.
    pub root_ca_crl_der: Vec<u8>,
    /// `intel_sgx_root_ca.der`: the simulated root CA (trust anchor).
    pub root_ca_der: Vec<u8>,
    /// The signed `tcbInfo` text and signature, split out of `tcb_info_json`.
    pub tcb_info: SignedJson,
    /// The signed `enclaveIdentity` text and signature, split out of `qe_identity_json`.
    pub qe_identity: SignedJson,
}

impl TdxCollateralFiles {
    /// The root CA as PEM (`intel_sgx_root_ca.pem`).
    pub fn root_ca_pem(&self) -> String {
        asn1::pem("CERTIFICATE", &self.root_ca_der)
    }

    /// The same collateral as dcap-qvl's `QuoteCollateralV3` serde JSON (byte fields as lowercase hex, no
    /// `pck_certificate_chain`): the vectors' `collateral_dcap_qvl.json`.
    pub fn dcap_qvl_json(&self) -> String {
        let value = serde_json::json!({
            "pck_crl_issuer_chain": self.pck_crl_issuer_chain_pem,
            "root_ca_crl": hex::encode(&self.root_ca_crl_der),
            "pck_crl": hex::encode(&self.pck_crl_der),
            "tcb_info_issuer_chain": self.tcb_info_issuer_chain_pem,
            "tcb_info": self.tcb_info.body,
            "tcb_info_signature": hex::encode(self.tcb_info.signature),
            "qe_identity_issuer_chain": self.qe_identity_issuer_chain_pem,
            "qe_identity": self.qe_identity.body,
            "qe_identity_signature": hex::encode(self.qe_identity.signature),
        });
        serde_json::to_string_pretty(&value).expect("a JSON value always serializes")
    }

    /// Writes the vectors' layout into `dir` (created if missing): `tcb_info.json`, `tcb_info_issuer_chain.pem`,
    /// `qe_identity.json`, `qe_identity_issuer_chain.pem`, `pck_crl.der`, `pck_crl_issuer_chain.pem`,
    /// `root_ca_crl.der`, `intel_sgx_root_ca.der`, `intel_sgx_root_ca.pem`, `collateral_dcap_qvl.json`.
    pub fn write_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let root_ca_pem = self.root_ca_pem();
        let dcap_qvl_json = self.dcap_qvl_json();
        let files: [(&str, &[u8]); 10] = [
            ("tcb_info.json", self.tcb_info_json.as_bytes()),
            (
                "tcb_info_issuer_chain.pem",
                self.tcb_info_issuer_chain_pem.as_bytes(),
            ),
            ("qe_identity.json", self.qe_identity_json.as_bytes()),
            (
                "qe_identity_issuer_chain.pem",
                self.qe_identity_issuer_chain_pem.as_bytes(),
            ),
            ("pck_crl.der", &self.pck_crl_der),
            (
                "pck_crl_issuer_chain.pem",
                self.pck_crl_issuer_chain_pem.as_bytes(),
            ),
            ("root_ca_crl.der", &self.root_ca_crl_der),
            ("intel_sgx_root_ca.der", &self.root_ca_der),
            ("intel_sgx_root_ca.pem", root_ca_pem.as_bytes()),
            ("collateral_dcap_qvl.json", dcap_qvl_json.as_bytes()),
        ];
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_pcs_formatted() {
        assert_eq!(rfc3339(VALID_FROM_UNIX), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(COLLATERAL_NEXT_UPDATE_UNIX), "2049-12-31T00:00:00Z");
        assert_eq!(rfc3339(CERTS_VALID_UNTIL_UNIX), "2049-12-31T23:59:59Z");
        assert_eq!(rfc3339(STALE_NEXT_UPDATE_UNIX), "2024-02-01T00:00:00Z");
        assert_eq!(rfc3339(SIM_VERIFICATION_TIME_UNIX), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn tcb_info_has_pcs_field_order_and_tdx_id() {
        let text = tcb_info_text(CollateralWindow::Current);
        assert!(text.starts_with(
            "{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"2025-01-01T00:00:00Z\",\"nextUpdate\":\"2049-12-31T00:00:00Z\",\"fmspc\":\"5E1D00000000\""
        ));
        assert!(text.contains("\"tdxModuleIdentities\":[{\"id\":\"TDX_01\""));
        assert!(text.contains("\"advisoryIDs\":[\"SIM-SA-00101\",\"SIM-SA-00102\"]"));
    }

    #[test]
    fn stale_window_lies_in_the_past() {
        let text = tcb_info_text(CollateralWindow::Stale);
        assert!(text.contains("\"nextUpdate\":\"2024-02-01T00:00:00Z\""));
    }

    #[test]
    fn envelope_wraps_the_exact_body() {
        let signed = SignedJson {
            body: "{\"id\":\"TDX\"}".into(),
            signature: [0xAB; 64],
        };
        let envelope = signed.envelope("tcbInfo");
        assert!(envelope.starts_with("{\"tcbInfo\":{\"id\":\"TDX\"},\"signature\":\"abab"));
        assert!(envelope.ends_with("\"}"));
    }
}
