//! Proximity bounds in the decision (docs/proximity.md): statements → bounds → consistency → the fence's `within`.
//!
//! 1. [`bounds`]: each statement is decoded and its signature checked under the key of the trusted `[[landmark]]` its
//!    `kid` names; it counts only if it is fresh (`time` within `trust.proximity_max_age_secs` before `now`, and not
//!    more than [`FUTURE_SKEW`] after it), answered by the very key the evidence binds (its key thumbprint equals the
//!    request JWK's), and its landmark coordinates agree with the configured site's (within 1 km). Anything else —
//!    untrusted, forged, stale, for another key — is ignored (and logged), never an error: it only fails to help.
//!    Per landmark the tightest bound counts.
//! 2. [`check_consistent`]: the bounds are intersected with each other (two circles that certainly do not meet) and
//!    with the claimed site's coordinates (a registry or endorsement site certainly outside a circle):
//!    `location_inconsistent`. Pairwise tests are necessary, not sufficient, for a common intersection; with a
//!    claimed site the site itself is the witness that all circles meet.
//! 3. [`check_within`]: each `within = { landmark, km }` of the fence needs a bound from that landmark
//!    (`proximity_failed` when none counted) no larger than `km` (`geofence_denied`).
//!
//! "Certainly" allows for the spherical model and site extent (`crate::proximity::distance::SPHERE_TOLERANCE`).

use std::collections::BTreeMap;

use super::residency::Location;
use crate::config::{Config, Geofence, TrustedLandmark};
use crate::proximity::distance::{certainly_disjoint, certainly_outside, from_micro, haversine_km};
use crate::proximity::Statement;
use crate::{ErrorCode, Refusal};

/// How far ahead of `now` a statement's time may be (clock skew between landmark and issuer), seconds.
pub const FUTURE_SKEW: u64 = 30;

/// A bound that counted: the agent's key answered from within `max_distance_km` of `landmark`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    /// The `[[landmark]]` name.
    pub landmark: String,
    /// Its configured coordinates, degrees.
    pub centre: [f64; 2],
    pub max_distance_km: u64,
    pub min_rtt_us: u64,
    pub rounds: u32,
    /// The statement's time.
    pub measured_at: u64,
}

/// Why a statement was ignored (for logs and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// Not a statement, untrusted landmark, bad signature, malformed payload.
    Invalid(String),
    Stale {
        time: u64,
    },
    FromTheFuture {
        time: u64,
    },
    OtherKey,
    SiteMismatch {
        landmark: String,
    },
}

/// Verify `statements` for the key with `thumbprint` at `now`; returns the bounds that count (one per landmark, the
/// tightest) and why each other statement was ignored.
pub fn bounds(
    cfg: &Config,
    statements: &[Vec<u8>],
    thumbprint: &[u8; 32],
    now: u64,
) -> (Vec<Bound>, Vec<Ignored>) {
    let max_age = cfg.trust.proximity_max_age.as_secs();
    let mut best: BTreeMap<String, Bound> = BTreeMap::new();
    let mut ignored = Vec::new();
    for bytes in statements {
        match judge(cfg, bytes, thumbprint, now, max_age) {
            Ok(b) => {
                let keep = best
                    .get(&b.landmark)
                    .is_none_or(|old| b.max_distance_km < old.max_distance_km);
                if keep {
                    best.insert(b.landmark.clone(), b);
                }
            }
            Err(why) => {
                tracing::info!(reason = ?why, "proximity statement ignored");
                ignored.push(why);
            }
        }
    }
    (best.into_values().collect(), ignored)
}

fn judge(
    cfg: &Config,
    bytes: &[u8],
    thumbprint: &[u8; 32],
    now: u64,
    max_age: u64,
) -> Result<Bound, Ignored> {
    let mut landmark: Option<&TrustedLandmark> = None;
    let s = Statement::verify(bytes, |id| {
        landmark = cfg.landmarks.iter().find(|l| l.id == *id);
        landmark.map(|l| &l.public_key)
    })
    .map_err(|e| Ignored::Invalid(e.to_string()))?;
    let landmark = landmark.ok_or_else(|| Ignored::Invalid("no landmark".into()))?;
    if s.time > now.saturating_add(FUTURE_SKEW) {
        return Err(Ignored::FromTheFuture { time: s.time });
    }
    if now.saturating_sub(s.time) > max_age {
        return Err(Ignored::Stale { time: s.time });
    }
    if s.key_thumbprint != *thumbprint {
        return Err(Ignored::OtherKey);
    }
    let centre = from_micro(landmark.coordinates);
    if haversine_km(centre, from_micro(s.coordinates)) > 1.0 {
        return Err(Ignored::SiteMismatch {
            landmark: landmark.name.clone(),
        });
    }
    Ok(Bound {
        landmark: landmark.name.clone(),
        centre,
        max_distance_km: s.d_max_km,
        min_rtt_us: s.min_rtt_us,
        rounds: s.rounds,
        measured_at: s.time,
    })
}

