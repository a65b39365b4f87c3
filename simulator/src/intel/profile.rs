//! TDX platform profiles: the values a simulated platform puts in its PCK certificate and its quotes, and the TCB
//! status the simulator's collateral yields for them.
//!
//! All built-in profiles share one FMSPC ([`SIM_FMSPC`]), so a single TCB info (and one exported collateral
//! directory) covers every simulated TDX platform. The status differs through the platform TCB the PCK carries:
//!
//! | profile | quote | PCK CPUSVN / PCESVN | TEE_TCB_SVN | TD_ATTRIBUTES | collateral yields |
//! |---|---|---|---|---|---|
//! | `tdx-fra-1` | v4, TD 1.0 | up-to-date level | module 1, SVN 5 | SEPT_VE_DISABLE | UpToDate |
//! | `tdx-iad-1` | v5, TD 1.5 | up-to-date level | module 1, SVN 5 (both) | SEPT_VE_DISABLE | UpToDate |
//! | `tdx-unregistered` | v4 | up-to-date level | module 1, SVN 5 | SEPT_VE_DISABLE | UpToDate |
//! | `tdx-outofdate` | v4 | out-of-date level | module 1, SVN 5 | SEPT_VE_DISABLE | OutOfDate + advisories |
//! | `tdx-tcb-not-supported` | v4 | below every level | module 1, SVN 5 | SEPT_VE_DISABLE | no matching TCB level |
//! | `tdx-debug` | v4 | up-to-date level | module 1, SVN 5 | DEBUG + SEPT_VE_DISABLE | UpToDate (debug TD) |
//!
//! Measurements (MRTD, RTMRs, MRSEAM) are the same "workload image" on every profile and do not depend on the seed,
//! so reference values can be pinned in configuration; PPIDs (the platform identity) derive from the seed.

use super::keys;

/// Names of the built-in TDX profiles (a contract: `examples/verifier.toml` and the CLI use them).
pub const TDX_FRA_1: &str = "tdx-fra-1";
/// Built-in profile at site iad-1; emits quote v5 with a TD 1.5 body.
pub const TDX_IAD_1: &str = "tdx-iad-1";
/// Built-in profile whose PPID no verifier configuration registers.
pub const TDX_UNREGISTERED: &str = "tdx-unregistered";
/// Built-in profile whose platform TCB is out of date.
pub const TDX_OUTOFDATE: &str = "tdx-outofdate";
/// Built-in profile whose platform TCB is below every TCB level of the collateral.
pub const TDX_TCB_NOT_SUPPORTED: &str = "tdx-tcb-not-supported";
/// Built-in profile of a debug TD (TD_ATTRIBUTES.DEBUG set).
pub const TDX_DEBUG: &str = "tdx-debug";

/// Every built-in TDX profile name, in display order.
pub const BUILTIN_TDX_PROFILES: [&str; 6] = [
    TDX_FRA_1,
    TDX_IAD_1,
    TDX_UNREGISTERED,
    TDX_OUTOFDATE,
    TDX_TCB_NOT_SUPPORTED,
    TDX_DEBUG,
];

/// FMSPC of every simulated TDX platform (one TCB info covers them all).
pub const SIM_FMSPC: [u8; 6] = [0x5E, 0x1D, 0x00, 0x00, 0x00, 0x00];
/// PCE-ID of every simulated platform (Intel's PCE has id 0).
pub const SIM_PCE_ID: [u8; 2] = [0x00, 0x00];

