//! Residency and the geo-fence (docs/architecture.md#residency-and-the-geo-fence). A platform's location comes only from things the verifier checks:
//!
//! 1. the platform registry of the config (`[[platform]]` identity → `[[site]]`), source `registry`;
//! 2. location endorsements that verified under a configured endorser key and are valid at `now`, source
//!    `endorsement`.
//!
//! The registry wins when both speak; an endorsement that agrees with the registry adds its source, one that
//! disagrees is ignored (and logged). Endorsements alone place an unregistered platform only if all valid ones agree
//! on the country; disagreeing endorsements leave the location unknown. Zones are the configured `[[zone]]`s whose
//! country list holds the location's country.
//!
//! Granularity: a location established for a provider-level identity (VLEK cspID, a `scope = "provider"` registry
//! entry) is `provider`: it says where the provider's registered hosts are, never that this one host is there.
//!
//! Residency is required by default: with no location established the answer is `location_unknown`, unless the
//! workload declares `residency = "optional"` (its WIT then says residency was not established). A fenced workload is
//! issued only when the location's country or one of its zones is allowed (`geofence_denied` otherwise).

use serde::Serialize;
use sha2::{Digest, Sha256};

use locus_hw::TeeType;

use crate::config::{Config, PlatformScope, ResidencyRequirement, Workload};
use crate::endorsement::Endorsement;
use crate::{ErrorCode, Refusal};

/// The identity a platform is registered under: SNP CHIP_ID (64 bytes) or VLEK cspID, or TDX PPID (16 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformIdentity {
    pub tee: TeeType,
    pub id: Vec<u8>,
    /// The identity names a cloud provider (VLEK cspID), not one host.
    pub provider_level: bool,
}

impl PlatformIdentity {
    /// Lowercase hex SHA-256 of the identity bytes: the `locus_tee.platform` claim.
    pub fn digest_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.id))
    }
}

/// Where a platform is, and how the verifier knows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Location {
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub site: String,
    pub zones: Vec<String>,
    pub sources: Vec<&'static str>,
    /// `host` or `provider` (module docs).
    pub granularity: &'static str,
    /// Endorser names whose endorsement contributed (not in the claim; audit only).
    #[serde(skip)]
    pub endorsers: Vec<String>,
}

/// Locate a platform at `now`.
pub fn locate(
    cfg: &Config,
    endorsements: &[Endorsement],
    platform: &PlatformIdentity,
    now: u64,
) -> Option<Location> {
    let valid: Vec<&Endorsement> = endorsements
        .iter()
        .filter(|e| e.places(&platform.id, now))
        .collect();
    let entry = cfg
        .platforms
        .iter()
        .find(|p| p.tee == platform.tee && p.id == platform.id);
    let provider =
        platform.provider_level || entry.is_some_and(|p| p.scope == PlatformScope::Provider);
    let granularity = if provider {
        PlatformScope::Provider.as_str()
    } else {
        PlatformScope::Host.as_str()
    };
    if let Some(site) = entry.and_then(|p| cfg.site(&p.site)) {
        let mut loc = Location {
            country: site.country.clone(),
            region: site.region.clone(),
            site: site.name.clone(),
            zones: cfg.zones_of(&site.country),
            sources: vec!["registry"],
            granularity,
            endorsers: Vec::new(),
        };
        for e in &valid {
            if e.country == site.country && e.site == site.name {
                loc.endorsers.push(e.endorser.clone());
            } else {
                tracing::warn!(
                    platform = %platform.digest_hex(),
                    endorser = %e.endorser,
                    endorsed_site = %e.site,
                    registered_site = %site.name,
                    "location endorsement disagrees with the platform registry; registry wins"
                );
            }
        }
        if !loc.endorsers.is_empty() {
            loc.sources.push("endorsement");
        }
        return Some(loc);
    }
    let first = valid.first()?;
    if valid.iter().any(|e| e.country != first.country) {
        tracing::warn!(platform = %platform.digest_hex(), "valid location endorsements disagree on the country");
        return None;
    }
    // Prefer the endorsement that expires last (the freshest statement) for site and region.
    let best = valid.iter().max_by_key(|e| e.not_after).unwrap_or(first);
    Some(Location {
        country: best.country.clone(),
        region: best.region.clone(),
        site: best.site.clone(),
        zones: cfg.zones_of(&best.country),
        sources: vec!["endorsement"],
        granularity,
        endorsers: valid.iter().map(|e| e.endorser.clone()).collect(),
    })
}

