//! Property: any TDX profile values → simulated quote → `locus_hw::tdx::Quote::parse` gives the same fields back,
//! the signed range verifies with the attestation key, re-encoding is byte-identical, and the PCK in the quote
//! carries the profile's SGX extension values (read back by dcap-qvl's parser).

use std::sync::{Arc, OnceLock};

use locus_hw::tdx::{Quote, SignedQuote, INTEL_QE_VENDOR_ID};
use locus_simulator::intel::{IntelPki, PckVariant, TdxProfile};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use proptest::prelude::*;

fn pki() -> &'static Arc<IntelPki> {
    static PKI: OnceLock<Arc<IntelPki>> = OnceLock::new();
    PKI.get_or_init(|| Arc::new(IntelPki::new(99)))
}

fn array<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    proptest::collection::vec(any::<u8>(), N).prop_map(|bytes| {
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        out
    })
}

prop_compose! {
    fn measurements()(
        mr_seam in array::<48>(),
        mr_signer_seam in array::<48>(),
        mr_td in array::<48>(),
        mr_config_id in array::<48>(),
        mr_owner in array::<48>(),
        mr_owner_config in array::<48>(),
        rtmr0 in array::<48>(),
        rtmr1 in array::<48>(),
        rtmr2 in array::<48>(),
        rtmr3 in array::<48>(),
        mr_service_td in array::<48>(),
    ) -> ([[u8; 48]; 7], [[u8; 48]; 4]) {
        ([mr_seam, mr_signer_seam, mr_td, mr_config_id, mr_owner, mr_owner_config, mr_service_td],
         [rtmr0, rtmr1, rtmr2, rtmr3])
    }
}

prop_compose! {
    fn profile()(
        name in "[a-z]{3,10}",
        v5 in any::<bool>(),
        ppid in array::<16>(),
        fmspc in array::<6>(),
        cpu_svn in array::<16>(),
        // PCESVN above 0x7FFF needs a 3-byte DER INTEGER, which dcap-qvl's PCK parser (1 or 2 bytes) cannot
        // read; real PCESVNs are small.
        pce_svn in 0u16..0x8000,
        qe_svn in any::<u16>(),
        tee_tcb_svn in array::<16>(),
        tee_tcb_svn2 in array::<16>(),
        attributes in (array::<8>(), array::<8>(), array::<8>()),
        (mrs, rtmr) in measurements(),
    ) -> TdxProfile {
        let mut profile = TdxProfile::up_to_date(1, &format!("prop-{name}"));
        profile.quote_version = if v5 { 5 } else { 4 };
        profile.ppid = ppid;
        profile.fmspc = fmspc;
        profile.cpu_svn = cpu_svn;
        profile.pce_svn = pce_svn;
        profile.qe_svn = qe_svn;
        profile.tee_tcb_svn = tee_tcb_svn;
        profile.tee_tcb_svn2 = tee_tcb_svn2;
        (profile.seam_attributes, profile.td_attributes, profile.xfam) = attributes;
        [profile.mr_seam, profile.mr_signer_seam, profile.mr_td, profile.mr_config_id, profile.mr_owner,
         profile.mr_owner_config, profile.mr_service_td] = mrs;
        profile.rtmr = rtmr;
        profile
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn simulated_quote_parses_back_to_the_profile(profile in profile(), report_data in array::<64>()) {
        let attester = pki().attester(&profile);
        let raw = attester.quote(&report_data);
        let quote = Quote::parse(&raw).map_err(|e| TestCaseError::fail(format!("{} ({e})", e.code())))?;

        prop_assert_eq!(quote.header.version, profile.quote_version);
        prop_assert_eq!(quote.header.att_key_type, 2);
        prop_assert_eq!(quote.header.tee_type, 0x81);
        prop_assert_eq!(quote.header.qe_svn, profile.qe_svn);
        prop_assert_eq!(quote.header.pce_svn, profile.pce_svn);
        prop_assert_eq!(quote.header.qe_vendor_id, INTEL_QE_VENDOR_ID);
        prop_assert_eq!(quote.body_type, if profile.quote_version == 5 { 3 } else { 2 });

        let body = &quote.body;
        prop_assert_eq!(body.tee_tcb_svn, profile.tee_tcb_svn);
        prop_assert_eq!(body.mr_seam, profile.mr_seam);
        prop_assert_eq!(body.mr_signer_seam, profile.mr_signer_seam);
        prop_assert_eq!(body.seam_attributes, profile.seam_attributes);
        prop_assert_eq!(body.td_attributes, profile.td_attributes);
        prop_assert_eq!(body.xfam, profile.xfam);
        prop_assert_eq!(body.mr_td, profile.mr_td);
        prop_assert_eq!(body.mr_config_id, profile.mr_config_id);
        prop_assert_eq!(body.mr_owner, profile.mr_owner);
        prop_assert_eq!(body.mr_owner_config, profile.mr_owner_config);
        prop_assert_eq!(body.rtmr, profile.rtmr);
        prop_assert_eq!(body.report_data, report_data);
        prop_assert_eq!(body.debug(), profile.debug());
        if profile.quote_version == 5 {
            prop_assert_eq!(body.tee_tcb_svn2, Some(profile.tee_tcb_svn2));
            prop_assert_eq!(body.mr_service_td, Some(profile.mr_service_td));
        } else {
            prop_assert_eq!(body.tee_tcb_svn2, None);
            prop_assert_eq!(body.mr_service_td, None);
        }
        prop_assert_eq!(quote.qe_report.isv_svn, profile.qe_svn);
        prop_assert_eq!(quote.qe_report.cpu_svn, profile.cpu_svn);

        // Mirror image: re-encoding the parsed quote gives the same bytes.
        prop_assert_eq!(quote.to_bytes(), raw.clone());

        // The signed range the parser reports is what the attestation key signed.
        let signed = SignedQuote::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut sec1 = vec![0x04];
        sec1.extend_from_slice(&quote.attestation_key);
        let key = VerifyingKey::from_sec1_bytes(&sec1).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let signature = Signature::from_slice(&quote.signature).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(key.verify(signed.signed_bytes(), &signature).is_ok());

        // The chain is leaf, Platform CA, root; the leaf carries the profile's SGX extension.
        let chain = quote.pck_chain_der().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(chain.len(), 3);
        prop_assert_eq!(&chain[0], &pki().pck_der(&profile, PckVariant::Genuine));
        prop_assert_eq!(&chain[2][..], pki().root_der());
        let extension = dcap_qvl::intel::parse_pck_extension(&chain[0])
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        prop_assert_eq!(extension.ppid, profile.ppid.to_vec());
        prop_assert_eq!(extension.cpu_svn, profile.cpu_svn);
        prop_assert_eq!(extension.pce_svn, profile.pce_svn);
        prop_assert_eq!(extension.fmspc, profile.fmspc);
        prop_assert_eq!(extension.pce_id, profile.pce_id.to_vec());
        prop_assert_eq!(extension.dynamic_platform, Some(false));
        prop_assert_eq!(extension.cached_keys, Some(false));
        prop_assert_eq!(extension.smt_enabled, Some(false));
    }
}
