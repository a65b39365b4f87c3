//! `locus-agent run`: keep a valid WIT and serve it on the Workload API.
//!
//! Two tasks share a [`CredentialSlot`]:
//! - the **renewal loop** obtains a credential (fresh key each time, docs/architecture.md#evidence-binding), sleeps until 2/3 of its lifetime,
//!   and renews; on failure it retries with jittered exponential back-off (capped, and at most half the remaining
//!   validity so several tries fit before expiry). An expired credential is dropped, which wipes its key.
//! - the **Workload API** on a Unix socket (mode 0660): `GET /v1/wit`, `POST /v1/wpt` and `POST /v1/http-sig`
//!   ([`crate::http_sig`]). It checks validity on every request against the clock, so it serves the current WIT
//!   until the second it expires and never after (503 `credential_unavailable`), whatever the renewal loop is doing.
//!
//! The socket is bound inside a private 0700 directory, set to 0660, then renamed into place, so it is never
//! reachable with looser permissions. Nothing else is written to disk: the private key lives only in memory.
//!
//! With `--spiffe-socket` ([`SpiffeParams`]) the SPIFFE Workload API runs beside it ([`crate::spiffe`]): one more
//! renewal loop per extra identity it serves, an SVID loop per identity, and a gRPC server on its own socket, all
//! stopped by the same shutdown signal.
//!
//! File permissions decide who may connect; the peer's credentials (`SO_PEERCRED`, read when the connection is
//! accepted) decide who is served: a peer whose uid is not in [`PeerAllowList::uids`] and whose gid is not in
//! [`PeerAllowList::gids`] gets 403 `peer_not_allowed` before any handler runs. The default list is the agent's own
//! uid and root; `--allow-uid` / `--allow-gid` replace it. `SO_PEERCRED` gives the peer's effective uid and gid
//! only: membership in a supplementary group does not count.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::Router;
use locus_hw::Attester;
use locus_wimse::wpt::{token_hash, WptRequest};
use serde::Deserialize;
use tokio::sync::watch;

use crate::attest::obtain_credential;
use crate::client::VerifierClient;
use crate::credential::Credential;
use crate::error::{AgentError, CREDENTIAL_UNAVAILABLE, INTERNAL, PEER_NOT_ALLOWED};
use crate::spiffe::identity::{IdentityKey, IdentityMap};
use crate::spiffe::server::{Gate, SpiffeServer, WorkloadApi};
use crate::spiffe::source::SvidSource;
use crate::spiffe::state::{svid_loop, SpiffeState};

/// Wall-clock time as Unix seconds with a fraction (scheduling) — validity checks use its floor.
pub type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    })
}

/// Largest Workload API request body.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Renewal and API tuning.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Fraction of the WIT lifetime after which to renew (docs/agent.md: 2/3).
    pub renew_fraction: f64,
    /// First retry delay after a failure (before jitter).
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Longest WPT lifetime, seconds (a WPT never outlives its WIT).
    pub wpt_lifetime: u64,
    /// The Workload Identifier to ask for.
    pub workload: Option<String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            renew_fraction: 2.0 / 3.0,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            wpt_lifetime: 120,
            workload: None,
        }
    }
}

/// Counters and the last failure, for logs and tests.
#[derive(Debug, Default)]
pub struct Stats {
    issued: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<(String, String)>>,
}

impl Stats {
    /// Credentials obtained (the first one and every renewal).
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// Failed attempts.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Code and message of the last failure, if any.
    pub fn last_error(&self) -> Option<(String, String)> {
        self.last_error.lock().map(|g| g.clone()).unwrap_or(None)
    }
}

/// The current credential, shared by the renewal loop and the API.
#[derive(Debug, Clone)]
pub struct CredentialSlot {
    current: Arc<RwLock<Option<Arc<Credential>>>>,
    stats: Arc<Stats>,
    /// Counts the credentials set, so the SPIFFE Workload API renews its SVIDs as soon as a new WIT arrives.
    generation: Arc<watch::Sender<u64>>,
}

