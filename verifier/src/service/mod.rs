//! The verifier HTTP service (docs/api.md): config, policy, residency, challenges, issuance, keys, audit, metrics.
//!
//! Request flow for `POST /v1/attest`: body limits → nonce MAC and age ([`challenge`]) → agent JWK → collateral and
//! appraisal of the evidence off the async workers (`crate::appraisal`) → the pure decision (`crate::decision`:
//! binding, workload, key, policy, residency, geo-fence) → WIT + EAR signed ([`issue`]) → audit record built from the
//! decision and made durable ([`audit`]) → answer. Every refusal is a problem+json with its stable code.

pub mod admission;
pub mod audit;
pub mod challenge;
pub mod cpu;
pub mod http;
pub mod issue;
pub mod keys;
pub mod metrics;
pub mod schedule;
pub mod state;
pub mod transport;

/// The configuration and endorsements live at the crate root (the decision uses them too); re-exported here so
/// `service::config` keeps naming them.
pub use crate::{config, endorsement};

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Config;
pub use state::{Runtime, Service};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Build(#[from] state::BuildError),
    #[error("audit log: {0}")]
    Audit(std::io::Error),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error(
        "refusing to serve plaintext HTTP on {0}: configure server.tls_cert/tls_key, listen on a loopback address, or \
         set server.allow_plaintext = true"
    )]
    Plaintext(SocketAddr),
}

/// Serve `config` on `listener` until `shutdown` resolves, then drain in-flight requests.
///
/// Creates missing keys in `server.keys_dir` (first start), opens the audit log, and reloads the configuration file
/// (and keys, and endorsements) on `SIGHUP`; a reload that fails keeps the running configuration.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    run_with_ready(listener, config, shutdown, |_| {}).await
}

/// [`run`], calling `ready` with the bound address once the keys, the audit log and the runtime are loaded, just
/// before the first connection is served (`locus-verifier serve` prints `listening on ADDR` there, so whoever waits
/// for that line finds the keys it may rotate next already loaded and watched).
pub async fn run_with_ready(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let local = listener.local_addr()?;
    let tls = match &config.server.tls {
        Some((cert, key)) => Some(Arc::new(
            transport::Tls::load(cert, key).map_err(ServeError::Tls)?,
        )),
        None if transport::is_loopback(&local) => None,
        None if config.server.allow_plaintext => {
            tracing::warn!(listen = %local, "server.allow_plaintext = true: serving plaintext HTTP on a non-loopback address");
            None
        }
        None => return Err(ServeError::Plaintext(local)),
    };
    let limits = transport::Limits {
        header_read_timeout: config.server.header_read_timeout,
        idle_timeout: config.server.idle_timeout,
        handshake_timeout: config.server.header_read_timeout,
        max_connections: config.server.max_connections,
        max_connections_per_client: config.server.max_connections_per_client,
    };
    let audit = audit::AuditLog::open(&config.server.audit).map_err(ServeError::Audit)?;
    let runtime = state::build_runtime(config, true)?;
    // The key files as just loaded, taken before anything is served: a rotation from then on is a change the rescan
    // sees (taken later, in the rescan task, a rotation in between was never reloaded).
    let loaded_keys = keys::fingerprint(&runtime.config.server.keys_dir);
    if runtime.config.trust.simulator {
        tracing::warn!("trust.simulator = true: simulator evidence is accepted and every credential says simulated");
    }
    let service = Arc::new(Service::new(runtime, audit)?);
    spawn_reload_on_sighup(service.clone(), tls.clone());
    spawn_key_rescan(service.clone(), tls.clone(), loaded_keys);
    let draining = service.clone();
    let shutdown = async move {
        shutdown.await;
        // Readiness goes false first so a load balancer stops sending while in-flight requests drain.
        draining
            .ready
            .store(false, std::sync::atomic::Ordering::Relaxed);
    };
    let refused = service.clone();
    let app = http::router(service);
    ready(local);
    // The transport puts the peer address into every request as `ConnectInfo` (admission, collateral budgets).
    transport::serve(
        listener,
        app,
        tls,
        limits,
        Arc::new(move || refused.metrics.connection_refused()),
        shutdown,
    )
    .await?;
    Ok(())
}

