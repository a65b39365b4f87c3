//! The relying party's defaults are strict (ES256 only, `kid` required, no `aud` in a WIT, bounded WIT lifetime,
//! WPT `exp` bounded with skew), and its replay cache cannot be used by one sender to lock out another. Every refusal
//! expects its exact code.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use locus_wimse::wpt::WptRequest;
use locus_wimse::{
    create_wpt, RelyingParty, ReplayLimits, RpConfig, WitPolicy, WorkloadId, WptPolicy,
};
use serde_json::{json, Map};

/// A WIT for `sub` bound to the ES256 workload key, valid from `iat` to `exp`.
fn es_wit(sub: &WorkloadId, iat: u64, exp: u64) -> String {
    let w = world();
    w.issuer
        .issue(sub, &w.workload_es.public_jwk(), iat, exp, &Map::new())
        .unwrap()
        .0
}

fn es_wpt(wit: &str, exp: u64) -> String {
    create_wpt(&world().workload_es, &WptRequest::new(AUD, wit, exp)).unwrap()
}

fn es_wpt_with_jti(wit: &str, jti: &str) -> String {
    let mut req = WptRequest::new(AUD, wit, NOW + 60);
    req.jti = Some(jti.to_owned());
    create_wpt(&world().workload_es, &req).unwrap()
}

fn code(rp: &RelyingParty, wit: &str, wpt: &str) -> &'static str {
    rp.verify_request(headers(wit, wpt), TARGET, NOW)
        .unwrap_err()
        .code()
}

#[test]
fn defaults_accept_what_locus_issues() {
    let wit = es_wit(&sub(), NOW - 60, NOW + 3600);
    let ok = strict_rp()
        .verify_request(headers(&wit, &es_wpt(&wit, NOW + 60)), TARGET, NOW)
        .unwrap();
    assert_eq!(ok.id, sub());
    let p = WitPolicy::default();
    assert_eq!(p.allowed_algs(), &[locus_wimse::Alg::Es256]);
    assert!(p.requires_kid() && p.rejects_aud());
    assert_eq!(p.max_lifetime(), 86_400);
    assert_eq!(
        WptPolicy::default().allowed_algs(),
        &[locus_wimse::Alg::Es256]
    );
}

#[test]
fn default_refuses_an_eddsa_proof_key_as_cnf_invalid() {
    let wit = good_wit(); // cnf: Ed25519
    assert_eq!(code(&strict_rp(), &wit, &good_wpt(&wit)), "cnf_invalid");
}

