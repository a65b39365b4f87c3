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
    pub bootloader: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    pub microcode: u8,
    pub snp: u8,
    pub tee: u8,
}

/// `locus_tee`. Fields are declared in the lexicographic order of their JSON names, so the claim is written in the
/// order a `Value` would sort it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TeeClaim {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advisory_ids: Option<Vec<String>>,
    pub debug: bool,
    pub measurement: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_scope: Option<&'static str>,
    pub platform: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_tcb: Option<ReportedTcb>,
    pub revocation: &'static str,
    pub simulated: bool,
    pub tcb_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tee_tcb_svn: Option<String>,
    #[serde(rename = "type")]
    pub tee: &'static str,
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
}

/// `{"<landmark>": km, …}`: one member per landmark name (the last bound of a name counts), in name order.
struct MaxDistanceKm<'a>(&'a [Bound]);

impl Serialize for MaxDistanceKm<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let by_name: std::collections::BTreeMap<&str, u64> = self
            .0
            .iter()
            .map(|b| (b.landmark.as_str(), b.max_distance_km))
            .collect();
        s.collect_map(by_name)
    }
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
}

/// The claim's members in lexicographic order (as a `Value` sorts them), written from the decision's fields.
impl Serialize for ResidencyClaim {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(None)?;
        match self {
            ResidencyClaim::Established {
                location,
                bounds,
                checked_at,
            } => {
                m.serialize_entry("checked_at", checked_at)?;
                m.serialize_entry("country", &location.country)?;
                m.serialize_entry("established", &true)?;
                m.serialize_entry("granularity", location.granularity)?;
                if !bounds.is_empty() {
                    m.serialize_entry("max_distance_km", &MaxDistanceKm(bounds))?;
                }
                if let Some(region) = &location.region {
                    m.serialize_entry("region", region)?;
                }
                m.serialize_entry("site", &location.site)?;
                m.serialize_entry("sources", &location.sources)?;
                m.serialize_entry("zones", &location.zones)?;
            }
            ResidencyClaim::ProximityOnly { bounds, checked_at } => {
                m.serialize_entry("checked_at", checked_at)?;
                m.serialize_entry("established", &true)?;
                m.serialize_entry("granularity", "key")?;
                m.serialize_entry("max_distance_km", &MaxDistanceKm(bounds))?;
                m.serialize_entry("sources", &["proximity"])?;
            }
            ResidencyClaim::NotEstablished => {
                m.serialize_entry("established", &false)?;
                m.serialize_entry("sources", &[] as &[&str])?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bound(landmark: &str, km: u64) -> Bound {
        Bound {
            landmark: landmark.into(),
            centre: [50.1, 8.7],
            max_distance_km: km,
            min_rtt_us: 900,
            rounds: 8,
            measured_at: 1_700_000_000,
        }
    }

    /// Written member by member, in name order, exactly as the claim's JSON form reads.
    fn written(claim: &impl Serialize) -> (String, serde_json::Value) {
        let text = serde_json::to_string(claim).expect("serializes");
        let value: serde_json::Value = serde_json::from_str(&text).expect("reads back");
        let keys: Vec<&String> = value.as_object().expect("an object").keys().collect();
        let at = |k: &str| text.find(&format!("\"{k}\":")).expect("written");
        assert!(keys.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        (text, value)
    }

    #[test]
    fn residency_claims_are_written_with_every_member_their_case_has() {
        let location = Location {
            country: "DE".into(),
            region: Some("DE-HE".into()),
            site: "fra-1".into(),
            zones: vec!["eu".into(), "de".into()],
            sources: vec!["registry", "proximity"],
            granularity: "host",
            endorsers: vec!["not-in-the-claim".into()],
        };
        let established = ResidencyClaim::established(
            location.clone(),
            vec![
                bound("fra-lm", 420),
                bound("ams-lm", 800),
                bound("fra-lm", 380),
            ],
            1_700_000_100,
        );
        let (_, v) = written(&established);
        assert_eq!(
            v,
            json!({
                "checked_at": 1_700_000_100u64,
                "country": "DE",
                "established": true,
                "granularity": "host",
                // One member per landmark: the last bound of a name.
                "max_distance_km": {"ams-lm": 800, "fra-lm": 380},
                "region": "DE-HE",
                "site": "fra-1",
                "sources": ["registry", "proximity"],
                "zones": ["eu", "de"],
            })
        );
        // No region, no bounds: neither member.
        let bare = ResidencyClaim::established(
            Location {
                region: None,
                ..location
            },
            Vec::new(),
            5,
        );
        let (_, v) = written(&bare);
        assert!(
            v.get("region").is_none() && v.get("max_distance_km").is_none(),
            "{v}"
        );
        let (_, v) = written(&ResidencyClaim::ProximityOnly {
            bounds: vec![bound("fra-lm", 420)],
            checked_at: 7,
        });
        assert_eq!(
            v,
            json!({
                "checked_at": 7,
                "established": true,
                "granularity": "key",
                "max_distance_km": {"fra-lm": 420},
                "sources": ["proximity"],
            })
        );
        let (_, v) = written(&ResidencyClaim::NotEstablished);
        assert_eq!(v, json!({"established": false, "sources": []}));
    }

    #[test]
    fn the_tee_claim_is_written_in_name_order() {
        let claim = TeeClaim {
            advisory_ids: Some(vec!["INTEL-SA-00837".into()]),
            debug: false,
            measurement: "ab".into(),
            measurement_scope: Some("full"),
            platform: "cd".into(),
            reported_tcb: Some(ReportedTcb {
                bootloader: 3,
                fmc: Some(1),
                microcode: 213,
                snp: 22,
                tee: 0,
            }),
            revocation: "checked",
            simulated: true,
            tcb_status: "UpToDate".into(),
            tee_tcb_svn: Some("0f".into()),
            tee: "tdx",
        };
        let (_, v) = written(&claim);
        assert_eq!(v["type"], "tdx");
        let (_, tcb) = written(claim.reported_tcb.as_ref().expect("set"));
        assert_eq!(tcb["microcode"], 213);
    }
}
