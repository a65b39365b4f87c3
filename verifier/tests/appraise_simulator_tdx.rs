//! Simulated TDX evidence (locus-simulator's Intel world) through the appraisal core and the CLI: refused without
//! simulator trust (`simulated_evidence_untrusted`), accepted with it (`"simulated": true`), and each injected fault
//! and profile refused with its code.

use std::sync::{Arc, OnceLock};

use locus_simulator::intel::{IntelPki, SimTdxAttester, TdxFault, SIM_VERIFICATION_TIME_UNIX};
use locus_verifier::appraisal::{
    apply_policy, appraise_tdx, Facts, Policy, TrustAnchors, Verified,
};
use locus_verifier::ErrorCode;

mod appraise_support;
use appraise_support::{cli_refuses_then_trusts_simulator, sim_tdx_collateral};

const SEED: u64 = 0x10c5;
const REPORT_DATA: [u8; 64] = [0x5a; 64];

fn pki() -> &'static Arc<IntelPki> {
    static PKI: OnceLock<Arc<IntelPki>> = OnceLock::new();
    PKI.get_or_init(|| Arc::new(IntelPki::new(SEED)))
}

fn attester(profile: &str) -> SimTdxAttester {
    pki()
        .attester_by_name(profile)
        .unwrap_or_else(|| panic!("profile {profile}"))
}

fn trusting() -> TrustAnchors {
    TrustAnchors::pinned()
        .expect("anchors")
        .danger_trust_simulator_roots(&[pki().root_der().to_vec()])
}

fn appraise(
    att: &SimTdxAttester,
    anchors: &TrustAnchors,
) -> Result<Verified<Facts>, locus_verifier::Refusal> {
    let quote = att.quote(&REPORT_DATA);
    let coll = sim_tdx_collateral(&att.collateral());
    appraise_tdx(&quote, &coll, anchors, SIM_VERIFICATION_TIME_UNIX).map(Verified::<Facts>::from)
}

fn code(r: Result<Verified<Facts>, locus_verifier::Refusal>) -> ErrorCode {
    match r {
        Ok(v) => panic!("accepted: {}", v.to_cli_json()),
        Err(r) => r.code,
    }
}

#[test]
fn simulated_tdx_evidence_is_refused_without_simulator_trust_and_accepted_as_simulated_with_it() {
    let att = attester("tdx-fra-1");
    let pinned = TrustAnchors::pinned().expect("anchors");
    assert_eq!(
        code(appraise(&att, &pinned)),
        ErrorCode::SimulatedEvidenceUntrusted
    );
    let v = appraise(&att, &trusting()).expect("trusted simulator evidence verifies");
    assert!(v.simulated());
    let Facts::Tdx(f) = v.facts() else {
        panic!("tdx facts")
    };
    assert_eq!(f.tcb_status, "UpToDate");
    assert_eq!(f.report_data, REPORT_DATA);
    assert!(!f.debug);
    assert!(!f.ppid.is_empty());
    let json: serde_json::Value = serde_json::from_str(&v.to_cli_json()).expect("json");
    assert_eq!(json["simulated"], true);
    apply_policy(&v, &Policy::default())
        .expect("clean simulated evidence passes the default policy");
}

#[test]
fn each_simulated_tdx_fault_is_refused_with_its_code() {
    let anchors = trusting();
    for (fault, want) in [
        (TdxFault::BadSignature, ErrorCode::SignatureInvalid),
        (TdxFault::ForeignChain, ErrorCode::ChainUntrusted),
        (TdxFault::ExpiredPck, ErrorCode::CertificateExpired),
        (TdxFault::RevokedPck, ErrorCode::Revoked),
        (TdxFault::StaleCollateral, ErrorCode::CollateralExpired),
    ] {
        let att = attester("tdx-fra-1").with_fault(fault);
        assert_eq!(code(appraise(&att, &anchors)), want, "{fault:?}");
    }
    // Debug and low TCB verify; the policy refuses them.
    let v = appraise(&attester("tdx-fra-1").with_fault(TdxFault::Debug), &anchors)
        .expect("debug verifies");
    assert!(v.facts().debug());
    assert_eq!(
        apply_policy(&v, &Policy::default()).map_err(|r| r.code),
        Err(ErrorCode::DebugEnabled)
    );
    let v = appraise(
        &attester("tdx-fra-1").with_fault(TdxFault::LowTcb),
        &anchors,
    )
    .expect("low tcb verifies");
    let Facts::Tdx(f) = v.facts() else {
        panic!("tdx facts")
    };
    assert_eq!(f.tcb_status, "OutOfDate");
    assert_eq!(
        apply_policy(&v, &Policy::default()).map_err(|r| r.code),
        Err(ErrorCode::TcbStatusRejected)
    );
}

#[test]
fn simulated_tdx_profiles_give_their_statuses() {
    let anchors = trusting();
    let v = appraise(&attester("tdx-outofdate"), &anchors).expect("verifies");
    let Facts::Tdx(f) = v.facts() else {
        panic!("tdx facts")
    };
    assert_eq!(f.tcb_status, "OutOfDate");
    assert!(!f.advisory_ids.is_empty());
    assert_eq!(
        code(appraise(&attester("tdx-tcb-not-supported"), &anchors)),
        ErrorCode::TcbNotSupported
    );
    let v = appraise(&attester("tdx-debug"), &anchors).expect("verifies");
    assert_eq!(
        apply_policy(&v, &Policy::default()).map_err(|r| r.code),
        Err(ErrorCode::DebugEnabled)
    );
}

#[test]
fn the_cli_refuses_simulated_tdx_evidence_without_trust_and_marks_it_simulated_with_trust() {
    let att = attester("tdx-iad-1");
    let dir = tempfile::tempdir().expect("tempdir");
    let quote = dir.path().join("quote.bin");
    std::fs::write(&quote, att.quote(&REPORT_DATA)).expect("write");
    let coll = dir.path().join("collateral");
    att.collateral().write_dir(&coll).expect("write collateral");
    let json = cli_refuses_then_trusts_simulator(&[
        "--evidence",
        quote.to_str().expect("path"),
        "--collateral",
        coll.to_str().expect("path"),
        "--at",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(json["tee"], "tdx");
    assert_eq!(json["report_data"], hex::encode(REPORT_DATA));
}

#[test]
fn qe_report_data_with_non_zero_tail_bytes_is_signature_invalid() {
    let att = attester("tdx-fra-1").with_fault(TdxFault::QeReportDataTail);
    let r = appraise(&att, &trusting()).expect_err("refused");
    assert_eq!(r.code, ErrorCode::SignatureInvalid, "{r}");
    assert!(r.message.contains("32..63"), "{r}");
}

#[test]
fn tcb_info_for_another_pce_id_is_collateral_missing() {
    // A platform whose PCK certificate names PCE-ID 0x0100 while the collateral's TCB info is for the simulator's
    // standard PCE: dcap-qvl 0.7.1 matches FMSPC only; Locus also requires the PCE-ID to match.
    let mut profile = locus_simulator::intel::TdxProfile::up_to_date(SEED, "tdx-other-pce");
    profile.pce_id = [0x01, 0x00];
    let att = SimTdxAttester::new(pki().clone(), profile);
    let r = appraise(&att, &trusting()).expect_err("refused");
    assert_eq!(r.code, ErrorCode::CollateralMissing, "{r}");
    assert!(r.message.contains("PCE-ID"), "{r}");
}
