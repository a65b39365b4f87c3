//! What the verifier reads from clients, from Intel PCS / AMD KDS and from its operator (`locus-verifier`).

use std::path::Path;

use dcap_qvl::{QeIdentity, TcbInfo};
use locus_verifier::appraisal::x509::{self, ParsedCert, ParsedCrl};
use locus_verifier::appraisal::INTEL_SGX_ROOT_CA_PEM;
use locus_verifier::appraisal::{intel_sgx_root_ca_der, TdxCollateral, TdxCollateralParts};
use locus_verifier::collateral::{cache, evidence};
use locus_verifier::config;
use locus_verifier::endorsement::{self, Endorsement, Endorser, PlatformRef};

use crate::wimse::{cose_sign1_over, signer, NOW};

/// A PCS document with an empty body, standing in for the item not under test.
const EMPTY_TCB_INFO: &str = r#"{"tcbInfo":{},"signature":"00"}"#;
const EMPTY_QE_IDENTITY: &str = r#"{"enclaveIdentity":{},"signature":"00"}"#;

/// Intel PCS TCB info and QE identity documents as the verifier reads them: the validity window for the cache, the
/// split into exact body text and signature (`TdxCollateral::from_parts`), then dcap-qvl's typed decoding of the body
/// (its first step in appraisal, before the signature check).
pub fn pcs_collateral(data: &[u8]) {
    let _ = cache::json_window(data, "tcbInfo");
    let _ = cache::json_window(data, "enclaveIdentity");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parts = |tcb_info_json, qe_identity_json| TdxCollateralParts {
        tcb_info_json,
        tcb_info_issuer_chain_pem: INTEL_SGX_ROOT_CA_PEM,
        qe_identity_json,
        qe_identity_issuer_chain_pem: INTEL_SGX_ROOT_CA_PEM,
        pck_crl_der: &[],
        pck_crl_issuer_chain_pem: INTEL_SGX_ROOT_CA_PEM,
        root_ca_crl_der: &[],
    };
    if let Ok(c) = TdxCollateral::from_parts(parts(text, EMPTY_QE_IDENTITY)) {
        let body = &c.as_dcap_qvl().tcb_info;
        assert!(
            text.contains(body.as_str()),
            "TCB info body is not the received text"
        );
        if let Ok(info) = serde_json::from_str::<TcbInfo>(body) {
            let _ = serde_json::to_string(&info).unwrap();
        }
    }
    if let Ok(c) = TdxCollateral::from_parts(parts(EMPTY_TCB_INFO, text)) {
        let body = &c.as_dcap_qvl().qe_identity;
        assert!(
            text.contains(body.as_str()),
            "QE identity body is not the received text"
        );
        if let Ok(identity) = serde_json::from_str::<QeIdentity>(body) {
            let _ = serde_json::to_string(&identity).unwrap();
        }
    }
}

/// X.509 certificates and CRLs as the verifier reads them (endorsement chains in requests, KDS and PCS answers):
/// DER or PEM, the accessors appraisal uses, the self-signature, the SGX PCK extension, the CRL window and signature
/// check. Never panics.
pub fn x509(data: &[u8]) {
    let _ = evidence::classify_amd_cert(data);
    let _ = evidence::TdxPlatform::from_pck_der(data);
    let _ = evidence::cert_der(data);
    if let Ok(ders) = x509::pem_certificates(data) {
        assert_eq!(
            ders,
            evidence::pem_certificates(data),
            "the two PEM readers disagree"
        );
        for der in ders.iter().take(4) {
            certificate(der);
        }
    }
    if let Ok(der) = x509::der_or_pem_certificate(data) {
        certificate(&der);
    }
    let _ = cache::crl_window(data);
    if let Ok(crl) = ParsedCrl::parse(data) {
        let root = ParsedCert::parse(&intel_sgx_root_ca_der(), "root").unwrap();
        let _ = crl.verify(&root, NOW);
        let _ = crl.lists(&root);
        if let Ok(cert) = ParsedCert::parse(data, "fuzz") {
            let _ = crl.lists(&cert);
        }
    }
}

/// The AMD VCEK/VLEK extensions appraisal reads (blSPL, teeSPL, snpSPL, ucodeSPL, fmcSPL).
const AMD_SPL_OIDS: &[&str] = &[
    "1.3.6.1.4.1.3704.1.3.1",
    "1.3.6.1.4.1.3704.1.3.2",
    "1.3.6.1.4.1.3704.1.3.3",
    "1.3.6.1.4.1.3704.1.3.8",
    "1.3.6.1.4.1.3704.1.3.9",
];

fn certificate(der: &[u8]) {
    let Ok(cert) = ParsedCert::parse(der, "fuzz") else {
        return;
    };
    assert!(cert.tbs_bytes().len() < der.len());
    let _ = (
        cert.subject(),
        cert.issuer(),
        cert.subject_cn(),
        cert.issuer_cn(),
    );
    let _ = cert.self_issued();
    let _ = cert.check_validity(NOW);
    for oid in AMD_SPL_OIDS {
        let _ = cert.extension_u32(oid.parse().unwrap());
    }
    let _ = cert.extension_ia5("1.3.6.1.4.1.3704.1.2".parse().unwrap());
    let _ = cert.hw_id(64);
    let _ = cert.hw_id(8);
    let _ = cert.p384_public_key();
    let _ = cert.verify_signed_by(&cert, &locus_verifier::appraisal::Memos::default());
    let _ = locus_verifier::appraisal::is_simulator_cert(&cert);
}

