//! The simulated AMD PKI has AMD's shapes (names, algorithms, PSS parameters, serials, validity, extensions), is
//! deterministic from the seed, is obviously not AMD's, and the evidence faults do what they say.

#[path = "../../tests/support/vectors.rs"]
mod vectors;

use der::{Decode, Encode};
use locus_hw::snp::cert_table::{self, CertKind};
use locus_hw::snp::{Product, SignedReport};
use locus_simulator::amd::embedded;
use locus_simulator::amd::pki::{self, Hierarchy};
use locus_simulator::profile::{current_tcb, low_tcb};
use locus_simulator::{Fault, World};
use rsa::signature::Verifier;
use x509_cert::crl::CertificateList;
use x509_cert::Certificate;

fn cert(der_bytes: &[u8]) -> Certificate {
    Certificate::from_der(der_bytes).expect("certificate DER")
}

fn cn(name: &x509_cert::name::Name) -> String {
    name.to_string()
}

fn unix(t: &x509_cert::time::Time) -> u64 {
    t.to_unix_duration().as_secs()
}

fn rsa_public(c: &Certificate) -> rsa::RsaPublicKey {
    use rsa::pkcs8::DecodePublicKey;
    let spki = c
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("spki");
    rsa::RsaPublicKey::from_public_key_der(&spki).expect("RSA SPKI")
}

fn pss_verifies(issuer: &Certificate, signed: &[u8], signature: &[u8]) -> bool {
    let key = rsa::pss::VerifyingKey::<sha2::Sha384>::new(rsa_public(issuer));
    match rsa::pss::Signature::try_from(signature) {
        Ok(sig) => key.verify(signed, &sig).is_ok(),
        Err(_) => false,
    }
}

fn vectors_dir() -> Option<std::path::PathBuf> {
    vectors::dir()
}

#[test]
fn ark_and_ask_have_amds_shape_but_the_simulators_organization() {
    let world = World::shared();
    for product in Product::ALL {
        let ark = cert(&world.amd_ark_der(product).expect("ark"));
        let ask = cert(&world.amd_ask_der(product).expect("ask"));
        let kds = product.kds_name();
        let ark_subject = cn(&ark.tbs_certificate.subject);
        assert!(
            ark_subject.contains(&format!("CN=ARK-{kds}")),
            "{ark_subject}"
        );
        assert!(
            ark_subject.contains("O=Locus Simulated AMD"),
            "{ark_subject}"
        );
        assert!(!ark_subject.contains("Advanced Micro Devices"));
        assert_eq!(
            ark.tbs_certificate.issuer, ark.tbs_certificate.subject,
            "ARK is self-issued"
        );
        assert_eq!(ask.tbs_certificate.issuer, ark.tbs_certificate.subject);
        assert!(cn(&ask.tbs_certificate.subject).contains(&format!("CN=SEV-{kds}")));
        for c in [&ark, &ask] {
            assert_eq!(
                c.signature_algorithm.oid.to_string(),
                "1.2.840.113549.1.1.10",
                "RSASSA-PSS"
            );
            assert_eq!(c.tbs_certificate.signature, c.signature_algorithm);
            let spki = &c.tbs_certificate.subject_public_key_info;
            assert_eq!(
                spki.algorithm.oid.to_string(),
                "1.2.840.113549.1.1.1",
                "rsaEncryption SPKI"
            );
            assert_eq!(
                rsa::traits::PublicKeyParts::size(&rsa_public(c)),
                512,
                "RSA-4096"
            );
            assert!(unix(&c.tbs_certificate.validity.not_before) <= 1_767_225_600);
            assert!(unix(&c.tbs_certificate.validity.not_after) >= 2_400_000_000);
        }
        let ark_tbs = ark.tbs_certificate.to_der().expect("tbs");
        assert!(
            pss_verifies(&ark, &ark_tbs, ark.signature.raw_bytes()),
            "ARK self-signature"
        );
        let ask_tbs = ask.tbs_certificate.to_der().expect("tbs");
        assert!(
            pss_verifies(&ark, &ask_tbs, ask.signature.raw_bytes()),
            "ARK signs ASK"
        );
    }
}

