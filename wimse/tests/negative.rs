//! Every refusal of the WIT and WPT checks, each expecting its exact error code, through
//! `RelyingParty::verify_request`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use locus_wimse::wpt::WptRequest;
use locus_wimse::{create_wpt, Alg, Es256SigningKey, Jwks, RelyingParty, TrustAnchor, TrustDomain};
use serde_json::json;

fn refused(rp: &RelyingParty, wit: &str, wpt: &str) -> &'static str {
    rp.verify_request(headers(wit, wpt), TARGET, NOW)
        .unwrap_err()
        .code()
}

/// The WPT for a WIT-level test: valid for whatever WIT string it accompanies.
fn wit_refused(wit: &str) -> &'static str {
    refused(&rp(), wit, &good_wpt(wit))
}

#[test]
fn baseline_good_request_is_accepted() {
    let wit = good_wit();
    let ok = rp()
        .verify_request(headers(&wit, &good_wpt(&wit)), TARGET, NOW)
        .unwrap();
    assert_eq!(ok.id, sub());
    assert_eq!(
        ok.wit_claims.iss.as_deref(),
        Some("https://verifier.example.com")
    );
}

#[test]
fn es256_cnf_key_proves_possession_too() {
    let w = world();
    let (wit, _) = w
        .issuer
        .issue(
            &sub(),
            &w.workload_es.public_jwk(),
            NOW,
            NOW + 600,
            &serde_json::Map::new(),
        )
        .unwrap();
    let wpt = create_wpt(&w.workload_es, &WptRequest::new(AUD, &wit, NOW + 60)).unwrap();
    rp().verify_request(headers(&wit, &wpt), TARGET, NOW)
        .unwrap();
}

// ---------------- WIT ----------------

#[test]
fn wit_alg_none_is_alg_not_allowed() {
    let claims = wit_claims(sub().as_str(), &world().workload_ed.public_jwk());
    assert_eq!(
        wit_refused(&none_alg("wit+jwt", &claims)),
        "alg_not_allowed"
    );
    assert_eq!(
        wit_refused(&unsigned_with_alg("none", "wit+jwt", &claims)),
        "alg_not_allowed"
    );
}

#[test]
fn wit_hs256_with_public_key_as_secret_is_alg_not_allowed() {
    let claims = wit_claims(sub().as_str(), &world().workload_ed.public_jwk());
    let secret = world().issuer.public_jwk().to_value().to_string();
    assert_eq!(
        wit_refused(&hs256("wit+jwt", &claims, secret.as_bytes())),
        "alg_not_allowed"
    );
}

