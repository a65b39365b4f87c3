//! The trust bundles, built from the keys published at `now` (no I/O, no clock):
//!
//! - the SPIFFE bundle (SPIFFE Trust Domain and Bundle standard: a JWKS with `spiffe_sequence` and
//!   `spiffe_refresh_hint`): CA certificates with `use` `x509-svid` and `x5c` (one standard-base64 DER
//!   certificate), JWT-SVID keys with `use` `jwt-svid`, WIT keys with `use` `wit-svid`;
//! - the WIMSE trust bundle (draft-schwenkschuster-wimse-trust-domain-discovery-00): WIT keys with `use` `wimse-jwt`,
//!   CA certificates with `use` `wimse-x509` and `x5c`, `refresh_hint`, `sequence_number`. Kept apart from the
//!   SPIFFE bundle: clients ignore `use` values they do not know, so a merged document would hide keys from each;
//! - the discovery document `{"trust_domain", "trust_bundle_endpoint"}` pointing at the WIMSE bundle.
//!
//! Every key carries a `kid` (its RFC 7638 thumbprint), unique across the bundle. The sequence number is derived
//! from the key files' not-befores alone, so replicas sharing the keys directory serve the same number, and it grows
//! whenever the published set changes: a new key has a not-before ahead of every existing one and of now, and a key
//! leaving publication contributes the moment it left (its successor's not-before plus the retention), which is
//! later than its own not-before.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::service::keys::{KeySet, USE_X509_SVID};
use crate::service::schedule;

use super::ca::SpiffeCa;

/// `use` of a WIT key in the WIMSE bundle.
pub const USE_WIMSE_JWT: &str = "wimse-jwt";
/// `use` of a CA certificate in the WIMSE bundle.
pub const USE_WIMSE_X509: &str = "wimse-x509";
/// The path of the WIMSE bundle (the discovery document's `trust_bundle_endpoint`).
pub const WIMSE_BUNDLE_PATH: &str = "/v1/wimse/bundle";

/// The sequence number of a bundle made of `sets` at `now` (at least 1).
pub fn sequence(sets: &[&KeySet], now: u64, retain: Duration) -> u64 {
    let mut seq = 1;
    for set in sets {
        let nbs = set.not_befores();
        for (i, nb) in nbs.iter().enumerate() {
            let v = if schedule::is_live(nbs, i, now, retain) {
                *nb
            } else {
                // Not live means a successor exists.
                nbs.get(i + 1)
                    .map_or(*nb, |next| next.saturating_add(retain.as_secs()))
            };
            seq = seq.max(v);
        }
    }
    seq
}

fn with_use(key: &locus_wimse::Jwk, key_use: &str) -> Value {
    key.clone().with_use(key_use).to_value()
}

fn ca_keys(ca: &SpiffeCa, now: u64, retain: Duration, key_use: &str) -> Vec<Value> {
    ca.published(now, retain)
        .into_iter()
        .map(|(k, cert)| {
            let mut v = k.jwk.clone().with_use(key_use).to_value();
            v["x5c"] = json!([base64::engine::general_purpose::STANDARD.encode(&cert.der)]);
            // `alg` describes JWS use; an X.509 authority is not one.
            if let Some(o) = v.as_object_mut() {
                o.remove("alg");
            }
            v
        })
        .collect()
}

/// The SPIFFE bundle.
pub fn spiffe_bundle(
    wit: &KeySet,
    jwt_svid: &KeySet,
    ca: &SpiffeCa,
    now: u64,
    retain: Duration,
    refresh_hint: Duration,
) -> Value {
    let mut keys = ca_keys(ca, now, retain, USE_X509_SVID);
    keys.extend(
        jwt_svid
            .published(now, retain)
            .into_iter()
            .map(|k| k.jwk.to_value()),
    );
    keys.extend(
        wit.published(now, retain)
            .into_iter()
            .map(|k| k.jwk.to_value()),
    );
    json!({
        "keys": keys,
        "spiffe_sequence": sequence(&[wit, jwt_svid, &ca.keys], now, retain),
        "spiffe_refresh_hint": refresh_hint.as_secs(),
    })
}

/// The WIMSE trust bundle.
pub fn wimse_bundle(
    wit: &KeySet,
    ca: &SpiffeCa,
    now: u64,
    retain: Duration,
    refresh_hint: Duration,
) -> Value {
    let mut keys: Vec<Value> = wit
        .published(now, retain)
        .into_iter()
        .map(|k| with_use(&k.jwk, USE_WIMSE_JWT))
        .collect();
    keys.extend(ca_keys(ca, now, retain, USE_WIMSE_X509));
    json!({
        "keys": keys,
        "refresh_hint": refresh_hint.as_secs(),
        "sequence_number": sequence(&[wit, &ca.keys], now, retain),
    })
}

