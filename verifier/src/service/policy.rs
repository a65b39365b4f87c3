//! Which workload a piece of verified evidence may become, and whether its facts satisfy that workload's policy.
//!
//! The checks themselves (debug, VMPL, TDX TCB status, minimum SNP TCB, reference values) are the appraisal
//! module's [`apply_policy`]; this module maps a `[[workload]]` to that [`Policy`] and chooses the workload:
//!
//! - the agent named one (`"workload"` in the request): it must be a valid identifier in our trust domain
//!   (`identifier_invalid`), configured (`workload_unknown`), and admit this TEE (`measurement_unknown`: it has no
//!   reference values for it); then its full policy applies;
//! - the agent named none: the first configured workload admitting this TEE whose *reference values* match the
//!   evidence is chosen (none → `measurement_unknown`), then its full policy applies (so a debug guest with a known
//!   measurement is `debug_enabled`, not `measurement_unknown`).

use locus_wimse::WorkloadId;

use super::config::{Config, Tee, Workload};
use crate::appraisal::policy::{Measurements, MinTcb};
use crate::appraisal::{apply_policy, Facts, Policy, Verified};
use crate::{ErrorCode, Refusal};

fn hexes(list: &[Vec<u8>]) -> Vec<String> {
    list.iter().map(hex::encode).collect()
}

/// The appraisal policy of a workload for evidence of `tee`.
pub fn workload_policy(w: &Workload, tee: Tee) -> Policy {
    let mut m = Measurements::default();
    match tee {
        Tee::SevSnp => {
            if let Some(s) = &w.snp {
                m.snp_measurement = hexes(&s.measurement);
                m.snp_host_data = hexes(&s.host_data);
            }
        }
        Tee::Tdx => {
            if let Some(t) = &w.tdx {
                m.tdx_mr_td = hexes(&t.mr_td);
                m.tdx_rtmr0 = hexes(&t.rtmr[0]);
                m.tdx_rtmr1 = hexes(&t.rtmr[1]);
                m.tdx_rtmr2 = hexes(&t.rtmr[2]);
                m.tdx_rtmr3 = hexes(&t.rtmr[3]);
                m.tdx_mr_config_id = hexes(&t.mr_config_id);
            }
        }
    }
    Policy {
        allow_debug: w.allow_debug,
        snp_allowed_vmpl: vec![0],
        tdx_allowed_tcb: w.tdx_allowed_tcb.clone(),
        snp_min_tcb: w.min_tcb.map(|t| MinTcb {
            fmc: t.fmc,
            bootloader: Some(t.bootloader),
            tee: Some(t.tee),
            snp: Some(t.snp),
            microcode: Some(t.microcode),
        }),
        measurements: m,
    }
}

/// Only the reference values of `w` (every other check relaxed), to find which workload evidence is.
fn reference_values_only(w: &Workload, tee: Tee) -> Policy {
    let strict = workload_policy(w, tee);
    Policy {
        allow_debug: true,
        snp_allowed_vmpl: (0..4).collect(),
        tdx_allowed_tcb: crate::appraisal::policy::TDX_TCB_STATUSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        snp_min_tcb: None,
        measurements: strict.measurements,
    }
}

/// The TEE of verified facts.
pub fn tee_of(verified: &Verified<Facts>) -> Tee {
    match verified.facts() {
        Facts::Snp(_) => Tee::SevSnp,
        Facts::Tdx(_) => Tee::Tdx,
    }
}