impl Default for CredentialSlot {
    fn default() -> Self {
        Self {
            current: Arc::default(),
            stats: Arc::default(),
            generation: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl CredentialSlot {
    /// Notified whenever a new credential is set.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The credential if it is valid at `now` (Unix seconds).
    pub fn valid_at(&self, now: u64) -> Option<Arc<Credential>> {
        let guard = self.current.read().ok()?;
        guard.as_ref().filter(|c| c.is_valid_at(now)).cloned()
    }

    fn current(&self) -> Option<Arc<Credential>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    fn set(&self, cred: Credential) {
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::new(cred));
        }
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Drop the credential (its key is wiped once the last request using it is done).
    fn clear(&self) {
        if let Ok(mut g) = self.current.write() {
            *g = None;
        }
    }

    /// Drop the credential if it has expired at `now` (its key is wiped once the last request using it is done).
    fn drop_expired(&self, now: u64) {
        if let Ok(mut g) = self.current.write() {
            if g.as_ref().is_some_and(|c| !c.is_valid_at(now)) {
                *g = None;
            }
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// A random factor in [0.5, 1.0] for back-off jitter.
pub(crate) fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let rng = ring::rand::SystemRandom::new();
    if ring::rand::SecureRandom::fill(&rng, &mut b).is_err() {
        return 0.75;
    }
    0.5 + 0.5 * (u32::from_le_bytes(b) as f64 / u32::MAX as f64)
}

/// The delay before retry number `failures` (1-based): `initial · 2^(failures-1)`, capped at `max`, jittered to
/// [½, 1] of that, and, while a credential is still valid for `remaining` seconds, at most half of it (not below
/// 50 ms) so several attempts fit before expiry.
pub fn retry_delay(
    cfg: &RunConfig,
    failures: u32,
    remaining: Option<f64>,
    jitter: f64,
) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let base = cfg.retry_initial.as_secs_f64() * f64::from(1u32 << exp.min(20));
    let mut delay = base.min(cfg.retry_max.as_secs_f64()) * jitter.clamp(0.5, 1.0);
    if let Some(r) = remaining {
        if r > 0.0 {
            delay = delay.min((r / 2.0).max(0.05));
        }
    }
    Duration::from_secs_f64(delay.max(0.0))
}

/// Sleep for `d` unless shutdown is signalled first; returns `false` on shutdown.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.changed() => false,
    }
}

/// The renewal loop; returns when shutdown is signalled.
pub async fn renewal_loop(
    client: VerifierClient,
    attester: Arc<dyn Attester>,
    cfg: RunConfig,
    slot: CredentialSlot,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    let secs = {
        let clock = clock.clone();
        move || clock() as u64
    };
    loop {
        let now = clock();
        slot.drop_expired(now as u64);
        let current = slot.current();
        if failures == 0 {
            if let Some(c) = &current {
                let wake = c.renew_at(cfg.renew_fraction);
                if wake > now
                    && !sleep_or_shutdown(Duration::from_secs_f64(wake - now), &mut shutdown).await
                {
                    return;
                }
            }
        }
        if *shutdown.borrow() {
            return;
        }
        let attempt = obtain_credential(&client, attester.clone(), cfg.workload.as_deref(), &secs);
        let result = tokio::select! {
            r = attempt => r,
            _ = shutdown.changed() => return,
        };
        match result {
            Ok(cred) => {
                tracing::info!(
                    iat = cred.iat(),
                    exp = cred.exp(),
                    attester = attester.name(),
                    "obtained a WIT"
                );
                slot.set(cred);
                slot.stats.issued.fetch_add(1, Ordering::Relaxed);
                failures = 0;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                slot.stats.failures.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = slot.stats.last_error.lock() {
                    *last = Some((e.code().to_string(), e.to_string()));
                }
                let now = clock();
                let remaining = slot.valid_at(now as u64).map(|c| c.exp() as f64 - now);
                let delay = retry_delay(&cfg, failures, remaining, jitter());
                tracing::warn!(code = e.code(), error = %e, retry_in_ms = delay.as_millis() as u64, "attestation failed");
                if !sleep_or_shutdown(delay, &mut shutdown).await {
                    return;
                }
            }
        }
    }
}

#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) slot: CredentialSlot,
    pub(crate) clock: Clock,
    /// Lifetime of a WPT, and of an HTTP signature's `expires`.
    pub(crate) wpt_lifetime: u64,
}

