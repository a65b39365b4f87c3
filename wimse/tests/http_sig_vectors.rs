//! The examples of draft-ietf-wimse-http-signature (the -05 and later `includes/sigs-request.txt` and
//! `sigs-response.txt`, the first self-consistent ones; earlier revisions' signatures are stale): the request signed
//! by svc-a and the response signed by svc-b, both Ed25519. Their WITs are signed by an unpublished issuer key, so
//! only the HTTP signatures are checked here.

use locus_wimse::http_sig::*;
use locus_wimse::Ed25519SigningKey;

const REQ_SIGNATURE: &str = "wimse=:zSK+kx5EnoZct9FZ6LMYzfx0mk32oI/hHpB7y4rgHxkRDcAA72yBW5xgzA03nKviXLjL7nphq840Uwznp6IKAw==:";
const REQ_SIGNATURE_INPUT: &str = "wimse=(\"@method\" \"@request-target\" \"workload-identity-token\");created=1785155797;expires=1785156097;nonce=\"abcd1111\";tag=\"wimse-workload-to-workload\";wimse-aud=\"https://svcb.example.com/gimme-ice-cream\";wimse-sign-response";
const REQ_WIT: &str = "eyJhbGciOiJFZERTQSIsImtpZCI6Imlzc3Vlci1rZXkiLCJ0eXAiOiJ3aXQrand0In0.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImtpZCI6InN2Yy1hLWtleSIsImt0eSI6Ik9LUCIsIngiOiJaamxWVDRDT3NDa1FPOUhJbzZ0RFdBWGF5UTBNeW1vRlVLSlJJUTdTOFI4In19LCJleHAiOjE3ODUxNTYwOTcsImlhdCI6MTc4NTE1NTc5NywiaXNzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbS9pc3N1ZXIiLCJqdGkiOiJ3aXQtMTc4NTE1NTc5NzIxNjU0NTcxOSIsInN1YiI6IndpbXNlOi8vZXhhbXBsZS5jb20vc3ZjQSJ9.BqJfcsbrYlS9GSQ7NpFBBVz4CeszShqleIyr2sSnd0Ic6l2HXX27giZcdAOGnXjtv_7h-9vV16GZbVcrQt6hCg";
const RESP_SIGNATURE: &str = "wimse=:57ZChndLoz5toS+/0RGeQJG53gLrZD/bBterOWnHF1vb0cdceeUOKH/t4A+/bvquC/0VCb5DYFRdFNz4CW8yBQ==:";
const RESP_SIGNATURE_INPUT: &str = "wimse=(\"@status\" \"workload-identity-token\" \"content-type\" \"content-digest\" \"@method\";req \"@request-target\";req);created=1785155797;expires=1785156099;nonce=\"abcd2222\";tag=\"wimse-workload-to-workload\";wimse-req-nonce=\"abcd1111\"";
const RESP_WIT: &str = "eyJhbGciOiJFZERTQSIsImtpZCI6Imlzc3Vlci1rZXkiLCJ0eXAiOiJ3aXQrand0In0.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImtpZCI6InN2Yy1iLWtleSIsImt0eSI6Ik9LUCIsIngiOiJsQnRMUzhjTnRfN3BXc2RpMnhneDc2MGxXcHpFdnFZZTJEcFNrOUVMSDJ3In19LCJleHAiOjE3ODUxNTYwOTksImlhdCI6MTc4NTE1NTc5OSwiaXNzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbS9pc3N1ZXIiLCJqdGkiOiJ3aXQtMTc4NTE1NTc5NzIxNjY3MDUxOCIsInN1YiI6IndpbXNlOi8vZXhhbXBsZS5jb20vc3ZjQiJ9.HIAU2288ryXoym1M9fnKZqd0p2Vl7spOh-FY2jCFY-05H74-WPUFWrg5lH5f2rHl47TfxEGri3fmMP4zhYzeAw";
const RESP_CONTENT_DIGEST: &str = "sha-256=:UHKweBl9cpjdVqgTB65El8SexXlJYGG+XIslAYqC1mY=:";
const SVC_A_D: &str = "HQdG2ekHF4COyoHNYvCh2fMHhIaKvkrStjmyfndFyGI";
const SVC_A_X: &str = "ZjlVT4COsCkQO9HIo6tDWAXayQ0MymoFUKJRIQ7S8R8";
const SVC_B_D: &str = "nn132WU82duEPtUbQtoQLqWoC1hKl8zeWavCDIR0VeI";
const SVC_B_X: &str = "lBtLS8cNt_7pWsdi2xgx760lWpzEvqYe2DpSk9ELH2w";
/// The response body: the blank line before the example's closing fence is part of it.
const RESP_BODY: &[u8] = b"No ice cream today.\n\n";

fn key(d: &str, x: &str) -> Ed25519SigningKey {
    let d = locus_wimse::b64::decode(d).expect("d");
    let x = locus_wimse::b64::decode(x).expect("x");
    Ed25519SigningKey::from_seed_and_public(&d, &x).expect("Ed25519 key")
}

