//! `locus-load`: bounded load on a verifier with simulated evidence (see `locus_tests::load`).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use locus_tests::load::{self, LoadConfig};

#[derive(Parser, Debug)]
#[command(
    name = "locus-load",
    about = "N concurrent agents doing challenge → attest against a verifier"
)]
struct Cli {
    /// The verifier's base URL, e.g. http://127.0.0.1:8443.
    #[arg(long)]
    verifier: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Total attestation rounds.
    #[arg(long, default_value_t = 200)]
    requests: u64,
    /// Stop after this many seconds even if rounds remain.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Simulator profile (snp-* or tdx-*).
    #[arg(long, default_value = "snp-fra-1")]
    profile: String,
    /// Workload Identifier to ask for.
    #[arg(long)]
    workload: Option<String>,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = LoadConfig {
        verifier: cli.verifier,
        clients: cli.clients,
        requests: cli.requests,
        duration: Duration::from_secs(cli.duration_secs),
        profile: cli.profile,
        workload: cli.workload,
        timeout: Duration::from_secs(cli.timeout_secs.max(1)),
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
    match rt.block_on(load::run(&cfg)) {
        Ok(report) => {
            print!("{}", report.render(&cfg));
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