pub(crate) fn problem(status: StatusCode, code: &str, detail: impl Into<String>) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail.into(),
        "code": code,
    });
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub(crate) fn json_ok(body: serde_json::Value) -> Response {
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub(crate) fn unavailable(slot: &CredentialSlot) -> Response {
    let detail = match slot.stats.last_error() {
        Some((code, msg)) => {
            format!("no valid WIT; last attestation attempt failed with {code}: {msg}")
        }
        None => "no valid WIT yet".to_string(),
    };
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        CREDENTIAL_UNAVAILABLE,
        detail,
    )
}

async fn get_wit(State(app): State<ApiState>) -> Response {
    let now = (app.clock)() as u64;
    match app.slot.valid_at(now) {
        Some(c) => json_ok(serde_json::json!({ "wit": c.wit(), "expires_at": c.exp() })),
        None => unavailable(&app.slot),
    }
}

/// `POST /v1/wpt` body: the claim values to sign (`ath`, `tth` and the `oth` values are already the
/// base64url SHA-256 hashes of the tokens, so the agent never sees the tokens themselves).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WptBody {
    aud: String,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    tth: Option<String>,
    #[serde(default)]
    oth: Option<BTreeMap<String, String>>,
}

fn check_hash(name: &str, v: &str) -> Result<(), String> {
    match locus_wimse::b64::decode(v) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(format!(
            "{name} must be a base64url SHA-256 hash (43 characters)"
        )),
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn wpt_request(body: WptBody, wit: &str, exp: u64) -> Result<WptRequest, String> {
    let aud = body.aud;
    if aud.is_empty() || aud.len() > 2048 {
        return Err("aud must be 1 to 2048 characters".into());
    }
    if aud.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("aud contains whitespace or control characters".into());
    }
    if aud.contains(['?', '#']) {
        return Err("aud is the target URI without query and fragment".into());
    }
    let mut req = WptRequest::new(aud, wit, exp);
    if let Some(ath) = body.ath {
        check_hash("ath", &ath)?;
        req.ath = Some(ath);
    }
    if let Some(tth) = body.tth {
        check_hash("tth", &tth)?;
        req.tth = Some(tth);
    }
    for (name, hash) in body.oth.unwrap_or_default() {
        if !is_header_name(&name) {
            return Err(format!("oth key {name:?} is not a header name"));
        }
        check_hash("oth value", &hash)?;
        req.oth.insert(name.to_ascii_lowercase(), hash);
    }
    Ok(req)
}

/// The JSON body of a Workload API request: too large → 413 `request_too_large`, unreadable or not the expected shape →
/// 400 `request_invalid`.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, Box<Response>> {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(Box::new(problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!("body over {MAX_REQUEST_BYTES} bytes"),
            )))
        }
        Err(e) => {
            return Err(Box::new(problem(
                StatusCode::BAD_REQUEST,
                "request_invalid",
                e.body_text(),
            )))
        }
    };
    serde_json::from_slice(&body).map_err(|e| {
        Box::new(problem(
            StatusCode::BAD_REQUEST,
            "request_invalid",
            format!("body: {e}"),
        ))
    })
}

async fn post_wpt(
    State(app): State<ApiState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let parsed: WptBody = match json_body(body) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let now = (app.clock)() as u64;
    let Some(cred) = app.slot.valid_at(now) else {
        return unavailable(&app.slot);
    };
    let exp = now.saturating_add(app.wpt_lifetime).min(cred.exp());
    let req = match wpt_request(parsed, cred.wit(), exp) {
        Ok(r) => r,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, "request_invalid", detail),
    };
    debug_assert_eq!(req.wth, token_hash(cred.wit()));
    match cred.sign_wpt(&req) {
        Ok(wpt) => json_ok(serde_json::json!({ "wpt": wpt })),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL, e.to_string()),
    }
}

async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "not_found",
        "the Workload API has GET /v1/wit, POST /v1/wpt and POST /v1/http-sig",
    )
}

