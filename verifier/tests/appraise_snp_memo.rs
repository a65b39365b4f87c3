//! The SEV-SNP chain memo through `appraise_snp`, with simulated evidence: a second report with the same endorsements
//! is a hit with its own facts; on a hit the report's own fields and signature are still checked; a `now` outside the
//! windows the chain steps checked, other endorsements, and a CRL shipped by the client miss.

use std::sync::Arc;

use locus_hw::snp::Product;
use locus_simulator::{Fault, SnpEvidence, World};
use locus_verifier::appraisal::{appraise_snp, Revocation, SnpEndorsements, TrustAnchors};
use locus_verifier::ErrorCode;

mod appraise_support;
use appraise_support::{sim_snp_endorsements, snp_trusting_simulator as trusting};

/// 2026-01-01T00:00:00Z: inside the simulated VCEK validity (2025..2032) and the AMD CRL window.
const NOW: u64 = 1_767_225_600;
/// REPORT_DATA offset in the report.
const REPORT_DATA_AT: usize = 0x50;

fn world() -> Arc<World> {
    World::shared()
}

fn evidence(profile: &str, report_data: u8, faults: &[Fault]) -> SnpEvidence {
    let mut att = world().snp_attester(profile).expect("profile");
    for f in faults {
        att = att.with_fault(*f);
    }
    att.report(&[report_data; 64]).expect("report")
}

fn endorsements(ev: &SnpEvidence, crl: bool) -> SnpEndorsements {
    SnpEndorsements {
        crl_der: crl.then(|| world().amd_crl_der(Product::Milan).expect("CRL")),
        ..sim_snp_endorsements(ev)
    }
}

/// (hits, misses) added by one appraisal.
fn judged(
    report: &[u8],
    e: &SnpEndorsements,
    anchors: &TrustAnchors,
    now: u64,
) -> (
    Result<locus_verifier::appraisal::SnpFacts, ErrorCode>,
    u64,
    u64,
) {
    let before = anchors.memo_stats();
    let r = appraise_snp(report, e, anchors, now)
        .map(|v| v.facts().clone())
        .map_err(|r| r.code);
    let after = anchors.memo_stats();
    (r, after.hits - before.hits, after.misses - before.misses)
}

#[test]
fn a_second_report_with_the_same_endorsements_is_a_hit_with_its_own_facts() {
    let anchors = trusting();
    let first = evidence("snp-fra-1", 0x01, &[]);
    let e = endorsements(&first, true);
    let (r1, hits, misses) = judged(&first.report, &e, &anchors, NOW);
    assert_eq!((hits, misses), (0, 1));
    let f1 = r1.expect("first verifies");
    assert_eq!(f1.revocation, Revocation::Checked);
    let second = evidence("snp-fra-1", 0x02, &[]);
    let (r2, hits, misses) = judged(&second.report, &e, &anchors, NOW);
    assert_eq!((hits, misses), (1, 0));
    let f2 = r2.expect("second verifies");
    assert_eq!(f2.report_data, [0x02; 64]);
    let mut expected = f1.clone();
    expected.report_data = [0x02; 64];
    assert_eq!(f2, expected, "every fact but REPORT_DATA is the same");
}

