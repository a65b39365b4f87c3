//! The HTTP API of DESIGN §7 on axum.
//!
//! Limits, outermost first: `/v1/*` requests take a permit from a semaphore without waiting (none free → 503
//! `overloaded` at once, nothing queues); bodies are read through a counting reader capped at `max_body_bytes`
//! (413 `request_too_large`, also decided up front from `Content-Length`); reading the body, fetching collateral and
//! appraising run under `request_timeout` (503 `overloaded` when it expires, before any credential exists);
//! appraisal runs on the blocking pool under a second semaphore so signature checks never stall the async workers.
//!
//! Every refusal is RFC 9457 `application/problem+json` carrying the stable `code`. Every `/v1/attest` decision past
//! body parsing is audited, and the audit record is durable before the answer leaves.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use locus_wimse::{Jwk, Jwks};
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit::{AuditLocation, AuditRecord};
use super::binding;
use super::config::Tee;
use super::issue::{self, IssueRequest};
use super::policy;
use super::residency::{self, PlatformIdentity};
use super::state::{Runtime, Service};
use crate::appraisal::{self, Facts, Verified};
use crate::{ErrorCode, Refusal};

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Unix seconds now. The one place the service reads the clock; checks get it as a parameter.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 (UTC, seconds) of a unix time.
pub fn rfc3339(t: u64) -> String {
    let t = i64::try_from(t).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A refusal as an HTTP answer.
#[derive(Debug)]
pub struct Problem(pub Refusal);

impl From<Refusal> for Problem {
    fn from(r: Refusal) -> Self {
        Problem(r)
    }
}

pub fn problem_response(code: ErrorCode, status: StatusCode, detail: &str) -> Response {
    let body = json!({
        "type": format!("https://locus.example/errors/{}", code.as_str()),
        "title": code.as_str().replace('_', " "),
        "status": status.as_u16(),
        "detail": detail,
        "code": code.as_str(),
    });
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        problem_response(self.0.code, status, &self.0.message)
    }
}

/// The router with every route and limit.
pub fn router(service: Arc<Service>) -> Router {
    let v1 = Router::new()
        .route("/v1/challenge", post(challenge))
        .route("/v1/attest", post(attest))
        .route_layer(middleware::from_fn_with_state(service.clone(), admit));
    Router::new()
        .merge(v1)
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(service.clone(), observe))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(service)
}

/// Metrics for every request.
async fn observe(State(svc): State<Arc<Service>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let start = Instant::now();
    svc.metrics.in_flight(1);
    let resp = next.run(req).await;
    svc.metrics.in_flight(-1);
    svc.metrics
        .request(&route, resp.status().as_u16(), start.elapsed());
    resp
}

/// Bounded concurrency without queueing.
async fn admit(State(svc): State<Arc<Service>>, req: Request, next: Next) -> Response {
    match svc.requests.clone().try_acquire_owned() {
        Ok(permit) => {
            let resp = next.run(req).await;
            drop(permit);
            resp
        }
        Err(_) => {
            let mut r = problem_response(
                ErrorCode::Overloaded,
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests in flight; retry with back-off",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

async fn not_found() -> Response {
    problem_response(
        ErrorCode::RequestInvalid,
        StatusCode::NOT_FOUND,
        "no such endpoint",
    )
}

/// Read at most `limit` bytes of body.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            ErrorCode::RequestTooLarge,
            format!("request body exceeds {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => break,
            Some(Err(e)) => {
                return Err(Refusal::new(
                    ErrorCode::RequestInvalid,
                    format!("reading the body: {e}"),
                ));
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    Ok(Bytes::from(buf))
}

fn b64url(s: &str, what: &str) -> Result<Vec<u8>, Refusal> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| {
            Refusal::new(
                ErrorCode::RequestInvalid,
                format!("{what} is not base64url: {e}"),
            )
        })
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

// ---------------------------------------------------------------------------------------------------------------

async fn challenge(State(svc): State<Arc<Service>>, headers: HeaderMap, body: Body) -> Response {
    match challenge_inner(&svc, &headers, body).await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(r) => Problem(r).into_response(),
    }
}

async fn challenge_inner(svc: &Service, headers: &HeaderMap, body: Body) -> Result<Value, Refusal> {
    let bytes = tokio::time::timeout(
        svc.request_timeout,
        read_body(headers, body, svc.max_body_bytes),
    )
    .await
    .map_err(|_| Refusal::new(ErrorCode::Overloaded, "request timed out reading the body"))??;
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Refusal::new(ErrorCode::RequestInvalid, format!("body is not JSON: {e}"))
        })?;
        if !v.is_object() {
            return Err(Refusal::new(
                ErrorCode::RequestInvalid,
                "body must be a JSON object ({})",
            ));
        }
    }
    let rt = svc.runtime();
    let now = now_unix();
    let nonce = rt.challenge.issue(now)?;
    let expires = now + rt.config.server.challenge_ttl.as_secs();
    Ok(json!({
        "nonce": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce),
        "expires_at": rfc3339(expires),
    }))
}