async fn method_not_allowed() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "request_invalid",
        "method not allowed",
    )
}

/// The Workload API router.
pub fn workload_api(slot: CredentialSlot, clock: Clock, wpt_lifetime: u64) -> Router {
    let state = ApiState {
        slot,
        clock,
        wpt_lifetime,
    };
    Router::new()
        .route("/v1/wit", get(get_wit))
        .route("/v1/wpt", post(post_wpt))
        .route("/v1/http-sig", post(crate::http_sig::post_http_sig))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

/// Who may use the Workload API: a peer is served when its uid is in `uids` or its gid in `gids`. Both empty means
/// the default: the agent's own uid and root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerAllowList {
    /// Allowed peer uids.
    pub uids: Vec<u32>,
    /// Allowed peer (effective, primary) gids.
    pub gids: Vec<u32>,
}

impl PeerAllowList {
    /// The list in force for an agent running as `own_uid`.
    pub fn resolve(&self, own_uid: u32) -> PeerAllowList {
        if self.uids.is_empty() && self.gids.is_empty() {
            let mut uids = vec![own_uid];
            if own_uid != 0 {
                uids.push(0);
            }
            PeerAllowList {
                uids,
                gids: Vec::new(),
            }
        } else {
            self.clone()
        }
    }

    /// Whether a peer with these credentials is served (no credentials: never).
    pub fn allows(&self, peer: &PeerCred) -> bool {
        match (peer.uid, peer.gid) {
            (Some(uid), Some(gid)) => self.uids.contains(&uid) || self.gids.contains(&gid),
            _ => false,
        }
    }
}

/// The credentials of a Workload API peer, read from the socket (`SO_PEERCRED`) when its connection is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Effective uid, if the kernel told us.
    pub uid: Option<u32>,
    /// Effective gid, if the kernel told us.
    pub gid: Option<u32>,
    /// Process id, for the logs.
    pub pid: Option<i32>,
}

impl PeerCred {
    /// A peer whose credentials the kernel did not give us (never allowed).
    pub const UNKNOWN: PeerCred = PeerCred {
        uid: None,
        gid: None,
        pid: None,
    };

    /// From the kernel's answer to `SO_PEERCRED` (`None`: it failed, logged at `warn`).
    pub fn from_ucred(cred: Option<&tokio::net::unix::UCred>) -> Self {
        match cred {
            Some(c) => PeerCred {
                uid: Some(c.uid()),
                gid: Some(c.gid()),
                pid: c.pid(),
            },
            None => {
                tracing::warn!("reading a Workload API peer's credentials failed");
                PeerCred::UNKNOWN
            }
        }
    }
}

impl Connected<IncomingStream<'_, tokio::net::UnixListener>> for PeerCred {
    fn connect_info(stream: IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        PeerCred::from_ucred(stream.io().peer_cred().ok().as_ref())
    }
}

/// Middleware: refuse a peer that is not on the allow-list, before the request reaches a handler.
async fn check_peer(
    State(allow): State<Arc<PeerAllowList>>,
    ConnectInfo(peer): ConnectInfo<PeerCred>,
    req: Request,
    next: Next,
) -> Response {
    if allow.allows(&peer) {
        return next.run(req).await;
    }
    tracing::warn!(uid = ?peer.uid, gid = ?peer.gid, pid = ?peer.pid, "Workload API peer refused: not on the allow-list");
    let who = match (peer.uid, peer.gid) {
        (Some(uid), Some(gid)) => format!("uid {uid} gid {gid}"),
        _ => "a peer with unknown credentials".to_string(),
    };
    problem(
        StatusCode::FORBIDDEN,
        PEER_NOT_ALLOWED,
        format!("{who} may not use this Workload API (see --allow-uid / --allow-gid)"),
    )
}

