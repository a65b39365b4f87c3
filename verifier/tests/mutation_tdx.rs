//! TDX mutation and chain tests at library level: every single-byte flip in the header, body, quote signature,
//! attestation key, QE report, QE report signature and QE auth data of real quotes is refused, with the collateral and
//! anchors built once; a PCK chain ending at another root is `chain_untrusted`. The flips run with the per-platform
//! memo warm, so flips of REPORTDATA and of the quote signature (the bytes outside the memo key) are judged on the
//! memo's hit path (ring signature check) and every other flip misses and goes through the full path.

use std::collections::BTreeMap;
use std::path::Path;

use locus_verifier::appraisal::{appraise_tdx, TdxCollateral, TrustAnchors};
use locus_verifier::cli::{parse_rfc3339, tdx_collateral_from_dir};
use locus_verifier::ErrorCode;

mod appraise_support;
use appraise_support::vectors_dir;

struct Set {
    quote: Vec<u8>,
    collateral: TdxCollateral,
    now: u64,
}

fn load(root: &Path, name: &str, at: &str) -> Set {
    let dir = root.join("tdx").join(name);
    let quote = std::fs::read(dir.join("quote.bin")).expect("quote");
    let collateral = tdx_collateral_from_dir(&dir.join("collateral"))
        .map_err(|e| e.0)
        .expect("dir")
        .expect("collateral");
    let now = parse_rfc3339(at).map_err(|e| e.0).expect("time");
    Set {
        quote,
        collateral,
        now,
    }
}

fn u16_at(b: &[u8], i: usize) -> usize {
    usize::from(u16::from_le_bytes([b[i], b[i + 1]]))
}

fn u32_at(b: &[u8], i: usize) -> usize {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize
}

/// Offset of the TD report body: 48 (v4) or 54 (v5, after the body descriptor).
fn body_start(q: &[u8]) -> usize {
    if u16_at(q, 0) == 4 {
        48
    } else {
        54
    }
}

/// Offsets in a quote: (signature data start, QE auth data end, PEM chain start, PEM chain end).
fn layout(q: &[u8]) -> (usize, usize, usize, usize) {
    let body_end = if u16_at(q, 0) == 4 {
        48 + 584
    } else {
        48 + 6 + u32_at(q, 50)
    };
    let sig = body_end + 4;
    let qe_cert = sig + 64 + 64; // cert type (6) u16 + size u32
    let qe_report = qe_cert + 6;
    let auth = qe_report + 384 + 64;
    let auth_end = auth + 2 + u16_at(q, auth);
    let pem_start = auth_end + 6;
    (
        sig,
        auth_end,
        pem_start,
        pem_start + u32_at(q, auth_end + 2),
    )
}

fn exhaustive_flips(name: &str, at: &str) {
    let Some(root) = vectors_dir() else { return };
    let set = load(&root, name, at);
    let anchors = TrustAnchors::pinned().expect("anchors");
    let verdict = |raw: &[u8]| {
        appraise_tdx(raw, &set.collateral, &anchors, set.now)
            .err()
            .map(|r| r.code)
    };
    assert_eq!(
        verdict(&set.quote),
        None,
        "{name}: the unmodified quote verifies"
    );
    // The memo is warm for this platform: the same quote again is a hit (counters are per thread).
    let warm = anchors.memo_stats();
    assert_eq!(verdict(&set.quote), None);
    assert_eq!(
        anchors.memo_stats().hits,
        warm.hits + 1,
        "{name}: the second appraisal is a memo hit"
    );
    let (sig_start, auth_end, _, _) = layout(&set.quote);
    let report_data = body_start(&set.quote) + 520;
    let before = anchors.memo_stats();
    let mut codes: BTreeMap<&'static str, usize> = BTreeMap::new();
    // Header and body (incl. the v5 body descriptor), the signature-data length, the quote signature, the
    // attestation key, the QE certification-data header, the QE report, its signature and the QE auth data.
    for i in 0..auth_end {
        let mut raw = set.quote.clone();
        raw[i] ^= 0x01;
        let c = verdict(&raw).unwrap_or_else(|| panic!("{name}: flipping byte {i} was accepted"));
        *codes.entry(c.as_str()).or_default() += 1;
        if (sig_start..sig_start + 64).contains(&i) || (48 + 136..48 + 184).contains(&i) {
            assert_eq!(
                c,
                ErrorCode::SignatureInvalid,
                "{name}: byte {i} (quote signature / MRTD)"
            );
        }
        if (report_data..report_data + 64).contains(&i) {
            assert_eq!(
                c,
                ErrorCode::SignatureInvalid,
                "{name}: byte {i} (REPORTDATA)"
            );
        }
    }
    // Exactly the REPORTDATA and quote-signature flips keep the memo key: 128 hits, all refused above.
    assert_eq!(
        anchors.memo_stats().hits - before.hits,
        128,
        "{name}: REPORTDATA and quote-signature flips are judged on the memo's hit path"
    );
    let allowed = [
        "signature_invalid",
        "evidence_malformed",
        "unsupported_version",
        "tcb_not_supported",
        "chain_untrusted",
        "collateral_missing",
    ];
    for c in codes.keys() {
        assert!(
            allowed.contains(c),
            "{name}: unexpected code {c} ({codes:?})"
        );
    }
    eprintln!("{name}: {auth_end} flips refused: {codes:?}");
}

#[test]
fn every_single_byte_flip_of_the_v4_quote_up_to_the_pck_chain_is_refused() {
    exhaustive_flips("v4-b0c06f-uptodate-dcapqvl", "2025-07-01T00:00:00Z");
}

#[test]
fn every_single_byte_flip_of_the_v5_quote_up_to_the_pck_chain_is_refused() {
    exhaustive_flips("v5-90c06f-uptodate-gotdx", "2026-03-01T00:00:00Z");
}

