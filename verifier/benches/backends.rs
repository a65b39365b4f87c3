//! The crypto backends side by side, on one thread, in one run: ECDSA P-384 / SHA-384 verification (the SEV-SNP report
//! signature), ECDSA P-256 / SHA-256 verification (the TDX quote signature) and ES256 signing (the WIT), each with
//! `ring`, `aws-lc-rs` and the RustCrypto crates (`p384`, `p256`). The inputs are real: a report of the vectors with
//! its VCEK (else a simulated one), a simulated TDX quote, a WIT-sized message. Every verification is checked to
//! succeed before it is timed, so a backend cannot win by refusing.
//! Run: `cargo bench -p locus-verifier --bench backends`.

mod support;

use std::sync::Arc;

use locus_simulator::intel::IntelPki;
use locus_simulator::World;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use support::shared::vectors_dir;
use support::{measure, row, vector_sets, SnpFloor, Stats, TdxFloor};

/// The SEV-SNP floor's input: the first real set's report and VCEK, else a simulated report.
fn snp_input() -> (String, SnpFloor) {
    if let Some((name, dir, _)) =
        vectors_dir().and_then(|root| vector_sets(&root, "snp").into_iter().next())
    {
        let report = std::fs::read(dir.join("report.bin")).expect("report.bin");
        let e = locus_verifier::cli::snp_endorsements_from_dir(&dir, &report)
            .map_err(|e| e.0)
            .expect("endorsements");
        return (
            name,
            SnpFloor::new(&report, e.vek_der.as_deref().expect("VEK")),
        );
    }
    let ev = World::shared()
        .snp_attester("snp-fra-1")
        .expect("profile")
        .report(&[7; 64])
        .expect("report");
    (
        "sim/snp-fra-1".into(),
        SnpFloor::new(&ev.report, &ev.vcek_der),
    )
}

fn tdx_input() -> (String, TdxFloor) {
    let pki = Arc::new(IntelPki::new(0x10c5));
    let quote = pki
        .attester_by_name("tdx-fra-1")
        .expect("profile")
        .quote(&[7; 64]);
    ("sim/tdx-fra-1".into(), TdxFloor::new(&quote))
}

fn rustcrypto_p384(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(key) else {
        return false;
    };
    let Ok(sig) = p384::ecdsa::Signature::from_slice(sig) else {
        return false;
    };
    key.verify(msg, &sig).is_ok()
}

fn rustcrypto_p256(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(key) else {
        return false;
    };
    let Ok(sig) = p256::ecdsa::Signature::from_slice(sig) else {
        return false;
    };
    key.verify(msg, &sig).is_ok()
}

/// Three rows and the ratio of each to ring's.
fn compare(what: &str, ring: Stats, aws: Stats, rc: Stats) {
    row(&format!("{what}: ring"), ring, None);
    row(&format!("{what}: aws-lc-rs"), aws, Some(ring));
    row(&format!("{what}: RustCrypto"), rc, Some(ring));
}

fn timed_verify(what: &str, check: impl Fn() -> bool) -> Stats {
    assert!(check(), "{what} must verify before it is timed");
    measure(check)
}

fn main() {
    println!("# crypto backends, one thread; R = median / median(ring)");

    // aws-lc-rs through the verifier's own functions (`verify_p384_fixed`, `verify_p256_fixed`): the production path.
    let (name, snp) = snp_input();
    compare(
        &format!("P-384 verify ({name})"),
        timed_verify("ring P-384", || snp.verify_ring()),
        timed_verify("aws-lc-rs P-384", || snp.verify()),
        timed_verify("RustCrypto P-384", || {
            rustcrypto_p384(&snp.key, &snp.signed, &snp.sig)
        }),
    );

    let (name, tdx) = tdx_input();
    compare(
        &format!("P-256 verify ({name})"),
        timed_verify("ring P-256", || tdx.verify_ring()),
        timed_verify("aws-lc-rs P-256", || tdx.verify()),
        timed_verify("RustCrypto P-256", || {
            rustcrypto_p256(&tdx.key, &tdx.signed, &tdx.sig)
        }),
    );

    // ES256 signing of a WIT-sized signing input, each backend with its own key.
    let msg = vec![0x61u8; 900];
    let ring_rng = ring::rand::SystemRandom::new();
    let ring_doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring_rng,
    )
    .expect("ring key");
    let ring_key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        ring_doc.as_ref(),
        &ring_rng,
    )
    .expect("ring key");
    let aws_rng = aws_lc_rs::rand::SystemRandom::new();
    let aws_key = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        ring_doc.as_ref(),
    )
    .expect("aws-lc-rs key");
    let rc_key = p256::ecdsa::SigningKey::from_slice(&[0x3c; 32]).expect("RustCrypto key");
    compare(
        "ES256 sign (900-byte signing input)",
        measure(|| ring_key.sign(&ring_rng, &msg).map(|s| s.as_ref().len())),
        measure(|| aws_key.sign(&aws_rng, &msg).map(|s| s.as_ref().len())),
        measure(|| {
            let s: p256::ecdsa::Signature = rc_key.sign(&msg);
            s.to_bytes().len()
        }),
    );
}
