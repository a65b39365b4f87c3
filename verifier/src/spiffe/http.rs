//! The SPIFFE endpoints on the verifier's router (docs/api.md): `POST /v1/svid` (admitted, rate-limited and bounded
//! like `/v1/attest`), `GET /v1/spiffe/bundle`, `GET /v1/wimse/bundle`, `GET /.well-known/wimse-trust-domain`.
//!
//! `/v1/svid` audits every decision on a request whose WIT and request signature verified ([`svid::authenticate`]),
//! durably before the answer leaves, exactly as `/v1/attest` audits every decision past the nonce check; refusals
//! before that are logged at a limited rate and not audited.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use locus_wimse::Jwks;
use serde_json::Value;

use super::bundle;
use super::svid::{self, Authenticated, Kind, Signers};
use crate::service::audit::AuditRecord;
use crate::service::http::{
    audit_or_withhold, body_then_permit, json_response, now_unix, on_cpu, Problem,
};
use crate::service::keys::JWKS_MAX_AGE;
use crate::service::state::{Runtime, Service};
use crate::{ErrorCode, Refusal};

/// How often bundle consumers should refetch (`spiffe_refresh_hint`, `refresh_hint`, and the `Cache-Control`
/// max-age): the JWKS cache lifetime, which key pre-publication already allows for.
pub const REFRESH_HINT: std::time::Duration = JWKS_MAX_AGE;

fn cached(mut r: Response) -> Response {
    let cache = format!("public, max-age={}", REFRESH_HINT.as_secs());
    if let Ok(v) = HeaderValue::from_str(&cache) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    r
}

/// `GET /v1/spiffe/bundle`.
pub async fn spiffe_bundle(State(svc): State<Arc<Service>>) -> Response {
    let rt = svc.runtime();
    let b = bundle::spiffe_bundle(
        &rt.keys,
        &rt.jwt_svid_keys,
        &rt.spiffe_ca,
        now_unix(),
        rt.key_retention(),
        REFRESH_HINT,
    );
    cached(json_response(StatusCode::OK, &b))
}

/// `GET /v1/wimse/bundle`.
pub async fn wimse_bundle(State(svc): State<Arc<Service>>) -> Response {
    let rt = svc.runtime();
    let b = bundle::wimse_bundle(
        &rt.keys,
        &rt.spiffe_ca,
        now_unix(),
        rt.key_retention(),
        REFRESH_HINT,
    );
    cached(json_response(StatusCode::OK, &b))
}

/// `GET /.well-known/wimse-trust-domain`.
pub async fn discovery(State(svc): State<Arc<Service>>) -> Response {
    let rt = svc.runtime();
    let d = bundle::discovery(
        &rt.config.credentials.trust_domain,
        &rt.config.server.issuer,
    );
    cached(json_response(StatusCode::OK, &d))
}

/// The WIT keys published at `now` (they verify WITs and EARs alike).
fn wit_keys(rt: &Runtime, now: u64) -> Jwks {
    Jwks::new(
        rt.keys
            .published(now, rt.key_retention())
            .into_iter()
            .map(|k| k.jwk.clone())
            .collect(),
    )
}

/// `POST /v1/svid`.
pub async fn svid(State(svc): State<Arc<Service>>, headers: HeaderMap, body: Body) -> Response {
    let (bytes, _permit) = match body_then_permit(&svc, &headers, body).await {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    if !svc.audit.is_healthy() {
        return Problem(Refusal::new(
            ErrorCode::AuditUnavailable,
            "the audit log cannot be made durable; retry later",
        ))
        .into_response();
    }
    let rt = svc.runtime();
    let now = now_unix();

    // Who is asking, then what they may have: every signature check and signature on the blocking pool, in one trip.
    // Refusals before authentication are not audited (no WIT key proved); every decision after it is.
    let work = {
        let svc = svc.clone();
        move || -> Result<(Authenticated, Result<svid::Issued, Refusal>), Refusal> {
            let keys = wit_keys(&rt, now);
            let body = svid::parse_body(&bytes)?;
            let verifier = svid::wit_verifier(
                &rt.config.credentials.trust_domain,
                &rt.config.server.issuer,
                keys.clone(),
            )?;
            let auth = svid::authenticate(&body, &verifier, now)?;
            let result = svid::check(&auth, body.ear.as_deref(), &keys, &svc.svid_replay, now)
                .and_then(|order| {
                    let signers = Signers {
                        issuer: &rt.config.server.issuer,
                        wit: rt.issuer(now),
                        jwt: rt.jwt_svid_keys.active(now),
                        ca: rt.spiffe_ca.active(now),
                    };
                    svid::issue(&auth, &order, &signers, now)
                });
            Ok((auth, result))
        }
    };
    let (auth, result) = match on_cpu(&svc, work).await.and_then(|r| r) {
        Ok(x) => x,
        Err(refusal) => {
            if let Some(suppressed) = svc.junk_log.allow(now) {
                tracing::info!(
                    code = refusal.code.as_str(),
                    suppressed,
                    "svid request refused before authentication (not audited)"
                );
            }
            return Problem(refusal).into_response();
        }
    };
    let mut record = audit_record(&auth, now, &svc.replica);
    match &result {
        Ok(issued) => {
            record.decision = "issued";
            record.credential = Some(issued.kind.as_str());
            record.jti = Some(issued.id.clone());
            record.kid = Some(issued.kid.clone());
            record.exp = Some(issued.exp);
            record.svid_jkt = issued.svid_jkt.clone();
        }
        Err(refusal) => {
            record.decision = "refused";
            record.code = Some(refusal.code.as_str());
            record.message = Some(refusal.message.clone());
        }
    }
    let issued_id = result.as_ref().ok().map(|issued| issued.id.clone());
    if let Err(refused) = audit_or_withhold(&svc, &record, issued_id).await {
        return *refused;
    }
    match result {
        Ok(issued) => {
            tracing::info!(id = %issued.id, kind = issued.kind.as_str(), workload = %auth.wit.id(), "SVID issued");
            json_response(StatusCode::OK, &issued.body)
        }
        Err(refusal) => {
            tracing::info!(code = refusal.code.as_str(), detail = %refusal.message, "SVID refused");
            Problem(refusal).into_response()
        }
    }
}

/// The audit record of an authenticated SVID request, from the verified WIT only.
fn audit_record(auth: &Authenticated, now: u64, replica: &str) -> AuditRecord {
    let w = auth.wit.claims();
    let tee = w.extra.get("locus_tee");
    let text = |name: &str| {
        tee.and_then(|t| t.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    AuditRecord {
        ts: now,
        tee: svid::tee_of(&auth.wit),
        workload: Some(w.sub.as_str().to_string()),
        platform: text("platform"),
        simulated: tee
            .and_then(|t| t.get("simulated"))
            .and_then(Value::as_bool),
        measurement: text("measurement"),
        cnf_jkt: Some(auth.attested_jkt()),
        replica: Some(replica.to_string()),
        credential: auth
            .claims
            .get("kind")
            .and_then(Value::as_str)
            .and_then(Kind::parse)
            .map(Kind::as_str),
        ..Default::default()
    }
}
