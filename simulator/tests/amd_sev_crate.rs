//! The `sev` crate (virtee, an independent implementation) verifies the simulator's SEV-SNP evidence with the
//! simulator's chain, and rejects it after any single-byte change in the signed range.

use sev::certs::snp::{ca, Certificate, Chain, Verifiable};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;

use locus_hw::snp::Product;
use locus_simulator::amd::SnpEvidence;
use locus_simulator::{Fault, World};

fn chain(ev: &SnpEvidence) -> Chain {
    Chain {
        ca: ca::Chain {
            ark: Certificate::from_der(&ev.ark_der).expect("ARK parses"),
            ask: Certificate::from_der(&ev.ask_der).expect("ASK parses"),
        },
        vek: Certificate::from_der(&ev.vcek_der).expect("VCEK parses"),
    }
}

/// Whether `sev` accepts `report` under `chain` (parse failure counts as rejection).
fn sev_accepts(chain: &Chain, report: &[u8]) -> bool {
    match AttestationReport::from_bytes(report) {
        Ok(parsed) => (chain, &parsed).verify().is_ok(),
        Err(_) => false,
    }
}

/// Whether `sev` accepts `report` as signed by the (already chain-verified) VEK.
fn sev_accepts_vek(vek: &Certificate, report: &[u8]) -> bool {
    match AttestationReport::from_bytes(report) {
        Ok(parsed) => (vek, &parsed).verify().is_ok(),
        Err(_) => false,
    }
}

fn evidence(profile: &str, report_data: [u8; 64]) -> SnpEvidence {
    let world = World::shared();
    world
        .snp_attester(profile)
        .expect("attester")
        .report(&report_data)
        .expect("report")
}

#[test]
fn sev_crate_verifies_simulated_reports_for_milan_genoa_and_turin() {
    for (profile, product, version) in [
        ("snp-fra-1", Product::Milan, 3u32),
        ("snp-iad-1", Product::Genoa, 3),
        ("snp-turin", Product::Turin, 5),
    ] {
        let ev = evidence(profile, [0x5A; 64]);
        assert_eq!(ev.report.len(), 1184);
        let c = chain(&ev);
        (&c).verify()
            .unwrap_or_else(|e| panic!("{profile}: chain rejected: {e}"));
        let parsed = AttestationReport::from_bytes(&ev.report).expect("sev parses the report");
        assert_eq!(parsed.version, version, "{profile}");
        assert_eq!(parsed.report_data, [0x5A; 64]);
        (&c, &parsed)
            .verify()
            .unwrap_or_else(|e| panic!("{profile} ({product:?}): report rejected: {e}"));
        // The VCEK alone verifies it too.
        (&c.vek, &parsed)
            .verify()
            .unwrap_or_else(|e| panic!("{profile}: VCEK check: {e}"));
    }
}

/// Verifies with `sev`'s certificate and signature types but over the received bytes (what Locus does).
fn raw_signature_verifies(vek: &Certificate, report: &[u8]) -> bool {
    use p384::ecdsa::signature::Verifier;
    let Ok(parsed) = AttestationReport::from_bytes(report) else {
        return false;
    };
    let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(vek.public_key_sec1()) else {
        return false;
    };
    let Ok(sig) = p384::ecdsa::Signature::try_from(&parsed.signature) else {
        return false;
    };
    key.verify(&report[..0x2A0], &sig).is_ok()
}

/// The reserved bytes of the four Milan TCB_VERSION fields (bytes 2..=5 of CURRENT, REPORTED, COMMITTED, LAUNCH).
fn milan_reserved_tcb_bytes() -> Vec<usize> {
    [0x038usize, 0x180, 0x1E0, 0x1F0]
        .iter()
        .flat_map(|base| (base + 2)..=(base + 5))
        .collect()
}

