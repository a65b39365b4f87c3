//! The HTTP API of docs/api.md on axum.
//!
//! Limits, outermost first: `/v1/*` requests take a permit from a semaphore without waiting (none free → 503
//! `overloaded` at once, nothing queues); bodies are read through a counting reader capped at `max_body_bytes`
//! (413 `request_too_large`, also decided up front from `Content-Length`); reading the body, fetching collateral and
//! appraising run under `request_timeout` (503 `overloaded` when it expires, before any credential exists);
//! appraisal runs on the blocking pool under a second semaphore so signature checks never stall the async workers.
//!
//! Every refusal is RFC 9457 `application/problem+json` carrying the stable `code`. Every `/v1/attest` decision past
//! body parsing is audited, and the audit record is durable before the answer leaves.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody as _};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use locus_wimse::{Jwk, Jwks};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use locus_hw::TeeType;

use super::audit::{AuditLocation, AuditRecord};
use super::issue::{self, IssueRequest};
use super::state::{Runtime, Service};
use crate::appraisal::{self, Facts, Verified};
use crate::decision::{self, decide, Context, Inputs};
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
        .route("/v1/svid", post(crate::spiffe::http::svid))
        .route("/v1/proximity", get(crate::proximity::service::upgrade))
        .route("/v1/landmark", get(crate::proximity::service::describe))
        .route_layer(middleware::from_fn_with_state(service.clone(), admit));
    Router::new()
        .merge(v1)
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/spiffe/bundle", get(crate::spiffe::http::spiffe_bundle))
        .route("/v1/wimse/bundle", get(crate::spiffe::http::wimse_bundle))
        .route(
            "/.well-known/wimse-trust-domain",
            get(crate::spiffe::http::discovery),
        )
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

/// Per-client admission control (token bucket): 429 `rate_limited` with `Retry-After`. The concurrency permit is
/// taken later, once the body has arrived ([`take_permit`]), so a slow body never holds one.
async fn admit(State(svc): State<Arc<Service>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let client = svc.admission.client(peer, req.headers());
    match svc.admission.check(client) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            svc.metrics.rate_limited();
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut r = problem_response(
                ErrorCode::RateLimited,
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests from this client; retry after the Retry-After delay",
            );
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

/// The body, read within its deadline ([`body_deadline`]): a body that arrives too slowly is `request_invalid`.
pub(crate) async fn read_body_in_time(
    svc: &Service,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Refusal> {
    tokio::time::timeout(
        body_deadline(svc, headers),
        read_body(headers, body, svc.max_body_bytes),
    )
    .await
    .map_err(|_| Refusal::new(ErrorCode::RequestInvalid, "the body arrived too slowly"))?
}

/// A request that does work: its body within the deadline first, then a concurrency permit ([`take_permit`]), so a
/// slow body never holds one.
pub(crate) async fn body_then_permit(
    svc: &Service,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, tokio::sync::OwnedSemaphorePermit), Box<Response>> {
    let bytes = read_body_in_time(svc, headers, body)
        .await
        .map_err(|r| Box::new(Problem(r).into_response()))?;
    let permit = take_permit(svc)?;
    Ok((bytes, permit))
}

/// Bounded concurrency without queueing, taken once the request body is in: none free → 503 `overloaded` at once.
pub(crate) fn take_permit(
    svc: &Service,
) -> Result<tokio::sync::OwnedSemaphorePermit, Box<Response>> {
    svc.requests.clone().try_acquire_owned().map_err(|_| {
        let mut r = problem_response(
            ErrorCode::Overloaded,
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in flight; retry with back-off",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        Box::new(r)
    })
}

/// How long a body may take: 2 s, plus its announced length at the minimum rate, capped by the request timeout.
pub(crate) fn body_deadline(svc: &Service, headers: &HeaderMap) -> std::time::Duration {
    let len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(svc.max_body_bytes as u64)
        .min(svc.max_body_bytes as u64);
    let grace = std::time::Duration::from_secs(2)
        + std::time::Duration::from_millis(
            len.saturating_mul(1000) / svc.body_min_bytes_per_sec.max(1),
        );
    grace.min(svc.request_timeout)
}

async fn not_found() -> Response {
    problem_response(
        ErrorCode::RequestInvalid,
        StatusCode::NOT_FOUND,
        "no such endpoint",
    )
}

/// Read at most `limit` bytes of body.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Refusal> {
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

/// `what` names the member in the refusal; it is only rendered when there is one.
fn b64url(s: &str, what: impl std::fmt::Display) -> Result<Vec<u8>, Refusal> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| {
            Refusal::new(
                ErrorCode::RequestInvalid,
                format!("{what} is not base64url: {e}"),
            )
        })
}

pub(crate) fn json_response(status: StatusCode, v: &impl Serialize) -> Response {
    // Straight to bytes: `Value`'s Display goes through the formatter, one `write_str` per token.
    let body = match serde_json::to_vec(v) {
        Ok(body) => body,
        Err(e) => {
            return Problem(Refusal::new(
                ErrorCode::Internal,
                format!("response JSON: {e}"),
            ))
            .into_response()
        }
    };
    let mut r = (status, body).into_response();
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
    let bytes = read_body_in_time(svc, headers, body).await?;
    let mut workload = None;
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
        workload = match v.get("workload") {
            None | Some(Value::Null) => None,
            Some(Value::String(w)) => Some(w.clone()),
            Some(_) => {
                return Err(Refusal::new(
                    ErrorCode::RequestInvalid,
                    "workload must be a string",
                ))
            }
        };
    }
    let rt = svc.runtime();
    let now = now_unix();
    let nonce = rt.challenge.issue(now)?;
    let expires = now + rt.config.server.challenge_ttl.as_secs();
    let mut answer = json!({
        "nonce": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce),
        "expires_at": rfc3339(expires),
    });
    // The landmarks the workload's fence needs statements from (docs/proximity.md); absent when none.
    let landmarks: Vec<Value> = rt
        .config
        .landmarks_for(workload.as_deref())
        .into_iter()
        .map(|l| json!({"name": l.name, "url": l.url, "id": locus_wimse::b64::encode(l.id)}))
        .collect();
    if let (false, Some(obj)) = (landmarks.is_empty(), answer.as_object_mut()) {
        obj.insert("landmarks".into(), Value::Array(landmarks));
    }
    Ok(answer)
}

