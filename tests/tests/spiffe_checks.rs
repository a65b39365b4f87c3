//! What the agent checks on an SVID the issuer returns before serving it (`locus_agent::spiffe::check`), with
//! certificates from a test CA: an X.509-SVID for another key or another identity, or with several URI SANs, is
//! refused as `verifier_response_invalid`; a JWT-SVID for another `sub` or lacking an audience; a WIT-SVID bound to
//! another key.

use locus_agent::spiffe::check;
use locus_agent::spiffe::key::SvidKey;
use locus_tests::spiffe::TestCa;
use locus_tests::unix_now;
use locus_wimse::jws::sign_compact;
use locus_wimse::Es256SigningKey;
use serde_json::json;

const ID: &str = "spiffe://example.org/svc";

#[test]
fn an_x509_svid_must_certify_the_per_svid_key_for_the_identity_alone() {
    let ca = TestCa::new("example.org");
    let key = SvidKey::generate().expect("key");
    let now = unix_now();
    let good = ca.leaf_for_point(&key.public_point(), &[ID], now - 60, now + 60);
    check::x509_svid(std::slice::from_ref(&good), ID, &key.public_point()).expect("accepted");
    let other_key = SvidKey::generate().expect("key");
    let refusals = [
        (
            vec![good.clone()],
            "spiffe://example.org/other",
            key.public_point(),
        ),
        (vec![good], ID, other_key.public_point()),
        (
            vec![ca.leaf_for_point(
                &key.public_point(),
                &[ID, "spiffe://example.org/b"],
                now - 60,
                now + 60,
            )],
            ID,
            key.public_point(),
        ),
        (vec![], ID, key.public_point()),
        (vec![b"junk".to_vec()], ID, key.public_point()),
    ];
    for (chain, id, point) in refusals {
        let err = check::x509_svid(&chain, id, &point).expect_err("refused");
        assert_eq!(err.code(), "verifier_response_invalid", "{err}");
    }
}

#[test]
fn a_jwt_svid_must_name_the_identity_and_every_audience_and_a_wit_svid_the_per_svid_key() {
    let signer = Es256SigningKey::generate().expect("key").with_kid("k");
    let jwt = |claims: serde_json::Value| {
        sign_compact(
            &signer,
            &json!({"alg":"ES256","kid":"k","typ":"JWT"}),
            &claims,
        )
        .expect("jwt")
    };
    let aud = vec!["https://a".to_string(), "https://b".to_string()];
    check::jwt_svid(
        &jwt(json!({"sub": ID, "aud": ["https://a", "https://b"]})),
        ID,
        &aud,
    )
    .expect("accepted");
    for claims in [
        json!({"sub": "spiffe://example.org/x", "aud": ["https://a", "https://b"]}),
        json!({"sub": ID, "aud": "https://a"}),
    ] {
        let err = check::jwt_svid(&jwt(claims), ID, &aud).expect_err("refused");
        assert_eq!(err.code(), "verifier_response_invalid");
    }
    let key = SvidKey::generate().expect("key");
    let other = SvidKey::generate().expect("key");
    let wit = jwt(json!({"sub": ID, "cnf": {"jwk": key.public_jwk().to_value()}}));
    check::wit_svid(&wit, ID, &key.public_jwk()).expect("accepted");
    assert_eq!(
        check::wit_svid(&wit, ID, &other.public_jwk())
            .expect_err("other key")
            .code(),
        "verifier_response_invalid"
    );
    assert_eq!(
        check::wit_svid(&wit, "spiffe://example.org/x", &key.public_jwk())
            .expect_err("other id")
            .code(),
        "verifier_response_invalid"
    );
}
