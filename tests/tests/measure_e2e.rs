//! Image → measure → config → attest → WIT, across real processes: `locus-verifier measure … --as-workload` on
//! Debian's OVMF, the block appended to a copy of `examples/verifier.toml`, `locus-verifier serve` on it, a simulated
//! platform (`locus-sim snp report --measurement`, `tdx quote --mr-td`) launched with the measured value, its evidence
//! posted to `/v1/attest`, and the WIT checked against the verifier's JWKS.
//!
//! Needs `/usr/share/ovmf/OVMF.fd` (Debian `ovmf`, installed by `.ci/run`): missing, a loud `SKIP:` line, or a
//! failure when `CI` or `LOCUS_REQUIRE_VECTORS=1` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use locus_agent::credential::Credential;
use locus_tests::http1::{self, Request};
use locus_tests::procs::{run_to_completion, workspace_bin, Finished, VerifierProcess};
use locus_tests::{unix_now, TRUST_DOMAIN};
use locus_wimse::{Es256SigningKey, Jwks, TrustDomain, TrustStore, WitPolicy, WitVerifier};
use serde_json::{json, Value};

const STEP: Duration = Duration::from_secs(120);
const OVMF_FD: &str = "/usr/share/ovmf/OVMF.fd";
/// A workload that exists only through the measured block.
const MEASURED_WORKLOAD: &str = "spiffe://locus.example/measured-app";

/// Debian's OVMF.fd, or `None` after a loud skip (a failure in CI).
fn debian_ovmf(test: &str) -> Option<PathBuf> {
    let path = PathBuf::from(OVMF_FD);
    if path.is_file() {
        // Build (when stale) before any challenge is issued, so no nonce waits for a compiler.
        for bin in ["locus-verifier", "locus-sim"] {
            workspace_bin(bin).unwrap_or_else(|e| panic!("{e}"));
        }
        return Some(path);
    }
    let required = std::env::var_os("CI").is_some()
        || std::env::var("LOCUS_REQUIRE_VECTORS").as_deref() == Ok("1");
    assert!(
        !required,
        "{test}: {OVMF_FD} missing; the Debian `ovmf` package is required when CI or LOCUS_REQUIRE_VECTORS=1 is set"
    );
    eprintln!("SKIP: {test}: {OVMF_FD} missing (apt-get install ovmf)");
    None
}

fn run(bin: &str, args: &[&str]) -> Finished {
    let path = workspace_bin(bin).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(path);
    cmd.args(args).env("RUST_LOG", "warn");
    let done = run_to_completion(bin, &mut cmd, STEP).expect("spawn");
    assert!(
        done.success(),
        "{bin} {args:?}: {:?}\n{}\n{}",
        done.status,
        done.stdout,
        done.stderr
    );
    done
}