/// The `POST /v1/attest` body as the service decodes it. Never panics.
pub fn attest_request(data: &[u8]) {
    let _ = locus_verifier::service::http::decode_attest_body(data);
}

/// A location endorsement (COSE_Sign1 over a CBOR map): the bytes as a whole endorsement, and as the payload of an
/// endorsement signed by a trusted endorser, tagged and untagged. A verified endorsement re-encodes to one that
/// verifies to the same value.
pub fn cose_endorsement(data: &[u8]) {
    let key = signer();
    let endorsers = [Endorser {
        name: "fuzz".into(),
        public_key: sec1(key),
    }];
    let _ = Endorsement::parse_and_verify(data, &endorsers);
    for tagged in [true, false] {
        let signed = cose_sign1_over(key, data, tagged);
        let Ok(e) = Endorsement::parse_and_verify(&signed, &endorsers) else {
            continue;
        };
        assert!(e.not_before < e.not_after);
        let PlatformRef::Raw(platform) = &e.platform else {
            continue;
        };
        let claims = endorsement::EndorsementClaims {
            platform,
            site: &e.site,
            country: &e.country,
            region: e.region.as_deref(),
            not_before: e.not_before,
            not_after: e.not_after,
        };
        let again = endorsement::encode(&claims, "fuzz", |tbs| {
            locus_wimse::JwsSigner::sign(key, tbs)
        })
        .unwrap();
        assert_eq!(
            Endorsement::parse_and_verify(&again, &endorsers).unwrap(),
            e
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = endorsement::parse_public_key(text);
    }
}

/// The uncompressed SEC1 point of a P-256 signer, the form the verifier keeps endorser keys in.
pub(crate) fn sec1(key: &locus_wimse::Es256SigningKey) -> Vec<u8> {
    match key.public_key() {
        locus_wimse::PublicKey::P256 { x, y } => [&[4u8][..], &x, &y].concat(),
        _ => unreachable!("an ES256 key is P-256"),
    }
}

/// `verifier.toml`: parse and validate (the function `locus-verifier serve` and the SIGHUP reload use). Never panics.
pub fn verifier_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = config::parse(text, Path::new("/nonexistent/locus-fuzz"));
}

/// Proximity (docs/proximity.md): the input as a protocol frame (first byte the type, the rest the payload) and as
/// a statement — whole, and as the payload of a statement signed by a trusted landmark key. A decoded frame encodes
/// to the bytes it came from; a verified statement re-signs to one that verifies to the same value.
pub fn proximity(data: &[u8]) {
    use locus_verifier::proximity::Statement;
    use locus_wimse::proximity::Frame;
    if let Some((&kind, payload)) = data.split_first() {
        if let Ok(frame) = Frame::decode(kind, payload) {
            if !matches!(frame, Frame::Error { .. }) {
                let bytes = frame.encode().unwrap();
                assert_eq!(bytes[0], kind);
                assert_eq!(&bytes[3..], payload);
            }
        }
    }
    let key = signer();
    let pk = key.public_key();
    let id = key.thumbprint_sha256();
    let trusted = |kid: &[u8; 32]| (*kid == id).then_some(&pk);
    let _ = Statement::verify(data, trusted);
    // As a payload: signed by our key under the kid the payload names (so a well-formed payload verifies).
    let kid = Statement::from_payload(data).map_or(id, |s| s.landmark_id);
    let any_kid = |_: &[u8; 32]| Some(&pk);
    let signed = Statement::sign_payload(data.to_vec(), &kid, key).unwrap();
    if let Ok(s) = Statement::verify(&signed, any_kid) {
        assert_eq!(s.d_max_km, s.expected_d_max_km());
        let again = s.sign(key).unwrap();
        assert_eq!(Statement::verify(&again, any_kid).unwrap(), s);
    }
}

/// The `POST /v1/svid` body and its signed request (`locus_verifier::spiffe::svid`): the input as the body, and as the
/// claims of a request signed with the trusted WIT's confirmation key — authenticated and checked as the service
/// does. A request that passes every check is `replayed` the second time.
pub fn svid_request(data: &[u8]) {
    use locus_verifier::spiffe::svid;
    let w = crate::wimse::world();
    let verifier = svid::wit_verifier(
        crate::wimse::TRUST_DOMAIN,
        crate::wimse::ISSUER,
        w.jwks.clone(),
    )
    .unwrap();
    let now = crate::wimse::NOW;
    if let Ok(body) = svid::parse_body(data) {
        let _ = svid::authenticate(&body, &verifier, now);
    }
    let body = svid::SvidBody {
        wit: w.wit.clone(),
        ear: None,
        request: crate::wimse::sign_raw(&w.agent, svid::REQUEST_TYP, data),
    };
    if let Ok(auth) = svid::authenticate(&body, &verifier, now) {
        let replay = locus_wimse::ReplayCache::default();
        if svid::check(&auth, None, &w.jwks, &replay, now).is_ok() {
            let again = svid::check(&auth, None, &w.jwks, &replay, now).map(|_| ());
            assert_eq!(again.unwrap_err().code, locus_verifier::ErrorCode::Replayed);
        }
    }
}