#[test]
fn default_refuses_an_eddsa_wit_signature_as_alg_not_allowed() {
    let claims = wit_claims(sub().as_str(), &world().workload_es.public_jwk());
    let t = unsigned_with_alg("EdDSA", "wit+jwt", &claims);
    let h = locus_wimse::b64::encode(br#"{"alg":"EdDSA","kid":"issuer-1","typ":"wit+jwt"}"#);
    let t = format!("{h}.{}", t.split_once('.').unwrap().1);
    assert_eq!(
        code(&strict_rp(), &t, &es_wpt(&t, NOW + 60)),
        "alg_not_allowed"
    );
}

#[test]
fn default_refuses_an_eddsa_wpt_as_alg_not_allowed() {
    let wit = es_wit(&sub(), NOW - 60, NOW + 3600);
    let wpt = create_wpt(&world().workload_ed, &WptRequest::new(AUD, &wit, NOW + 60)).unwrap();
    assert_eq!(code(&strict_rp(), &wit, &wpt), "alg_not_allowed");
}

#[test]
fn default_refuses_a_wit_without_kid_even_with_one_key() {
    let w = world();
    let t = forge(
        w.issuer.key(),
        json!({"alg":"ES256","typ":"wit+jwt"}),
        wit_claims(sub().as_str(), &w.workload_es.public_jwk()),
    );
    assert_eq!(code(&strict_rp(), &t, &es_wpt(&t, NOW + 60)), "kid_missing");
}

#[test]
fn default_refuses_a_wit_with_aud_unless_allowed() {
    let w = world();
    let mut claims = wit_claims(sub().as_str(), &w.workload_es.public_jwk());
    claims["aud"] = json!("https://svc.example.com");
    let t = forge(
        w.issuer.key(),
        json!({"alg":"ES256","kid":"issuer-1","typ":"wit+jwt"}),
        claims,
    );
    let e = strict_rp()
        .verify_request(headers(&t, &es_wpt(&t, NOW + 60)), TARGET, NOW)
        .unwrap_err();
    assert_eq!(e.code(), "claim_invalid");
    assert!(e.to_string().contains("aud"), "{e}");
    let mut cfg = RpConfig::new(trust(), vec![AUTHORITY.into()]);
    cfg.wit_policy = cfg.wit_policy.danger_allow_aud();
    RelyingParty::new(cfg)
        .unwrap()
        .verify_request(headers(&t, &es_wpt(&t, NOW + 60)), TARGET, NOW)
        .unwrap();
}

#[test]
fn wit_lifetime_above_24_hours_is_lifetime_too_long() {
    let ok = es_wit(&sub(), NOW - 60, NOW - 60 + 86_400);
    strict_rp()
        .verify_request(headers(&ok, &es_wpt(&ok, NOW + 60)), TARGET, NOW)
        .unwrap();
    let long = es_wit(&sub(), NOW - 60, NOW - 60 + 86_401);
    assert_eq!(
        code(&strict_rp(), &long, &es_wpt(&long, NOW + 60)),
        "lifetime_too_long"
    );
    // Shorter limits are plain configuration; longer ones a danger_ opt-in.
    let mut cfg = RpConfig::new(trust(), vec![AUTHORITY.into()]);
    cfg.wit_policy = cfg.wit_policy.with_max_lifetime(3600);
    let day = es_wit(&sub(), NOW - 60, NOW + 7200);
    assert_eq!(
        code(
            &RelyingParty::new(cfg).unwrap(),
            &day,
            &es_wpt(&day, NOW + 60)
        ),
        "lifetime_too_long"
    );
    let mut cfg = RpConfig::new(trust(), vec![AUTHORITY.into()]);
    cfg.wit_policy = cfg.wit_policy.danger_allow_lifetime(200_000);
    RelyingParty::new(cfg)
        .unwrap()
        .verify_request(headers(&long, &es_wpt(&long, NOW + 60)), TARGET, NOW)
        .unwrap();
}

#[test]
fn wit_without_iat_expiring_beyond_one_lifetime_is_exp_too_far() {
    let w = world();
    let wit_expiring_at = |exp: u64| {
        forge(
            w.issuer.key(),
            json!({"alg":"ES256","kid":"issuer-1","typ":"wit+jwt"}),
            json!({"cnf": {"jwk": w.workload_es.public_jwk().to_value()}, "exp": exp,
                   "jti": "j", "sub": sub().as_str()}),
        )
    };
    let edge = wit_expiring_at(NOW + 86_400 + 60);
    strict_rp()
        .verify_request(headers(&edge, &es_wpt(&edge, NOW + 60)), TARGET, NOW)
        .unwrap();
    let far = wit_expiring_at(NOW + 86_400 + 61);
    assert_eq!(
        code(&strict_rp(), &far, &es_wpt(&far, NOW + 60)),
        "exp_too_far"
    );
}

#[test]
fn clock_skew_above_the_cap_is_refused_at_configuration() {
    let mut cfg = RpConfig::new(trust(), vec![AUTHORITY.into()]);
    cfg.wit_policy = cfg.wit_policy.with_clock_skew(301);
    assert_eq!(
        RelyingParty::new(cfg).unwrap_err().code(),
        "request_invalid"
    );
    let mut cfg = RpConfig::new(trust(), vec![AUTHORITY.into()]);
    cfg.wpt_policy = cfg.wpt_policy.with_clock_skew(301);
    assert_eq!(
        RelyingParty::new(cfg).unwrap_err().code(),
        "request_invalid"
    );
}

#[test]
fn wpt_jti_longer_than_128_bytes_is_jti_too_long() {
    let wit = es_wit(&sub(), NOW - 60, NOW + 3600);
    let rp = strict_rp();
    rp.verify_request(
        headers(&wit, &es_wpt_with_jti(&wit, &"j".repeat(128))),
        TARGET,
        NOW,
    )
    .unwrap();
    assert_eq!(
        code(&rp, &wit, &es_wpt_with_jti(&wit, &"k".repeat(129))),
        "jti_too_long"
    );
    assert_eq!(rp.replay_cache().len(NOW), 1, "the long jti was not stored");
}

fn small_cache_rp() -> RelyingParty {
    let mut cfg = RpConfig::new(trust(), vec![AUTHORITY.into()]);
    cfg.replay = ReplayLimits {
        capacity: 6,
        per_sender: 3,
        max_jti_len: 128,
    };
    RelyingParty::new(cfg).unwrap()
}

#[test]
fn one_flooding_sender_cannot_evict_or_lock_out_another() {
    let rp = small_cache_rp();
    let victim = es_wit(&sub(), NOW - 60, NOW + 3600);
    let flooder_id = WorkloadId::parse("wimse://example.com/flooder").unwrap();
    let flooder = es_wit(&flooder_id, NOW - 60, NOW + 3600);

    let victim_first = es_wpt(&victim, NOW + 60);
    rp.verify_request(headers(&victim, &victim_first), TARGET, NOW)
        .unwrap();
    for _ in 0..3 {
        rp.verify_request(headers(&flooder, &es_wpt(&flooder, NOW + 300)), TARGET, NOW)
            .unwrap();
    }
    // The flooder is now refused, however many fresh proofs it makes …
    for _ in 0..20 {
        assert_eq!(
            code(&rp, &flooder, &es_wpt(&flooder, NOW + 300)),
            "replay_quota_exceeded"
        );
    }
    // … while the victim's entry was not evicted (its replay is still caught) and it keeps its own room.
    assert_eq!(code(&rp, &victim, &victim_first), "replayed");
    for _ in 0..2 {
        rp.verify_request(headers(&victim, &es_wpt(&victim, NOW + 60)), TARGET, NOW)
            .unwrap();
    }
    assert_eq!(rp.replay_cache().len_of(sub().as_str(), NOW), 3);
    assert_eq!(rp.replay_cache().len_of(flooder_id.as_str(), NOW), 3);
}

#[test]
fn full_cache_fails_closed_as_overloaded_and_recovers() {
    let rp = small_cache_rp();
    for i in 0..2 {
        let id = WorkloadId::parse(&format!("wimse://example.com/s{i}")).unwrap();
        let wit = es_wit(&id, NOW - 60, NOW + 3600);
        for _ in 0..3 {
            rp.verify_request(headers(&wit, &es_wpt(&wit, NOW + 30)), TARGET, NOW)
                .unwrap();
        }
    }
    let third = es_wit(&sub(), NOW - 60, NOW + 3600);
    assert_eq!(code(&rp, &third, &es_wpt(&third, NOW + 60)), "overloaded");
    // Entries live until exp + skew (NOW + 90); after that there is room again.
    rp.verify_request(
        headers(&third, &es_wpt(&third, NOW + 200)),
        TARGET,
        NOW + 90,
    )
    .unwrap();
}
