//! Interop with an independent JOSE implementation (Python PyJWT + cryptography, `tests/interop.py`): it verifies
//! our WITs, WPTs and EAR JWT against our JWKS, and the tokens it signs pass our relying party.
//!
//! Without python3 or the packages the tests print a loud SKIP, unless env `CI` is set (or `LOCUS_REQUIRE_VECTORS=1`,
//! as `.ci/run` sets after installing `.ci/requirements.txt`), in which case they fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use locus_wimse::wpt::WptRequest;
use locus_wimse::{
    create_wpt, Ear, EarAppraisal, Jwks, RelyingParty, RpConfig, TrustDomain, TrustStore,
    TrustTier, VerifierId, EAR_PROFILE,
};
use serde_json::{json, Value};

fn script() -> String {
    format!("{}/tests/interop.py", env!("CARGO_MANIFEST_DIR"))
}

/// Whether python3 with PyJWT and cryptography is usable; loud skip or CI failure otherwise.
fn python_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import jwt, cryptography; from jwt.algorithms import OKPAlgorithm",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let required = std::env::var_os("CI").is_some()
            || std::env::var("LOCUS_REQUIRE_VECTORS").as_deref() == Ok("1");
        assert!(
            !required,
            "{test}: python3 with PyJWT and cryptography is required when CI or LOCUS_REQUIRE_VECTORS=1 is set (pip install -r .ci/requirements.txt)"
        );
        eprintln!("SKIP: {test}: python3 with PyJWT[crypto] not available (pip install -r .ci/requirements.txt)");
    }
    ok
}

fn run_python(mode: &str, input: &Value) -> Value {
    let mut child = Command::new("python3")
        .arg(script())
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "interop.py {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn pyjwt_verifies_our_wit_wpt_and_ear_against_our_jwks() {
    if !python_available("pyjwt_verifies_our_wit_wpt_and_ear_against_our_jwks") {
        return;
    }
    let w = world();
    let empty = serde_json::Map::new();
    let (wit_ed, _) = w
        .issuer
        .issue(&sub(), &w.workload_ed.public_jwk(), NOW, NOW + 3600, &empty)
        .unwrap();
    let mut extra = serde_json::Map::new();
    extra.insert("locus_tee".into(), json!({"type":"tdx","debug":false}));
    let spiffe = locus_wimse::WorkloadId::parse("spiffe://example.com/ns/a/sa/b").unwrap();
    let (wit_es, _) = w
        .issuer
        .issue(
            &spiffe,
            &w.workload_es.public_jwk(),
            NOW,
            NOW + 3600,
            &extra,
        )
        .unwrap();
    let wpt_ed = create_wpt(
        &w.workload_ed,
        &WptRequest::new(AUD, &wit_ed, NOW + 60).access_token("at-1"),
    )
    .unwrap();
    let wpt_es = create_wpt(&w.workload_es, &WptRequest::new(AUD, &wit_es, NOW + 60)).unwrap();
    // A control the independent verifier must refuse: a WPT signed by a key other than cnf.
    let wpt_stranger =
        create_wpt(&w.stranger_ed, &WptRequest::new(AUD, &wit_ed, NOW + 60)).unwrap();

    let ear = sample_ear();
    let ear_jwt = ear.sign_jwt(w.issuer.key()).unwrap();

    let jwks = Jwks::new(vec![w.issuer.public_jwk()]).to_value();
    let input = json!({
        "jwks": jwks,
        "now": NOW,
        "cases": [
            {"wit": wit_ed, "wpt": wpt_ed, "aud": AUD, "access_token": "at-1"},
            {"wit": wit_es, "wpt": wpt_es, "aud": AUD},
            {"wit": wit_ed, "wpt": wpt_stranger, "aud": AUD},
        ],
        "ear": {"jwt": ear_jwt, "jwks": jwks},
    });
    let out = run_python("verify", &input);
    let r = out["results"].as_array().unwrap();
    assert_eq!(r[0]["ok"], true, "{}", r[0]);
    assert_eq!(r[0]["sub"], sub().as_str());
    assert_eq!(r[1]["ok"], true, "{}", r[1]);
    assert_eq!(r[1]["sub"], "spiffe://example.com/ns/a/sa/b");
    assert_eq!(
        r[2]["ok"], false,
        "stranger-signed WPT must be refused by PyJWT too"
    );
    assert_eq!(out["ear_ok"], true);
}

#[test]
fn tokens_signed_by_pyjwt_pass_our_relying_party() {
    if !python_available("tokens_signed_by_pyjwt_pass_our_relying_party") {
        return;
    }
    let out = run_python(
        "sign",
        &json!({"now": NOW, "aud": AUD, "access_token": "at-py", "sub": sub().as_str()}),
    );
    let jwks = Jwks::from_value(&out["jwks"]).unwrap();
    assert_eq!(jwks.keys[0].key_use.as_deref(), Some("wit-svid"));
    let trust = TrustStore::new().with_keys(TrustDomain::parse("example.com").unwrap(), jwks);
    // PyJWT signs one case with an Ed25519 proof-of-possession key: opted in explicitly.
    let rp =
        RelyingParty::new(allowing_eddsa(RpConfig::new(trust, vec![AUTHORITY.into()]))).unwrap();
    let cases = out["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for (case, alg) in cases.iter().zip(["EdDSA", "ES256"]) {
        let wit = case["wit"].as_str().unwrap();
        let wpt = case["wpt"].as_str().unwrap();
        let mut h = headers(wit, wpt);
        h.push(("Authorization".into(), "Bearer at-py".into()));
        let ok = rp.verify_request(h, TARGET, NOW).unwrap();
        assert_eq!(ok.id, sub());
        assert_eq!(ok.wit_claims.pop_alg(), alg);
        assert_eq!(ok.wit_claims.extra["locus_tee"]["type"], "sev-snp");
        // Our checks still bite on their tokens: without the access token, ath has nothing to match.
        let e = rp
            .verify_request(headers(wit, wpt), TARGET, NOW)
            .unwrap_err();
        assert_eq!(e.code(), "ath_mismatch");
    }
}

fn sample_ear() -> Ear {
    let mut submods = std::collections::BTreeMap::new();
    submods.insert(
        "tdx".to_owned(),
        EarAppraisal {
            status: TrustTier::Affirming,
            trust_vector: Some(locus_wimse::TrustVector {
                instance_identity: Some(2),
                hardware: Some(2),
                executables: Some(2),
                ..Default::default()
            }),
            policy_ids: vec!["https://verifier.example.com/policy/1".into()],
            nonce: Some(vec![9; 32]),
            profile: None,
        },
    );
    Ear {
        profile: EAR_PROFILE.into(),
        iat: NOW,
        exp: Some(NOW + 3600),
        verifier_id: VerifierId {
            developer: "https://locus.example".into(),
            build: "locus 0.1.0".into(),
        },
        status: Some(TrustTier::Affirming),
        raw_evidence: None,
        nonce: None,
        submods,
    }
}
