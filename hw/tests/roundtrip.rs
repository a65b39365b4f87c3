//! Property tests: serializers are the mirror image of the parsers for arbitrary field values.

use locus_hw::snp::{self, cert_table, AttestationReport, SignedReport, SUPPORTED_VERSIONS};
use locus_hw::tdx::{EnclaveReport, Quote, QuoteHeader, TdReport, BODY_TYPE_TD10, BODY_TYPE_TD15};
use proptest::prelude::*;

fn bytes<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    prop::collection::vec(any::<u8>(), N).prop_map(|v| {
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        a
    })
}

/// Arbitrary report bytes with a supported version: every field, reserved ones included, random.
fn report_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(SUPPORTED_VERSIONS.to_vec()),
        prop::collection::vec(any::<u8>(), snp::REPORT_SIZE),
    )
        .prop_map(|(version, mut raw)| {
            raw[..4].copy_from_slice(&version.to_le_bytes());
            raw
        })
}

fn enclave_report() -> impl Strategy<Value = EnclaveReport> {
    (
        (
            bytes::<16>(),
            any::<u32>(),
            bytes::<28>(),
            bytes::<16>(),
            bytes::<32>(),
            bytes::<32>(),
        ),
        (
            bytes::<32>(),
            bytes::<96>(),
            any::<u16>(),
            any::<u16>(),
            bytes::<60>(),
            bytes::<64>(),
        ),
    )
        .prop_map(
            |((cpu_svn, misc_select, reserved1, attributes, mr_enclave, reserved2), rest)| {
                let (mr_signer, reserved3, isv_prod_id, isv_svn, reserved4, report_data) = rest;
                EnclaveReport {
                    cpu_svn,
                    misc_select,
                    reserved1,
                    attributes,
                    mr_enclave,
                    reserved2,
                    mr_signer,
                    reserved3,
                    isv_prod_id,
                    isv_svn,
                    reserved4,
                    report_data,
                }
            },
        )
}

fn td_report(td15: bool) -> impl Strategy<Value = TdReport> {
    (
        (
            bytes::<16>(),
            bytes::<48>(),
            bytes::<48>(),
            bytes::<8>(),
            bytes::<8>(),
            bytes::<8>(),
        ),
        (bytes::<48>(), bytes::<48>(), bytes::<48>(), bytes::<48>()),
        (
            [bytes::<48>(), bytes::<48>(), bytes::<48>(), bytes::<48>()],
            bytes::<64>(),
        ),
        (bytes::<16>(), bytes::<48>()),
    )
        .prop_map(move |(a, b, c, d)| {
            let (tee_tcb_svn, mr_seam, mr_signer_seam, seam_attributes, td_attributes, xfam) = a;
            let (mr_td, mr_config_id, mr_owner, mr_owner_config) = b;
            let (rtmr, report_data) = c;
            TdReport {
                tee_tcb_svn,
                mr_seam,
                mr_signer_seam,
                seam_attributes,
                td_attributes,
                xfam,
                mr_td,
                mr_config_id,
                mr_owner,
                mr_owner_config,
                rtmr,
                report_data,
                tee_tcb_svn2: td15.then_some(d.0),
                mr_service_td: td15.then_some(d.1),
            }
        })
}

fn quote() -> impl Strategy<Value = Quote> {
    // (version, td15): v4 carries TD 1.0 only; v5 either.
    prop::sample::select(vec![(4u16, false), (5, false), (5, true)]).prop_flat_map(
        |(version, td15)| {
            (
                (any::<u16>(), any::<u16>(), bytes::<16>(), bytes::<20>()),
                td_report(td15),
                (
                    bytes::<64>(),
                    bytes::<64>(),
                    enclave_report(),
                    bytes::<64>(),
                ),
                prop::collection::vec(any::<u8>(), 0..64),
                prop::collection::vec(any::<u8>(), 0..512),
            )
                .prop_map(move |(h, body, sigs, qe_auth_data, pck_cert_chain_pem)| {
                    Quote {
                        header: QuoteHeader {
                            version,
                            att_key_type: 2,
                            tee_type: 0x81,
                            qe_svn: h.0,
                            pce_svn: h.1,
                            qe_vendor_id: h.2,
                            user_data: h.3,
                        },
                        body_type: if td15 { BODY_TYPE_TD15 } else { BODY_TYPE_TD10 },
                        body,
                        signature: sigs.0,
                        attestation_key: sigs.1,
                        qe_report: sigs.2,
                        qe_report_signature: sigs.3,
                        qe_auth_data,
                        pck_cert_chain_pem,
                    }
                })
        },
    )
}

fn cert_entries() -> impl Strategy<Value = Vec<cert_table::CertTableEntry>> {
    prop::collection::btree_map(
        bytes::<16>(),
        prop::collection::vec(any::<u8>(), 1..200),
        0..8,
    )
    .prop_map(|m| {
        m.into_iter()
            .filter(|(g, _)| *g != [0; 16])
            .map(|(g, data)| cert_table::CertTableEntry {
                kind: cert_table::CertKind::from_guid(g),
                data,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn snp_report_bytes_parse_and_serialize_back_identically(raw in report_bytes()) {
        let report = AttestationReport::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(report.to_bytes(), raw.clone());
        let signed = SignedReport::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(signed.report(), &report);
    }

    #[test]
    fn snp_report_values_serialize_and_parse_back_equal(raw in report_bytes(), svn in any::<u32>(), tcb in any::<u64>()) {
        // A random value, then edited through the public fields, must survive to_bytes → parse.
        let mut report = AttestationReport::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        report.guest_svn = svn;
        report.reported_tcb = tcb;
        report.measurement[0] ^= 0xFF;
        let again = AttestationReport::parse(&report.to_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, report);
    }

    #[test]
    fn tdx_quote_values_serialize_and_parse_back_equal(q in quote(), padding in 0usize..64) {
        let mut raw = q.to_bytes();
        let end = raw.len();
        raw.resize(end + padding, 0);
        let parsed = Quote::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&parsed, &q);
        prop_assert_eq!(Quote::structure_len(&raw).ok(), Some(end));
        prop_assert_eq!(parsed.to_bytes(), raw[..end].to_vec());
    }

    #[test]
    fn enclave_report_values_round_trip(r in enclave_report()) {
        let parsed = EnclaveReport::parse(&r.to_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed, r);
    }

    #[test]
    fn cert_tables_round_trip(entries in cert_entries()) {
        let parsed = cert_table::parse(&cert_table::encode(&entries)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed, entries);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = AttestationReport::parse(&raw);
        let _ = Quote::parse(&raw);
        let _ = cert_table::parse(&raw);
        let _ = locus_hw::TeeType::detect(&raw);
    }

    #[test]
    fn parsers_never_panic_on_mutated_valid_input(
        q in quote(),
        entries in cert_entries(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        for mut raw in [q.to_bytes(), cert_table::encode(&entries)] {
            for (at, value) in &edits {
                let i = at.index(raw.len());
                raw[i] = *value;
            }
            let len = cut.index(raw.len() + 1);
            let _ = Quote::parse(&raw[..len]);
            let _ = Quote::parse(&raw);
            let _ = cert_table::parse(&raw[..len]);
            let _ = cert_table::parse(&raw);
        }
    }
}
