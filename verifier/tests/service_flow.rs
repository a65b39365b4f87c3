//! The real `locus-verifier serve` with `examples/verifier.toml` and simulator evidence: issuance, claims, the
//! geo-fence, and every refusal with its code.

mod service_support;

use locus_verifier::service::challenge::ChallengeKey;
use locus_wimse::{Ear, Jwks};
use serde_json::Value;
use service_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snp_and_tdx_on_fra_1_get_a_wit_that_verifies_with_the_served_jwks_and_carries_the_design_claims(
) {
    let dir = tempdir();
    let v = Verifier::start(dir.path(), &example_config(&dir.path().join("state")));
    for (profile, tee, platform_id) in [
        (
            "snp-fra-1",
            "sev-snp",
            world().profile("snp-fra-1").expect("p").platform_id(),
        ),
        (
            "tdx-fra-1",
            "tdx",
            world().profile("tdx-fra-1").expect("p").platform_id(),
        ),
    ] {
        let nonce = challenge(&v.base).await;
        let agent = Agent::new();
        let (status, body, ctype) =
            post_attest(&v.base, &agent.request(profile, &nonce, Some(EU_WORKLOAD))).await;
        assert_eq!(status, 200, "{profile}: {body}");
        assert!(ctype.starts_with("application/json"));
        let wit = body["wit"].as_str().expect("wit");
        let verified = verify_wit(&v.base, wit)
            .await
            .expect("WIT verifies with the served JWKS");
        let claims = verified.claims();
        assert_eq!(claims.sub.as_str(), EU_WORKLOAD);
        assert_eq!(claims.cnf.key, agent.jwk.key, "cnf.jwk is the agent key");
        assert_eq!(claims.cnf.alg.as_deref(), Some("ES256"));
        assert!(claims.exp > claims.iat.expect("iat"));
        assert_eq!(claims.exp - claims.iat.expect("iat"), 3600);
        assert!(
            claims.jti.as_deref().is_some_and(|j| j.len() >= 22),
            "128-bit jti"
        );
        let tee_claim = &claims.extra["locus_tee"];
        assert_eq!(tee_claim["type"], tee);
        assert_eq!(tee_claim["tcb_status"], "UpToDate");
        assert_eq!(tee_claim["debug"], false);
        assert_eq!(tee_claim["simulated"], true);
        let expected_platform = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&platform_id))
        };
        assert_eq!(tee_claim["platform"], expected_platform);
        let measurement = tee_claim["measurement"].as_str().expect("measurement");
        assert_eq!(measurement.len(), 96);
        let res = &claims.extra["locus_residency"];
        assert_eq!(res["country"], "DE");
        assert_eq!(res["region"], "DE-HE");
        assert_eq!(res["site"], "fra-1");
        assert_eq!(res["zones"], serde_json::json!(["eu"]));
        assert_eq!(res["sources"], serde_json::json!(["registry"]));
        assert!(res["checked_at"].as_u64().is_some());
        // The JWS header: ES256, wit+jwt, kid.
        let header: Value = serde_json::from_slice(&b64d(wit.split('.').next().expect("header")))
            .expect("header json");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["typ"], "wit+jwt");
        assert!(header["kid"].is_string());
        // The EAR beside it verifies with the same keys.
        let jwks =
            Jwks::from_value(&get_json(&v.base, "/.well-known/jwks.json").await).expect("jwks");
        let ear = Ear::verify_jwt(body["ear"].as_str().expect("ear"), &jwks, now())
            .expect("EAR verifies");
        assert!(ear.submods.contains_key(tee), "{:?}", ear.submods.keys());
        assert_eq!(ear.nonce.as_deref(), Some(nonce.as_slice()));
        assert!(body["ear_type"]
            .as_str()
            .is_some_and(|t| t.starts_with("application/eat+jwt")));
        assert!(body["expires_at"].is_string());
    }
    let jwks = get_json(&v.base, "/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"][0]["use"], "wit-svid");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eu_fence_admits_fra_1_denies_iad_1_and_refuses_unregistered_platforms() {
    let dir = tempdir();
    let v = Verifier::start(dir.path(), &example_config(&dir.path().join("state")));
    for profile in ["snp-fra-1", "tdx-fra-1"] {
        let (s, b) = attest(&v.base, profile, Some(EU_WORKLOAD)).await;
        assert_eq!(s, 200, "{profile}: {b}");
    }
    for profile in ["snp-iad-1", "tdx-iad-1"] {
        let (s, b) = attest(&v.base, profile, Some(EU_WORKLOAD)).await;
        assert_refused(s, &b, "geofence_denied", 403);
    }
    for profile in ["snp-unregistered", "tdx-unregistered"] {
        let (s, b) = attest(&v.base, profile, Some(EU_WORKLOAD)).await;
        assert_refused(s, &b, "location_unknown", 403);
    }
    // Without a named workload, the first matching one (the EU model server) is chosen and fenced.
    let (s, b) = attest(&v.base, "snp-iad-1", None).await;
    assert_refused(s, &b, "geofence_denied", 403);
    // The unfenced workload is issued anywhere; residency is stated when known, omitted when not.
    let (s, b) = attest(&v.base, "snp-iad-1", Some(ANY_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    let w = verify_wit(&v.base, b["wit"].as_str().expect("wit"))
        .await
        .expect("verifies");
    assert_eq!(w.claims().extra["locus_residency"]["country"], "US");
    let (s, b) = attest(&v.base, "tdx-unregistered", Some(ANY_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    let w = verify_wit(&v.base, b["wit"].as_str().expect("wit"))
        .await
        .expect("verifies");
    assert!(!w.claims().extra.contains_key("locus_residency"));
}

/// The example config plus a workload whose reference value no simulator profile has.
fn config_with_unknown_measurement_workload(state: &std::path::Path) -> String {
    format!(
        "{}\n[[workload]]\nid = \"spiffe://locus.example/other\"\ntee = [\"sev-snp\"]\n[workload.sev-snp]\nmeasurement = [\"{}\"]\n",
        example_config(state),
        "ab".repeat(48)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_refusals_carry_their_codes() {
    let dir = tempdir();
    let v = Verifier::start(
        dir.path(),
        &config_with_unknown_measurement_workload(&dir.path().join("state")),
    );
    let cases = [
        (
            "snp-fra-1",
            Some("spiffe://locus.example/other"),
            "measurement_unknown",
            403,
        ),
        ("snp-debug", Some(EU_WORKLOAD), "debug_enabled", 403),
        ("tdx-debug", Some(EU_WORKLOAD), "debug_enabled", 403),
        ("snp-lowtcb", Some(EU_WORKLOAD), "tcb_below_minimum", 403),
        (
            "tdx-outofdate",
            Some(EU_WORKLOAD),
            "tcb_status_rejected",
            403,
        ),
        (
            "snp-fra-1",
            Some("spiffe://locus.example/not-configured"),
            "workload_unknown",
            403,
        ),
        (
            "snp-fra-1",
            Some("spiffe://other.example/model-server"),
            "identifier_invalid",
            400,
        ),
        (
            "snp-fra-1",
            Some("spiffe://locus.example/a/"),
            "identifier_invalid",
            400,
        ),
    ];
    for (profile, workload, code, http) in cases {
        let (s, b) = attest(&v.base, profile, workload).await;
        assert_refused(s, &b, code, http);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonce_and_binding_refusals_carry_their_codes() {
    let dir = tempdir();
    let state = dir.path().join("state");
    let v = Verifier::start(dir.path(), &example_config(&state));
    let agent = Agent::new();

    // A forged nonce: right shape, wrong MAC.
    let mut forged = challenge(&v.base).await;
    forged[30] ^= 0x55;
    let (s, b, ctype) = post_attest(&v.base, &agent.request("snp-fra-1", &forged, None)).await;
    assert_refused(s, &b, "nonce_invalid", 400);
    assert_eq!(ctype, "application/problem+json");

    // An expired nonce with a valid MAC (made with the replica's own key, issued long ago).
    let secret = std::fs::read(state.join("keys").join("challenge.key")).expect("challenge key");
    let old = ChallengeKey::new(&secret)
        .expect("key")
        .issue_with(now() - 1000, [7; 16]);
    let (s, b, _) = post_attest(&v.base, &agent.request("snp-fra-1", &old, None)).await;
    assert_refused(s, &b, "nonce_expired", 400);

    // Evidence bound to another key: the request presents a JWK other than the one in report_data.
    let nonce = challenge(&v.base).await;
    let ev = agent.evidence("tdx-fra-1", &nonce);
    let other = Agent::new();
    let (s, b, _) = post_attest(&v.base, &body_for(&ev, &nonce, &other.jwk, None)).await;
    assert_refused(s, &b, "report_data_mismatch", 403);

    // Evidence bound to another challenge.
    let nonce2 = challenge(&v.base).await;
    let (s, b, _) = post_attest(&v.base, &body_for(&ev, &nonce2, &agent.jwk, None)).await;
    assert_refused(s, &b, "report_data_mismatch", 403);

    // Garbage in the request.
    let (s, b, _) = post_attest(&v.base, &serde_json::json!({"nonce": "x"})).await;
    assert_refused(s, &b, "request_invalid", 400);
    let mut bad = agent.request("snp-fra-1", &challenge(&v.base).await, None);
    bad["evidence"] = Value::String(b64([1u8; 100]));
    let (s, b, _) = post_attest(&v.base, &bad).await;
    assert_refused(s, &b, "evidence_malformed", 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_evidence_without_simulator_trust_is_refused() {
    let dir = tempdir();
    let cfg =
        example_config(&dir.path().join("state")).replace("simulator = true", "simulator = false");
    let v = Verifier::start(dir.path(), &cfg);
    for profile in ["snp-fra-1", "tdx-fra-1"] {
        let (s, b) = attest(&v.base, profile, Some(EU_WORKLOAD)).await;
        assert_refused(s, &b, "simulated_evidence_untrusted", 403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_is_audited_and_counted_in_metrics() {
    let dir = tempdir();
    let state = dir.path().join("state");
    let v = Verifier::start(dir.path(), &example_config(&state));
    let (s, ok) = attest(&v.base, "snp-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200);
    let (s, _) = attest(&v.base, "snp-iad-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 403);
    let lines = audit_lines(&state);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let w = verify_wit(&v.base, ok["wit"].as_str().expect("wit"))
        .await
        .expect("verifies");
    assert_eq!(lines[0]["decision"], "issued");
    assert_eq!(lines[0]["jti"].as_str(), w.claims().jti.as_deref());
    assert_eq!(lines[0]["workload"], EU_WORKLOAD);
    assert_eq!(lines[0]["location"]["country"], "DE");
    assert_eq!(lines[1]["decision"], "refused");
    assert_eq!(lines[1]["code"], "geofence_denied");
    assert_eq!(lines[1]["location"]["country"], "US");
    assert!(lines[1]["platform"].is_string());
    let metrics = client()
        .get(format!("{}/metrics", v.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("locus_attest_outcomes_total{tee=\"sev-snp\",outcome=\"issued\"} 1"),
        "{metrics}"
    );
    assert!(metrics
        .contains("locus_attest_outcomes_total{tee=\"sev-snp\",outcome=\"geofence_denied\"} 1"));
    assert!(metrics.contains("locus_request_duration_seconds_bucket{route=\"/v1/attest\""));
    // The other endpoints.
    assert_eq!(get_json(&v.base, "/healthz").await["status"], "ok");
    assert_eq!(get_json(&v.base, "/readyz").await["status"], "ready");
    let openapi = get_json(&v.base, "/openapi.json").await;
    assert!(openapi["paths"]["/v1/attest"].is_object());
    let resp = client()
        .get(format!("{}/nope", v.base))
        .send()
        .await
        .expect("404");
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_config_serves_as_is_with_no_other_process() {
    // Exactly `locus-verifier serve --config examples/verifier.toml --listen 127.0.0.1:0` (state under target/).
    let dir = tempdir();
    let v = Verifier::start_file(
        &examples_dir().join("verifier.toml"),
        &dir.path().join("stderr"),
    );
    for profile in ["snp-fra-1", "tdx-fra-1"] {
        let (s, b) = attest(&v.base, profile, Some(EU_WORKLOAD)).await;
        assert_eq!(s, 200, "{profile}: {b}");
        verify_wit(&v.base, b["wit"].as_str().expect("wit"))
            .await
            .expect("verifies");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ear_can_be_a_cwt_that_verifies_with_the_served_keys() {
    let dir = tempdir();
    let cfg = example_config(&dir.path().join("state"))
        .replace("ear_format = \"jwt\"", "ear_format = \"cwt\"");
    let v = Verifier::start(dir.path(), &cfg);
    let (s, b) = attest(&v.base, "tdx-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["ear_type"]
        .as_str()
        .is_some_and(|t| t.starts_with("application/eat+cwt")));
    let jwks = Jwks::from_value(&get_json(&v.base, "/.well-known/jwks.json").await).expect("jwks");
    let ear = Ear::verify_cwt(&b64d(b["ear"].as_str().expect("ear")), &jwks, now())
        .expect("CWT EAR verifies");
    assert!(ear.submods.contains_key("tdx"));
}