#[test]
fn wit_alg_outside_configured_list_is_alg_not_allowed() {
    // ES384 is implemented but not on the allow-list (ES256, plus EdDSA opted in by `config()`).
    let claims = wit_claims(sub().as_str(), &world().workload_ed.public_jwk());
    let h = locus_wimse::b64::encode(br#"{"alg":"ES384","kid":"issuer-1","typ":"wit+jwt"}"#);
    let t = unsigned_with_alg("ES384", "wit+jwt", &claims);
    let t = format!("{h}.{}", t.split_once('.').unwrap().1);
    assert_eq!(wit_refused(&t), "alg_not_allowed");
}

#[test]
fn wit_alg_differing_from_the_trust_anchor_key_is_alg_mismatch() {
    let w = world();
    let claims = wit_claims(sub().as_str(), &w.workload_ed.public_jwk());
    // ES384 named in the header (and allowed), while the anchor key says ES256.
    let t = unsigned_with_alg("ES384", "wit+jwt", &claims);
    let h = locus_wimse::b64::encode(br#"{"alg":"ES384","kid":"issuer-1","typ":"wit+jwt"}"#);
    let t = format!("{h}.{}", t.split_once('.').unwrap().1);
    let mut cfg = config();
    cfg.wit_policy = cfg.wit_policy.danger_allow_algs(&[Alg::Es384]);
    assert_eq!(
        refused(&RelyingParty::new(cfg).unwrap(), &t, &good_wpt(&t)),
        "alg_mismatch"
    );
}

#[test]
fn wit_wrong_or_missing_typ_is_typ_invalid() {
    let w = world();
    let claims = wit_claims(sub().as_str(), &w.workload_ed.public_jwk());
    for header in [
        json!({"alg":"ES256","kid":"issuer-1","typ":"JWT"}),
        json!({"alg":"ES256","kid":"issuer-1","typ":"wpt+jwt"}),
        json!({"alg":"ES256","kid":"issuer-1"}),
    ] {
        let t = forge(w.issuer.key(), header.clone(), claims.clone());
        assert_eq!(wit_refused(&t), "typ_invalid", "{header}");
    }
    // The media-type spelling is the same type.
    let t = forge(
        w.issuer.key(),
        json!({"alg":"ES256","kid":"issuer-1","typ":"application/wit+jwt"}),
        claims,
    );
    rp().verify_request(headers(&t, &good_wpt(&t)), TARGET, NOW)
        .unwrap();
}

#[test]
fn wit_expired_is_token_expired() {
    let w = world();
    let (wit, _) = w
        .issuer
        .issue(
            &sub(),
            &w.workload_ed.public_jwk(),
            NOW - 7200,
            NOW - 61,
            &serde_json::Map::new(),
        )
        .unwrap();
    assert_eq!(wit_refused(&wit), "token_expired");
    // Within the 60 s skew it is still accepted.
    let (wit, _) = w
        .issuer
        .issue(
            &sub(),
            &w.workload_ed.public_jwk(),
            NOW - 7200,
            NOW - 59,
            &serde_json::Map::new(),
        )
        .unwrap();
    rp().verify_request(headers(&wit, &good_wpt(&wit)), TARGET, NOW)
        .unwrap();
}

#[test]
fn wit_from_the_future_is_token_not_yet_valid() {
    let w = world();
    let mut claims = wit_claims(sub().as_str(), &w.workload_ed.public_jwk());
    claims["nbf"] = json!(NOW + 600);
    let t = forge(
        w.issuer.key(),
        json!({"alg":"ES256","kid":"issuer-1","typ":"wit+jwt"}),
        claims,
    );
    assert_eq!(wit_refused(&t), "token_not_yet_valid");
}

#[test]
fn wit_unknown_kid_is_kid_unknown() {
    let w = world();
    let claims = wit_claims(sub().as_str(), &w.workload_ed.public_jwk());
    let t = forge(
        w.issuer.key(),
        json!({"alg":"ES256","kid":"issuer-2","typ":"wit+jwt"}),
        claims,
    );
    assert_eq!(wit_refused(&t), "kid_unknown");
}

#[test]
fn wit_without_kid_needs_an_unambiguous_key() {
    let w = world();
    let claims = wit_claims(sub().as_str(), &w.workload_ed.public_jwk());
    let t = forge(
        w.issuer.key(),
        json!({"alg":"ES256","typ":"wit+jwt"}),
        claims,
    );
    // The default requires a kid.
    assert_eq!(wit_refused(&t), "kid_missing");
    // Opted out: one key for the trust domain is unambiguous, accepted.
    let mut cfg = config();
    cfg.wit_policy = cfg.wit_policy.danger_allow_missing_kid();
    RelyingParty::new(cfg.clone())
        .unwrap()
        .verify_request(headers(&t, &good_wpt(&t)), TARGET, NOW)
        .unwrap();
    // Two keys (rotation): kid required even then.
    let rotated = Es256SigningKey::generate().unwrap().with_kid("issuer-0");
    cfg.trust.insert(
        TrustDomain::parse("example.com").unwrap(),
        TrustAnchor {
            keys: Jwks::new(vec![rotated.public_jwk(), w.issuer.public_jwk()]),
            issuers: vec![],
        },
    );
    assert_eq!(
        refused(&RelyingParty::new(cfg).unwrap(), &t, &good_wpt(&t)),
        "kid_missing"
    );
}

#[test]
fn wit_of_an_unconfigured_trust_domain_is_trust_domain_unknown() {
    let w = world();
    let claims = wit_claims(
        "wimse://evil.example/orders-client",
        &w.workload_ed.public_jwk(),
    );
    let t = forge(
        w.issuer.key(),
        json!({"alg":"ES256","kid":"issuer-1","typ":"wit+jwt"}),
        claims,
    );
    assert_eq!(wit_refused(&t), "trust_domain_unknown");
}

#[test]
fn wit_signed_by_another_trust_domains_issuer_is_refused() {
    let w = world();
    // other.example's issuer claims a subject in example.com: its kid is not an example.com key.
    let claims = wit_claims(sub().as_str(), &w.workload_ed.public_jwk());
    let t = forge(
        w.other_domain_issuer.key(),
        json!({"alg":"ES256","kid":"other-1","typ":"wit+jwt"}),
        claims.clone(),
    );
    assert_eq!(wit_refused(&t), "kid_unknown");
    // Borrowing example.com's kid does not help: the signature does not verify under example.com's key.
    let t = forge(
        w.other_domain_issuer.key(),
        json!({"alg":"ES256","kid":"issuer-1","typ":"wit+jwt"}),
        claims,
    );
    assert_eq!(wit_refused(&t), "signature_invalid");
}

#[test]
fn wit_with_tampered_payload_is_signature_invalid() {
    let wit = good_wit();
    let mut parts: Vec<String> = wit.split('.').map(str::to_owned).collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&locus_wimse::b64::decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("wimse://example.com/admin");
    parts[1] = locus_wimse::b64::encode(serde_json::to_vec(&claims).unwrap());
    let t = parts.join(".");
    assert_eq!(wit_refused(&t), "signature_invalid");
}

#[test]
fn wit_with_bad_subject_is_identifier_invalid() {
    let w = world();
    for sub in [
        "wimse://Example.com/a",
        "wimse://example.com/%61dmin",
        "wimse://example.com/a/",
    ] {
        let claims = wit_claims(sub, &w.workload_ed.public_jwk());
        let t = forge(
            w.issuer.key(),
            json!({"alg":"ES256","kid":"issuer-1","typ":"wit+jwt"}),
            claims,
        );
        assert_eq!(wit_refused(&t), "identifier_invalid", "{sub}");
    }
}

#[test]
fn wit_missing_exp_or_sub_is_claim_missing() {
    let w = world();
    for drop in ["exp", "sub", "cnf"] {
        let mut claims = wit_claims(sub().as_str(), &w.workload_ed.public_jwk());
        claims.as_object_mut().unwrap().remove(drop);
        let t = forge(
            w.issuer.key(),
            json!({"alg":"ES256","kid":"issuer-1","typ":"wit+jwt"}),
            claims,
        );
        assert_eq!(wit_refused(&t), "claim_missing", "{drop}");
    }
}

#[test]
fn wit_cnf_without_alg_or_with_private_key_is_cnf_invalid() {
    let w = world();
    let mut no_alg = w.workload_ed.public_jwk();
    no_alg.alg = None;
    let mut with_d = w.workload_ed.public_jwk().to_value();
    with_d["d"] = json!(locus_wimse::b64::encode([1u8; 32]));
    let mut hs = w.workload_ed.public_jwk().to_value();
    hs["alg"] = json!("HS256");
    for cnf in [no_alg.to_value(), with_d, hs] {
        let mut claims = wit_claims(sub().as_str(), &w.workload_ed.public_jwk());
        claims["cnf"] = json!({ "jwk": cnf });
        let t = forge(
            w.issuer.key(),
            json!({"alg":"ES256","kid":"issuer-1","typ":"wit+jwt"}),
            claims,
        );
        assert_eq!(wit_refused(&t), "cnf_invalid", "{cnf}");
    }
}

#[test]
fn wit_from_an_issuer_off_the_allow_list_is_issuer_not_allowed() {
    let mut cfg = config();
    cfg.trust.insert(
        TrustDomain::parse("example.com").unwrap(),
        TrustAnchor {
            keys: Jwks::new(vec![world().issuer.public_jwk()]),
            issuers: vec!["https://other-verifier.example.com".into()],
        },
    );
    let wit = good_wit();
    assert_eq!(
        refused(&RelyingParty::new(cfg).unwrap(), &wit, &good_wpt(&wit)),
        "issuer_not_allowed"
    );
}

#[test]
fn wit_with_duplicate_members_is_token_malformed() {
    // `{"alg":"none","alg":"ES256"}`-style parser differentials: duplicates are refused, never last-wins.
    let w = world();
    let body = wit_claims(sub().as_str(), &w.workload_ed.public_jwk()).to_string();
    let dup_claims = format!(r#"{{"sub":"wimse://example.com/admin",{}"#, &body[1..]);
    let h = locus_wimse::b64::encode(br#"{"alg":"ES256","kid":"issuer-1","typ":"wit+jwt"}"#);
    let input = format!("{h}.{}", locus_wimse::b64::encode(dup_claims.as_bytes()));
    let sig = locus_wimse::JwsSigner::sign(w.issuer.key(), input.as_bytes()).unwrap();
    let t = format!("{input}.{}", locus_wimse::b64::encode(sig));
    assert_eq!(wit_refused(&t), "token_malformed");
    let h = locus_wimse::b64::encode(
        br#"{"alg":"none","alg":"ES256","kid":"issuer-1","typ":"wit+jwt"}"#,
    );
    let input = format!("{h}.{}", locus_wimse::b64::encode(body.as_bytes()));
    let sig = locus_wimse::JwsSigner::sign(w.issuer.key(), input.as_bytes()).unwrap();
    let t = format!("{input}.{}", locus_wimse::b64::encode(sig));
    assert_eq!(wit_refused(&t), "token_malformed");
}

#[test]
fn wit_that_is_not_a_jwt_is_token_malformed() {
    for t in ["", "abc", "a.b", "a.b.c.d", "eyJ.eyJ.sig=", "a b.c.d"] {
        assert_eq!(wit_refused(t), "token_malformed", "{t:?}");
    }
}

// ---------------- WPT ----------------

fn wpt_refused(wpt: &str, wit: &str) -> &'static str {
    refused(&rp(), wit, wpt)
}

#[test]
fn wpt_alg_none_is_alg_not_allowed() {
    let wit = good_wit();
    assert_eq!(
        wpt_refused(&none_alg("wpt+jwt", &wpt_claims(&wit)), &wit),
        "alg_not_allowed"
    );
}

#[test]
fn wpt_hs256_is_alg_not_allowed() {
    let wit = good_wit();
    let secret = world().workload_ed.public_jwk().to_value().to_string();
    assert_eq!(
        wpt_refused(
            &hs256("wpt+jwt", &wpt_claims(&wit), secret.as_bytes()),
            &wit
        ),
        "alg_not_allowed"
    );
}

#[test]
fn wpt_alg_differing_from_cnf_alg_is_alg_mismatch() {
    // The WIT's cnf says EdDSA; an ES256 WPT (even a well-signed one) is refused.
    let wit = good_wit();
    let es = &world().workload_es;
    let t = forge(es, json!({"alg":"ES256","typ":"wpt+jwt"}), wpt_claims(&wit));
    assert_eq!(wpt_refused(&t, &wit), "alg_mismatch");
}

#[test]
fn wpt_wrong_typ_is_typ_invalid() {
    let wit = good_wit();
    let ed = &world().workload_ed;
    for typ in [
        json!("wit+jwt"),
        json!("jwt"),
        json!("application/jwt"),
        serde_json::Value::Null,
    ] {
        let header = if typ.is_null() {
            json!({"alg":"EdDSA"})
        } else {
            json!({"alg":"EdDSA","typ":typ})
        };
        let t = forge(ed, header, wpt_claims(&wit));
        assert_eq!(wpt_refused(&t, &wit), "typ_invalid", "{typ}");
    }
    // `application/wpt+jwt` and other case is the same type.
    let t = forge(
        ed,
        json!({"alg":"EdDSA","typ":"application/WPT+JWT"}),
        wpt_claims(&wit),
    );
    rp().verify_request(headers(&wit, &t), TARGET, NOW).unwrap();
}

#[test]
fn wpt_signed_by_another_key_is_signature_invalid() {
    let wit = good_wit();
    let t = create_wpt(&world().stranger_ed, &WptRequest::new(AUD, &wit, NOW + 60)).unwrap();
    assert_eq!(wpt_refused(&t, &wit), "signature_invalid");
}

#[test]
fn wpt_expired_is_token_expired() {
    let wit = good_wit();
    let t = create_wpt(&world().workload_ed, &WptRequest::new(AUD, &wit, NOW - 61)).unwrap();
    assert_eq!(wpt_refused(&t, &wit), "token_expired");
}

#[test]
fn wpt_expiring_too_far_ahead_is_exp_too_far() {
    let wit = good_wit();
    // 300 s plus 60 s of skew (a workload clock ahead by the skew still gets its full lifetime) …
    let edge = create_wpt(&world().workload_ed, &WptRequest::new(AUD, &wit, NOW + 360)).unwrap();
    rp().verify_request(headers(&wit, &edge), TARGET, NOW)
        .unwrap();
    // … and not one second more.
    let t = create_wpt(&world().workload_ed, &WptRequest::new(AUD, &wit, NOW + 361)).unwrap();
    assert_eq!(wpt_refused(&t, &wit), "exp_too_far");
    // Shortening is plain; lengthening is a danger_ opt-in.
    let mut cfg = config();
    cfg.wpt_policy = cfg.wpt_policy.with_max_lifetime(100);
    assert_eq!(
        refused(&RelyingParty::new(cfg).unwrap(), &wit, &edge),
        "exp_too_far"
    );
    let mut cfg = config();
    cfg.wpt_policy = cfg.wpt_policy.with_max_lifetime(600);
    assert_eq!(
        refused(&RelyingParty::new(cfg).unwrap(), &wit, &t),
        "exp_too_far",
        "with_max_lifetime never lengthens"
    );
    let mut cfg = config();
    cfg.wpt_policy = cfg.wpt_policy.danger_allow_lifetime(600);
    RelyingParty::new(cfg)
        .unwrap()
        .verify_request(headers(&wit, &t), TARGET, NOW)
        .unwrap();
}

#[test]
fn wpt_missing_exp_jti_wth_or_aud_is_claim_missing() {
    let wit = good_wit();
    for drop in ["exp", "jti", "wth", "aud"] {
        let mut claims = wpt_claims(&wit);
        claims.as_object_mut().unwrap().remove(drop);
        let t = forge(
            &world().workload_ed,
            json!({"alg":"EdDSA","typ":"wpt+jwt"}),
            claims,
        );
        assert_eq!(wpt_refused(&t, &wit), "claim_missing", "{drop}");
    }
}

#[test]
fn wpt_aud_matching_only_the_host_header_is_aud_mismatch() {
    // The attacker controls Host; the aud names that host. Configured authority is svc.example.com.
    let wit = good_wit();
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new("https://evil.example/orders", &wit, NOW + 60),
    )
    .unwrap();
    let mut h = headers(&wit, &t);
    h[0].1 = "evil.example".into();
    h.push(("X-Forwarded-Host".into(), "evil.example".into()));
    let rp = rp();
    assert_eq!(
        rp.verify_request(h.clone(), TARGET, NOW)
            .unwrap_err()
            .code(),
        "aud_mismatch"
    );
    // Even if the server built an absolute target URI from Host, an unconfigured authority never matches.
    assert_eq!(
        rp.verify_request(h, "https://evil.example/orders", NOW)
            .unwrap_err()
            .code(),
        "aud_mismatch"
    );
}

#[test]
fn wpt_aud_for_another_path_is_aud_mismatch_and_query_is_ignored() {
    let wit = good_wit();
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new("https://svc.example.com/admin", &wit, NOW + 60),
    )
    .unwrap();
    assert_eq!(wpt_refused(&t, &wit), "aud_mismatch");
    // aud with a query, target with another query: both ignored.
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new("https://svc.example.com/orders?x=1", &wit, NOW + 60),
    )
    .unwrap();
    rp().verify_request(headers(&wit, &t), "/orders?id=9#f", NOW)
        .unwrap();
}

