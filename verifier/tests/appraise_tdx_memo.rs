//! The per-platform TDX memo through `appraise_tdx`, with simulated evidence: a second quote from
//! the same platform is a memo hit with the same facts but its own REPORTDATA; every change outside REPORTDATA and the
//! quote signature, other collateral, other anchors and a `now` outside the collateral's windows miss and go through
//! the full path; on a hit the quote signature is still checked over the received bytes. Memo counters are per
//! thread, so these tests may run in parallel.

use std::sync::{Arc, OnceLock};

use locus_simulator::intel::collateral::{COLLATERAL_NEXT_UPDATE_UNIX, VALID_FROM_UNIX};
use locus_simulator::intel::{IntelPki, SimTdxAttester, TdxFault, SIM_VERIFICATION_TIME_UNIX};
use locus_verifier::appraisal::{
    appraise_tdx, TdxCollateral, TdxCollateralParts, TdxFacts, TrustAnchors, Verified,
};
use locus_verifier::{ErrorCode, Refusal};

mod appraise_support;
use appraise_support::sim_tdx_collateral;

const SEED: u64 = 0x3e30;
/// REPORTDATA offset in a v4 quote: header (48) + TD report fields before REPORTDATA (520).
const V4_REPORT_DATA: usize = 48 + 520;
/// MRTD offset in a v4 quote.
const V4_MR_TD: usize = 48 + 136;

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

fn collateral() -> &'static TdxCollateral {
    static C: OnceLock<TdxCollateral> = OnceLock::new();
    C.get_or_init(|| sim_tdx_collateral(&attester("tdx-fra-1").collateral()))
}

fn rd(byte: u8) -> [u8; 64] {
    [byte; 64]
}

/// Appraise and return the verdict with the hits and misses this call added on this thread.
fn judged(
    quote: &[u8],
    c: &TdxCollateral,
    anchors: &TrustAnchors,
    now: u64,
) -> (Result<Verified<TdxFacts>, Refusal>, u64, u64) {
    let before = anchors.memo_stats();
    let r = appraise_tdx(quote, c, anchors, now);
    let after = anchors.memo_stats();
    (r, after.hits - before.hits, after.misses - before.misses)
}

fn refused(r: Result<Verified<TdxFacts>, Refusal>) -> ErrorCode {
    match r {
        Ok(v) => panic!("accepted: {:?}", v.facts()),
        Err(r) => r.code,
    }
}

/// Warm the memo for `att` (fra-1 collateral, trusting anchors); the warm-up itself must verify.
fn warm(att: &SimTdxAttester, anchors: &TrustAnchors) -> Verified<TdxFacts> {
    appraise_tdx(
        &att.quote(&rd(0x01)),
        collateral(),
        anchors,
        SIM_VERIFICATION_TIME_UNIX,
    )
    .expect("warm-up verifies")
}

#[test]
fn a_second_quote_from_the_same_platform_is_a_memo_hit_with_the_same_facts_but_its_own_report_data()
{
    let att = attester("tdx-fra-1");
    let anchors = trusting();
    let first = warm(&att, &anchors);
    let (second, hits, misses) = judged(
        &att.quote(&rd(0x02)),
        collateral(),
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    );
    let second = second.expect("second quote verifies");
    assert_eq!((hits, misses), (1, 0), "the second appraisal is a hit");
    assert!(second.simulated() && first.simulated());
    assert_eq!(second.facts().report_data, rd(0x02));
    assert_eq!(first.facts().report_data, rd(0x01));
    let mut expected = first.facts().clone();
    expected.report_data = rd(0x02);
    assert_eq!(
        second.facts(),
        &expected,
        "every fact but REPORTDATA is the same"
    );
    assert_eq!(second.facts().tcb_status, "UpToDate");
    assert!(!second.facts().ppid.is_empty());

    // Trailing zero padding is tolerated on the hit path too, trailing garbage is not.
    let mut padded = att.quote(&rd(0x03));
    padded.extend_from_slice(&[0u8; 32]);
    let (r, hits, _) = judged(&padded, collateral(), &anchors, SIM_VERIFICATION_TIME_UNIX);
    assert_eq!(hits, 1);
    assert_eq!(r.expect("padded").facts().report_data, rd(0x03));
    let last = padded.len() - 1;
    padded[last] = 0x42;
    let (r, hits, _) = judged(&padded, collateral(), &anchors, SIM_VERIFICATION_TIME_UNIX);
    assert_eq!(hits, 1);
    assert_eq!(refused(r), ErrorCode::EvidenceMalformed);
}

