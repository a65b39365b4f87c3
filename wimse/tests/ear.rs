//! EAR (draft-ietf-rats-ear-03) as JWT and CWT: round trips, integer CBOR keys, and refusals.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ciborium::value::Value as Cbor;
use common::NOW;
use locus_wimse::jws::CompactJws;
use locus_wimse::{
    Ear, EarAppraisal, Ed25519SigningKey, Es256SigningKey, Jwks, TrustTier, TrustVector,
    VerifierId, EAR_PROFILE,
};

fn key() -> &'static Es256SigningKey {
    static K: OnceLock<Es256SigningKey> = OnceLock::new();
    K.get_or_init(|| Es256SigningKey::generate().unwrap().with_kid("verifier-1"))
}

fn jwks() -> Jwks {
    Jwks::new(vec![key().public_jwk()])
}

fn ear() -> Ear {
    let mut submods = BTreeMap::new();
    submods.insert(
        "sev-snp".to_owned(),
        EarAppraisal {
            status: TrustTier::Affirming,
            trust_vector: Some(TrustVector {
                instance_identity: Some(2),
                configuration: Some(2),
                executables: Some(3),
                hardware: Some(2),
                runtime_opaque: Some(2),
                ..Default::default()
            }),
            policy_ids: vec![
                "https://verifier.example/policy/workload/payments".into(),
                "locus:geofence:eu".into(),
            ],
            nonce: Some((0u8..32).collect()),
            profile: None,
        },
    );
    submods.insert(
        "tdx".to_owned(),
        EarAppraisal {
            status: TrustTier::Warning,
            trust_vector: Some(TrustVector {
                hardware: Some(32),
                ..Default::default()
            }),
            policy_ids: vec![],
            nonce: None,
            profile: Some("tag:locus.example,2026:tdx".into()),
        },
    );
    Ear {
        profile: EAR_PROFILE.into(),
        iat: NOW,
        exp: Some(NOW + 600),
        verifier_id: VerifierId {
            developer: "https://locus.example".into(),
            build: "locus-verifier 0.1.0".into(),
        },
        status: Some(TrustTier::Warning),
        raw_evidence: Some(b"raw evidence bytes".to_vec()),
        nonce: Some(vec![0xab; 16]),
        submods,
    }
}

#[test]
fn ear_jwt_round_trips() {
    let e = ear();
    let t = e.sign_jwt(key()).unwrap();
    let jws = CompactJws::parse(&t).unwrap();
    assert_eq!(jws.header.typ.as_deref(), Some("eat+jwt"));
    assert_eq!(jws.header.kid.as_deref(), Some("verifier-1"));
    let claims = jws.claims().unwrap();
    assert_eq!(claims["eat_profile"], EAR_PROFILE);
    assert_eq!(
        claims["submods"]["sev-snp"]["ear_trustworthiness_vector"]["executables"],
        3
    );
    assert_eq!(claims["ear_status"], "warning");
    assert_eq!(Ear::verify_jwt(&t, &jwks(), NOW + 1).unwrap(), e);
}

#[test]
fn ear_cwt_round_trips_with_integer_keys() {
    let e = ear();
    let c = e.sign_cwt(key()).unwrap();
    assert_eq!(c[0], 0xd2, "COSE_Sign1 tag 18");
    assert_eq!(Ear::verify_cwt(&c, &jwks(), NOW + 1).unwrap(), e);
    // The payload uses the integer keys of the draft.
    use coset::TaggedCborSerializable;
    let sign1 = coset::CoseSign1::from_tagged_slice(&c).unwrap();
    let payload: Cbor = ciborium::from_reader(sign1.payload.as_deref().unwrap()).unwrap();
    let keys: Vec<i128> = payload
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| i128::from(k.as_integer().unwrap()))
        .collect();
    for k in [265, 6, 4, 1004, 1000, 1002, 10, 266] {
        assert!(keys.contains(&k), "key {k} missing from {keys:?}");
    }
    assert_eq!(
        sign1.protected.header.alg,
        Some(coset::Algorithm::Assigned(coset::iana::Algorithm::ES256))
    );
    assert_eq!(sign1.protected.header.key_id, b"verifier-1");
}