#[test]
fn wpt_aud_alias_from_configuration_is_accepted() {
    let wit = good_wit();
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new("urn:example:orders", &wit, NOW + 60),
    )
    .unwrap();
    assert_eq!(wpt_refused(&t, &wit), "aud_mismatch");
    let mut cfg = config();
    cfg.audience_aliases = vec!["urn:example:orders".into()];
    RelyingParty::new(cfg)
        .unwrap()
        .verify_request(headers(&wit, &t), TARGET, NOW)
        .unwrap();
}

#[test]
fn wpt_wth_of_another_wit_is_wth_mismatch() {
    let wit = good_wit();
    let other_wit = good_wit(); // same subject and key, another jti: another token
    assert_ne!(wit, other_wit);
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new(AUD, &other_wit, NOW + 60),
    )
    .unwrap();
    assert_eq!(wpt_refused(&t, &wit), "wth_mismatch");
}

#[test]
fn wpt_without_ath_while_an_access_token_travels_is_ath_missing() {
    let wit = good_wit();
    let mut h = headers(&wit, &good_wpt(&wit));
    h.push(("Authorization".into(), "Bearer at-123".into()));
    assert_eq!(
        rp().verify_request(h, TARGET, NOW).unwrap_err().code(),
        "ath_missing"
    );
}

