//! The simulated Intel collateral as files: the vectors' layout, its dcap-qvl JSON form, determinism, and the PKI's
//! shapes (names that cannot pass for Intel's, the revoked serials in the PCK CRL, validity windows).

use std::sync::{Arc, OnceLock};

use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;
use der::{Decode as _, Encode as _};
use locus_simulator::intel::profile::{TDX_FRA_1, TDX_IAD_1};
use locus_simulator::intel::{
    CollateralWindow, IntelPki, PckVariant, SIM_ORGANIZATION, SIM_ROOT_CA_CN,
    SIM_VERIFICATION_TIME_UNIX,
};
use sha2::Digest as _;
use x509_cert::crl::CertificateList;
use x509_cert::Certificate;

/// SHA-256 of Intel's real SGX root CA (pinned in `verifier/src/appraisal/roots.rs`): the simulator's root must never be it.
const INTEL_ROOT_SHA256: &str = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

const FILES: [&str; 10] = [
    "tcb_info.json",
    "tcb_info_issuer_chain.pem",
    "qe_identity.json",
    "qe_identity_issuer_chain.pem",
    "pck_crl.der",
    "pck_crl_issuer_chain.pem",
    "root_ca_crl.der",
    "intel_sgx_root_ca.der",
    "intel_sgx_root_ca.pem",
    "collateral_dcap_qvl.json",
];

fn pki() -> &'static Arc<IntelPki> {
    static PKI: OnceLock<Arc<IntelPki>> = OnceLock::new();
    PKI.get_or_init(|| Arc::new(IntelPki::new(2026)))
}

#[test]
fn write_dir_writes_the_vectors_layout() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let files = pki().collateral(CollateralWindow::Current);
    files
        .write_dir(dir.path())
        .unwrap_or_else(|e| panic!("write_dir: {e}"));
    for name in FILES {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }
    let read =
        |name: &str| std::fs::read(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(read("tcb_info.json"), files.tcb_info_json.as_bytes());
    assert_eq!(read("pck_crl.der"), files.pck_crl_der);
    assert_eq!(read("intel_sgx_root_ca.der"), pki().root_der());
    assert_eq!(read("intel_sgx_root_ca.pem"), pki().root_pem().as_bytes());
}