/// `POST /v1/attest` body (docs/api.md). Unknown members are ignored for forward compatibility.
///
/// The base64url members are borrowed from the body where they need no unescaping (always, for base64url), so the
/// several kilobytes of evidence and certificates are decoded straight from the bytes received.
#[derive(Debug, Deserialize)]
struct AttestRequest<'a> {
    #[serde(borrow)]
    nonce: Cow<'a, str>,
    #[serde(borrow)]
    tee: Cow<'a, str>,
    #[serde(borrow)]
    evidence: Cow<'a, str>,
    #[serde(default, borrow)]
    certs: Vec<Text<'a>>,
    jwk: Value,
    #[serde(default)]
    workload: Option<String>,
    /// Proximity statements (COSE_Sign1, base64url) from landmarks (docs/proximity.md).
    #[serde(default, borrow)]
    proximity: Vec<Text<'a>>,
}

/// A JSON string in a list, borrowed from the body unless it had escapes (serde borrows a `Cow` only as a field).
#[derive(Debug, Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Most proximity statements one attest request may carry.
pub const MAX_PROXIMITY_STATEMENTS: usize = 16;

/// A `POST /v1/attest` body with every member in the type the service uses.
#[derive(Debug)]
pub struct DecodedAttest {
    pub tee: TeeType,
    pub nonce: Vec<u8>,
    pub jwk: Jwk,
    pub evidence: Vec<u8>,
    pub certs: Vec<Vec<u8>>,
    /// Untrusted text; the decision parses it.
    pub workload: Option<String>,
    /// Proximity statements as received (COSE_Sign1 bytes); the decision verifies them.
    pub proximity: Vec<Vec<u8>>,
}

