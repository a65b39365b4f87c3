//! Test support: an in-process fake verifier (axum on 127.0.0.1:0) that speaks the docs/api.md API, checks the
//! docs/architecture.md#evidence-binding binding in the evidence it receives, issues WITs signed with a test key and publishes its keys at
//! `/.well-known/jwks.json` (with knobs to rotate the key, sign with an unpublished one, name another `sub`, or hide
//! the JWKS); and a small HTTP client for the agent's Unix-socket Workload API.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use locus_agent::binding;
use locus_hw::TeeType;
use locus_wimse::{
    Es256SigningKey, Jwk, Jwks, TrustDomain, TrustStore, WitIssuer, WitPolicy, WitVerifier,
    WorkloadId,
};

fn issuer(kid: &str) -> WitIssuer {
    let key = Es256SigningKey::generate().expect("key").with_kid(kid);
    WitIssuer::new(key, Some("https://fake-verifier.test".into())).expect("issuer")
}
use serde_json::{json, Value};

pub const TRUST_DOMAIN: &str = "example.org";
pub const DEFAULT_SUB: &str = "spiffe://example.org/agent";

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

pub fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// What the fake verifier saw in one accepted attest request.
#[derive(Debug, Clone)]
pub struct AttestRecord {
    pub tee: String,
    pub certs: usize,
    pub workload: Option<String>,
    pub jwk_thumbprint: [u8; 32],
}

struct FvState {
    /// Published keys; the last one signs.
    issuers: Mutex<Vec<WitIssuer>>,
    /// When set, signs instead, and is not published (a verifier impersonator, or a key mix-up).
    rogue: Mutex<Option<WitIssuer>>,
    /// When set, WITs name this `sub` whatever was asked for.
    sub_override: Mutex<Option<String>>,
    hide_jwks: AtomicBool,
    jwks_fetches: AtomicU64,
    ttl: AtomicU64,
    nonces: Mutex<HashSet<String>>,
    refuse: Mutex<Option<(u16, String)>>,
    wrong_cnf: AtomicBool,
    records: Mutex<Vec<AttestRecord>>,
    challenges: AtomicU64,
}

pub struct FakeVerifier {
    pub addr: SocketAddr,
    state: Arc<FvState>,
    server: Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            tokio::task::JoinHandle<()>,
        )>,
    >,
}

