//! Simulated SEV-SNP evidence (locus-simulator's AMD world) through the appraisal core and the CLI: refused without
//! simulator trust (`simulated_evidence_untrusted`), accepted with it (`"simulated": true`), each injected fault
//! refused with its code, a VCEK of another chip at the same TCB refused on its hwID, and the ARK-signed CRL checked.

use std::sync::Arc;

use der::Decode;
use locus_hw::snp::Product;
use locus_simulator::amd::pki::Hierarchy;
use locus_simulator::world::VcekValidity;
use locus_simulator::{Fault, SnpEvidence, World};
use locus_verifier::appraisal::{
    apply_policy, appraise_snp, Facts, Policy, SnpEndorsements, TrustAnchors, Verified,
};
use locus_verifier::{ErrorCode, Refusal};

mod appraise_support;
use appraise_support::{
    cli_refuses_then_trusts_simulator, sim_snp_endorsements as endorsements,
    snp_trusting_simulator as trusting,
};

const REPORT_DATA: [u8; 64] = [0xa5; 64];
/// 2026-01-01T00:00:00Z: inside the simulated VCEK validity (2025..2032).
const NOW: u64 = 1_767_225_600;

fn world() -> Arc<World> {
    World::shared()
}

fn evidence(profile: &str, faults: &[Fault]) -> SnpEvidence {
    let mut att = world().snp_attester(profile).expect("profile");
    for f in faults {
        att = att.with_fault(*f);
    }
    att.report(&REPORT_DATA).expect("report")
}

fn appraise(
    ev: &SnpEvidence,
    e: &SnpEndorsements,
    anchors: &TrustAnchors,
) -> Result<Verified<Facts>, Refusal> {
    appraise_snp(&ev.report, e, anchors, NOW).map(Verified::<Facts>::from)
}

fn code(r: Result<Verified<Facts>, Refusal>) -> ErrorCode {
    match r {
        Ok(v) => panic!("accepted: {}", v.to_cli_json()),
        Err(r) => r.code,
    }
}

#[test]
fn simulated_snp_evidence_is_refused_without_simulator_trust_and_accepted_as_simulated_with_it() {
    let pinned = TrustAnchors::pinned().expect("anchors");
    let anchors = trusting();
    for (profile, product) in [
        ("snp-fra-1", Product::Milan),
        ("snp-iad-1", Product::Genoa),
        ("snp-turin", Product::Turin),
    ] {
        let ev = evidence(profile, &[]);
        assert_eq!(
            code(appraise(&ev, &endorsements(&ev), &pinned)),
            ErrorCode::SimulatedEvidenceUntrusted,
            "{profile}"
        );
        let v = appraise(&ev, &endorsements(&ev), &anchors)
            .unwrap_or_else(|r| panic!("{profile}: {r}"));
        assert!(v.simulated());
        let Facts::Snp(f) = v.facts() else {
            panic!("snp facts")
        };
        assert_eq!(f.product, product);
        assert_eq!(f.report_data, REPORT_DATA);
        // The default policy fails closed: no declared current TCB for the product, no CRL consulted.
        assert_eq!(
            apply_policy(&v, &Policy::default()).map_err(|r| r.code),
            Err(ErrorCode::CollateralMissing),
            "{profile}"
        );
        apply_policy(&v, &current_policy(f, "")).unwrap_or_else(|r| panic!("{profile}: {r}"));
    }
}

/// A policy that declares `f`'s reported TCB current for its product and waives the CRL (tested on its own below).
fn current_policy(f: &locus_verifier::appraisal::SnpFacts, extra: &str) -> Policy {
    let t = f.reported_tcb;
    let fmc = t.fmc.map(|v| format!("fmc = {v}\n")).unwrap_or_default();
    Policy::from_toml(&format!(
        "require_revocation = false\n{extra}\n[snp_current_tcb.{}]\n{fmc}bootloader = {}\ntee = {}\nsnp = {}\nmicrocode = {}\n",
        f.product.kds_name().to_ascii_lowercase(),
        t.bootloader,
        t.tee,
        t.snp,
        t.microcode
    ))
    .expect("policy")
}

