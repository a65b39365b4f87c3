//! The landmark role and proximity statements over HTTP (docs/proximity.md, docs/api.md): the routes exist only on a
//! landmark, the upgrade needs its headers, the landmark key is created 0600 and published, and the attest body's
//! `proximity` member is decoded strictly while statements that do not count are ignored.

mod service_support;

use std::os::unix::fs::PermissionsExt as _;

use service_support::*;

const EU: &str = "spiffe://locus.example/model-server";

fn landmark_config(state: &std::path::Path) -> String {
    format!(
        "{}\n[landmark_role]\nenabled = true\nsite = \"fra-1\"\nrounds = 4\n",
        example_config(state)
    )
}

async fn get(base: &str, path: &str) -> (u16, serde_json::Value) {
    let resp = client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn a_verifier_without_the_landmark_role_has_no_landmark_routes() {
    let dir = tempdir();
    let v = Verifier::start(dir.path(), &example_config(&dir.path().join("state")));
    for path in ["/v1/proximity", "/v1/landmark"] {
        let (status, body) = get(&v.base, path).await;
        assert_refused(status, &body, "request_invalid", 404);
    }
}

#[tokio::test]
async fn a_landmark_publishes_its_key_created_0600_and_refuses_a_request_without_the_upgrade() {
    let dir = tempdir();
    let state = dir.path().join("state");
    let v = Verifier::start(dir.path(), &landmark_config(&state));
    let (status, body) = get(&v.base, "/v1/landmark").await;
    assert_eq!(status, 200, "{body}");
    let jwk = locus_wimse::Jwk::from_value(&body["jwk"]).expect("jwk");
    assert_eq!(body["id"], jwk.thumbprint_b64());
    assert_eq!(body["site"], "fra-1");
    assert_eq!(body["rounds"], 4);
    // The key exists once the verifier answers (it is created while the runtime is built).
    let key_file = state.join("keys/landmark.pk8");
    let mode = std::fs::metadata(&key_file)
        .expect("landmark key created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let (status, body) = get(&v.base, "/v1/proximity").await;
    assert_refused(status, &body, "request_invalid", 400);
}

#[tokio::test]
async fn the_attest_body_proximity_member_is_decoded_strictly_and_statements_that_do_not_count_are_ignored(
) {
    let dir = tempdir();
    let v = Verifier::start(dir.path(), &example_config(&dir.path().join("state")));
    let agent = Agent::new();

    let nonce = challenge(&v.base).await;
    let mut body = agent.request("snp-fra-1", &nonce, Some(EU));
    body["proximity"] = serde_json::json!(["not base64!"]);
    let (status, answer, _) = post_attest(&v.base, &body).await;
    assert_refused(status, &answer, "request_invalid", 400);

    body["proximity"] = serde_json::Value::Array(vec!["AAAA".into(); 17]);
    let (status, answer, _) = post_attest(&v.base, &body).await;
    assert_refused(status, &answer, "request_invalid", 400);

    // A statement from nobody this verifier trusts changes nothing: the EU workload is issued on its registry
    // location alone, without "proximity" in its sources.
    let nonce = challenge(&v.base).await;
    let mut body = agent.request("snp-fra-1", &nonce, Some(EU));
    body["proximity"] = serde_json::json!([b64(b"\xd2\x84\x40\xa0\x40\x40")]);
    let (status, answer, _) = post_attest(&v.base, &body).await;
    assert_eq!(status, 200, "{answer}");
    let wit = verify_wit(&v.base, answer["wit"].as_str().expect("wit"))
        .await
        .expect("WIT verifies");
    let residency = &wit.claims().extra["locus_residency"];
    assert_eq!(
        residency["sources"],
        serde_json::json!(["registry"]),
        "{residency}"
    );
    assert!(residency.get("max_distance_km").is_none(), "{residency}");
}
