//! WIMSE credentials and identifiers read by relying parties and the verifier (`locus-wimse`).
//!
//! Signed formats are fuzzed twice per input: the bytes as a whole token (envelope parsing), and the bytes as the
//! claims of a token signed by a trusted key (so claim checks behind the signature are reached too).

use std::sync::OnceLock;

use coset::{iana, CborSerializable, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use locus_wimse::wpt::WptRequest;
use locus_wimse::{
    b64, create_wpt, Ear, Es256SigningKey, Jwk, Jwks, JwsSigner, RelyingParty, RpConfig,
    TrustDomain, TrustStore, WitIssuer, WorkloadId,
};

/// The fixed "now" of every signed target (Unix seconds).
pub const NOW: u64 = 1_800_000_000;
const AUTHORITY: &str = "https://orders.example";
const PATH: &str = "/v1/orders";
const SUBJECT: &str = "spiffe://example.com/ns/prod/sa/payments";

/// The trusted WIT / EAR issuer's ES256 key (PKCS#8), fixed so that seeds written by one process verify in another.
const ISSUER_PKCS8: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420054bfe8257eeae353b0db20f4a3923bcf998a5e00c6d33c0716f5c7992589bdca1440342000425ec9a4594241eeea8690b495949249c6d5c9e111c4529bbeb6e825f255b0fe105c9997d0111d907eb2e3f13702bc284bf429e94757f50b79599913f516b0a5b";
/// The agent's confirmation key, which is also the trusted endorser key of [`crate::cose_endorsement`].
const AGENT_PKCS8: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b020101042002fe46936773b6c820081592d490a66117d8f396c1821b7c810c3bfcb8ee18a2a1440342000473afffa56a1764d1e3ed2e9313aaa530e5c1772966f3a374a74058122bb85c4f8c5b101e7a9b7e667993a9057bac094c2616d7cdd65b77a31514144b6fc2bb4d";

fn fixed_key(pkcs8_hex: &str) -> Es256SigningKey {
    Es256SigningKey::from_pkcs8(&hex::decode(pkcs8_hex).unwrap()).unwrap()
}

/// Keys and one valid WIT shared by every execution.
pub(crate) struct World {
    pub(crate) issuer: WitIssuer,
    pub(crate) agent: Es256SigningKey,
    pub(crate) jwks: Jwks,
    pub(crate) wit: String,
}

/// The WIT issuer's URL, and its trust domain.
pub(crate) const ISSUER: &str = "https://verifier.example";
pub(crate) const TRUST_DOMAIN: &str = "example.com";

pub(crate) fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let key = fixed_key(ISSUER_PKCS8).with_kid("k1");
        let issuer = WitIssuer::new(key, Some("https://verifier.example".into())).unwrap();
        let agent = fixed_key(AGENT_PKCS8);
        let sub = WorkloadId::parse(SUBJECT).unwrap();
        let (wit, _) = issuer
            .issue(
                &sub,
                &agent.public_jwk(),
                NOW - 10,
                NOW + 3600,
                &serde_json::Map::new(),
            )
            .unwrap();
        let jwks = Jwks::new(vec![issuer.public_jwk()]);
        World {
            issuer,
            agent,
            jwks,
            wit,
        }
    })
}

/// A compact JWS over exactly `payload`, signed by `signer` with header `{"alg","typ","kid"?}`.
pub(crate) fn sign_raw(signer: &dyn JwsSigner, typ: &str, payload: &[u8]) -> String {
    let mut header = serde_json::json!({"alg": signer.alg().name(), "typ": typ});
    if let Some(kid) = signer.kid() {
        header["kid"] = kid.into();
    }
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string()),
        b64::encode(payload)
    );
    let sig = signer.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64::encode(sig))
}

fn relying_party() -> RelyingParty {
    let w = world();
    let trust =
        TrustStore::new().with_keys(TrustDomain::parse("example.com").unwrap(), w.jwks.clone());
    RelyingParty::new(RpConfig::new(trust, vec![AUTHORITY.into()])).unwrap()
}

