//! `locus-sim`: the simulated vendor world on the command line (docs/architecture.md#the-simulator). Parses arguments and calls the library.
//! Exit codes: 0 success, 1 failure, 2 usage error.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use locus_simulator::fault::{Fault, Faults};
use locus_simulator::{x509, SimError, World};

#[derive(Parser, Debug)]
#[command(
    name = "locus-sim",
    version,
    about = "Locus simulated AMD/Intel world: PKI, evidence, KDS/PCS server"
)]
struct Cli {
    /// World seed (every key, certificate and platform derives from it).
    #[arg(long, global = true, default_value_t = World::default_seed())]
    seed: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the built-in platform profiles.
    Profiles {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// PKI export and key generation.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// SEV-SNP evidence.
    Snp {
        #[command(subcommand)]
        command: SnpCommand,
    },
    /// TDX evidence.
    Tdx {
        #[command(subcommand)]
        command: TdxCommand,
    },
    /// Serve the AMD KDS and Intel PCS paths.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks one; the bound address is printed).
        #[arg(long)]
        listen: String,
        /// Fault: `kds-429[:N]`, `slow[:MS]`, or an evidence fault (expired-certificate, stale-collateral, revoked-pck…).
        #[arg(long = "fault")]
        faults: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum PkiCommand {
    /// Write the simulator roots: `DIR/snp/<product>/{ark.pem,ask.pem,cert_chain.pem,crl.der}`, `DIR/tdx/collateral/`.
    Export {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate the seed's RSA-4096 TEST KEYS as PKCS#8 PEM (slow; the default seed's are committed).
    GenKeys {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum SnpCommand {
    /// Write a signed SEV-SNP report (1184 bytes).
    Report {
        /// Profile name (see `locus-sim profiles`).
        #[arg(long)]
        profile: String,
        /// Report data, hex, up to 64 bytes (zero-padded on the right).
        #[arg(long = "report-data")]
        report_data: String,
        /// Output file for the report.
        #[arg(long)]
        out: PathBuf,
        /// Directory for vcek.der (vlek.der for a VLEK profile), ask.pem (the ASVK for VLEK), ark.pem,
        /// cert_chain.pem.
        #[arg(long = "certs-out")]
        certs_out: Option<PathBuf>,
        /// Evidence fault: bad-signature, foreign-chain, expired-certificate, debug, low-tcb.
        #[arg(long = "fault")]
        faults: Vec<String>,
        /// Launch the profile's platform with this launch digest (96 hex digits) instead of the demo image's, e.g.
        /// the output of `locus-verifier measure snp`.
        #[arg(long, value_name = "HEX")]
        measurement: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TdxCommand {
    /// Write a signed TDX quote.
    Quote {
        /// Profile name (see `locus-sim profiles`).
        #[arg(long)]
        profile: String,
        /// Report data, hex, up to 64 bytes (zero-padded on the right).
        #[arg(long = "report-data")]
        report_data: String,
        /// Output file for the quote.
        #[arg(long)]
        out: PathBuf,
        /// Directory for the collateral (vectors layout).
        #[arg(long = "collateral-out")]
        collateral_out: Option<PathBuf>,
        /// Evidence fault: bad-signature, foreign-chain, expired-certificate, revoked-pck, stale-collateral, debug,
        /// low-tcb.
        #[arg(long = "fault")]
        faults: Vec<String>,
        /// Launch the profile's platform with this MRTD (96 hex digits) instead of the demo image's, e.g. the output
        /// of `locus-verifier measure tdx`.
        #[arg(long = "mr-td", value_name = "HEX")]
        mr_td: Option<String>,
    },
}

/// A failure: usage errors exit 2, everything else 1.
enum Failure {
    Usage(String),
    Run(String),
}

impl From<SimError> for Failure {
    fn from(e: SimError) -> Self {
        match e {
            SimError::UnknownProfile(_) | SimError::WrongTee { .. } => {
                Failure::Usage(e.to_string())
            }
            other => Failure::Run(other.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(env_filter())
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("locus-sim: usage error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Run(m)) => {
            eprintln!("locus-sim: {m}");
            ExitCode::from(1)
        }
    }
}

fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

fn run(cli: Cli) -> Result<(), Failure> {
    let world = Arc::new(World::new(cli.seed));
    match cli.command {
        Command::Profiles { json } => profiles(&world, json),
        Command::Pki {
            command: PkiCommand::Export { out },
        } => {
            let files = world.export_pki(&out)?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(())
        }
        Command::Pki {
            command: PkiCommand::GenKeys { out },
        } => {
            let files = locus_simulator::amd::embedded::write_keys(cli.seed, &out)?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(())
        }
        Command::Snp {
            command:
                SnpCommand::Report {
                    profile,
                    report_data,
                    out,
                    certs_out,
                    faults,
                    measurement,
                },
        } => {
            let rd = parse_report_data(&report_data)?;
            let faults = parse_evidence_faults(&faults)?;
            let mut attester = match measurement {
                Some(hex_str) => {
                    let m = parse_measurement("--measurement", &hex_str)?;
                    world.snp_attester_with_measurement(&profile, m)?
                }
                None => world.snp_attester(&profile)?,
            };
            for f in faults {
                attester = attester.with_fault(f);
            }
            let ev = attester.report(&rd)?;
            write(&out, &ev.report)?;
            if let Some(dir) = certs_out {
                mkdir(&dir)?;
                let key_file = if ev.vlek { "vlek.der" } else { "vcek.der" };
                write(&dir.join(key_file), &ev.vcek_der)?;
                write(&dir.join("ask.pem"), x509::cert_pem(&ev.ask_der).as_bytes())?;
                write(&dir.join("ark.pem"), x509::cert_pem(&ev.ark_der).as_bytes())?;
                let chain = format!(
                    "{}{}",
                    x509::cert_pem(&ev.ask_der),
                    x509::cert_pem(&ev.ark_der)
                );
                write(&dir.join("cert_chain.pem"), chain.as_bytes())?;
            }
            Ok(())
        }
        Command::Tdx {
            command:
                TdxCommand::Quote {
                    profile,
                    report_data,
                    out,
                    collateral_out,
                    faults,
                    mr_td,
                },
        } => {
            let rd = parse_report_data(&report_data)?;
            let faults = parse_evidence_faults(&faults)?;
            let mr_td = mr_td
                .map(|h| parse_measurement("--mr-td", &h))
                .transpose()?;
            let (quote, collateral) = locus_simulator::intel_bridge::tdx_quote_with_mr_td(
                &world, &profile, &rd, &faults, mr_td,
            )?;
            write(&out, &quote)?;
            if let Some(dir) = collateral_out {
                locus_simulator::intel_bridge::write_collateral(&collateral, &dir)?;
            }
            Ok(())
        }
        Command::Serve { listen, faults } => {
            let mut f = Faults::none();
            for arg in &faults {
                f.add(arg).map_err(Failure::Usage)?;
            }
            serve(world, &listen, f)
        }
    }
}

fn profiles(world: &World, json: bool) -> Result<(), Failure> {
    if json {
        let list: Vec<serde_json::Value> = world.profiles().iter().map(|p| p.to_json()).collect();
        let text = serde_json::to_string_pretty(&list).map_err(|e| Failure::Run(e.to_string()))?;
        println!("{text}");
    } else {
        println!(
            "{:<24} {:<8} {:<8} {:<16} {:<16} description",
            "name", "tee", "site", "tcb", "platform"
        );
        for p in world.profiles() {
            let site = p.site.as_ref().map(|s| s.site.as_str()).unwrap_or("-");
            let id = p.platform_id_hex();
            println!(
                "{:<24} {:<8} {:<8} {:<16} {:<16} {}",
                p.name,
                p.tee().as_str(),
                site,
                p.expected_tcb_status,
                &id[..id.len().min(16)],
                p.description
            );
        }
    }
    Ok(())
}

fn parse_report_data(hex_str: &str) -> Result<[u8; 64], Failure> {
    let bytes = hex::decode(hex_str.trim())
        .map_err(|e| Failure::Usage(format!("--report-data is not hex: {e}")))?;
    if bytes.len() > 64 {
        return Err(Failure::Usage(format!(
            "--report-data is {} bytes; at most 64",
            bytes.len()
        )));
    }
    let mut rd = [0u8; 64];
    rd[..bytes.len()].copy_from_slice(&bytes);
    Ok(rd)
}

/// A 48-byte measurement (SNP launch digest, TDX MRTD) given as 96 hex digits.
fn parse_measurement(flag: &str, hex_str: &str) -> Result<[u8; 48], Failure> {
    let bytes = hex::decode(hex_str.trim())
        .map_err(|e| Failure::Usage(format!("{flag} is not hex: {e}")))?;
    <[u8; 48]>::try_from(bytes.as_slice()).map_err(|_| {
        Failure::Usage(format!(
            "{flag} is {} bytes; a measurement is 48 (96 hex digits)",
            bytes.len()
        ))
    })
}

fn parse_evidence_faults(names: &[String]) -> Result<Vec<Fault>, Failure> {
    names
        .iter()
        .map(|n| n.parse::<Fault>().map_err(Failure::Usage))
        .collect()
}

fn mkdir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Run(format!("creating {}: {e}", dir.display())))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes)
        .map_err(|e| Failure::Run(format!("writing {}: {e}", path.display())))
}

fn serve(world: Arc<World>, listen: &str, faults: Faults) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Run(format!("tokio runtime: {e}")))?;
    rt.block_on(async move {
        let addr: std::net::SocketAddr = listen
            .parse()
            .map_err(|e| Failure::Usage(format!("--listen {listen:?} is not an address: {e}")))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::Run(format!("cannot listen on {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::Run(e.to_string()))?;
        // The bound address on stdout, one line, so a parent process can read the port when it asked for port 0.
        println!("listening on http://{addr}");
        tracing::info!(%addr, seed = world.seed(), ?faults, "locus-sim serving KDS and PCS paths");
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        locus_simulator::server::serve_with_shutdown(listener, world, faults, shutdown)
            .await
            .map_err(|e| Failure::Run(format!("server: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(r: Result<[u8; 48], Failure>) -> String {
        match r {
            Err(Failure::Usage(m)) => m,
            Err(Failure::Run(m)) => panic!("a run failure, not a usage error: {m}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn measurements_are_96_hex_digits() {
        assert_eq!(
            parse_measurement("--measurement", &"ab".repeat(48)).ok(),
            Some([0xab; 48])
        );
        assert_eq!(
            usage(parse_measurement("--mr-td", "abcd")),
            "--mr-td is 2 bytes; a measurement is 48 (96 hex digits)"
        );
        assert!(usage(parse_measurement("--measurement", "xyz"))
            .starts_with("--measurement is not hex: "));
    }
}