/// The bounds agree with each other and with the claimed location (module docs, step 2).
pub fn check_consistent(
    cfg: &Config,
    bounds: &[Bound],
    location: Option<&Location>,
) -> Result<(), Refusal> {
    for (i, a) in bounds.iter().enumerate() {
        for b in &bounds[i + 1..] {
            if certainly_disjoint((a.centre, a.max_distance_km), (b.centre, b.max_distance_km)) {
                return Err(Refusal::new(
                    ErrorCode::LocationInconsistent,
                    format!(
                        "proximity bounds cannot both hold: within {} km of {} and within {} km of {}, {:.0} km apart",
                        a.max_distance_km,
                        a.landmark,
                        b.max_distance_km,
                        b.landmark,
                        haversine_km(a.centre, b.centre)
                    ),
                ));
            }
        }
    }
    let site = location.and_then(|l| cfg.site(&l.site).map(|s| (l, s.coordinates)));
    if let Some((loc, Some(coords))) = site {
        for b in bounds {
            if certainly_outside(b.centre, b.max_distance_km, coords) {
                return Err(Refusal::new(
                    ErrorCode::LocationInconsistent,
                    format!(
                        "the platform's site {} ({}) is {:.0} km from landmark {}, but the key answered from within {} km of it",
                        loc.site,
                        loc.sources.join("+"),
                        haversine_km(b.centre, coords),
                        b.landmark,
                        b.max_distance_km
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The fence's `within` bounds hold (module docs, step 3).
pub fn check_within(fence: &Geofence, bounds: &[Bound]) -> Result<(), Refusal> {
    for w in &fence.within {
        let Some(b) = bounds.iter().find(|b| b.landmark == w.landmark) else {
            return Err(Refusal::new(
                ErrorCode::ProximityFailed,
                format!(
                    "the fence needs a fresh proximity statement from landmark {} for this key, and none counted",
                    w.landmark
                ),
            ));
        };
        if b.max_distance_km > w.km {
            return Err(Refusal::new(
                ErrorCode::GeofenceDenied,
                format!(
                    "the key answered landmark {} from up to {} km (min round trip {} µs), the fence allows {} km",
                    w.landmark, b.max_distance_km, b.min_rtt_us, w.km
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::proximity::{d_max_km, Statement};
    use locus_wimse::Es256SigningKey;
    use std::path::Path;

    const NOW: u64 = 1_800_000_000;

    struct World {
        cfg: Config,
        fra: Es256SigningKey,
        par: Es256SigningKey,
        agent: [u8; 32],
    }

    fn world() -> World {
        let fra = Es256SigningKey::generate().expect("key");
        let par = Es256SigningKey::generate().expect("key");
        let jwk = |k: &Es256SigningKey| k.public_jwk().to_value().to_string().replace('"', "\\\"");
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
coordinates = [50.1109, 8.6821]
[[site]]
name = "par-1"
country = "FR"
coordinates = [48.8566, 2.3522]
[[landmark]]
name = "fra-lm"
url = "https://fra.example"
site = "fra-1"
public_key = "{}"
[[landmark]]
name = "par-lm"
url = "https://par.example"
site = "par-1"
public_key = "{}"
[[workload]]
id = "spiffe://locus.example/near-fra"
tee = ["tdx"]
geofence = {{ within = [{{ landmark = "fra-lm", km = 500 }}] }}
measurement_scope = "firmware"
[workload.tdx]
mr_td = ["{}"]
"#,
            jwk(&fra),
            jwk(&par),
            "00".repeat(48)
        );
        World {
            cfg: config::parse(&text, Path::new("/")).expect("config"),
            fra,
            par,
            agent: [7; 32],
        }
    }

    fn statement(
        lm: &Es256SigningKey,
        coords: [i64; 2],
        rtt_us: u64,
        key: [u8; 32],
        time: u64,
    ) -> Vec<u8> {
        Statement {
            key_thumbprint: key,
            landmark_id: lm.thumbprint_sha256(),
            site: "x".into(),
            coordinates: coords,
            min_rtt_us: rtt_us,
            d_max_km: d_max_km(rtt_us),
            rounds: 8,
            time,
        }
        .sign(lm)
        .expect("sign")
    }

    const FRA: [i64; 2] = [50_110_900, 8_682_100];
    const PAR: [i64; 2] = [48_856_600, 2_352_200];

    #[test]
    fn a_fresh_statement_from_a_trusted_landmark_for_this_key_counts_and_the_tightest_wins() {
        let w = world();
        let s = [
            statement(&w.fra, FRA, 2_000, w.agent, NOW - 5),
            statement(&w.fra, FRA, 400, w.agent, NOW - 10),
        ];
        let (b, ignored) = bounds(&w.cfg, &s, &w.agent, NOW);
        assert!(ignored.is_empty(), "{ignored:?}");
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].landmark.as_str(), b[0].max_distance_km),
            ("fra-lm", 60)
        );
        let fence = w.cfg.workloads[0].geofence.clone().expect("fence");
        assert!(check_within(&fence, &b).is_ok());
        assert!(check_consistent(&w.cfg, &b, None).is_ok());
    }

    #[test]
    fn untrusted_stale_future_other_key_and_moved_landmark_statements_are_ignored() {
        let w = world();
        let stranger = Es256SigningKey::generate().expect("key");
        let cases = [
            (statement(&stranger, FRA, 100, w.agent, NOW), "untrusted"),
            (statement(&w.fra, FRA, 100, w.agent, NOW - 61), "stale"),
            (statement(&w.fra, FRA, 100, w.agent, NOW + 31), "future"),
            (statement(&w.fra, FRA, 100, [8; 32], NOW), "other key"),
            (statement(&w.fra, PAR, 100, w.agent, NOW), "moved"),
        ];
        for (bytes, why) in &cases {
            let (b, ignored) = bounds(&w.cfg, std::slice::from_ref(bytes), &w.agent, NOW);
            assert!(b.is_empty(), "{why}");
            assert_eq!(ignored.len(), 1, "{why}");
        }
        let (_, ignored) = bounds(&w.cfg, &[cases[1].0.clone()], &w.agent, NOW);
        assert_eq!(ignored, vec![Ignored::Stale { time: NOW - 61 }]);
        let (_, ignored) = bounds(&w.cfg, &[cases[3].0.clone()], &w.agent, NOW);
        assert_eq!(ignored, vec![Ignored::OtherKey]);
        // Ignored statements leave the fence without its bound: proximity_failed.
        let fence = w.cfg.workloads[0].geofence.clone().expect("fence");
        let all: Vec<Vec<u8>> = cases.iter().map(|(b, _)| b.clone()).collect();
        let (b, _) = bounds(&w.cfg, &all, &w.agent, NOW);
        assert_eq!(
            check_within(&fence, &b).map_err(|r| r.code),
            Err(ErrorCode::ProximityFailed)
        );
    }

    #[test]
    fn a_bound_over_the_fence_is_geofence_denied() {
        let w = world();
        // 20 ms round trip: 2,998 km.
        let (b, _) = bounds(
            &w.cfg,
            &[statement(&w.fra, FRA, 20_000, w.agent, NOW)],
            &w.agent,
            NOW,
        );
        let fence = w.cfg.workloads[0].geofence.clone().expect("fence");
        assert_eq!(
            check_within(&fence, &b).map_err(|r| r.code),
            Err(ErrorCode::GeofenceDenied)
        );
    }

    #[test]
    fn circles_that_cannot_meet_or_a_site_outside_one_are_location_inconsistent() {
        let w = world();
        // Within 100 km of Frankfurt and within 100 km of Paris (478 km apart): impossible.
        let s = [
            statement(&w.fra, FRA, 667, w.agent, NOW),
            statement(&w.par, PAR, 667, w.agent, NOW),
        ];
        let (b, _) = bounds(&w.cfg, &s, &w.agent, NOW);
        assert_eq!(b.len(), 2);
        assert_eq!(
            check_consistent(&w.cfg, &b, None).map_err(|r| r.code),
            Err(ErrorCode::LocationInconsistent)
        );
        // Within 100 km of Paris while the registry says Frankfurt.
        let (b, _) = bounds(&w.cfg, &s[1..], &w.agent, NOW);
        let fra_site = Location {
            country: "DE".into(),
            region: None,
            site: "fra-1".into(),
            zones: vec![],
            sources: vec!["registry"],
            granularity: "host",
            endorsers: vec![],
        };
        assert_eq!(
            check_consistent(&w.cfg, &b, Some(&fra_site)).map_err(|r| r.code),
            Err(ErrorCode::LocationInconsistent)
        );
        // Within 600 km of Paris: Frankfurt (478 km) is consistent.
        let (b, _) = bounds(
            &w.cfg,
            &[statement(&w.par, PAR, 4_000, w.agent, NOW)],
            &w.agent,
            NOW,
        );
        assert!(check_consistent(&w.cfg, &b, Some(&fra_site)).is_ok());
    }
}