#[test]
fn pss_algorithm_identifier_is_byte_identical_to_amds() {
    let Some(dir) = vectors_dir() else { return };
    let pem = std::fs::read(dir.join("snp/milan-v2-virtee/ark.pem")).expect("read vector");
    use der::DecodePem;
    let amd = Certificate::from_pem(&pem).expect("AMD ARK");
    let sim = cert(&World::shared().amd_ark_der(Product::Milan).expect("ark"));
    assert_eq!(
        sim.signature_algorithm.to_der().expect("der"),
        amd.signature_algorithm.to_der().expect("der"),
        "same RSASSA-PSS parameters as AMD"
    );
}

#[test]
fn vcek_has_serial_zero_seven_years_and_kds_extensions() {
    let world = World::shared();
    for name in ["snp-fra-1", "snp-iad-1", "snp-turin"] {
        let profile = world.profile(name).expect("profile");
        let snp = profile.snp().expect("snp");
        let vcek = cert(&world.vcek_der(profile).expect("vcek"));
        let tbs = &vcek.tbs_certificate;
        assert_eq!(
            tbs.serial_number.as_bytes(),
            &[0u8],
            "{name}: serial 0 like AMD"
        );
        assert!(cn(&tbs.subject).contains("CN=SEV-VCEK"));
        assert_eq!(
            tbs.issuer,
            cert(&world.amd_ask_der(snp.product).expect("ask"))
                .tbs_certificate
                .subject
        );
        let years =
            (unix(&tbs.validity.not_after) - unix(&tbs.validity.not_before)) / (365 * 86_400);
        assert_eq!(years, 7, "{name}");
        assert_eq!(
            tbs.subject_public_key_info.algorithm.oid.to_string(),
            "1.2.840.10045.2.1"
        );
        let exts = tbs.extensions.as_ref().expect("extensions");
        let value = |oid| {
            exts.iter()
                .find(|e| e.extn_id == oid)
                .map(|e| e.extn_value.as_bytes().to_vec())
        };
        let product_name = value(pki::OID_PRODUCT_NAME).expect("productName");
        let expected_name = pki::product_name(snp.product);
        assert_eq!(
            &product_name[2..],
            expected_name.as_bytes(),
            "IA5String {expected_name}"
        );
        assert_eq!(product_name[0], 0x16, "IA5String tag");
        assert_eq!(
            value(pki::OID_HW_ID).expect("hwID"),
            snp.hwid(),
            "raw hwID, no wrapper"
        );
        assert_eq!(
            snp.hwid().len(),
            if snp.product == Product::Turin { 8 } else { 64 }
        );
        assert_eq!(
            value(pki::OID_FMC_SPL).is_some(),
            snp.product == Product::Turin
        );
        assert_eq!(
            value(pki::OID_STRUCT_VERSION),
            Some(vec![2, 1, u8::from(snp.product == Product::Turin)])
        );
        let ask = cert(&world.amd_ask_der(snp.product).expect("ask"));
        let vcek_tbs = tbs.to_der().expect("tbs");
        assert!(
            pss_verifies(&ask, &vcek_tbs, vcek.signature.raw_bytes()),
            "ASK signs VCEK"
        );
    }
}

#[test]
fn crl_is_signed_by_the_ark_and_revokes_nothing() {
    let world = World::shared();
    for product in Product::ALL {
        let crl =
            CertificateList::from_der(&world.amd_crl_der(product).expect("crl")).expect("CRL DER");
        let ark = cert(&world.amd_ark_der(product).expect("ark"));
        assert_eq!(crl.tbs_cert_list.issuer, ark.tbs_certificate.subject);
        assert!(crl.tbs_cert_list.revoked_certificates.is_none());
        let next = crl.tbs_cert_list.next_update.expect("nextUpdate");
        assert!(unix(&next) > unix(&crl.tbs_cert_list.this_update));
        let tbs = crl.tbs_cert_list.to_der().expect("tbs");
        assert!(pss_verifies(&ark, &tbs, crl.signature.raw_bytes()));
    }
}

#[test]
fn a_crl_revoking_the_ask_lists_its_serial() {
    let world = World::shared();
    let pki = world
        .amd_pki(Product::Genoa, Hierarchy::Genuine)
        .expect("pki");
    let ask = cert(&pki.ask_der);
    let serial = u64::from_str_radix(
        &hex::encode(ask.tbs_certificate.serial_number.as_bytes()),
        16,
    )
    .expect("serial");
    let crl_der = pki
        .crl_revoking(&[serial], 1_767_225_600, 1_769_904_000)
        .expect("crl");
    let crl = CertificateList::from_der(&crl_der).expect("CRL");
    let revoked = crl.tbs_cert_list.revoked_certificates.expect("entries");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].serial_number, ask.tbs_certificate.serial_number);
}

