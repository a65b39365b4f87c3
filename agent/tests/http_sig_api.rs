//! `POST /v1/http-sig` on a running agent (in-process, against the fake verifier): the workload names a request's
//! parts, the agent answers the header fields, and a relying party verifies the request with `locus-wimse` — the WIT,
//! then the HTTP Message Signature over what was actually sent. Refusals are problem documents with codes.
#![cfg(feature = "simulator")]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{now_f64, now_secs, uds_request, FakeVerifier};
use locus_agent::client::VerifierClient;
use locus_agent::run::{start, system_clock, PeerAllowList, RunConfig, RunParams};
use locus_agent::select::{open_attester, AttesterOptions, TeeChoice};
use locus_wimse::http_sig::{verify_request, HttpRequest, HttpSigPolicy};
use locus_wimse::ReplayCache;
use serde_json::{json, Value};

fn params(fv: &FakeVerifier, socket: &Path) -> RunParams {
    RunParams {
        client: VerifierClient::new(&fv.url(), Duration::from_secs(5)).expect("client"),
        attester: open_attester(&AttesterOptions {
            tee: TeeChoice::SimSnp,
            ..AttesterOptions::default()
        })
        .expect("attester"),
        cfg: RunConfig::default(),
        socket: socket.to_path_buf(),
        peers: PeerAllowList::default(),
        clock: system_clock(),
        spiffe: None,
    }
}

/// The request the workload sends: its own parts plus the agent's header fields.
fn sent(method: &str, target: &str, own: &[(&str, &str)], answer: &Value) -> HttpRequest {
    let mut req = HttpRequest::new(method, target);
    for (n, v) in own {
        req = req.header(n, v);
    }
    for (n, v) in answer["headers"].as_object().expect("headers") {
        req = req.header(n, v.as_str().expect("value"));
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_signed_through_the_workload_api_verifies_at_the_relying_party_and_nothing_else_does(
) {
    let fv = FakeVerifier::start(600).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    let agent = start(params(&fv, &socket)).await.expect("start");
    let deadline = now_f64() + 30.0;
    let wit = loop {
        let (status, _, body) = uds_request(&socket, "GET", "/v1/wit", None).await;
        if status == 200 {
            break body["wit"].as_str().expect("wit").to_string();
        }
        assert!(now_f64() < deadline, "no WIT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let payload = br#"{"order":42}"#;
    let ask = json!({
        "method": "POST",
        "target_uri": "https://orders.example/v1/orders?dry_run=1",
        "headers": {"content-type": "application/json", "txn-token": "txn.abc"},
        "body": locus_wimse::b64::encode(payload),
        "sign_response": true,
    });
    let (status, ctype, answer) = uds_request(&socket, "POST", "/v1/http-sig", Some(ask)).await;
    assert_eq!(
        (status, ctype.as_str()),
        (200, "application/json"),
        "{answer}"
    );
    assert_eq!(answer["headers"]["Workload-Identity-Token"], wit.as_str());

    let own = [
        ("content-type", "application/json"),
        ("txn-token", "txn.abc"),
    ];
    let req = sent("POST", "/v1/orders?dry_run=1", &own, &answer);
    let verified_wit = fv.wit_verifier().verify(&wit, now_secs()).expect("WIT");
    let audiences = ["https://orders.example/v1/orders".to_string()];
    let replay = ReplayCache::default();
    let verify = |req: &HttpRequest, body: &[u8]| {
        verify_request(
            &verified_wit,
            req,
            Some(body),
            &audiences,
            &HttpSigPolicy::default(),
            &replay,
            now_secs(),
        )
    };
    // Another body, or another Txn-Token, under the same signature: refused.
    assert_eq!(
        verify(&req, br#"{"order":43}"#).expect_err("body").code(),
        "content_digest_mismatch"
    );
    let other = sent(
        "POST",
        "/v1/orders?dry_run=1",
        &[
            ("content-type", "application/json"),
            ("txn-token", "txn.xyz"),
        ],
        &answer,
    );
    assert_eq!(
        verify(&other, payload).expect_err("txn-token").code(),
        "signature_invalid"
    );
    let p = verify(&req, payload).expect("verifies");
    assert!(p.wimse_sign_response);
    assert_eq!(answer["nonce"], p.nonce.as_str());
    // The same signed request again: a replay.
    assert_eq!(verify(&req, payload).expect_err("again").code(), "replayed");

    // The agent builds the base itself: a workload cannot hand it one, nor set the fields it owns.
    for bad in [
        json!({"method": "GET", "target_uri": "https://o.example/", "signature_base": "\"@method\": GET"}),
        json!({"method": "GET", "target_uri": "https://o.example/", "headers": {"signature-input": "x"}}),
        json!({"method": "GET", "target_uri": "https://o.example/", "headers": {"x-a": "1\r\n\"@method\": POST"}}),
    ] {
        let (status, ctype, body) = uds_request(&socket, "POST", "/v1/http-sig", Some(bad)).await;
        assert_eq!((status, ctype.as_str()), (400, "application/problem+json"));
        assert_eq!(body["code"], "request_invalid", "{body}");
    }
    agent.stop().await.expect("stop");
}