fn present(wit: &str, wpt: &str) {
    let rp = relying_party();
    let headers = [
        ("Workload-Identity-Token", wit),
        ("Workload-Proof-Token", wpt),
    ];
    if let Ok(ok) = rp.verify_request(headers, PATH, NOW) {
        // A request that authenticated once is a replay the second time.
        assert_eq!(
            rp.verify_request(headers, PATH, NOW)
                .map(|_| ())
                .unwrap_err()
                .code(),
            "replayed"
        );
        assert_eq!(ok.id.as_str(), ok.wit_claims.sub.as_str());
    }
}

/// JWS / WIT / WPT through the relying party's one entry point (`RelyingParty::verify_request`): the input as the two
/// header values (split at the first newline), as the claims of a WIT signed by the trusted issuer, and as the claims
/// of a WPT signed by the WIT's confirmation key.
pub fn wimse_tokens(data: &[u8]) {
    let w = world();
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(jws) = locus_wimse::jws::CompactJws::parse(text) {
            let _ = jws.claims();
            let _ = jws.alg_allowed(locus_wimse::Alg::ALL);
        }
        let (wit, wpt) = text.split_once('\n').unwrap_or((text, ""));
        present(wit, wpt);
    }
    let wit = sign_raw(w.issuer.key(), "wit+jwt", data);
    let wpt = create_wpt(
        &w.agent,
        &WptRequest::new(format!("{AUTHORITY}{PATH}"), &wit, NOW + 60),
    );
    if let Ok(wpt) = wpt {
        present(&wit, &wpt);
    }
    let wpt = sign_raw(&w.agent, "wpt+jwt", data);
    present(&w.wit, &wpt);
}

const AUD: &str = "https://orders.example/v1/orders";

/// HTTP message signatures (`locus_wimse::http_sig`): the input as the `Signature-Input` and `Signature` values (split
/// at the first newline) of a request carrying the trusted WIT, verified as a relying party does; as an RFC 8941
/// dictionary, whose inner lists re-serialize to text that parses back to the same member; and as the value of a
/// covered header of a request the confirmation key signs, which then verifies.
pub fn http_signature(data: &[u8]) {
    use locus_wimse::http_sig::{
        self, HttpRequest, HttpSigPolicy, Member, Message, SignatureParams,
    };
    let w = world();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(dict) = http_sig::parse_dictionary(text) {
        for (_, m) in &dict {
            if let Member::InnerList(items, params) = m {
                let again = http_sig::parse_dictionary(&format!(
                    "x={}",
                    http_sig::serialize_inner_list(items, params)
                ))
                .unwrap();
                assert_eq!(&again[0].1, m);
            }
        }
    }
    let trust =
        TrustStore::new().with_keys(TrustDomain::parse(TRUST_DOMAIN).unwrap(), w.jwks.clone());
    let wit = locus_wimse::WitVerifier::new(trust, locus_wimse::WitPolicy::default())
        .verify(&w.wit, NOW)
        .unwrap();
    let audiences = [AUD.to_string()];
    let verify = |req: &HttpRequest| {
        http_sig::verify_request(
            &wit,
            req,
            None,
            &audiences,
            &HttpSigPolicy::default(),
            &locus_wimse::ReplayCache::default(),
            NOW,
        )
    };
    let (input, sig) = text.split_once('\n').unwrap_or((text, ""));
    let req = HttpRequest::new("GET", PATH)
        .header("Workload-Identity-Token", &w.wit)
        .header("Signature-Input", input)
        .header("Signature", sig);
    let _ = verify(&req);
    let unsigned = HttpRequest::new("POST", PATH)
        .header("x-fuzz", text)
        .header("Workload-Identity-Token", &w.wit);
    let params =
        SignatureParams::for_request(&unsigned, &["x-fuzz"], AUD, NOW, NOW + 60, "fuzz-nonce");
    if let Ok(h) = http_sig::sign(&w.agent, Message::Request(&unsigned), &params) {
        let req = unsigned
            .header("Signature-Input", &h.signature_input)
            .header("Signature", &h.signature);
        if let Err(e) = verify(&req) {
            panic!("a request signed by the confirmation key does not verify: {e}");
        }
    }
}

/// JWK and JWKS: never panic; a parsed key serializes to JSON that parses back to the same key and thumbprint.
pub fn jwk(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = Jwk::from_json(text) {
        let again = Jwk::from_value(&key.to_value()).unwrap();
        assert_eq!(again.thumbprint_sha256(), key.thumbprint_sha256());
        assert_eq!(again.to_value(), key.to_value());
        let _ = key.known_alg();
        let _ = key.thumbprint_b64();
    }
    if let Ok(set) = Jwks::from_json(text) {
        let again = Jwks::from_json(&set.to_json()).unwrap();
        assert_eq!(again.to_value(), set.to_value());
        let _ = set.find("k1");
    }
}