#[test]
fn a_warm_memo_still_checks_the_quote_signature_over_the_received_bytes() {
    let att = attester("tdx-fra-1");
    let anchors = trusting();
    warm(&att, &anchors);
    // A flipped REPORTDATA byte keeps the key: a hit, refused by the signature check.
    let mut raw = att.quote(&rd(0x04));
    raw[V4_REPORT_DATA + 7] ^= 0x01;
    let (r, hits, misses) = judged(&raw, collateral(), &anchors, SIM_VERIFICATION_TIME_UNIX);
    assert_eq!((hits, misses), (1, 0));
    assert_eq!(refused(r), ErrorCode::SignatureInvalid);
    // A bad signature from the platform itself (the simulator's BadSignature fault): a hit, refused.
    let bad = attester("tdx-fra-1").with_fault(TdxFault::BadSignature);
    let (r, hits, _) = judged(
        &bad.quote(&rd(0x05)),
        collateral(),
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    );
    assert_eq!(hits, 1);
    assert_eq!(refused(r), ErrorCode::SignatureInvalid);
    // A flipped MRTD byte changes the key: a miss, and the full path refuses it.
    let mut raw = att.quote(&rd(0x04));
    raw[V4_MR_TD + 3] ^= 0x01;
    let (r, hits, misses) = judged(&raw, collateral(), &anchors, SIM_VERIFICATION_TIME_UNIX);
    assert_eq!((hits, misses), (0, 1));
    assert_eq!(refused(r), ErrorCode::SignatureInvalid);
    // Refusals are never stored: the same flipped quote misses again.
    let (_, hits, misses) = judged(&raw, collateral(), &anchors, SIM_VERIFICATION_TIME_UNIX);
    assert_eq!((hits, misses), (0, 1));
}

#[test]
fn a_warm_memo_never_answers_outside_the_collateral_windows() {
    let att = attester("tdx-fra-1");
    let anchors = trusting();
    warm(&att, &anchors);
    let quote = att.quote(&rd(0x06));
    // At nextUpdate the CRLs are expired (webpki: now >= nextUpdate); after it, everything is.
    for now in [
        COLLATERAL_NEXT_UPDATE_UNIX,
        COLLATERAL_NEXT_UPDATE_UNIX + 86_400,
    ] {
        let (r, hits, misses) = judged(&quote, collateral(), &anchors, now);
        assert_eq!((hits, misses), (0, 1), "at {now}");
        assert_eq!(refused(r), ErrorCode::CollateralExpired, "at {now}");
    }
    // Before the collateral was issued.
    let (r, hits, _) = judged(&quote, collateral(), &anchors, VALID_FROM_UNIX - 1);
    assert_eq!(hits, 0);
    assert_eq!(refused(r), ErrorCode::CollateralExpired);
    // The last second inside every window is still a hit.
    let (r, hits, _) = judged(
        &quote,
        collateral(),
        &anchors,
        COLLATERAL_NEXT_UPDATE_UNIX - 1,
    );
    assert_eq!(hits, 1);
    r.expect("inside every window");
}

