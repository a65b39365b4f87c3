//! An independent verifier, `dcap-qvl` 0.7.1, given only the simulator's root, accepts the simulator's TDX quotes with
//! the simulator's collateral, reports the TCB status each profile asks for, and refuses every injected fault.

use std::sync::{Arc, OnceLock};

use dcap_qvl::verify::{QuoteVerifier, VerifiedReport};
use dcap_qvl::{QuoteCollateralV3, QuotePolicy};
use locus_simulator::intel::collateral::{COLLATERAL_NEXT_UPDATE_UNIX, VALID_FROM_UNIX};
use locus_simulator::intel::profile::{
    MODULE_ADVISORIES, OUT_OF_DATE_MODULE_SVN, TDX_DEBUG, TDX_FRA_1, TDX_IAD_1, TDX_OUTOFDATE,
    TDX_TCB_NOT_SUPPORTED, TDX_UNREGISTERED,
};
use locus_simulator::intel::{
    CollateralWindow, CrlIssuer, IntelPki, PckVariant, SimTdxAttester, TdxCollateralFiles,
    TdxFault, TdxTcbExpectation, BUILTIN_TDX_PROFILES, SIM_VERIFICATION_TIME_UNIX,
};

const NOW: u64 = SIM_VERIFICATION_TIME_UNIX;
const REPORT_DATA: [u8; 64] = [0x5A; 64];

fn pki() -> &'static Arc<IntelPki> {
    static PKI: OnceLock<Arc<IntelPki>> = OnceLock::new();
    PKI.get_or_init(|| Arc::new(IntelPki::new(2026)))
}

fn current_collateral() -> &'static QuoteCollateralV3 {
    static COLLATERAL: OnceLock<QuoteCollateralV3> = OnceLock::new();
    COLLATERAL.get_or_init(|| to_dcap_qvl(&pki().collateral(CollateralWindow::Current)))
}

/// The collateral files as dcap-qvl's `QuoteCollateralV3`; the PCK chain comes from the quote.
fn to_dcap_qvl(files: &TdxCollateralFiles) -> QuoteCollateralV3 {
    QuoteCollateralV3 {
        pck_crl_issuer_chain: files.pck_crl_issuer_chain_pem.clone(),
        root_ca_crl: files.root_ca_crl_der.clone(),
        pck_crl: files.pck_crl_der.clone(),
        tcb_info_issuer_chain: files.tcb_info_issuer_chain_pem.clone(),
        tcb_info: files.tcb_info.body.clone(),
        tcb_info_signature: files.tcb_info.signature.to_vec(),
        qe_identity_issuer_chain: files.qe_identity_issuer_chain_pem.clone(),
        qe_identity: files.qe_identity.body.clone(),
        qe_identity_signature: files.qe_identity.signature.to_vec(),
        pck_certificate_chain: None,
    }
}

fn attester(name: &str) -> SimTdxAttester {
    pki()
        .attester_by_name(name)
        .unwrap_or_else(|| panic!("built-in profile {name}"))
}

fn verifier() -> QuoteVerifier {
    QuoteVerifier::new(pki().root_der().to_vec())
}

/// dcap-qvl's verdict, its error rendered with every cause.
type Verdict = Result<VerifiedReport, String>;

fn verify(quote: &[u8]) -> Verdict {
    verifier()
        .verify(quote, current_collateral(), NOW)
        .map_err(|e| format!("{e:#}"))
}

fn expect_refused(result: Verdict, what: &str) -> String {
    match result {
        Ok(report) => panic!("{what}: dcap-qvl accepted it with status {}", report.status),
        Err(message) => message,
    }
}

#[test]
fn every_builtin_profile_yields_the_status_it_declares() {
    for name in BUILTIN_TDX_PROFILES {
        let attester = attester(name);
        let quote = attester.quote(&REPORT_DATA);
        // Debug is judged by policy, not by the TCB: let dcap-qvl report the debug TD's status.
        let result = verifier()
            .allow_debug(true)
            .verify(&quote, current_collateral(), NOW)
            .map_err(|e| format!("{e:#}"));
        match (&attester.profile().expected, result) {
            (
                TdxTcbExpectation::Status {
                    status,
                    advisory_ids,
                },
                Ok(report),
            ) => {
                assert_eq!(&report.status, status, "{name}");
                assert_eq!(&report.advisory_ids, advisory_ids, "{name}");
                assert_eq!(
                    report.ppid,
                    attester.profile().ppid,
                    "{name}: PPID from the PCK"
                );
            }
            (TdxTcbExpectation::NoMatchingLevel, Err(message)) => {
                assert!(
                    message.contains("No matching TCB level"),
                    "{name}: {message}"
                );
            }
            (expected, result) => panic!("{name}: expected {expected:?}, dcap-qvl said {result:?}"),
        }
    }
}

