//! Policy over verified facts (DESIGN §3 "Policy then checks"): debug, SNP VMPL, TDX TCB status, minimum SNP TCB,
//! reference measurements. Appraisal proves the facts; this decides whether they are acceptable.
//!
//! The CLI's `--policy FILE` is this struct as TOML; every field is optional and defaults to the strict choice:
//!
//! ```toml
//! allow_debug = false                 # refuse debug guests / TDs (debug_enabled)
//! snp_allowed_vmpl = [0]              # SNP VMPLs accepted (vmpl_rejected)
//! tdx_allowed_tcb = ["UpToDate"]      # TDX TCB statuses accepted (tcb_status_rejected)
//! [snp_min_tcb]                       # per-component SNP minimum over current, committed, reported and launch TCB
//! bootloader = 3                      #   (tcb_below_minimum); absent components are not checked
//! tee = 0
//! snp = 8
//! microcode = 115
//! # fmc = 0                           # Turin only
//! [measurements]                      # reference values, lowercase or uppercase hex; an empty or absent list
//! snp_measurement = ["<hex>"]         #   accepts any value (measurement_unknown on a miss)
//! snp_host_data = ["<hex>"]
//! tdx_mr_td = ["<hex>"]
//! tdx_mr_config_id = ["<hex>"]
//! tdx_rtmr0 = ["<hex>"]               # also tdx_rtmr1, tdx_rtmr2, tdx_rtmr3
//! ```

use serde::Deserialize;

use super::{Facts, SnpFacts, TdxFacts, Verified};
use crate::error::{ErrorCode, Refusal};

/// Minimum SNP TCB, per component (sev-snp.md §3: never compare the packed value).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinTcb {
    pub fmc: Option<u8>,
    pub bootloader: Option<u8>,
    pub tee: Option<u8>,
    pub snp: Option<u8>,
    pub microcode: Option<u8>,
}

/// Reference values. An empty list means "not constrained".
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurements {
    #[serde(default)]
    pub snp_measurement: Vec<String>,
    #[serde(default)]
    pub snp_host_data: Vec<String>,
    #[serde(default)]
    pub tdx_mr_td: Vec<String>,
    #[serde(default)]
    pub tdx_mr_config_id: Vec<String>,
    #[serde(default)]
    pub tdx_rtmr0: Vec<String>,
    #[serde(default)]
    pub tdx_rtmr1: Vec<String>,
    #[serde(default)]
    pub tdx_rtmr2: Vec<String>,
    #[serde(default)]
    pub tdx_rtmr3: Vec<String>,
}

/// An appraisal policy. `Policy::default()` is the strict one: no debug, VMPL 0, TDX `UpToDate` only.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub allow_debug: bool,
    #[serde(default = "default_vmpl")]
    pub snp_allowed_vmpl: Vec<u32>,
    #[serde(default = "default_tdx_tcb")]
    pub tdx_allowed_tcb: Vec<String>,
    #[serde(default)]
    pub snp_min_tcb: Option<MinTcb>,
    #[serde(default)]
    pub measurements: Measurements,
}

fn default_vmpl() -> Vec<u32> {
    vec![0]
}

fn default_tdx_tcb() -> Vec<String> {
    vec!["UpToDate".to_string()]
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow_debug: false,
            snp_allowed_vmpl: default_vmpl(),
            tdx_allowed_tcb: default_tdx_tcb(),
            snp_min_tcb: None,
            measurements: Measurements::default(),
        }
    }
}

/// The TCB status strings Intel defines (tdx.md §6); a policy naming anything else is refused when parsed.
pub const TDX_TCB_STATUSES: [&str; 9] = [
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
];

impl Policy {
    /// Parse the TOML form (module docs). Errors name the problem; the CLI exits 2 on them.
    pub fn from_toml(text: &str) -> Result<Policy, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| format!("policy: {e}"))?;
        for status in &policy.tdx_allowed_tcb {
            if !TDX_TCB_STATUSES.contains(&status.as_str()) {
                return Err(format!("policy: unknown TDX TCB status {status:?}"));
            }
        }
        let m = &policy.measurements;
        for (name, list, len) in [
            ("snp_measurement", &m.snp_measurement, 48),
            ("snp_host_data", &m.snp_host_data, 32),
            ("tdx_mr_td", &m.tdx_mr_td, 48),
            ("tdx_mr_config_id", &m.tdx_mr_config_id, 48),
            ("tdx_rtmr0", &m.tdx_rtmr0, 48),
            ("tdx_rtmr1", &m.tdx_rtmr1, 48),
            ("tdx_rtmr2", &m.tdx_rtmr2, 48),
            ("tdx_rtmr3", &m.tdx_rtmr3, 48),
        ] {
            for v in list {
                match hex::decode(v) {
                    Ok(b) if b.len() == len => {}
                    _ => {
                        return Err(format!(
                            "policy: {name} value {v:?} is not {len} bytes of hex"
                        ))
                    }
                }
            }
        }
        Ok(policy)
    }
}