fn spawn_reload_on_sighup(service: Arc<Service>, tls: Option<Arc<transport::Tls>>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading configuration");
                    let svc = service.clone();
                    let tls = tls.clone();
                    // Reload reads files and checks keys: keep it off the async workers.
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Some(tls) = tls {
                            if let Err(e) = tls.reload() {
                                tracing::error!(error = %e, "TLS reload failed; keeping the running certificate");
                            }
                        }
                        svc.reload()
                    })
                    .await;
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot install the SIGHUP handler; reload disabled"),
    }
}

/// Reload when the key files change (a `keys rotate`, an updated Kubernetes Secret), so replicas pick up a rotation
/// without a signal. A failed reload keeps the running keys, exactly like SIGHUP.
fn spawn_key_rescan(
    service: Arc<Service>,
    tls: Option<Arc<transport::Tls>>,
    loaded_keys: Vec<keys::Fingerprint>,
) {
    let rt = service.runtime();
    // Forget rate-limit buckets of clients gone quiet (bounded memory under a flood of addresses).
    let forget = service.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            tick.tick().await;
            forget.admission.forget_idle_clients();
        }
    });
    let Some(every) = rt.config.server.key_rescan else {
        return;
    };
    let dir = rt.config.server.keys_dir.clone();
    tokio::spawn(async move {
        let mut seen = loaded_keys;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(tls) = &tls {
                let tls = tls.clone();
                let _ = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
            }
            let now = keys::fingerprint(&dir);
            if now != seen {
                tracing::info!(dir = %dir.display(), "key files changed: reloading");
                let svc = service.clone();
                let ok = tokio::task::spawn_blocking(move || svc.reload().is_ok())
                    .await
                    .unwrap_or(false);
                if ok {
                    seen = now;
                }
            }
        }
    });
}

/// `locus-verifier serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (docs/configuration.md).
    #[arg(long)]
    pub config: PathBuf,
    /// Listen address; overrides `server.listen`. `127.0.0.1:0` picks a free port (printed on stdout).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// `locus-verifier keys`.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a new WIT signing key, published in the JWKS at once and signing from `--activate-in` seconds later
    /// (its not-before, in the file name), so relying parties' cached JWKS hold it before the first WIT it signs.
    /// The old key signs until then and stays published until its tokens expire; later rotations prune it.
    /// Running replicas pick the file up on SIGHUP, restart or key rescan, and all switch at the not-before.
    /// Prints {"kid", "not_before", "activates_at", "active_kid", "removed"}.
    Rotate {
        #[arg(long)]
        config: PathBuf,
        /// Seconds from now until the new key signs. Below the JWKS cache lifetime plus key rescan plus skew,
        /// relying parties may see WITs from a key they do not have yet (a warning says so); 0 for an emergency.
        #[arg(long, default_value_t = keys::DEFAULT_ACTIVATE_IN.as_secs())]
        activate_in: u64,
    },
    /// Create a new SPIFFE X.509 CA key (with its self-signed certificate) and a new JWT-SVID signing key, published
    /// in the SPIFFE bundle at once and signing from `--activate-in` seconds later, like `rotate` for WIT keys; the
    /// previous ones stay published until the SVIDs they signed expire. Prints {"ca_kid", "jwt_svid_kid",
    /// "not_before", "activates_at", "removed"}.
    RotateSpiffe {
        #[arg(long)]
        config: PathBuf,
        /// Seconds from now until the new keys sign.
        #[arg(long, default_value_t = keys::DEFAULT_ACTIVATE_IN.as_secs())]
        activate_in: u64,
    },
    /// Create a new challenge MAC key that makes nonces from `--activate-in` seconds later; until then the current
    /// one does, and it keeps verifying nonces for the challenge ttl plus skew after the switch, so no challenge
    /// in flight is lost. Prints {"not_before", "activates_at", "removed"}.
    RotateChallenge {
        #[arg(long)]
        config: PathBuf,
        /// Seconds from now until the new MAC key makes nonces (every replica must have loaded it by then).
        #[arg(long, default_value_t = keys::DEFAULT_ACTIVATE_IN.as_secs())]
        activate_in: u64,
    },
}

/// Run `serve`; returns the process exit code (0 after a clean shutdown, 1 on a runtime error, 2 on bad config or
/// arguments). Prints `listening on ADDR` on stdout once bound and ready to serve.
pub fn run_serve(args: &ServeArgs) -> u8 {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return 2;
        }
    };
    let Some(addr) = args.listen.or(config.server.listen) else {
        eprintln!("no listen address: set server.listen or pass --listen");
        return 2;
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server.async_workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {addr}: {e}");
                return 1;
            }
        };
        let listening = |bound: SocketAddr| {
            println!("listening on {bound}");
            let _ = std::io::stdout().flush();
        };
        match run_with_ready(listener, config, shutdown_signal(), listening).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("locus-verifier: {e}");
                1
            }
        }
    })
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down: draining in-flight requests");
}

