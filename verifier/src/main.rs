//! `locus-verifier`: thin entry point. Parses arguments and calls the library (docs/architecture.md#crates: binaries are thin).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use locus_verifier::cli;

/// mimalloc: each attestation allocates and frees a few hundred small buffers (the body, its base64, the claims and
/// tokens, the audit record) across the async workers and the appraisal pool; glibc's malloc took ~8 % of the service's
/// CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "locus-verifier",
    version,
    about = "Locus verifier: appraisal of SEV-SNP and TDX evidence",
    after_help = "Documentation: docs/operations.md (running), docs/configuration.md (verifier.toml), docs/api.md (HTTP API)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand; each delegates to the library.
#[derive(Debug, Subcommand)]
enum Command {
    /// Appraise evidence offline and print one JSON object (docs/operations.md#appraising-evidence-offline).
    Appraise(cli::AppraiseArgs),
    /// Run the verifier HTTP service (docs/api.md); prints `listening on ADDR` once bound.
    Serve(locus_verifier::service::ServeArgs),
    /// Manage the WIT signing keys and the challenge MAC key in the configured keys directory (docs/operations.md#key-rotation).
    Keys(locus_verifier::service::KeysArgs),
    /// Compute a reference value from the firmware image: SEV-SNP launch digest or TDX MRTD (docs/operations.md#reference-values-from-the-image).
    Measure(locus_verifier::measure::command::MeasureArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !locus_verifier::service::transport::install_crypto_provider() {
        eprintln!("locus-verifier: another rustls crypto provider is installed; ring is required");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Appraise(args) => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                )
                .init();
            ExitCode::from(cli::run_appraise(&args))
        }
        Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .init();
            ExitCode::from(locus_verifier::service::run_serve(&args))
        }
        Command::Keys(args) => ExitCode::from(locus_verifier::service::run_keys(&args)),
        Command::Measure(args) => {
            ExitCode::from(locus_verifier::measure::command::run_measure(&args))
        }
    }
}