#[test]
fn the_same_seed_gives_byte_identical_pki_and_evidence() {
    let shared = World::shared();
    let fresh = std::sync::Arc::new(World::new(World::default_seed()));
    for product in Product::ALL {
        assert_eq!(
            shared.amd_ark_der(product).expect("a"),
            fresh.amd_ark_der(product).expect("b")
        );
        assert_eq!(
            shared.amd_crl_der(product).expect("a"),
            fresh.amd_crl_der(product).expect("b")
        );
    }
    let a = shared
        .snp_attester("snp-iad-1")
        .expect("a")
        .report(&[9; 64])
        .expect("a");
    let b = fresh
        .snp_attester("snp-iad-1")
        .expect("b")
        .report(&[9; 64])
        .expect("b");
    assert_eq!(a, b);
    // A different seed gives other platforms (chip ids) without building its RSA keys.
    let other = World::new(World::default_seed() + 1);
    assert_ne!(
        other.profile("snp-fra-1").expect("p").platform_id(),
        shared.profile("snp-fra-1").expect("p").platform_id()
    );
}

#[test]
fn committed_test_key_is_what_the_seed_derives() {
    // One key (of eight) re-derived: proves the committed files are the seed's keys, not arbitrary ones.
    let label = pki::rsa_label(Product::Turin, Hierarchy::Genuine, "ask");
    let derived =
        locus_simulator::keys::rsa_key(embedded::EMBEDDED_SEED, &label, 4096).expect("derive");
    let committed = embedded::rsa_key(embedded::EMBEDDED_SEED, &label).expect("embedded");
    assert_eq!(derived, committed);
}

#[test]
fn evidence_ships_vcek_ask_ark_and_a_cert_table_of_the_same() {
    let world = World::shared();
    let ev = world
        .snp_attester("snp-fra-1")
        .expect("a")
        .report(&[1; 64])
        .expect("r");
    let table = cert_table::parse(&ev.cert_table()).expect("table parses");
    let kinds: Vec<CertKind> = table.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![CertKind::Vcek, CertKind::Ask, CertKind::Ark]);
    assert_eq!(table[0].data, ev.vcek_der);
    assert_eq!(table[1].data, ev.ask_der);
    assert_eq!(table[2].data, ev.ark_der);
    use locus_hw::Attester;
    let evidence = world
        .snp_attester("snp-fra-1")
        .expect("a")
        .attest(&[1; 64])
        .expect("attest");
    assert_eq!(
        evidence.certs,
        vec![ev.vcek_der.clone(), ev.ask_der.clone(), ev.ark_der.clone()]
    );
    assert_eq!(evidence.raw, ev.report);
}

#[test]
fn expired_certificate_fault_issues_a_vcek_valid_only_in_the_past() {
    let world = World::shared();
    let ev = world
        .snp_attester("snp-fra-1")
        .expect("a")
        .with_fault(Fault::ExpiredCertificate)
        .report(&[2; 64])
        .expect("r");
    let vcek = cert(&ev.vcek_der);
    let not_after = unix(&vcek.tbs_certificate.validity.not_after);
    assert!(not_after < 1_700_000_000, "expired long ago: {not_after}");
    // Same key as the current VCEK: only the dates differ, so expiry is the only failing check.
    let current = cert(
        &world
            .vcek_der(world.profile("snp-fra-1").expect("p"))
            .expect("vcek"),
    );
    assert_eq!(
        vcek.tbs_certificate.subject_public_key_info,
        current.tbs_certificate.subject_public_key_info
    );
}

#[test]
fn debug_and_low_tcb_faults_change_the_report_consistently() {
    let world = World::shared();
    let plain = SignedReport::parse(
        &world
            .snp_attester("snp-fra-1")
            .expect("a")
            .report(&[0; 64])
            .expect("r")
            .report,
    )
    .expect("parse");
    assert!(!plain.report().policy.debug());
    assert_eq!(
        plain.report().reported_tcb_version(Product::Milan),
        current_tcb(Product::Milan)
    );

    let debug = world
        .snp_attester("snp-fra-1")
        .expect("a")
        .with_fault(Fault::Debug)
        .report(&[0; 64])
        .expect("r");
    assert!(SignedReport::parse(&debug.report)
        .expect("parse")
        .report()
        .policy
        .debug());

    let low = world
        .snp_attester("snp-fra-1")
        .expect("a")
        .with_fault(Fault::LowTcb)
        .report(&[0; 64])
        .expect("r");
    let parsed = SignedReport::parse(&low.report).expect("parse");
    assert_eq!(
        parsed.report().reported_tcb_version(Product::Milan),
        low_tcb(Product::Milan)
    );
    // The VCEK shipped is the one for the low TCB (so the evidence verifies and only policy refuses it).
    let vcek = cert(&low.vcek_der);
    let exts = vcek.tbs_certificate.extensions.expect("exts");
    let snp_spl = exts
        .iter()
        .find(|e| e.extn_id == pki::OID_SNP_SPL)
        .expect("snpSPL");
    assert_eq!(
        snp_spl.extn_value.as_bytes(),
        &[2, 1, low_tcb(Product::Milan).snp]
    );
}