/// Run `keys ...`; returns the exit code (0 done, 1 key error, 2 bad config).
pub fn run_keys(args: &KeysArgs) -> u8 {
    let (path, activate_in) = match &args.command {
        KeysCommand::Rotate {
            config,
            activate_in,
        }
        | KeysCommand::RotateSpiffe {
            config,
            activate_in,
        }
        | KeysCommand::RotateChallenge {
            config,
            activate_in,
        } => (config, std::time::Duration::from_secs(*activate_in)),
    };
    let cfg = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return 2;
        }
    };
    let dir = &cfg.server.keys_dir;
    let now = http::now_unix();
    // Every kind of key exists afterwards (the documented way to fill a Kubernetes Secret), whichever is rotated.
    let ensured = keys::KeySet::ensure(dir)
        .and_then(|_| keys::KeySet::ensure_kind(dir, keys::KeyKind::JwtSvid))
        .and_then(|_| crate::spiffe::ca::SpiffeCa::ensure(dir, &cfg.credentials.trust_domain, now));
    if let Err(e) = ensured {
        eprintln!("keys: {e}");
        return 1;
    }
    let safe = keys::safe_activate_in(cfg.server.key_rescan);
    if activate_in < safe {
        eprintln!(
            "warning: --activate-in {}s is shorter than {}s (JWKS max-age + key rescan + skew): replicas or \
             relying parties may not have the new key when it starts",
            activate_in.as_secs(),
            safe.as_secs()
        );
    }
    let result = match &args.command {
        KeysCommand::Rotate { .. } => {
            keys::KeySet::rotate(dir, now, activate_in, cfg.longest_ttl() + keys::RETAIN_SKEW)
                .and_then(|r| Ok((r, Some(keys::KeySet::load(dir)?.active(now).kid.clone()))))
        }
        KeysCommand::RotateSpiffe { .. } => {
            let retain = cfg.longest_ttl() + keys::RETAIN_SKEW;
            let rotated =
                keys::KeySet::rotate_kind(dir, keys::KeyKind::SpiffeCa, now, activate_in, retain)
                    .and_then(|ca| {
                        // The new CA's certificate, written before the JWT-SVID key so a failure leaves no key without one.
                        crate::spiffe::ca::SpiffeCa::ensure(
                            dir,
                            &cfg.credentials.trust_domain,
                            now,
                        )?;
                        let jwt = keys::KeySet::rotate_kind(
                            dir,
                            keys::KeyKind::JwtSvid,
                            now,
                            activate_in,
                            retain,
                        )?;
                        Ok((ca, jwt))
                    });
            return match rotated {
                Ok((ca, jwt)) => {
                    let removed: Vec<String> = ca
                        .removed
                        .iter()
                        .chain(&jwt.removed)
                        .map(|p| p.display().to_string())
                        .collect();
                    let report = serde_json::json!({
                        "ca_kid": ca.kid,
                        "jwt_svid_kid": jwt.kid,
                        "not_before": ca.not_before,
                        "jwt_svid_not_before": jwt.not_before,
                        "activates_at": http::rfc3339(ca.not_before),
                        "removed": removed,
                    });
                    println!("{report}");
                    0
                }
                Err(e) => {
                    eprintln!("keys: {e}");
                    1
                }
            };
        }
        KeysCommand::RotateChallenge { .. } => keys::rotate_challenge(
            dir,
            now,
            activate_in,
            challenge::retention(cfg.server.challenge_ttl),
        )
        .map(|r| (r, None)),
    };
    match result {
        Ok((r, active_kid)) => {
            let mut report = serde_json::json!({
                "not_before": r.not_before,
                "activates_at": http::rfc3339(r.not_before),
                "removed": r.removed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            });
            if let (Some(kid), Some(active)) = (r.kid, active_kid) {
                // `active_kid`: the key signing now (the new one only with --activate-in 0).
                report["kid"] = kid.into();
                report["active_kid"] = active.into();
            }
            println!("{report}");
            0
        }
        Err(e) => {
            eprintln!("keys: {e}");
            1
        }
    }
}
