//! Shared fixtures: the published examples of draft-ietf-wimse-workload-creds and draft-ietf-wimse-wpt and a generated issuer for negative tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::OnceLock;

use locus_wimse::b64;
use locus_wimse::jws::sign_compact;
use locus_wimse::wpt::WptRequest;
use locus_wimse::{
    create_wpt, Alg, Ed25519SigningKey, Es256SigningKey, Jwk, Jwks, JwsSigner, RelyingParty,
    RpConfig, TrustDomain, TrustStore, WitIssuer, WitPolicy, WorkloadId,
};
use serde_json::{Map, Value};

/// draft-ietf-wimse-workload-creds example.
pub const SPEC_WIT: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6Ikp1bmUgNSIsInR5cCI6IndpdCtqd3QifQ.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImt0eSI6Ik9LUCIsIngiOiIxQ1hYdmZsTl9MVlZzSXNZWHNVdkIwM0ptbEdXZUNIcVFWdW91Q0Y5MmJnIn19LCJleHAiOjE3NDU1MTI1MTAsImlhdCI6MTc0NTUwODkxMCwianRpIjoieC1fMUNUTDJjY2EzQ1NFNGN3Yl9sIiwic3ViIjoid2ltc2U6Ly9leGFtcGxlLmNvbS9zcGVjaWZpYy13b3JrbG9hZCJ9.6KraSQUxWdl9dxFQ3Fj6dPY0Vi88OkwFwZpAIOhLeq6AbXAnLLQgOp8U9UDGcBuYF3KiNv6oKQD1ZWAzrMZOJw";
/// draft-ietf-wimse-wpt example.
pub const SPEC_WPT: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IndwdCtqd3QifQ.eyJhdGgiOiJDTDR3amZwUm1OZi1iZFlJYllMblY5ZDVyTUFSR3dLWUUxMHdVd3pDMGpJIiwiYXVkIjoiaHR0cHM6Ly93b3JrbG9hZC5leGFtcGxlLmNvbS9wYXRoIiwiZXhwIjoxNzQ1NTEwMDE2LCJqdGkiOiJfX2J3YzRFU0MzYWNjMkxUQzEtX3giLCJ3dGgiOiJBYVlVZkMzNEQxZGkyRnhRTHBpSUpKN1NnOFZaNm84T0Nkd1NmOUlUb0xnIn0.PI7d9AcYhLoEgPgbJvcM132lkBKnM1NXU-5hZUzVTIyj2dRJaTLFs6e5NYv5gg6AqcV7NvkYCwfgMgWasWQzCA";
/// The Identity Server public key of the WIT example.
pub const SPEC_IS_JWK: &str = r#"{"kty":"EC","kid":"June 5","crv":"P-256","x":"kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks","y":"n__VndPMR021-59UAs0b9qDTFT-EZtT6xSNs_xFskLo"}"#;
/// Its private scalar.
pub const SPEC_IS_D: &str = "NRHs9bfMUcF49AV_NIoeh3UGopW4AXZLfv5G2px1WcY";
/// The workload (cnf) key of the WIT example.
pub const SPEC_WORKLOAD_X: &str = "1CXXvflN_LVVsIsYXsUvB03JmlGWeCHqQVuouCF92bg";
pub const SPEC_WORKLOAD_D: &str = "sdLX8yCYKqo_XvGBLn-ZWeKT7llYeeQpgeCaXVxb5kY";
/// The access token of the WPT example.
pub const SPEC_ACCESS_TOKEN: &str = "16_mAd0GiwaZokU26_0902100";
/// Inside both tokens' validity: WIT iat 1745508910..exp 1745512510, WPT exp 1745510016 (≤ 300 s ahead).
pub const SPEC_NOW: u64 = 1_745_509_800;

pub fn spec_is_key() -> Es256SigningKey {
    let jwk = Jwk::from_json(SPEC_IS_JWK).unwrap();
    Es256SigningKey::from_scalar_and_public(&b64::decode(SPEC_IS_D).unwrap(), &jwk.key)
        .unwrap()
        .with_kid("June 5")
}

pub fn spec_workload_key() -> Ed25519SigningKey {
    Ed25519SigningKey::from_seed_and_public(
        &b64::decode(SPEC_WORKLOAD_D).unwrap(),
        &b64::decode(SPEC_WORKLOAD_X).unwrap(),
    )
    .unwrap()
}

/// The spec's vectors and most negative tests use an Ed25519 proof-of-possession key, which the strict defaults
/// (ES256 only) refuse: they opt in to EdDSA explicitly, for the WIT's `cnf.jwk.alg` and the WPT.
pub fn allowing_eddsa(mut c: RpConfig) -> RpConfig {
    c.wit_policy = c.wit_policy.danger_allow_algs(&[Alg::EdDsa]);
    c.wpt_policy = c.wpt_policy.danger_allow_algs(&[Alg::EdDsa]);
    c
}

/// The WIT policy for the spec's WIT (`cnf.jwk.alg` EdDSA).
pub fn spec_wit_policy() -> WitPolicy {
    WitPolicy::default().danger_allow_algs(&[Alg::EdDsa])
}

/// A relying party for the spec's request: trust domain example.com with the Identity Server key, authority
/// https://workload.example.com, EdDSA allowed (the spec's workload key).
pub fn spec_rp() -> RelyingParty {
    let trust = TrustStore::new().with_keys(
        TrustDomain::parse("example.com").unwrap(),
        Jwks::new(vec![Jwk::from_json(SPEC_IS_JWK).unwrap()]),
    );
    RelyingParty::new(allowing_eddsa(RpConfig::new(
        trust,
        vec!["https://workload.example.com".into()],
    )))
    .unwrap()
}

