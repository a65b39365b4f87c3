//! Validation of the proximity keys of `verifier.toml` (docs/proximity.md, docs/configuration.md): the trusted
//! `[[landmark]]`s, this verifier's own `[landmark_role]`, and `trust.proximity_max_age_secs`. Called by
//! [`super::validate`](mod@super::validate), which collects every problem.

use std::time::Duration;

use locus_wimse::{Jwk, PublicKey};

use super::model::*;
use super::raw::{RawLandmark, RawLandmarkRole};
use crate::endorsement::parse_public_key;

/// Most challenges a landmark session may ask for: enough for any measurement, few enough to keep sessions short.
pub const MAX_LANDMARK_ROUNDS: u32 = 64;
/// Longest proximity statement age a config may accept (freshness is what makes a bound current).
pub const MAX_PROXIMITY_MAX_AGE: Duration = Duration::from_secs(3600);

/// The coordinates of site `name`, in millionths of a degree, or a problem.
fn site_coordinates(
    p: &mut Vec<String>,
    what: &str,
    sites: &[Site],
    name: &str,
) -> Option<[CoordinateMicro; 2]> {
    match sites.iter().find(|s| s.name == name) {
        None => {
            p.push(format!(
                "{what}: site {name:?} is not a configured [[site]]"
            ));
            None
        }
        Some(Site {
            coordinates: None, ..
        }) => {
            p.push(format!(
                "{what}: site {name:?} has no coordinates (a landmark's position is what its bounds are about)"
            ));
            None
        }
        Some(Site {
            coordinates: Some([lat, lon]),
            ..
        }) => Some([to_micro(*lat), to_micro(*lon)]),
    }
}

/// `[[landmark]]`: unique names, an http(s) URL, a site with coordinates, a P-256 key.
pub fn trusted_landmarks(
    p: &mut Vec<String>,
    raw: &[RawLandmark],
    sites: &[Site],
) -> Vec<TrustedLandmark> {
    let mut out: Vec<TrustedLandmark> = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, l) in raw.iter().enumerate() {
        let what = format!("landmark[{i}] {:?}", l.name);
        if l.name.is_empty() {
            p.push(format!("{what}: name must not be empty"));
        }
        if !names.insert(l.name.as_str()) {
            p.push(format!("{what}: duplicate landmark name"));
        }
        let url = l.url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(['?', '#'])
        {
            p.push(format!(
                "{what}: url must be an http(s) base URL without query or fragment, got {:?}",
                l.url
            ));
        }
        let coordinates = site_coordinates(p, &what, sites, &l.site);
        let key = match parse_public_key(&l.public_key) {
            Ok(point) if point.len() == 65 => {
                let mut x = [0u8; 32];
                let mut y = [0u8; 32];
                x.copy_from_slice(&point[1..33]);
                y.copy_from_slice(&point[33..65]);
                Some(PublicKey::P256 { x, y })
            }
            Ok(_) => {
                p.push(format!("{what}: public_key: not a P-256 point"));
                None
            }
            Err(msg) => {
                p.push(format!("{what}: public_key: {msg}"));
                None
            }
        };
        if let (Some(coordinates), Some(public_key)) = (coordinates, key) {
            let id = Jwk::new(public_key.clone()).thumbprint_sha256();
            if let Some(o) = out.iter().find(|o| o.id == id) {
                p.push(format!(
                    "{what}: same public_key as landmark {:?} (one key, one landmark)",
                    o.name
                ));
            }
            out.push(TrustedLandmark {
                name: l.name.clone(),
                url: url.to_string(),
                site: l.site.clone(),
                coordinates,
                public_key,
                id,
            });
        }
    }
    out
}

/// `[landmark_role]`: `None` when absent or `enabled = false`.
pub fn landmark_role(
    p: &mut Vec<String>,
    raw: Option<&RawLandmarkRole>,
    sites: &[Site],
) -> Option<LandmarkRole> {
    let r = raw.filter(|r| r.enabled)?;
    let what = "landmark_role";
    let coordinates = site_coordinates(p, what, sites, &r.site);
    let rounds = r.rounds.unwrap_or(DEFAULT_LANDMARK_ROUNDS);
    if rounds == 0 || rounds > MAX_LANDMARK_ROUNDS {
        p.push(format!(
            "{what}.rounds: must be between 1 and {MAX_LANDMARK_ROUNDS}, got {rounds}"
        ));
    }
    let timeout_ms = r
        .round_timeout_ms
        .unwrap_or(DEFAULT_LANDMARK_ROUND_TIMEOUT.as_millis() as u64);
    if !(1..=60_000).contains(&timeout_ms) {
        p.push(format!(
            "{what}.round_timeout_ms: must be between 1 and 60000, got {timeout_ms}"
        ));
    }
    let max_sessions = r.max_sessions.unwrap_or(DEFAULT_LANDMARK_MAX_SESSIONS);
    if !(1..=65_536).contains(&max_sessions) {
        p.push(format!(
            "{what}.max_sessions: must be between 1 and 65536, got {max_sessions}"
        ));
    }
    Some(LandmarkRole {
        site: r.site.clone(),
        coordinates: coordinates?,
        rounds,
        round_timeout: Duration::from_millis(timeout_ms),
        max_sessions,
    })
}

/// `trust.proximity_max_age_secs`.
pub fn proximity_max_age(p: &mut Vec<String>, raw: Option<u64>) -> Duration {
    let secs = raw.unwrap_or(DEFAULT_PROXIMITY_MAX_AGE.as_secs());
    if secs == 0 || Duration::from_secs(secs) > MAX_PROXIMITY_MAX_AGE {
        p.push(format!(
            "trust.proximity_max_age_secs: must be between 1 and {}, got {secs}",
            MAX_PROXIMITY_MAX_AGE.as_secs()
        ));
    }
    Duration::from_secs(secs)
}
