//! `POST /v1/http-sig` on the Workload API: an HTTP Message Signature (draft-ietf-wimse-http-signature, the
//! `locus_wimse::http_sig` profile) for one request the workload is about to send, signed in the agent with the WIT's
//! key — the alternative to `POST /v1/wpt`.
//!
//! The workload names the request's parts: method, target URI, the header fields to cover with their values, and the
//! body's `Content-Digest` (or the body, whose digest the agent computes). The agent builds the signature base itself
//! from those parts, always covering `@method`, `@request-target` and its own `Workload-Identity-Token`, and the
//! draft's `wimse-aud` from the target URI; it never signs bytes the workload hands it. A base always begins with
//! `"@method": `, so no signature made here can pass for a JWS (a WIT, WPT or SVID request), an attestation binding or
//! a proximity answer. Values that could forge base lines (control characters) are refused, as are fields the agent
//! sets itself (`workload-identity-token`, `signature`, `signature-input`, `content-digest`).
//!
//! Answer: the header fields to add to the request —
//! `{"headers":{"Workload-Identity-Token","Signature-Input","Signature","Content-Digest"?},"nonce","expires_at"}`;
//! `nonce` is what a signed response's `wimse-req-nonce` must echo.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use locus_wimse::http_sig::{self, HttpRequest, SignatureParams};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::credential::Credential;
use crate::run::{json_body, json_ok, problem, unavailable, ApiState};

/// Longest target URI.
pub const MAX_URI_LEN: usize = 2048;
/// Most header fields a workload may have covered.
pub const MAX_FIELDS: usize = 32;
/// Longest covered field value.
pub const MAX_FIELD_LEN: usize = 8192;
/// Fields the agent sets itself; a workload may not supply them.
pub const AGENT_FIELDS: &[&str] = &[
    "workload-identity-token",
    "signature",
    "signature-input",
    "content-digest",
];

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSigBody {
    /// `GET`, `POST`, …
    pub method: String,
    /// The absolute target URI, e.g. `https://orders.example/v1/orders?page=2`.
    pub target_uri: String,
    /// Header fields to cover (name → value); `content-type`, `authorization` and `txn-token` must be listed when the
    /// request carries them.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body's `Content-Digest` value (`sha-256=:…:`), when the request has a body.
    #[serde(default)]
    pub content_digest: Option<String>,
    /// Or the body itself, base64url: the agent computes `Content-Digest`.
    #[serde(default)]
    pub body: Option<String>,
    /// Ask the peer to sign its response (`wimse-sign-response`).
    #[serde(default)]
    pub sign_response: bool,
}

