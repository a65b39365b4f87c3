//! `locus-verifier`: thin entry point. Parses arguments and calls the library (DESIGN §1: binaries are thin).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use locus_verifier::cli;

#[derive(Debug, Parser)]
#[command(
    name = "locus-verifier",
    version,
    about = "Locus verifier: appraisal of SEV-SNP and TDX evidence"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand; each delegates to the library.
#[derive(Debug, Subcommand)]
enum Command {
    /// Appraise evidence offline and print one JSON object (DESIGN §11).
    Appraise(cli::AppraiseArgs),
    /// Run the verifier HTTP service (DESIGN §7); prints `listening on ADDR` once bound.
    Serve(locus_verifier::service::ServeArgs),
    /// Manage the WIT signing keys and the challenge MAC key in the configured keys directory.
    Keys(locus_verifier::service::KeysArgs),
    /// Compute a reference value from the firmware image: SEV-SNP launch digest or TDX MRTD (DESIGN §11).
    Measure(locus_verifier::measure::command::MeasureArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