fn in_reference(list: &[String], value: &[u8], what: &str) -> Result<(), Refusal> {
    if list.is_empty()
        || list
            .iter()
            .any(|v| hex::decode(v).is_ok_and(|b| b == value))
    {
        return Ok(());
    }
    Err(Refusal::new(
        ErrorCode::MeasurementUnknown,
        format!(
            "{what} {} is not among the {} reference value(s)",
            hex::encode(value),
            list.len()
        ),
    ))
}

fn check_snp(f: &SnpFacts, p: &Policy) -> Result<(), Refusal> {
    if f.policy.debug && !p.allow_debug {
        return Err(Refusal::new(
            ErrorCode::DebugEnabled,
            "guest policy allows debugging (bit 19)",
        ));
    }
    if !p.snp_allowed_vmpl.contains(&f.vmpl) {
        return Err(Refusal::new(
            ErrorCode::VmplRejected,
            format!(
                "report VMPL {} is not in the allowed set {:?}",
                f.vmpl, p.snp_allowed_vmpl
            ),
        ));
    }
    if let Some(min) = &p.snp_min_tcb {
        for (which, tcb) in [
            ("current", &f.current_tcb),
            ("committed", &f.committed_tcb),
            ("reported", &f.reported_tcb),
            ("launch", &f.launch_tcb),
        ] {
            let comps = [
                ("fmc", tcb.fmc, min.fmc),
                ("bootloader", Some(tcb.bootloader), min.bootloader),
                ("tee", Some(tcb.tee), min.tee),
                ("snp", Some(tcb.snp), min.snp),
                ("microcode", Some(tcb.microcode), min.microcode),
            ];
            for (name, have, want) in comps {
                if let (Some(have), Some(want)) = (have, want) {
                    if have < want {
                        return Err(Refusal::new(
                            ErrorCode::TcbBelowMinimum,
                            format!("{which} TCB {name} {have} is below the minimum {want}"),
                        ));
                    }
                }
            }
        }
    }
    in_reference(
        &p.measurements.snp_measurement,
        &f.measurement,
        "MEASUREMENT",
    )?;
    in_reference(&p.measurements.snp_host_data, &f.host_data, "HOST_DATA")
}

fn check_tdx(f: &TdxFacts, p: &Policy) -> Result<(), Refusal> {
    // TUD bits: DEBUG (bit 0) and the profiling bits 4–6 both mean the TD is under debug (tdx.md §3).
    let profiling = f.td_attributes[0] & 0x70 != 0;
    if (f.debug || profiling) && !p.allow_debug {
        return Err(Refusal::new(
            ErrorCode::DebugEnabled,
            format!(
                "TD_ATTRIBUTES TUD bits {:#04x} (debug/profiling) are set",
                f.td_attributes[0]
            ),
        ));
    }
    if !p.tdx_allowed_tcb.contains(&f.tcb_status) {
        return Err(Refusal::new(
            ErrorCode::TcbStatusRejected,
            format!(
                "TCB status {} (advisories {:?}) is not in the allowed set {:?}",
                f.tcb_status, f.advisory_ids, p.tdx_allowed_tcb
            ),
        ));
    }
    let m = &p.measurements;
    in_reference(&m.tdx_mr_td, &f.mr_td, "MRTD")?;
    in_reference(&m.tdx_mr_config_id, &f.mr_config_id, "MRCONFIGID")?;
    for (i, list) in [&m.tdx_rtmr0, &m.tdx_rtmr1, &m.tdx_rtmr2, &m.tdx_rtmr3]
        .into_iter()
        .enumerate()
    {
        in_reference(list, &f.rtmr[i], &format!("RTMR{i}"))?;
    }
    Ok(())
}

