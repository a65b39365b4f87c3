//! SEV-SNP mutation and chain tests at library level (fast): every single-byte flip of a real report is refused, and
//! each wrong endorsement (another chip's VCEK, another product's ARK, an unpinned ARK) is refused with its code.

use std::collections::BTreeMap;
use std::path::Path;

use locus_verifier::appraisal::x509::{der_or_pem_certificate, pem_certificates};
use locus_verifier::appraisal::{appraise_snp, SnpEndorsements, TrustAnchors};
use locus_verifier::cli::{parse_rfc3339, snp_endorsements_from_dir};
use locus_verifier::ErrorCode;

mod appraise_support;
use appraise_support::vectors_dir;

fn at(s: &str) -> u64 {
    parse_rfc3339(s).map_err(|e| e.0).expect("time")
}

struct Set {
    report: Vec<u8>,
    endorsements: SnpEndorsements,
}

fn load(root: &Path, name: &str) -> Set {
    let dir = root.join("snp").join(name);
    let report = std::fs::read(dir.join("report.bin")).expect("report");
    let endorsements = snp_endorsements_from_dir(&dir, &report)
        .map_err(|e| e.0)
        .expect("certs");
    Set {
        report,
        endorsements,
    }
}

fn code(raw: &[u8], e: &SnpEndorsements, anchors: &TrustAnchors, now: u64) -> Option<ErrorCode> {
    appraise_snp(raw, e, anchors, now).err().map(|r| r.code)
}

fn exhaustive_flips(name: &str, now: &str, masks: &[u8]) {
    let Some(root) = vectors_dir() else { return };
    let set = load(&root, name);
    let anchors = TrustAnchors::pinned().expect("anchors");
    let now = at(now);
    assert_eq!(
        code(&set.report, &set.endorsements, &anchors, now),
        None,
        "the unmodified report verifies"
    );
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..set.report.len() {
        for &mask in masks {
            let mut raw = set.report.clone();
            raw[i] ^= mask;
            let c = code(&raw, &set.endorsements, &anchors, now).unwrap_or_else(|| {
                panic!("{name}: flipping byte {i:#x} with {mask:#04x} was accepted")
            });
            *codes.entry(c.as_str().to_string()).or_default() += 1;
            // The measurement, report data and signature are only protected by the signature.
            if (0x50..0xC0).contains(&i)
                || (0x2A0..0x2D0).contains(&i)
                || (0x2E8..0x318).contains(&i)
            {
                assert_eq!(c, ErrorCode::SignatureInvalid, "{name}: byte {i:#x}");
            }
        }
    }
    let allowed = [
        "signature_invalid",
        "evidence_malformed",
        "unsupported_version",
        "tcb_mismatch",
        "chain_untrusted",
    ];
    for c in codes.keys() {
        assert!(
            allowed.contains(&c.as_str()),
            "{name}: unexpected code {c} ({codes:?})"
        );
    }
    eprintln!(
        "{name}: {} flips refused: {codes:?}",
        set.report.len() * masks.len()
    );
}

#[test]
fn every_single_byte_flip_of_the_milan_v2_report_is_refused() {
    exhaustive_flips("milan-v2-virtee", "2026-01-01T00:00:00Z", &[0x01, 0x80]);
}

#[test]
fn every_single_byte_flip_of_the_turin_v5_report_is_refused() {
    exhaustive_flips("turin-v5-routex", "2026-01-01T00:00:00Z", &[0x01]);
}

#[test]
fn a_vcek_of_another_chip_is_tcb_mismatch() {
    let Some(root) = vectors_dir() else { return };
    let anchors = TrustAnchors::pinned().expect("anchors");
    let set = load(&root, "milan-v2-virtee");
    let other = load(&root, "milan-v2-debug-gosevguest");
    let e = SnpEndorsements {
        vek_der: other.endorsements.vek_der.clone(),
        ..set.endorsements.clone()
    };
    let r =
        appraise_snp(&set.report, &e, &anchors, at("2026-01-01T00:00:00Z")).expect_err("refused");
    assert_eq!(r.code, ErrorCode::TcbMismatch, "{r}");
}

#[test]
fn a_milan_report_against_the_genoa_ark_is_chain_untrusted() {
    let Some(root) = vectors_dir() else { return };
    let anchors = TrustAnchors::pinned().expect("anchors");
    let now = at("2026-01-01T00:00:00Z");
    let milan = load(&root, "milan-v2-virtee");
    let genoa = load(&root, "genoa-v3-azure-trustee");
    // Milan VCEK and ASK, Genoa ARK.
    let e = SnpEndorsements {
        ark_der: genoa.endorsements.ark_der.clone(),
        ..milan.endorsements.clone()
    };
    let r = appraise_snp(&milan.report, &e, &anchors, now).expect_err("refused");
    assert_eq!(r.code, ErrorCode::ChainUntrusted, "{r}");
    // Milan report with the whole Genoa chain: the VCEK is not for this chip/product.
    let r = appraise_snp(&milan.report, &genoa.endorsements, &anchors, now).expect_err("refused");
    assert!(
        matches!(r.code, ErrorCode::ChainUntrusted | ErrorCode::TcbMismatch),
        "{r}"
    );
    // A v5 Genoa report (CPUID says Genoa) with the Milan chain: CPUID and certificate disagree.
    let genoa5 = load(&root, "genoa-v5-routex");
    let r = appraise_snp(&genoa5.report, &milan.endorsements, &anchors, now).expect_err("refused");
    assert_eq!(r.code, ErrorCode::ChainUntrusted, "{r}");
}

