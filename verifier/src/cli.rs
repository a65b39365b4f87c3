//! The offline CLI `locus-verifier appraise` (docs/operations.md#appraising-evidence-offline): read the evidence and its endorsements or collateral from
//! files, appraise with the sans-I/O core, optionally apply a `--policy` file, print one JSON object and return the
//! exit code (0 verified, 1 not verified, 2 usage error). This is the I/O layer around `appraisal`.

use std::path::{Path, PathBuf};

use locus_hw::TeeType;

use crate::appraisal::x509::{der_or_pem_certificate, pem_certificates};
use crate::appraisal::{
    apply_policy, appraise_snp, appraise_tdx, refusal_cli_json, Facts, Policy, SnpEndorsements,
    TdxCollateral, TdxCollateralParts, TrustAnchors, Verified,
};
use crate::error::{ErrorCode, Refusal};

/// Arguments of `locus-verifier appraise` (docs/operations.md#appraising-evidence-offline).
#[derive(Clone, Debug, clap::Args)]
pub struct AppraiseArgs {
    /// The raw evidence: a 1184-byte SEV-SNP report or a TDX quote.
    #[arg(long, value_name = "FILE")]
    pub evidence: PathBuf,
    /// The TEE; detected from the bytes when absent.
    #[arg(long, value_name = "sev-snp|tdx")]
    pub tee: Option<TeeType>,
    /// SEV-SNP: `vcek.der|pem` or `vlek.der|pem`, `ask.pem`, `ark.pem` or `cert_chain.pem`, optional `crl.der`.
    #[arg(long, value_name = "DIR")]
    pub certs: Option<PathBuf>,
    /// TDX: collateral in the layout of the vectors' `collateral/` directories.
    #[arg(long, value_name = "DIR")]
    pub collateral: Option<PathBuf>,
    /// Verification time, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// DANGER: accept evidence chained to the Locus simulator's roots (marked `"simulated": true`): the `ark.*` of
    /// --certs and the `intel_sgx_root_ca.*` of --collateral, or, when neither is there, any simulator-marked root.
    #[arg(long)]
    pub trust_simulator: bool,
    /// A TOML policy (see `appraisal::policy`); without it only the evidence is appraised.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// A usage problem: reported on stderr, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// Run `appraise`: print the JSON answer on stdout and return the process exit code.
pub fn run_appraise(args: &AppraiseArgs) -> u8 {
    match appraise_from_args(args) {
        Ok(Ok(verified)) => {
            println!("{}", verified.to_cli_json());
            0
        }
        Ok(Err(refusal)) => {
            println!("{}", refusal_cli_json(&refusal));
            1
        }
        Err(UsageError(msg)) => {
            eprintln!("locus-verifier appraise: {msg}");
            2
        }
    }
}

/// Parse an RFC 3339 time into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Result<u64, UsageError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| UsageError(format!("--at {s:?} is not RFC 3339: {e}")))?;
    u64::try_from(t.unix_timestamp()).map_err(|_| UsageError(format!("--at {s:?} is before 1970")))
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, UsageError> {
    std::fs::read(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))
}

