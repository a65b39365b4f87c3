//! RS256 and PS256 WITs (verification only: ring cannot generate RSA keys, so the RustCrypto `rsa` crate signs here).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use common::*;
use locus_wimse::{
    b64, Alg, Jwk, Jwks, PublicKey, TrustDomain, TrustStore, WitPolicy, WitVerifier,
};
use rand_chacha::rand_core::SeedableRng;
use rsa::traits::PublicKeyParts;
use serde_json::json;
use signature::{RandomizedSigner, SignatureEncoding, Signer};

fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static K: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap()
    })
}

fn rsa_jwk(alg: &str) -> Jwk {
    let k = rsa_key().to_public_key();
    Jwk::from_value(&json!({
        "kty": "RSA", "kid": "rsa-1", "alg": alg,
        "n": b64::encode(k.n().to_bytes_be()), "e": b64::encode(k.e().to_bytes_be()),
    }))
    .unwrap()
}

fn signed(alg: &str) -> String {
    let w = world();
    let header = b64::encode(json!({"alg": alg, "kid": "rsa-1", "typ": "wit+jwt"}).to_string());
    let claims = b64::encode(wit_claims(sub().as_str(), &w.workload_ed.public_jwk()).to_string());
    let input = format!("{header}.{claims}");
    let sig = match alg {
        "RS256" => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa_key().clone())
            .sign(input.as_bytes())
            .to_vec(),
        _ => {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
            rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(rsa_key().clone())
                .sign_with_rng(&mut rng, input.as_bytes())
                .to_vec()
        }
    };
    format!("{input}.{}", b64::encode(sig))
}

fn verifier(jwk: Jwk) -> WitVerifier {
    let trust = TrustStore::new().with_keys(
        TrustDomain::parse("example.com").unwrap(),
        Jwks::new(vec![jwk]),
    );
    // RS256 / PS256 signatures and an EdDSA cnf: beyond the ES256-only default, opted in explicitly.
    WitVerifier::new(
        trust,
        WitPolicy::default().danger_allow_algs(&[Alg::Rs256, Alg::Ps256, Alg::EdDsa]),
    )
}

#[test]
fn rs256_and_ps256_wits_verify() {
    for alg in ["RS256", "PS256"] {
        let v = verifier(rsa_jwk(alg)).verify(&signed(alg), NOW).unwrap();
        assert_eq!(v.id(), &sub());
        assert_eq!(v.alg().name(), alg);
    }
}

#[test]
fn rsa_padding_confusion_is_refused() {
    // A PKCS#1 v1.5 signature presented as PS256 (header rewritten) fails: the header is signed, and the schemes differ.
    let t = signed("RS256");
    let (_, rest) = t.split_once('.').unwrap();
    let header = b64::encode(json!({"alg": "PS256", "kid": "rsa-1", "typ": "wit+jwt"}).to_string());
    let forged = format!("{header}.{rest}");
    let mut jwk = rsa_jwk("PS256");
    jwk.alg = None;
    assert_eq!(
        verifier(jwk).verify(&forged, NOW).unwrap_err().code(),
        "signature_invalid"
    );
    // And an anchor pinned to RS256 refuses a PS256 token before any signature check.
    assert_eq!(
        verifier(rsa_jwk("RS256"))
            .verify(&signed("PS256"), NOW)
            .unwrap_err()
            .code(),
        "alg_mismatch"
    );
}

#[test]
fn rsa_thumbprint_is_over_e_kty_n() {
    let jwk = rsa_jwk("RS256");
    let PublicKey::Rsa { n, e } = &jwk.key else {
        panic!("not RSA")
    };
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        b64::encode(e),
        b64::encode(n)
    );
    let expected: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(canonical.as_bytes()).into();
    assert_eq!(jwk.thumbprint_sha256(), expected);
}