/// The bound socket's path; removes the socket on drop if it is still the one we bound.
#[derive(Debug)]
pub struct SocketGuard {
    path: PathBuf,
    ino: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Bind the Workload API socket at `path` with mode 0660 (see the module docs). A stale socket (nobody listening)
/// is replaced; a live one or any other kind of file is an error.
pub fn bind_socket(path: &Path) -> Result<(tokio::net::UnixListener, SocketGuard), AgentError> {
    use std::os::unix::fs::FileTypeExt;
    let shown = path.display();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(AgentError::Config(format!(
                "{shown} exists and is not a socket"
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(AgentError::Config(format!(
                "{shown}: another process is serving on this socket"
            )));
        }
        std::fs::remove_file(path)
            .map_err(|e| AgentError::Config(format!("{shown}: removing stale socket: {e}")))?;
    }
    let staging = parent.join(format!(
        ".locus-agent-{}-{}",
        std::process::id(),
        (jitter() * 1e9) as u64
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| AgentError::Config(format!("{}: {e}", staging.display())))?;
    let result = (|| {
        let tmp = staging.join("s");
        let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))?;
        std::fs::rename(&tmp, path)?;
        listener.set_nonblocking(true)?;
        let ino = std::fs::symlink_metadata(path)?.ino();
        Ok::<_, std::io::Error>((listener, ino))
    })();
    let _ = std::fs::remove_dir(&staging);
    let (listener, ino) =
        result.map_err(|e| AgentError::Config(format!("binding {shown}: {e}")))?;
    let listener = tokio::net::UnixListener::from_std(listener)
        .map_err(|e| AgentError::Config(format!("binding {shown}: {e}")))?;
    Ok((
        listener,
        SocketGuard {
            path: path.to_path_buf(),
            ino,
        },
    ))
}

/// What `run` needs.
#[derive(Clone)]
pub struct RunParams {
    /// The verifier.
    pub client: VerifierClient,
    /// The evidence source.
    pub attester: Arc<dyn Attester>,
    /// Tuning.
    pub cfg: RunConfig,
    /// The Workload API socket path.
    pub socket: PathBuf,
    /// Who may use the Workload API (default: the agent's own uid and root).
    pub peers: PeerAllowList,
    /// The clock.
    pub clock: Clock,
    /// The SPIFFE Workload API, when it is served too.
    pub spiffe: Option<SpiffeParams>,
}

impl std::fmt::Debug for RunParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunParams")
            .field("verifier", &self.client.base())
            .field("attester", &self.attester.name())
            .field("cfg", &self.cfg)
            .field("socket", &self.socket)
            .field("peers", &self.peers)
            .field("spiffe", &self.spiffe)
            .finish_non_exhaustive()
    }
}

/// What the SPIFFE Workload API needs (`--spiffe-socket` and friends).
#[derive(Clone)]
pub struct SpiffeParams {
    /// Its socket path (gRPC; mode 0660 like the Workload API's).
    pub socket: PathBuf,
    /// uid / gid → SPIFFE ID (the agent's own uid gets `cfg.workload` unless mapped).
    pub identities: IdentityMap,
    /// Serve the experimental WIT-SVID profile.
    pub wit_svid: bool,
    /// Where SVIDs and bundles come from (the verifier, in the agent).
    pub source: Arc<dyn SvidSource>,
}

impl std::fmt::Debug for SpiffeParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpiffeParams")
            .field("socket", &self.socket)
            .field("identities", &self.identities)
            .field("wit_svid", &self.wit_svid)
            .finish_non_exhaustive()
    }
}

/// The running SPIFFE side: its server, the SVID loops and the renewal loops of identities beyond the default.
#[derive(Debug)]
struct RunningSpiffe {
    state: Arc<SpiffeState>,
    server: SpiffeServer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A running agent (renewal loop + Workload API).
#[derive(Debug)]
pub struct RunningAgent {
    slot: CredentialSlot,
    shutdown: watch::Sender<bool>,
    renewal: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    spiffe: Option<RunningSpiffe>,
    _socket: SocketGuard,
}

impl RunningAgent {
    /// The credential slot (read-only use: current credential, counters).
    pub fn slot(&self) -> &CredentialSlot {
        &self.slot
    }

    /// The SPIFFE Workload API's state, when it is served.
    pub fn spiffe(&self) -> Option<&Arc<SpiffeState>> {
        self.spiffe.as_ref().map(|s| &s.state)
    }