/// `POST /v1/attest` body (DESIGN §7). Unknown members are ignored for forward compatibility.
#[derive(Debug, Deserialize)]
struct AttestRequest {
    nonce: String,
    tee: String,
    evidence: String,
    #[serde(default)]
    certs: Vec<String>,
    jwk: Value,
    #[serde(default)]
    workload: Option<String>,
}

/// What is known about a decision so far, for its audit record.
#[derive(Default)]
struct Trail {
    tee: Option<&'static str>,
    workload: Option<String>,
    platform: Option<String>,
    location: Option<AuditLocation>,
    simulated: Option<bool>,
    measurement: Option<String>,
    cnf_jkt: Option<String>,
}

async fn attest(State(svc): State<Arc<Service>>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match tokio::time::timeout(
        svc.request_timeout,
        read_body(&headers, body, svc.max_body_bytes),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(r)) => return Problem(r).into_response(),
        Err(_) => {
            return Problem(Refusal::new(
                ErrorCode::Overloaded,
                "request timed out reading the body",
            ))
            .into_response()
        }
    };
    let rt = svc.runtime();
    let now = now_unix();
    let mut trail = Trail::default();
    let outcome = attest_inner(&svc, &rt, &bytes, now, &mut trail).await;
    let tee_label = trail.tee.unwrap_or("unknown");
    let loc = trail.location.take();
    match outcome {
        Ok(issued) => {
            let record = AuditRecord {
                ts: now,
                decision: "issued",
                code: None,
                message: None,
                tee: trail.tee,
                workload: trail.workload,
                platform: trail.platform,
                location: loc,
                simulated: trail.simulated,
                measurement: trail.measurement,
                jti: Some(issued.jti.clone()),
                kid: Some(issued.kid.clone()),
                exp: Some(issued.exp),
                cnf_jkt: trail.cnf_jkt,
                replica: Some(svc.replica.clone()),
            };
            if let Err(e) = svc.audit.append(&record).await {
                tracing::error!(error = %e, jti = %issued.jti, "audit write failed; credential withheld");
                svc.metrics
                    .decision(tee_label, ErrorCode::Internal.as_str());
                return Problem(Refusal::new(ErrorCode::Internal, "audit log unavailable"))
                    .into_response();
            }
            svc.metrics.decision(tee_label, "issued");
            tracing::info!(jti = %issued.jti, workload = ?record.workload, tee = tee_label, "WIT issued");
            let mut body = json!({
                "wit": issued.wit,
                "expires_at": rfc3339(issued.exp),
            });
            if let (Some(ear), Some(obj)) = (issued.ear, body.as_object_mut()) {
                obj.insert("ear".into(), Value::String(ear));
                if let Some(t) = issued.ear_type {
                    obj.insert("ear_type".into(), Value::String(t.to_string()));
                }
            }
            json_response(StatusCode::OK, &body)
        }
        Err(refusal) => {
            let record = AuditRecord {
                ts: now,
                decision: "refused",
                code: Some(refusal.code.as_str()),
                message: Some(refusal.message.clone()),
                tee: trail.tee,
                workload: trail.workload,
                platform: trail.platform,
                location: loc,
                simulated: trail.simulated,
                measurement: trail.measurement,
                cnf_jkt: trail.cnf_jkt,
                replica: Some(svc.replica.clone()),
                ..Default::default()
            };
            if let Err(e) = svc.audit.append(&record).await {
                tracing::error!(error = %e, "audit write failed");
                svc.metrics
                    .decision(tee_label, ErrorCode::Internal.as_str());
                return Problem(Refusal::new(ErrorCode::Internal, "audit log unavailable"))
                    .into_response();
            }
            svc.metrics.decision(tee_label, refusal.code.as_str());
            tracing::info!(code = refusal.code.as_str(), detail = %refusal.message, tee = tee_label, "attestation refused");
            Problem(refusal).into_response()
        }
    }
}