/// The appraisal (with policy, if given). The outer error is a usage error; the inner one the verdict.
pub fn appraise_from_args(
    args: &AppraiseArgs,
) -> Result<Result<Verified<Facts>, Refusal>, UsageError> {
    let raw = read(&args.evidence)?;
    let now = match &args.at {
        Some(s) => parse_rfc3339(s)?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| UsageError("system clock is before 1970".into()))?
            .as_secs(),
    };
    let policy = match &args.policy {
        Some(p) => {
            let text = String::from_utf8(read(p)?)
                .map_err(|_| UsageError("policy file is not UTF-8".into()))?;
            Some(Policy::from_toml(&text).map_err(UsageError)?)
        }
        None => None,
    };
    let mut anchors = match TrustAnchors::pinned() {
        Ok(a) => a,
        Err(r) => return Ok(Err(r)),
    };
    if args.trust_simulator {
        // Trust exactly the simulator roots handed over with the evidence (`ark.*` in --certs, the Intel root in
        // --collateral); with none there, any root marked as the simulator's.
        let roots = supplied_simulator_roots(args.certs.as_deref(), args.collateral.as_deref())?;
        anchors = if roots.is_empty() {
            anchors.danger_trust_any_simulator_root()
        } else {
            anchors.danger_trust_simulator_roots(&roots)
        };
    }
    let tee = match args.tee {
        Some(tee) => tee,
        None => match TeeType::detect(&raw) {
            Some(t) => t,
            None => {
                return Ok(Err(Refusal::new(
                    ErrorCode::EvidenceMalformed,
                    format!(
                        "{} bytes are neither an SEV-SNP report nor a TDX quote",
                        raw.len()
                    ),
                )));
            }
        },
    };
    let verdict = match tee {
        TeeType::SevSnp => {
            let endorsements = match &args.certs {
                Some(dir) => snp_endorsements_from_dir(dir, &raw)?,
                None => SnpEndorsements::default(),
            };
            appraise_snp(&raw, &endorsements, &anchors, now).map(Verified::<Facts>::from)
        }
        TeeType::Tdx => {
            let Some(dir) = &args.collateral else {
                return Ok(Err(Refusal::new(
                    ErrorCode::CollateralMissing,
                    "TDX needs --collateral DIR",
                )));
            };
            match tdx_collateral_from_dir(dir)? {
                Ok(collateral) => {
                    appraise_tdx(&raw, &collateral, &anchors, now).map(Verified::<Facts>::from)
                }
                Err(r) => Err(r),
            }
        }
    };
    Ok(verdict.and_then(|v| match &policy {
        Some(p) => apply_policy(&v, p).map(|_| v),
        None => Ok(v),
    }))
}

/// Root certificates found in the `--certs` (`ark.*`, or the last of `cert_chain.pem`) and `--collateral`
/// (`intel_sgx_root_ca.*`) directories.
fn supplied_simulator_roots(
    certs: Option<&Path>,
    collateral: Option<&Path>,
) -> Result<Vec<Vec<u8>>, UsageError> {
    let mut roots = Vec::new();
    let one = |path: PathBuf| -> Result<Vec<u8>, UsageError> {
        der_or_pem_certificate(&read(&path)?)
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))
    };
    if let Some(dir) = certs {
        if let Some(path) = first_existing(dir, &["ark.pem", "ark.der"]) {
            roots.push(one(path)?);
        } else if let Some(path) = first_existing(dir, &["cert_chain.pem"]) {
            let chain = pem_certificates(&read(&path)?)
                .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            roots.extend(chain.into_iter().last());
        }
    }
    if let Some(dir) = collateral {
        if let Some(path) = first_existing(dir, &["intel_sgx_root_ca.der", "intel_sgx_root_ca.pem"])
        {
            roots.push(one(path)?);
        }
    }
    Ok(roots)
}

fn first_existing(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Read SNP endorsements from a `--certs` directory. The key certificate is chosen by the report's SIGNING_KEY
/// (VLEK → `vlek.*` first). A certificate that does not decode is a usage error (the file is wrong, not the evidence).
pub fn snp_endorsements_from_dir(dir: &Path, report: &[u8]) -> Result<SnpEndorsements, UsageError> {
    if !dir.is_dir() {
        return Err(UsageError(format!(
            "--certs {} is not a directory",
            dir.display()
        )));
    }
    let vlek_first = locus_hw::snp::SignedReport::parse(report)
        .map(|r| r.report().signing_key() == locus_hw::snp::SigningKey::Vlek)
        .unwrap_or(false);
    let vcek = ["vcek.der", "vcek.pem", "vcek.crt"];
    let vlek = ["vlek.der", "vlek.pem", "vlek.crt"];
    let order: Vec<&str> = if vlek_first {
        vlek.iter().chain(vcek.iter()).copied().collect()
    } else {
        vcek.iter().chain(vlek.iter()).copied().collect()
    };
    let one = |path: PathBuf| -> Result<Vec<u8>, UsageError> {
        der_or_pem_certificate(&read(&path)?)
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))
    };
    let vek_der = first_existing(dir, &order).map(one).transpose()?;
    let mut ask_der = first_existing(dir, &["ask.pem", "ask.der", "asvk.pem", "asvk.der"])
        .map(one)
        .transpose()?;
    let mut ark_der = first_existing(dir, &["ark.pem", "ark.der"])
        .map(one)
        .transpose()?;
    if ask_der.is_none() || ark_der.is_none() {
        if let Some(path) = first_existing(dir, &["cert_chain.pem"]) {
            let chain = pem_certificates(&read(&path)?)
                .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            let mut it = chain.into_iter();
            let (ask, ark) = (it.next(), it.next());
            ask_der = ask_der.or(ask);
            ark_der = ark_der.or(ark);
        }
    }
    let crl_der = first_existing(dir, &["crl.der"])
        .map(|p| read(&p))
        .transpose()?;
    Ok(SnpEndorsements {
        vek_der,
        ask_der,
        ark_der,
        // The CLI is the verifier: a CRL in --certs is its own.
        crl_der,
        client_crl_der: None,
    })
}