/// Workload identifiers and trust domains: never panic; what parses is canonical (parsing its text gives it back).
pub fn workload_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = WorkloadId::parse(text) {
        let again = WorkloadId::parse(id.as_str()).unwrap();
        assert_eq!(again, id);
        assert_eq!(id.trust_domain().as_str(), id.trust_domain_str());
        let _ = (id.scheme(), id.path(), id.origin());
    }
    if let Ok(td) = TrustDomain::parse(text) {
        assert_eq!(TrustDomain::parse(td.as_str()).unwrap(), td);
        // A workload id in a parsed trust domain parses (the verifier parses configured ids with the same type).
        assert!(WorkloadId::parse(&format!("spiffe://{td}/x")).is_ok());
    }
}

fn cwt_over(signer: &dyn JwsSigner, payload: &[u8]) -> Vec<u8> {
    let mut protected = HeaderBuilder::new().algorithm(iana::Algorithm::ES256);
    if let Some(kid) = signer.kid() {
        protected = protected.key_id(kid.as_bytes().to_vec());
    }
    CoseSign1Builder::new()
        .protected(protected.build())
        .payload(payload.to_vec())
        .try_create_signature(&[], |tbs| signer.sign(tbs))
        .unwrap()
        .build()
        .to_tagged_vec()
        .unwrap()
}

/// EAR as JWT and as CWT: the input as a token of either form, as the claims of a token signed by a trusted key,
/// and as a JSON or CBOR claims-set. What decodes re-encodes to the same value in both forms.
pub fn ear(data: &[u8]) {
    let w = world();
    let check = |ear: Ear| {
        ear.validate().unwrap();
        assert_eq!(Ear::from_json(&ear.to_json()).unwrap(), ear);
        assert_eq!(Ear::from_cbor(&ear.to_cbor()).unwrap(), ear);
    };
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(ear) = Ear::verify_jwt(text, &w.jwks, NOW) {
            check(ear);
        }
        if let Ok(value) = locus_wimse::json::from_slice_strict(data) {
            if let Ok(ear) = Ear::from_json(&value) {
                check(ear);
            }
        }
    }
    if let Ok(ear) = Ear::verify_cwt(data, &w.jwks, NOW) {
        check(ear);
    }
    if let Ok(value) = ciborium::from_reader::<ciborium::Value, _>(data) {
        if let Ok(ear) = Ear::from_cbor(&value) {
            check(ear);
        }
    }
    if let Ok(ear) = Ear::verify_jwt(&sign_raw(w.issuer.key(), "eat+jwt", data), &w.jwks, NOW) {
        check(ear);
    }
    if let Ok(ear) = Ear::verify_cwt(&cwt_over(w.issuer.key(), data), &w.jwks, NOW) {
        check(ear);
    }
}

/// The CBOR-encoding helpers used by [`crate::verifier::cose_endorsement`].
pub(crate) fn cose_sign1_over(signer: &dyn JwsSigner, payload: &[u8], tagged: bool) -> Vec<u8> {
    let sign1 = CoseSign1Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::ES256)
                .build(),
        )
        .payload(payload.to_vec())
        .try_create_signature(&[], |tbs| signer.sign(tbs))
        .unwrap()
        .build();
    if tagged {
        sign1.to_tagged_vec().unwrap()
    } else {
        sign1.to_vec().unwrap()
    }
}

/// The agent key of the shared world (an ES256 signer for the COSE targets).
pub(crate) fn signer() -> &'static Es256SigningKey {
    &world().agent
}

