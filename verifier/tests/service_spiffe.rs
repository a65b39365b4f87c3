//! The real `locus-verifier serve` as SPIFFE issuer: an agent attests with simulator evidence, then asks `/v1/svid`
//! for X.509-, JWT- and WIT-SVIDs for fresh per-SVID keys with requests signed by its attested key. Every SVID is
//! checked against the served bundles (the X.509 chain also with Python `cryptography`), every refusal by its code.

mod service_support;

use base64::Engine as _;
use der::{Decode as _, Encode as _};
use locus_verifier::spiffe::svid::sign_request;
use locus_verifier::spiffe::x509::ID_PE_CMW;
use locus_wimse::jws::{random_jti, CompactJws};
use locus_wimse::{Alg, Es256SigningKey, Jwk, Jwks, PublicKey};
use serde_json::{json, Value};
use service_support::*;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

const WIMSE_WORKLOAD: &str = "wimse://locus.example/payments";

/// The example config plus a `wimse://` workload (for the SPIFFE-subject refusal).
fn config(state: &std::path::Path) -> String {
    format!(
        "{}\n[[workload]]\nid = \"{WIMSE_WORKLOAD}\"\ntee = [\"sev-snp\"]\nttl = 900\nresidency = \"optional\"\n\
         [workload.sev-snp]\nmeasurement = [\"31b3543e349845bab22cf976947f85d33fb686870713bc64da50c05da2df86737f4ea521f190618ff70d00354d81e2d8\"]\n",
        example_config(state)
    )
}

/// An attested agent: its key, the WIT and EAR of one `/v1/attest` answer.
struct Attested {
    agent: Agent,
    wit: String,
    ear: String,
}

async fn attested(base: &str, workload: &str) -> Attested {
    let nonce = challenge(base).await;
    let agent = Agent::new();
    let (status, body, _) =
        post_attest(base, &agent.request("snp-fra-1", &nonce, Some(workload))).await;
    assert_eq!(status, 200, "{body}");
    Attested {
        wit: body["wit"].as_str().expect("wit").to_string(),
        ear: body["ear"].as_str().expect("ear").to_string(),
        agent,
    }
}

/// The request claims for `kind`, for a fresh per-SVID key (returned).
fn request_claims(a: &Attested, kind: &str) -> (Value, Es256SigningKey) {
    let svid_key = Es256SigningKey::generate().expect("key");
    let mut c = json!({
        "kind": kind,
        "wth": locus_wimse::token_hash(&a.wit),
        "iat": now(),
        "jti": random_jti().expect("jti"),
    });
    match kind {
        "jwt-svid" => c["aud"] = json!(["https://orders.example"]),
        _ => c["public_key"] = svid_key.public_jwk().to_value(),
    }
    (c, svid_key)
}

async fn post_svid(base: &str, body: &Value) -> (u16, Value) {
    let resp = client()
        .post(format!("{base}/v1/svid"))
        .json(body)
        .send()
        .await
        .expect("svid");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

fn svid_body(a: &Attested, claims: &Value, with_ear: bool) -> Value {
    let mut b = json!({"wit": a.wit, "request": sign_request(&a.agent.key, claims).expect("sign")});
    if with_ear {
        b["ear"] = json!(a.ear);
    }
    b
}

fn std_b64d(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("standard base64")
}

fn p256_point(key: &PublicKey) -> Vec<u8> {
    let PublicKey::P256 { x, y } = key else {
        panic!("not P-256: {key:?}")
    };
    let mut p = vec![4u8];
    p.extend_from_slice(x);
    p.extend_from_slice(y);
    p
}

/// The certificate's signature verifies under `issuer`'s public key.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let tbs = cert.tbs_certificate.to_der().expect("tbs");
    let key = issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(&tbs, cert.signature.raw_bytes())
        .is_ok()
}

fn bundle_keys<'a>(bundle: &'a Value, key_use: &str) -> Vec<&'a Value> {
    bundle["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["use"] == key_use)
        .collect()
}

