//! The gRPC service `SpiffeWorkloadAPI` on a Unix socket.
//!
//! Every call passes [`Gate`] first (a tonic interceptor, so no handler runs before it):
//! 1. the metadata `workload.spiffe.io` must be exactly `true`, else `InvalidArgument` (SPIFFE Workload Endpoint §3);
//! 2. the caller's `SO_PEERCRED` must be on the agent's [`PeerAllowList`], else `PermissionDenied`;
//! 3. it must map to an identity ([`IdentityMap`]), else `PermissionDenied` (no identity is defined for it).
//!
//! Then: `FetchX509SVID`, `FetchX509Bundles`, `FetchJWTBundles` and (with the profile on) `FetchWITSVID`,
//! `FetchWITBundles` stream the current answer and a new one after every change; `FetchJWTSVID` issues a JWT-SVID on
//! each call; `ValidateJWTSVID` checks a token against the JWT bundle ([`locus_wimse::jwt_svid`]). Without the
//! WIT-SVID profile its two RPCs answer `Unimplemented`, as the profile requires. A stream whose first answer is not
//! ready within [`FIRST_ANSWER_WAIT`] ends with `Unavailable` (clients retry with back-off).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status};

use crate::error::AgentError;
use crate::run::{bind_socket, PeerAllowList, PeerCred, SocketGuard};
use crate::spiffe::identity::{IdentityKey, IdentityMap};
use crate::spiffe::pb;
use crate::spiffe::pb::spiffe_workload_api_server::{SpiffeWorkloadApi, SpiffeWorkloadApiServer};
use crate::spiffe::state::{spiffe_id_of, Identity, JwtSvidError, SpiffeState};

/// The security header every request must carry.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

/// How long a stream waits for its first answer before `Unavailable`.
pub const FIRST_ANSWER_WAIT: Duration = Duration::from_secs(30);

/// The identity the gate resolved, handed to the handlers in the request extensions.
#[derive(Debug, Clone)]
struct Caller(IdentityKey);

/// The interceptor: header, peer, identity.
#[derive(Debug, Clone)]
pub struct Gate {
    allow: Arc<PeerAllowList>,
    map: Arc<IdentityMap>,
    own_uid: u32,
    default: IdentityKey,
}

impl Gate {
    /// A gate for an agent running as `own_uid` whose default identity is `default`.
    pub fn new(allow: PeerAllowList, map: IdentityMap, own_uid: u32, default: IdentityKey) -> Self {
        Self {
            allow: Arc::new(allow),
            map: Arc::new(map),
            own_uid,
            default,
        }
    }

    fn check(&self, mut req: Request<()>) -> Result<Request<()>, Status> {
        match req.metadata().get(SECURITY_HEADER).map(|v| v.as_bytes()) {
            Some(b"true") => {}
            _ => {
                return Err(Status::invalid_argument(
                    "security header missing: the request must carry the metadata workload.spiffe.io: true",
                ))
            }
        }
        let peer = PeerCred::from_ucred(
            req.extensions()
                .get::<UdsConnectInfo>()
                .and_then(|i| i.peer_cred.as_ref()),
        );
        if !self.allow.allows(&peer) {
            tracing::warn!(uid = ?peer.uid, gid = ?peer.gid, pid = ?peer.pid, "SPIFFE Workload API peer refused: not on the allow-list");
            return Err(Status::permission_denied(format!(
                "{} may not use this Workload API (see --allow-uid / --allow-gid)",
                who(&peer)
            )));
        }
        let Some(identity) = self.map.resolve(&peer, self.own_uid, &self.default) else {
            tracing::warn!(uid = ?peer.uid, gid = ?peer.gid, "SPIFFE Workload API peer has no identity");
            return Err(Status::permission_denied(format!(
                "no SPIFFE identity is defined for {} (see --spiffe-uid / --spiffe-gid)",
                who(&peer)
            )));
        };
        req.extensions_mut().insert(Caller(identity));
        Ok(req)
    }
}

fn who(peer: &PeerCred) -> String {
    match (peer.uid, peer.gid) {
        (Some(uid), Some(gid)) => format!("uid {uid} gid {gid}"),
        _ => "a peer with unknown credentials".to_string(),
    }
}

impl tonic::service::Interceptor for Gate {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        self.check(req)
    }
}

/// The service implementation.
#[derive(Debug, Clone)]
pub struct WorkloadApi {
    state: Arc<SpiffeState>,
    shutdown: watch::Receiver<bool>,
}

type Stream<T> = ReceiverStream<Result<T, Status>>;

fn caller<T>(req: &Request<T>) -> Result<IdentityKey, Status> {
    req.extensions()
        .get::<Caller>()
        .map(|c| c.0.clone())
        .ok_or_else(|| Status::internal("request did not pass the gate"))
}

impl WorkloadApi {
    /// A service over `state`; its streams end when `shutdown` turns true.
    pub fn new(state: Arc<SpiffeState>, shutdown: watch::Receiver<bool>) -> Self {
        Self { state, shutdown }
    }