/// Apply `policy` to verified facts; the first failing check's refusal.
pub fn apply_policy(verified: &Verified<Facts>, policy: &Policy) -> Result<(), Refusal> {
    match verified.facts() {
        Facts::Snp(f) => check_snp(f, policy),
        Facts::Tdx(f) => check_tdx(f, policy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use locus_hw::snp::{Product, TcbVersion};

    fn snp_facts() -> SnpFacts {
        let tcb = TcbVersion {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
        };
        SnpFacts {
            product: Product::Milan,
            report_version: 2,
            signer: super::super::SnpSigner::Vcek,
            measurement: [0xaa; 48],
            report_data: [0; 64],
            host_data: [0; 32],
            chip_id: [1; 64],
            vmpl: 0,
            policy: super::super::SnpPolicyFacts {
                debug: false,
                smt: true,
                migrate_ma: false,
            },
            policy_raw: 0x30000,
            guest_svn: 0,
            family_id: [0; 16],
            image_id: [0; 16],
            id_key_digest: [0; 48],
            platform_info: 0,
            reported_tcb: tcb,
            current_tcb: tcb,
            committed_tcb: tcb,
            launch_tcb: tcb,
            csp_id: None,
        }
    }

    fn tdx_facts() -> TdxFacts {
        TdxFacts {
            quote_version: 4,
            body_type: 2,
            tee_tcb_svn: [0; 16],
            mr_seam: [0; 48],
            mr_signer_seam: [0; 48],
            td_attributes: [0, 0, 0, 0x10, 0, 0, 0, 0],
            xfam: [0; 8],
            mr_td: [0xbb; 48],
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            rtmr: [[0; 48]; 4],
            report_data: [0; 64],
            debug: false,
            fmspc: [0; 6],
            ppid: vec![],
            tcb_status: "UpToDate".into(),
            advisory_ids: vec![],
        }
    }

    fn code(v: Verified<Facts>, p: &Policy) -> Option<ErrorCode> {
        apply_policy(&v, p).err().map(|r| r.code)
    }

    #[test]
    fn default_policy_accepts_clean_facts() {
        assert_eq!(
            code(
                Verified::new(Facts::Snp(snp_facts()), false),
                &Policy::default()
            ),
            None
        );
        assert_eq!(
            code(
                Verified::new(Facts::Tdx(tdx_facts()), false),
                &Policy::default()
            ),
            None
        );
    }

    #[test]
    fn debug_is_debug_enabled_unless_allowed() {
        let mut s = snp_facts();
        s.policy.debug = true;
        let mut t = tdx_facts();
        t.debug = true;
        let mut profiled = tdx_facts();
        profiled.td_attributes[0] = 0x10;
        assert_eq!(
            code(
                Verified::new(Facts::Tdx(profiled), false),
                &Policy::default()
            ),
            Some(ErrorCode::DebugEnabled)
        );
        let strict = Policy::default();
        assert_eq!(
            code(Verified::new(Facts::Snp(s.clone()), false), &strict),
            Some(ErrorCode::DebugEnabled)
        );
        assert_eq!(
            code(Verified::new(Facts::Tdx(t.clone()), false), &strict),
            Some(ErrorCode::DebugEnabled)
        );
        let lax = Policy {
            allow_debug: true,
            ..Policy::default()
        };
        assert_eq!(code(Verified::new(Facts::Snp(s), false), &lax), None);
        assert_eq!(code(Verified::new(Facts::Tdx(t), false), &lax), None);
    }

    #[test]
    fn vmpl_other_than_allowed_is_vmpl_rejected() {
        let mut s = snp_facts();
        s.vmpl = 1;
        assert_eq!(
            code(Verified::new(Facts::Snp(s), false), &Policy::default()),
            Some(ErrorCode::VmplRejected)
        );
    }

    #[test]
    fn tdx_status_outside_the_allowed_set_is_tcb_status_rejected() {
        let mut t = tdx_facts();
        t.tcb_status = "OutOfDate".into();
        let v = Verified::new(Facts::Tdx(t), false);
        assert_eq!(
            apply_policy(&v, &Policy::default()).err().map(|r| r.code),
            Some(ErrorCode::TcbStatusRejected)
        );
        let lax = Policy {
            tdx_allowed_tcb: vec!["UpToDate".into(), "OutOfDate".into()],
            ..Policy::default()
        };
        assert_eq!(apply_policy(&v, &lax).err().map(|r| r.code), None);
    }

    #[test]
    fn any_component_below_minimum_is_tcb_below_minimum() {
        let p = Policy::from_toml("[snp_min_tcb]\nmicrocode = 116\n").expect("policy");
        assert_eq!(
            code(Verified::new(Facts::Snp(snp_facts()), false), &p),
            Some(ErrorCode::TcbBelowMinimum)
        );
        let ok = Policy::from_toml("[snp_min_tcb]\nmicrocode = 115\nsnp = 8\n").expect("policy");
        assert_eq!(
            code(Verified::new(Facts::Snp(snp_facts()), false), &ok),
            None
        );
    }

    #[test]
    fn measurement_outside_reference_values_is_measurement_unknown() {
        let p = Policy::from_toml(&format!(
            "[measurements]\nsnp_measurement = [\"{}\"]\n",
            "ab".repeat(48)
        ))
        .expect("policy");
        assert_eq!(
            code(Verified::new(Facts::Snp(snp_facts()), false), &p),
            Some(ErrorCode::MeasurementUnknown)
        );
        let ok = Policy::from_toml(&format!(
            "[measurements]\nsnp_measurement = [\"{}\"]\n",
            "AA".repeat(48)
        ))
        .expect("policy");
        assert_eq!(
            code(Verified::new(Facts::Snp(snp_facts()), false), &ok),
            None
        );
        let p = Policy::from_toml(&format!(
            "[measurements]\ntdx_rtmr2 = [\"{}\"]\n",
            "01".repeat(48)
        ))
        .expect("p");
        assert_eq!(
            code(Verified::new(Facts::Tdx(tdx_facts()), false), &p),
            Some(ErrorCode::MeasurementUnknown)
        );
    }

    #[test]
    fn bad_policy_files_are_rejected_with_a_reason() {
        assert!(Policy::from_toml("tdx_allowed_tcb = [\"Fine\"]").is_err());
        assert!(Policy::from_toml("allow_debugg = true").is_err());
        assert!(Policy::from_toml("[measurements]\ntdx_mr_td = [\"abcd\"]").is_err());
    }
}