/// A refusal: HTTP status, code, detail.
type Refused = (StatusCode, &'static str, String);

fn invalid(detail: impl Into<String>) -> Refused {
    (StatusCode::BAD_REQUEST, "request_invalid", detail.into())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `(request-target, wimse-aud)` of an absolute URI: path and query; scheme, authority and path.
pub fn split_target(uri: &str) -> Result<(String, String), String> {
    if uri.is_empty() || uri.len() > MAX_URI_LEN {
        return Err(format!("target_uri must be 1 to {MAX_URI_LEN} characters"));
    }
    if uri.bytes().any(|b| b <= 0x20 || b == 0x7f) || !uri.is_ascii() {
        return Err("target_uri holds spaces, control or non-ASCII characters".into());
    }
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or("target_uri must be absolute (scheme://authority/path)")?;
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(format!("target_uri scheme {scheme:?} is not a URI scheme"));
    }
    let without_fragment = rest.split('#').next().unwrap_or_default();
    let auth_end = without_fragment
        .find(['/', '?'])
        .unwrap_or(without_fragment.len());
    let (authority, path_query) = without_fragment.split_at(auth_end);
    if authority.is_empty() || authority.contains('@') {
        return Err("target_uri needs a host and no userinfo".into());
    }
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    Ok((target, format!("{scheme}://{authority}{path}")))
}

fn digest_ok(value: &str) -> bool {
    let Ok(d) = http_sig::parse_dictionary(value) else {
        return false;
    };
    d.iter().any(|(alg, m)| match (alg.as_str(), m) {
        ("sha-256", http_sig::Member::Item(http_sig::Item::Bytes(b), _)) => b.len() == 32,
        ("sha-512", http_sig::Member::Item(http_sig::Item::Bytes(b), _)) => b.len() == 64,
        _ => false,
    })
}

/// Build and sign the signature for `body` with `cred` at `now`; the signature expires `lifetime` seconds later (never
/// after the WIT).
pub fn sign_for(
    cred: &Credential,
    body: &HttpSigBody,
    now: u64,
    lifetime: u64,
) -> Result<Value, Refused> {
    if !is_token(&body.method) || body.method.len() > 32 {
        return Err(invalid("method must be an HTTP method token"));
    }
    let (target, aud) = split_target(&body.target_uri).map_err(invalid)?;
    if body.headers.len() > MAX_FIELDS {
        return Err(invalid(format!("at most {MAX_FIELDS} headers")));
    }
    let mut req = HttpRequest::new(&body.method, &target);
    let mut extra: Vec<String> = Vec::new();
    for (name, value) in &body.headers {
        let lower = name.to_ascii_lowercase();
        if !is_token(name) {
            return Err(invalid(format!("{name:?} is not a header field name")));
        }
        if AGENT_FIELDS.contains(&lower.as_str()) {
            return Err(invalid(format!(
                "{lower} is set by the agent, not the workload"
            )));
        }
        if value.len() > MAX_FIELD_LEN
            || value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(invalid(format!(
                "the value of {lower} is too long or holds control characters"
            )));
        }
        if extra.contains(&lower) {
            return Err(invalid(format!("{lower} named twice")));
        }
        req = req.header(&lower, value);
        extra.push(lower);
    }
    let digest = match (&body.content_digest, &body.body) {
        (Some(_), Some(_)) => return Err(invalid("give content_digest or body, not both")),
        (Some(d), None) => {
            if d.len() > 512 || !digest_ok(d) {
                return Err(invalid(
                    "content_digest must be an RFC 9530 value with a sha-256 or sha-512 digest",
                ));
            }
            Some(d.clone())
        }
        (None, Some(b)) => {
            let bytes = locus_wimse::b64::decode(b)
                .map_err(|_| invalid("body must be base64url without padding"))?;
            Some(http_sig::content_digest(&bytes))
        }
        (None, None) => None,
    };
    if let Some(d) = &digest {
        req = req.header("content-digest", d);
    }
    req = req.header("workload-identity-token", cred.wit());
    let expires = now.saturating_add(lifetime).min(cred.exp());
    if expires <= now {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            crate::error::CREDENTIAL_UNAVAILABLE,
            "the WIT expires now".into(),
        ));
    }
    let nonce = locus_wimse::jws::random_jti().map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::error::INTERNAL,
            e.to_string(),
        )
    })?;
    let extra_refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut params = SignatureParams::for_request(&req, &extra_refs, &aud, now, expires, &nonce);
    params.wimse_sign_response = body.sign_response;
    let signed = cred.sign_http_request(&req, &params).map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::error::INTERNAL,
            e.to_string(),
        )
    })?;
    let mut headers = json!({
        "Workload-Identity-Token": cred.wit(),
        "Signature-Input": signed.signature_input,
        "Signature": signed.signature,
    });
    if let Some(d) = digest {
        headers["Content-Digest"] = Value::String(d);
    }
    Ok(json!({"headers": headers, "nonce": nonce, "expires_at": expires}))
}