async fn attest_inner(
    svc: &Service,
    rt: &Arc<Runtime>,
    bytes: &[u8],
    now: u64,
    trail: &mut Trail,
) -> Result<issue::Issued, Refusal> {
    let cfg = &rt.config;
    let req: AttestRequest = serde_json::from_slice(bytes)
        .map_err(|e| Refusal::new(ErrorCode::RequestInvalid, format!("attest request: {e}")))?;
    let tee = Tee::parse(&req.tee).ok_or_else(|| {
        Refusal::new(
            ErrorCode::RequestInvalid,
            format!("tee {:?} is not sev-snp or tdx", req.tee),
        )
    })?;
    trail.tee = Some(tee.as_str());
    trail.workload = req.workload.clone();

    // Step 1: the challenge is ours and fresh.
    let nonce = b64url(&req.nonce, "nonce")?;
    rt.challenge.check(&nonce, now, cfg.server.challenge_ttl)?;

    // Step 2: the agent's key.
    let jwk = Jwk::from_value(&req.jwk)
        .map_err(|e| Refusal::new(ErrorCode::RequestInvalid, format!("jwk: {e}")))?;
    let thumbprint = jwk.thumbprint_sha256();
    trail.cnf_jkt = Some(jwk.thumbprint_b64());

    // Step 3: the evidence, appraised to the vendor (or trusted simulator) roots.
    let evidence = b64url(&req.evidence, "evidence")?;
    let certs = req
        .certs
        .iter()
        .enumerate()
        .map(|(i, c)| b64url(c, &format!("certs[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let verified = tokio::time::timeout(
        svc.request_timeout,
        appraise(svc, rt, tee, evidence, certs, now),
    )
    .await
    .map_err(|_| Refusal::new(ErrorCode::Overloaded, "appraisal timed out"))??;
    if verified.simulated() && !cfg.trust.simulator {
        // Appraisal already refuses simulator roots without trust; this is the belt to its braces.
        return Err(Refusal::new(
            ErrorCode::SimulatedEvidenceUntrusted,
            "evidence chains to a simulator root and trust.simulator is off",
        ));
    }
    let platform = PlatformIdentity {
        tee,
        id: match verified.facts() {
            Facts::Snp(f) => f.platform_identity(),
            Facts::Tdx(f) => f.ppid.clone(),
        },
    };
    trail.platform = Some(platform.digest_hex());
    trail.simulated = Some(verified.simulated());
    trail.measurement = Some(match verified.facts() {
        Facts::Snp(f) => hex::encode(f.measurement),
        Facts::Tdx(f) => hex::encode(f.mr_td),
    });

    // Step 4: the evidence was made for this challenge and this key.
    let report_data: &[u8] = match verified.facts() {
        Facts::Snp(f) => &f.report_data,
        Facts::Tdx(f) => &f.report_data,
    };
    binding::check(report_data, &nonce, &thumbprint)?;

    // Step 5: which workload, and its policy (debug, TCB, reference values).
    let location = residency::locate(cfg, &rt.endorsements, &platform, now);
    trail.location = location.as_ref().map(|l| AuditLocation {
        site: Some(l.site.clone()),
        country: Some(l.country.clone()),
        region: l.region.clone(),
        source: Some(l.sources.join("+")),
    });
    let workload = policy::select(cfg, req.workload.as_deref(), &verified)?;
    trail.workload = Some(workload.id.clone());

    // Step 6: residency and the geo-fence.
    residency::check_fence(workload, location.as_ref())?;

    // Step 7: the credential.
    issue::issue(
        &rt.issuer,
        rt.issuer.key(),
        &IssueRequest {
            workload,
            verified: &verified,
            platform: &platform,
            location: location.as_ref(),
            cnf: &jwk,
            nonce: &nonce,
            now,
            with_ear: cfg.credentials.ear,
            ear_format: cfg.credentials.ear_format,
            simulator_trusted: cfg.trust.simulator,
        },
    )
}

/// Collateral (async, cached) then appraisal on the blocking pool under the blocking semaphore.
async fn appraise(
    svc: &Service,
    rt: &Arc<Runtime>,
    tee: Tee,
    evidence: Vec<u8>,
    certs: Vec<Vec<u8>>,
    now: u64,
) -> Result<Verified<Facts>, Refusal> {
    let permit = svc
        .blocking
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Refusal::new(ErrorCode::Internal, "appraisal pool closed"))?;
    let anchors = rt.anchors.clone();
    match tee {
        Tee::SevSnp => {
            let e = rt
                .collateral
                .snp_endorsements(&evidence, &certs, now)
                .await?;
            let endorsements = appraisal::SnpEndorsements {
                vek_der: e.vek_der,
                ask_der: e.ask_der,
                ark_der: e.ark_der,
                crl_der: e.crl_der,
            };
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                appraisal::appraise_snp(&evidence, &endorsements, &anchors, now)
                    .map(Verified::<Facts>::from)
            })
            .await
            .map_err(|e| Refusal::new(ErrorCode::Internal, format!("appraisal task: {e}")))?
        }
        Tee::Tdx => {
            let c = rt.collateral.tdx_collateral(&evidence, now).await?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let collateral =
                    appraisal::TdxCollateral::from_parts(appraisal::TdxCollateralParts {
                        tcb_info_json: &c.tcb_info_json,
                        tcb_info_issuer_chain_pem: &c.tcb_info_issuer_chain_pem,
                        qe_identity_json: &c.qe_identity_json,
                        qe_identity_issuer_chain_pem: &c.qe_identity_issuer_chain_pem,
                        pck_crl_der: &c.pck_crl_der,
                        pck_crl_issuer_chain_pem: &c.pck_crl_issuer_chain_pem,
                        root_ca_crl_der: &c.root_ca_crl_der,
                    })?;
                appraisal::appraise_tdx(&evidence, &collateral, &anchors, now)
                    .map(Verified::<Facts>::from)
            })
            .await
            .map_err(|e| Refusal::new(ErrorCode::Internal, format!("appraisal task: {e}")))?
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------