#[test]
fn wpt_ath_of_another_token_or_without_token_is_ath_mismatch() {
    let wit = good_wit();
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new(AUD, &wit, NOW + 60).access_token("at-999"),
    )
    .unwrap();
    let mut h = headers(&wit, &t);
    h.push(("authorization".into(), "Bearer at-123".into()));
    assert_eq!(
        rp().verify_request(h, TARGET, NOW).unwrap_err().code(),
        "ath_mismatch"
    );
    assert_eq!(wpt_refused(&t, &wit), "ath_mismatch");
    // Matching token: accepted (DPoP scheme too).
    let mut h = headers(&wit, &t);
    h.push(("Authorization".into(), "DPoP at-999".into()));
    rp().verify_request(h, TARGET, NOW).unwrap();
}

#[test]
fn wpt_tth_rules() {
    let wit = good_wit();
    let mut h = headers(&wit, &good_wpt(&wit));
    h.push(("Txn-Token".into(), "txn-1".into()));
    assert_eq!(
        rp().verify_request(h, TARGET, NOW).unwrap_err().code(),
        "tth_missing"
    );
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new(AUD, &wit, NOW + 60).txn_token("txn-2"),
    )
    .unwrap();
    let mut h = headers(&wit, &t);
    h.push(("Txn-Token".into(), "txn-1".into()));
    assert_eq!(
        rp().verify_request(h, TARGET, NOW).unwrap_err().code(),
        "tth_mismatch"
    );
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new(AUD, &wit, NOW + 60).txn_token("txn-1"),
    )
    .unwrap();
    let mut h = headers(&wit, &t);
    h.push(("Txn-Token".into(), "txn-1".into()));
    rp().verify_request(h, TARGET, NOW).unwrap();
}

