//! Every real-hardware vector set through the real `locus-verifier appraise` binary (docs/operations.md#appraising-evidence-offline): at the set's
//! verification time it prints the facts of `expected.json` and the verdict of the vectors README; its tampered copy
//! is `signature_invalid`; after its validity window it is `certificate_expired` or `collateral_expired`.
//!
//! Vectors are read in place (`LOCUS_VECTORS`, default: see `tests/support/vectors.rs`). Missing vectors print a loud SKIP
//! unless `LOCUS_REQUIRE_VECTORS=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod appraise_support;
use appraise_support::{appraise_cli as appraise, vectors_dir, Run};

fn sets(root: &Path, kind: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join(kind))
        .expect("read vectors dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {kind} sets in {}", root.display());
    out
}

fn expected(set: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(set.join("expected.json")).expect("expected.json"))
        .expect("json")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `appraise --evidence <set>/<report> --certs <set> --at <at> <extra…>`.
fn snp_run(set: &Path, report: &str, at: &str, extra: &[&str]) -> Run {
    let evidence = set.join(report);
    let args = ["--evidence", s(&evidence), "--certs", s(set), "--at", at];
    appraise(&[&args[..], extra].concat())
}

fn error_code(run: &Run) -> &str {
    assert_eq!(run.json["verified"], Value::Bool(false), "{}", run.json);
    assert_eq!(run.code, 1, "{}", run.json);
    run.json["error"]["code"].as_str().expect("error.code")
}

/// RFC 3339 of a unix time (the CLI's `--at`).
fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn unix_of(text: &str) -> i64 {
    // expected.json uses both "2026-01-01T00:00:00Z" and "2032-07-17 17:04:46+00:00".
    let t = text.replace(' ', "T");
    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("time {text}: {e}"))
        .unix_timestamp()
}

#[test]
fn every_snp_set_prints_its_expected_facts_and_tampered_copies_are_signature_invalid() {
    let Some(root) = vectors_dir() else { return };
    for set in sets(&root, "snp") {
        let e = expected(&set);
        let at = e["verification_time"].as_str().expect("verification_time");
        let run = snp_run(&set, "report.bin", at, &[]);
        let j = run.accepted(&set.display().to_string());
        assert_eq!(
            run.keys(),
            [
                "verified",
                "tee",
                "simulated",
                "product",
                "report_version",
                "signer",
                "measurement",
                "report_data",
                "host_data",
                "chip_id",
                "vmpl",
                "policy",
                "reported_tcb",
                "revocation"
            ],
            "docs/operations.md#appraising-evidence-offline field order"
        );
        assert_eq!(j["verified"], true);
        assert_eq!(j["tee"], "sev-snp");
        assert_eq!(j["simulated"], false);
        assert_eq!(j["product"], e["product"], "{}", set.display());
        assert_eq!(j["report_version"], e["version"]);
        assert_eq!(
            j["signer"],
            e["signing_key"]
                .as_str()
                .expect("signing_key")
                .to_lowercase()
        );
        for field in ["measurement", "report_data", "host_data", "chip_id"] {
            assert_eq!(j[field], e[field], "{}: {field}", set.display());
        }
        assert_eq!(j["vmpl"], e["vmpl"]);
        assert_eq!(j["policy"]["debug"], e["policy_debug"]);
        assert_eq!(j["policy"]["smt"], e["policy_smt"]);
        assert_eq!(j["policy"]["migrate_ma"], e["policy_migrate_ma"]);
        for c in ["bootloader", "tee", "snp", "microcode"] {
            assert_eq!(
                j["reported_tcb"][c],
                e["reported_tcb"][c],
                "{}: {c}",
                set.display()
            );
        }
        let fmc = e["reported_tcb"].get("fmc").cloned().unwrap_or(Value::Null);
        assert_eq!(j["reported_tcb"]["fmc"], fmc);

        let tampered = snp_run(&set, "report_tampered_measurement.bin", at, &[]);
        assert_eq!(
            error_code(&tampered),
            "signature_invalid",
            "{}",
            set.display()
        );
    }
}

#[test]
fn every_snp_set_is_certificate_expired_after_its_window_and_before_it() {
    let Some(root) = vectors_dir() else { return };
    for set in sets(&root, "snp") {
        let e = expected(&set);
        let window = &e["chain_validity_window"];
        let after = rfc3339(unix_of(window[1].as_str().expect("end")) + 86_400);
        let before = rfc3339(unix_of(window[0].as_str().expect("start")) - 86_400);
        for at in [after, before] {
            let run = snp_run(&set, "report.bin", &at, &[]);
            assert_eq!(
                error_code(&run),
                "certificate_expired",
                "{} at {at}",
                set.display()
            );
        }
    }
}