/// The trust-domain discovery document for `trust_domain`, served by the verifier whose public URL is `issuer`.
pub fn discovery(trust_domain: &str, issuer: &str) -> Value {
    json!({
        "trust_domain": trust_domain,
        "trust_bundle_endpoint": format!("{}{WIMSE_BUNDLE_PATH}", issuer.trim_end_matches('/')),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::keys::KeyKind;

    const RETAIN: Duration = Duration::from_secs(1_000);
    const HINT: Duration = Duration::from_secs(60);

    fn sets(dir: &std::path::Path) -> (KeySet, KeySet, SpiffeCa) {
        (
            KeySet::ensure(dir).expect("wit"),
            KeySet::ensure_kind(dir, KeyKind::JwtSvid).expect("jwt"),
            SpiffeCa::ensure(dir, "locus.example", 10_000).expect("ca"),
        )
    }

    #[test]
    fn the_spiffe_bundle_has_each_key_once_with_its_use_and_the_ca_with_x5c() {
        let dir = tempfile::tempdir().expect("tmp");
        let (wit, jwt, ca) = sets(dir.path());
        let b = spiffe_bundle(&wit, &jwt, &ca, 10_000, RETAIN, HINT);
        let keys = b["keys"].as_array().expect("keys");
        let uses: Vec<&str> = keys.iter().filter_map(|k| k["use"].as_str()).collect();
        assert_eq!(uses, vec!["x509-svid", "jwt-svid", "wit-svid"]);
        let x5c = keys[0]["x5c"].as_array().expect("x5c");
        assert_eq!(x5c.len(), 1);
        let der = base64::engine::general_purpose::STANDARD
            .decode(x5c[0].as_str().expect("str"))
            .expect("std base64");
        assert_eq!(der, ca.certs[0].der);
        let mut kids: Vec<&str> = keys.iter().filter_map(|k| k["kid"].as_str()).collect();
        kids.sort_unstable();
        kids.dedup();
        assert_eq!(kids.len(), 3, "kids unique across the bundle");
        assert_eq!(b["spiffe_refresh_hint"], 60);
        assert_eq!(b["spiffe_sequence"], 1);
        // The WIMSE bundle: its own use values, no JWT-SVID key.
        let w = wimse_bundle(&wit, &ca, 10_000, RETAIN, HINT);
        let uses: Vec<&str> = w["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter_map(|k| k["use"].as_str())
            .collect();
        assert_eq!(uses, vec!["wimse-jwt", "wimse-x509"]);
        assert_eq!(w["refresh_hint"], 60);
        assert_eq!(w["sequence_number"], 1);
    }

    #[test]
    fn the_sequence_grows_when_a_key_is_added_and_when_one_leaves() {
        let dir = tempfile::tempdir().expect("tmp");
        let (wit, jwt, ca) = sets(dir.path());
        let s0 = sequence(&[&wit, &jwt, &ca.keys], 10_000, RETAIN);
        KeySet::rotate_kind(
            dir.path(),
            KeyKind::JwtSvid,
            10_000,
            Duration::from_secs(300),
            RETAIN,
        )
        .expect("rotate");
        let jwt = KeySet::load_kind(dir.path(), KeyKind::JwtSvid).expect("load");
        let s1 = sequence(&[&wit, &jwt, &ca.keys], 10_000, RETAIN);
        assert!(s1 > s0, "{s1} > {s0}");
        // Still published at 11_299; gone at 11_300: the sequence moves with it, and stays put otherwise.
        let before = sequence(&[&wit, &jwt, &ca.keys], 11_299, RETAIN);
        assert_eq!(before, s1);
        let after = sequence(&[&wit, &jwt, &ca.keys], 11_300, RETAIN);
        assert!(after > before, "{after} > {before}");
        assert_eq!(jwt.published(11_300, RETAIN).len(), 1);
        assert_eq!(sequence(&[&wit, &jwt, &ca.keys], 20_000, RETAIN), after);
    }

    #[test]
    fn discovery_points_at_the_wimse_bundle_of_the_issuer() {
        assert_eq!(
            discovery("locus.example", "https://v.example/"),
            json!({"trust_domain": "locus.example", "trust_bundle_endpoint": "https://v.example/v1/wimse/bundle"})
        );
    }
}