#[test]
fn up_to_date_v4_quote_verifies_with_its_fields() {
    let report = verify(&attester(TDX_FRA_1).quote(&REPORT_DATA)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.status, "UpToDate");
    assert!(report.advisory_ids.is_empty());
    let td = report
        .report
        .as_td10()
        .unwrap_or_else(|| panic!("TD report"));
    let profile = attester(TDX_FRA_1).profile().clone();
    assert_eq!(td.report_data, REPORT_DATA);
    assert_eq!(td.mr_td, profile.mr_td);
    assert_eq!(td.rt_mr0, profile.rtmr[0]);
    assert_eq!(td.rt_mr2, profile.rtmr[2]);
    assert_eq!(td.mr_seam, profile.mr_seam);
    assert!(
        report.report.as_td15().is_none(),
        "tdx-fra-1 emits a TD 1.0 body"
    );
}

#[test]
fn up_to_date_v5_td15_quote_verifies() {
    let report = verify(&attester(TDX_IAD_1).quote(&REPORT_DATA)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.status, "UpToDate");
    let td15 = report
        .report
        .as_td15()
        .unwrap_or_else(|| panic!("tdx-iad-1 emits a TD 1.5 body"));
    assert_eq!(td15.base.report_data, REPORT_DATA);
    assert_eq!(td15.mr_service_td, [0; 48]);
}

#[test]
fn unregistered_platform_is_still_up_to_date() {
    let report =
        verify(&attester(TDX_UNREGISTERED).quote(&REPORT_DATA)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.status, "UpToDate");
}

#[test]
fn out_of_date_platform_reports_out_of_date_with_advisories() {
    let report =
        verify(&attester(TDX_OUTOFDATE).quote(&REPORT_DATA)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.status, "OutOfDate");
    assert_eq!(report.advisory_ids, ["SIM-SA-00101", "SIM-SA-00102"]);
}

#[test]
fn platform_below_every_tcb_level_is_refused() {
    let message = expect_refused(
        verify(&attester(TDX_TCB_NOT_SUPPORTED).quote(&REPORT_DATA)),
        "tcb-not-supported",
    );
    assert!(message.contains("No matching TCB level"), "{message}");
}

#[test]
fn debug_td_is_refused_unless_debug_is_allowed() {
    let quote = attester(TDX_DEBUG).quote(&REPORT_DATA);
    let message = expect_refused(verify(&quote), "debug TD");
    assert!(message.contains("Debug mode is enabled"), "{message}");
    assert!(verifier()
        .allow_debug(true)
        .verify(&quote, current_collateral(), NOW)
        .is_ok());
}

#[test]
fn strict_policy_accepts_the_simulated_pck_flags() {
    // dynamicPlatform / cachedKeys / smtEnabled are false in the simulated PCKs, as QuotePolicy::strict requires.
    let quote = attester(TDX_FRA_1).quote(&REPORT_DATA);
    let claims =
        verifier().verify_with_policy(&quote, current_collateral(), NOW, &QuotePolicy::strict(NOW));
    assert!(
        claims.is_ok(),
        "{:?}",
        claims.err().map(|e| format!("{e:#}"))
    );
}

#[test]
fn flipped_byte_in_header_or_body_is_refused() {
    let quote = attester(TDX_FRA_1).quote(&REPORT_DATA);
    // qe_svn (header), MRTD (body), REPORTDATA (body), last RTMR byte.
    for offset in [8, 28, 184, 568, 631] {
        let mut tampered = quote.clone();
        tampered[offset] ^= 0x01;
        let message = expect_refused(verify(&tampered), &format!("byte {offset} flipped"));
        assert!(
            message.contains("signature is invalid"),
            "byte {offset}: {message}"
        );
    }
}

#[test]
fn flipped_byte_in_v5_body_is_refused() {
    let quote = attester(TDX_IAD_1).quote(&REPORT_DATA);
    for offset in [54 + 136, 54 + 600] {
        let mut tampered = quote.clone();
        tampered[offset] ^= 0x01;
        expect_refused(verify(&tampered), &format!("v5 byte {offset} flipped"));
    }
}