fn request() -> HttpRequest {
    HttpRequest::new("GET", "/gimme-ice-cream?flavor=vanilla")
        .header("Host", "svcb.example.com")
        .header("Signature", REQ_SIGNATURE)
        .header("Signature-Input", REQ_SIGNATURE_INPUT)
        .header("Workload-Identity-Token", REQ_WIT)
}

fn response() -> HttpResponse {
    HttpResponse::new(404)
        .header("Connection", "close")
        .header("Content-Digest", RESP_CONTENT_DIGEST)
        .header("Content-Type", "text/plain")
        .header("Signature", RESP_SIGNATURE)
        .header("Signature-Input", RESP_SIGNATURE_INPUT)
        .header("Workload-Identity-Token", RESP_WIT)
}

#[test]
fn the_drafts_request_signature_verifies_with_the_svc_a_key_and_not_another() {
    let req = request();
    let sig = received_signature(&req.headers).expect("signature");
    let a = key(SVC_A_D, SVC_A_X).public_key();
    verify_signature(Message::Request(&req), &sig, locus_wimse::Alg::EdDsa, &a).expect("verifies");
    let b = key(SVC_B_D, SVC_B_X).public_key();
    assert_eq!(
        verify_signature(Message::Request(&req), &sig, locus_wimse::Alg::EdDsa, &b)
            .expect_err("other key")
            .code(),
        "signature_invalid"
    );
    let p = sig.profile_params().expect("profile parameters");
    assert_eq!((p.created, p.expires), (1_785_155_797, 1_785_156_097));
    assert_eq!(p.nonce, "abcd1111");
    assert_eq!(
        p.wimse_aud.as_deref(),
        Some("https://svcb.example.com/gimme-ice-cream")
    );
    assert!(p.wimse_sign_response);
}

#[test]
fn signing_the_drafts_request_with_the_svc_a_key_reproduces_its_headers_byte_for_byte() {
    // Ed25519 is deterministic: the same base gives the same signature.
    let unsigned = HttpRequest::new("GET", "/gimme-ice-cream?flavor=vanilla")
        .header("Host", "svcb.example.com")
        .header("Workload-Identity-Token", REQ_WIT);
    let mut params = SignatureParams::for_request(
        &unsigned,
        &[],
        "https://svcb.example.com/gimme-ice-cream",
        1_785_155_797,
        1_785_156_097,
        "abcd1111",
    );
    params.wimse_sign_response = true;
    let out = sign(&key(SVC_A_D, SVC_A_X), Message::Request(&unsigned), &params).expect("sign");
    assert_eq!(out.signature_input, REQ_SIGNATURE_INPUT);
    assert_eq!(out.signature, REQ_SIGNATURE);
}

#[test]
fn the_drafts_response_signature_and_content_digest_verify_and_signing_reproduces_them() {
    let req = request();
    let resp = response();
    check_content_digest(RESP_CONTENT_DIGEST, RESP_BODY).expect("digest of the body");
    assert_eq!(content_digest(RESP_BODY), RESP_CONTENT_DIGEST);
    let sig = received_signature(&resp.headers).expect("signature");
    let b = key(SVC_B_D, SVC_B_X);
    verify_signature(
        Message::Response(&resp, &req),
        &sig,
        locus_wimse::Alg::EdDsa,
        &b.public_key(),
    )
    .expect("verifies");
    let p = sig.profile_params().expect("params");
    assert_eq!(p.wimse_req_nonce.as_deref(), Some("abcd1111"));

    // The request half of the base matters: another request target breaks it.
    let other = HttpRequest::new("GET", "/gimme-ice-cream?flavor=chocolate");
    assert_eq!(
        verify_signature(
            Message::Response(&resp, &other),
            &sig,
            locus_wimse::Alg::EdDsa,
            &b.public_key()
        )
        .expect_err("other request")
        .code(),
        "signature_invalid"
    );

    // The draft's covered order is not the order `for_response` picks; signing with the received parameters
    // reproduces the signature exactly.
    let unsigned = HttpResponse::new(404)
        .header("Content-Digest", RESP_CONTENT_DIGEST)
        .header("Content-Type", "text/plain")
        .header("Workload-Identity-Token", RESP_WIT);
    let mut params =
        SignatureParams::for_response(&unsigned, p.created, p.expires, &p.nonce, "abcd1111");
    params.covered = sig.covered.clone();
    let out = sign(&b, Message::Response(&unsigned, &req), &params).expect("sign");
    assert_eq!(out.signature_input, RESP_SIGNATURE_INPUT);
    assert_eq!(out.signature, RESP_SIGNATURE);
}

#[test]
fn a_tampered_body_fails_the_drafts_content_digest() {
    assert_eq!(
        check_content_digest(RESP_CONTENT_DIGEST, b"Plenty of ice cream.\n\n")
            .expect_err("tampered")
            .code(),
        "content_digest_mismatch"
    );
}