#[test]
fn other_collateral_other_anchors_or_another_pck_are_never_memo_hits() {
    let att = attester("tdx-fra-1");
    let anchors = trusting();
    warm(&att, &anchors);
    let quote = att.quote(&rd(0x07));
    let files = att.collateral();
    let parts = TdxCollateralParts {
        tcb_info_json: &files.tcb_info_json,
        tcb_info_issuer_chain_pem: &files.tcb_info_issuer_chain_pem,
        qe_identity_json: &files.qe_identity_json,
        qe_identity_issuer_chain_pem: &files.qe_identity_issuer_chain_pem,
        pck_crl_der: &files.pck_crl_der,
        pck_crl_issuer_chain_pem: &files.pck_crl_issuer_chain_pem,
        root_ca_crl_der: &files.root_ca_crl_der,
    };

    // Tampered TCB info (the signed text changed): a miss, refused by the full path.
    let mut c = collateral().as_dcap_qvl().clone();
    c.tcb_info = c.tcb_info.replacen("UpToDate", "OutOfDate", 1);
    let (r, hits, misses) = judged(
        &quote,
        &TdxCollateral::from_dcap_qvl(c),
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    );
    assert_eq!((hits, misses), (0, 1));
    assert_eq!(refused(r), ErrorCode::SignatureInvalid);

    // A tampered PCK CRL: a miss, refused.
    let mut c = collateral().as_dcap_qvl().clone();
    let at = c.pck_crl.len() - 5;
    c.pck_crl[at] ^= 0x01;
    let (r, hits, _) = judged(
        &quote,
        &TdxCollateral::from_dcap_qvl(c),
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    );
    assert_eq!(hits, 0);
    refused(r);

    // Stale collateral (TCB info / QE identity of 2024): a miss, collateral_expired.
    let stale = sim_tdx_collateral(
        &attester("tdx-fra-1")
            .with_fault(TdxFault::StaleCollateral)
            .collateral(),
    );
    for _ in 0..2 {
        let (r, hits, _) = judged(&quote, &stale, &anchors, SIM_VERIFICATION_TIME_UNIX);
        assert_eq!(hits, 0, "a refusal about time is never memoised");
        assert_eq!(refused(r), ErrorCode::CollateralExpired);
    }

    // Equivalent collateral in other bytes (an extra newline after a PEM chain): a miss that verifies and is then
    // stored under its own identity.
    let chain = format!("{}\n", files.tcb_info_issuer_chain_pem);
    let other = TdxCollateral::from_parts(TdxCollateralParts {
        tcb_info_issuer_chain_pem: &chain,
        ..parts
    })
    .expect("collateral");
    let (r, hits, misses) = judged(&quote, &other, &anchors, SIM_VERIFICATION_TIME_UNIX);
    assert_eq!((hits, misses), (0, 1));
    assert_eq!(
        r.expect("equivalent collateral").facts().tcb_status,
        "UpToDate"
    );
    let (r, hits, _) = judged(&quote, &other, &anchors, SIM_VERIFICATION_TIME_UNIX);
    assert_eq!(hits, 1);
    r.expect("now a hit");

    // Anchors without simulator trust (another instance, so another memo): a miss, refused.
    let pinned = TrustAnchors::pinned().expect("anchors");
    let (r, hits, misses) = judged(&quote, collateral(), &pinned, SIM_VERIFICATION_TIME_UNIX);
    assert_eq!((hits, misses), (0, 1));
    assert_eq!(refused(r), ErrorCode::SimulatedEvidenceUntrusted);
    let (r, hits, _) = judged(&quote, collateral(), &pinned, SIM_VERIFICATION_TIME_UNIX);
    assert_eq!(hits, 0, "an untrusted root is never memoised");
    assert_eq!(refused(r), ErrorCode::SimulatedEvidenceUntrusted);

    // The same platform with a revoked or an expired PCK: other signature data, a miss, refused.
    for (fault, code) in [
        (TdxFault::RevokedPck, ErrorCode::Revoked),
        (TdxFault::ExpiredPck, ErrorCode::CertificateExpired),
    ] {
        let q = attester("tdx-fra-1").with_fault(fault).quote(&rd(0x07));
        let (r, hits, _) = judged(&q, collateral(), &anchors, SIM_VERIFICATION_TIME_UNIX);
        assert_eq!(hits, 0, "{fault:?}");
        assert_eq!(refused(r), code, "{fault:?}");
    }
}