#[test]
fn flipped_byte_in_qe_report_is_refused() {
    let quote = attester(TDX_FRA_1).quote(&REPORT_DATA);
    // The QE report sits at 770..1154 in a v4 quote: MRSIGNER, ISVSVN and REPORTDATA bytes.
    for offset in [770 + 128, 770 + 258, 770 + 320] {
        let mut tampered = quote.clone();
        tampered[offset] ^= 0x01;
        let message = expect_refused(
            verify(&tampered),
            &format!("QE report byte {offset} flipped"),
        );
        assert!(
            message.contains("qe_report"),
            "QE report byte {offset}: {message}"
        );
    }
}

#[test]
fn bad_signature_fault_is_refused() {
    let quote = attester(TDX_FRA_1)
        .with_fault(TdxFault::BadSignature)
        .quote(&REPORT_DATA);
    let message = expect_refused(verify(&quote), "bad signature");
    assert!(
        message.contains("ISV enclave report signature is invalid"),
        "{message}"
    );
}

#[test]
fn revoked_pck_is_refused() {
    let quote = attester(TDX_FRA_1)
        .with_fault(TdxFault::RevokedPck)
        .quote(&REPORT_DATA);
    let message = expect_refused(verify(&quote), "revoked PCK");
    assert!(message.contains("CertRevoked"), "{message}");
}

#[test]
fn every_builtin_revoked_pck_is_in_the_crl() {
    for name in BUILTIN_TDX_PROFILES {
        let quote = attester(name)
            .with_fault(TdxFault::RevokedPck)
            .quote(&REPORT_DATA);
        let message = expect_refused(
            verifier()
                .allow_debug(true)
                .verify(&quote, current_collateral(), NOW)
                .map_err(|e| format!("{e:#}")),
            name,
        );
        // tcb-not-supported fails on the chain before the TCB match, so every profile reports revocation.
        assert!(message.contains("CertRevoked"), "{name}: {message}");
    }
}

#[test]
fn expired_pck_is_refused() {
    let quote = attester(TDX_FRA_1)
        .with_fault(TdxFault::ExpiredPck)
        .quote(&REPORT_DATA);
    let message = expect_refused(verify(&quote), "expired PCK");
    assert!(message.contains("CertExpired"), "{message}");
}

#[test]
fn pck_under_a_foreign_root_is_refused() {
    let quote = attester(TDX_FRA_1)
        .with_fault(TdxFault::ForeignChain)
        .quote(&REPORT_DATA);
    let message = expect_refused(verify(&quote), "foreign chain");
    assert!(
        message.contains("Failed to verify certificate chain"),
        "{message}"
    );
}

#[test]
fn stale_collateral_is_refused_at_now() {
    let attester = attester(TDX_FRA_1).with_fault(TdxFault::StaleCollateral);
    let quote = attester.quote(&REPORT_DATA);
    let stale = to_dcap_qvl(&attester.collateral());
    let message = expect_refused(
        verifier()
            .verify(&quote, &stale, NOW)
            .map_err(|e| format!("{e:#}")),
        "stale collateral",
    );
    assert!(message.contains("TCBInfo expired"), "{message}");
    // The same quote with current collateral verifies: only the collateral is stale.
    assert!(verify(&quote).is_ok());
}

#[test]
fn low_tcb_fault_rates_the_module_out_of_date() {
    let quote = attester(TDX_FRA_1)
        .with_fault(TdxFault::LowTcb)
        .quote(&REPORT_DATA);
    let report = verify(&quote).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.status, "OutOfDate");
    assert_eq!(report.advisory_ids, MODULE_ADVISORIES);
}

#[test]
fn debug_fault_sets_the_debug_attribute() {
    let quote = attester(TDX_FRA_1)
        .with_fault(TdxFault::Debug)
        .quote(&REPORT_DATA);
    let message = expect_refused(verify(&quote), "debug fault");
    assert!(message.contains("Debug mode is enabled"), "{message}");
}

#[test]
fn intel_production_root_does_not_accept_simulated_quotes() {
    let quote = attester(TDX_FRA_1).quote(&REPORT_DATA);
    let result = QuoteVerifier::new_prod().verify(&quote, current_collateral(), NOW);
    assert!(
        result.is_err(),
        "Intel's real root must never vouch for the simulator"
    );
}