#[test]
fn wpt_unknown_oth_entry_is_oth_unknown() {
    let wit = good_wit();
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new(AUD, &wit, NOW + 60).other_token("X-Unknown-Token", "v"),
    )
    .unwrap();
    let mut h = headers(&wit, &t);
    h.push(("X-Unknown-Token".into(), "v".into()));
    assert_eq!(
        rp().verify_request(h, TARGET, NOW).unwrap_err().code(),
        "oth_unknown"
    );
}

#[test]
fn wpt_oth_missing_and_mismatch() {
    let wit = good_wit();
    // Configured context token present, not covered.
    let mut h = headers(&wit, &good_wpt(&wit));
    h.push(("X-Ctx-Token".into(), "ctx".into()));
    assert_eq!(
        rp().verify_request(h, TARGET, NOW).unwrap_err().code(),
        "oth_missing"
    );
    // Covered with another value.
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new(AUD, &wit, NOW + 60).other_token(CTX_HEADER, "other"),
    )
    .unwrap();
    let mut h = headers(&wit, &t);
    h.push(("X-Ctx-Token".into(), "ctx".into()));
    assert_eq!(
        rp().verify_request(h, TARGET, NOW).unwrap_err().code(),
        "oth_mismatch"
    );
    // Listed but absent.
    assert_eq!(wpt_refused(&t, &wit), "oth_mismatch");
    // Covered (surrounding spaces trimmed before hashing).
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new(AUD, &wit, NOW + 60).other_token(CTX_HEADER, "ctx"),
    )
    .unwrap();
    let mut h = headers(&wit, &t);
    h.push(("x-ctx-token".into(), " ctx ".into()));
    rp().verify_request(h, TARGET, NOW).unwrap();
}