#[test]
fn builtin_profiles_cover_the_contract_names() {
    let world = World::shared();
    for name in [
        "snp-fra-1",
        "snp-iad-1",
        "snp-unregistered",
        "snp-turin",
        "snp-debug",
        "snp-lowtcb",
        "tdx-fra-1",
        "tdx-iad-1",
        "tdx-unregistered",
    ] {
        assert!(world.profile(name).is_some(), "{name}");
    }
    let fra = world.profile("snp-fra-1").expect("fra");
    assert_eq!(fra.snp().expect("snp").product, Product::Milan);
    assert_eq!(fra.site.as_ref().map(|s| s.country.as_str()), Some("DE"));
    assert_eq!(fra.platform_id(), fra.snp().expect("snp").chip_id.to_vec());
    let iad = world.profile("snp-iad-1").expect("iad");
    assert_eq!(iad.snp().expect("snp").product, Product::Genoa);
    assert_eq!(iad.site.as_ref().map(|s| s.country.as_str()), Some("US"));
    assert!(world.profile("snp-debug").expect("d").debug());
    assert!(!fra.debug());
    assert!(world.profile("snp-unregistered").expect("u").site.is_none());
    assert!(matches!(
        world.snp_attester("tdx-fra-1"),
        Err(locus_simulator::SimError::WrongTee { .. })
    ));
    assert!(matches!(
        world.snp_attester("nope"),
        Err(locus_simulator::SimError::UnknownProfile(_))
    ));
}

#[test]
fn vlek_profile_signs_with_a_csp_vlek_under_the_asvk() {
    let world = World::shared();
    let profile = world.profile("snp-vlek").expect("snp-vlek");
    let ev = world
        .snp_attester("snp-vlek")
        .expect("a")
        .report(&[5; 64])
        .expect("r");
    assert!(ev.vlek);
    let parsed = SignedReport::parse(&ev.report).expect("parse");
    assert_eq!(
        parsed.report().signing_key(),
        locus_hw::snp::SigningKey::Vlek
    );
    let vlek = cert(&ev.vcek_der);
    let asvk = cert(&ev.ask_der);
    assert_eq!(
        ev.ask_der,
        world.amd_asvk_der(Product::Milan).expect("asvk")
    );
    assert!(cn(&asvk.tbs_certificate.subject).contains("CN=SEV-VLEK-Milan"));
    assert!(cn(&vlek.tbs_certificate.subject).contains("CN=SEV-VLEK"));
    assert_eq!(vlek.tbs_certificate.issuer, asvk.tbs_certificate.subject);
    let exts = vlek.tbs_certificate.extensions.as_ref().expect("exts");
    let csp = exts
        .iter()
        .find(|e| e.extn_id == pki::OID_CSP_ID)
        .expect("cspID");
    let csp_id = locus_simulator::profile::SIM_CSP_ID;
    assert_eq!(&csp.extn_value.as_bytes()[2..], csp_id.as_bytes());
    assert!(
        exts.iter().all(|e| e.extn_id != pki::OID_HW_ID),
        "a VLEK has no hwID"
    );
    let tbs = vlek.tbs_certificate.to_der().expect("tbs");
    assert!(
        pss_verifies(&asvk, &tbs, vlek.signature.raw_bytes()),
        "ASVK signs VLEK"
    );
    assert_eq!(
        profile.platform_id(),
        csp_id.as_bytes().to_vec(),
        "platform identity = cspID"
    );
    let table = cert_table::parse(&ev.cert_table()).expect("table");
    let kinds: Vec<CertKind> = table.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![CertKind::Vlek, CertKind::Ask, CertKind::Ark]);
}