fn problem(status: u16, code: &str, detail: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let body = json!({"type":"about:blank","title":"refused","status":status.as_u16(),"detail":detail,"code":code});
    (
        status,
        [("content-type", "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

async fn challenge(State(st): State<Arc<FvState>>) -> Response {
    let mut raw = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).expect("rng");
    let nonce = locus_wimse::b64::encode(raw);
    st.nonces.lock().expect("lock").insert(nonce.clone());
    st.challenges.fetch_add(1, Ordering::Relaxed);
    axum::Json(json!({"nonce": nonce, "expires_at": "2099-01-01T00:00:00Z"})).into_response()
}

fn report_data_of(tee: &str, raw: &[u8]) -> Result<[u8; 64], String> {
    match tee {
        "sev-snp" => locus_hw::snp::AttestationReport::parse(raw)
            .map(|r| r.report_data)
            .map_err(|e| e.to_string()),
        "tdx" => locus_hw::tdx::Quote::parse(raw)
            .map(|q| q.body.report_data)
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown tee {other}")),
    }
}

async fn attest(State(st): State<Arc<FvState>>, body: Bytes) -> Response {
    if let Some((status, code)) = st.refuse.lock().expect("lock").clone() {
        return problem(status, &code, "refused by test configuration");
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return problem(400, "request_invalid", "body");
    };
    let field = |n: &str| req.get(n).and_then(Value::as_str).map(str::to_string);
    let (Some(nonce_b64), Some(tee), Some(evidence)) =
        (field("nonce"), field("tee"), field("evidence"))
    else {
        return problem(400, "request_invalid", "missing field");
    };
    if !st.nonces.lock().expect("lock").remove(&nonce_b64) {
        return problem(400, "nonce_invalid", "unknown or reused nonce");
    }
    let Ok(nonce) = locus_wimse::b64::decode(&nonce_b64) else {
        return problem(400, "nonce_invalid", "nonce");
    };
    let Ok(raw) = locus_wimse::b64::decode(&evidence) else {
        return problem(400, "evidence_malformed", "evidence b64");
    };
    let detected = match TeeType::detect(&raw) {
        Some(t) => t.as_str(),
        None => return problem(400, "evidence_malformed", "not SNP or TDX"),
    };
    if detected != tee {
        return problem(400, "evidence_malformed", "tee does not match evidence");
    }
    let Some(jwk) = req.get("jwk").and_then(|j| Jwk::from_value(j).ok()) else {
        return problem(400, "request_invalid", "jwk");
    };
    let got = match report_data_of(&tee, &raw) {
        Ok(rd) => rd,
        Err(e) => return problem(400, "evidence_malformed", &e),
    };
    let thumbprint = jwk.thumbprint_sha256();
    if got != binding::report_data(&nonce, &thumbprint) {
        return problem(403, "report_data_mismatch", "binding");
    }
    let certs = req
        .get("certs")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let workload = field("workload");
    let asked = st
        .sub_override
        .lock()
        .expect("lock")
        .clone()
        .or_else(|| workload.clone());
    let sub = match WorkloadId::parse(asked.as_deref().unwrap_or(DEFAULT_SUB)) {
        Ok(s) => s,
        Err(_) => return problem(400, "identifier_invalid", "workload"),
    };
    let cnf = if st.wrong_cnf.load(Ordering::Relaxed) {
        Jwk::new(Es256SigningKey::generate().expect("key").public_key())
    } else {
        jwk
    };
    let iat = now_secs();
    let exp = iat + st.ttl.load(Ordering::Relaxed);
    let extra = json!({"locus_tee": {"type": tee, "simulated": true}});
    let Value::Object(extra) = extra else {
        unreachable!()
    };
    let wit = {
        let rogue = st.rogue.lock().expect("lock");
        let issuers = st.issuers.lock().expect("lock");
        let signer = rogue
            .as_ref()
            .or_else(|| issuers.last())
            .expect("an issuer");
        signer.issue(&sub, &cnf, iat, exp, &extra).expect("issue").0
    };
    st.records.lock().expect("lock").push(AttestRecord {
        tee,
        certs,
        workload,
        jwk_thumbprint: thumbprint,
    });
    axum::Json(json!({"wit": wit, "ear": "fake.ear.token", "expires_at": exp})).into_response()
}

async fn jwks(State(st): State<Arc<FvState>>) -> Response {
    st.jwks_fetches.fetch_add(1, Ordering::Relaxed);
    if st.hide_jwks.load(Ordering::Relaxed) {
        return (StatusCode::NOT_FOUND, "not here").into_response();
    }
    let keys = st
        .issuers
        .lock()
        .expect("lock")
        .iter()
        .map(WitIssuer::public_jwk)
        .collect();
    (
        [
            ("content-type", "application/json"),
            ("cache-control", "public, max-age=300"),
        ],
        Jwks::new(keys).to_json(),
    )
        .into_response()
}

impl FakeVerifier {
    /// Start on 127.0.0.1:0 issuing WITs valid for `ttl` seconds.
    pub async fn start(ttl: u64) -> Self {
        let state = Arc::new(FvState {
            issuers: Mutex::new(vec![issuer("fake-1")]),
            rogue: Mutex::new(None),
            sub_override: Mutex::new(None),
            hide_jwks: AtomicBool::new(false),
            jwks_fetches: AtomicU64::new(0),
            ttl: AtomicU64::new(ttl),
            nonces: Mutex::new(HashSet::new()),
            refuse: Mutex::new(None),
            wrong_cnf: AtomicBool::new(false),
            records: Mutex::new(Vec::new()),
            challenges: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let fv = Self {
            addr,
            state,
            server: Mutex::new(None),
        };
        fv.serve(listener);
        fv
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/v1/challenge", post(challenge))
            .route("/v1/attest", post(attest))
            .route("/.well-known/jwks.json", get(jwks))
            .with_state(self.state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        *self.server.lock().expect("lock") = Some((tx, handle));
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop listening and close every connection.
    pub async fn stop(&self) {
        let server = self.server.lock().expect("lock").take();
        if let Some((tx, handle)) = server {
            let _ = tx.send(());
            let _ = handle.await;
        }
    }

    /// Listen again on the same address.
    pub async fn restart(&self) {
        let mut last = None;
        for _ in 0..100 {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => {
                    self.serve(l);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("could not rebind {}: {last:?}", self.addr);
    }

    pub fn refuse_with(&self, status: u16, code: &str) {
        *self.state.refuse.lock().expect("lock") = Some((status, code.to_string()));
    }

    pub fn accept_again(&self) {
        *self.state.refuse.lock().expect("lock") = None;
    }

    pub fn bind_wits_to_a_foreign_key(&self) {
        self.state.wrong_cnf.store(true, Ordering::Relaxed);
    }

    /// Sign with a fresh key under the published kid, without publishing it.
    pub fn sign_with_an_unpublished_key(&self) {
        *self.state.rogue.lock().expect("lock") = Some(issuer("fake-1"));
    }

    /// Sign with the published key again.
    pub fn sign_with_the_published_key(&self) {
        *self.state.rogue.lock().expect("lock") = None;
    }

    /// Rotate: a new key with kid `kid` signs from now on; both are published.
    pub fn rotate_key(&self, kid: &str) {
        self.state.issuers.lock().expect("lock").push(issuer(kid));
    }

    /// Name `sub` in every WIT, whatever was asked for.
    pub fn issue_for_sub(&self, sub: &str) {
        *self.state.sub_override.lock().expect("lock") = Some(sub.to_string());
    }

    /// Answer 404 at the JWKS path.
    pub fn hide_jwks(&self) {
        self.state.hide_jwks.store(true, Ordering::Relaxed);
    }

    /// How many times the JWKS was asked for.
    pub fn jwks_fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::Relaxed)
    }

    pub fn records(&self) -> Vec<AttestRecord> {
        self.state.records.lock().expect("lock").clone()
    }

    pub fn challenges(&self) -> u64 {
        self.state.challenges.load(Ordering::Relaxed)
    }

    pub fn trust(&self) -> TrustStore {
        let keys = self
            .state
            .issuers
            .lock()
            .expect("lock")
            .iter()
            .map(WitIssuer::public_jwk)
            .collect();
        TrustStore::new().with_keys(
            TrustDomain::parse(TRUST_DOMAIN).expect("td"),
            Jwks::new(keys),
        )
    }

    pub fn wit_verifier(&self) -> WitVerifier {
        WitVerifier::new(self.trust(), WitPolicy::default().with_clock_skew(0))
    }
}

/// One request to the Workload API over its Unix socket: (status, content-type, JSON body).
pub async fn uds_request(
    socket: &Path,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect to the Workload API socket");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let req = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("request");
    let resp = sender.send_request(req).await.expect("send");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, ctype, value)
}

/// The private scalar `d` of a ring-generated P-256 PKCS#8 document (`ECPrivateKey`: version 1, then `04 20 d`).
pub fn p256_d_from_pkcs8(pkcs8: &[u8]) -> [u8; 32] {
    let pos = pkcs8
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .expect("ECPrivateKey in PKCS#8");
    pkcs8[pos + 5..pos + 37].try_into().expect("32 bytes")
}

/// Every file under `dir` (recursively, not following symlinks) whose bytes contain `d` raw, hex or base64url.
pub fn files_containing_key(dir: &Path, d: &[u8; 32]) -> Vec<std::path::PathBuf> {
    files_containing_key_since(dir, d, UNIX_EPOCH)
}

/// [`files_containing_key`] limited to files modified at or after `since` (for shared directories such as the
/// system temp dir).
pub fn files_containing_key_since(
    dir: &Path,
    d: &[u8; 32],
    since: SystemTime,
) -> Vec<std::path::PathBuf> {
    let needles: Vec<Vec<u8>> = vec![
        d.to_vec(),
        hex::encode(d).into_bytes(),
        hex::encode_upper(d).into_bytes(),
        locus_wimse::b64::encode(d).into_bytes(),
    ];
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if meta.is_file()
            && meta.len() <= 64 * 1024 * 1024
            && meta.modified().is_ok_and(|m| m >= since)
        {
            if let Ok(bytes) = std::fs::read(&p) {
                if needles
                    .iter()
                    .any(|n| bytes.windows(n.len()).any(|w| w == n.as_slice()))
                {
                    hits.push(p);
                }
            }
        }
    }
    hits
}
