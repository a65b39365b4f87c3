//! Every real-hardware report and quote in the vectors directory (`LOCUS_VECTORS`, default: see `tests/support/vectors.rs`)
//! parses to exactly the facts in its `expected.json`, and re-serializes to the bytes it came from.
//! Missing vectors: a loud `SKIP:` line, or a panic when `LOCUS_REQUIRE_VECTORS=1`.

#[path = "../../tests/support/vectors.rs"]
mod vectors;

use locus_hw::snp::{AttestationReport, Product, SignedReport, SigningKey, TcbVersion};
use locus_hw::tdx::{Quote, SignedQuote};
use locus_hw::TeeType;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn vectors_dir() -> Option<PathBuf> {
    vectors::dir()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The set directories of one TEE, from `index.json`.
fn sets(dir: &Path, tee: &str) -> Vec<PathBuf> {
    let index = read_json(&dir.join("index.json"));
    let list = index[tee]
        .as_array()
        .unwrap_or_else(|| panic!("index.json has no {tee} list"));
    assert!(!list.is_empty(), "index.json lists no {tee} sets");
    list.iter()
        .map(|e| dir.join(e["dir"].as_str().expect("index entry has a dir")))
        .collect()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("expected.json: {key} is not a string"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("expected.json: {key} is not an integer"))
}

fn hex_u64(v: &Value, key: &str) -> u64 {
    let text = s(v, key);
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap_or_else(|e| panic!("{key}: {e}"))
}

fn tcb(v: &Value) -> TcbVersion {
    let c = |k: &str| u8::try_from(u(v, k)).expect("TCB component fits a byte");
    TcbVersion {
        fmc: v.get("fmc").map(|_| c("fmc")),
        bootloader: c("bootloader"),
        tee: c("tee"),
        snp: c("snp"),
        microcode: c("microcode"),
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[test]
fn snp_vectors_parse_to_their_expected_facts_and_mirror_bytes() {
    let Some(dir) = vectors_dir() else { return };
    for set in sets(&dir, "snp") {
        let name = set.display().to_string();
        let exp = read_json(&set.join("expected.json"));
        let raw = std::fs::read(set.join("report.bin")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(raw.len() as u64, u(&exp, "report_size"), "{name}");
        assert_eq!(
            sha256_hex(&raw),
            s(&exp, "report_sha256"),
            "{name}: not the vector's file"
        );
        assert_eq!(TeeType::detect(&raw), Some(TeeType::SevSnp), "{name}");

        let signed = SignedReport::parse(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = signed.report();
        assert_eq!(r.to_bytes(), raw, "{name}: to_bytes must mirror the input");
        assert_eq!(signed.signed_bytes(), &raw[..0x2A0], "{name}");

        assert_eq!(u64::from(r.version), u(&exp, "version"), "{name}: version");
        assert_eq!(
            u64::from(r.guest_svn),
            u(&exp, "guest_svn"),
            "{name}: guest_svn"
        );
        assert_eq!(r.policy.0, hex_u64(&exp, "policy"), "{name}: policy");
        assert_eq!(
            Some(r.policy.debug()),
            exp["policy_debug"].as_bool(),
            "{name}"
        );
        assert_eq!(Some(r.policy.smt()), exp["policy_smt"].as_bool(), "{name}");
        assert_eq!(
            Some(r.policy.migrate_ma()),
            exp["policy_migrate_ma"].as_bool(),
            "{name}"
        );
        assert_eq!(
            format!("{}.{}", r.policy.abi_major(), r.policy.abi_minor()),
            s(&exp, "policy_abi_major_minor"),
            "{name}"
        );
        assert_eq!(u64::from(r.vmpl), u(&exp, "vmpl"), "{name}: vmpl");
        assert_eq!(
            u64::from(r.signature_algo),
            u(&exp, "signature_algo"),
            "{name}"
        );
        assert_eq!(
            r.platform_info.0,
            hex_u64(&exp, "platform_info"),
            "{name}: platform_info"
        );
        assert_eq!(
            u64::from(r.key_info),
            hex_u64(&exp, "author_key_en_flags"),
            "{name}: key_info"
        );
        let key = match s(&exp, "signing_key") {
            "VCEK" => SigningKey::Vcek,
            "VLEK" => SigningKey::Vlek,
            other => panic!("{name}: unknown signing key {other}"),
        };
        assert_eq!(r.signing_key(), key, "{name}");
        assert!(!r.mask_chip_key(), "{name}");

        for (field, bytes) in [
            ("measurement", &r.measurement[..]),
            ("report_data", &r.report_data[..]),
            ("host_data", &r.host_data[..]),
            ("family_id", &r.family_id[..]),
            ("image_id", &r.image_id[..]),
            ("id_key_digest", &r.id_key_digest[..]),
            ("author_key_digest", &r.author_key_digest[..]),
            ("report_id", &r.report_id[..]),
            ("report_id_ma", &r.report_id_ma[..]),
            ("chip_id", &r.chip_id[..]),
        ] {
            assert_eq!(hex::encode(bytes), s(&exp, field), "{name}: {field}");
        }

        let product = Product::from_cert_name(s(&exp, "product")).expect("known product");
        match exp["cpuid_fam_mod_step"].as_array() {
            Some(fms) => {
                let cpuid = r.cpuid.unwrap_or_else(|| panic!("{name}: v3+ has CPUID"));
                let got = [cpuid.family, cpuid.model, cpuid.stepping].map(u64::from);
                let want: Vec<u64> = fms.iter().filter_map(Value::as_u64).collect();
                assert_eq!(&got[..], &want[..], "{name}: cpuid");
                assert_eq!(
                    r.product_from_cpuid(),
                    Some(product),
                    "{name}: product from CPUID"
                );
            }
            None => {
                assert!(r.cpuid.is_none(), "{name}: v2 has no CPUID");
                assert_eq!(r.product_from_cpuid(), None, "{name}");
            }
        }

        assert_eq!(r.reported_tcb, hex_u64(&exp, "reported_tcb_raw"), "{name}");
        for (field, raw_tcb) in [
            ("reported_tcb", r.reported_tcb),
            ("current_tcb", r.current_tcb),
            ("committed_tcb", r.committed_tcb),
            ("launch_tcb", r.launch_tcb),
        ] {
            let want = tcb(&exp[field]);
            assert_eq!(
                TcbVersion::from_raw(raw_tcb, product),
                want,
                "{name}: {field}"
            );
            assert_eq!(want.to_raw(product), raw_tcb, "{name}: {field} re-encodes");
            assert_eq!(
                TcbVersion::reserved_bits(raw_tcb, product),
                0,
                "{name}: {field}"
            );
        }
        assert_eq!(
            r.current_version.to_string(),
            s(&exp, "current_version"),
            "{name}"
        );
        assert_eq!(
            r.committed_version.to_string(),
            s(&exp, "committed_version"),
            "{name}"
        );
        assert_eq!(r.launch_mit_vector.is_some(), r.version >= 5, "{name}");

        assert_eq!(
            r.reserved_nonzero(),
            Vec::<&str>::new(),
            "{name}: reserved bytes"
        );
        let fixed = signed
            .signature_p384_fixed()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            fixed.iter().any(|&b| b != 0),
            "{name}: a signed report has a signature"
        );

        // The tampered copy parses too and differs exactly in MEASUREMENT[0].
        let tampered = std::fs::read(set.join("report_tampered_measurement.bin"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let t = AttestationReport::parse(&tampered).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut expected = r.clone();
        expected.measurement[0] ^= 1;
        assert_eq!(t, expected, "{name}: tampered copy");
    }
}

fn opt_hex(v: &Value, key: &str) -> Option<String> {
    match &v[key] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("expected.json: {key} is {other}"),
    }
}

#[test]
fn tdx_vectors_parse_to_their_expected_facts_and_mirror_structure_bytes() {
    let Some(dir) = vectors_dir() else { return };
    for set in sets(&dir, "tdx") {
        let name = set.display().to_string();
        let exp = read_json(&set.join("expected.json"));
        let raw = std::fs::read(set.join("quote.bin")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(raw.len() as u64, u(&exp, "quote_size"), "{name}");
        assert_eq!(
            sha256_hex(&raw),
            s(&exp, "quote_sha256"),
            "{name}: not the vector's file"
        );
        assert_eq!(TeeType::detect(&raw), Some(TeeType::Tdx), "{name}");

        let end = u(&exp, "quote_structure_end") as usize;
        let signed = if raw[end..].iter().all(|&b| b == 0) {
            SignedQuote::parse(&raw).unwrap_or_else(|e| panic!("{name}: {e}"))
        } else {
            // go-tdx-guest appended unsigned text after the structure: the strict parser names the first such byte,
            // the explicit lenient one yields the facts.
            let err = SignedQuote::parse(&raw).err();
            let want = locus_hw::FormatError::TrailingBytes {
                what: "TDX quote",
                offset: end + raw[end..].iter().position(|&b| b != 0).unwrap_or(0),
            };
            assert_eq!(
                err,
                Some(want),
                "{name}: strict parse refuses non-zero trailing bytes"
            );
            SignedQuote::parse_ignoring_trailing_bytes(&raw)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        assert_eq!(signed.trailing_bytes(), &raw[end..], "{name}");
        assert_eq!(signed.structure_len(), end, "{name}: quote_structure_end");
        assert_eq!(Quote::structure_len(&raw).ok(), Some(end), "{name}");
        assert_eq!(signed.structure_bytes(), &raw[..end], "{name}");
        let q = signed.quote();
        assert_eq!(
            q.to_bytes(),
            &raw[..end],
            "{name}: to_bytes must mirror the quote structure"
        );
        assert_eq!(
            Quote::parse(&raw[..end]).as_ref().ok(),
            Some(q),
            "{name}: unpadded parses the same"
        );

        let h = &q.header;
        assert_eq!(u64::from(h.version), u(&exp, "version"), "{name}");
        assert_eq!(u64::from(h.att_key_type), u(&exp, "att_key_type"), "{name}");
        assert_eq!(format!("{:#x}", h.tee_type), s(&exp, "tee_type"), "{name}");
        assert_eq!(
            hex::encode(h.qe_vendor_id),
            s(&exp, "qe_vendor_id"),
            "{name}"
        );
        assert_eq!(
            hex::encode(h.user_data),
            s(&exp, "header_user_data"),
            "{name}"
        );
        assert_eq!(u64::from(q.body_type), u(&exp, "body_type"), "{name}");
        assert_eq!(q.body.size() as u64, u(&exp, "body_size"), "{name}");
        let signed_len = if h.version == 4 {
            632
        } else {
            48 + 6 + q.body.size()
        };
        assert_eq!(q.signed_len(), signed_len, "{name}");
        assert_eq!(signed.signed_bytes(), &raw[..signed_len], "{name}");

        let b = &q.body;
        for (field, bytes) in [
            ("tee_tcb_svn", &b.tee_tcb_svn[..]),
            ("mrseam", &b.mr_seam[..]),
            ("mrsignerseam", &b.mr_signer_seam[..]),
            ("seam_attributes", &b.seam_attributes[..]),
            ("td_attributes", &b.td_attributes[..]),
            ("xfam", &b.xfam[..]),
            ("mrtd", &b.mr_td[..]),
            ("mrconfigid", &b.mr_config_id[..]),
            ("mrowner", &b.mr_owner[..]),
            ("mrownerconfig", &b.mr_owner_config[..]),
            ("rtmr0", &b.rtmr[0][..]),
            ("rtmr1", &b.rtmr[1][..]),
            ("rtmr2", &b.rtmr[2][..]),
            ("rtmr3", &b.rtmr[3][..]),
            ("report_data", &b.report_data[..]),
            ("attestation_key", &q.attestation_key[..]),
            ("qe_auth_data", &q.qe_auth_data[..]),
        ] {
            assert_eq!(hex::encode(bytes), s(&exp, field), "{name}: {field}");
        }
        assert_eq!(
            Some(b.debug()),
            exp["td_attributes_debug"].as_bool(),
            "{name}"
        );
        assert_eq!(b.attributes().debug(), b.debug(), "{name}");
        assert_eq!(
            b.attributes().reserved_bits(),
            0,
            "{name}: reserved TD attributes"
        );
        assert_eq!(
            b.tee_tcb_svn2.map(hex::encode),
            opt_hex(&exp, "tee_tcb_svn2"),
            "{name}"
        );
        assert_eq!(
            b.mr_service_td.map(hex::encode),
            opt_hex(&exp, "mrservicetd"),
            "{name}"
        );

        let qe = &q.qe_report;
        let eq = &exp["qe_report"];
        assert_eq!(hex::encode(qe.cpu_svn), s(eq, "cpusvn"), "{name}");
        assert_eq!(u64::from(qe.misc_select), u(eq, "miscselect"), "{name}");
        assert_eq!(hex::encode(qe.attributes), s(eq, "attributes"), "{name}");
        assert_eq!(hex::encode(qe.mr_enclave), s(eq, "mrenclave"), "{name}");
        assert_eq!(hex::encode(qe.mr_signer), s(eq, "mrsigner"), "{name}");
        assert_eq!(u64::from(qe.isv_prod_id), u(eq, "isvprodid"), "{name}");
        assert_eq!(u64::from(qe.isv_svn), u(eq, "isvsvn"), "{name}");
        assert_eq!(hex::encode(qe.report_data), s(eq, "report_data"), "{name}");
        assert_eq!(
            signed.qe_report_bytes(),
            &qe.to_bytes()[..],
            "{name}: raw QE report"
        );
        // The binding dcap-qvl checks: REPORTDATA = SHA-256(attestation key ‖ auth data) ‖ zeros.
        let mut h = Sha256::new();
        h.update(q.attestation_key);
        h.update(&q.qe_auth_data);
        assert_eq!(
            &qe.report_data[..32],
            &h.finalize()[..],
            "{name}: QE report binding"
        );

        assert_eq!(u(&exp, "certification_data_type"), 5, "{name}");
        let chain = q.pck_chain_der().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(chain.len(), 3, "{name}: PCK, PCK CA, root");
        let serial = s(&exp["pck"], "serial")
            .trim_start_matches("0x")
            .to_string();
        assert!(
            hex::encode(&chain[0]).contains(&serial),
            "{name}: first certificate is the PCK leaf (serial {serial})"
        );
        for der in &chain {
            assert_eq!(der.first(), Some(&0x30), "{name}: DER SEQUENCE");
        }

        // The tampered copy parses too and differs exactly in MRTD[0].
        let tampered = std::fs::read(set.join("quote_tampered_mrtd.bin"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let t = Quote::parse_ignoring_trailing_bytes(&tampered)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut expected = q.clone();
        expected.body.mr_td[0] ^= 1;
        assert_eq!(t, expected, "{name}: tampered copy");
    }
}