/// `examples/verifier.toml` (state in `dir/state`) with `block` appended as printed, written to `dir`; the verifier
/// serving it.
fn serve_with_block(dir: &Path, block: &str) -> VerifierProcess {
    let mut config = locus_tests::paths::example_config_for(&dir.join("state"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    config.push('\n');
    config.push_str(block);
    let path = dir.join("verifier.toml");
    std::fs::write(&path, config).expect("write config");
    let bin = workspace_bin("locus-verifier").unwrap_or_else(|e| panic!("{e}"));
    VerifierProcess::start(&bin, &path, &dir.join("verifier.stderr"), STEP)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn post(verifier: &VerifierProcess, path: &str, body: &Value) -> (u16, Value) {
    let addr = http1::loopback_addr(&verifier.base).expect("verifier address");
    let resp = http1::tcp(addr, &Request::post_json(path, body), STEP).expect("HTTP");
    let status = resp.status;
    let json = resp.json().unwrap_or(Value::Null);
    (status, json)
}

/// One attestation round: challenge, evidence from `make_evidence(report_data_hex, dir)` → (tee, evidence, certs),
/// attest for `workload`. Returns the status and body of `/v1/attest`.
fn attest(
    verifier: &VerifierProcess,
    workload: &str,
    make_evidence: impl FnOnce(&str) -> (&'static str, Vec<u8>, Vec<Vec<u8>>),
) -> (u16, Value) {
    let (status, challenge) = post(verifier, "/v1/challenge", &json!({}));
    assert_eq!(status, 200, "{challenge}");
    let nonce_b64 = challenge["nonce"].as_str().expect("nonce").to_string();
    let nonce = locus_wimse::b64::decode(&nonce_b64).expect("b64url nonce");
    let key = Es256SigningKey::generate().expect("key");
    let jwk = Credential::public_jwk_of(&key);
    let report_data = locus_hw::binding::report_data(&nonce, &jwk.thumbprint_sha256());
    let (tee, evidence, certs) = make_evidence(&hex::encode(report_data));
    let body = json!({
        "nonce": nonce_b64,
        "tee": tee,
        "evidence": locus_wimse::b64::encode(&evidence),
        "certs": certs.iter().map(locus_wimse::b64::encode).collect::<Vec<_>>(),
        "jwk": jwk.to_value(),
        "workload": workload,
    });
    post(verifier, "/v1/attest", &body)
}

fn verified_claims(verifier: &VerifierProcess, wit: &str) -> Value {
    let addr = http1::loopback_addr(&verifier.base).expect("verifier address");
    let resp = http1::tcp(addr, &Request::get("/.well-known/jwks.json"), STEP).expect("GET jwks");
    let jwks = Jwks::from_json(std::str::from_utf8(&resp.body).expect("utf-8")).expect("JWKS");
    let trust = TrustStore::new().with_keys(TrustDomain::parse(TRUST_DOMAIN).expect("td"), jwks);
    let verified = WitVerifier::new(trust, WitPolicy::wit_svid())
        .verify(wit, unix_now())
        .unwrap_or_else(|e| panic!("WIT does not verify: {} ({e})", e.code()));
    assert_eq!(verified.id().as_str(), MEASURED_WORKLOAD);
    Value::Object(verified.claims().extra.clone())
}

/// `locus-sim snp report --profile snp-fra-1 [--measurement M]`: the report and [VCEK, ASK, ARK] DER.
fn snp_evidence(
    dir: &Path,
    report_data: &str,
    measurement: Option<&str>,
) -> (&'static str, Vec<u8>, Vec<Vec<u8>>) {
    let out = dir.join("report.bin");
    let certs = dir.join("certs");
    let mut args = vec![
        "snp",
        "report",
        "--profile",
        "snp-fra-1",
        "--report-data",
        report_data,
        "--out",
        out.to_str().expect("utf-8"),
        "--certs-out",
        certs.to_str().expect("utf-8"),
    ];
    if let Some(m) = measurement {
        args.extend(["--measurement", m]);
    }
    run("locus-sim", &args);
    let pem_der = |name: &str| -> Vec<u8> {
        let pem = std::fs::read(certs.join(name)).expect("pem");
        locus_verifier::appraisal::x509::der_or_pem_certificate(&pem).expect("certificate")
    };
    let report = std::fs::read(&out).expect("report");
    let vcek = std::fs::read(certs.join("vcek.der")).expect("vcek");
    (
        "sev-snp",
        report,
        vec![vcek, pem_der("ask.pem"), pem_der("ark.pem")],
    )
}

#[test]
fn snp_measured_ovmf_as_workload_is_served_and_a_platform_launched_with_it_gets_the_wit() {
    let test = "snp_measured_ovmf_as_workload_is_served";
    let Some(ovmf) = debian_ovmf(test) else {
        return;
    };
    let ovmf = ovmf.to_str().expect("utf-8");
    let dir = tempfile::tempdir().expect("tempdir");

    // Image → measure.
    let measure = [
        "measure",
        "snp",
        "--ovmf",
        ovmf,
        "--vcpus",
        "4",
        "--vcpu-type",
        "EPYC-Milan",
    ];
    let hex_digest = run("locus-verifier", &measure).stdout.trim().to_string();
    assert_eq!(hex_digest.len(), 96, "{hex_digest}");
    let mut as_workload = measure.to_vec();
    as_workload.extend(["--as-workload", MEASURED_WORKLOAD]);
    let block = run("locus-verifier", &as_workload).stdout;
    assert!(block.contains(&hex_digest), "{block}");

    // → config → serve (the verifier refuses a config that does not validate).
    let verifier = serve_with_block(dir.path(), &block);

    // → attest with the measured value → WIT.
    let (status, body) = attest(&verifier, MEASURED_WORKLOAD, |rd| {
        snp_evidence(dir.path(), rd, Some(&hex_digest))
    });
    assert_eq!(
        status,
        200,
        "{body}\nverifier stderr:\n{}",
        verifier.stderr()
    );
    let claims = verified_claims(&verifier, body["wit"].as_str().expect("wit"));
    assert_eq!(claims["locus_tee"]["type"], "sev-snp", "{claims}");
    assert_eq!(
        claims["locus_tee"]["measurement"],
        hex_digest.as_str(),
        "{claims}"
    );
    assert_eq!(claims["locus_residency"]["site"], "fra-1", "{claims}");

    // The same platform with the demo image's measurement is not this workload.
    let (status, body) = attest(&verifier, MEASURED_WORKLOAD, |rd| {
        snp_evidence(dir.path(), rd, None)
    });
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "measurement_unknown", "{body}");
}

/// `locus-sim tdx quote --profile tdx-fra-1 [--mr-td M]`: the quote (its PCK chain is inside).
fn tdx_evidence(
    dir: &Path,
    report_data: &str,
    mr_td: Option<&str>,
) -> (&'static str, Vec<u8>, Vec<Vec<u8>>) {
    let out = dir.join("quote.bin");
    let mut args = vec![
        "tdx",
        "quote",
        "--profile",
        "tdx-fra-1",
        "--report-data",
        report_data,
        "--out",
        out.to_str().expect("utf-8"),
    ];
    if let Some(m) = mr_td {
        args.extend(["--mr-td", m]);
    }
    run("locus-sim", &args);
    ("tdx", std::fs::read(&out).expect("quote"), Vec::new())
}

#[test]
fn tdx_measured_ovmf_as_workload_is_served_and_a_td_launched_with_it_gets_the_wit() {
    let test = "tdx_measured_ovmf_as_workload_is_served";
    let Some(ovmf) = debian_ovmf(test) else {
        return;
    };
    let ovmf = ovmf.to_str().expect("utf-8");
    let dir = tempfile::tempdir().expect("tempdir");

    let mr_td = run("locus-verifier", &["measure", "tdx", "--ovmf", ovmf])
        .stdout
        .trim()
        .to_string();
    assert_eq!(mr_td.len(), 96, "{mr_td}");
    let block = run(
        "locus-verifier",
        &[
            "measure",
            "tdx",
            "--ovmf",
            ovmf,
            "--as-workload",
            MEASURED_WORKLOAD,
        ],
    )
    .stdout;
    assert!(
        block.contains("measurement_scope = \"firmware\""),
        "{block}"
    );

    let verifier = serve_with_block(dir.path(), &block);
    let (status, body) = attest(&verifier, MEASURED_WORKLOAD, |rd| {
        tdx_evidence(dir.path(), rd, Some(&mr_td))
    });
    assert_eq!(
        status,
        200,
        "{body}\nverifier stderr:\n{}",
        verifier.stderr()
    );
    let claims = verified_claims(&verifier, body["wit"].as_str().expect("wit"));
    assert_eq!(claims["locus_tee"]["type"], "tdx", "{claims}");
    assert_eq!(claims["locus_residency"]["site"], "fra-1", "{claims}");

    let (status, body) = attest(&verifier, MEASURED_WORKLOAD, |rd| {
        tdx_evidence(dir.path(), rd, None)
    });
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "measurement_unknown", "{body}");
}