/// Choose the workload for `verified` (see module docs) and apply its policy.
pub fn select<'a>(
    cfg: &'a Config,
    requested: Option<&str>,
    verified: &Verified<Facts>,
) -> Result<&'a Workload, Refusal> {
    let tee = tee_of(verified);
    if let Some(id) = requested {
        let parsed = WorkloadId::parse(id).map_err(|e| {
            Refusal::new(
                ErrorCode::IdentifierInvalid,
                format!("workload {id:?}: {e}"),
            )
        })?;
        if parsed.trust_domain_str() != cfg.credentials.trust_domain {
            return Err(Refusal::new(
                ErrorCode::IdentifierInvalid,
                format!(
                    "workload {id:?} is outside this verifier's trust domain {:?}",
                    cfg.credentials.trust_domain
                ),
            ));
        }
        let w = cfg.workload(parsed.as_str()).ok_or_else(|| {
            Refusal::new(
                ErrorCode::WorkloadUnknown,
                format!("workload {id:?} is not configured"),
            )
        })?;
        if !w.tees.contains(&tee) {
            return Err(Refusal::new(
                ErrorCode::MeasurementUnknown,
                format!("workload {id:?} has no reference values for {tee}"),
            ));
        }
        apply_policy(verified, &workload_policy(w, tee))?;
        return Ok(w);
    }
    let mut last_miss = None;
    for w in cfg.workloads.iter().filter(|w| w.tees.contains(&tee)) {
        match apply_policy(verified, &reference_values_only(w, tee)) {
            Ok(()) => {
                apply_policy(verified, &workload_policy(w, tee))?;
                return Ok(w);
            }
            Err(r) => last_miss = Some(r),
        }
    }
    Err(Refusal::new(
        ErrorCode::MeasurementUnknown,
        match last_miss {
            Some(r) => format!(
                "no configured {tee} workload has these reference values ({})",
                r.message
            ),
            None => format!("no configured workload admits {tee}"),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::config::{RawMinTcb, SnpSelector, TdxSelector};
    use std::time::Duration;

    fn workload() -> Workload {
        Workload {
            id: "spiffe://locus.example/w".into(),
            tees: vec![Tee::SevSnp, Tee::Tdx],
            snp: Some(SnpSelector {
                measurement: vec![vec![0xab; 48]],
                host_data: vec![vec![0x01; 32]],
            }),
            tdx: Some(TdxSelector {
                mr_td: vec![vec![0xcd; 48]],
                rtmr: [vec![vec![0x02; 48]], vec![], vec![], vec![]],
                mr_config_id: vec![],
            }),
            min_tcb: Some(RawMinTcb {
                fmc: None,
                bootloader: 3,
                tee: 0,
                snp: 8,
                microcode: 115,
            }),
            allow_debug: false,
            tdx_allowed_tcb: vec!["UpToDate".into(), "SWHardeningNeeded".into()],
            geofence: None,
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_workload_maps_to_the_strict_appraisal_policy_of_each_tee() {
        let w = workload();
        let snp = workload_policy(&w, Tee::SevSnp);
        assert!(!snp.allow_debug);
        assert_eq!(snp.snp_allowed_vmpl, vec![0]);
        assert_eq!(snp.measurements.snp_measurement, vec!["ab".repeat(48)]);
        assert_eq!(snp.measurements.snp_host_data, vec!["01".repeat(32)]);
        assert!(
            snp.measurements.tdx_mr_td.is_empty(),
            "only the evidence's TEE is constrained"
        );
        let min = snp.snp_min_tcb.expect("min tcb");
        assert_eq!(
            (min.bootloader, min.snp, min.microcode, min.fmc),
            (Some(3), Some(8), Some(115), None)
        );
        let tdx = workload_policy(&w, Tee::Tdx);
        assert_eq!(tdx.measurements.tdx_mr_td, vec!["cd".repeat(48)]);
        assert_eq!(tdx.measurements.tdx_rtmr0, vec!["02".repeat(48)]);
        assert!(tdx.measurements.tdx_rtmr1.is_empty());
        assert_eq!(tdx.tdx_allowed_tcb, w.tdx_allowed_tcb);
    }

    #[test]
    fn matching_reference_values_relaxes_everything_but_the_measurements() {
        let w = workload();
        let p = reference_values_only(&w, Tee::SevSnp);
        assert!(p.allow_debug);
        assert!(p.snp_min_tcb.is_none());
        assert_eq!(
            p.measurements,
            workload_policy(&w, Tee::SevSnp).measurements
        );
    }
}