/// Decode a `POST /v1/attest` body: JSON shape, `tee`, the base64url `nonce`, `evidence` and `certs`, the agent JWK.
/// The one decoder of the body (the service and the `attest_request` fuzz target use it); `request_invalid` on any
/// malformed member.
pub fn decode_attest_body(bytes: &[u8]) -> Result<DecodedAttest, Refusal> {
    let req: AttestRequest = serde_json::from_slice(bytes)
        .map_err(|e| Refusal::new(ErrorCode::RequestInvalid, format!("attest request: {e}")))?;
    let tee = req.tee.parse::<TeeType>().map_err(|_| {
        Refusal::new(
            ErrorCode::RequestInvalid,
            "tee is not \"sev-snp\" or \"tdx\"",
        )
    })?;
    let nonce = b64url(&req.nonce, "nonce")?;
    let jwk = Jwk::from_value(&req.jwk)
        .map_err(|e| Refusal::new(ErrorCode::RequestInvalid, format!("jwk: {e}")))?;
    let evidence = b64url(&req.evidence, "evidence")?;
    let certs = req
        .certs
        .iter()
        .enumerate()
        .map(|(i, c)| b64url(&c.0, format_args!("certs[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    if req.proximity.len() > MAX_PROXIMITY_STATEMENTS {
        return Err(Refusal::new(
            ErrorCode::RequestInvalid,
            format!("at most {MAX_PROXIMITY_STATEMENTS} proximity statements"),
        ));
    }
    let proximity = req
        .proximity
        .iter()
        .enumerate()
        .map(|(i, p)| b64url(&p.0, format_args!("proximity[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DecodedAttest {
        tee,
        nonce,
        jwk,
        evidence,
        certs,
        workload: req.workload,
        proximity,
    })
}

/// How one attestation ended, as far as the audit record is concerned.
struct Outcome {
    /// What the decision (or, for a refusal before it, the transport) established.
    context: Context,
    /// The request passed the nonce check: its decision is audited durably (docs/operations.md#audit-log). Refusals before it
    /// (malformed, bad or expired nonce) are counted and logged at a limited rate only, so junk cannot flood the log.
    past_nonce: bool,
    result: Result<issue::Issued, Refusal>,
    /// The decision's audit record, written by the appraisal pool, and whether it is durable (`None`: refused before
    /// the decision; the handler writes the record).
    audited: Option<Audited>,
}

/// An audit record and whether it was made durable.
type Audited = (AuditRecord, std::io::Result<()>);

/// At most one log line per second for requests refused before the nonce check, with the count suppressed since.
#[derive(Debug, Default)]
pub struct LogLimiter {
    last_second: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
}

impl LogLimiter {
    /// Whether to log now; returns the number of lines suppressed before this one when it does.
    pub fn allow(&self, now: u64) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let last = self.last_second.load(Ordering::Relaxed);
        if now > last
            && self
                .last_second
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

async fn attest(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (bytes, _permit) = match body_then_permit(&svc, &headers, body).await {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    if !svc.audit.is_healthy() {
        // Every decision past the nonce check must be durable before it is answered: none can be now.
        svc.metrics
            .decision("unknown", ErrorCode::AuditUnavailable.as_str());
        return Problem(Refusal::new(
            ErrorCode::AuditUnavailable,
            "the audit log cannot be made durable; retry later",
        ))
        .into_response();
    }
    let rt = svc.runtime();
    let now = now_unix();
    // The client for the collateral budgets: the same identity admission control uses.
    let client = svc.admission.client(peer, &headers);
    let Outcome {
        context,
        past_nonce,
        result,
        audited,
    } = attest_inner(&svc, &rt, &bytes, now, client).await;
    let tee_label = context.tee.map(|t| t.as_str()).unwrap_or("unknown");
    if !past_nonce {
        let refusal = match result {
            Err(r) => r,
            Ok(_) => Refusal::new(ErrorCode::Internal, "issued without a nonce check"),
        };
        svc.metrics.decision(tee_label, refusal.code.as_str());
        if let Some(suppressed) = svc.junk_log.allow(now) {
            tracing::info!(
                code = refusal.code.as_str(),
                suppressed,
                "request refused before the nonce check (not audited)"
            );
        }
        return Problem(refusal).into_response();
    }
    let (record, durable) = match audited {
        Some(audited) => audited,
        None => {
            let record = decision_record(
                &context,
                now,
                &svc.replica,
                result.as_ref().map(|issued| &issued.planned),
            );
            let durable = svc.audit.append(&record).await;
            (record, durable)
        }
    };
    let issued_jti = result
        .as_ref()
        .ok()
        .map(|issued| issued.planned.jti.clone());
    if let Err(refused) = withhold_unless_durable(&svc, &record, durable, issued_jti) {
        svc.metrics
            .decision(tee_label, ErrorCode::AuditUnavailable.as_str());
        return *refused;
    }
    match result {
        Ok(issued) => {
            svc.metrics.decision(tee_label, "issued");
            tracing::info!(jti = %issued.planned.jti, workload = ?record.workload, tee = tee_label, "WIT issued");
            json_response(
                StatusCode::OK,
                &Issuance {
                    wit: &issued.wit,
                    expires_at: rfc3339(issued.planned.exp),
                    ear: issued.ear.as_deref(),
                    ear_type: issued.ear.as_ref().and(issued.ear_type),
                },
            )
        }
        Err(refusal) => {
            svc.metrics.decision(tee_label, refusal.code.as_str());
            tracing::info!(code = refusal.code.as_str(), detail = %refusal.message, tee = tee_label, "attestation refused");
            Problem(refusal).into_response()
        }
    }
}

/// The body of `200 /v1/attest` (docs/api.md): members in this order, `ear` and `ear_type` only with an EAR.
#[derive(Serialize)]
struct Issuance<'a> {
    wit: &'a str,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ear: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ear_type: Option<&'a str>,
}

/// Make a decision's audit record durable before its answer leaves. When it cannot be, the answer is
/// `audit_unavailable`, and a credential that was signed (`issued_id`) is recorded as withheld once the log recovers.
pub(crate) async fn audit_or_withhold(
    svc: &Arc<Service>,
    record: &AuditRecord,
    issued_id: Option<String>,
) -> Result<(), Box<Response>> {
    withhold_unless_durable(svc, record, svc.audit.append(record).await, issued_id)
}

/// [`audit_or_withhold`] once the write's outcome is known.
fn withhold_unless_durable(
    svc: &Arc<Service>,
    record: &AuditRecord,
    durable: std::io::Result<()>,
    issued_id: Option<String>,
) -> Result<(), Box<Response>> {
    let Err(e) = durable else {
        return Ok(());
    };
    tracing::error!(error = %e, "audit write failed; answer withheld");
    if let Some(id) = issued_id {
        mark_withheld(svc.clone(), record.clone(), id, Withheld::Unrecorded);
    }
    Err(Box::new(
        Problem(Refusal::new(
            ErrorCode::AuditUnavailable,
            "the audit log cannot be made durable; nothing was issued",
        ))
        .into_response(),
    ))
}

/// Why a credential named by an `issued` record was never sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Withheld {
    /// Its record could not be made durable, or its caller had gone when it was (the record's code stays
    /// `audit_unavailable` in both cases, as before).
    Unrecorded,
    /// Its signature failed after the record was written.
    Unsigned,
}

/// Record, once the log is durable again, that the credential `jti` was never sent (its own record may or may not have
/// reached the disk before the failure). Retried for a few minutes; a log that stays broken loses only this marker.
pub(crate) fn mark_withheld(
    svc: Arc<Service>,
    mut record: AuditRecord,
    jti: String,
    why: Withheld,
) {
    record.decision = "withheld";
    let (code, message) = match why {
        Withheld::Unrecorded => (
            ErrorCode::AuditUnavailable,
            "credential never sent: its audit record could not be made durable",
        ),
        Withheld::Unsigned => (
            ErrorCode::Internal,
            "credential never made: signing failed after its record was written",
        ),
    };
    record.code = Some(code.as_str());
    record.message = Some(message.into());
    record.jti = Some(jti);
    tokio::spawn(async move {
        for _ in 0..300 {
            if svc.audit.is_healthy() && svc.audit.append(&record).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        tracing::error!(jti = ?record.jti, "could not record a withheld credential");
    });
}

/// The audit record of a decision: built from its [`Context`], never from raw request fields.
fn audit_record(context: &Context, now: u64, replica: &str) -> AuditRecord {
    AuditRecord {
        ts: now,
        tee: context.tee.map(|t| t.as_str()),
        workload: context.workload.clone(),
        platform: context.platform.clone(),
        location: context.location.as_ref().map(|l| AuditLocation {
            site: Some(l.site.clone()),
            country: Some(l.country.clone()),
            region: l.region.clone(),
            source: Some(l.sources.join("+")),
        }),
        simulated: context.simulated,
        measurement: context.measurement.clone(),
        cnf_jkt: context.cnf_jkt.clone(),
        replica: Some(replica.to_string()),
        ..Default::default()
    }
}

/// The audit record of a decision: an issuance under its planned `jti`, `kid` and `exp`, or a refusal with its code.
fn decision_record(
    context: &Context,
    now: u64,
    replica: &str,
    result: Result<&issue::Planned, &Refusal>,
) -> AuditRecord {
    let mut record = audit_record(context, now, replica);
    match result {
        Ok(planned) => {
            record.decision = "issued";
            record.jti = Some(planned.jti.clone());
            record.kid = Some(planned.kid.clone());
            record.exp = Some(planned.exp);
        }
        Err(refusal) => {
            record.decision = "refused";
            record.code = Some(refusal.code.as_str());
            record.message = Some(refusal.message.clone());
        }
    }
    record
}

/// Transport for one attestation: parse, check the nonce, fetch collateral and appraise off the async workers, ask the
/// decision, sign what it allows.
async fn attest_inner(
    svc: &Arc<Service>,
    rt: &Arc<Runtime>,
    bytes: &[u8],
    now: u64,
    client: std::net::IpAddr,
) -> Outcome {
    let mut context = Context::default();
    let mut past_nonce = false;
    let mut audited = None;
    let result = async {
        let cfg = &rt.config;
        // The body, every member decoded (malformed → refused before the nonce check, so not audited).
        let req = decode_attest_body(bytes)?;
        context.tee = Some(req.tee);
        context.cnf_jkt = Some(req.jwk.thumbprint_b64());

        // The challenge is ours and fresh.
        rt.challenge
            .check(&req.nonce, now, cfg.server.challenge_ttl)?;
        past_nonce = true;

        // The evidence's collateral (async, cached), then in one trip to the blocking pool: the appraisal to the
        // vendor (or trusted simulator) roots, the decision and the credential's signatures. Both under the request
        // deadline.
        let deadline = tokio::time::Instant::now() + svc.request_timeout;
        let overloaded = |_| Refusal::new(ErrorCode::Overloaded, "appraisal timed out");
        let gathered = tokio::time::timeout_at(
            deadline,
            gather(rt, req.tee, req.evidence, req.certs, now, client),
        )
        .await
        .map_err(overloaded)??;
        let (nonce, jwk, workload) = (req.nonce, req.jwk, req.workload);
        let proximity = req.proximity;
        let rt = rt.clone();
        let (audit, replica) = (svc.audit.clone(), svc.replica.clone());
        // The answer comes back once: after the decision's record is durable (for an issuance, once its signatures
        // are made too, which happens while the record is written), or straight from the pool for a refusal before
        // the decision (its record is written below, by the handler).
        let (answer, answered) = tokio::sync::oneshot::channel::<CpuAnswer>();
        // A credential signed for a caller that has gone (its deadline passed while the work ran) is never sent: it
        // is recorded as withheld, like one whose record could not be made durable.
        let (handle, orphans) = (tokio::runtime::Handle::current(), svc.clone());
        let work = move || {
            if answer.is_closed() {
                return;
            }
            let verified = match gathered.appraise(&rt.anchors, now) {
                Ok(v) => v,
                Err(r) => {
                    let _ = answer.send((None, Err(r), None));
                    return;
                }
            };
            let cfg = &rt.config;
            let decision = decide(&Inputs {
                config: cfg,
                endorsements: &rt.endorsements,
                verified: &verified,
                request: decision::Request {
                    nonce: &nonce,
                    jwk: &jwk,
                    workload: workload.as_deref(),
                    proximity: &proximity,
                },
                now,
            });
            let context = decision.context;
            let claims = match decision.outcome {
                Ok(claims) => claims,
                Err(refusal) => return refused(&audit, answer, context, refusal, now, &replica),
            };
            let issuer = rt.issuer(now);
            let req = IssueRequest {
                claims: &claims,
                cnf: &jwk,
                nonce: &nonce,
                now,
                with_ear: cfg.credentials.ear,
                ear_format: cfg.credentials.ear_format,
            };
            let planned = match issue::plan(issuer.key(), &req) {
                Ok(planned) => planned,
                Err(refusal) => return refused(&audit, answer, context, refusal, now, &replica),
            };
            // Issued: the record (under the credential's jti, expiry and key) goes to the writer now, and the
            // signatures are made while it is written; the answer leaves once both are done (`Meeting`).
            let record = decision_record(&context, now, &replica, Ok(&planned));
            let withhold = move |record, jti, why| {
                let _entered = handle.enter();
                mark_withheld(orphans, record, jti, why);
            };
            let meeting = Arc::new(Meeting::new(answer, context, Box::new(withhold)));
            let written = meeting.clone();
            audit.submit_then(record, move |record, durable| {
                written.durable(record, durable)
            });
            meeting.signed(issue::sign(issuer, issuer.key(), &req, planned));
        };
        svc.cpu
            .spawn(work)
            .map_err(|_| Refusal::new(ErrorCode::Internal, "appraisal pool closed"))?;
        let (decided, issued, sent) = tokio::time::timeout_at(deadline, answered)
            .await
            .map_err(overloaded)?
            .map_err(|_| Refusal::new(ErrorCode::Internal, "appraisal task failed"))?;
        if let Some(decided) = decided {
            context = decided;
        }
        audited = sent;
        issued
    }
    .await;
    Outcome {
        context,
        past_nonce,
        result,
        audited,
    }
}

/// Answer a refusal decided on the pool: its record goes to the writer, and the answer follows once it is durable.
fn refused(
    audit: &super::audit::AuditLog,
    answer: tokio::sync::oneshot::Sender<CpuAnswer>,
    context: Context,
    refusal: Refusal,
    now: u64,
    replica: &str,
) {
    let record = decision_record(&context, now, replica, Err(&refusal));
    let refused = Err(refusal);
    audit.submit_then(record, move |record, durable| {
        let _ = answer.send((Some(context), refused, Some((record, durable))));
    });
}

/// Records a credential as withheld: its record, its `jti`, and why it was never sent.
type Withhold = Box<dyn FnOnce(AuditRecord, String, Withheld) + Send>;

/// The two halves of an issuance, which run at once: the audit writer making the record durable, and the appraisal
/// pool signing the credential the record names. Whichever ends second answers the request, so the credential still
/// leaves only with its record durable (the handler withholds it otherwise). A credential the caller is no longer
/// waiting for, and a record whose credential could not be signed, get a `withheld` record.
struct Meeting {
    state: std::sync::Mutex<MeetingState>,
}

struct MeetingState {
    answer: Option<(tokio::sync::oneshot::Sender<CpuAnswer>, Context, Withhold)>,
    signed: Option<Result<issue::Issued, Refusal>>,
    written: Option<Audited>,
}

impl Meeting {
    fn new(
        answer: tokio::sync::oneshot::Sender<CpuAnswer>,
        context: Context,
        withhold: Withhold,
    ) -> Meeting {
        Meeting {
            state: std::sync::Mutex::new(MeetingState {
                answer: Some((answer, context, withhold)),
                signed: None,
                written: None,
            }),
        }
    }

    /// The writer's half: the record and whether it is durable.
    fn durable(&self, record: AuditRecord, durable: std::io::Result<()>) {
        self.meet(|s| s.written = Some((record, durable)));
    }

    /// The pool's half: the credential, or why it could not be signed.
    fn signed(&self, signed: Result<issue::Issued, Refusal>) {
        self.meet(|s| s.signed = Some(signed));
    }

    fn meet(&self, half: impl FnOnce(&mut MeetingState)) {
        let both = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            half(&mut s);
            match (s.signed.is_some(), s.written.is_some()) {
                (true, true) => s.answer.take().zip(s.signed.take()).zip(s.written.take()),
                _ => None,
            }
        };
        let Some((((answer, context, withhold), signed), (record, durable))) = both else {
            return;
        };
        match signed {
            Ok(issued) => {
                if let Err((_, Ok(issued), Some((record, _)))) =
                    answer.send((Some(context), Ok(issued), Some((record, durable))))
                {
                    withhold(record, issued.planned.jti, Withheld::Unrecorded);
                }
            }
            Err(refusal) => {
                // The record names a credential that does not exist.
                if let Some(jti) = record.jti.clone() {
                    withhold(record.clone(), jti, Withheld::Unsigned);
                }
                let _ = answer.send((Some(context), Err(refusal), Some((record, durable))));
            }
        }
    }
}

/// What the appraisal pool answers for one attestation: the decision's context, the credential or refusal, and the
/// decision's audit record with whether it is durable.
type CpuAnswer = (
    Option<Context>,
    Result<issue::Issued, Refusal>,
    Option<Audited>,
);

/// The evidence with what its appraisal needs, gathered without blocking.
enum Gathered {
    Snp {
        evidence: Vec<u8>,
        endorsements: appraisal::SnpEndorsements,
    },
    Tdx {
        evidence: Vec<u8>,
        /// The view shared until a refresh replaces one of its items.
        collateral: Arc<appraisal::TdxCollateral>,
    },
}

impl Gathered {
    /// The appraisal (CPU-bound: run it on the blocking pool).
    fn appraise(
        &self,
        anchors: &appraisal::TrustAnchors,
        now: u64,
    ) -> Result<Verified<Facts>, Refusal> {
        match self {
            Gathered::Snp {
                evidence,
                endorsements,
            } => appraisal::appraise_snp(evidence, endorsements, anchors, now)
                .map(Verified::<Facts>::from),
            Gathered::Tdx {
                evidence,
                collateral,
            } => appraisal::appraise_tdx(evidence, collateral, anchors, now)
                .map(Verified::<Facts>::from),
        }
    }
}

/// Collateral (async, cached, fetched in the collateral layer's own bounded pool). The blocking semaphore bounds CPU
/// work only: its permit is taken once the collateral is in hand ([`on_cpu`]), never held across network I/O, so a
/// slow vendor service cannot stall appraisals whose collateral is cached. `client` is the requester's address, for
/// the collateral layer's per-client budget on fetches of platforms never seen before.
async fn gather(
    rt: &Arc<Runtime>,
    tee: TeeType,
    evidence: Vec<u8>,
    certs: Vec<Vec<u8>>,
    now: u64,
    client: std::net::IpAddr,
) -> Result<Gathered, Refusal> {
    Ok(match tee {
        TeeType::SevSnp => Gathered::Snp {
            endorsements: rt
                .collateral
                .snp_endorsements(client, &evidence, &certs, now)
                .await?,
            evidence,
        },
        TeeType::Tdx => Gathered::Tdx {
            collateral: rt.collateral.tdx_view(client, &evidence, now).await?,
            evidence,
        },
    })
}

/// Run CPU-bound work (signature checks, the decision, signing) on the appraisal pool ([`super::cpu`]), so the async
/// workers keep serving I/O.
pub(crate) async fn on_cpu<T: Send + 'static>(
    svc: &Service,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Refusal> {
    svc.cpu.run(work).await.map_err(|e| match e {
        super::cpu::CpuError::Closed => Refusal::new(ErrorCode::Internal, "appraisal pool closed"),
        super::cpu::CpuError::Panicked => {
            Refusal::new(ErrorCode::Internal, "appraisal task failed")
        }
    })
}

// ---------------------------------------------------------------------------------------------------------------

/// The signing keys published at `now`: the active one, the next ones ahead of their not-before (so relying parties
/// caching this document for `JWKS_MAX_AGE` hold a key before it signs), and superseded ones until their WITs expire.
async fn jwks(State(svc): State<Arc<Service>>) -> Response {
    let rt = svc.runtime();
    let keys = rt
        .keys
        .published(now_unix(), rt.key_retention())
        .into_iter()
        .map(|k| k.jwk.clone())
        .collect();
    let mut r = json_response(StatusCode::OK, &Jwks::new(keys).to_value());
    let cache = format!("public, max-age={}", super::keys::JWKS_MAX_AGE.as_secs());
    if let Ok(v) = HeaderValue::from_str(&cache) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    r
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn readyz(State(svc): State<Arc<Service>>) -> Response {
    let rt = svc.runtime();
    let body = json!({
        "status": if svc.is_ready() { "ready" } else { "not ready" },
        "audit": if svc.audit.is_healthy() { "durable" } else { "unavailable" },
        "active_kid": rt.keys.active(now_unix()).kid,
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
    let mut text = svc.metrics.render();
    super::metrics::render_collateral(&mut text, &svc.runtime().collateral.stats());
    super::metrics::render_audit(&mut text, &svc.audit.stats());
    let mut r = (StatusCode::OK, text).into_response();
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

#[cfg(test)]
mod tests {
    use super::*;

    type Withholds = Arc<std::sync::Mutex<Vec<(Option<&'static str>, String, Withheld)>>>;

    /// A meeting whose withheld records land in the returned list.
    fn meeting() -> (
        Arc<Meeting>,
        tokio::sync::oneshot::Receiver<CpuAnswer>,
        Withholds,
    ) {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let withheld: Withholds = Arc::default();
        let seen = withheld.clone();
        let withhold: Withhold = Box::new(move |record: AuditRecord, jti, why| {
            seen.lock()
                .expect("not poisoned")
                .push((Some(record.decision), jti, why));
        });
        (
            Arc::new(Meeting::new(answer, Context::default(), withhold)),
            answered,
            withheld,
        )
    }

    fn issued_record(jti: &str) -> AuditRecord {
        AuditRecord {
            decision: "issued",
            jti: Some(jti.into()),
            ..AuditRecord::default()
        }
    }

    fn credential(jti: &str) -> issue::Issued {
        issue::Issued {
            wit: "h.p.s".into(),
            ear: None,
            ear_type: None,
            planned: issue::Planned {
                jti: jti.into(),
                exp: 10,
                kid: "k".into(),
            },
        }
    }

    #[test]
    fn an_issuance_is_answered_once_both_the_record_and_the_signatures_are_done_in_either_order() {
        for record_first in [true, false] {
            let (m, mut answered, withheld) = meeting();
            if record_first {
                m.durable(issued_record("j1"), Ok(()));
                assert!(
                    answered.try_recv().is_err(),
                    "no answer before the signatures"
                );
                m.signed(Ok(credential("j1")));
            } else {
                m.signed(Ok(credential("j1")));
                assert!(
                    answered.try_recv().is_err(),
                    "no answer before the record is written"
                );
                m.durable(issued_record("j1"), Ok(()));
            }
            let (_, issued, written) = answered.try_recv().expect("answered");
            assert_eq!(issued.expect("issued").planned.jti, "j1");
            let (record, durable) = written.expect("the record comes with the answer");
            assert!(durable.is_ok());
            assert_eq!(record.jti.as_deref(), Some("j1"));
            assert!(withheld.lock().expect("not poisoned").is_empty());
        }
    }

    #[test]
    fn a_failed_write_reaches_the_handler_with_the_credential_so_it_withholds_it() {
        let (m, mut answered, withheld) = meeting();
        m.signed(Ok(credential("j2")));
        m.durable(issued_record("j2"), Err(std::io::Error::other("disk full")));
        let (_, issued, written) = answered.try_recv().expect("answered");
        assert!(issued.is_ok());
        assert!(written.expect("written").1.is_err());
        // The handler's `withhold_unless_durable` records it (not the meeting, which would record it twice).
        assert!(withheld.lock().expect("not poisoned").is_empty());
    }

    #[test]
    fn a_signature_that_fails_after_its_record_is_written_is_refused_and_recorded_as_withheld() {
        let (m, mut answered, withheld) = meeting();
        m.durable(issued_record("j3"), Ok(()));
        m.signed(Err(Refusal::new(
            ErrorCode::Internal,
            "EAR signing: failed",
        )));
        let (_, issued, _) = answered.try_recv().expect("answered");
        assert_eq!(issued.expect_err("refused").code, ErrorCode::Internal);
        assert_eq!(
            *withheld.lock().expect("not poisoned"),
            vec![(Some("issued"), "j3".to_string(), Withheld::Unsigned)]
        );
    }

    #[test]
    fn a_credential_whose_caller_has_gone_is_recorded_as_withheld() {
        let (m, answered, withheld) = meeting();
        drop(answered);
        m.signed(Ok(credential("j4")));
        m.durable(issued_record("j4"), Ok(()));
        assert_eq!(
            *withheld.lock().expect("not poisoned"),
            vec![(Some("issued"), "j4".to_string(), Withheld::Unrecorded)]
        );
    }

    #[test]
    fn the_openapi_document_lists_every_route_and_every_error_code() {
        let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON");
        for path in [
            "/v1/challenge",
            "/v1/attest",
            "/.well-known/jwks.json",
            "/v1/svid",
            "/v1/spiffe/bundle",
            "/v1/wimse/bundle",
            "/.well-known/wimse-trust-domain",
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

    const AGENT_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn attest_body_members_decode_whether_or_not_the_json_escapes_them() {
        // Plain strings are read in place; the same text with JSON escapes (valid JSON, if unusual) decodes the same.
        let plain = format!(
            r#"{{"nonce":"AQID","tee":"sev-snp","evidence":"BAUG","certs":["Bwg","CQo"],"jwk":{AGENT_JWK},"proximity":["Cww"]}}"#
        );
        let escaped = format!(
            r#"{{"nonce":"\u0041QID","tee":"sev\u002dsnp","evidence":"BAU\u0047","certs":["Bw\u0067","CQo"],"jwk":{AGENT_JWK},"proximity":["C\u0077w"]}}"#
        );
        for body in [plain, escaped] {
            let d = decode_attest_body(body.as_bytes()).expect("decodes");
            assert_eq!(d.tee, TeeType::SevSnp);
            assert_eq!(d.nonce, vec![1, 2, 3]);
            assert_eq!(d.evidence, vec![4, 5, 6]);
            assert_eq!(d.certs, vec![vec![7, 8], vec![9, 10]]);
            assert_eq!(d.proximity, vec![vec![11, 12]]);
        }
    }

    #[test]
    fn a_malformed_certificate_in_the_attest_body_is_refused_and_named() {
        let body = format!(
            r#"{{"nonce":"AQID","tee":"tdx","evidence":"BAUG","certs":["Bwg","a+b/"],"jwk":{AGENT_JWK}}}"#
        );
        let refusal = decode_attest_body(body.as_bytes()).expect_err("bad cert");
        assert_eq!(refusal.code, ErrorCode::RequestInvalid);
        assert!(refusal.message.contains("certs[1]"), "{}", refusal.message);
    }
}