#[test]
fn wpt_replayed_jti_is_replayed() {
    let rp = rp();
    let wit = good_wit();
    let t = good_wpt(&wit);
    rp.verify_request(headers(&wit, &t), TARGET, NOW).unwrap();
    assert_eq!(
        rp.verify_request(headers(&wit, &t), TARGET, NOW + 5)
            .unwrap_err()
            .code(),
        "replayed"
    );
    // A fresh proof with a new jti is fine.
    rp.verify_request(headers(&wit, &good_wpt(&wit)), TARGET, NOW + 5)
        .unwrap();
}

#[test]
fn failed_request_does_not_burn_the_jti() {
    let rp = rp();
    let wit = good_wit();
    let t = create_wpt(
        &world().workload_ed,
        &WptRequest::new(AUD, &wit, NOW + 60).access_token("at"),
    )
    .unwrap();
    // Without the access token the request fails (ath_mismatch) …
    assert_eq!(
        rp.verify_request(headers(&wit, &t), TARGET, NOW)
            .unwrap_err()
            .code(),
        "ath_mismatch"
    );
    // … and the genuine request with the same WPT still succeeds.
    let mut h = headers(&wit, &t);
    h.push(("Authorization".into(), "Bearer at".into()));
    rp.verify_request(h, TARGET, NOW).unwrap();
}

