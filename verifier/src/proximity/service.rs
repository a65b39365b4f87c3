//! The landmark's HTTP face: `GET /v1/proximity` upgrades the connection (HTTP/1.1 `Upgrade: locus-proximity/1`,
//! answered `101 Switching Protocols`) to the framed protocol run by [`super::Landmark::serve`]; `GET /v1/landmark`
//! describes the landmark (id, public JWK, site, coordinates, rounds) for operators configuring `[[landmark]]`.
//!
//! Sessions are bounded (`landmark_role.max_sessions`: none free → 503 `overloaded` before the upgrade); each runs
//! in its own task holding its permit, and ends after at most `rounds + 1` round timeouts.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use locus_wimse::proximity::UPGRADE_TOKEN;
use serde_json::json;

use crate::service::http::{now_unix, problem_response};
use crate::service::Service;
use crate::ErrorCode;

fn not_a_landmark() -> Response {
    problem_response(
        ErrorCode::RequestInvalid,
        StatusCode::NOT_FOUND,
        "this verifier does not serve the landmark role ([landmark_role] enabled = true)",
    )
}

/// `GET /v1/proximity`.
pub async fn upgrade(State(svc): State<Arc<Service>>, mut req: Request) -> Response {
    let rt = svc.runtime();
    let Some(landmark) = rt.landmark.clone() else {
        return not_a_landmark();
    };
    let asks_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(UPGRADE_TOKEN));
    if !asks_upgrade {
        return problem_response(
            ErrorCode::RequestInvalid,
            StatusCode::BAD_REQUEST,
            &format!("proximity rounds need `Connection: upgrade` and `Upgrade: {UPGRADE_TOKEN}`"),
        );
    }
    let Ok(permit) = landmark.sessions.clone().try_acquire_owned() else {
        let mut r = problem_response(
            ErrorCode::Overloaded,
            StatusCode::SERVICE_UNAVAILABLE,
            "too many proximity sessions; retry with back-off",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let _permit = permit;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "proximity upgrade failed");
                return;
            }
        };
        let mut io = TokioIo::new(upgraded);
        match landmark.serve(&mut io, now_unix).await {
            Ok(report) => tracing::info!(
                min_rtt_us = report.statement.min_rtt_us,
                d_max_km = report.statement.d_max_km,
                rounds = report.statement.rounds,
                key = %locus_wimse::b64::encode(report.statement.key_thumbprint),
                "proximity statement issued"
            ),
            Err(e) => {
                tracing::info!(code = e.code.as_str(), detail = %e.message, "proximity session refused")
            }
        }
    });
    let mut r = StatusCode::SWITCHING_PROTOCOLS.into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    r.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(UPGRADE_TOKEN));
    r
}

/// `GET /v1/landmark`.
pub async fn describe(State(svc): State<Arc<Service>>) -> Response {
    let rt = svc.runtime();
    let Some(landmark) = rt.landmark.as_ref() else {
        return not_a_landmark();
    };
    let role = &landmark.role;
    let body = json!({
        "id": locus_wimse::b64::encode(landmark.id),
        "jwk": landmark.public_jwk().to_value(),
        "site": role.site,
        "coordinates": [role.coordinates[0] as f64 / 1e6, role.coordinates[1] as f64 / 1e6],
        "rounds": role.rounds,
    });
    let mut r = (StatusCode::OK, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
