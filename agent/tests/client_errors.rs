//! The verifier client against a server that answers with canned bodies: every way an answer can be unusable maps
//! to its exact code.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use locus_agent::client::{AttestRequest, VerifierClient, MAX_RESPONSE_BYTES};

async fn canned(status: u16, content_type: &'static str, body: String) -> SocketAddr {
    let status = StatusCode::from_u16(status).expect("status");
    let handler = move || {
        let body = body.clone();
        async move { (status, [("content-type", content_type)], body).into_response() }
    };
    let app = Router::new()
        .route("/v1/challenge", post(handler.clone()))
        .route("/v1/attest", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn client(addr: SocketAddr) -> VerifierClient {
    VerifierClient::new(&format!("http://{addr}"), Duration::from_secs(5)).expect("client")
}

fn request() -> AttestRequest {
    AttestRequest {
        nonce: "AAAA".into(),
        tee: "sev-snp".into(),
        evidence: "AAAA".into(),
        certs: Vec::new(),
        jwk: serde_json::json!({}),
        workload: None,
        proximity: Vec::new(),
    }
}

#[tokio::test]
async fn problem_document_code_and_detail_are_kept() {
    let body = r#"{"type":"about:blank","title":"Forbidden","status":403,"detail":"TCB too low","code":"tcb_below_minimum"}"#;
    let c = client(canned(403, "application/problem+json", body.into()).await);
    let err = c.challenge().await.expect_err("refused");
    assert_eq!(err.code(), "tcb_below_minimum");
    assert!(err.to_string().contains("TCB too low"));
    let err = c.attest(&request()).await.expect_err("refused");
    assert_eq!(err.code(), "tcb_below_minimum");
}

#[tokio::test]
async fn unusable_answers_are_verifier_response_invalid() {
    let cases: Vec<(u16, &'static str, String)> = vec![
        (500, "text/plain", "oops".into()),
        (
            403,
            "application/problem+json",
            r#"{"title":"no code"}"#.into(),
        ),
        (403, "application/problem+json", r#"{"code":""}"#.into()),
        (200, "application/json", "not json".into()),
        (200, "application/json", r#"{"nonce":"not base64!"}"#.into()),
        (200, "application/json", r#"{"nonce":""}"#.into()),
        (
            200,
            "application/json",
            r#"{"expires_at":"2030-01-01T00:00:00Z"}"#.into(),
        ),
        (
            200,
            "application/json",
            format!(r#"{{"nonce":"{}"}}"#, "A".repeat(MAX_RESPONSE_BYTES)),
        ),
    ];
    for (status, ctype, body) in cases {
        let shown = body.chars().take(60).collect::<String>();
        let c = client(canned(status, ctype, body).await);
        let err = c.challenge().await.expect_err(&shown);
        assert_eq!(err.code(), "verifier_response_invalid", "{status} {shown}");
    }
    let c = client(canned(200, "application/json", r#"{"ear":"x"}"#.into()).await);
    let err = c.attest(&request()).await.expect_err("no wit");
    assert_eq!(err.code(), "verifier_response_invalid");
}

#[tokio::test]
async fn challenge_nonce_is_decoded_and_kept_as_sent() {
    let c = client(
        canned(
            200,
            "application/json",
            r#"{"nonce":"AAEC","expires_at":"x"}"#.into(),
        )
        .await,
    );
    let ch = c.challenge().await.expect("challenge");
    assert_eq!(ch.nonce_b64, "AAEC");
    assert_eq!(ch.nonce, vec![0, 1, 2]);
}
