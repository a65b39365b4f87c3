//! The verifier HTTP service (DESIGN §7): config, policy, residency, challenges, issuance, keys, audit, metrics.
//!
//! Request flow for `POST /v1/attest`: body limits → nonce MAC and age ([`challenge`]) → agent JWK → collateral and
//! appraisal of the evidence off the async workers (`crate::appraisal`) → the pure decision (`crate::decision`:
//! binding, workload, key, policy, residency, geo-fence) → WIT + EAR signed ([`issue`]) → audit record built from the
//! decision and made durable ([`audit`]) → answer. Every refusal is a problem+json with its stable code.

pub mod audit;
pub mod challenge;
pub mod http;
pub mod issue;
pub mod keys;
pub mod metrics;
pub mod state;

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
    let audit = audit::AuditLog::open(&config.server.audit).map_err(ServeError::Audit)?;
    let runtime = state::build_runtime(config, true)?;
    if runtime.config.trust.simulator {
        tracing::warn!("trust.simulator = true: simulator evidence is accepted and every credential says simulated");
    }
    let service = Arc::new(Service::new(runtime, audit));
    spawn_reload_on_sighup(service.clone());
    spawn_key_rescan(service.clone());
    let draining = service.clone();
    let shutdown = async move {
        shutdown.await;
        // Readiness goes false first so a load balancer stops sending while in-flight requests drain.
        draining
            .ready
            .store(false, std::sync::atomic::Ordering::Relaxed);
    };
    let app = http::router(service);
    // The peer address reaches handlers as `ConnectInfo` (per-client collateral budgets).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

fn spawn_reload_on_sighup(service: Arc<Service>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading configuration");
                    let svc = service.clone();
                    // Reload reads files and checks keys: keep it off the async workers.
                    let _ = tokio::task::spawn_blocking(move || svc.reload()).await;
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot install the SIGHUP handler; reload disabled"),
    }
}

/// Reload when the key files change (a `keys rotate`, an updated Kubernetes Secret), so replicas pick up a rotation
/// without a signal. A failed reload keeps the running keys, exactly like SIGHUP.
fn spawn_key_rescan(service: Arc<Service>) {
    let rt = service.runtime();
    let Some(every) = rt.config.server.key_rescan else {
        return;
    };
    let dir = rt.config.server.keys_dir.clone();
    tokio::spawn(async move {
        let mut seen = keys::fingerprint(&dir);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
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
    /// The configuration file (DESIGN §8).
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
    /// Create a new signing key that becomes active; the old one stays published until its tokens expire.
    /// Running replicas pick it up on SIGHUP or restart.
    Rotate {
        #[arg(long)]
        config: PathBuf,
    },
}

/// Run `serve`; returns the process exit code (0 after a clean shutdown, 1 on a runtime error, 2 on bad config or
/// arguments). Prints `listening on ADDR` on stdout once bound.
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
        match listener.local_addr() {
            Ok(bound) => {
                println!("listening on {bound}");
                let _ = std::io::stdout().flush();
            }
            Err(e) => {
                eprintln!("local address: {e}");
                return 1;
            }
        }
        match run(listener, config, shutdown_signal()).await {
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

/// Run `keys ...`; returns the exit code.
pub fn run_keys(args: &KeysArgs) -> u8 {
    match &args.command {
        KeysCommand::Rotate { config: path } => {
            let cfg = match config::load(path) {
                Ok(c) => c,
                Err(e) => {
                    eprint!("{e}");
                    return 2;
                }
            };
            let dir = &cfg.server.keys_dir;
            if let Err(e) = keys::KeySet::ensure(dir) {
                eprintln!("keys: {e}");
                return 1;
            }
            let retain = cfg.longest_ttl() + keys::RETAIN_SKEW;
            match keys::KeySet::rotate(dir, http::now_unix(), retain) {
                Ok((kid, removed)) => {
                    println!(
                        "{}",
                        serde_json::json!({
                            "active_kid": kid,
                            "removed": removed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                        })
                    );
                    0
                }
                Err(e) => {
                    eprintln!("keys rotate: {e}");
                    1
                }
            }
        }
    }
}