#[test]
fn another_seed_is_another_world() {
    let other = Arc::new(IntelPki::new(7));
    assert_ne!(other.root_der(), pki().root_der());
    let quote = other
        .attester_by_name(TDX_FRA_1)
        .map(|a| a.quote(&REPORT_DATA));
    let quote = quote.unwrap_or_else(|| panic!("built-in profile"));
    expect_refused(verify(&quote), "quote from another seed's world");
}

#[test]
fn td15_launched_on_an_old_module_and_updated_is_relaunch_advised() {
    // TEE_TCB_SVN (launch) has the out-of-date module, TEE_TCB_SVN2 (current) the up-to-date one.
    let mut profile = attester(TDX_IAD_1).profile().clone();
    profile.name = "tdx-iad-1-relaunch".into();
    profile.tee_tcb_svn[0] = OUT_OF_DATE_MODULE_SVN;
    let quote = pki().attester(&profile).quote(&REPORT_DATA);
    let report = verify(&quote).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.status, "TDRelaunchAdvised");
    assert_eq!(report.advisory_ids, MODULE_ADVISORIES);
}

#[test]
fn low_tcb_fault_is_out_of_date_on_every_up_to_date_profile() {
    // For TD 1.5 both TEE_TCB_SVN and TEE_TCB_SVN2 are lowered, so it is OutOfDate, not TDRelaunchAdvised.
    for name in [TDX_FRA_1, TDX_IAD_1, TDX_UNREGISTERED] {
        let quote = attester(name)
            .with_fault(TdxFault::LowTcb)
            .quote(&REPORT_DATA);
        let report = verify(&quote).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.status, "OutOfDate", "{name}");
        assert_eq!(report.advisory_ids, MODULE_ADVISORIES, "{name}");
    }
    // On an out-of-date platform the advisories of both levels are reported.
    let quote = attester(TDX_OUTOFDATE)
        .with_fault(TdxFault::LowTcb)
        .quote(&REPORT_DATA);
    let report = verify(&quote).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.status, "OutOfDate");
    assert_eq!(
        report.advisory_ids,
        ["SIM-SA-00101", "SIM-SA-00102", "SIM-SA-00201"]
    );
}

#[test]
fn a_crl_revoking_the_genuine_pck_makes_dcap_qvl_refuse_it() {
    let attester = attester(TDX_FRA_1);
    let serial = pki().pck_serial(attester.profile(), PckVariant::Genuine);
    let mut collateral = current_collateral().clone();
    collateral.pck_crl = pki().issue_crl(
        CrlIssuer::PlatformCa,
        VALID_FROM_UNIX,
        COLLATERAL_NEXT_UPDATE_UNIX,
        &[serial],
    );
    let quote = attester.quote(&REPORT_DATA);
    let verdict = verifier()
        .verify(&quote, &collateral, NOW)
        .map_err(|e| format!("{e:#}"));
    let message = expect_refused(verdict, "genuine PCK revoked by a new CRL");
    assert!(message.contains("CertRevoked"), "{message}");
}

#[test]
fn an_expired_pck_crl_is_refused() {
    let mut collateral = current_collateral().clone();
    // Valid 2025-01-01 .. 2025-06-01, so already past nextUpdate at NOW (2026-01-01).
    collateral.pck_crl =
        pki().issue_crl(CrlIssuer::PlatformCa, VALID_FROM_UNIX, 1_748_736_000, &[]);
    let quote = attester(TDX_FRA_1).quote(&REPORT_DATA);
    let verdict = verifier()
        .verify(&quote, &collateral, NOW)
        .map_err(|e| format!("{e:#}"));
    let message = expect_refused(verdict, "expired PCK CRL");
    assert!(message.contains("CrlExpired"), "{message}");
}

#[test]
fn a_pck_crl_signed_by_the_root_instead_of_the_platform_ca_is_refused() {
    let mut collateral = current_collateral().clone();
    collateral.pck_crl = pki().issue_crl(
        CrlIssuer::Root,
        VALID_FROM_UNIX,
        COLLATERAL_NEXT_UPDATE_UNIX,
        &[],
    );
    let quote = attester(TDX_FRA_1).quote(&REPORT_DATA);
    // The root's CRL says nothing about the PCK leaf, and unknown revocation status is denied.
    let verdict = verifier()
        .verify(&quote, &collateral, NOW)
        .map_err(|e| format!("{e:#}"));
    let message = expect_refused(verdict, "PCK CRL from the wrong issuer");
    assert!(message.contains("UnknownRevocationStatus"), "{message}");
}