#[test]
fn each_platform_and_td_has_its_own_memo_entry() {
    let anchors = trusting();
    let fra = attester("tdx-fra-1");
    let ood = attester("tdx-outofdate");
    let fra_facts = warm(&fra, &anchors).facts().clone();
    let ood_first = appraise_tdx(
        &ood.quote(&rd(0x08)),
        collateral(),
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    )
    .expect("out-of-date platform verifies");
    let (r, hits, _) = judged(
        &ood.quote(&rd(0x09)),
        collateral(),
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    );
    assert_eq!(hits, 1);
    let ood_facts = r.expect("hit").facts().clone();
    assert_eq!(ood_facts.tcb_status, "OutOfDate");
    assert_eq!(ood_facts.advisory_ids, ood_first.facts().advisory_ids);
    assert!(!ood_facts.advisory_ids.is_empty());
    assert_eq!(fra_facts.tcb_status, "UpToDate");
    // A lowered module SVN on the fra-1 platform is another TD state: a miss, judged OutOfDate by the full path.
    let low = attester("tdx-fra-1").with_fault(TdxFault::LowTcb);
    let (r, hits, misses) = judged(
        &low.quote(&rd(0x0a)),
        collateral(),
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    );
    assert_eq!((hits, misses), (0, 1));
    assert_eq!(r.expect("low tcb verifies").facts().tcb_status, "OutOfDate");
    // A debug TD of the same platform: a miss; debug comes from the body.
    let dbg = attester("tdx-fra-1").with_fault(TdxFault::Debug);
    let (r, hits, _) = judged(
        &dbg.quote(&rd(0x0b)),
        collateral(),
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    );
    assert_eq!(hits, 0);
    assert!(r.expect("debug verifies").facts().debug);
}

#[test]
fn a_refusal_the_collateral_decides_is_memoised_and_answered_again_only_for_a_validly_signed_quote()
{
    let att = attester("tdx-fra-1");
    let anchors = trusting();
    // TCB info whose signed text changed: the engine refuses it for every quote of the platform.
    let mut c = collateral().as_dcap_qvl().clone();
    c.tcb_info = c.tcb_info.replacen("UpToDate", "OutOfDate", 1);
    let tampered = TdxCollateral::from_dcap_qvl(c);
    let (r, hits, misses) = judged(
        &att.quote(&rd(0x21)),
        &tampered,
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    );
    assert_eq!((hits, misses), (0, 1));
    let first = r.expect_err("tampered TCB info");
    assert_eq!(first.code, ErrorCode::SignatureInvalid);
    // Another quote of the platform: a hit, the same refusal, without the engine.
    let (r, hits, misses) = judged(
        &att.quote(&rd(0x22)),
        &tampered,
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    );
    assert_eq!((hits, misses), (1, 0));
    assert_eq!(r.expect_err("memoised refusal"), first);
    // A quote whose own signature fails finds the entry but goes the full way: the engine reports what its order
    // finds first (here the TCB info signature again), not the memo.
    let bad = attester("tdx-fra-1").with_fault(TdxFault::BadSignature);
    let (r, hits, _) = judged(
        &bad.quote(&rd(0x23)),
        &tampered,
        &anchors,
        SIM_VERIFICATION_TIME_UNIX,
    );
    assert_eq!(hits, 1);
    assert_eq!(refused(r), ErrorCode::SignatureInvalid);
    // Outside the collateral's window: a miss.
    let (_, hits, misses) = judged(
        &att.quote(&rd(0x24)),
        &tampered,
        &anchors,
        COLLATERAL_NEXT_UPDATE_UNIX + 1,
    );
    assert_eq!((hits, misses), (0, 1));
}

#[test]
fn a_real_tcb_not_supported_quote_is_refused_from_the_memo_on_its_second_appraisal() {
    for name in [
        "tdx/v4-50806f-tcb-not-supported-gotdx",
        "tdx/v5-90c06f-tcb-not-supported-dcapqvl",
    ] {
        let Some(root) = appraise_support::vectors_dir() else {
            return;
        };
        let dir = root.join(name);
        let quote = std::fs::read(dir.join("quote.bin")).expect("quote.bin");
        let c = locus_verifier::cli::tdx_collateral_from_dir(&dir.join("collateral"))
            .map_err(|e| e.0)
            .expect("collateral dir")
            .expect("collateral");
        let expected: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("expected.json")).expect("expected.json"),
        )
        .expect("expected.json");
        let now = locus_verifier::cli::parse_rfc3339(
            expected["verification_time"].as_str().expect("time"),
        )
        .map_err(|e| e.0)
        .expect("time");
        let anchors = TrustAnchors::pinned().expect("anchors");
        let (r, hits, misses) = judged(&quote, &c, &anchors, now);
        assert_eq!((hits, misses), (0, 1), "{name}");
        assert_eq!(refused(r), ErrorCode::TcbNotSupported, "{name}");
        let (r, hits, misses) = judged(&quote, &c, &anchors, now);
        assert_eq!((hits, misses), (1, 0), "{name}: memoised");
        assert_eq!(refused(r), ErrorCode::TcbNotSupported, "{name}");
    }
}
