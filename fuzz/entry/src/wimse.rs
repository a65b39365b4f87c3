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

/// Keys and one valid WIT shared by every execution (key generation is too slow to repeat).
struct World {
    issuer: WitIssuer,
    agent: Es256SigningKey,
    jwks: Jwks,
    wit: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let key = Es256SigningKey::generate().unwrap().with_kid("k1");
        let issuer = WitIssuer::new(key, Some("https://verifier.example".into())).unwrap();
        let agent = Es256SigningKey::generate().unwrap();
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
fn sign_raw(signer: &dyn JwsSigner, typ: &str, payload: &[u8]) -> String {
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
        // The verifier's check of a configured workload id against its own trust domain.
        let _ = locus_verifier::service::config::check_workload_id(text, id.trust_domain_str());
    }
    if let Ok(td) = TrustDomain::parse(text) {
        assert_eq!(TrustDomain::parse(td.as_str()).unwrap(), td);
        let _ = locus_verifier::service::config::check_workload_id(
            &format!("spiffe://{td}/x"),
            td.as_str(),
        );
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
