//! The published WIMSE examples (WIT, WPT, SPIFFE WIT-SVID) through the public API.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use locus_wimse::jws::CompactJws;
use locus_wimse::wpt::WptRequest;
use locus_wimse::{
    create_wpt, token_hash, Jwk, Jwks, TrustDomain, TrustStore, WitPolicy, WitVerifier, WorkloadId,
};

#[test]
fn spec_wit_verifies_with_the_identity_server_key() {
    let trust = TrustStore::new().with_keys(
        TrustDomain::parse("example.com").unwrap(),
        Jwks::new(vec![Jwk::from_json(SPEC_IS_JWK).unwrap()]),
    );
    let wit = WitVerifier::new(trust, spec_wit_policy())
        .verify(SPEC_WIT, SPEC_NOW)
        .unwrap();
    let c = wit.claims();
    assert_eq!(c.sub.as_str(), "wimse://example.com/specific-workload");
    assert_eq!(c.exp, 1_745_512_510);
    assert_eq!(c.iat, Some(1_745_508_910));
    assert_eq!(c.jti.as_deref(), Some("x-_1CTL2cca3CSE4cwb_l"));
    assert_eq!(c.pop_alg(), "EdDSA");
    assert_eq!(wit.kid(), Some("June 5"));
    assert_eq!(c.cnf, spec_workload_key_jwk());
}

fn spec_workload_key_jwk() -> Jwk {
    Jwk::from_json(&format!(
        r#"{{"alg":"EdDSA","crv":"Ed25519","kty":"OKP","x":"{SPEC_WORKLOAD_X}"}}"#
    ))
    .unwrap()
}

#[test]
fn spec_wit_is_refused_by_the_strict_default_for_its_eddsa_cnf() {
    // The draft's WIT names an Ed25519 proof-of-possession key; the defaults accept ES256 only.
    let trust = TrustStore::new().with_keys(
        TrustDomain::parse("example.com").unwrap(),
        Jwks::new(vec![Jwk::from_json(SPEC_IS_JWK).unwrap()]),
    );
    let e = WitVerifier::new(trust, WitPolicy::default())
        .verify(SPEC_WIT, SPEC_NOW)
        .unwrap_err();
    assert_eq!(e.code(), "cnf_invalid");
}

#[test]
fn spec_request_authenticates_through_the_relying_party() {
    let rp = spec_rp();
    let ok = rp
        .verify_request(spec_request(SPEC_WIT, SPEC_WPT), "/path", SPEC_NOW)
        .unwrap();
    assert_eq!(ok.id.as_str(), "wimse://example.com/specific-workload");
    assert_eq!(
        ok.wpt_claims.aud,
        vec!["https://workload.example.com/path".to_owned()]
    );
    assert_eq!(
        ok.wpt_claims.ath.as_deref(),
        Some(token_hash(SPEC_ACCESS_TOKEN).as_str())
    );
    assert_eq!(ok.wpt_claims.wth, token_hash(SPEC_WIT));
    assert_eq!(ok.wit_claims.pop_alg(), "EdDSA");
}

#[test]
fn spec_request_in_absolute_form_authenticates_once_then_is_replayed() {
    let rp = spec_rp();
    rp.verify_request(
        spec_request(SPEC_WIT, SPEC_WPT),
        "https://workload.example.com/path?x=1",
        SPEC_NOW,
    )
    .unwrap();
    let again = rp
        .verify_request(spec_request(SPEC_WIT, SPEC_WPT), "/path", SPEC_NOW + 1)
        .unwrap_err();
    assert_eq!(again.code(), "replayed");
}

#[test]
fn spec_request_outside_validity_is_refused() {
    // WPT exp 1745510016: one minute of skew later it is expired.
    let e = spec_rp()
        .verify_request(
            spec_request(SPEC_WIT, SPEC_WPT),
            "/path",
            1_745_510_016 + 60,
        )
        .unwrap_err();
    assert_eq!(e.code(), "token_expired");
    // Long before: the WPT exp is more than 300 s ahead.
    let e = spec_rp()
        .verify_request(spec_request(SPEC_WIT, SPEC_WPT), "/path", 1_745_509_000)
        .unwrap_err();
    assert_eq!(e.code(), "exp_too_far");
}

#[test]
fn spec_wpt_is_reproduced_byte_for_byte_with_the_workload_key() {
    // Ed25519 is deterministic: the same claims signed with the published key give the published token.
    let mut req = WptRequest::new("https://workload.example.com/path", SPEC_WIT, 1_745_510_016)
        .access_token(SPEC_ACCESS_TOKEN);
    req.jti = Some("__bwc4ESC3acc2LTC1-_x".into());
    assert_eq!(create_wpt(&spec_workload_key(), &req).unwrap(), SPEC_WPT);
}