/// Replace the last certificate of the quote's PEM chain with `root_pem`, fixing every length field.
pub fn with_chain_root(quote: &[u8], root_pem: &str) -> Vec<u8> {
    let (sig_start, auth_end, pem_start, pem_end) = layout(quote);
    let pem = std::str::from_utf8(&quote[pem_start..pem_end]).expect("PEM chain");
    let last = pem
        .rfind("-----BEGIN CERTIFICATE-----")
        .expect("a certificate");
    let mut new_pem = pem[..last].to_string();
    new_pem.push_str(root_pem);
    let mut out = quote[..auth_end + 2].to_vec(); // through the inner certification data type (5)
    out.extend_from_slice(&(new_pem.len() as u32).to_le_bytes());
    out.extend_from_slice(new_pem.as_bytes());
    let qe_cert_size = out.len() - (sig_start + 128 + 6);
    out[sig_start + 130..sig_start + 134].copy_from_slice(&(qe_cert_size as u32).to_le_bytes());
    let sig_len = out.len() - sig_start;
    out[sig_start - 4..sig_start].copy_from_slice(&(sig_len as u32).to_le_bytes());
    out
}

#[test]
fn a_pck_chain_to_another_root_is_chain_untrusted() {
    let Some(root) = vectors_dir() else { return };
    let set = load(&root, "v4-b0c06f-uptodate-dcapqvl", "2025-07-01T00:00:00Z");
    let anchors = TrustAnchors::pinned().expect("anchors");
    // Rebuilding with the genuine root keeps the quote valid, so the rewrite itself is sound.
    let intel_root = std::fs::read_to_string(
        root.join("tdx/v4-b0c06f-uptodate-dcapqvl/collateral/intel_sgx_root_ca.pem"),
    )
    .expect("root pem");
    let same = with_chain_root(&set.quote, &intel_root);
    appraise_tdx(&same, &set.collateral, &anchors, set.now).expect("same root still verifies");
    // Another self-signed root (AMD's ARK-Milan stands in for any foreign CA).
    let foreign = String::from_utf8(sev::certs::snp::builtin::milan::ARK.to_vec()).expect("pem");
    let other = with_chain_root(&set.quote, &foreign);
    let r = appraise_tdx(&other, &set.collateral, &anchors, set.now).expect_err("refused");
    assert_eq!(r.code, ErrorCode::ChainUntrusted, "{r}");
}

#[test]
fn collateral_of_another_platform_or_missing_items_is_refused() {
    let Some(root) = vectors_dir() else { return };
    let anchors = TrustAnchors::pinned().expect("anchors");
    let b0 = load(&root, "v4-b0c06f-uptodate-dcapqvl", "2025-07-01T00:00:00Z");
    let other = load(
        &root,
        "v4-00806f05-outofdate-zkdcap",
        "2025-01-21T13:44:20Z",
    );
    // The b0c06f quote with the 00806f05 collateral, at a time inside that collateral's window.
    let r = appraise_tdx(&b0.quote, &other.collateral, &anchors, other.now).expect_err("refused");
    assert!(
        matches!(
            r.code,
            ErrorCode::CollateralMissing
                | ErrorCode::CollateralExpired
                | ErrorCode::CertificateExpired
        ),
        "{r}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let r = tdx_collateral_from_dir(dir.path())
        .map_err(|e| e.0)
        .expect("dir")
        .expect_err("missing files");
    assert_eq!(r.code, ErrorCode::CollateralMissing);
}

#[test]
fn a_tampered_tcb_info_signature_is_signature_invalid() {
    let Some(root) = vectors_dir() else { return };
    let anchors = TrustAnchors::pinned().expect("anchors");
    let set = load(&root, "v4-b0c06f-uptodate-dcapqvl", "2025-07-01T00:00:00Z");
    let mut c = set.collateral.as_dcap_qvl().clone();
    c.tcb_info_signature[5] ^= 0x01;
    let tampered = TdxCollateral::from_dcap_qvl(c);
    let r = appraise_tdx(&set.quote, &tampered, &anchors, set.now).expect_err("refused");
    assert_eq!(r.code, ErrorCode::SignatureInvalid, "{r}");
    let mut c = set.collateral.as_dcap_qvl().clone();
    c.tcb_info = c.tcb_info.replacen("UpToDate", "OutOfDate", 1);
    let r = appraise_tdx(
        &set.quote,
        &TdxCollateral::from_dcap_qvl(c),
        &anchors,
        set.now,
    )
    .expect_err("refused");
    assert_eq!(r.code, ErrorCode::SignatureInvalid, "{r}");
}

#[test]
fn trailing_zero_padding_is_tolerated_and_trailing_garbage_after_a_valid_quote_is_evidence_malformed(
) {
    let Some(root) = vectors_dir() else { return };
    let anchors = TrustAnchors::pinned().expect("anchors");
    let set = load(&root, "v4-b0c06f-uptodate-dcapqvl", "2025-07-01T00:00:00Z");
    let mut padded = set.quote.clone();
    padded.extend_from_slice(&[0u8; 100]);
    appraise_tdx(&padded, &set.collateral, &anchors, set.now).expect("zero padding is fine");
    let last = padded.len() - 1;
    padded[last] = 0x42;
    let r = appraise_tdx(&padded, &set.collateral, &anchors, set.now).expect_err("refused");
    assert_eq!(r.code, ErrorCode::EvidenceMalformed, "{r}");
    let truncated = &set.quote[..1000];
    let r = appraise_tdx(truncated, &set.collateral, &anchors, set.now).expect_err("refused");
    assert_eq!(r.code, ErrorCode::EvidenceMalformed, "{r}");
}