fn uri_sans(cert: &Certificate) -> Vec<String> {
    let ext = cert
        .tbs_certificate
        .extensions
        .as_ref()
        .expect("extensions")
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
        .expect("SAN");
    SubjectAltName::from_der(ext.extn_value.as_bytes())
        .expect("SAN")
        .0
        .iter()
        .map(|n| match n {
            GeneralName::UniformResourceIdentifier(u) => u.as_str().to_string(),
            other => format!("not a URI: {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attested_agent_gets_an_x509_svid_that_chains_to_the_bundle_ca_names_only_its_spiffe_id_carries_the_ear_and_ends_with_the_wit(
) {
    let dir = tempdir();
    let state = dir.path().join("state");
    let v = Verifier::start(dir.path(), &config(&state));
    let a = attested(&v.base, EU_WORKLOAD).await;
    let wit = verify_wit(&v.base, &a.wit).await.expect("WIT");
    let (claims, svid_key) = request_claims(&a, "x509-svid");
    let (status, body) = post_svid(&v.base, &svid_body(&a, &claims, true)).await;
    assert_eq!(status, 200, "{body}");
    let chain = body["x509_svid"].as_array().expect("x509_svid");
    assert_eq!(chain.len(), 1, "leaf only: the CA is the bundle's");
    let leaf_der = std_b64d(chain[0].as_str().expect("b64"));
    let leaf = Certificate::from_der(&leaf_der).expect("leaf");

    // Chains to a CA of the SPIFFE bundle.
    let bundle = get_json(&v.base, "/v1/spiffe/bundle").await;
    let cas = bundle_keys(&bundle, "x509-svid");
    assert_eq!(cas.len(), 1);
    let ca_der = std_b64d(cas[0]["x5c"][0].as_str().expect("x5c"));
    let ca = Certificate::from_der(&ca_der).expect("CA");
    assert!(signed_by(&leaf, &ca), "leaf signed by the bundle CA");
    assert!(signed_by(&ca, &ca), "CA self-signed");
    assert_eq!(leaf.tbs_certificate.issuer, ca.tbs_certificate.subject);
    assert_eq!(uri_sans(&ca), vec!["spiffe://locus.example".to_string()]);

    // The SPIFFE ID as the only URI SAN (the only SAN at all), for the per-SVID key, which is not the attested key.
    assert_eq!(uri_sans(&leaf), vec![EU_WORKLOAD.to_string()]);
    let spki = &leaf.tbs_certificate.subject_public_key_info;
    assert_eq!(
        spki.subject_public_key.raw_bytes(),
        p256_point(&svid_key.public_key()).as_slice()
    );
    assert_ne!(
        spki.subject_public_key.raw_bytes(),
        p256_point(&a.agent.key.public_key()).as_slice()
    );

    // Within the WIT's validity: never before its iat, ending with it.
    let validity = &leaf.tbs_certificate.validity;
    let not_after = validity.not_after.to_unix_duration().as_secs();
    let not_before = validity.not_before.to_unix_duration().as_secs();
    assert!(not_before >= wit.claims().iat.expect("iat"), "{not_before}");
    assert_eq!(not_after, wit.claims().exp);
    assert_eq!(body["expires_at"], not_after);

    // The EAR in id-pe-cmw: a JSON CMW record whose value is the EAR sent.
    let cmw = leaf
        .tbs_certificate
        .extensions
        .as_ref()
        .expect("extensions")
        .iter()
        .find(|e| e.extn_id == ID_PE_CMW)
        .expect("id-pe-cmw");
    assert!(!cmw.critical);
    let text = der::asn1::Utf8StringRef::from_der(cmw.extn_value.as_bytes()).expect("UTF8String");
    let record: Value = serde_json::from_str(text.as_str()).expect("JSON record");
    assert!(record[0]
        .as_str()
        .is_some_and(|t| t.starts_with("application/eat+jwt")));
    assert_eq!(record[1], locus_wimse::b64::encode(a.ear.as_bytes()));
    assert_eq!(record[2], 8);

    // Python `cryptography` agrees: signature, CA flag, URI SAN, key usage, validity.
    python_checks_chain(dir.path(), &leaf_der, &ca_der, not_after);

    // Audited: the attested key, the per-SVID key, the serial and the CA kid.
    let lines = audit_lines(&state);
    let rec = lines
        .iter()
        .find(|l| l["credential"] == "x509-svid")
        .expect("x509-svid audited");
    assert_eq!(rec["decision"], "issued");
    assert_eq!(rec["workload"], EU_WORKLOAD);
    assert_eq!(rec["tee"], "sev-snp");
    assert_eq!(rec["cnf_jkt"], a.agent.jwk.thumbprint_b64());
    assert_eq!(
        rec["svid_jkt"],
        Jwk::new(svid_key.public_key()).thumbprint_b64()
    );
    assert_eq!(
        rec["jti"],
        hex::encode(leaf.tbs_certificate.serial_number.as_bytes())
    );
    assert_eq!(rec["kid"], cas[0]["kid"]);
    // `/v1/attest` records keep their shape: no SVID members.
    let attest_rec = lines.iter().find(|l| l.get("credential").is_none());
    assert!(attest_rec.is_some_and(|r| r.get("svid_jkt").is_none()));
}

fn python_checks_chain(dir: &std::path::Path, leaf: &[u8], ca: &[u8], not_after: u64) {
    let have = std::process::Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        let required = std::env::var_os("CI").is_some()
            || std::env::var("LOCUS_REQUIRE_VECTORS").as_deref() == Ok("1");
        assert!(
            !required,
            "python3 with cryptography is required when CI or LOCUS_REQUIRE_VECTORS=1 is set"
        );
        eprintln!("SKIP: Python cryptography chain check: python3 with cryptography not available");
        return;
    }
    std::fs::write(dir.join("leaf.der"), leaf).expect("write");
    std::fs::write(dir.join("ca.der"), ca).expect("write");
    let script = r#"
import sys
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
d = sys.argv[1]
leaf = x509.load_der_x509_certificate(open(d + "/leaf.der", "rb").read())
ca = x509.load_der_x509_certificate(open(d + "/ca.der", "rb").read())
ca.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))
leaf.verify_directly_issued_by(ca)
assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
assert list(san) == [x509.UniformResourceIdentifier(sys.argv[2])], list(san)
ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku and x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
assert int(leaf.not_valid_after_utc.timestamp()) == int(sys.argv[3])
cmw = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.35"))
assert not cmw.critical
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            &dir.display().to_string(),
            EU_WORKLOAD,
            &not_after.to_string(),
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python cryptography check failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_svid_verifies_with_the_bundles_jwt_svid_key_and_a_wit_svid_with_its_wit_svid_keys() {
    let dir = tempdir();
    let v = Verifier::start(dir.path(), &config(&dir.path().join("state")));
    let a = attested(&v.base, EU_WORKLOAD).await;
    let wit = verify_wit(&v.base, &a.wit).await.expect("WIT");
    let bundle = get_json(&v.base, "/v1/spiffe/bundle").await;

    // JWT-SVID.
    let (claims, _) = request_claims(&a, "jwt-svid");
    let (status, body) = post_svid(&v.base, &svid_body(&a, &claims, false)).await;
    assert_eq!(status, 200, "{body}");
    let token = body["jwt_svid"].as_str().expect("jwt_svid");
    let jws = CompactJws::parse(token).expect("JWS");
    assert_eq!(jws.header.typ.as_deref(), Some("JWT"));
    assert_eq!(jws.header.alg, "ES256");
    let kid = jws.header.kid.clone().expect("kid");
    let jwt_keys = bundle_keys(&bundle, "jwt-svid");
    let key = jwt_keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is a jwt-svid key of the bundle");
    let key = Jwk::from_value(key).expect("jwk");
    jws.verify_with(Alg::Es256, &key.key)
        .expect("verifies with the bundle's JWT-SVID key");
    // Not with a WIT key: the kinds are separate keys.
    for k in bundle_keys(&bundle, "wit-svid") {
        let k = Jwk::from_value(k).expect("jwk");
        assert!(jws.verify_with(Alg::Es256, &k.key).is_err());
    }
    let c = jws.claims().expect("claims");
    assert_eq!(c["sub"], EU_WORKLOAD);
    assert_eq!(c["aud"], json!(["https://orders.example"]));
    assert_eq!(c["locus_tee"], wit.claims().extra["locus_tee"]);
    assert_eq!(c["locus_residency"], wit.claims().extra["locus_residency"]);
    let exp = c["exp"].as_u64().expect("exp");
    assert!(exp <= wit.claims().exp && exp <= now() + 300 + 5, "{exp}");

    // WIT-SVID: a WIT of this verifier for the per-SVID key.
    let (claims, svid_key) = request_claims(&a, "wit-svid");
    let (status, body) = post_svid(&v.base, &svid_body(&a, &claims, false)).await;
    assert_eq!(status, 200, "{body}");
    let wit_svid_keys: Vec<Value> = bundle_keys(&bundle, "wit-svid")
        .into_iter()
        .cloned()
        .collect();
    let jwks = Jwks::from_value(&json!({ "keys": wit_svid_keys })).expect("jwks");
    let w = verify_wit_with(jwks, body["wit"].as_str().expect("wit")).expect("WIT-SVID verifies");
    assert_eq!(w.claims().cnf.key, svid_key.public_key());
    assert_ne!(w.claims().cnf.key, a.agent.key.public_key());
    assert_eq!(w.claims().sub.as_str(), EU_WORKLOAD);
    assert_eq!(w.claims().exp, wit.claims().exp);
    assert_eq!(
        w.claims().extra["locus_tee"],
        wit.claims().extra["locus_tee"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spiffe_and_wimse_bundles_are_separate_and_discovery_points_at_the_wimse_one() {
    let dir = tempdir();
    let v = Verifier::start(dir.path(), &config(&dir.path().join("state")));
    let spiffe = get_json(&v.base, "/v1/spiffe/bundle").await;
    let uses: Vec<&str> = spiffe["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["use"].as_str())
        .collect();
    assert_eq!(uses, vec!["x509-svid", "jwt-svid", "wit-svid"]);
    assert!(spiffe["spiffe_sequence"].as_u64().is_some_and(|s| s >= 1));
    assert_eq!(spiffe["spiffe_refresh_hint"], 60);
    // The WIT keys are the JWKS's.
    let jwks = get_json(&v.base, "/.well-known/jwks.json").await;
    assert_eq!(bundle_keys(&spiffe, "wit-svid")[0], &jwks["keys"][0]);

    let wimse = get_json(&v.base, "/v1/wimse/bundle").await;
    let uses: Vec<&str> = wimse["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["use"].as_str())
        .collect();
    assert_eq!(uses, vec!["wimse-jwt", "wimse-x509"]);
    assert_eq!(wimse["refresh_hint"], 60);
    assert!(wimse["sequence_number"].as_u64().is_some_and(|s| s >= 1));
    assert_eq!(
        bundle_keys(&wimse, "wimse-x509")[0]["x5c"],
        bundle_keys(&spiffe, "x509-svid")[0]["x5c"]
    );

    let d = get_json(&v.base, "/.well-known/wimse-trust-domain").await;
    assert_eq!(d["trust_domain"], "locus.example");
    assert_eq!(
        d["trust_bundle_endpoint"],
        "http://127.0.0.1:8443/v1/wimse/bundle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_svid_refusal_carries_its_code() {
    let dir = tempdir();
    let state = dir.path().join("state");
    let v = Verifier::start(dir.path(), &config(&state));
    let a = attested(&v.base, EU_WORKLOAD).await;

    // request_invalid: not the body's shape.
    let (s, b) = post_svid(&v.base, &json!({"wit": a.wit})).await;
    assert_refused(s, &b, "request_invalid", 400);

    // credential_invalid: a WIT whose signature does not verify.
    let (claims, _) = request_claims(&a, "x509-svid");
    let mut body = svid_body(&a, &claims, false);
    let mut parts: Vec<&str> = a.wit.split('.').collect();
    let forged = locus_wimse::b64::encode([0u8; 64]);
    parts[2] = &forged;
    body["wit"] = json!(parts.join("."));
    let (s, b) = post_svid(&v.base, &body).await;
    assert_refused(s, &b, "credential_invalid", 403);

    // signature_invalid: the request signed with another key than the WIT's cnf key.
    let stranger = Es256SigningKey::generate().expect("key");
    let body = json!({"wit": a.wit, "request": sign_request(&stranger, &claims).expect("sign")});
    let (s, b) = post_svid(&v.base, &body).await;
    assert_refused(s, &b, "signature_invalid", 403);

    // request_invalid: wth of another token.
    let (mut c, _) = request_claims(&a, "x509-svid");
    c["wth"] = json!(locus_wimse::token_hash("another token"));
    let (s, b) = post_svid(&v.base, &svid_body(&a, &c, false)).await;
    assert_refused(s, &b, "request_invalid", 400);

    // request_invalid: iat outside ±60 s.
    let (mut c, _) = request_claims(&a, "jwt-svid");
    c["iat"] = json!(now() - 120);
    let (s, b) = post_svid(&v.base, &svid_body(&a, &c, false)).await;
    assert_refused(s, &b, "request_invalid", 400);

    // key_unsupported: the attested key as the per-SVID key.
    let (mut c, _) = request_claims(&a, "x509-svid");
    c["public_key"] = a.agent.jwk.to_value();
    let (s, b) = post_svid(&v.base, &svid_body(&a, &c, false)).await;
    assert_refused(s, &b, "key_unsupported", 400);

    // replayed: the same signed request twice.
    let (c, _) = request_claims(&a, "jwt-svid");
    let body = svid_body(&a, &c, false);
    let (s, b) = post_svid(&v.base, &body).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post_svid(&v.base, &body).await;
    assert_refused(s, &b, "replayed", 400);

    // credential_invalid: the EAR of another attestation.
    let other = attested(&v.base, ANY_WORKLOAD).await;
    let (c, _) = request_claims(&a, "x509-svid");
    let mut body = svid_body(&a, &c, false);
    body["ear"] = json!(other.ear);
    let (s, b) = post_svid(&v.base, &body).await;
    assert_refused(s, &b, "credential_invalid", 403);

    // identifier_invalid: an X.509-SVID for a wimse:// subject (a WIT-SVID for it is fine).
    let w = attested(&v.base, WIMSE_WORKLOAD).await;
    let (c, _) = request_claims(&w, "x509-svid");
    let (s, b) = post_svid(&v.base, &svid_body(&w, &c, false)).await;
    assert_refused(s, &b, "identifier_invalid", 400);
    let (c, svid_key) = request_claims(&w, "wit-svid");
    let (s, b) = post_svid(&v.base, &svid_body(&w, &c, false)).await;
    assert_eq!(s, 200, "{b}");

    // credential_invalid: a WIT-SVID (its key is the workload's, not the attested one) does not authorize SVIDs.
    let holder = Attested {
        agent: Agent {
            jwk: Jwk::new(svid_key.public_key()),
            key: svid_key,
        },
        wit: b["wit"].as_str().expect("wit-svid").to_string(),
        ear: String::new(),
    };
    let (c, _) = request_claims(&holder, "wit-svid");
    let (s, b) = post_svid(&v.base, &svid_body(&holder, &c, false)).await;
    assert_refused(s, &b, "credential_invalid", 403);

    // Refusals after authentication are audited with their code; the unauthenticated ones are not.
    let lines = audit_lines(&state);
    let refused: Vec<&str> = lines
        .iter()
        .filter(|l| l["decision"] == "refused")
        .filter_map(|l| l["code"].as_str())
        .collect();
    assert_eq!(
        refused,
        vec![
            "request_invalid",
            "request_invalid",
            "key_unsupported",
            "replayed",
            "credential_invalid",
            "identifier_invalid"
        ]
    );
}

/// Poll the SPIFFE bundle until it holds `n` CAs.
async fn bundle_with_cas(base: &str, n: usize) -> Value {
    let deadline = now() + 20;
    loop {
        let b = get_json(base, "/v1/spiffe/bundle").await;
        if bundle_keys(&b, "x509-svid").len() == n {
            return b;
        }
        assert!(now() < deadline, "the bundle never held {n} CAs: {b}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The kid of the bundle CA that signed `leaf`.
fn signer_kid(bundle: &Value, leaf: &Certificate) -> Value {
    bundle_keys(bundle, "x509-svid")
        .into_iter()
        .find(|k| {
            let ca =
                Certificate::from_der(&std_b64d(k["x5c"][0].as_str().expect("x5c"))).expect("CA");
            signed_by(leaf, &ca)
        })
        .map(|k| k["kid"].clone())
        .expect("a bundle CA signed the leaf")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_spiffe_publishes_the_new_ca_and_jwt_svid_key_beside_the_old_and_they_sign_from_their_not_before(
) {
    let dir = tempdir();
    let keys = dir.path().join("keys");
    let v = Verifier::start_named(dir.path(), "r", &replica_config(dir.path(), "r", &keys));
    let before = get_json(&v.base, "/v1/spiffe/bundle").await;
    let seq_before = before["spiffe_sequence"].as_u64().expect("sequence");
    let first_ca = bundle_keys(&before, "x509-svid")[0]["kid"].clone();
    let a = attested(&v.base, EU_WORKLOAD).await;
    let x509 = |a: &Attested| svid_body(a, &request_claims(a, "x509-svid").0, false);

    // An immediate rotation: the new CA signs at once, the first stays published for the SVIDs it signed.
    let r = keys_cli(&["rotate-spiffe", "--activate-in", "0"], &v.config_path).report();
    let second_ca = r["ca_kid"].clone();
    let bundle = bundle_with_cas(&v.base, 2).await;
    let cas: Vec<Value> = bundle_keys(&bundle, "x509-svid")
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(cas, vec![first_ca.clone(), second_ca.clone()]);
    assert!(bundle["spiffe_sequence"].as_u64().expect("sequence") > seq_before);
    let (status, body) = post_svid(&v.base, &x509(&a)).await;
    assert_eq!(status, 200, "{body}");
    let leaf = Certificate::from_der(&std_b64d(body["x509_svid"][0].as_str().expect("leaf")))
        .expect("leaf");
    assert_eq!(signer_kid(&bundle, &leaf), second_ca);

    // A scheduled rotation: published at once, signing only from its not-before (300 s ahead).
    let r = keys_cli(&["rotate-spiffe", "--activate-in", "300"], &v.config_path).report();
    let (third_ca, third_jwt) = (r["ca_kid"].clone(), r["jwt_svid_kid"].clone());
    let bundle = bundle_with_cas(&v.base, 3).await;
    assert!(bundle_keys(&bundle, "x509-svid")
        .iter()
        .any(|k| k["kid"] == third_ca));
    assert!(bundle_keys(&bundle, "jwt-svid")
        .iter()
        .any(|k| k["kid"] == third_jwt));
    let (status, body) = post_svid(&v.base, &x509(&a)).await;
    assert_eq!(status, 200, "{body}");
    let leaf = Certificate::from_der(&std_b64d(body["x509_svid"][0].as_str().expect("leaf")))
        .expect("leaf");
    assert_eq!(signer_kid(&bundle, &leaf), second_ca);
    let (claims, _) = request_claims(&a, "jwt-svid");
    let (status, body) = post_svid(&v.base, &svid_body(&a, &claims, false)).await;
    assert_eq!(status, 200, "{body}");
    let (header, _) = jws_parts(body["jwt_svid"].as_str().expect("jwt"));
    assert_ne!(
        header["kid"], third_jwt,
        "a JWT-SVID key does not sign before its not-before"
    );
    assert!(bundle_keys(&bundle, "jwt-svid")
        .iter()
        .any(|k| k["kid"] == header["kid"]));
}