    fn identity(&self, key: &IdentityKey) -> Result<Arc<Identity>, Status> {
        self.state
            .identity(key)
            .cloned()
            .ok_or_else(|| Status::permission_denied("no credential is kept for this identity"))
    }

    /// Stream `build`'s answer now and after every change, skipping repeats. `None` from `build` means "not ready":
    /// before the first answer that waits at most [`FIRST_ANSWER_WAIT`]; after it, the previous answer stands.
    fn stream<T, F>(&self, build: F, not_ready: impl Fn() -> String + Send + 'static) -> Stream<T>
    where
        T: PartialEq + Clone + Send + 'static,
        F: Fn(&SpiffeState) -> Option<T> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(4);
        let state = self.state.clone();
        let mut shutdown = self.shutdown.clone();
        let mut epoch = state.subscribe();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + FIRST_ANSWER_WAIT;
            let mut last: Option<T> = None;
            loop {
                epoch.borrow_and_update();
                match build(&state) {
                    Some(msg) if last.as_ref() != Some(&msg) => {
                        if tx.send(Ok(msg.clone())).await.is_err() {
                            return;
                        }
                        last = Some(msg);
                    }
                    Some(_) => {}
                    None if last.is_none() && tokio::time::Instant::now() >= deadline => {
                        let _ = tx.send(Err(Status::unavailable(not_ready()))).await;
                        return;
                    }
                    None => {}
                }
                tokio::select! {
                    r = epoch.changed() => if r.is_err() { return },
                    _ = tx.closed() => return,
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep_until(deadline), if last.is_none() => {}
                }
            }
        });
        ReceiverStream::new(rx)
    }
}

fn bundles_map(
    state: &SpiffeState,
    f: impl Fn(&crate::spiffe::bundle::SpiffeBundle) -> Vec<u8>,
) -> Option<HashMap<String, Vec<u8>>> {
    let b = state.bundle()?;
    Some(HashMap::from([(b.trust_domain_id.clone(), f(&b.bundle))]))
}

fn not_ready_message(state: &SpiffeState, key: &IdentityKey, what: &str) -> String {
    let why = state
        .identity(key)
        .and_then(|i| {
            i.last_error().or_else(|| {
                i.slot
                    .stats()
                    .last_error()
                    .map(|(c, m)| format!("attestation: {c}: {m}"))
            })
        })
        .map(|e| format!(" (last failure: {e})"))
        .unwrap_or_default();
    format!("no {what} available yet{why}")
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadApi {
    type FetchX509SVIDStream = Stream<pb::X509svidResponse>;
    type FetchX509BundlesStream = Stream<pb::X509BundlesResponse>;
    type FetchJWTBundlesStream = Stream<pb::JwtBundlesResponse>;
    type FetchWITSVIDStream = Stream<pb::WitsvidResponse>;
    type FetchWITBundlesStream = Stream<pb::WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<pb::X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        let key = caller(&request)?;
        let ident = self.identity(&key)?;
        let state = self.state.clone();
        let build = move |s: &SpiffeState| {
            let svid = ident.x509(s.now())?;
            let bundle = s.bundle()?;
            Some(pb::X509svidResponse {
                svids: vec![pb::X509svid {
                    spiffe_id: svid.spiffe_id.clone(),
                    x509_svid: svid.chain.concat(),
                    x509_svid_key: svid.key_pkcs8.to_vec(),
                    bundle: bundle.bundle.x509_der(),
                    hint: String::new(),
                }],
                crl: Vec::new(),
                federated_bundles: HashMap::new(),
            })
        };
        let not_ready = move || not_ready_message(&state, &key, "X.509-SVID");
        Ok(Response::new(self.stream(build, not_ready)))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<pb::X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        let key = caller(&request)?;
        let state = self.state.clone();
        let build = |s: &SpiffeState| {
            Some(pb::X509BundlesResponse {
                crl: Vec::new(),
                bundles: bundles_map(s, |b| b.x509_der())?,
            })
        };
        let not_ready = move || not_ready_message(&state, &key, "X.509 bundle");
        Ok(Response::new(self.stream(build, not_ready)))
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<pb::JwtsvidRequest>,
    ) -> Result<Response<pb::JwtsvidResponse>, Status> {
        let key = caller(&request)?;
        let ident = self.identity(&key)?;
        let req = request.into_inner();
        if req.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        entitled(&ident, &req.spiffe_id, self.state.now())?;
        let (spiffe_id, issued) =
            self.state
                .issue_jwt(&ident, req.audience)
                .await
                .map_err(|e| match e {
                    JwtSvidError::Audience(m) => Status::invalid_argument(m),
                    JwtSvidError::Unavailable(m) => Status::unavailable(m),
                })?;
        Ok(Response::new(pb::JwtsvidResponse {
            svids: vec![pb::Jwtsvid {
                spiffe_id,
                svid: issued.token,
                hint: String::new(),
            }],
        }))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<pb::JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        let key = caller(&request)?;
        let state = self.state.clone();
        let build = |s: &SpiffeState| {
            Some(pb::JwtBundlesResponse {
                bundles: bundles_map(s, |b| b.jwt_jwks_json().into_bytes())?,
            })
        };
        let not_ready = move || not_ready_message(&state, &key, "JWT bundle");
        Ok(Response::new(self.stream(build, not_ready)))
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<pb::ValidateJwtsvidRequest>,
    ) -> Result<Response<pb::ValidateJwtsvidResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        if req.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if req.svid.is_empty() {
            return Err(Status::invalid_argument("svid must be specified"));
        }
        let bundle = self
            .state
            .bundle()
            .ok_or_else(|| Status::unavailable("no JWT bundle available yet"))?;
        let keys = bundle
            .bundle
            .jwt_jwks()
            .map_err(|e| Status::internal(e.to_string()))?;
        let verified = locus_wimse::jwt_svid::validate_jwt_svid(
            &req.svid,
            &req.audience,
            &keys,
            &bundle.trust_domain,
            self.state.now(),
        )
        .map_err(|e| Status::invalid_argument(format!("{}: {e}", e.code())))?;
        Ok(Response::new(pb::ValidateJwtsvidResponse {
            spiffe_id: verified.id.as_str().to_string(),
            claims: Some(to_struct(verified.claims)),
        }))
    }

    async fn fetch_witsvid(
        &self,
        request: Request<pb::WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        if !self.state.wit_svid_enabled() {
            return Err(wit_unimplemented());
        }
        let key = caller(&request)?;
        let ident = self.identity(&key)?;
        entitled(&ident, &request.into_inner().spiffe_id, self.state.now())?;
        let state = self.state.clone();
        let build = move |s: &SpiffeState| {
            let svid = ident.wit(s.now())?;
            Some(pb::WitsvidResponse {
                svids: vec![pb::Witsvid {
                    spiffe_id: svid.spiffe_id.clone(),
                    wit_svid: svid.wit.clone(),
                    wit_svid_key: svid.key_jwk.to_string(),
                    hint: String::new(),
                }],
            })
        };
        let not_ready = move || not_ready_message(&state, &key, "WIT-SVID");
        Ok(Response::new(self.stream(build, not_ready)))
    }

    async fn fetch_wit_bundles(
        &self,
        request: Request<pb::WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        if !self.state.wit_svid_enabled() {
            return Err(wit_unimplemented());
        }
        let key = caller(&request)?;
        let state = self.state.clone();
        let build = |s: &SpiffeState| {
            let b = s.bundle()?;
            Some(pb::WitBundlesResponse {
                bundles: HashMap::from([(b.trust_domain_id.clone(), b.bundle.wit_jwks_json())]),
            })
        };
        let not_ready = move || not_ready_message(&state, &key, "WIT bundle");
        Ok(Response::new(self.stream(build, not_ready)))
    }
}