    /// Stop every task, drop the credentials (wiping their keys) and remove the sockets.
    pub async fn stop(self) -> Result<(), AgentError> {
        let _ = self.shutdown.send(true);
        let renewal = self.renewal.await;
        let server = self.server.await;
        let spiffe = match self.spiffe {
            Some(sp) => {
                for t in sp.tasks {
                    let _ = t.await;
                }
                for ident in sp.state.identities() {
                    ident.slot.clear();
                }
                Some(sp.server.join().await)
            }
            None => None,
        };
        self.slot.clear();
        renewal.map_err(|e| AgentError::Internal(format!("renewal task: {e}")))?;
        server
            .map_err(|e| AgentError::Internal(format!("Workload API task: {e}")))?
            .map_err(|e| AgentError::Internal(format!("Workload API: {e}")))?;
        spiffe.unwrap_or(Ok(()))
    }

    /// Whether a task ended on its own (only on a server error).
    pub fn is_finished(&self) -> bool {
        self.server.is_finished()
            || self.renewal.is_finished()
            || self.spiffe.as_ref().is_some_and(|s| s.server.is_finished())
    }
}

/// Start the SPIFFE side: a credential (and renewal loop) per identity beyond the default, an SVID loop per identity,
/// and the gRPC server.
#[allow(clippy::too_many_arguments)]
fn start_spiffe(
    sp: SpiffeParams,
    main_slot: &CredentialSlot,
    params: &RunParams,
    peers: PeerAllowList,
    own_uid: u32,
    shutdown: &watch::Receiver<bool>,
) -> Result<RunningSpiffe, AgentError> {
    let default: IdentityKey = params.cfg.workload.clone();
    let mut tasks = Vec::new();
    let mut slots = Vec::new();
    for key in sp.identities.identities(&default) {
        if key == default {
            slots.push((key, main_slot.clone()));
            continue;
        }
        let slot = CredentialSlot::default();
        tasks.push(tokio::spawn(renewal_loop(
            params.client.clone(),
            params.attester.clone(),
            RunConfig {
                workload: key.clone(),
                ..params.cfg.clone()
            },
            slot.clone(),
            params.clock.clone(),
            shutdown.clone(),
        )));
        slots.push((key, slot));
    }
    tracing::info!(socket = %sp.socket.display(), identities = ?slots.iter().map(|(k, _)| k).collect::<Vec<_>>(), wit_svid = sp.wit_svid, "SPIFFE Workload API");
    let state = Arc::new(SpiffeState::new(
        slots,
        sp.source,
        params.clock.clone(),
        sp.wit_svid,
        params.cfg.clone(),
    ));
    for ident in state.identities() {
        tasks.push(tokio::spawn(svid_loop(
            state.clone(),
            ident.clone(),
            shutdown.clone(),
        )));
    }
    let server = SpiffeServer::start(
        &sp.socket,
        WorkloadApi::new(state.clone(), shutdown.clone()),
        Gate::new(peers, sp.identities, own_uid, default),
        shutdown.clone(),
    )?;
    Ok(RunningSpiffe {
        state,
        server,
        tasks,
    })
}

/// Bind the socket and start the renewal loop and the Workload API.
pub async fn start(params: RunParams) -> Result<RunningAgent, AgentError> {
    let (listener, guard) = bind_socket(&params.socket)?;
    // We created the socket, so its owner is the uid we run as.
    let own_uid = std::fs::symlink_metadata(&params.socket)
        .map_err(|e| AgentError::Config(format!("{}: {e}", params.socket.display())))?
        .uid();
    let peers = Arc::new(params.peers.resolve(own_uid));
    tracing::info!(uids = ?peers.uids, gids = ?peers.gids, "Workload API peers allowed");
    let slot = CredentialSlot::default();
    let (tx, rx) = watch::channel(false);
    let spiffe = match params.spiffe.clone() {
        Some(sp) => Some(start_spiffe(
            sp,
            &slot,
            &params,
            (*peers).clone(),
            own_uid,
            &rx,
        )?),
        None => None,
    };
    let renewal = tokio::spawn(renewal_loop(
        params.client,
        params.attester,
        params.cfg.clone(),
        slot.clone(),
        params.clock.clone(),
        rx.clone(),
    ));
    let app = workload_api(slot.clone(), params.clock, params.cfg.wpt_lifetime)
        .layer(axum::middleware::from_fn_with_state(peers, check_peer))
        .into_make_service_with_connect_info::<PeerCred>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_requested(rx))
            .await
    });
    Ok(RunningAgent {
        slot,
        shutdown: tx,
        renewal,
        server,
        spiffe,
        _socket: guard,
    })
}