fn sample_ear() -> Ear {
    use locus_wimse::{EarAppraisal, TrustTier, TrustVector, VerifierId};
    let mut submods = std::collections::BTreeMap::new();
    submods.insert(
        "sev-snp".to_owned(),
        EarAppraisal {
            status: TrustTier::Affirming,
            trust_vector: Some(TrustVector {
                instance_identity: Some(2),
                hardware: Some(2),
                ..Default::default()
            }),
            policy_ids: vec!["locus:geofence:eu".into()],
            nonce: Some(vec![7; 32]),
            profile: None,
        },
    );
    Ear {
        profile: locus_wimse::EAR_PROFILE.into(),
        iat: NOW - 10,
        exp: Some(NOW + 600),
        verifier_id: VerifierId {
            developer: "locus".into(),
            build: "0.1.0".into(),
        },
        status: Some(TrustTier::Affirming),
        raw_evidence: Some(vec![1, 2, 3]),
        nonce: Some(vec![9; 16]),
        submods,
    }
}

/// Seeds that only the fixed keys of these targets can make: a WIT and WPT pair the relying party accepts and the
/// claims of each, EARs that verify, an endorsement from the trusted endorser and its payload. As
/// `(target, name, bytes)`.
pub fn signed_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let w = world();
    let mut out = Vec::new();
    let wpt = create_wpt(
        &w.agent,
        &WptRequest::new(format!("{AUTHORITY}{PATH}"), &w.wit, NOW + 60),
    )
    .unwrap();
    out.push((
        "wimse_tokens",
        "wit-wpt",
        format!("{}\n{wpt}", w.wit).into_bytes(),
    ));
    for (name, token) in [("wit-claims", &w.wit), ("wpt-claims", &wpt)] {
        let payload = token.split('.').nth(1).unwrap();
        out.push(("wimse_tokens", name, b64::decode(payload).unwrap()));
    }
    let ear = sample_ear();
    out.push((
        "ear",
        "ear.jwt",
        ear.sign_jwt(w.issuer.key()).unwrap().into_bytes(),
    ));
    out.push(("ear", "ear.cwt", ear.sign_cwt(w.issuer.key()).unwrap()));
    out.push(("ear", "ear.json", ear.to_json().to_string().into_bytes()));
    let mut cbor = Vec::new();
    ciborium::into_writer(&ear.to_cbor(), &mut cbor).unwrap();
    out.push(("ear", "ear.cbor", cbor));
    let claims = locus_verifier::service::endorsement::EndorsementClaims {
        platform: &[0xab; 64],
        site: "fra-1",
        country: "DE",
        region: Some("DE-HE"),
        not_before: NOW - 100,
        not_after: NOW + 100,
    };
    let cose = locus_verifier::service::endorsement::encode(&claims, "op", |tbs| w.agent.sign(tbs))
        .unwrap();
    let payload = coset::CoseSign1::from_tagged_slice(&cose)
        .unwrap()
        .payload
        .unwrap();
    out.push(("cose_endorsement", "endorsement.cose", cose));
    out.push(("cose_endorsement", "endorsement-payload.cbor", payload));
    {
        use locus_wimse::http_sig::{self, HttpRequest, Message, SignatureParams};
        let unsigned = HttpRequest::new("GET", PATH).header("Workload-Identity-Token", &w.wit);
        let params = SignatureParams::for_request(&unsigned, &[], AUD, NOW, NOW + 60, "seed-nonce");
        let h = http_sig::sign(&w.agent, Message::Request(&unsigned), &params).unwrap();
        out.push((
            "http_signature",
            "signed-request",
            format!("{}\n{}", h.signature_input, h.signature).into_bytes(),
        ));
    }
    let svid_claims = serde_json::json!({
        "kind": "jwt-svid",
        "wth": locus_wimse::token_hash(&w.wit),
        "iat": NOW,
        "jti": "c2VlZC1qdGktMTI4LWJpdHM",
        "aud": ["https://orders.example"],
    });
    out.push((
        "svid_request",
        "request-claims",
        svid_claims.to_string().into_bytes(),
    ));
    let request = sign_raw(
        &w.agent,
        locus_verifier::spiffe::svid::REQUEST_TYP,
        svid_claims.to_string().as_bytes(),
    );
    out.push((
        "svid_request",
        "body",
        serde_json::json!({"wit": w.wit, "request": request})
            .to_string()
            .into_bytes(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        signed_seeds()
            .into_iter()
            .find(|(_, n, _)| *n == name)
            .map(|(_, _, b)| b)
            .unwrap()
    }

    fn accepted(wit: &str, wpt: &str) -> bool {
        let headers = [
            ("Workload-Identity-Token", wit),
            ("Workload-Proof-Token", wpt),
        ];
        relying_party().verify_request(headers, PATH, NOW).is_ok()
    }

    #[test]
    fn signed_seeds_reach_past_every_signature_check() {
        let w = world();
        let pair = String::from_utf8(seed("wit-wpt")).unwrap();
        let (wit, wpt) = pair.split_once('\n').unwrap();
        assert!(accepted(wit, wpt));
        // The claims seeds, re-signed the way `wimse_tokens` does, are accepted too.
        let wit = sign_raw(w.issuer.key(), "wit+jwt", &seed("wit-claims"));
        let wpt = create_wpt(
            &w.agent,
            &WptRequest::new(format!("{AUTHORITY}{PATH}"), &wit, NOW + 60),
        )
        .unwrap();
        assert!(accepted(&wit, &wpt));
        assert!(accepted(
            &w.wit,
            &sign_raw(&w.agent, "wpt+jwt", &seed("wpt-claims"))
        ));
        let jwt = String::from_utf8(seed("ear.jwt")).unwrap();
        assert!(Ear::verify_jwt(&jwt, &w.jwks, NOW).is_ok());
        assert!(Ear::verify_cwt(&seed("ear.cwt"), &w.jwks, NOW).is_ok());
        assert!(
            Ear::verify_cwt(&cwt_over(w.issuer.key(), &seed("ear.cbor")), &w.jwks, NOW).is_ok()
        );
        let endorsers = [locus_verifier::endorsement::Endorser {
            name: "fuzz".into(),
            public_key: crate::verifier::sec1(&w.agent),
        }];
        let parse = locus_verifier::endorsement::Endorsement::parse_and_verify;
        assert!(parse(&seed("endorsement.cose"), &endorsers).is_ok());
        let resigned = cose_sign1_over(&w.agent, &seed("endorsement-payload.cbor"), false);
        assert!(parse(&resigned, &endorsers).is_ok());
    }

    #[test]
    fn the_http_signature_and_svid_seeds_reach_past_every_check() {
        use locus_verifier::spiffe::svid;
        use locus_wimse::http_sig::{verify_request, HttpRequest, HttpSigPolicy};
        let w = world();
        let trust =
            TrustStore::new().with_keys(TrustDomain::parse(TRUST_DOMAIN).unwrap(), w.jwks.clone());
        let wit = locus_wimse::WitVerifier::new(trust, locus_wimse::WitPolicy::default())
            .verify(&w.wit, NOW)
            .unwrap();
        {
            let name = "signed-request";
            let text = String::from_utf8(seed(name)).unwrap();
            let (input, sig) = text.split_once('\n').unwrap();
            let req = HttpRequest::new("GET", PATH)
                .header("Workload-Identity-Token", &w.wit)
                .header("Signature-Input", input)
                .header("Signature", sig);
            let audiences = [AUD.to_string()];
            let replay = locus_wimse::ReplayCache::default();
            let ok = verify_request(
                &wit,
                &req,
                None,
                &audiences,
                &HttpSigPolicy::default(),
                &replay,
                NOW,
            );
            assert!(ok.is_ok(), "{name}: {ok:?}");
        }
        let verifier = svid::wit_verifier(TRUST_DOMAIN, ISSUER, w.jwks.clone()).unwrap();
        let body = svid::parse_body(&seed("body")).unwrap();
        let auth = svid::authenticate(&body, &verifier, NOW).unwrap();
        let replay = locus_wimse::ReplayCache::default();
        assert!(svid::check(&auth, None, &w.jwks, &replay, NOW).is_ok());
        let resigned = svid::SvidBody {
            wit: w.wit.clone(),
            ear: None,
            request: sign_raw(&w.agent, svid::REQUEST_TYP, &seed("request-claims")),
        };
        let auth = svid::authenticate(&resigned, &verifier, NOW).unwrap();
        let replay = locus_wimse::ReplayCache::default();
        assert!(svid::check(&auth, None, &w.jwks, &replay, NOW).is_ok());
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let other = Es256SigningKey::generate().unwrap().with_kid("k1");
        let wit = sign_raw(&other, "wit+jwt", &seed("wit-claims"));
        let wpt = create_wpt(
            &world().agent,
            &WptRequest::new(format!("{AUTHORITY}{PATH}"), &wit, NOW + 60),
        )
        .unwrap();
        assert!(!accepted(&wit, &wpt));
    }
}