/// A request naming a SPIFFE ID (`spiffe_id`, optional) is served only when it is the caller's identity: the
/// Workload Identifier its credential is asked for (the WIT's `sub` is checked to be that one), or, for the default
/// identity without `--workload`, the current WIT's `sub` (`Unavailable` until there is one).
fn entitled(ident: &Identity, wanted: &str, now: u64) -> Result<(), Status> {
    if wanted.is_empty() {
        return Ok(());
    }
    let current = match &ident.key {
        Some(id) => Some(id.clone()),
        None => Some(
            ident
                .slot
                .valid_at(now)
                .and_then(|c| spiffe_id_of(&c).ok())
                .ok_or_else(|| Status::unavailable("no attested credential yet"))?,
        ),
    };
    if current.as_deref() == Some(wanted) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "this caller is not entitled to {wanted}"
        )))
    }
}

fn wit_unimplemented() -> Status {
    Status::unimplemented(
        "the WIT-SVID profile is off (locus-agent run --spiffe-wit-svid turns it on)",
    )
}

/// JSON claims as a `google.protobuf.Struct`.
pub fn to_struct(claims: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: claims.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}

fn to_value(v: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value as J;
    let kind = match v {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Kind::StringValue(s),
        J::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(to_value).collect(),
        }),
        J::Object(o) => Kind::StructValue(to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A running SPIFFE Workload API server.
#[derive(Debug)]
pub struct SpiffeServer {
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    _socket: SocketGuard,
}

impl SpiffeServer {
    /// Bind `path` (mode 0660, as the REST Workload API) and serve `api` behind `gate` until `shutdown` turns true.
    pub fn start(
        path: &Path,
        api: WorkloadApi,
        gate: Gate,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, AgentError> {
        let (listener, guard) = bind_socket(path)?;
        let incoming = UnixListenerStream::new(listener);
        let svc = SpiffeWorkloadApiServer::with_interceptor(api, gate);
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, crate::run::shutdown_requested(shutdown))
                .await
        });
        Ok(Self {
            task,
            _socket: guard,
        })
    }

    /// Whether the server ended (only on an error before shutdown).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Wait for the server to end (after shutdown was signalled).
    pub async fn join(self) -> Result<(), AgentError> {
        self.task
            .await
            .map_err(|e| AgentError::Internal(format!("SPIFFE Workload API task: {e}")))?
            .map_err(|e| AgentError::Internal(format!("SPIFFE Workload API: {e}")))
    }
}