async fn jwks(State(svc): State<Arc<Service>>) -> Response {
    let rt = svc.runtime();
    let keys = rt
        .keys
        .published(now_unix(), rt.key_retention())
        .into_iter()
        .map(|k| k.jwk.clone())
        .collect();
    let mut r = json_response(StatusCode::OK, &Jwks::new(keys).to_value());
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    r
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn readyz(State(svc): State<Arc<Service>>) -> Response {
    let rt = svc.runtime();
    let body = json!({
        "status": if svc.is_ready() { "ready" } else { "not ready" },
        "active_kid": rt.keys.active().kid,
        "workloads": rt.config.workloads.len(),
        "simulator_trusted": rt.config.trust.simulator,
    });
    let status = if svc.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body)
}

async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    let mut r = (StatusCode::OK, svc.metrics.render()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

async fn openapi() -> Response {
    let mut r = (StatusCode::OK, OPENAPI_JSON).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Decode a `POST /v1/attest` body the way [`attest_inner`] does before and around its checks (JSON shape, `tee`, the
/// base64url `nonce`, `evidence` and `certs`, the agent JWK), without the challenge, appraisal or issuance. For the
/// fuzz targets (`fuzz/entry`): the service decodes the same members step by step, interleaved with its checks.
#[doc(hidden)]
pub fn decode_attest_body(bytes: &[u8]) -> Result<(), Refusal> {
    let req: AttestRequest = serde_json::from_slice(bytes)
        .map_err(|e| Refusal::new(ErrorCode::RequestInvalid, format!("attest request: {e}")))?;
    Tee::parse(&req.tee)
        .ok_or_else(|| Refusal::new(ErrorCode::RequestInvalid, "tee is not sev-snp or tdx"))?;
    b64url(&req.nonce, "nonce")?;
    Jwk::from_value(&req.jwk)
        .map_err(|e| Refusal::new(ErrorCode::RequestInvalid, format!("jwk: {e}")))?;
    b64url(&req.evidence, "evidence")?;
    for (i, c) in req.certs.iter().enumerate() {
        b64url(c, &format!("certs[{i}]"))?;
    }
    let _ = req.workload;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_route_and_every_error_code() {
        let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON");
        for path in [
            "/v1/challenge",
            "/v1/attest",
            "/.well-known/jwks.json",
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        let codes: Vec<&str> = doc["components"]["schemas"]["Problem"]["properties"]["code"]
            ["enum"]
            .as_array()
            .expect("enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes, all);
    }

    #[test]
    fn problems_are_rfc9457_with_the_stable_code_and_its_status() {
        let resp = Problem(Refusal::new(ErrorCode::GeofenceDenied, "outside")).into_response();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let resp = Problem(Refusal::new(ErrorCode::RequestTooLarge, "big")).into_response();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let resp = Problem(Refusal::new(ErrorCode::Overloaded, "busy")).into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_600), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn base64url_accepts_unpadded_and_padded_and_refuses_other_alphabets() {
        assert_eq!(b64url("AQID", "x").expect("ok"), vec![1, 2, 3]);
        assert_eq!(b64url("AQ==", "x").expect("ok"), vec![1]);
        assert_eq!(
            b64url("a+b/", "x").map_err(|r| r.code),
            Err(ErrorCode::RequestInvalid)
        );
    }
}