/// `POST /v1/http-sig`.
pub(crate) async fn post_http_sig(
    State(app): State<ApiState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let parsed: HttpSigBody = match json_body(body) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let now = (app.clock)() as u64;
    let Some(cred) = app.slot.valid_at(now) else {
        return unavailable(&app.slot);
    };
    match sign_for(&cred, &parsed, now, app.wpt_lifetime) {
        Ok(v) => json_ok(v),
        Err((status, code, detail)) => problem(status, code, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::AttestResponse;
    use locus_wimse::http_sig::{verify_request, HttpSigPolicy};
    use locus_wimse::{
        Es256SigningKey, Jwks, ReplayCache, TrustStore, WitIssuer, WitPolicy, WitVerifier,
        WorkloadId,
    };

    const NOW: u64 = 1_800_000_000;

    fn credential() -> (Credential, WitVerifier) {
        let issuer = WitIssuer::new(
            Es256SigningKey::generate().expect("key").with_kid("k"),
            None,
        )
        .expect("issuer");
        let key = Es256SigningKey::generate().expect("key");
        let sub = WorkloadId::parse("spiffe://locus.example/api").expect("id");
        let (wit, _) = issuer
            .issue(
                &sub,
                &Credential::public_jwk_of(&key),
                NOW - 10,
                NOW + 3600,
                &Default::default(),
            )
            .expect("wit");
        let cred = Credential::from_response(
            AttestResponse {
                wit,
                ear: None,
                expires_at: None,
            },
            key,
            NOW,
        )
        .expect("credential");
        let trust =
            TrustStore::new().with_keys(sub.trust_domain(), Jwks::new(vec![issuer.public_jwk()]));
        (cred, WitVerifier::new(trust, WitPolicy::default()))
    }

    fn body(v: Value) -> HttpSigBody {
        serde_json::from_value(v).expect("body")
    }

    /// The request as the workload sends it with the agent's headers added, and what the relying party verifies.
    fn relying_party_check(
        answer: &Value,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        sent_body: Option<&[u8]>,
        verifier: &WitVerifier,
        now: u64,
    ) -> Result<SignatureParams, locus_wimse::WimseError> {
        let mut req = HttpRequest::new(method, target);
        for (n, v) in headers {
            req = req.header(n, v);
        }
        for (n, v) in answer["headers"].as_object().expect("headers") {
            req = req.header(n, v.as_str().expect("value"));
        }
        let wit = verifier
            .verify(
                answer["headers"]["Workload-Identity-Token"]
                    .as_str()
                    .expect("wit"),
                now,
            )
            .expect("WIT");
        verify_request(
            &wit,
            &req,
            sent_body,
            &["https://orders.example/v1/orders".to_string()],
            &HttpSigPolicy::default(),
            &ReplayCache::default(),
            now,
        )
    }

    #[test]
    fn the_agents_signature_verifies_at_the_relying_party_with_the_named_components() {
        let (cred, verifier) = credential();
        let payload = br#"{"item":"ice cream"}"#;
        let answer = sign_for(
            &cred,
            &body(json!({
                "method": "POST",
                "target_uri": "https://orders.example/v1/orders?page=2#frag",
                "headers": {"Content-Type": "application/json", "Authorization": "Bearer t0k"},
                "body": locus_wimse::b64::encode(payload),
            })),
            NOW,
            120,
        )
        .expect("signed");
        let p = relying_party_check(
            &answer,
            "POST",
            "/v1/orders?page=2",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer t0k"),
            ],
            Some(payload),
            &verifier,
            NOW,
        )
        .expect("verifies");
        assert_eq!(
            p.wimse_aud.as_deref(),
            Some("https://orders.example/v1/orders")
        );
        assert_eq!(p.expires, NOW + 120);
        assert_eq!(answer["nonce"], p.nonce.as_str());
        let names: Vec<&str> = p.covered.iter().map(|c| c.name.as_str()).collect();
        for must in [
            "@method",
            "@request-target",
            "workload-identity-token",
            "content-digest",
            "content-type",
            "authorization",
        ] {
            assert!(names.contains(&must), "{must} covered: {names:?}");
        }
        // The workload cannot send something else under this signature.
        assert_eq!(
            relying_party_check(
                &answer,
                "DELETE",
                "/v1/orders?page=2",
                &[
                    ("Content-Type", "application/json"),
                    ("Authorization", "Bearer t0k")
                ],
                Some(payload),
                &verifier,
                NOW,
            )
            .expect_err("another method")
            .code(),
            "signature_invalid"
        );
    }

    #[test]
    fn a_signature_never_outlives_the_wit() {
        let (cred, _) = credential();
        let answer = sign_for(
            &cred,
            &body(json!({"method": "GET", "target_uri": "https://orders.example/v1/orders"})),
            NOW + 3550,
            120,
        )
        .expect("signed");
        assert_eq!(answer["expires_at"], NOW + 3600);
    }

    #[test]
    fn bases_or_fields_the_agent_owns_and_line_breaks_are_refused_with_request_invalid() {
        let (cred, _) = credential();
        for bad in [
            json!({"method": "GET", "target_uri": "https://o.example/", "signature_base": "\"@method\": GET"}),
            json!({"method": "GET", "target_uri": "https://o.example/", "headers": {"Signature-Input": "x"}}),
            json!({"method": "GET", "target_uri": "https://o.example/", "headers": {"workload-identity-token": "x"}}),
            json!({"method": "GET", "target_uri": "https://o.example/", "headers": {"x-a": "1\n\"@method\": POST"}}),
            json!({"method": "GET", "target_uri": "https://o.example/", "headers": {"bad name": "1"}}),
            json!({"method": "G ET", "target_uri": "https://o.example/"}),
            json!({"method": "GET", "target_uri": "/relative"}),
            json!({"method": "GET", "target_uri": "https://user@o.example/"}),
            json!({"method": "POST", "target_uri": "https://o.example/", "body": "AA", "content_digest": "sha-256=:AA==:"}),
            json!({"method": "POST", "target_uri": "https://o.example/", "content_digest": "md5=:AA==:"}),
        ] {
            let refused = serde_json::from_value::<HttpSigBody>(bad.clone())
                .map_err(|e| invalid(e.to_string()))
                .and_then(|b| sign_for(&cred, &b, NOW, 120));
            let (status, code, _) = refused.expect_err("refused");
            assert_eq!(
                (status, code),
                (StatusCode::BAD_REQUEST, "request_invalid"),
                "{bad}"
            );
        }
    }

    #[test]
    fn target_uris_split_into_request_target_and_audience() {
        assert_eq!(
            split_target("https://a.example:8443/p/q?x=1#f").expect("ok"),
            (
                "/p/q?x=1".to_string(),
                "https://a.example:8443/p/q".to_string()
            )
        );
        assert_eq!(
            split_target("https://a.example").expect("ok"),
            ("/".to_string(), "https://a.example/".to_string())
        );
        assert_eq!(
            split_target("https://a.example?x").expect("ok"),
            ("/?x".to_string(), "https://a.example/".to_string())
        );
    }
}
