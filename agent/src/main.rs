//! `locus-agent`: parse arguments, set up tracing, call the library.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use locus_agent::attest::{obtain_credential, system_now};
use locus_agent::client::VerifierClient;
use locus_agent::run::{self, PeerAllowList, RunConfig, RunParams, SpiffeParams};
use locus_agent::select::{open_attester, AttesterOptions, TeeChoice};
use locus_agent::spiffe::identity::IdentityMap;
use locus_agent::svid_client::VerifierSvidSource;
use locus_agent::AgentError;
use locus_hw::backend::configfs_tsm::{RealTsmFs, DEFAULT_ROOT};
use locus_hw::backend::BackendConfig;

#[derive(Parser, Debug)]
#[command(
    name = "locus-agent",
    version,
    about = "Locus in-VM agent: attest, hold the key, serve the Workload API",
    after_help = "Documentation: docs/agent.md (running, backends, troubleshooting) and docs/api.md (Workload API)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Attest once and print the WIT.
    Attest {
        #[command(flatten)]
        common: Common,
        /// Print one JSON object: {"wit","claims","ear"?} or {"error":{"code","message"}}.
        #[arg(long)]
        json: bool,
    },
    /// Keep a valid WIT and serve the Workload API on a Unix socket.
    Run {
        #[command(flatten)]
        common: Common,
        /// Workload API socket path (created with mode 0660).
        #[arg(long)]
        socket: PathBuf,
        /// First retry delay after a failed attestation, milliseconds.
        #[arg(long, default_value_t = 1000)]
        retry_initial_ms: u64,
        /// Longest retry delay, milliseconds.
        #[arg(long, default_value_t = 60_000)]
        retry_max_ms: u64,
        /// Serve Workload API peers with this uid (repeatable). Default, when neither --allow-uid nor --allow-gid
        /// is given: the agent's own uid and root.
        #[arg(long = "allow-uid", value_name = "UID")]
        allow_uid: Vec<u32>,
        /// Serve Workload API peers whose effective gid is this one (repeatable; supplementary groups do not count).
        #[arg(long = "allow-gid", value_name = "GID")]
        allow_gid: Vec<u32>,
        /// Also serve the SPIFFE Workload API (gRPC) on this socket (mode 0660): X.509- and JWT-SVIDs for fresh
        /// per-SVID keys, and bundles, issued by the verifier. Peers must pass --allow-uid / --allow-gid too.
        #[arg(long, value_name = "PATH")]
        spiffe_socket: Option<PathBuf>,
        /// SPIFFE identity of peers with this uid, as UID=spiffe://trust-domain/path (repeatable). Default: the
        /// agent's own uid gets --workload.
        #[arg(long = "spiffe-uid", value_name = "UID=ID", value_parser = locus_agent::spiffe::identity::parse_entry)]
        spiffe_uid: Vec<(u32, String)>,
        /// SPIFFE identity of peers with this effective gid (when their uid has no --spiffe-uid), GID=ID
        /// (repeatable).
        #[arg(long = "spiffe-gid", value_name = "GID=ID", value_parser = locus_agent::spiffe::identity::parse_entry)]
        spiffe_gid: Vec<(u32, String)>,
        /// EXPERIMENTAL: serve the Workload API's WIT-SVID profile (FetchWITSVID, FetchWITBundles) too.
        #[arg(long, requires = "spiffe_socket")]
        spiffe_wit_svid: bool,
    },
}

#[derive(Args, Debug)]
struct Common {
    /// The verifier's base URL.
    #[arg(long)]
    verifier: String,
    /// Evidence source: auto, sev-snp, tdx, sim-snp, sim-tdx.
    #[arg(long, default_value = "auto")]
    tee: TeeChoice,
    /// Simulator profile (with --tee sim-snp|sim-tdx).
    #[arg(long)]
    sim_profile: Option<String>,
    /// Workload Identifier to ask for.
    #[arg(long)]
    workload: Option<String>,
    /// configfs-tsm report root.
    #[arg(long, default_value = DEFAULT_ROOT)]
    tsm_root: PathBuf,
    /// Path of libtdx_attest (default: libtdx_attest.so.1, then libtdx_attest.so).
    #[arg(long)]
    tdx_attest_lib: Option<PathBuf>,
    /// Per-request timeout towards the verifier, seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// DANGER: allow a plain http:// verifier URL to a non-loopback host (without it: https://, or http:// to
    /// 127.0.0.0/8, ::1 or localhost only).
    #[arg(long)]
    insecure_http: bool,
    /// PEM file of the CA (or CAs) the verifier's TLS certificate must chain to, instead of the system roots.
    #[arg(long, value_name = "FILE")]
    verifier_ca: Option<PathBuf>,
}

