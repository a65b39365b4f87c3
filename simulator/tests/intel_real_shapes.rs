//! The simulated Intel PKI and collateral copy the *shapes* of Intel's: same certificate extensions in the same
//! order and criticality, the same SGX extension skeleton (tags and OIDs), the same name attribute types, and JSON
//! collateral whose fields are all fields Intel's has. Compared against the real PCK chain of the vector
//! `tdx/v4-b0c06f-uptodate-dcapqvl` and the collateral of every TDX vector (`LOCUS_VECTORS`, default: see
//! `tests/support/vectors.rs`); values differ by design.

#[path = "../../tests/support/vectors.rs"]
mod vectors;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use der::{Decode as _, Tagged as _};
use locus_hw::tdx::Quote;
use locus_simulator::intel::profile::TDX_FRA_1;
use locus_simulator::intel::{CollateralWindow, IntelPki, PckVariant, OID_SGX_EXTENSION};
use x509_cert::Certificate;

const VECTOR: &str = "tdx/v4-b0c06f-uptodate-dcapqvl";

fn vector_dir() -> Option<PathBuf> {
    vectors::set(VECTOR)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Real chain: leaf, PCK Platform CA, root. Simulated chain: the same three.
fn chains(set: &Path) -> (Vec<Certificate>, Vec<Certificate>) {
    let real = Quote::parse(&read(&set.join("quote.bin")))
        .and_then(|quote| quote.pck_chain_der())
        .unwrap_or_else(|e| panic!("real quote: {e}"));
    let pki = Arc::new(IntelPki::new(2026));
    let profile = pki
        .profile(TDX_FRA_1)
        .unwrap_or_else(|| panic!("built-in"))
        .clone();
    let simulated = [
        pki.pck_der(&profile, PckVariant::Genuine),
        pki.platform_ca_der().to_vec(),
        pki.root_der().to_vec(),
    ];
    let parse =
        |der: &[u8]| Certificate::from_der(der).unwrap_or_else(|e| panic!("certificate: {e}"));
    (
        real.iter().map(|d| parse(d)).collect(),
        simulated.iter().map(|d| parse(d)).collect(),
    )
}

fn extension_skeleton(cert: &Certificate) -> Vec<(String, bool)> {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .map(|ext| (ext.extn_id.to_string(), ext.critical))
        .collect()
}

fn name_skeleton(cert: &Certificate) -> Vec<(String, der::Tag)> {
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .map(|atv| (atv.oid.to_string(), atv.value.tag()))
        .collect()
}

/// Tags and OIDs of every TLV, depth-first; primitive values other than OIDs are left out.
fn der_skeleton(mut bytes: &[u8], out: &mut Vec<String>) {
    while !bytes.is_empty() {
        let tag = bytes[0];
        let (len, header) = match bytes[1] {
            n if n < 0x80 => (usize::from(n), 2),
            0x81 => (usize::from(bytes[2]), 3),
            0x82 => (usize::from(bytes[2]) << 8 | usize::from(bytes[3]), 4),
            other => panic!("unexpected DER length byte {other:#x}"),
        };
        let content = &bytes[header..header + len];
        if tag == 0x06 {
            out.push(format!("OID {}", hex::encode(content)));
        } else {
            out.push(format!("tag {tag:#04x}"));
        }
        if tag & 0x20 != 0 {
            der_skeleton(content, out);
        }
        bytes = &bytes[header + len..];
    }
}

fn sgx_extension_skeleton(cert: &Certificate) -> Vec<String> {
    let ext = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|ext| ext.extn_id == OID_SGX_EXTENSION)
        .unwrap_or_else(|| panic!("no SGX extension"));
    let mut out = Vec::new();
    der_skeleton(ext.extn_value.as_bytes(), &mut out);
    out
}

#[test]
fn certificates_have_intels_extensions_names_and_algorithms() {
    let Some(set) = vector_dir() else { return };
    let (real, simulated) = chains(&set);
    assert_eq!(real.len(), 3);
    for (role, (real, simulated)) in ["PCK leaf", "PCK Platform CA", "root"]
        .iter()
        .zip(real.iter().zip(&simulated))
    {
        assert_eq!(
            extension_skeleton(simulated),
            extension_skeleton(real),
            "{role}: extensions"
        );
        assert_eq!(
            name_skeleton(simulated),
            name_skeleton(real),
            "{role}: subject attributes"
        );
        assert_eq!(
            simulated.signature_algorithm, real.signature_algorithm,
            "{role}: signature algorithm"
        );
        assert_eq!(
            simulated.tbs_certificate.subject_public_key_info.algorithm,
            real.tbs_certificate.subject_public_key_info.algorithm,
            "{role}: key algorithm"
        );
        assert_eq!(
            simulated.tbs_certificate.version, real.tbs_certificate.version,
            "{role}: version"
        );
        assert_eq!(
            simulated.tbs_certificate.serial_number.as_bytes().len(),
            real.tbs_certificate.serial_number.as_bytes().len().min(20),
            "{role}: serial size"
        );
    }
}

#[test]
fn pck_sgx_extension_has_intels_skeleton() {
    let Some(set) = vector_dir() else { return };
    let (real, simulated) = chains(&set);
    assert_eq!(
        sgx_extension_skeleton(&simulated[0]),
        sgx_extension_skeleton(&real[0])
    );
}

/// Every object key path in a JSON document (array elements share their array's path).
fn key_paths(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                let path = format!("{prefix}/{key}");
                out.insert(path.clone());
                key_paths(child, &path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn paths_of(json: &str) -> BTreeSet<String> {
    let value: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("JSON: {e}"));
    let mut out = BTreeSet::new();
    key_paths(&value, "", &mut out);
    out
}

#[test]
fn collateral_json_uses_only_intels_fields() {
    let Some(set) = vector_dir() else { return };
    let pki = IntelPki::new(2026);
    let files = pki.collateral(CollateralWindow::Current);
    let text = |path: PathBuf| String::from_utf8(read(&path)).unwrap_or_default();
    // Intel's fields: the union over every TDX vector's TCB info (optional fields appear in some only).
    let tdx_dir = set
        .parent()
        .unwrap_or_else(|| panic!("vector set has a parent"));
    let mut real_tcb = BTreeSet::new();
    let entries =
        std::fs::read_dir(tdx_dir).unwrap_or_else(|e| panic!("{}: {e}", tdx_dir.display()));
    for entry in entries.flatten() {
        let path = entry.path().join("collateral/tcb_info.json");
        if path.is_file() {
            real_tcb.extend(paths_of(&text(path)));
        }
    }
    let simulated_tcb = paths_of(&files.tcb_info_json);
    let extra: Vec<_> = simulated_tcb.difference(&real_tcb).collect();
    assert!(
        extra.is_empty(),
        "TCB info fields Intel does not have: {extra:?}"
    );
    // The fields verifiers need are all there (Intel's optional `category`/`type` labels are left out).
    let missing: Vec<_> = real_tcb
        .difference(&simulated_tcb)
        .filter(|path| !path.ends_with("/category") && !path.ends_with("/type"))
        .collect();
    assert!(missing.is_empty(), "TCB info fields missing: {missing:?}");
    let real_qe = paths_of(&text(set.join("collateral/qe_identity.json")));
    assert_eq!(paths_of(&files.qe_identity_json), real_qe);
}
