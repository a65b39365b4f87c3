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
use support::{measure, row, vector_sets, Stats};

/// One verification input: public key (SEC1 uncompressed), message, fixed r‖s signature.
struct Input {
    key: Vec<u8>,
    msg: Vec<u8>,
    sig: Vec<u8>,
}

fn snp_input() -> (String, Input) {
    if let Some(root) = vectors_dir() {
        if let Some((name, dir, _)) = vector_sets(&root, "snp").into_iter().next() {
            let report = std::fs::read(dir.join("report.bin")).expect("report.bin");
            let e = locus_verifier::cli::snp_endorsements_from_dir(&dir, &report)
                .map_err(|e| e.0)
                .expect("endorsements");
            let signed = locus_hw::snp::SignedReport::parse(&report).expect("report");
            let cert = locus_verifier::appraisal::x509::ParsedCert::parse(
                e.vek_der.as_deref().expect("VEK"),
                "VCEK",
            )
            .expect("VEK");
            return (
                name,
                Input {
                    key: cert.p384_public_key().expect("P-384 key").to_vec(),
                    msg: signed.signed_bytes().to_vec(),
                    sig: signed.signature_p384_fixed().expect("sig").to_vec(),
                },
            );
        }
    }
    let world = World::shared();
    let ev = world
        .snp_attester("snp-fra-1")
        .expect("profile")
        .report(&[7; 64])
        .expect("report");
    let signed = locus_hw::snp::SignedReport::parse(&ev.report).expect("report");
    let cert =
        locus_verifier::appraisal::x509::ParsedCert::parse(&ev.vcek_der, "VCEK").expect("VCEK");
    (
        "sim/snp-fra-1".into(),
        Input {
            key: cert.p384_public_key().expect("P-384 key").to_vec(),
            msg: signed.signed_bytes().to_vec(),
            sig: signed.signature_p384_fixed().expect("sig").to_vec(),
        },
    )
}

fn tdx_input() -> (String, Input) {
    let pki = Arc::new(IntelPki::new(0x10c5));
    let quote = pki
        .attester_by_name("tdx-fra-1")
        .expect("profile")
        .quote(&[7; 64]);
    let q = locus_hw::tdx::SignedQuote::parse_ignoring_trailing_bytes(&quote).expect("quote");
    let mut key = vec![0x04];
    key.extend_from_slice(&q.quote().attestation_key);
    (
        "sim/tdx-fra-1".into(),
        Input {
            key,
            msg: q.signed_bytes().to_vec(),
            sig: q.quote().signature.to_vec(),
        },
    )
}

fn ring_verify(alg: &'static ring::signature::EcdsaVerificationAlgorithm, i: &Input) -> bool {
    ring::signature::UnparsedPublicKey::new(alg, &i.key)
        .verify(&i.msg, &i.sig)
        .is_ok()
}

fn aws_verify(alg: &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm, i: &Input) -> bool {
    aws_lc_rs::signature::UnparsedPublicKey::new(alg, &i.key)
        .verify(&i.msg, &i.sig)
        .is_ok()
}

fn rustcrypto_p384(i: &Input) -> bool {
    let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(&i.key) else {
        return false;
    };
    let Ok(sig) = p384::ecdsa::Signature::from_slice(&i.sig) else {
        return false;
    };
    key.verify(&i.msg, &sig).is_ok()
}

fn rustcrypto_p256(i: &Input) -> bool {
    let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&i.key) else {
        return false;
    };
    let Ok(sig) = p256::ecdsa::Signature::from_slice(&i.sig) else {
        return false;
    };
    key.verify(&i.msg, &sig).is_ok()
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

    let (name, snp) = snp_input();
    compare(
        &format!("P-384 verify ({name})"),
        timed_verify("ring P-384", || {
            ring_verify(&ring::signature::ECDSA_P384_SHA384_FIXED, &snp)
        }),
        timed_verify("aws-lc-rs P-384", || {
            aws_verify(&aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED, &snp)
        }),
        timed_verify("RustCrypto P-384", || rustcrypto_p384(&snp)),
    );

    let (name, tdx) = tdx_input();
    compare(
        &format!("P-256 verify ({name})"),
        timed_verify("ring P-256", || {
            ring_verify(&ring::signature::ECDSA_P256_SHA256_FIXED, &tdx)
        }),
        timed_verify("aws-lc-rs P-256", || {
            aws_verify(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED, &tdx)
        }),
        timed_verify("RustCrypto P-256", || rustcrypto_p256(&tdx)),
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