impl Common {
    fn attester_options(&self) -> AttesterOptions {
        AttesterOptions {
            tee: self.tee,
            sim_profile: self.sim_profile.clone(),
            backend: BackendConfig {
                tsm: Arc::new(RealTsmFs::new(self.tsm_root.clone())),
                tdx_attest_library: self.tdx_attest_lib.clone(),
                ..BackendConfig::default()
            },
        }
    }

    fn client(&self) -> Result<VerifierClient, AgentError> {
        let timeout = Duration::from_secs(self.timeout_secs.max(1));
        if self.insecure_http {
            VerifierClient::danger_insecure_http(&self.verifier, timeout)
        } else if let Some(path) = &self.verifier_ca {
            let pem = std::fs::read(path).map_err(|e| {
                AgentError::Config(format!("--verifier-ca {}: {e}", path.display()))
            })?;
            VerifierClient::with_ca(&self.verifier, timeout, &pem)
        } else {
            VerifierClient::new(&self.verifier, timeout)
        }
    }
}

/// The SPIFFE Workload API flags.
struct SpiffeFlags {
    socket: Option<PathBuf>,
    uid: Vec<(u32, String)>,
    gid: Vec<(u32, String)>,
    wit_svid: bool,
}

impl SpiffeFlags {
    fn params(self, client: &VerifierClient) -> Result<Option<SpiffeParams>, AgentError> {
        let Some(socket) = self.socket else {
            if !self.uid.is_empty() || !self.gid.is_empty() {
                return Err(AgentError::Config(
                    "--spiffe-uid / --spiffe-gid need --spiffe-socket".into(),
                ));
            }
            return Ok(None);
        };
        let mut identities = IdentityMap::default();
        for (uid, id) in self.uid {
            identities = identities.with_uid(uid, id);
        }
        for (gid, id) in self.gid {
            identities = identities.with_gid(gid, id);
        }
        Ok(Some(SpiffeParams {
            socket,
            identities,
            wit_svid: self.wit_svid,
            source: Arc::new(VerifierSvidSource::new(client.clone())),
        }))
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn attest(common: &Common, json: bool) -> Result<(), AgentError> {
    let client = common.client()?;
    let attester = open_attester(&common.attester_options())?;
    let cred =
        obtain_credential(&client, attester, common.workload.as_deref(), &system_now).await?;
    if json {
        let mut out = serde_json::json!({ "wit": cred.wit(), "claims": cred.claims() });
        if let Some(ear) = cred.ear() {
            out["ear"] = serde_json::Value::String(ear.to_string());
        }
        println!("{out}");
    } else {
        println!("{}", cred.wit());
    }
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
    tracing::info!("shutting down");
}

async fn run_agent(
    common: &Common,
    socket: PathBuf,
    retry_initial_ms: u64,
    retry_max_ms: u64,
    peers: PeerAllowList,
    spiffe: SpiffeFlags,
) -> Result<(), AgentError> {
    if retry_initial_ms == 0 || retry_max_ms < retry_initial_ms {
        return Err(AgentError::Config(
            "need 0 < --retry-initial-ms <= --retry-max-ms".into(),
        ));
    }
    let client = common.client()?;
    let spiffe = spiffe.params(&client)?;
    let params = RunParams {
        client,
        attester: open_attester(&common.attester_options())?,
        cfg: RunConfig {
            retry_initial: Duration::from_millis(retry_initial_ms),
            retry_max: Duration::from_millis(retry_max_ms),
            workload: common.workload.clone(),
            ..RunConfig::default()
        },
        socket,
        peers,
        clock: run::system_clock(),
        spiffe,
    };
    run::run(params, shutdown_signal()).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Attest { common, json } => {
            init_tracing("warn");
            match attest(&common, json).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    if json {
                        println!("{}", e.to_json());
                    } else {
                        eprintln!("locus-agent: {} ({})", e, e.code());
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run {
            common,
            socket,
            retry_initial_ms,
            retry_max_ms,
            allow_uid,
            allow_gid,
            spiffe_socket,
            spiffe_uid,
            spiffe_gid,
            spiffe_wit_svid,
        } => {
            init_tracing("info");
            let peers = PeerAllowList {
                uids: allow_uid,
                gids: allow_gid,
            };
            let spiffe = SpiffeFlags {
                socket: spiffe_socket,
                uid: spiffe_uid,
                gid: spiffe_gid,
                wit_svid: spiffe_wit_svid,
            };
            match run_agent(
                &common,
                socket,
                retry_initial_ms,
                retry_max_ms,
                peers,
                spiffe,
            )
            .await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(code = e.code(), error = %e, "locus-agent stopped");
                    eprintln!("locus-agent: {} ({})", e, e.code());
                    ExitCode::FAILURE
                }
            }
        }
    }
}