#[test]
fn the_snp_debug_set_verifies_with_debug_true_and_is_refused_under_a_no_debug_policy() {
    let Some(root) = vectors_dir() else { return };
    let set = root.join("snp/milan-v2-debug-gosevguest");
    let at = "2026-01-01T00:00:00Z";
    let run = snp_run(&set, "report.bin", at, &[]);
    assert_eq!(run.code, 0);
    assert_eq!(run.json["policy"]["debug"], true);
    let dir = tempfile::tempdir().expect("tempdir");
    let strict = dir.path().join("strict.toml");
    std::fs::write(&strict, "allow_debug = false\n").expect("write");
    let lax = dir.path().join("lax.toml");
    std::fs::write(&lax, format!("allow_debug = true\n{NO_CRL_MILAN}")).expect("write");
    let run = snp_run(&set, "report.bin", at, &["--policy", s(&strict)]);
    assert_eq!(error_code(&run), "debug_enabled");
    let run = snp_run(&set, "report.bin", at, &["--policy", s(&lax)]);
    assert_eq!(run.code, 0, "{}", run.json);
    // A clean set passes a policy that declares the Milan TCB and waives the CRL (the vectors ship none) ...
    let clean = root.join("snp/milan-v2-virtee");
    let waived = dir.path().join("waived.toml");
    std::fs::write(&waived, NO_CRL_MILAN).expect("write");
    let run = snp_run(&clean, "report.bin", at, &["--policy", s(&waived)]);
    assert_eq!(run.code, 0, "{}", run.json);
    // ... and without the waiver revocation fails closed, as in the service.
    let run = snp_run(&clean, "report.bin", at, &["--policy", s(&strict)]);
    assert_eq!(error_code(&run), "collateral_missing");
}

#[test]
fn the_vlek_set_at_vmpl_1_is_refused_vmpl_rejected_by_the_default_policy() {
    let Some(root) = vectors_dir() else { return };
    let set = root.join("snp/milan-v3-vlek-trustee");
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "").expect("write");
    let at = "2025-06-01T00:00:00Z";
    let run = snp_run(&set, "report.bin", at, &["--policy", s(&policy)]);
    assert_eq!(error_code(&run), "vmpl_rejected");
    std::fs::write(
        &policy,
        format!("snp_allowed_vmpl = [0, 1]\n{NO_CRL_MILAN}"),
    )
    .expect("write");
    let run = snp_run(&set, "report.bin", at, &["--policy", s(&policy)]);
    assert_eq!(run.code, 0, "{}", run.json);
}

/// A `--policy` that waives the CRL (the real vectors ship no AMD CRL) and declares a Milan TCB every vector meets.
const NO_CRL_MILAN: &str =
    "require_revocation = false\n[snp_current_tcb.milan]\nbootloader = 0\ntee = 0\nsnp = 0\nmicrocode = 0\n";

#[test]
fn without_a_policy_the_cli_reports_snp_revocation_unchecked_for_sets_that_ship_no_crl() {
    let Some(root) = vectors_dir() else { return };
    for set in sets(&root, "snp") {
        let e = expected(&set);
        let at = e["verification_time"].as_str().expect("verification_time");
        let run = snp_run(&set, "report.bin", at, &[]);
        let j = run.accepted(&set.display().to_string());
        assert_eq!(j["revocation"], "unchecked", "{}", set.display());
    }
}

/// `appraise --evidence <set>/<quote> --collateral <set>/collateral --at <at> <extra…>`.
fn tdx_run(set: &Path, quote: &str, at: &str, extra: &[&str]) -> Run {
    let evidence = set.join(quote);
    let collateral = set.join("collateral");
    let args = [
        "--evidence",
        s(&evidence),
        "--collateral",
        s(&collateral),
        "--at",
        at,
    ];
    appraise(&[&args[..], extra].concat())
}

#[test]
fn every_tdx_set_prints_its_expected_facts_and_status_or_its_refusal() {
    let Some(root) = vectors_dir() else { return };
    for set in sets(&root, "tdx") {
        let e = expected(&set);
        let at = e["verification_time"].as_str().expect("verification_time");
        let run = tdx_run(&set, "quote.bin", at, &[]);
        let status = e["expected_tcb_status"]
            .as_str()
            .expect("expected_tcb_status");
        if status.starts_with("TCB_NOT_SUPPORTED") {
            assert_eq!(error_code(&run), "tcb_not_supported", "{}", set.display());
            continue;
        }
        let j = run.accepted(&set.display().to_string());
        assert_eq!(
            run.keys(),
            [
                "verified",
                "tee",
                "simulated",
                "quote_version",
                "mr_td",
                "rtmr",
                "mr_config_id",
                "mr_owner",
                "mr_owner_config",
                "mr_seam",
                "report_data",
                "td_attributes",
                "debug",
                "fmspc",
                "tcb_status",
                "advisory_ids",
                "revocation"
            ],
            "docs/operations.md#appraising-evidence-offline field order"
        );
        assert_eq!(j["tee"], "tdx");
        assert_eq!(j["simulated"], false);
        assert_eq!(j["quote_version"], e["version"]);
        for (ours, theirs) in [
            ("mr_td", "mrtd"),
            ("mr_config_id", "mrconfigid"),
            ("mr_owner", "mrowner"),
            ("mr_owner_config", "mrownerconfig"),
            ("mr_seam", "mrseam"),
            ("report_data", "report_data"),
            ("td_attributes", "td_attributes"),
            ("fmspc", "fmspc"),
        ] {
            assert_eq!(j[ours], e[theirs], "{}: {ours}", set.display());
        }
        let rtmr: Vec<Value> = (0..4).map(|i| e[format!("rtmr{i}")].clone()).collect();
        assert_eq!(j["rtmr"], Value::Array(rtmr), "{}", set.display());
        assert_eq!(j["debug"], e["td_attributes_debug"]);
        assert_eq!(j["tcb_status"], status, "{}", set.display());
        if status == "OutOfDate" {
            assert_eq!(
                j["advisory_ids"],
                e["tcb_evaluation"]["platform_level_advisories"],
                "{}",
                set.display()
            );
        }
    }
}

