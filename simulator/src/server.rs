//! `locus-sim serve`: the AMD KDS and Intel PCS paths over HTTP, so the verifier's fetch, cache, single-flight and
//! back-off code runs against a real server.
//!
//! AMD KDS (VCEK Certificate and KDS Interface Specification, publication 57230):
//! - `GET /vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..` (Turin also `fmcSPL`) → VCEK DER
//!   (404 for a chip the world does not have, 400 for missing/invalid parameters);
//! - `GET /vcek/v1/{product}/cert_chain` → PEM, ASK then ARK;
//! - `GET /vcek/v1/{product}/crl` → DER CRL;
//! - `GET /vlek/v1/{product}/cert_chain` → PEM, ASVK then ARK; `GET /vlek/v1/{product}/crl` → the same ARK CRL.
//!   (VLEKs themselves are provisioned by the cloud provider, never served by KDS.)
//!
//! Intel PCS paths come from the Intel side ([`crate::intel_bridge::pcs_routes`]).
//!
//! Test hooks: `GET /_sim/stats` → `{"requests":{"<path>":n,…},"throttled":n,"total":n}` counts every request to a
//! vendor path (before faults apply), so tests can prove single-flight and back-off. Faults ([`Faults`]): the first N
//! vendor requests get `429` with `Retry-After: 1`; `slow` delays every vendor answer.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use locus_hw::snp::{Product, TcbVersion};

use crate::amd::pki::Hierarchy;
use crate::fault::{Fault, Faults};
use crate::world::{VcekValidity, World};

/// Shared state of the simulator server (the Intel PCS handlers receive it too).
#[derive(Debug)]
pub struct SimState {
    /// The world whose certificates and collateral are served.
    pub world: Arc<World>,
    /// Faults in effect.
    pub faults: Faults,
    /// Requests per path (vendor paths only).
    stats: Mutex<BTreeMap<String, u64>>,
    /// How many 429s have been sent (to stop after the first N).
    throttled: AtomicU32,
    /// Total vendor requests.
    total: AtomicU64,
}

impl SimState {
    /// State for a world and faults.
    pub fn new(world: Arc<World>, faults: Faults) -> Arc<SimState> {
        Arc::new(SimState {
            world,
            faults,
            stats: Mutex::new(BTreeMap::new()),
            throttled: AtomicU32::new(0),
            total: AtomicU64::new(0),
        })
    }

    /// Requests seen per path so far.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        self.stats.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// The full router (KDS + PCS + `/_sim`), with fault and counting middleware on the vendor paths.
pub fn router(state: Arc<SimState>) -> Router {
    let vendor = Router::new()
        .route("/vcek/v1/{product}/cert_chain", get(kds_cert_chain))
        .route("/vcek/v1/{product}/crl", get(kds_crl))
        .route("/vcek/v1/{product}/{hwid}", get(kds_vcek))
        .route("/vlek/v1/{product}/cert_chain", get(kds_vlek_cert_chain))
        .route("/vlek/v1/{product}/crl", get(kds_crl))
        .merge(crate::intel_bridge::pcs_routes(&state.world, &state.faults))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            vendor_faults,
        ));
    Router::new()
        .route("/_sim/stats", get(sim_stats))
        .merge(vendor)
        .with_state(state)
}

/// Serve until the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    world: Arc<World>,
    faults: Faults,
) -> std::io::Result<()> {
    serve_with_shutdown(listener, world, faults, std::future::pending()).await
}

/// Serve until `shutdown` completes, then drain in-flight requests.
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    world: Arc<World>,
    faults: Faults,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(SimState::new(world, faults));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn vendor_faults(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    state.total.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut m) = state.stats.lock() {
        *m.entry(path).or_insert(0) += 1;
    }
    let limit = state.faults.rate_limit_first;
    if limit > 0 {
        let prev = state
            .throttled
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            });
        if prev.is_ok() {
            let mut resp =
                (StatusCode::TOO_MANY_REQUESTS, "simulated rate limit\n").into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        }
    }
    if let Some(delay) = state.faults.slow {
        tokio::time::sleep(delay).await;
    }
    next.run(req).await
}