#[test]
fn every_single_byte_flip_in_the_signed_range_is_rejected() {
    let ev = evidence("snp-fra-1", [0x11; 64]);
    let c = chain(&ev);
    assert!(sev_accepts(&c, &ev.report), "baseline must verify");
    let vek = (&c).verify().expect("chain verifies");
    assert!(
        raw_signature_verifies(vek, &ev.report),
        "baseline must verify over the raw bytes"
    );
    let mut sev_blind_spots = Vec::new();
    for pos in 0..0x2A0 {
        let mut tampered = ev.report.clone();
        tampered[pos] ^= 0x01;
        // Over the received bytes, every flip is caught.
        assert!(
            !raw_signature_verifies(vek, &tampered),
            "flip at {pos:#x} verifies over the raw bytes"
        );
        if sev_accepts_vek(vek, &tampered) {
            sev_blind_spots.push(pos);
        }
    }
    // `sev` itself verifies a re-encoding of its parsed report, which drops the reserved
    // TCB bytes; those flips — and only those — get past `sev`'s own `verify`. Everything else it rejects.
    assert_eq!(sev_blind_spots, milan_reserved_tcb_bytes());
}

#[test]
fn sev_crate_rejects_the_bad_signature_fault() {
    let world = World::shared();
    let ev = world
        .snp_attester("snp-iad-1")
        .expect("a")
        .with_fault(Fault::BadSignature)
        .report(&[3; 64])
        .expect("r");
    let c = chain(&ev);
    (&c).verify().expect("chain is intact");
    assert!(!sev_accepts(&c, &ev.report));
}

#[test]
fn foreign_chain_verifies_in_itself_but_not_under_the_genuine_ark() {
    let world = World::shared();
    let ev = world
        .snp_attester("snp-fra-1")
        .expect("a")
        .with_fault(Fault::ForeignChain)
        .report(&[4; 64])
        .expect("r");
    let foreign = chain(&ev);
    (&foreign)
        .verify()
        .expect("the foreign chain is internally consistent");
    assert!(sev_accepts(&foreign, &ev.report));
    assert_ne!(ev.ark_der, world.amd_ark_der(Product::Milan).expect("ark"));
    // Under the genuine simulated ARK/ASK the foreign VCEK does not chain.
    let genuine = Chain {
        ca: ca::Chain {
            ark: Certificate::from_der(&world.amd_ark_der(Product::Milan).expect("ark"))
                .expect("ark"),
            ask: Certificate::from_der(&world.amd_ask_der(Product::Milan).expect("ask"))
                .expect("ask"),
        },
        vek: Certificate::from_der(&ev.vcek_der).expect("vcek"),
    };
    assert!((&genuine).verify().is_err());
}

#[test]
fn sev_crate_verifies_a_vlek_signed_report_through_the_asvk() {
    let ev = evidence("snp-vlek", [0x77; 64]);
    assert!(ev.vlek);
    let c = chain(&ev);
    (&c).verify().expect("ARK -> ASVK -> VLEK");
    let parsed = AttestationReport::from_bytes(&ev.report).expect("parses");
    (&c, &parsed).verify().expect("VLEK signs the report");
    // The VLEK does not chain to the ASK.
    let world = World::shared();
    let wrong = Chain {
        ca: ca::Chain {
            ark: Certificate::from_der(&ev.ark_der).expect("ark"),
            ask: Certificate::from_der(&world.amd_ask_der(Product::Milan).expect("ask"))
                .expect("ask"),
        },
        vek: Certificate::from_der(&ev.vcek_der).expect("vlek"),
    };
    assert!((&wrong).verify().is_err());
}

#[test]
fn debug_low_tcb_and_expired_evidence_still_carries_valid_signatures() {
    // These faults target policy (debug, TCB minimum) and date checks, which `sev` does not make: the signatures
    // and chain must stay valid so that exactly the intended check refuses them.
    let world = World::shared();
    for fault in [Fault::Debug, Fault::LowTcb, Fault::ExpiredCertificate] {
        let ev = world
            .snp_attester("snp-turin")
            .expect("a")
            .with_fault(fault)
            .report(&[8; 64])
            .expect("r");
        let c = chain(&ev);
        assert!(
            sev_accepts(&c, &ev.report),
            "{fault}: signature and chain valid"
        );
    }
}

#[test]
#[ignore = "generates three RSA-4096 keys from a non-default seed (tens of seconds); run with --ignored"]
fn a_non_default_seed_generates_its_own_keys_and_verifies() {
    let world = std::sync::Arc::new(World::new(World::default_seed() + 7));
    let ev = world
        .snp_attester("snp-fra-1")
        .expect("a")
        .report(&[6; 64])
        .expect("r");
    assert_ne!(
        ev.ark_der,
        World::shared().amd_ark_der(Product::Milan).expect("ark")
    );
    assert!(sev_accepts(&chain(&ev), &ev.report));
}
