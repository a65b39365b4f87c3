//! The `locus_tee` and `locus_residency` claims (docs/architecture.md#credentials), built only from what the decision established:
//!
//! - `locus_tee.tcb_status` is Intel's status for TDX and, for SEV-SNP, the status derived from the TCB the operator
//!   declares current for the product (never asserted without that comparison); the reported TCB values stand
//!   beside it (`reported_tcb` for SNP, `tee_tcb_svn` for TDX).
//! - `locus_tee.revocation` is `checked`: policy refuses anything else.
//! - `locus_tee.measurement_scope` (TDX) says whether the kernel and command line were pinned (`full`) or only the
//!   firmware (`firmware`).
//! - `locus_tee.simulated` is true whenever simulator trust is on (docs/architecture.md#appraisal), not only for evidence that chained to
//!   a simulator root: a verifier that trusts the simulator cannot vouch for hardware.
//! - `locus_residency` says where the platform is, from which sources, at which granularity (`host` | `provider`);
//!   for a workload with `residency = "optional"` on a platform nobody located it is `{"established": false}`.
//!   Proximity bounds that counted add `"proximity"` to `sources` and `max_distance_km` per landmark name; a
//!   platform nobody located but whose key is bounded (a `within`-only fence) has those alone.

use serde::Serialize;

use super::proximity::Bound;
use super::residency::{Location, PlatformIdentity};
use crate::appraisal::{Facts, PolicyOutcome, Verified};
use crate::config::Workload;

/// SNP reported TCB, per component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportedTcb {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

/// `locus_tee`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TeeClaim {
    #[serde(rename = "type")]
    pub tee: &'static str,
    pub measurement: String,
    pub tcb_status: String,
    pub debug: bool,
    pub platform: String,
    pub simulated: bool,
    pub revocation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_tcb: Option<ReportedTcb>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tee_tcb_svn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advisory_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_scope: Option<&'static str>,
}

impl TeeClaim {
    pub(super) fn new(
        verified: &Verified<Facts>,
        workload: &Workload,
        platform: &PlatformIdentity,
        outcome: &PolicyOutcome,
        simulated: bool,
    ) -> TeeClaim {
        let facts = verified.facts();
        let mut claim = TeeClaim {
            tee: facts.tee().as_str(),
            measurement: hex::encode(facts.measurement()),
            tcb_status: outcome.tcb_status.clone(),
            debug: facts.debug(),
            platform: platform.digest_hex(),
            simulated,
            revocation: "checked",
            reported_tcb: None,
            tee_tcb_svn: None,
            advisory_ids: None,
            measurement_scope: None,
        };
        match facts {
            Facts::Snp(f) => {
                let t = &f.reported_tcb;
                claim.reported_tcb = Some(ReportedTcb {
                    fmc: t.fmc,
                    bootloader: t.bootloader,
                    tee: t.tee,
                    snp: t.snp,
                    microcode: t.microcode,
                });
            }
            Facts::Tdx(f) => {
                claim.tee_tcb_svn = Some(hex::encode(f.tee_tcb_svn));
                claim.advisory_ids = Some(f.advisory_ids.clone());
                claim.measurement_scope = Some(workload.measurement_scope.as_str());
            }
        }
        claim
    }

    /// As JSON (for the WIT).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// `{"<landmark>": km, …}`.
fn max_distance_km(bounds: &[Bound]) -> serde_json::Value {
    bounds
        .iter()
        .map(|b| {
            (
                b.landmark.clone(),
                serde_json::Value::from(b.max_distance_km),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// `locus_residency`.
#[derive(Clone, Debug, PartialEq)]
pub enum ResidencyClaim {
    Established {
        location: Location,
        /// Proximity bounds that counted (may be empty).
        bounds: Vec<Bound>,
        checked_at: u64,
    },
    /// No registry or endorsement location, but proximity bounds (a fence of `within` bounds only).
    ProximityOnly { bounds: Vec<Bound>, checked_at: u64 },
    /// `residency = "optional"` and no location: said, not omitted.
    NotEstablished,
}

impl ResidencyClaim {
    pub(super) fn established(
        location: Location,
        bounds: Vec<Bound>,
        checked_at: u64,
    ) -> ResidencyClaim {
        ResidencyClaim::Established {
            location,
            bounds,
            checked_at,
        }
    }

    /// As JSON (for the WIT).
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            ResidencyClaim::Established {
                location,
                bounds,
                checked_at,
            } => {
                let mut v = serde_json::json!({
                    "established": true,
                    "country": location.country,
                    "site": location.site,
                    "zones": location.zones,
                    "sources": location.sources,
                    "granularity": location.granularity,
                    "checked_at": checked_at,
                });
                if let (Some(region), Some(obj)) = (&location.region, v.as_object_mut()) {
                    obj.insert("region".into(), serde_json::Value::String(region.clone()));
                }
                if let (false, Some(obj)) = (bounds.is_empty(), v.as_object_mut()) {
                    obj.insert("max_distance_km".into(), max_distance_km(bounds));
                }
                v
            }
            ResidencyClaim::ProximityOnly { bounds, checked_at } => serde_json::json!({
                "established": true,
                "sources": ["proximity"],
                "max_distance_km": max_distance_km(bounds),
                "granularity": "key",
                "checked_at": checked_at,
            }),
            ResidencyClaim::NotEstablished => serde_json::json!({
                "established": false,
                "sources": [],
            }),
        }
    }
}