/// Apply the workload's residency requirement and geo-fence to a (possibly unknown) location.
pub fn check(workload: &Workload, location: Option<&Location>) -> Result<(), Refusal> {
    let Some(loc) = location else {
        if workload.residency == ResidencyRequirement::Optional && workload.geofence.is_none() {
            return Ok(());
        }
        // A fence of `within` bounds only is about distance, not places: the bounds decide
        // (`crate::decision::proximity::check_within`).
        if workload.geofence.as_ref().is_some_and(|f| !f.has_places()) {
            return Ok(());
        }
        return Err(Refusal::new(
            ErrorCode::LocationUnknown,
            format!(
                "the platform is neither registered nor placed by a valid endorsement, and {} requires residency",
                workload.id.as_str()
            ),
        ));
    };
    let Some(fence) = workload.geofence.as_ref().filter(|f| f.has_places()) else {
        return Ok(());
    };
    let allowed =
        fence.countries.contains(&loc.country) || fence.zones.iter().any(|z| loc.zones.contains(z));
    if allowed {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::GeofenceDenied,
            format!(
                "platform at site {} ({}{}) is outside the fence of {} (zones {:?}, countries {:?})",
                loc.site,
                loc.country,
                loc.region.as_deref().map(|r| format!(", {r}")).unwrap_or_default(),
                workload.id.as_str(),
                fence.zones,
                fence.countries
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::endorsement::PlatformRef;
    use std::path::Path;

    const M: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f";

    fn cfg() -> Config {
        let text = format!(
            r#"
[server]
issuer = "https://v.example"
state_dir = "s"
[credentials]
trust_domain = "locus.example"
[[site]]
name = "fra-1"
country = "DE"
region = "DE-HE"
[[site]]
name = "iad-1"
country = "US"
region = "US-VA"
[[zone]]
name = "eu"
countries = ["DE", "FR"]
[[platform]]
tee = "tdx"
id = "01010101010101010101010101010101"
site = "fra-1"
[[platform]]
tee = "tdx"
id = "02020202020202020202020202020202"
site = "iad-1"
[[workload]]
id = "spiffe://locus.example/eu"
tee = ["tdx"]
geofence = {{ zones = ["eu"] }}
measurement_scope = "firmware"
[workload.tdx]
mr_td = ["{M}"]
[[workload]]
id = "spiffe://locus.example/us"
tee = ["tdx"]
geofence = {{ countries = ["US"] }}
measurement_scope = "firmware"
[workload.tdx]
mr_td = ["{M}"]
[[workload]]
id = "spiffe://locus.example/anywhere"
tee = ["tdx"]
residency = "optional"
measurement_scope = "firmware"
[workload.tdx]
mr_td = ["{M}"]
"#
        );
        config::parse(&text, Path::new("/")).expect("config")
    }

    fn tdx(b: u8) -> PlatformIdentity {
        PlatformIdentity {
            tee: TeeType::Tdx,
            id: vec![b; 16],
            provider_level: false,
        }
    }

    fn endorsement(b: u8, country: &str, site: &str) -> Endorsement {
        Endorsement {
            endorser: "op".into(),
            platform: PlatformRef::Raw(vec![b; 16]),
            site: site.into(),
            country: country.into(),
            region: None,
            not_before: 100,
            not_after: 200,
        }
    }

    #[test]
    fn registered_platforms_are_located_with_their_zones() {
        let c = cfg();
        let loc = locate(&c, &[], &tdx(1), 150).expect("located");
        assert_eq!((loc.site.as_str(), loc.country.as_str()), ("fra-1", "DE"));
        assert_eq!(loc.zones, vec!["eu".to_string()]);
        assert_eq!(loc.sources, vec!["registry"]);
        assert!(locate(&c, &[], &tdx(3), 150).is_none());
        // Same id, other TEE: not registered.
        assert!(locate(
            &c,
            &[],
            &PlatformIdentity {
                tee: TeeType::SevSnp,
                id: vec![1; 16],
                provider_level: false,
            },
            150
        )
        .is_none());
    }

    #[test]
    fn the_fence_admits_inside_denies_outside_and_refuses_unknown() {
        let c = cfg();
        let eu = c.workload("spiffe://locus.example/eu").expect("eu");
        let us = c.workload("spiffe://locus.example/us").expect("us");
        let any = c.workload("spiffe://locus.example/anywhere").expect("any");
        let fra = locate(&c, &[], &tdx(1), 0);
        let iad = locate(&c, &[], &tdx(2), 0);
        assert!(check(eu, fra.as_ref()).is_ok());
        assert_eq!(
            check(eu, iad.as_ref()).map_err(|r| r.code),
            Err(ErrorCode::GeofenceDenied)
        );
        assert!(check(us, iad.as_ref()).is_ok());
        assert_eq!(
            check(us, fra.as_ref()).map_err(|r| r.code),
            Err(ErrorCode::GeofenceDenied)
        );
        assert_eq!(
            check(eu, None).map_err(|r| r.code),
            Err(ErrorCode::LocationUnknown)
        );
        assert!(check(any, None).is_ok());
    }

    #[test]
    fn a_valid_endorsement_places_an_unregistered_platform_only_while_valid() {
        let c = cfg();
        let e = [endorsement(3, "FR", "par-1")];
        let loc = locate(&c, &e, &tdx(3), 150).expect("placed");
        assert_eq!(loc.country, "FR");
        assert_eq!(loc.zones, vec!["eu".to_string()]);
        assert_eq!(loc.sources, vec!["endorsement"]);
        assert!(locate(&c, &e, &tdx(3), 200).is_none(), "expired");
        assert!(locate(&c, &e, &tdx(4), 150).is_none(), "other platform");
    }

    #[test]
    fn disagreeing_endorsements_leave_the_location_unknown() {
        let c = cfg();
        let e = [endorsement(3, "FR", "par-1"), endorsement(3, "US", "iad-9")];
        assert!(locate(&c, &e, &tdx(3), 150).is_none());
    }

    #[test]
    fn the_registry_wins_over_a_disagreeing_endorsement() {
        let c = cfg();
        let e = [endorsement(2, "DE", "fra-1")];
        let loc = locate(&c, &e, &tdx(2), 150).expect("located");
        assert_eq!(loc.country, "US");
        assert_eq!(loc.sources, vec!["registry"]);
        let agree = [endorsement(1, "DE", "fra-1")];
        let loc = locate(&c, &agree, &tdx(1), 150).expect("located");
        assert_eq!(loc.sources, vec!["registry", "endorsement"]);
    }
}