#[test]
fn spec_identity_server_private_key_matches_its_public_key_and_signs_wits() {
    // Loading d with the published x,y succeeds only if they belong together.
    let key = spec_is_key();
    let jws = CompactJws::parse(SPEC_WIT).unwrap();
    let resigned = locus_wimse::jws::sign_compact(
        &key,
        &serde_json::json!({"alg":"ES256","kid":"June 5","typ":"wit+jwt"}),
        &serde_json::from_slice::<serde_json::Value>(&jws.payload).unwrap(),
    )
    .unwrap();
    let trust = TrustStore::new().with_keys(
        TrustDomain::parse("example.com").unwrap(),
        Jwks::new(vec![Jwk::from_json(SPEC_IS_JWK).unwrap()]),
    );
    let v = WitVerifier::new(trust, spec_wit_policy())
        .verify(&resigned, SPEC_NOW)
        .unwrap();
    assert_eq!(v.id().as_str(), "wimse://example.com/specific-workload");
}

#[test]
fn spiffe_wit_svid_example_parses_as_a_wit_svid() {
    // WIT-SVID example: the issuer key is not published; parse-only.
    let t = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImxRU2kzaFpGbmRhMkQtWEprajF6bDdmb0pvdWl3STRuckF5aHk0alppSmciLCJ0eXAiOiJ3aXQrand0In0.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVTMjU2IiwiY3J2IjoiUC0yNTYiLCJrdHkiOiJFQyIsIngiOiJyelA3bUxDS0FIV21zTTZYMEV3VklTQ19oSTN1amN1OTVmZlVreWVER0dvIiwieSI6InVPcmZEbGp0WDltM2pZLWhzeWhMSllheHRHa3pEdjVlNWttQ2U1OFo5N2cifX0sImV4cCI6MTc2NTQ1NjUwMywiaWF0IjoxNzY1NDUyOTAzLCJqdGkiOiIxeWoxOVY0TWNPQXpNY0ZpN3F2c2dfQWdDeGxyWTVFX3g1MDl3bEtLUXRjIiwic3ViIjoic3BpZmZlOi8vZXhhbXBsZS5jb20vbXktd29ya2xvYWQifQ.sfhEvZNdY_kWrICF08lX0u__rn39YnTavnW-VPBS20zgowDh6-X43v5eOUKZbjZf06yLBQM-Mry5w1g1QFsCkg";
    let jws = CompactJws::parse(t).unwrap();
    assert_eq!(jws.header.alg, "ES256");
    assert_eq!(jws.header.typ.as_deref(), Some("wit+jwt"));
    assert!(jws.header.kid.is_some());
    let claims = jws.claims().unwrap();
    let sub = WorkloadId::parse(claims["sub"].as_str().unwrap()).unwrap();
    assert!(sub.is_spiffe());
    let cnf = Jwk::from_value(&claims["cnf"]["jwk"]).unwrap();
    assert_eq!(cnf.alg.as_deref(), Some("ES256"));
    assert!(!claims.contains_key("aud"));
    // With an unrelated key under its kid, the signature is refused, not accepted.
    let key = locus_wimse::Es256SigningKey::generate().unwrap();
    let jwk = Jwk::new(key.public_key()).with_kid(jws.header.kid.clone().unwrap());
    let trust = TrustStore::new().with_keys(sub.trust_domain(), Jwks::new(vec![jwk]));
    let e = WitVerifier::new(trust, WitPolicy::default())
        .verify(t, 1_765_453_000)
        .unwrap_err();
    assert_eq!(e.code(), "signature_invalid");
}

#[test]
fn our_wit_is_a_wit_svid_for_a_spiffe_subject() {
    let w = world();
    let sub = WorkloadId::parse("spiffe://example.com/ns/prod/sa/api").unwrap();
    let (token, _) = w
        .issuer
        .issue(
            &sub,
            &w.workload_es.public_jwk(),
            NOW,
            NOW + 3600,
            &serde_json::Map::new(),
        )
        .unwrap();
    let jws = CompactJws::parse(&token).unwrap();
    assert_eq!(jws.header.alg, "ES256");
    assert_eq!(jws.header.typ.as_deref(), Some("wit+jwt"));
    assert_eq!(jws.header.kid.as_deref(), Some("issuer-1"));
    let claims = jws.claims().unwrap();
    assert_eq!(claims["cnf"]["jwk"]["alg"], "ES256");
    assert!(!claims.contains_key("aud"));
    assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
    // The published key carries use = wit-svid and a kid.
    let pubkey = w.issuer.public_jwk().to_value();
    assert_eq!(pubkey["use"], "wit-svid");
    assert_eq!(pubkey["kid"], "issuer-1");
    // And a strict WIT-SVID verifier (kid required, no EdDSA) accepts it.
    let policy = WitPolicy::wit_svid();
    WitVerifier::new(trust(), policy)
        .verify(&token, NOW + 1)
        .unwrap();
}