/// CPUSVN (= the 16 SGX TCB component SVNs) of the up-to-date TCB level.
pub const UP_TO_DATE_CPU_SVN: [u8; 16] = [4, 4, 3, 3, 5, 2, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
/// PCESVN of the up-to-date TCB level.
pub const UP_TO_DATE_PCE_SVN: u16 = 13;
/// CPUSVN of the out-of-date TCB level.
pub const OUT_OF_DATE_CPU_SVN: [u8; 16] = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
/// PCESVN of the out-of-date TCB level.
pub const OUT_OF_DATE_PCE_SVN: u16 = 11;
/// CPUSVN below every TCB level of the simulated collateral.
pub const UNSUPPORTED_CPU_SVN: [u8; 16] = [1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
/// PCESVN below every TCB level.
pub const UNSUPPORTED_PCE_SVN: u16 = 5;

/// TDX module major version reported in `TEE_TCB_SVN[1]` (selects module identity `TDX_01`).
pub const SIM_TDX_MODULE_VERSION: u8 = 1;
/// Module ISVSVN (`TEE_TCB_SVN[0]`) of the up-to-date module level.
pub const UP_TO_DATE_MODULE_SVN: u8 = 5;
/// Module ISVSVN of the out-of-date module level (what the `LowTcb` fault reports).
pub const OUT_OF_DATE_MODULE_SVN: u8 = 3;
/// TEE_TCB_SVN of an up-to-date platform: module SVN 5, module version 1, TDX late microcode SVN 3.
pub const UP_TO_DATE_TEE_TCB_SVN: [u8; 16] = [
    UP_TO_DATE_MODULE_SVN,
    SIM_TDX_MODULE_VERSION,
    3,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
];

/// ISVSVN of the simulated TD quoting enclave (the QE identity's only level).
pub const SIM_QE_ISVSVN: u16 = 4;
/// ISVPRODID of the TD quoting enclave (Intel's TDQE is 2).
pub const SIM_QE_ISVPRODID: u16 = 2;

/// Advisories of the out-of-date platform TCB level.
pub const PLATFORM_ADVISORIES: [&str; 2] = ["SIM-SA-00101", "SIM-SA-00102"];
/// Advisory of the out-of-date TDX module level.
pub const MODULE_ADVISORIES: [&str; 1] = ["SIM-SA-00201"];

/// TD_ATTRIBUTES bit 0 (byte 0): DEBUG.
pub const TD_ATTRIBUTES_DEBUG: u64 = 1 << 0;
/// TD_ATTRIBUTES bit 28: SEPT_VE_DISABLE (required by dcap-qvl and every production TD).
pub const TD_ATTRIBUTES_SEPT_VE_DISABLE: u64 = 1 << 28;

/// What the simulator's collateral says about a profile's TCB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TdxTcbExpectation {
    /// A TCB level matches; the converged status and the advisory ids (platform then module, deduplicated).
    Status {
        /// Converged TCB status, e.g. `"UpToDate"` or `"OutOfDate"` (Intel's spelling).
        status: String,
        /// Advisory ids of the matched levels.
        advisory_ids: Vec<String>,
    },
    /// No TCB level matches the platform (`tcb_not_supported`), although every signature is valid.
    NoMatchingLevel,
}

impl TdxTcbExpectation {
    fn up_to_date() -> Self {
        Self::Status {
            status: "UpToDate".into(),
            advisory_ids: Vec::new(),
        }
    }
}

/// Everything a simulated TDX platform reports. Field names follow the quote (Intel DCAP `sgx_quote_4.h`); all values are used
/// verbatim by the attester and the PCK issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxProfile {
    /// Profile name (`tdx-fra-1`, …).
    pub name: String,
    /// Quote version: 4 (TD report 1.0 body) or 5 (body type 3, TD report 1.5).
    pub quote_version: u16,
    /// Platform Provisioning ID in the PCK certificate — the Locus platform identity.
    pub ppid: [u8; 16],
    /// FMSPC in the PCK certificate (selects the TCB info).
    pub fmspc: [u8; 6],
    /// PCE-ID in the PCK certificate.
    pub pce_id: [u8; 2],
    /// CPUSVN in the PCK certificate; also the 16 SGX TCB component SVNs.
    pub cpu_svn: [u8; 16],
    /// PCESVN in the PCK certificate and the quote header.
    pub pce_svn: u16,
    /// Platform instance id in the PCK certificate (Platform CA leaves carry one).
    pub platform_instance_id: [u8; 16],
    /// ISVSVN of the quoting enclave (QE report and quote header `qe_svn`).
    pub qe_svn: u16,
    /// TEE_TCB_SVN (byte 0 module SVN, byte 1 module version).
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM: measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM (zero for Intel's module).
    pub mr_signer_seam: [u8; 48],
    /// SEAM_ATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// TD_ATTRIBUTES (little-endian u64; bit 0 DEBUG, bit 28 SEPT_VE_DISABLE).
    pub td_attributes: [u8; 8],
    /// XFAM.
    pub xfam: [u8; 8],
    /// MRTD: the initial TD measurement.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// RTMR0–3.
    pub rtmr: [[u8; 48]; 4],
    /// TEE_TCB_SVN2 (TD 1.5 only: the current TCB after a TD-preserving update).
    pub tee_tcb_svn2: [u8; 16],
    /// MRSERVICETD (TD 1.5 only; zero unless service TDs are bound).
    pub mr_service_td: [u8; 48],
    /// The TCB result the simulator's current collateral yields for this profile (without faults).
    pub expected: TdxTcbExpectation,
}

impl TdxProfile {
    /// An up-to-date v4 platform named `name`: the template the built-ins start from. PPID and platform instance id
    /// derive from `seed` and `name`.
    pub fn up_to_date(seed: u64, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            quote_version: 4,
            ppid: keys::derive_bytes(seed, &format!("intel/ppid/{name}")),
            fmspc: SIM_FMSPC,
            pce_id: SIM_PCE_ID,
            cpu_svn: UP_TO_DATE_CPU_SVN,
            pce_svn: UP_TO_DATE_PCE_SVN,
            platform_instance_id: keys::derive_bytes(
                seed,
                &format!("intel/platform-instance-id/{name}"),
            ),
            qe_svn: SIM_QE_ISVSVN,
            tee_tcb_svn: UP_TO_DATE_TEE_TCB_SVN,
            mr_seam: keys::measurement48("locus-sim/tdx/mrseam/tdx-module-1.5.06"),
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            td_attributes: TD_ATTRIBUTES_SEPT_VE_DISABLE.to_le_bytes(),
            xfam: [0xE7, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00],
            mr_td: keys::measurement48("locus-sim/tdx/mrtd/locus-workload-v1"),
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            rtmr: [
                keys::measurement48("locus-sim/tdx/rtmr0/firmware"),
                keys::measurement48("locus-sim/tdx/rtmr1/kernel"),
                keys::measurement48("locus-sim/tdx/rtmr2/cmdline-initrd"),
                [0; 48],
            ],
            tee_tcb_svn2: UP_TO_DATE_TEE_TCB_SVN,
            mr_service_td: [0; 48],
            expected: TdxTcbExpectation::up_to_date(),
        }
    }

    /// The built-in profile `name` for `seed`, or `None` if `name` is not one of [`BUILTIN_TDX_PROFILES`].
    pub fn builtin(seed: u64, name: &str) -> Option<Self> {
        let mut profile = Self::up_to_date(seed, name);
        match name {
            TDX_FRA_1 | TDX_UNREGISTERED => {}
            TDX_IAD_1 => profile.quote_version = 5,
            TDX_OUTOFDATE => {
                profile.cpu_svn = OUT_OF_DATE_CPU_SVN;
                profile.pce_svn = OUT_OF_DATE_PCE_SVN;
                profile.expected = TdxTcbExpectation::Status {
                    status: "OutOfDate".into(),
                    advisory_ids: PLATFORM_ADVISORIES
                        .iter()
                        .map(|id| (*id).to_owned())
                        .collect(),
                };
            }
            TDX_TCB_NOT_SUPPORTED => {
                profile.cpu_svn = UNSUPPORTED_CPU_SVN;
                profile.pce_svn = UNSUPPORTED_PCE_SVN;
                profile.expected = TdxTcbExpectation::NoMatchingLevel;
            }
            TDX_DEBUG => {
                profile.td_attributes =
                    (TD_ATTRIBUTES_SEPT_VE_DISABLE | TD_ATTRIBUTES_DEBUG).to_le_bytes();
            }
            _ => return None,
        }
        Some(profile)
    }

    /// All built-in profiles for `seed`, in [`BUILTIN_TDX_PROFILES`] order.
    pub fn builtins(seed: u64) -> Vec<Self> {
        BUILTIN_TDX_PROFILES
            .iter()
            .filter_map(|name| Self::builtin(seed, name))
            .collect()
    }

    /// TD_ATTRIBUTES.DEBUG.
    pub fn debug(&self) -> bool {
        u64::from_le_bytes(self.td_attributes) & TD_ATTRIBUTES_DEBUG != 0
    }

    /// The Locus platform identity: the PPID in lowercase hex (docs/architecture.md#residency-and-the-geo-fence).
    pub fn platform_id(&self) -> String {
        hex::encode(self.ppid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_name_has_a_profile() {
        let profiles = TdxProfile::builtins(1);
        assert_eq!(profiles.len(), BUILTIN_TDX_PROFILES.len());
        for (profile, name) in profiles.iter().zip(BUILTIN_TDX_PROFILES) {
            assert_eq!(profile.name, name);
        }
        assert!(TdxProfile::builtin(1, "tdx-nowhere").is_none());
    }

    #[test]
    fn platforms_have_distinct_ppids() {
        let profiles = TdxProfile::builtins(1);
        for (i, a) in profiles.iter().enumerate() {
            for b in &profiles[i + 1..] {
                assert_ne!(a.ppid, b.ppid, "{} and {}", a.name, b.name);
            }
        }
    }

    #[test]
    fn only_the_debug_profile_is_debug() {
        for profile in TdxProfile::builtins(1) {
            assert_eq!(
                profile.debug(),
                profile.name == TDX_DEBUG,
                "{}",
                profile.name
            );
        }
    }

    #[test]
    fn iad_emits_quote_v5() {
        assert_eq!(
            TdxProfile::builtin(1, TDX_IAD_1).map(|p| p.quote_version),
            Some(5)
        );
        assert_eq!(
            TdxProfile::builtin(1, TDX_FRA_1).map(|p| p.quote_version),
            Some(4)
        );
    }
}