/// Read TDX collateral from a directory in the vectors' layout (docs/operations.md#collateral-caching-and-offline-mode): `tcb_info.json`,
/// `tcb_info_issuer_chain.pem`, `qe_identity.json`, `qe_identity_issuer_chain.pem`, `pck_crl.der`,
/// `pck_crl_issuer_chain.pem`, `root_ca_crl.der` (DER, or hex as a PCCS serves it). `intel_sgx_root_ca.*` is not
/// part of the collateral: the root is pinned (the CLI reads it only as a simulator root under `--trust-simulator`). Missing files are `collateral_missing`; an unreadable directory is a usage error.
pub fn tdx_collateral_from_dir(dir: &Path) -> Result<Result<TdxCollateral, Refusal>, UsageError> {
    if !dir.is_dir() {
        return Err(UsageError(format!(
            "--collateral {} is not a directory",
            dir.display()
        )));
    }
    let names = [
        "tcb_info.json",
        "tcb_info_issuer_chain.pem",
        "qe_identity.json",
        "qe_identity_issuer_chain.pem",
        "pck_crl.der",
        "pck_crl_issuer_chain.pem",
        "root_ca_crl.der",
    ];
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(name);
        if !path.is_file() {
            return Ok(Err(Refusal::new(
                ErrorCode::CollateralMissing,
                format!("collateral file {name} is missing in {}", dir.display()),
            )));
        }
        files.push(read(&path)?);
    }
    let text = |i: usize| -> Result<&str, Refusal> {
        std::str::from_utf8(&files[i]).map_err(|_| {
            Refusal::new(
                ErrorCode::CollateralMissing,
                format!("{} is not UTF-8", names[i]),
            )
        })
    };
    let root_ca_crl = maybe_hex(&files[6]);
    let parts = (|| {
        Ok(TdxCollateralParts {
            tcb_info_json: text(0)?,
            tcb_info_issuer_chain_pem: text(1)?,
            qe_identity_json: text(2)?,
            qe_identity_issuer_chain_pem: text(3)?,
            pck_crl_der: &files[4],
            pck_crl_issuer_chain_pem: text(5)?,
            root_ca_crl_der: &root_ca_crl,
        })
    })();
    Ok(parts.and_then(TdxCollateral::from_parts))
}

/// A PCCS serves the root CA CRL as hex text; accept it beside DER.
fn maybe_hex(bytes: &[u8]) -> Vec<u8> {
    let trimmed = bytes.trim_ascii();
    if trimmed.first() != Some(&0x30)
        && !trimmed.is_empty()
        && trimmed.iter().all(u8::is_ascii_hexdigit)
    {
        if let Ok(d) = hex::decode(trimmed) {
            return d;
        }
    }
    bytes.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_to_unix_seconds() {
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00Z").ok(),
            Some(1_767_225_600)
        );
        assert!(parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn hex_root_crl_is_decoded_and_der_is_kept() {
        assert_eq!(maybe_hex(b"3082\n"), vec![0x30, 0x82]);
        assert_eq!(maybe_hex(&[0x30, 0x01, 0x00]), vec![0x30, 0x01, 0x00]);
    }
}