#[test]
fn an_ark_that_is_not_the_pinned_one_is_chain_untrusted() {
    let Some(root) = vectors_dir() else { return };
    let anchors = TrustAnchors::pinned().expect("anchors");
    let set = load(&root, "milan-v2-virtee");
    let mut ark = set.endorsements.ark_der.clone().expect("ark");
    let last = ark.len() - 1;
    ark[last] ^= 0x01; // same names, different bytes: not the pinned ARK-Milan
    let e = SnpEndorsements {
        ark_der: Some(ark),
        ..set.endorsements.clone()
    };
    let r =
        appraise_snp(&set.report, &e, &anchors, at("2026-01-01T00:00:00Z")).expect_err("refused");
    assert_eq!(r.code, ErrorCode::ChainUntrusted, "{r}");
    assert!(r.message.contains("not the pinned ARK-Milan"), "{r}");
}

#[test]
fn missing_ask_and_ark_come_from_the_pinned_set_and_a_missing_vcek_is_collateral_missing() {
    let Some(root) = vectors_dir() else { return };
    let anchors = TrustAnchors::pinned().expect("anchors");
    let now = at("2026-01-01T00:00:00Z");
    for name in ["milan-v2-virtee", "genoa-v5-routex", "turin-v5-routex"] {
        let set = load(&root, name);
        let e = SnpEndorsements {
            vek_der: set.endorsements.vek_der.clone(),
            ..SnpEndorsements::default()
        };
        let v =
            appraise_snp(&set.report, &e, &anchors, now).unwrap_or_else(|r| panic!("{name}: {r}"));
        assert!(!v.simulated());
    }
    let set = load(&root, "milan-v2-virtee");
    let r =
        appraise_snp(&set.report, &SnpEndorsements::default(), &anchors, now).expect_err("refused");
    assert_eq!(r.code, ErrorCode::CollateralMissing);
    // A VLEK has no built-in ASVK.
    let vlek = load(&root, "milan-v3-vlek-trustee");
    let e = SnpEndorsements {
        vek_der: vlek.endorsements.vek_der.clone(),
        ..SnpEndorsements::default()
    };
    let r =
        appraise_snp(&vlek.report, &e, &anchors, at("2025-06-01T00:00:00Z")).expect_err("refused");
    assert_eq!(r.code, ErrorCode::CollateralMissing);
}

#[test]
fn a_vlek_report_with_a_vcek_or_a_vcek_report_with_the_vlek_is_chain_untrusted() {
    let Some(root) = vectors_dir() else { return };
    let anchors = TrustAnchors::pinned().expect("anchors");
    let vlek = load(&root, "milan-v3-vlek-trustee");
    let vcek = load(&root, "milan-v2-virtee");
    let now = at("2025-06-01T00:00:00Z");
    let r = appraise_snp(&vlek.report, &vcek.endorsements, &anchors, now).expect_err("refused");
    assert_eq!(r.code, ErrorCode::ChainUntrusted, "{r}");
    let r = appraise_snp(&vcek.report, &vlek.endorsements, &anchors, now).expect_err("refused");
    assert_eq!(r.code, ErrorCode::ChainUntrusted, "{r}");
}

#[test]
fn the_vectors_cert_chain_pem_is_ask_then_ark_and_matches_the_separate_files() {
    let Some(root) = vectors_dir() else { return };
    let dir = root.join("snp/milan-v2-virtee");
    let chain =
        pem_certificates(&std::fs::read(dir.join("cert_chain.pem")).expect("chain")).expect("pem");
    let ask =
        der_or_pem_certificate(&std::fs::read(dir.join("ask.pem")).expect("ask")).expect("ask");
    let ark =
        der_or_pem_certificate(&std::fs::read(dir.join("ark.pem")).expect("ark")).expect("ark");
    assert_eq!(chain, vec![ask, ark]);
}

#[test]
fn each_step_1_check_of_the_report_has_its_code() {
    let Some(root) = vectors_dir() else { return };
    let anchors = TrustAnchors::pinned().expect("anchors");
    let set = load(&root, "milan-v2-virtee");
    let now = at("2026-01-01T00:00:00Z");
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut raw = set.report.clone();
        edit(&mut raw);
        code(&raw, &set.endorsements, &anchors, now)
    };
    assert_eq!(with(&|r| r[0] = 1), Some(ErrorCode::UnsupportedVersion));
    assert_eq!(with(&|r| r[0] = 6), Some(ErrorCode::UnsupportedVersion));
    assert_eq!(
        with(&|r| r.truncate(1183)),
        Some(ErrorCode::EvidenceMalformed)
    );
    assert_eq!(with(&|r| r.push(0)), Some(ErrorCode::EvidenceMalformed));
    assert_eq!(
        with(&|r| r[0x34] = 2),
        Some(ErrorCode::EvidenceMalformed),
        "SIGNATURE_ALGO 2"
    );
    assert_eq!(
        with(&|r| r[0x48] |= 7 << 2),
        Some(ErrorCode::SignatureInvalid),
        "SIGNING_KEY 7 (unsigned)"
    );
    assert_eq!(
        with(&|r| r[0x48] |= 3 << 2),
        Some(ErrorCode::EvidenceMalformed),
        "SIGNING_KEY 3 (reserved)"
    );
    assert_eq!(
        with(&|r| r[0x48] |= 0b10),
        Some(ErrorCode::SignatureInvalid),
        "MASK_CHIP_KEY"
    );
    assert_eq!(
        with(&|r| r[0x4A0 - 1] = 1),
        Some(ErrorCode::EvidenceMalformed),
        "unsigned reserved tail"
    );
    assert_eq!(
        with(&|r| r[0x2D0] = 1),
        Some(ErrorCode::EvidenceMalformed),
        "signature R padding"
    );
    assert_eq!(
        with(&|r| r[0x1F8] = 1),
        Some(ErrorCode::EvidenceMalformed),
        "v2 reserved mitigation area"
    );
}
