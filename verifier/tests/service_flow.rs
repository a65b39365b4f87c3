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
    // Without a named workload, both example workloads match; the one marked default (the EU model server) is chosen
    // and fenced.
    let (s, b) = attest(&v.base, "snp-iad-1", None).await;
    assert_refused(s, &b, "geofence_denied", 403);
    // The unfenced workload is issued anywhere it is located; on a platform nobody located it is issued only because it
    // declares residency = "optional", and its WIT says residency was not established.
    let (s, b) = attest(&v.base, "snp-iad-1", Some(ANY_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    let w = verify_wit(&v.base, b["wit"].as_str().expect("wit"))
        .await
        .expect("verifies");
    assert_eq!(w.claims().extra["locus_residency"]["country"], "US");
    assert_eq!(w.claims().extra["locus_residency"]["granularity"], "host");
    assert_eq!(w.claims().extra["locus_residency"]["established"], true);
    let (s, b) = attest(&v.base, "tdx-unregistered", Some(ANY_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    let w = verify_wit(&v.base, b["wit"].as_str().expect("wit"))
        .await
        .expect("verifies");
    assert_eq!(w.claims().extra["locus_residency"]["established"], false);
    assert_eq!(w.claims().extra["locus_tee"]["measurement_scope"], "full");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn residency_is_required_unless_a_workload_declares_it_optional() {
    let dir = tempdir();
    let config = example_config(&dir.path().join("state"))
        .replace("ttl = 900\nresidency = \"optional\"", "ttl = 900");
    let v = Verifier::start(dir.path(), &config);
    for profile in ["snp-unregistered", "tdx-unregistered"] {
        let (s, b) = attest(&v.base, profile, Some(ANY_WORKLOAD)).await;
        assert_refused(s, &b, "location_unknown", 403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snp_tcb_status_is_derived_from_the_declared_current_tcb_and_carried_with_the_reported_values(
) {
    let dir = tempdir();
    let v = Verifier::start(dir.path(), &example_config(&dir.path().join("state")));
    let (s, b) = attest(&v.base, "snp-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    let w = verify_wit(&v.base, b["wit"].as_str().expect("wit"))
        .await
        .expect("verifies");
    let tee = &w.claims().extra["locus_tee"];
    assert_eq!(tee["tcb_status"], "UpToDate");
    assert_eq!(tee["revocation"], "checked");
    assert_eq!(tee["reported_tcb"]["snp"], 23);
    assert_eq!(tee["reported_tcb"]["microcode"], 213);
    // The low-TCB platform is OutOfDate for every workload of the example: never issued as UpToDate.
    for workload in [Some(EU_WORKLOAD), Some(ANY_WORKLOAD), None] {
        let (s, b) = attest(&v.base, "snp-lowtcb", workload).await;
        assert_refused(s, &b, "tcb_status_rejected", 403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_snp_crl_snp_attestations_are_refused_and_tdx_ones_still_issue() {
    let dir = tempdir();
    // A copy of the simulator PKI without the AMD CRLs.
    let pki = dir.path().join("sim-pki");
    copy_dir(&examples_dir().join("sim-pki"), &pki);
    for product in ["milan", "genoa", "turin"] {
        std::fs::remove_file(pki.join("snp").join(product).join("crl.der")).expect("remove crl");
    }
    let config = example_config(&dir.path().join("state")).replace(
        &format!("{:?}", examples_dir().join("sim-pki").display().to_string()),
        &format!("{:?}", pki.display().to_string()),
    );
    let v = Verifier::start(dir.path(), &config);
    let (s, b) = attest(&v.base, "snp-fra-1", Some(EU_WORKLOAD)).await;
    assert_refused(s, &b, "collateral_missing", 503);
    assert!(b["detail"].as_str().unwrap_or("").contains("CRL"), "{b}");
    let (s, b) = attest(&v.base, "tdx-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed25519_key_is_key_unsupported_and_two_matches_without_a_default_are_workload_ambiguous(
) {
    let dir = tempdir();
    let config = example_config(&dir.path().join("state")).replace("default = true\n", "");
    let v = Verifier::start(dir.path(), &config);
    // Ed25519 under a spiffe:// subject: excluded by the WIT-SVID profile, refused for every example workload.
    for workload in [EU_WORKLOAD, ANY_WORKLOAD] {
        let nonce = challenge(&v.base).await;
        let key = locus_wimse::Ed25519SigningKey::generate().expect("key");
        let jwk = locus_wimse::Jwk::new(key.public_key());
        let rd = locus_verifier::decision::binding::report_data(&nonce, &jwk.thumbprint_sha256());
        let ev = evidence_for("snp-fra-1", &rd);
        let (s, b, _) = post_attest(&v.base, &body_for(&ev, &nonce, &jwk, Some(workload))).await;
        assert_refused(s, &b, "key_unsupported", 400);
    }
    // Both example workloads match the simulator images; with no default among them, a request naming none is
    // ambiguous, never "the first one in the file".
    let (s, b) = attest(&v.base, "snp-fra-1", None).await;
    assert_refused(s, &b, "workload_ambiguous", 400);
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
        ("snp-lowtcb", Some(EU_WORKLOAD), "tcb_status_rejected", 403),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attest_answer_has_ear_members_exactly_when_ears_are_on() {
    let members = |b: &Value| {
        let mut keys: Vec<String> = b.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };
    let dir = tempdir();
    let v = Verifier::start(dir.path(), &example_config(&dir.path().join("state")));
    let (s, b) = attest(&v.base, "snp-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(members(&b), ["ear", "ear_type", "expires_at", "wit"]);
    let off = tempdir();
    let cfg = example_config(&off.path().join("state")).replace("ear = true", "ear = false");
    assert!(cfg.contains("ear = false"));
    let v = Verifier::start(off.path(), &cfg);
    let (s, b) = attest(&v.base, "snp-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(members(&b), ["expires_at", "wit"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vlek_platform_is_located_at_provider_granularity_and_the_audit_says_simulated_like_the_wit(
) {
    let dir = tempdir();
    let state = dir.path().join("state");
    // The simulator's VLEK profile is known only by its provider's cspID: registered with scope = "provider".
    let config = example_config(&state).replace(
        "# Zones name sets of countries",
        "[[platform]]\nname = \"sim-cloud\"\ntee = \"sev-snp\"\nid = \"vlek:locus-sim-cloud\"\nscope = \"provider\"\nsite = \"fra-1\"\n\n# Zones name sets of countries",
    );
    let v = Verifier::start(dir.path(), &config);
    let (s, b) = attest(&v.base, "snp-vlek", Some(ANY_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    let w = verify_wit(&v.base, b["wit"].as_str().expect("wit"))
        .await
        .expect("verifies");
    let residency = &w.claims().extra["locus_residency"];
    assert_eq!(residency["granularity"], "provider", "{residency}");
    assert_eq!(residency["site"], "fra-1");
    let simulated = w.claims().extra["locus_tee"]["simulated"].clone();
    assert_eq!(simulated, true);
    // The audit record of that issuance states the same `simulated` as the WIT (both come from the decision).
    let lines = audit_lines(&state);
    let issued = lines
        .iter()
        .find(|l| l["decision"] == "issued")
        .expect("an issued record");
    assert_eq!(issued["simulated"], simulated);
    assert_eq!(issued["workload"], ANY_WORKLOAD);
}