#[test]
fn dcap_qvl_json_file_deserializes_and_verifies_a_quote() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    pki()
        .collateral(CollateralWindow::Current)
        .write_dir(dir.path())
        .unwrap_or_else(|e| panic!("write_dir: {e}"));
    let json = std::fs::read_to_string(dir.path().join("collateral_dcap_qvl.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let collateral: QuoteCollateralV3 =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("QuoteCollateralV3: {e}"));
    let root =
        std::fs::read(dir.path().join("intel_sgx_root_ca.der")).unwrap_or_else(|e| panic!("{e}"));
    for name in [TDX_FRA_1, TDX_IAD_1] {
        let quote = pki()
            .attester_by_name(name)
            .map(|a| a.quote(&[1; 64]))
            .unwrap_or_else(|| panic!("{name}"));
        let report = QuoteVerifier::new(root.clone())
            .verify(&quote, &collateral, SIM_VERIFICATION_TIME_UNIX)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(report.status, "UpToDate", "{name}");
    }
}

#[test]
fn signed_json_envelopes_wrap_the_signed_bodies() {
    let files = pki().collateral(CollateralWindow::Current);
    let tcb: serde_json::Value =
        serde_json::from_str(&files.tcb_info_json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tcb["signature"], hex::encode(files.tcb_info.signature));
    assert_eq!(tcb["tcbInfo"]["id"], "TDX");
    assert_eq!(tcb["tcbInfo"]["version"], 3);
    assert!(files.tcb_info_json.contains(&files.tcb_info.body));
    let qe: serde_json::Value =
        serde_json::from_str(&files.qe_identity_json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(qe["enclaveIdentity"]["id"], "TD_QE");
    assert_eq!(qe["enclaveIdentity"]["version"], 2);
    assert!(files.qe_identity_json.contains(&files.qe_identity.body));
}

#[test]
fn the_same_seed_gives_byte_identical_collateral_and_quotes() {
    let again = Arc::new(IntelPki::new(2026));
    assert_eq!(again.root_der(), pki().root_der());
    assert_eq!(
        again.collateral(CollateralWindow::Current),
        pki().collateral(CollateralWindow::Current)
    );
    let quote = |p: &Arc<IntelPki>| p.attester_by_name(TDX_FRA_1).map(|a| a.quote(&[2; 64]));
    assert_eq!(quote(&again), quote(pki()));
}

#[test]
fn root_cannot_pass_for_intels() {
    let fingerprint = hex::encode(sha2::Sha256::digest(pki().root_der()));
    assert_ne!(fingerprint, INTEL_ROOT_SHA256);
    let root = Certificate::from_der(pki().root_der()).unwrap_or_else(|e| panic!("root: {e}"));
    let subject = root.tbs_certificate.subject.to_string();
    assert!(
        subject.contains(&format!("CN={SIM_ROOT_CA_CN}")),
        "{subject}"
    );
    assert!(subject.contains(SIM_ORGANIZATION), "{subject}");
    assert!(!subject.contains("O=Intel Corporation"), "{subject}");
    assert_eq!(root.tbs_certificate.issuer, root.tbs_certificate.subject);
}

#[test]
fn pck_crl_lists_exactly_the_revoked_variants() {
    let crl =
        CertificateList::from_der(pki().pck_crl_der()).unwrap_or_else(|e| panic!("PCK CRL: {e}"));
    let listed: Vec<Vec<u8>> = crl
        .tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .map(|entry| entry.serial_number.as_bytes().to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = pki()
        .revoked_pck_serials()
        .iter()
        .map(|s| s.to_vec())
        .collect();
    assert_eq!(listed, expected);
    let profile = pki()
        .profile(TDX_FRA_1)
        .unwrap_or_else(|| panic!("built-in"))
        .clone();
    let serial = |variant| {
        let der = pki().pck_der(&profile, variant);
        let cert = Certificate::from_der(&der).unwrap_or_else(|e| panic!("PCK: {e}"));
        cert.tbs_certificate.serial_number.as_bytes().to_vec()
    };
    assert!(listed.contains(&serial(PckVariant::Revoked)));
    assert!(!listed.contains(&serial(PckVariant::Genuine)));
    let root_crl = CertificateList::from_der(pki().root_ca_crl_der())
        .unwrap_or_else(|e| panic!("root CRL: {e}"));
    assert!(root_crl.tbs_cert_list.revoked_certificates.is_none());
}

#[test]
fn certificates_re_encode_identically() {
    let profile = pki()
        .profile(TDX_FRA_1)
        .unwrap_or_else(|| panic!("built-in"))
        .clone();
    for der in [
        pki().root_der().to_vec(),
        pki().platform_ca_der().to_vec(),
        pki().tcb_signing_der().to_vec(),
        pki().pck_der(&profile, PckVariant::Genuine),
    ] {
        let cert = Certificate::from_der(&der).unwrap_or_else(|e| panic!("cert: {e}"));
        assert_eq!(cert.to_der().ok(), Some(der));
    }
}

#[test]
fn expired_pck_validity_ends_before_the_pki_starts() {
    let profile = pki()
        .profile(TDX_FRA_1)
        .unwrap_or_else(|| panic!("built-in"))
        .clone();
    let cert = Certificate::from_der(&pki().pck_der(&profile, PckVariant::Expired))
        .unwrap_or_else(|e| panic!("{e}"));
    let not_after = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    assert!(not_after < SIM_VERIFICATION_TIME_UNIX);
    let genuine = Certificate::from_der(&pki().pck_der(&profile, PckVariant::Genuine))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        genuine
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs()
            > SIM_VERIFICATION_TIME_UNIX
    );
}