#[test]
fn ear_cwt_with_any_flipped_byte_is_refused() {
    let c = ear().sign_cwt(key()).unwrap();
    for i in 0..c.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = c.clone();
            bad[i] ^= bit;
            assert!(
                Ear::verify_cwt(&bad, &jwks(), NOW + 1).is_err(),
                "flip of bit {bit:#x} at byte {i} accepted"
            );
        }
    }
    // A flip inside the signature is specifically a signature failure.
    let mut bad = c.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        Ear::verify_cwt(&bad, &jwks(), NOW + 1).unwrap_err().code(),
        "signature_invalid"
    );
}

#[test]
fn ear_jwt_tampered_or_wrong_key_is_refused() {
    let t = ear().sign_jwt(key()).unwrap();
    let (input, sig) = t.rsplit_once('.').unwrap();
    let mut sig = locus_wimse::b64::decode(sig).unwrap();
    sig[0] ^= 1;
    let bad = format!("{input}.{}", locus_wimse::b64::encode(&sig));
    assert_eq!(
        Ear::verify_jwt(&bad, &jwks(), NOW).unwrap_err().code(),
        "signature_invalid"
    );
    let other = Es256SigningKey::generate().unwrap().with_kid("verifier-1");
    let wrong = Jwks::new(vec![other.public_jwk()]);
    assert_eq!(
        Ear::verify_jwt(&t, &wrong, NOW).unwrap_err().code(),
        "signature_invalid"
    );
    let unknown = Jwks::new(vec![other.public_jwk().with_kid("verifier-2")]);
    assert_eq!(
        Ear::verify_jwt(&t, &unknown, NOW).unwrap_err().code(),
        "kid_unknown"
    );
    let c = ear().sign_cwt(key()).unwrap();
    assert_eq!(
        Ear::verify_cwt(&c, &wrong, NOW).unwrap_err().code(),
        "signature_invalid"
    );
}

#[test]
fn ear_expired_is_token_expired() {
    let t = ear().sign_jwt(key()).unwrap();
    assert_eq!(
        Ear::verify_jwt(&t, &jwks(), NOW + 600).unwrap_err().code(),
        "token_expired"
    );
    let c = ear().sign_cwt(key()).unwrap();
    assert_eq!(
        Ear::verify_cwt(&c, &jwks(), NOW + 600).unwrap_err().code(),
        "token_expired"
    );
}

#[test]
fn ear_that_breaks_the_draft_is_not_signed() {
    let mut e = ear();
    e.status = Some(TrustTier::Affirming); // better than the "warning" tdx submod
    assert_eq!(e.sign_jwt(key()).unwrap_err().code(), "ear_invalid");
    let mut e = ear();
    e.submods.clear();
    assert_eq!(e.sign_cwt(key()).unwrap_err().code(), "ear_invalid");
    let mut e = ear();
    e.nonce = Some(vec![1; 7]);
    assert_eq!(e.sign_cwt(key()).unwrap_err().code(), "ear_invalid");
}

#[test]
fn ear_signed_with_eddsa_verifies_in_both_encodings() {
    let k = Ed25519SigningKey::generate().unwrap().with_kid("ed");
    let set = Jwks::new(vec![k.public_jwk()]);
    let e = ear();
    assert_eq!(
        Ear::verify_jwt(&e.sign_jwt(&k).unwrap(), &set, NOW).unwrap(),
        e
    );
    assert_eq!(
        Ear::verify_cwt(&e.sign_cwt(&k).unwrap(), &set, NOW).unwrap(),
        e
    );
}

#[test]
fn ear_jwt_with_wrong_typ_is_typ_invalid() {
    let t = locus_wimse::jws::sign_compact(
        key(),
        &serde_json::json!({"alg":"ES256","kid":"verifier-1","typ":"JWT"}),
        &ear().to_json(),
    )
    .unwrap();
    assert_eq!(
        Ear::verify_jwt(&t, &jwks(), NOW).unwrap_err().code(),
        "typ_invalid"
    );
}