async fn sim_stats(State(state): State<Arc<SimState>>) -> Response {
    let body = serde_json::json!({
        "requests": state.stats(),
        "throttled": state.throttled.load(Ordering::SeqCst),
        "total": state.total.load(Ordering::SeqCst),
    });
    axum::Json(body).into_response()
}

fn product_of(name: &str) -> Option<Product> {
    Product::ALL.into_iter().find(|p| p.kds_name() == name)
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (status, m).into_response()
}

fn bytes(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

async fn kds_cert_chain(
    State(state): State<Arc<SimState>>,
    Path(product): Path<String>,
) -> Response {
    let Some(p) = product_of(&product) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("unknown product {product:?}"),
        );
    };
    let world = state.world.clone();
    match tokio::task::spawn_blocking(move || world.amd_cert_chain_pem(p)).await {
        Ok(Ok(pem)) => bytes("application/x-pem-file", pem.into_bytes()),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn kds_vlek_cert_chain(
    State(state): State<Arc<SimState>>,
    Path(product): Path<String>,
) -> Response {
    let Some(p) = product_of(&product) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("unknown product {product:?}"),
        );
    };
    let world = state.world.clone();
    match tokio::task::spawn_blocking(move || world.amd_vlek_cert_chain_pem(p)).await {
        Ok(Ok(pem)) => bytes("application/x-pem-file", pem.into_bytes()),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn kds_crl(State(state): State<Arc<SimState>>, Path(product): Path<String>) -> Response {
    let Some(p) = product_of(&product) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("unknown product {product:?}"),
        );
    };
    let world = state.world.clone();
    match tokio::task::spawn_blocking(move || world.amd_crl_der(p)).await {
        Ok(Ok(der)) => bytes("application/pkix-crl", der),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Parse a decimal SPL query parameter (0..=255).
fn spl(q: &BTreeMap<String, String>, name: &str) -> Result<u8, String> {
    let v = q
        .get(name)
        .ok_or_else(|| format!("missing query parameter {name}"))?;
    v.parse::<u8>()
        .map_err(|_| format!("{name}={v:?} is not an integer 0..=255"))
}

async fn kds_vcek(
    State(state): State<Arc<SimState>>,
    Path((product, hwid)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(p) = product_of(&product) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("unknown product {product:?}"),
        );
    };
    let hw = match hex::decode(&hwid) {
        Ok(h) => h,
        Err(_) => return text(StatusCode::BAD_REQUEST, "hwid is not hex"),
    };
    let tcb = (|| -> Result<TcbVersion, String> {
        Ok(TcbVersion {
            fmc: if p.has_fmc() {
                Some(spl(&q, "fmcSPL")?)
            } else {
                None
            },
            bootloader: spl(&q, "blSPL")?,
            tee: spl(&q, "teeSPL")?,
            snp: spl(&q, "snpSPL")?,
            microcode: spl(&q, "ucodeSPL")?,
        })
    })();
    let tcb = match tcb {
        Ok(t) => t,
        Err(msg) => return text(StatusCode::BAD_REQUEST, msg),
    };
    let Some(chip) = state.world.snp_chip(p, &hw) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no {product} chip with hwid {hwid}"),
        );
    };
    let chip_id = chip.chip_id;
    let validity = if state.faults.has(Fault::ExpiredCertificate) {
        VcekValidity::Expired
    } else {
        VcekValidity::Current
    };
    let world = state.world.clone();
    let issued = tokio::task::spawn_blocking(move || {
        world
            .vcek_der_for(Hierarchy::Genuine, p, &chip_id, &tcb, validity)
            .map(|d| d.as_ref().clone())
    })
    .await;
    match issued {
        Ok(Ok(der)) => bytes("application/pkix-cert", der),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
