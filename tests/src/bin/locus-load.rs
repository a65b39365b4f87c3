//! `locus-load`: bounded load on a verifier with simulated evidence, against the crypto floor measured in the same
//! run (see `locus_tests::load`).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use locus_hw::TeeType;
use locus_tests::load::{self, LoadConfig};

#[derive(Parser, Debug)]
#[command(
    name = "locus-load",
    about = "Concurrent attestations against a verifier, measured against this machine's crypto floor; ends with one \
             RESULT line"
)]
struct Cli {
    /// The verifier's base URL, e.g. http://127.0.0.1:8443. Without it, locus-load starts its own `locus-verifier` on
    /// `examples/verifier.toml` (state in a temporary directory, plaintext on loopback) with the per-client rate limit
    /// turned off: every load client shares one address, so the default limit would answer 429 to the load itself.
    #[arg(long)]
    verifier: Option<String>,
    /// The verifier's process id when --verifier is given, for its peak RSS.
    #[arg(long)]
    verifier_pid: Option<u32>,
    /// Evidence kind: sev-snp or tdx (simulated; the profile picks the platform).
    #[arg(long, default_value = "sev-snp")]
    tee: String,
    /// Concurrent clients (connections) in the timed phase.
    #[arg(long, alias = "clients", default_value_t = 8)]
    concurrency: usize,
    /// Total attestations (each with its own challenge and evidence, prepared before the timed phase).
    #[arg(long, default_value_t = 200)]
    requests: u64,
    /// Stop the timed phase after this many seconds even if requests remain.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Simulator profile (snp-* or tdx-*); default snp-fra-1 or tdx-fra-1 after --tee.
    #[arg(long)]
    profile: Option<String>,
    /// Workload Identifier to ask for.
    #[arg(long)]
    workload: Option<String>,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let tee = match cli.tee.parse::<TeeType>() {
        Ok(t) => t,
        Err(_) => {
            eprintln!("locus-load: --tee must be sev-snp or tdx");
            return ExitCode::from(2);
        }
    };
    let profile = cli.profile.clone().unwrap_or_else(|| {
        match tee {
            TeeType::SevSnp => "snp-fra-1",
            TeeType::Tdx => "tdx-fra-1",
        }
        .to_string()
    });
    if profile.starts_with("tdx") != (tee == TeeType::Tdx) {
        eprintln!(
            "locus-load: profile {profile} is not a {} profile",
            tee.as_str()
        );
        return ExitCode::from(2);
    }
    // Kept alive until the end: the verifier process and its state directory.
    let mut own = None;
    let (verifier, verifier_pid, fsync_dir) = match cli.verifier {
        Some(url) => (url, cli.verifier_pid, None),
        None => match start_own_verifier() {
            Ok((process, dir)) => {
                let base = process.base.clone();
                println!("locus-load: started its own verifier at {base} (examples/verifier.toml; plaintext HTTP on loopback; rate_limit_per_second = 0, max_connections_per_client = 1024: per-client rate limits off for the load)");
                let pid = process.guard.id();
                let state = dir.path().join("state");
                own = Some((process, dir));
                (base, pid, Some(state))
            }
            Err(e) => {
                eprintln!("locus-load: starting a verifier: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let cfg = LoadConfig {
        verifier,
        clients: cli.concurrency,
        requests: cli.requests,
        duration: Duration::from_secs(cli.duration_secs),
        profile,
        workload: cli.workload,
        timeout: Duration::from_secs(cli.timeout_secs.max(1)),
        verifier_pid,
        fsync_dir,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("locus-load: tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(load::run(&cfg));
    drop(own);
    match result {
        Ok(report) => {
            print!("{}", report.render(&cfg));
            if report.failures.contains_key("rate_limited") {
                println!(
                    "note: the verifier's per-client rate limit refused part of the load (all clients share one \
                     address): set rate_limit_per_second = 0 under [server] for a load run, or run locus-load without \
                     --verifier"
                );
            }
            println!("{}", report.result_line(tee));
            if report.issued > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("locus-load: {e}");
            ExitCode::from(2)
        }
    }
}

/// Start `locus-verifier serve` on a copy of `examples/verifier.toml` with the per-client rate limit off.
fn start_own_verifier() -> Result<(locus_tests::procs::VerifierProcess, tempfile::TempDir), String>
{
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let config = locus_tests::paths::example_config_for(&dir.path().join("state"), None)
        .map_err(|e| e.to_string())?
        .replacen(
            "[server]\n",
            "[server]\nrate_limit_per_second = 0\nmax_connections_per_client = 1024\n",
            1,
        );
    if !config.contains("rate_limit_per_second = 0") {
        return Err("the example configuration has no [server] table".into());
    }
    let path = dir.path().join("verifier.toml");
    std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
    let bin = locus_tests::procs::workspace_bin("locus-verifier")?;
    let process = locus_tests::procs::VerifierProcess::start(
        &bin,
        &path,
        &dir.path().join("verifier.stderr"),
        Duration::from_secs(120),
    )?;
    Ok((process, dir))
}