#[test]
fn each_simulated_snp_fault_is_refused_with_its_code() {
    let anchors = trusting();
    for (fault, want) in [
        (Fault::BadSignature, ErrorCode::SignatureInvalid),
        (Fault::ForeignChain, ErrorCode::ChainUntrusted),
        (Fault::ExpiredCertificate, ErrorCode::CertificateExpired),
    ] {
        let ev = evidence("snp-fra-1", &[fault]);
        assert_eq!(
            code(appraise(&ev, &endorsements(&ev), &anchors)),
            want,
            "{fault:?}"
        );
    }
    let ev = evidence("snp-fra-1", &[Fault::Debug]);
    let v = appraise(&ev, &endorsements(&ev), &anchors).expect("debug evidence verifies");
    assert!(v.facts().debug());
    assert_eq!(
        apply_policy(&v, &Policy::default()).map_err(|r| r.code),
        Err(ErrorCode::DebugEnabled)
    );

    let fresh = evidence("snp-fra-1", &[]);
    let Facts::Snp(current) = appraise(&fresh, &endorsements(&fresh), &anchors)
        .expect("ok")
        .facts()
        .clone()
    else {
        panic!("snp facts")
    };
    let ev = evidence("snp-fra-1", &[Fault::LowTcb]);
    let v = appraise(&ev, &endorsements(&ev), &anchors).expect("low-TCB evidence verifies");
    // Below the declared current TCB: OutOfDate, refused by the default allowed set ...
    assert_eq!(
        apply_policy(&v, &current_policy(&current, "")).map_err(|r| r.code),
        Err(ErrorCode::TcbStatusRejected)
    );
    // ... and, where OutOfDate is allowed, still below a floor set at the current TCB.
    let t = current.reported_tcb;
    let policy = current_policy(
        &current,
        &format!(
            "snp_allowed_tcb = [\"UpToDate\", \"OutOfDate\"]\n[snp_min_tcb]\nbootloader = {}\ntee = {}\nsnp = {}\nmicrocode = {}\n",
            t.bootloader, t.tee, t.snp, t.microcode
        ),
    );
    assert_eq!(
        apply_policy(&v, &policy).map_err(|r| r.code),
        Err(ErrorCode::TcbBelowMinimum)
    );
}

#[test]
fn a_vcek_of_another_chip_at_the_same_tcb_is_tcb_mismatch_on_its_hwid() {
    let anchors = trusting();
    let w = world();
    let ev = evidence("snp-fra-1", &[]);
    let Facts::Snp(f) = appraise(&ev, &endorsements(&ev), &anchors)
        .expect("ok")
        .facts()
        .clone()
    else {
        panic!("snp facts")
    };
    let mut other_chip = f.chip_id;
    other_chip[0] ^= 0xff;
    let other = w
        .vcek_der_for(
            Hierarchy::Genuine,
            Product::Milan,
            &other_chip,
            &f.reported_tcb,
            VcekValidity::Current,
        )
        .expect("vcek");
    let e = SnpEndorsements {
        vek_der: Some(other.as_ref().clone()),
        ..endorsements(&ev)
    };
    let r = appraise(&ev, &e, &anchors).expect_err("refused");
    assert_eq!(r.code, ErrorCode::TcbMismatch, "{r}");
    assert!(r.message.contains("hwID"), "{r}");
}

#[test]
fn the_ark_signed_crl_is_checked_and_an_expired_crl_is_collateral_expired() {
    let anchors = trusting();
    let w = world();
    let ev = evidence("snp-fra-1", &[]);
    let e = SnpEndorsements {
        crl_der: Some(w.amd_crl_der(Product::Milan).expect("crl")),
        ..endorsements(&ev)
    };
    appraise(&ev, &e, &anchors).expect("a current CRL that lists nothing of ours");
    // The Genoa CRL is signed by another ARK.
    let e = SnpEndorsements {
        crl_der: Some(w.amd_crl_der(Product::Genoa).expect("crl")),
        ..endorsements(&ev)
    };
    let r = appraise(&ev, &e, &anchors).expect_err("refused");
    assert!(
        matches!(
            r.code,
            ErrorCode::ChainUntrusted | ErrorCode::SignatureInvalid
        ),
        "{r}"
    );
    // Just past the CRL's nextUpdate it is stale (`collateral_expired`), unless the VCEK has expired by then.
    let crl_der = w.amd_crl_der(Product::Milan).expect("crl");
    let crl = x509_cert::crl::CertificateList::from_der(&crl_der).expect("crl parses");
    let next_update = crl
        .tbs_cert_list
        .next_update
        .expect("nextUpdate")
        .to_unix_duration()
        .as_secs();
    let vcek = x509_cert::Certificate::from_der(&ev.vcek_der).expect("vcek parses");
    let vcek_end = vcek
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    let e = SnpEndorsements {
        crl_der: Some(crl_der),
        ..endorsements(&ev)
    };
    let r = appraise_snp(&ev.report, &e, &anchors, next_update + 1).expect_err("refused");
    let want = if next_update < vcek_end {
        ErrorCode::CollateralExpired
    } else {
        ErrorCode::CertificateExpired
    };
    assert_eq!(r.code, want, "{r}");
}