#[test]
fn on_a_hit_the_report_is_still_checked_field_by_field_and_its_signature_over_the_received_bytes() {
    let anchors = trusting();
    let ev = evidence("snp-fra-1", 0x03, &[]);
    let e = endorsements(&ev, true);
    judged(&ev.report, &e, &anchors, NOW).0.expect("warm-up");
    // A flipped REPORT_DATA byte: a hit, refused by the signature check.
    let mut raw = evidence("snp-fra-1", 0x04, &[]).report;
    raw[REPORT_DATA_AT] ^= 0x01;
    let (r, hits, _) = judged(&raw, &e, &anchors, NOW);
    assert_eq!(hits, 1);
    assert_eq!(r.err(), Some(ErrorCode::SignatureInvalid));
    // The platform's own bad signature: a hit, refused.
    let bad = evidence("snp-fra-1", 0x05, &[Fault::BadSignature]);
    let (r, hits, _) = judged(&bad.report, &e, &anchors, NOW);
    assert_eq!(hits, 1);
    assert_eq!(r.err(), Some(ErrorCode::SignatureInvalid));
    // A report from another chip with this chip's endorsements: a hit, refused on the hwID like the full path.
    let other = evidence("snp-iad-1", 0x06, &[]);
    let (r, hits, _) = judged(&other.report, &e, &anchors, NOW);
    assert_eq!(hits, 1);
    let full = appraise_snp(&other.report, &e, &anchors.with_fresh_memos(), NOW)
        .err()
        .map(|r| r.code);
    assert_eq!(r.err(), full, "the hit refuses with the full path's code");
    assert!(full.is_some());
}

#[test]
fn outside_the_windows_other_endorsements_and_client_crls_are_misses() {
    let anchors = trusting();
    let ev = evidence("snp-fra-1", 0x07, &[]);
    let e = endorsements(&ev, true);
    judged(&ev.report, &e, &anchors, NOW).0.expect("warm-up");
    // Far past every certificate's notAfter: a miss, refused by the full path.
    let (r, hits, misses) = judged(&ev.report, &e, &anchors, 4_102_444_800);
    assert_eq!((hits, misses), (0, 1));
    assert!(r.is_err());
    // Without the CRL: other endorsements, a miss (and revocation unchecked).
    let no_crl = endorsements(&ev, false);
    let (r, hits, misses) = judged(&ev.report, &no_crl, &anchors, NOW);
    assert_eq!((hits, misses), (0, 1));
    assert_eq!(r.expect("verifies").revocation, Revocation::Unchecked);
    // A CRL shipped by the client: never memoised, so every appraisal takes the full path.
    let mut shipped = e.clone();
    shipped.client_crl_der = shipped.crl_der.clone();
    for _ in 0..2 {
        let (r, hits, _) = judged(&ev.report, &shipped, &anchors, NOW);
        assert_eq!(hits, 0);
        r.expect("verifies");
    }
    // Refusals are not memoised: an expired VCEK is refused every time by the full path.
    let expired = evidence("snp-fra-1", 0x08, &[Fault::ExpiredCertificate]);
    let e = endorsements(&expired, true);
    for _ in 0..2 {
        let (r, hits, _) = judged(&expired.report, &e, &anchors, NOW);
        assert_eq!(hits, 0);
        assert_eq!(r.err(), Some(ErrorCode::CertificateExpired));
    }
}

#[test]
fn endorsements_that_differ_only_before_the_bytes_the_memo_key_reads_are_a_miss_and_fully_checked()
{
    let anchors = trusting();
    let ev = evidence("snp-fra-1", 0x05, &[]);
    let e = endorsements(&ev, true);
    let (r, _, _) = judged(&ev.report, &e, &anchors, NOW);
    r.expect("verifies and is remembered");
    // The same lengths and the same tail (the signature the key reads), one byte changed in the VCEK's body: the key
    // finds the remembered chain, but the bytes differ, so it is a miss and the full path refuses the forged VCEK.
    let mut forged = e.clone();
    let vek = forged.vek_der.as_mut().expect("VCEK");
    let at = vek.len() / 3;
    vek[at] ^= 0x01;
    let (r, hits, misses) = judged(&ev.report, &forged, &anchors, NOW);
    assert_eq!((hits, misses), (0, 1));
    assert!(
        r.is_err(),
        "a VCEK whose body changed must not pass on the remembered verdict"
    );
    // The forged set replaced nothing it could use: the genuine one still verifies.
    let (r, _, _) = judged(&ev.report, &e, &anchors, NOW);
    r.expect("the genuine endorsements still verify");
}
