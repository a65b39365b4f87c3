//! Helpers shared by the appraisal test files (`vectors_*`, `mutation_*`, `appraise_*`): the real-vector folder and
//! running `locus-verifier appraise`.

// Each test file uses a different part of this module.
#![allow(dead_code)]

#[path = "../../../tests/support/vectors.rs"]
mod vectors;

use std::path::PathBuf;
use std::process::Command;

use locus_simulator::intel::TdxCollateralFiles;
use locus_verifier::appraisal::{TdxCollateral, TdxCollateralParts};
use serde_json::Value;

/// The real-hardware vectors (see `tests/support/vectors.rs`).
pub fn vectors_dir() -> Option<PathBuf> {
    vectors::dir()
}

/// The outcome of one `locus-verifier appraise` run.
pub struct Run {
    pub code: i32,
    pub json: Value,
}

/// Run `locus-verifier appraise <args>`; it must print exactly one line of JSON.
pub fn appraise_cli(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .arg("appraise")
        .args(args)
        .output()
        .expect("run locus-verifier");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one line of JSON, got: {stdout}"
    );
    let json: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    Run {
        code: out.status.code().expect("exit code"),
        json,
    }
}

impl Run {
    /// The run succeeded (exit 0); its JSON.
    pub fn accepted(&self, context: &str) -> &Value {
        assert_eq!(self.code, 0, "{context}: {}", self.json);
        assert_eq!(self.json["verified"], Value::Bool(true), "{context}");
        &self.json
    }

    /// The top-level JSON keys in printed order (docs/operations.md#appraising-evidence-offline fixes the order).
    pub fn keys(&self) -> Vec<&str> {
        self.json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect()
    }
}

/// `args` (evidence of the simulator) are refused `simulated_evidence_untrusted` without `--trust-simulator` and
/// accepted with it; the accepted JSON, which must say `"simulated": true`.
pub fn cli_refuses_then_trusts_simulator(args: &[&str]) -> Value {
    let untrusted = appraise_cli(args);
    assert_eq!(untrusted.code, 1, "{}", untrusted.json);
    assert_eq!(
        untrusted.json["error"]["code"],
        "simulated_evidence_untrusted"
    );
    let trusted = appraise_cli(&[args, &["--trust-simulator"]].concat());
    let json = trusted.accepted("with --trust-simulator").clone();
    assert_eq!(json["simulated"], true);
    json
}

/// The simulator's TDX collateral files as the appraisal's collateral.
pub fn sim_tdx_collateral(files: &TdxCollateralFiles) -> TdxCollateral {
    TdxCollateral::from_parts(TdxCollateralParts {
        tcb_info_json: &files.tcb_info_json,
        tcb_info_issuer_chain_pem: &files.tcb_info_issuer_chain_pem,
        qe_identity_json: &files.qe_identity_json,
        qe_identity_issuer_chain_pem: &files.qe_identity_issuer_chain_pem,
        pck_crl_der: &files.pck_crl_der,
        pck_crl_issuer_chain_pem: &files.pck_crl_issuer_chain_pem,
        root_ca_crl_der: &files.root_ca_crl_der,
    })
    .expect("simulated collateral")
}

/// The endorsements the simulator shipped with `ev` (VCEK, ASK, ARK; no CRL).
pub fn sim_snp_endorsements(
    ev: &locus_simulator::SnpEvidence,
) -> locus_verifier::appraisal::SnpEndorsements {
    locus_verifier::appraisal::SnpEndorsements {
        vek_der: Some(ev.vcek_der.clone()),
        ask_der: Some(ev.ask_der.clone()),
        ark_der: Some(ev.ark_der.clone()),
        crl_der: None,
        client_crl_der: None,
    }
}

/// The pinned anchors plus the shared simulator world's AMD roots.
pub fn snp_trusting_simulator() -> locus_verifier::appraisal::TrustAnchors {
    let w = locus_simulator::World::shared();
    let roots: Vec<Vec<u8>> = locus_hw::snp::Product::ALL
        .iter()
        .map(|p| w.amd_ark_der(*p).expect("ark"))
        .collect();
    locus_verifier::appraisal::TrustAnchors::pinned()
        .expect("anchors")
        .danger_trust_simulator_roots(&roots)
}