#[test]
fn an_ask_listed_in_the_ark_signed_crl_is_revoked() {
    let anchors = trusting();
    let w = world();
    let ev = evidence("snp-fra-1", &[]);
    let pki = w.amd_pki(Product::Milan, Hierarchy::Genuine).expect("pki");
    let ask = x509_cert::Certificate::from_der(&ev.ask_der).expect("ask parses");
    let serial = ask
        .tbs_certificate
        .serial_number
        .as_bytes()
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let crl = pki
        .crl_revoking(&[serial], NOW - 86_400, NOW + 86_400)
        .expect("crl");
    let e = SnpEndorsements {
        crl_der: Some(crl),
        ..endorsements(&ev)
    };
    let r = appraise(&ev, &e, &anchors).expect_err("refused");
    assert_eq!(r.code, ErrorCode::Revoked, "{r}");
    let other = pki
        .crl_revoking(&[serial + 1], NOW - 86_400, NOW + 86_400)
        .expect("crl");
    let e = SnpEndorsements {
        crl_der: Some(other),
        ..endorsements(&ev)
    };
    appraise(&ev, &e, &anchors).expect("another serial revoked: ours is fine");
}

#[test]
fn the_verifiers_crl_is_authoritative_and_a_client_crl_counts_only_when_newer() {
    use locus_verifier::appraisal::{Facts, Revocation};
    let anchors = trusting();
    let w = world();
    let ev = evidence("snp-fra-1", &[]);
    let pki = w.amd_pki(Product::Milan, Hierarchy::Genuine).expect("pki");
    let ask = x509_cert::Certificate::from_der(&ev.ask_der).expect("ask parses");
    let serial = ask
        .tbs_certificate
        .serial_number
        .as_bytes()
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let old_clean = pki
        .crl_revoking(&[], NOW - 2 * 86_400, NOW + 86_400)
        .expect("crl");
    let new_revoking = pki
        .crl_revoking(&[serial], NOW - 86_400, NOW + 86_400)
        .expect("crl");
    let revocation =
        |e: &SnpEndorsements| match appraise(&ev, e, &anchors).map(|v| v.facts().clone()) {
            Ok(Facts::Snp(f)) => Ok(f.revocation),
            Ok(_) => panic!("not SNP"),
            Err(r) => Err(r.code),
        };
    // No CRL at all: appraisal says so; policy (service, CLI --policy) refuses it.
    assert_eq!(revocation(&endorsements(&ev)), Ok(Revocation::Unchecked));
    // An older client CRL cannot hide the verifier's newer revocation.
    let e = SnpEndorsements {
        crl_der: Some(new_revoking.clone()),
        client_crl_der: Some(old_clean.clone()),
        ..endorsements(&ev)
    };
    assert_eq!(revocation(&e), Err(ErrorCode::Revoked));
    // A newer client CRL is used.
    let e = SnpEndorsements {
        crl_der: Some(old_clean.clone()),
        client_crl_der: Some(new_revoking.clone()),
        ..endorsements(&ev)
    };
    assert_eq!(revocation(&e), Err(ErrorCode::Revoked));
    // A client CRL alone, valid: checked.
    let e = SnpEndorsements {
        client_crl_der: Some(old_clean.clone()),
        ..endorsements(&ev)
    };
    assert_eq!(revocation(&e), Ok(Revocation::Checked));
    // A client CRL signed by another ARK is ignored, not an error: still unchecked.
    let e = SnpEndorsements {
        client_crl_der: Some(w.amd_crl_der(Product::Genoa).expect("crl")),
        ..endorsements(&ev)
    };
    assert_eq!(revocation(&e), Ok(Revocation::Unchecked));
}

#[test]
fn the_cli_refuses_simulated_snp_evidence_without_trust_and_marks_it_simulated_with_trust() {
    let ev = evidence("snp-iad-1", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.bin");
    std::fs::write(&report, &ev.report).expect("write");
    std::fs::write(dir.path().join("vcek.der"), &ev.vcek_der).expect("write");
    std::fs::write(dir.path().join("ask.der"), &ev.ask_der).expect("write");
    std::fs::write(dir.path().join("ark.der"), &ev.ark_der).expect("write");
    let json = cli_refuses_then_trusts_simulator(&[
        "--evidence",
        report.to_str().expect("path"),
        "--certs",
        dir.path().to_str().expect("path"),
        "--at",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(json["product"], "Genoa");
    assert_eq!(json["report_data"], hex::encode(REPORT_DATA));
}