#[test]
fn the_discriminating_cos113_quote_is_up_to_date_and_zkdcap_is_out_of_date_with_its_advisories() {
    let Some(root) = vectors_dir() else { return };
    let set = root.join("tdx/v4-00806f05-uptodate-gcp-cos113");
    let run = tdx_run(&set, "quote.bin", "2025-02-01T00:00:00Z", &[]);
    assert_eq!(run.json["tcb_status"], "UpToDate", "{}", run.json);
    let set = root.join("tdx/v4-00806f05-outofdate-zkdcap");
    let run = tdx_run(&set, "quote.bin", "2025-01-21T13:44:20Z", &[]);
    assert_eq!(run.json["tcb_status"], "OutOfDate");
    assert_eq!(
        run.json["advisory_ids"],
        serde_json::json!(["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"])
    );
    // The default (UpToDate-only) policy refuses it; allowing OutOfDate accepts it.
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "").expect("write");
    let with_policy = || {
        tdx_run(
            &set,
            "quote.bin",
            "2025-01-21T13:44:20Z",
            &["--policy", s(&policy)],
        )
    };
    assert_eq!(error_code(&with_policy()), "tcb_status_rejected");
    std::fs::write(&policy, "tdx_allowed_tcb = [\"UpToDate\", \"OutOfDate\"]\n").expect("write");
    assert_eq!(with_policy().code, 0);
}

#[test]
fn the_debug_td_verifies_with_debug_true_and_is_refused_debug_enabled_under_a_no_debug_policy() {
    let Some(root) = vectors_dir() else { return };
    let set = root.join("tdx/v4-50806f-debug-td-trustee");
    let at = "2023-07-01T01:00:00Z";
    let run = tdx_run(&set, "quote.bin", at, &[]);
    assert_eq!(run.code, 0, "{}", run.json);
    assert_eq!(run.json["debug"], true);
    assert_eq!(run.json["tcb_status"], "UpToDate");
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "allow_debug = false\n").expect("write");
    let run = tdx_run(&set, "quote.bin", at, &["--policy", s(&policy)]);
    assert_eq!(error_code(&run), "debug_enabled");
}

#[test]
fn every_tampered_tdx_quote_is_signature_invalid_and_every_set_is_refused_after_its_window() {
    let Some(root) = vectors_dir() else { return };
    for set in sets(&root, "tdx") {
        let e = expected(&set);
        let at = e["verification_time"].as_str().expect("verification_time");
        let run = tdx_run(&set, "quote_tampered_mrtd.bin", at, &[]);
        assert_eq!(error_code(&run), "signature_invalid", "{}", set.display());
        let later = rfc3339(unix_of(at) + 400 * 86_400);
        let run = tdx_run(&set, "quote.bin", &later, &[]);
        let code = error_code(&run);
        assert!(
            code == "collateral_expired" || code == "certificate_expired",
            "{} at {later}: {code}",
            set.display()
        );
        let past = e["collateral_validity_window"]["not_after"]
            .as_str()
            .expect("not_after");
        let just_after = rfc3339(unix_of(past) + 1);
        let run = tdx_run(&set, "quote.bin", &just_after, &[]);
        assert_eq!(
            error_code(&run),
            "collateral_expired",
            "{} at {just_after}",
            set.display()
        );
    }
}

#[test]
fn usage_errors_exit_2_and_undetectable_evidence_is_evidence_malformed() {
    let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .args(["appraise", "--evidence", "/nonexistent/evidence.bin"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .args(["appraise", "--bogus-flag"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"not evidence").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .args(["appraise", "--evidence", s(&junk), "--at", "not-a-time"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let run = appraise(&["--evidence", s(&junk)]);
    assert_eq!(error_code(&run), "evidence_malformed");
    let run = appraise(&[
        "--evidence",
        s(&junk),
        "--tee",
        "tdx",
        "--collateral",
        s(dir.path()),
    ]);
    assert_eq!(error_code(&run), "collateral_missing");
}