/// Run until `shutdown` resolves (or the Workload API fails).
pub async fn run(params: RunParams, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    tracing::info!(socket = %params.socket.display(), verifier = params.client.base(), attester = params.attester.name(), "locus-agent running");
    let agent = start(params).await?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if agent.is_finished() {
                    break;
                }
            }
        }
    }
    agent.stop().await
}

/// Resolves once `rx` says stop (or its sender is gone): the graceful-shutdown signal of the agent's servers.
pub(crate) async fn shutdown_requested(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_is_capped_and_fits_before_expiry() {
        let cfg = RunConfig {
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(2),
            ..RunConfig::default()
        };
        assert_eq!(retry_delay(&cfg, 1, None, 1.0), Duration::from_millis(100));
        assert_eq!(retry_delay(&cfg, 3, None, 1.0), Duration::from_millis(400));
        assert_eq!(retry_delay(&cfg, 3, None, 0.5), Duration::from_millis(200));
        assert_eq!(retry_delay(&cfg, 30, None, 1.0), Duration::from_secs(2));
        assert_eq!(
            retry_delay(&cfg, 30, Some(1.0), 1.0),
            Duration::from_millis(500)
        );
        assert_eq!(
            retry_delay(&cfg, 30, Some(0.01), 1.0),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn peer_allow_list_defaults_to_own_uid_and_root_and_explicit_lists_replace_it() {
        let peer = |uid, gid| PeerCred {
            uid: Some(uid),
            gid: Some(gid),
            pid: None,
        };
        let default = PeerAllowList::default().resolve(1000);
        assert_eq!(default.uids, vec![1000, 0]);
        assert!(default.allows(&peer(1000, 5)) && default.allows(&peer(0, 0)));
        assert!(!default.allows(&peer(1001, 1000)));
        assert_eq!(PeerAllowList::default().resolve(0).uids, vec![0]);
        let explicit = PeerAllowList {
            uids: vec![],
            gids: vec![77],
        }
        .resolve(0);
        assert!(explicit.allows(&peer(5, 77)));
        assert!(!explicit.allows(&peer(0, 0)), "root is not implied");
        let unknown = PeerCred {
            uid: None,
            gid: None,
            pid: None,
        };
        assert!(!explicit.allows(&unknown) && !default.allows(&unknown));
    }

    #[test]
    fn wpt_body_is_validated() {
        let wit = "a.b.c";
        let hash = token_hash("access-token");
        let ok = wpt_request(
            WptBody {
                aud: "https://svc.example/path".into(),
                ath: Some(hash.clone()),
                tth: None,
                oth: Some(BTreeMap::from([("X-Ctx".to_string(), hash.clone())])),
            },
            wit,
            10,
        )
        .expect("valid");
        assert_eq!(ok.wth, token_hash(wit));
        assert_eq!(ok.oth.get("x-ctx"), Some(&hash));
        for (aud, ath) in [
            ("", None),
            ("https://svc.example/p?q=1", None),
            ("https://svc.example/p#f", None),
            ("https://svc example/", None),
            ("https://svc.example/", Some("not-a-hash".to_string())),
        ] {
            let body = WptBody {
                aud: aud.into(),
                ath,
                tth: None,
                oth: None,
            };
            assert!(wpt_request(body, wit, 10).is_err(), "{aud}");
        }
        let bad_oth = WptBody {
            aud: "https://s/".into(),
            ath: None,
            tth: None,
            oth: Some(BTreeMap::from([("bad name".to_string(), hash)])),
        };
        assert!(wpt_request(bad_oth, wit, 10).is_err());
    }
}