/// The strict defaults, nothing opted in.
pub fn strict_rp() -> RelyingParty {
    RelyingParty::new(RpConfig::new(trust(), vec![AUTHORITY.into()])).unwrap()
}

/// The request of the WPT example (header names as written there).
pub fn spec_request(wit: &str, wpt: &str) -> Vec<(String, String)> {
    vec![
        ("Host".into(), "workload.example.com".into()),
        ("Content-Type".into(), "application/json".into()),
        (
            "Authorization".into(),
            format!("Bearer {SPEC_ACCESS_TOKEN}"),
        ),
        ("Workload-Identity-Token".into(), wit.into()),
        ("Workload-Proof-Token".into(), wpt.into()),
    ]
}

// ---- A generated world for negative tests ----

pub const NOW: u64 = 1_800_000_000;
pub const AUTHORITY: &str = "https://svc.example.com";
pub const TARGET: &str = "/orders?id=7";
pub const AUD: &str = "https://svc.example.com/orders";
pub const CTX_HEADER: &str = "x-ctx-token";

pub struct World {
    pub issuer: WitIssuer,
    pub other_domain_issuer: WitIssuer,
    pub workload_ed: Ed25519SigningKey,
    pub workload_es: Es256SigningKey,
    pub stranger_ed: Ed25519SigningKey,
}

pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| World {
        issuer: WitIssuer::new(
            Es256SigningKey::generate().unwrap().with_kid("issuer-1"),
            Some("https://verifier.example.com".into()),
        )
        .unwrap(),
        other_domain_issuer: WitIssuer::new(
            Es256SigningKey::generate().unwrap().with_kid("other-1"),
            None,
        )
        .unwrap(),
        workload_ed: Ed25519SigningKey::generate().unwrap(),
        workload_es: Es256SigningKey::generate().unwrap(),
        stranger_ed: Ed25519SigningKey::generate().unwrap(),
    })
}

pub fn trust() -> TrustStore {
    let w = world();
    TrustStore::new()
        .with_keys(
            TrustDomain::parse("example.com").unwrap(),
            Jwks::new(vec![w.issuer.public_jwk()]),
        )
        .with_keys(
            TrustDomain::parse("other.example").unwrap(),
            Jwks::new(vec![w.other_domain_issuer.public_jwk()]),
        )
}

/// The negative tests' configuration: defaults plus EdDSA ([`allowing_eddsa`]) and one context-token header.
pub fn config() -> RpConfig {
    let mut c = allowing_eddsa(RpConfig::new(trust(), vec![AUTHORITY.into()]));
    c.context_token_headers = vec![CTX_HEADER.into()];
    c
}

pub fn rp() -> RelyingParty {
    RelyingParty::new(config()).unwrap()
}

pub fn sub() -> WorkloadId {
    WorkloadId::parse("wimse://example.com/orders-client").unwrap()
}

/// A good WIT for the Ed25519 workload key.
pub fn good_wit() -> String {
    let w = world();
    w.issuer
        .issue(
            &sub(),
            &w.workload_ed.public_jwk(),
            NOW - 60,
            NOW + 3600,
            &Map::new(),
        )
        .unwrap()
        .0
}

/// A good WPT for `wit` with the Ed25519 workload key.
pub fn good_wpt(wit: &str) -> String {
    create_wpt(&world().workload_ed, &WptRequest::new(AUD, wit, NOW + 120)).unwrap()
}

pub fn headers(wit: &str, wpt: &str) -> Vec<(String, String)> {
    vec![
        ("Host".into(), "svc.example.com".into()),
        ("workload-identity-token".into(), wit.into()),
        ("Workload-Proof-Token".into(), wpt.into()),
    ]
}

/// Sign any header and claims with `signer` (for tokens our issuers would never produce).
pub fn forge(signer: &dyn JwsSigner, header: Value, claims: Value) -> String {
    sign_compact(signer, &header, &claims).unwrap()
}

/// Standard WIT claims for `sub` bound to `cnf`.
pub fn wit_claims(sub: &str, cnf: &Jwk) -> Value {
    serde_json::json!({
        "cnf": {"jwk": cnf.to_value()},
        "exp": NOW + 3600, "iat": NOW - 60, "jti": "j1", "iss": "https://verifier.example.com", "sub": sub
    })
}

/// Standard WPT claims for `wit`.
pub fn wpt_claims(wit: &str) -> Value {
    serde_json::json!({"aud": AUD, "exp": NOW + 120, "jti": "p1", "wth": locus_wimse::token_hash(wit)})
}

/// A token with `alg` set to anything, and a signature of bytes that are not a valid signature for it.
pub fn unsigned_with_alg(alg: &str, typ: &str, claims: &Value) -> String {
    let h = b64::encode(serde_json::to_vec(&serde_json::json!({"alg": alg, "typ": typ})).unwrap());
    let c = b64::encode(serde_json::to_vec(claims).unwrap());
    format!("{h}.{c}.{}", b64::encode([7u8; 32]))
}

pub fn none_alg(typ: &str, claims: &Value) -> String {
    let h =
        b64::encode(serde_json::to_vec(&serde_json::json!({"alg": "none", "typ": typ})).unwrap());
    let c = b64::encode(serde_json::to_vec(claims).unwrap());
    format!("{h}.{c}.")
}

/// HS256 over the signing input with a key the attacker picks (e.g. the issuer's public JWK as HMAC secret: the
/// classic algorithm-confusion attack).
pub fn hs256(typ: &str, claims: &Value, secret: &[u8]) -> String {
    let h =
        b64::encode(serde_json::to_vec(&serde_json::json!({"alg": "HS256", "typ": typ})).unwrap());
    let c = b64::encode(serde_json::to_vec(claims).unwrap());
    let input = format!("{h}.{c}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64::encode(tag.as_ref()))
}