#[test]
fn headers_missing_or_repeated() {
    let wit = good_wit();
    let t = good_wpt(&wit);
    let rp = rp();
    let only_wit = vec![("Workload-Identity-Token".to_owned(), wit.clone())];
    assert_eq!(
        rp.verify_request(only_wit, TARGET, NOW).unwrap_err().code(),
        "header_missing"
    );
    let only_wpt = vec![("Workload-Proof-Token".to_owned(), t.clone())];
    assert_eq!(
        rp.verify_request(only_wpt, TARGET, NOW).unwrap_err().code(),
        "header_missing"
    );
    let mut twice = headers(&wit, &t);
    twice.push(("WORKLOAD-IDENTITY-TOKEN".into(), wit.clone()));
    assert_eq!(
        rp.verify_request(twice, TARGET, NOW).unwrap_err().code(),
        "header_repeated"
    );
    let mut twice = headers(&wit, &t);
    twice.push(("workload-proof-token".into(), t.clone()));
    assert_eq!(
        rp.verify_request(twice, TARGET, NOW).unwrap_err().code(),
        "header_repeated"
    );
    // Headers as borrowed pairs work too.
    let pairs = [
        ("Workload-Identity-Token", wit.as_str()),
        ("Workload-Proof-Token", t.as_str()),
    ];
    rp.verify_request(pairs, TARGET, NOW).unwrap();
}

#[test]
fn every_code_is_documented_and_unique() {
    let codes = locus_wimse::error::ALL_CODES;
    let mut sorted = codes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), codes.len());
    let doc = include_str!("../src/error.rs");
    for c in codes {
        assert!(doc.contains(&format!("`{c}`")), "{c} not documented");
        assert!(c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    }
    // The codes shared with docs/architecture.md#error-codes keep their spelling.
    for shared in [
        "identifier_invalid",
        "signature_invalid",
        "request_invalid",
        "overloaded",
        "internal",
    ] {
        assert!(codes.contains(&shared));
    }
}

#[test]
fn one_proof_raced_from_many_threads_is_accepted_exactly_once() {
    let rp = std::sync::Arc::new(rp());
    let wit = good_wit();
    let wpt = good_wpt(&wit);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (rp, wit, wpt) = (rp.clone(), wit.clone(), wpt.clone());
            std::thread::spawn(move || {
                rp.verify_request(headers(&wit, &wpt), TARGET, NOW)
                    .map_err(|e| e.code())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|c| *c == "replayed"));
}

#[test]
fn repeated_authorization_or_context_header_is_header_repeated() {
    let wit = good_wit();
    let mut h = headers(&wit, &good_wpt(&wit));
    h.push(("Authorization".into(), "Bearer a".into()));
    h.push(("authorization".into(), "Bearer b".into()));
    assert_eq!(
        rp().verify_request(h, TARGET, NOW).unwrap_err().code(),
        "header_repeated"
    );
    let mut h = headers(&wit, &good_wpt(&wit));
    h.push(("X-Ctx-Token".into(), "a".into()));
    h.push(("x-ctx-token".into(), "a".into()));
    assert_eq!(
        rp().verify_request(h, TARGET, NOW).unwrap_err().code(),
        "header_repeated"
    );
}

#[test]
fn relying_party_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RelyingParty>();
    assert_send_sync::<locus_wimse::WitIssuer>();
    assert_send_sync::<Es256SigningKey>();
}
