//! Property: for random SNP platforms (product, TCB, measurement, host data, policy) and random report data, the
//! simulator's evidence (VCEK- or VLEK-signed) parses with `locus_hw` into exactly those fields, re-serialises to the same bytes, verifies
//! over the raw signed range with the shipped VCEK, and the VCEK's KDS extensions equal REPORTED_TCB and CHIP_ID.

use der::{Decode, Encode};
use locus_hw::snp::{Product, SignedReport, SigningKey, TcbVersion};
use locus_hw::{Attester, TeeType};
use locus_simulator::amd::pki;
use locus_simulator::profile::{SnpProfile, POLICY_DEBUG};
use locus_simulator::{Profile, SimSnpAttester, TeeProfile, World};
use p384::ecdsa::signature::Verifier;
use proptest::prelude::*;

fn product() -> impl Strategy<Value = Product> {
    prop_oneof![
        Just(Product::Milan),
        Just(Product::Genoa),
        Just(Product::Turin)
    ]
}

fn arr<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    proptest::collection::vec(any::<u8>(), N).prop_map(|v| {
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        a
    })
}

prop_compose! {
    fn snp_platform()(
        product in product(),
        tcb in (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()),
        measurement in arr::<48>(),
        host_data in arr::<32>(),
        debug in any::<bool>(),
        guest_svn in any::<u32>(),
        name_salt in any::<u32>(),
        vlek in any::<bool>(),
    ) -> SnpProfile {
        let mut p = SnpProfile::derived(World::default_seed(), &format!("prop-{name_salt}"), product);
        p.reported_tcb = TcbVersion {
            fmc: product.has_fmc().then_some(tcb.0),
            bootloader: tcb.1,
            tee: tcb.2,
            snp: tcb.3,
            microcode: tcb.4,
        };
        p.measurement = measurement;
        p.host_data = host_data;
        if debug {
            p.policy |= POLICY_DEBUG;
        }
        p.guest_svn = guest_svn;
        if vlek {
            p.vlek_csp_id = Some(format!("csp-{name_salt}"));
        }
        p
    }
}

/// The value of a VCEK extension (the OCTET STRING contents).
fn ext_value(cert: &x509_cert::Certificate, oid: const_oid::ObjectIdentifier) -> Option<&[u8]> {
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

fn spl(cert: &x509_cert::Certificate, oid: const_oid::ObjectIdentifier) -> u8 {
    let v = ext_value(cert, oid).expect("SPL extension present");
    let n = der::asn1::Uint::from_der(v).expect("INTEGER");
    let b = n.as_bytes();
    assert_eq!(b.len(), 1, "SPL fits one byte");
    b[0]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn simulated_snp_evidence_parses_back_to_the_profile(platform in snp_platform(), report_data in arr::<64>()) {
        let world = World::shared();
        let profile = Profile {
            name: "prop".into(),
            site: None,
            description: "property test".into(),
            expected_tcb_status: "UpToDate".into(),
            tee_profile: TeeProfile::Snp(platform.clone()),
        };
        let attester = SimSnpAttester::new(world.clone(), profile).expect("attester");
        let ev = attester.attest(&report_data).expect("attest");
        prop_assert_eq!(ev.tee, TeeType::SevSnp);
        prop_assert_eq!(TeeType::detect(&ev.raw), Some(TeeType::SevSnp));
        prop_assert_eq!(ev.certs.len(), 3);

        let signed = SignedReport::parse(&ev.raw).expect("locus_hw parses the report");
        let r = signed.report();
        let product = platform.product;
        prop_assert_eq!(r.version, platform.report_version);
        prop_assert_eq!(r.guest_svn, platform.guest_svn);
        prop_assert_eq!(r.policy.0, platform.policy);
        prop_assert_eq!(r.policy.debug(), platform.debug());
        prop_assert_eq!(r.vmpl, 0);
        prop_assert_eq!(r.signature_algo, 1);
        let expected_key = if platform.vlek_csp_id.is_some() { SigningKey::Vlek } else { SigningKey::Vcek };
        prop_assert_eq!(r.signing_key(), expected_key);
        prop_assert_eq!(r.report_data, report_data);
        prop_assert_eq!(r.measurement, platform.measurement);
        prop_assert_eq!(r.host_data, platform.host_data);
        prop_assert_eq!(r.chip_id, platform.chip_id);
        prop_assert_eq!(r.family_id, platform.family_id);
        prop_assert_eq!(r.image_id, platform.image_id);
        prop_assert_eq!(r.report_id, platform.report_id);
        prop_assert_eq!(r.product_from_cpuid(), Some(product));
        prop_assert_eq!(r.reported_tcb_version(product), platform.reported_tcb);
        prop_assert_eq!(r.current_tcb_version(product), platform.reported_tcb);
        prop_assert_eq!(r.committed_tcb_version(product), platform.reported_tcb);
        prop_assert_eq!(r.launch_tcb_version(product), platform.reported_tcb);
        prop_assert_eq!(r.launch_mit_vector.is_some(), platform.report_version >= 5);
        prop_assert!(r.reserved_nonzero().is_empty(), "reserved bytes: {:?}", r.reserved_nonzero());
        // Mirror image: the parsed view serialises back to the received bytes.
        prop_assert_eq!(r.to_bytes(), ev.raw.clone());

        // Signature over the raw signed range with the shipped VCEK.
        let vcek = x509_cert::Certificate::from_der(&ev.certs[0]).expect("VCEK DER");
        let point = vcek.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).expect("P-384 key");
        let fixed = signed.signature_p384_fixed().expect("zero padding");
        let sig = p384::ecdsa::Signature::from_slice(&fixed).expect("r||s");
        prop_assert!(key.verify(signed.signed_bytes(), &sig).is_ok());

        // The VCEK's/VLEK's KDS extensions match the report.
        match &platform.vlek_csp_id {
            None => {
                let hwid = ext_value(&vcek, pki::OID_HW_ID).expect("hwID");
                prop_assert_eq!(hwid, platform.hwid());
            }
            Some(csp) => {
                let v = ext_value(&vcek, pki::OID_CSP_ID).expect("cspID");
                prop_assert_eq!(&v[2..], csp.as_bytes());
                prop_assert!(ext_value(&vcek, pki::OID_HW_ID).is_none());
            }
        }
        prop_assert_eq!(spl(&vcek, pki::OID_BL_SPL), platform.reported_tcb.bootloader);
        prop_assert_eq!(spl(&vcek, pki::OID_TEE_SPL), platform.reported_tcb.tee);
        prop_assert_eq!(spl(&vcek, pki::OID_SNP_SPL), platform.reported_tcb.snp);
        prop_assert_eq!(spl(&vcek, pki::OID_UCODE_SPL), platform.reported_tcb.microcode);
        if product.has_fmc() {
            prop_assert_eq!(Some(spl(&vcek, pki::OID_FMC_SPL)), platform.reported_tcb.fmc);
        } else {
            prop_assert!(ext_value(&vcek, pki::OID_FMC_SPL).is_none());
        }
        // ASK and ARK are the world's.
        let issuer = if platform.vlek_csp_id.is_some() {
            world.amd_asvk_der(product).expect("asvk")
        } else {
            world.amd_ask_der(product).expect("ask")
        };
        prop_assert_eq!(&ev.certs[1], &issuer);
        prop_assert_eq!(&ev.certs[2], &world.amd_ark_der(product).expect("ark"));
        prop_assert_eq!(vcek.to_der().expect("re-encode"), ev.certs[0].clone());
    }
}
