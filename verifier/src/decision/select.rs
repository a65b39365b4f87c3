//! Which workload a piece of verified evidence may become (docs/configuration.md `default`):
//!
//! - the request names one: it must parse as an identifier of our trust domain (`identifier_invalid`), be configured
//!   (`workload_unknown`) and admit this TEE (`measurement_unknown`: it has no reference values for it);
//! - the request names none: the workloads admitting this TEE whose *reference values* match the evidence are the
//!   candidates; none → `measurement_unknown`; one → it; several → the one marked `default = true` among them, else
//!   `workload_ambiguous` (never the first in the file: the order of a config file is not a policy).
//!
//! The chosen workload's full policy is applied afterwards by the decision, so a debug guest with a known measurement
//! is `debug_enabled`, not `measurement_unknown`.

use locus_wimse::WorkloadId;

use crate::appraisal::{match_reference_values, Facts, Verified};
use crate::config::{Config, Workload};
use crate::{ErrorCode, Refusal};

/// Choose the workload for `verified` (module docs).
pub fn select<'a>(
    cfg: &'a Config,
    requested: Option<&str>,
    verified: &Verified<Facts>,
) -> Result<&'a Workload, Refusal> {
    let tee = verified.facts().tee();
    if let Some(text) = requested {
        let id = WorkloadId::parse(text).map_err(|e| {
            Refusal::new(
                ErrorCode::IdentifierInvalid,
                format!("requested workload: {e}"),
            )
        })?;
        if id.trust_domain_str() != cfg.credentials.trust_domain {
            return Err(Refusal::new(
                ErrorCode::IdentifierInvalid,
                format!(
                    "workload {} is outside this verifier's trust domain {:?}",
                    id.as_str(),
                    cfg.credentials.trust_domain
                ),
            ));
        }
        let w = cfg.workload(id.as_str()).ok_or_else(|| {
            Refusal::new(
                ErrorCode::WorkloadUnknown,
                format!("workload {} is not configured", id.as_str()),
            )
        })?;
        if !w.tees.contains(&tee) {
            return Err(Refusal::new(
                ErrorCode::MeasurementUnknown,
                format!("workload {} has no reference values for {tee}", id.as_str()),
            ));
        }
        return Ok(w);
    }
    let mut matches = Vec::new();
    let mut last_miss = None;
    for w in cfg.workloads.iter().filter(|w| w.tees.contains(&tee)) {
        match match_reference_values(verified, &w.policy) {
            Ok(()) => matches.push(w),
            Err(r) => last_miss = Some(r),
        }
    }
    match matches.as_slice() {
        [] => Err(Refusal::new(
            ErrorCode::MeasurementUnknown,
            match last_miss {
                Some(r) => format!(
                    "no configured {tee} workload has these reference values ({})",
                    r.message
                ),
                None => format!("no configured workload admits {tee}"),
            },
        )),
        [one] => Ok(one),
        several => {
            let defaults: Vec<&&Workload> = several.iter().filter(|w| w.default).collect();
            match defaults.as_slice() {
                [one] => Ok(one),
                _ => Err(Refusal::new(
                    ErrorCode::WorkloadAmbiguous,
                    format!(
                        "the evidence matches {} workloads ({}) and none of them is default = true: name one",
                        several.len(),
                        several
                            .iter()
                            .map(|w| w.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
    }
}
