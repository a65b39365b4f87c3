//! `POST /v1/svid` without the transport: who is asking, what they may have, and the signed SVID.
//!
//! The agent holds a WIT from this verifier (its `cnf.jwk` is the attested key) and asks for an SVID for a fresh
//! per-SVID key, in a request JWS signed with the attested key (docs/api.md#post-v1svid). The checks, in order:
//!
//! 1. [`parse_body`]: `{"wit", "ear"?, "request"}`, strings — `request_invalid`;
//! 2. [`authenticate`]: the WIT verifies under this verifier's published WIT keys, for its trust domain and issuer,
//!    unexpired (no skew: the verifier's own clock decided `exp`) — `credential_invalid`; the request is a compact
//!    JWS with `typ` exactly `locus-svid-request+jwt` — `request_invalid`; `alg` ES256 (= `cnf.jwk.alg`) and the
//!    signature over the received bytes under `cnf.jwk` — `signature_invalid`. Refusals up to here are not audited
//!    (the caller has not proved it holds a WIT's key), as requests refused before the nonce check at `/v1/attest`;
//! 3. [`check`]: `kind`; `wth` is the WIT's hash; `iat` within ±[`IAT_WINDOW`] s; `jti` of 128 bits or more, never
//!    seen for this subject while the request could be accepted (`replayed`); `public_key` a P-256 JWK other than the
//!    attested key (`key_unsupported`) for x509-svid and wit-svid; `aud` one or more audiences for jwt-svid; a
//!    `spiffe://` subject for x509-svid and jwt-svid (`identifier_invalid`); the EAR, when given, signed by this
//!    verifier, unexpired and from the same attestation as the WIT (same `iat`, `exp`, TEE submod and workload
//!    policy id) — `credential_invalid`;
//! 4. [`issue`]: the SVID, never outliving the WIT.
//!
//! Nothing here reads the clock: `now` is a parameter.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use locus_hw::TeeType;
use locus_wimse::ear::{EAR_CWT_MEDIA_TYPE, EAR_JWT_MEDIA_TYPE};
use locus_wimse::jws::CompactJws;
use locus_wimse::wit::{TrustAnchor, WitPolicy};
use locus_wimse::{
    Alg, Ear, Jwk, Jwks, PublicKey, ReplayCache, TrustDomain, TrustStore, VerifiedWit, WimseError,
    WitIssuer, WitVerifier,
};

use super::ca::CaCert;
use super::x509::{self, CmwEar, LeafRequest};
use crate::service::keys::SigningKey;
use crate::{ErrorCode, Refusal};

/// The request JWS `typ`.
pub use locus_wimse::jwt_svid::SVID_REQUEST_TYP as REQUEST_TYP;
/// The claim marking a WIT-SVID: the `jti` of the attestation WIT it was issued on. Its `cnf` key is a per-SVID key
/// the workload holds, not the attested key, so such a WIT never authorizes `/v1/svid`.
pub const SVID_OF_CLAIM: &str = "locus_svid_of";
/// How far a request's `iat` may be from the verifier's clock, seconds.
pub const IAT_WINDOW: u64 = 60;
/// The longest JWT-SVID lifetime, seconds (bearer tokens: short, as SPIRE's default).
pub const JWT_SVID_TTL: u64 = 300;
/// How far an X.509-SVID's notBefore lies before its issuance (relying parties' clock skew), never before the WIT's
/// `iat`.
pub const X509_BACKDATE: u64 = 30;
/// Most audiences in one JWT-SVID request, and the longest audience (the agent checks the same bounds).
pub use locus_wimse::jwt_svid::{MAX_AUDIENCES, MAX_AUDIENCE_LEN};
/// `jti` length bounds: 128 bits base64url (22 characters) at least; the replay cache's cap at most.
pub const MIN_JTI_LEN: usize = 22;
pub const MAX_JTI_LEN: usize = 128;

/// The `POST /v1/svid` body.
#[derive(Debug, Deserialize)]
pub struct SvidBody {
    pub wit: String,
    #[serde(default)]
    pub ear: Option<String>,
    pub request: String,
}

/// The SVID kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    X509,
    Jwt,
    Wit,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::X509 => "x509-svid",
            Kind::Jwt => "jwt-svid",
            Kind::Wit => "wit-svid",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "x509-svid" => Some(Kind::X509),
            "jwt-svid" => Some(Kind::Jwt),
            "wit-svid" => Some(Kind::Wit),
            _ => None,
        }
    }
}

fn refuse(code: ErrorCode, msg: impl Into<String>) -> Refusal {
    Refusal::new(code, msg)
}

/// Step 1: the body's shape.
pub fn parse_body(bytes: &[u8]) -> Result<SvidBody, Refusal> {
    serde_json::from_slice(bytes)
        .map_err(|e| refuse(ErrorCode::RequestInvalid, format!("svid request body: {e}")))
}

/// What the verifier trusts a WIT under: its own published WIT keys for its trust domain and issuer.
pub fn wit_verifier(
    trust_domain: &str,
    issuer: &str,
    wit_keys: Jwks,
) -> Result<WitVerifier, Refusal> {
    let td = TrustDomain::parse(trust_domain)
        .map_err(|e| refuse(ErrorCode::Internal, format!("trust domain: {e}")))?;
    let mut trust = TrustStore::new();
    trust.insert(
        td,
        TrustAnchor {
            keys: wit_keys,
            issuers: vec![issuer.to_string()],
        },
    );
    // No skew on `exp`: this verifier's own clock set it.
    Ok(WitVerifier::new(
        trust,
        WitPolicy::default().with_clock_skew(0),
    ))
}

/// A request whose WIT and signature verified.
#[derive(Debug)]
pub struct Authenticated {
    pub wit: VerifiedWit,
    /// The request JWS payload.
    pub claims: Map<String, Value>,
}

impl Authenticated {
    /// RFC 7638 thumbprint (base64url) of the attested key.
    pub fn attested_jkt(&self) -> String {
        self.wit.claims().cnf.thumbprint_b64()
    }
}

/// Step 2: the WIT is ours and current; the request JWS is signed with its `cnf` key.
pub fn authenticate(
    body: &SvidBody,
    verifier: &WitVerifier,
    now: u64,
) -> Result<Authenticated, Refusal> {
    let wit = verifier.verify(&body.wit, now).map_err(|e| {
        refuse(
            ErrorCode::CredentialInvalid,
            format!("the WIT is not a current WIT of this verifier: {e}"),
        )
    })?;
    if wit.claims().extra.contains_key(SVID_OF_CLAIM) {
        return Err(refuse(
            ErrorCode::CredentialInvalid,
            "a WIT-SVID does not bind the attested key: SVIDs are issued on the attestation WIT only",
        ));
    }
    let jws = CompactJws::parse(&body.request)
        .map_err(|e| refuse(ErrorCode::RequestInvalid, format!("request JWS: {e}")))?;
    if jws.header.typ.as_deref() != Some(REQUEST_TYP) {
        return Err(refuse(
            ErrorCode::RequestInvalid,
            format!(
                "request typ {:?} is not {REQUEST_TYP:?}",
                jws.header.typ.as_deref().unwrap_or("")
            ),
        ));
    }
    let cnf = &wit.claims().cnf;
    let alg = jws.alg_allowed(&[Alg::Es256]).map_err(|e| {
        refuse(
            ErrorCode::SignatureInvalid,
            format!("request alg: {e} (ES256, the WIT's cnf.jwk.alg)"),
        )
    })?;
    if wit.claims().pop_alg() != alg.name() {
        return Err(refuse(
            ErrorCode::SignatureInvalid,
            format!("request alg {} is not cnf.jwk.alg", alg.name()),
        ));
    }
    jws.verify_with(alg, &cnf.key).map_err(|e| {
        refuse(
            ErrorCode::SignatureInvalid,
            format!("request signature under the WIT's cnf key: {e}"),
        )
    })?;
    let claims = jws
        .claims()
        .map_err(|e| refuse(ErrorCode::RequestInvalid, format!("request claims: {e}")))?;
    Ok(Authenticated { wit, claims })
}

/// What an authenticated, checked request asks for.
#[derive(Debug)]
pub struct Order {
    pub kind: Kind,
    pub jti: String,
    /// The per-SVID key (x509-svid, wit-svid).
    pub public_key: Option<Jwk>,
    /// Audiences (jwt-svid).
    pub aud: Vec<String>,
    /// The EAR to carry, with its media type, as bytes for the CMW record.
    pub ear: Option<(&'static str, Vec<u8>)>,
}

fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, Refusal> {
    match claims.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(refuse(
            ErrorCode::RequestInvalid,
            format!("request {name} is not a string"),
        )),
        None => Err(refuse(
            ErrorCode::RequestInvalid,
            format!("request {name} missing"),
        )),
    }
}

/// Step 3: everything the request asks is allowed. `wit_keys` verify the EAR (it is signed like the WIT); `replay`
/// remembers `(sub, jti)` for as long as the request could be accepted.
pub fn check(
    auth: &Authenticated,
    ear: Option<&str>,
    wit_keys: &Jwks,
    replay: &ReplayCache,
    now: u64,
) -> Result<Order, Refusal> {
    let c = &auth.claims;
    let kind_s = str_claim(c, "kind")?;
    let kind = Kind::parse(kind_s).ok_or_else(|| {
        refuse(
            ErrorCode::RequestInvalid,
            format!("kind {kind_s:?} is not x509-svid, jwt-svid or wit-svid"),
        )
    })?;
    let wth = str_claim(c, "wth")?;
    if wth != locus_wimse::token_hash(auth.wit.raw()) {
        return Err(refuse(
            ErrorCode::RequestInvalid,
            "wth is not the hash of the WIT sent",
        ));
    }
    let iat = match c.get("iat") {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            refuse(
                ErrorCode::RequestInvalid,
                "iat is not a non-negative integer",
            )
        })?,
        _ => {
            return Err(refuse(
                ErrorCode::RequestInvalid,
                "iat missing or not a number",
            ))
        }
    };
    if iat.abs_diff(now) > IAT_WINDOW {
        return Err(refuse(
            ErrorCode::RequestInvalid,
            format!("iat {iat} is more than {IAT_WINDOW} s from now ({now})"),
        ));
    }
    let jti = str_claim(c, "jti")?;
    let jti_ok = (MIN_JTI_LEN..=MAX_JTI_LEN).contains(&jti.len())
        && jti
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !jti_ok {
        return Err(refuse(
            ErrorCode::RequestInvalid,
            format!("jti must be {MIN_JTI_LEN}..={MAX_JTI_LEN} base64url characters (128 random bits or more)"),
        ));
    }
    let sub = auth.wit.id();
    let public_key = match kind {
        Kind::X509 | Kind::Wit => {
            let v = c
                .get("public_key")
                .ok_or_else(|| refuse(ErrorCode::RequestInvalid, "public_key missing"))?;
            let jwk = Jwk::from_value(v)
                .map_err(|e| refuse(ErrorCode::KeyUnsupported, format!("public_key: {e}")))?;
            if !matches!(jwk.key, PublicKey::P256 { .. }) {
                return Err(refuse(
                    ErrorCode::KeyUnsupported,
                    "public_key must be a P-256 key",
                ));
            }
            if jwk.alg.as_deref().is_some_and(|a| a != Alg::Es256.name()) {
                return Err(refuse(
                    ErrorCode::KeyUnsupported,
                    "public_key alg must be ES256 when given",
                ));
            }
            if jwk.thumbprint_sha256() == auth.wit.claims().cnf.thumbprint_sha256() {
                return Err(refuse(
                    ErrorCode::KeyUnsupported,
                    "public_key is the attested key: every SVID needs its own key",
                ));
            }
            Some(Jwk::new(jwk.key).with_alg(Alg::Es256))
        }
        Kind::Jwt => None,
    };
    let aud = match kind {
        Kind::Jwt => {
            let list = match c.get("aud") {
                Some(Value::Array(a)) => a,
                _ => {
                    return Err(refuse(
                        ErrorCode::RequestInvalid,
                        "aud must be an array of audiences",
                    ))
                }
            };
            if list.is_empty() || list.len() > MAX_AUDIENCES {
                return Err(refuse(
                    ErrorCode::RequestInvalid,
                    format!("aud must hold 1..={MAX_AUDIENCES} audiences"),
                ));
            }
            let mut out = Vec::with_capacity(list.len());
            for a in list {
                match a {
                    Value::String(s) if !s.is_empty() && s.len() <= MAX_AUDIENCE_LEN => {
                        out.push(s.clone())
                    }
                    _ => {
                        return Err(refuse(
                            ErrorCode::RequestInvalid,
                            format!("each aud must be a string of 1..={MAX_AUDIENCE_LEN} bytes"),
                        ))
                    }
                }
            }
            out
        }
        Kind::X509 | Kind::Wit => Vec::new(),
    };
    if matches!(kind, Kind::X509 | Kind::Jwt) && sub.scheme() != locus_wimse::Scheme::Spiffe {
        return Err(refuse(
            ErrorCode::IdentifierInvalid,
            format!(
                "{} needs a spiffe:// subject, the WIT's is {sub}",
                kind.as_str()
            ),
        ));
    }
    let ear = match ear {
        None => None,
        Some(e) => Some(check_ear(auth, e, wit_keys, now)?),
    };
    let until = iat.saturating_add(IAT_WINDOW).saturating_add(1);
    replay
        .check_and_insert(sub.as_str(), jti, until, now)
        .map_err(|e| match e {
            WimseError::Replayed => {
                refuse(ErrorCode::Replayed, "this request jti was used already")
            }
            WimseError::ReplayQuotaExceeded { .. } => {
                refuse(ErrorCode::RateLimited, format!("request jti cache: {e}"))
            }
            other => refuse(ErrorCode::Overloaded, format!("request jti cache: {other}")),
        })?;
    Ok(Order {
        kind,
        jti: jti.to_string(),
        public_key,
        aud,
        ear,
    })
}

/// The EAR is ours, current and from the attestation that produced the WIT.
fn check_ear(
    auth: &Authenticated,
    ear: &str,
    wit_keys: &Jwks,
    now: u64,
) -> Result<(&'static str, Vec<u8>), Refusal> {
    let not_ours = |e: WimseError| {
        refuse(
            ErrorCode::CredentialInvalid,
            format!("the EAR is not a current EAR of this verifier: {e}"),
        )
    };
    let (result, media, bytes) = if ear.contains('.') {
        (
            Ear::verify_jwt(ear, wit_keys, now).map_err(not_ours)?,
            EAR_JWT_MEDIA_TYPE,
            ear.as_bytes().to_vec(),
        )
    } else {
        let cwt = locus_wimse::b64::decode(ear).map_err(|_| {
            refuse(
                ErrorCode::RequestInvalid,
                "ear is neither a JWT nor base64url of a CWT",
            )
        })?;
        (
            Ear::verify_cwt(&cwt, wit_keys, now).map_err(not_ours)?,
            EAR_CWT_MEDIA_TYPE,
            cwt,
        )
    };
    let w = auth.wit.claims();
    let tee = w
        .extra
        .get("locus_tee")
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let same = Some(result.iat) == w.iat
        && result.exp == Some(w.exp)
        && result
            .submods
            .get(tee)
            .is_some_and(|a| a.policy_ids.iter().any(|p| p == w.sub.as_str()));
    if !same {
        return Err(refuse(
            ErrorCode::CredentialInvalid,
            "the EAR is not from the attestation that produced this WIT (iat, exp, TEE or workload differ)",
        ));
    }
    Ok((media, bytes))
}

/// The signing keys in force for one issuance.
#[derive(Debug)]
pub struct Signers<'a> {
    pub issuer: &'a str,
    /// The active WIT issuer (for WIT-SVIDs).
    pub wit: &'a WitIssuer,
    /// The active JWT-SVID key.
    pub jwt: &'a SigningKey,
    /// The active CA key and certificate.
    pub ca: (&'a SigningKey, &'a CaCert),
}

/// An issued SVID.
#[derive(Debug)]
pub struct Issued {
    /// The answer body.
    pub body: Value,
    pub kind: Kind,
    /// `jti` of a JWT/WIT, the hex serial of a certificate.
    pub id: String,
    /// The signing key's kid.
    pub kid: String,
    pub exp: u64,
    /// RFC 7638 thumbprint of the per-SVID key.
    pub svid_jkt: Option<String>,
}

fn internal(what: &str, e: impl std::fmt::Display) -> Refusal {
    refuse(ErrorCode::Internal, format!("{what}: {e}"))
}

/// The Locus claims copied from the WIT into an SVID.
fn locus_claims(wit: &VerifiedWit) -> Map<String, Value> {
    let mut extra = Map::new();
    for name in ["locus_tee", "locus_residency"] {
        if let Some(v) = wit.claims().extra.get(name) {
            extra.insert(name.into(), v.clone());
        }
    }
    extra
}

/// Step 4: sign the SVID. It never outlives the WIT (nor, for an X.509-SVID, the CA certificate).
pub fn issue(
    auth: &Authenticated,
    order: &Order,
    signers: &Signers<'_>,
    now: u64,
) -> Result<Issued, Refusal> {
    let wit = auth.wit.claims();
    let sub = auth.wit.id();
    let svid_jkt = order.public_key.as_ref().map(Jwk::thumbprint_b64);
    match order.kind {
        Kind::X509 => {
            let key = order
                .public_key
                .as_ref()
                .ok_or_else(|| internal("x509-svid", "no public key"))?;
            let (ca_key, ca_cert) = signers.ca;
            let not_after = wit.exp.min(ca_cert.not_after);
            let (der, serial) = x509::leaf_certificate(
                &LeafRequest {
                    spiffe_id: sub.as_str(),
                    public_key: &key.key,
                    // Back-dated for relying parties' clocks, but never before the WIT: the certificate's validity
                    // lies within the WIT's.
                    not_before: now
                        .saturating_sub(X509_BACKDATE)
                        .max(wit.iat.unwrap_or(now)),
                    not_after,
                    ear: order
                        .ear
                        .as_ref()
                        .map(|(media_type, value)| CmwEar { media_type, value }),
                },
                &ca_key.key,
                &ca_cert.der,
            )
            .map_err(|e| internal("X.509-SVID", e))?;
            use base64::Engine as _;
            let std_b64 = base64::engine::general_purpose::STANDARD;
            Ok(Issued {
                body: json!({"x509_svid": [std_b64.encode(&der)], "expires_at": not_after}),
                kind: order.kind,
                id: hex::encode(serial.as_bytes()),
                kid: ca_key.kid.clone(),
                exp: not_after,
                svid_jkt,
            })
        }
        Kind::Jwt => {
            let exp = wit.exp.min(now.saturating_add(JWT_SVID_TTL));
            let jti = locus_wimse::jws::random_jti().map_err(|e| internal("jti", e))?;
            let mut claims = Map::new();
            claims.insert("aud".into(), json!(order.aud));
            claims.insert("exp".into(), exp.into());
            claims.insert("iat".into(), now.into());
            claims.insert("iss".into(), signers.issuer.into());
            claims.insert("jti".into(), jti.clone().into());
            claims.insert("sub".into(), sub.as_str().into());
            claims.extend(locus_claims(&auth.wit));
            let token = signers
                .jwt
                .key
                .sign_jws("JWT", &Value::Object(claims))
                .map_err(|e| internal("JWT-SVID signing", e))?;
            Ok(Issued {
                body: json!({"jwt_svid": token, "expires_at": exp}),
                kind: order.kind,
                id: jti,
                kid: signers.jwt.kid.clone(),
                exp,
                svid_jkt,
            })
        }
        Kind::Wit => {
            let key = order
                .public_key
                .as_ref()
                .ok_or_else(|| internal("wit-svid", "no public key"))?;
            let mut extra = locus_claims(&auth.wit);
            extra.insert(
                SVID_OF_CLAIM.into(),
                wit.jti.clone().unwrap_or_default().into(),
            );
            let (token, claims) = signers
                .wit
                .issue(sub, key, now, wit.exp, &extra)
                .map_err(|e| internal("WIT-SVID", e))?;
            Ok(Issued {
                body: json!({"wit": token, "expires_at": wit.exp}),
                kind: order.kind,
                id: claims.jti.unwrap_or_default(),
                kid: signers.wit.key().kid().unwrap_or_default().to_string(),
                exp: wit.exp,
                svid_jkt,
            })
        }
    }
}

/// The TEE of a WIT (`locus_tee.type`), as the audit log names it.
pub fn tee_of(wit: &VerifiedWit) -> Option<&'static str> {
    wit.claims()
        .extra
        .get("locus_tee")
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<TeeType>().ok())
        .map(TeeType::as_str)
}

/// The request a conforming agent sends (used by tests and documentation examples): the JWS over `claims`, signed
/// with the attested key.
pub fn sign_request(
    attested: &locus_wimse::Es256SigningKey,
    claims: &Value,
) -> Result<String, WimseError> {
    #[derive(serde::Serialize)]
    struct Header<'a> {
        alg: &'a str,
        typ: &'a str,
    }
    locus_wimse::jws::sign_compact(
        attested,
        &Header {
            alg: "ES256",
            typ: REQUEST_TYP,
        },
        claims,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::keys::{KeyKind, KeySet};
    use crate::spiffe::ca::SpiffeCa;
    use locus_wimse::{
        EarAppraisal, Es256SigningKey, TrustTier, VerifierId, WorkloadId, EAR_PROFILE,
    };

    const NOW: u64 = 1_800_000_000;
    const ISS: &str = "https://v.example";
    const SUB: &str = "spiffe://locus.example/ns/prod/sa/api";

    struct Fx {
        issuer: WitIssuer,
        agent: Es256SigningKey,
        wit: String,
        keys: Jwks,
        verifier: WitVerifier,
    }

    fn fx_for(sub: &str) -> Fx {
        let issuer = WitIssuer::new(
            Es256SigningKey::generate()
                .expect("key")
                .with_thumbprint_kid(),
            Some(ISS.into()),
        )
        .expect("issuer");
        let agent = Es256SigningKey::generate().expect("key");
        let mut extra = Map::new();
        extra.insert(
            "locus_tee".into(),
            json!({"type": "sev-snp", "simulated": true, "measurement": "ab"}),
        );
        extra.insert("locus_residency".into(), json!({"country": "DE"}));
        let (wit, _) = issuer
            .issue(
                &WorkloadId::parse(sub).expect("id"),
                &agent.public_jwk(),
                NOW - 10,
                NOW + 3600,
                &extra,
            )
            .expect("wit");
        let keys = Jwks::new(vec![issuer.public_jwk()]);
        let verifier = wit_verifier("locus.example", ISS, keys.clone()).expect("verifier");
        Fx {
            issuer,
            agent,
            wit,
            keys,
            verifier,
        }
    }

    fn fx() -> Fx {
        fx_for(SUB)
    }

    fn claims(fx: &Fx, kind: &str) -> Value {
        let svid_key = Es256SigningKey::generate().expect("key");
        json!({
            "kind": kind,
            "wth": locus_wimse::token_hash(&fx.wit),
            "iat": NOW,
            "jti": locus_wimse::jws::random_jti().expect("jti"),
            "public_key": svid_key.public_jwk().to_value(),
            "aud": ["https://orders.example"],
        })
    }

    fn body(fx: &Fx, claims: &Value) -> SvidBody {
        SvidBody {
            wit: fx.wit.clone(),
            ear: None,
            request: sign_request(&fx.agent, claims).expect("sign"),
        }
    }

    fn auth(fx: &Fx, claims: &Value) -> Authenticated {
        authenticate(&body(fx, claims), &fx.verifier, NOW).expect("authenticated")
    }

    fn check_code(fx: &Fx, claims: &Value) -> ErrorCode {
        let a = auth(fx, claims);
        check(&a, None, &fx.keys, &ReplayCache::default(), NOW)
            .expect_err("refused")
            .code
    }

    fn ear_for(fx: &Fx, iat: u64, exp: u64, policy: &str) -> String {
        ear_value(iat, exp, policy)
            .sign_jwt(fx.issuer.key())
            .expect("ear")
    }

    fn ear_value(iat: u64, exp: u64, policy: &str) -> Ear {
        let mut submods = std::collections::BTreeMap::new();
        submods.insert(
            "sev-snp".to_string(),
            EarAppraisal {
                status: TrustTier::Warning,
                trust_vector: None,
                policy_ids: vec![policy.to_string()],
                nonce: None,
                profile: None,
            },
        );
        Ear {
            profile: EAR_PROFILE.to_string(),
            iat,
            exp: Some(exp),
            verifier_id: VerifierId {
                developer: "https://locus.example/verifier".into(),
                build: "test".into(),
            },
            status: Some(TrustTier::Warning),
            raw_evidence: None,
            nonce: Some(vec![7; 32]),
            submods,
        }
    }

    #[test]
    fn a_cwt_ear_is_kept_as_its_cbor_bytes_with_the_cwt_media_type() {
        let f = fx();
        let cwt = ear_value(NOW - 10, NOW + 3600, SUB)
            .sign_cwt(f.issuer.key())
            .expect("cwt");
        let a = auth(&f, &claims(&f, "x509-svid"));
        let sent = locus_wimse::b64::encode(&cwt);
        let order = check(&a, Some(&sent), &f.keys, &ReplayCache::default(), NOW).expect("cwt ear");
        assert_eq!(order.ear, Some((EAR_CWT_MEDIA_TYPE, cwt)));
        let a = auth(&f, &claims(&f, "x509-svid"));
        assert_eq!(
            check(
                &a,
                Some("not base64url!"),
                &f.keys,
                &ReplayCache::default(),
                NOW
            )
            .expect_err("junk")
            .code,
            ErrorCode::RequestInvalid
        );
    }

    #[test]
    fn a_malformed_body_is_request_invalid() {
        for bad in [
            &b"{}"[..],
            b"[]",
            b"{\"wit\":1,\"request\":\"x\"}",
            b"not json",
        ] {
            assert_eq!(
                parse_body(bad).expect_err("bad").code,
                ErrorCode::RequestInvalid
            );
        }
    }

    #[test]
    fn a_wit_that_is_not_ours_or_expired_is_credential_invalid() {
        let f = fx();
        let c = claims(&f, "x509-svid");
        // Expired: at exp, with no skew.
        let err = authenticate(&body(&f, &c), &f.verifier, NOW + 3600).expect_err("expired");
        assert_eq!(err.code, ErrorCode::CredentialInvalid);
        // Another issuer's key.
        let other = fx();
        let err = authenticate(&body(&f, &c), &other.verifier, NOW).expect_err("not ours");
        assert_eq!(err.code, ErrorCode::CredentialInvalid);
        // Another issuer URL with our key.
        let v = wit_verifier("locus.example", "https://other.example", f.keys.clone()).expect("v");
        assert_eq!(
            authenticate(&body(&f, &c), &v, NOW).expect_err("iss").code,
            ErrorCode::CredentialInvalid
        );
        // Another trust domain.
        let g = fx_for("spiffe://elsewhere.example/a");
        let b = SvidBody {
            wit: g.wit.clone(),
            ear: None,
            request: sign_request(&g.agent, &c).expect("sign"),
        };
        assert_eq!(
            authenticate(&b, &f.verifier, NOW).expect_err("td").code,
            ErrorCode::CredentialInvalid
        );
    }

    #[test]
    fn a_request_not_signed_with_the_attested_key_is_signature_invalid() {
        let f = fx();
        let c = claims(&f, "x509-svid");
        let stranger = Es256SigningKey::generate().expect("key");
        let b = SvidBody {
            wit: f.wit.clone(),
            ear: None,
            request: sign_request(&stranger, &c).expect("sign"),
        };
        assert_eq!(
            authenticate(&b, &f.verifier, NOW)
                .expect_err("bad sig")
                .code,
            ErrorCode::SignatureInvalid
        );
        // The bytes received are what is verified: one changed payload character breaks it.
        let mut b = body(&f, &c);
        let mut parts: Vec<String> = b.request.split('.').map(str::to_string).collect();
        let payload = locus_wimse::b64::decode(&parts[1]).expect("payload");
        let mut v: Value = serde_json::from_slice(&payload).expect("json");
        v["kind"] = json!("wit-svid");
        parts[1] = locus_wimse::b64::encode(serde_json::to_vec(&v).expect("json"));
        b.request = parts.join(".");
        assert_eq!(
            authenticate(&b, &f.verifier, NOW)
                .expect_err("altered")
                .code,
            ErrorCode::SignatureInvalid
        );
    }

    #[test]
    fn a_request_with_another_typ_is_request_invalid() {
        let f = fx();
        let c = claims(&f, "x509-svid");
        for typ in ["wpt+jwt", "JWT", "application/locus-svid-request+jwt"] {
            let t = f.agent.sign_jws(typ, &c).expect("sign");
            let b = SvidBody {
                wit: f.wit.clone(),
                ear: None,
                request: t,
            };
            assert_eq!(
                authenticate(&b, &f.verifier, NOW).expect_err(typ).code,
                ErrorCode::RequestInvalid,
                "{typ}"
            );
        }
    }

    #[test]
    fn wth_iat_jti_kind_and_aud_are_checked_with_request_invalid() {
        let f = fx();
        let mut c = claims(&f, "x509-svid");
        c["wth"] = json!(locus_wimse::token_hash("another WIT"));
        assert_eq!(check_code(&f, &c), ErrorCode::RequestInvalid);
        for iat in [NOW - IAT_WINDOW - 1, NOW + IAT_WINDOW + 1] {
            let mut c = claims(&f, "x509-svid");
            c["iat"] = json!(iat);
            assert_eq!(check_code(&f, &c), ErrorCode::RequestInvalid, "{iat}");
        }
        for jti in [
            json!("short"),
            json!(1),
            json!("a".repeat(129)),
            json!("+".repeat(22)),
        ] {
            let mut c = claims(&f, "x509-svid");
            c["jti"] = jti.clone();
            assert_eq!(check_code(&f, &c), ErrorCode::RequestInvalid, "{jti}");
        }
        let c = claims(&f, "ssh-cert");
        assert_eq!(check_code(&f, &c), ErrorCode::RequestInvalid);
        for aud in [json!([]), json!("https://a"), json!([""]), json!([1])] {
            let mut c = claims(&f, "jwt-svid");
            c["aud"] = aud.clone();
            assert_eq!(check_code(&f, &c), ErrorCode::RequestInvalid, "{aud}");
        }
        let mut c = claims(&f, "x509-svid");
        c.as_object_mut().expect("obj").remove("public_key");
        assert_eq!(check_code(&f, &c), ErrorCode::RequestInvalid);
    }

    #[test]
    fn the_attested_key_or_a_key_other_than_p256_is_key_unsupported() {
        let f = fx();
        for kind in ["x509-svid", "wit-svid"] {
            let mut c = claims(&f, kind);
            c["public_key"] = f.agent.public_jwk().to_value();
            assert_eq!(check_code(&f, &c), ErrorCode::KeyUnsupported, "{kind}");
            let mut c = claims(&f, kind);
            c["public_key"] = locus_wimse::Ed25519SigningKey::generate()
                .expect("key")
                .public_jwk()
                .to_value();
            assert_eq!(check_code(&f, &c), ErrorCode::KeyUnsupported, "{kind}");
            let mut c = claims(&f, kind);
            c["public_key"] = json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
            assert_eq!(check_code(&f, &c), ErrorCode::KeyUnsupported, "{kind}");
        }
    }

    #[test]
    fn x509_and_jwt_svids_need_a_spiffe_subject_and_wit_svids_do_not() {
        let f = fx_for("wimse://locus.example/payments");
        assert_eq!(
            check_code(&f, &claims(&f, "x509-svid")),
            ErrorCode::IdentifierInvalid
        );
        assert_eq!(
            check_code(&f, &claims(&f, "jwt-svid")),
            ErrorCode::IdentifierInvalid
        );
        let a = auth(&f, &claims(&f, "wit-svid"));
        assert!(check(&a, None, &f.keys, &ReplayCache::default(), NOW).is_ok());
    }

    #[test]
    fn the_same_request_twice_is_replayed() {
        let f = fx();
        let c = claims(&f, "jwt-svid");
        let replay = ReplayCache::default();
        let a = auth(&f, &c);
        check(&a, None, &f.keys, &replay, NOW).expect("first");
        assert_eq!(
            check(&a, None, &f.keys, &replay, NOW + 5)
                .expect_err("again")
                .code,
            ErrorCode::Replayed
        );
        // Once the iat window is over the request is refused for its iat, never accepted again.
        assert_eq!(
            check(&a, None, &f.keys, &replay, NOW + IAT_WINDOW + 2)
                .expect_err("late")
                .code,
            ErrorCode::RequestInvalid
        );
    }

    #[test]
    fn an_ear_from_this_attestation_is_kept_and_any_other_is_credential_invalid() {
        let f = fx();
        let c = claims(&f, "x509-svid");
        let a = auth(&f, &c);
        let good = ear_for(&f, NOW - 10, NOW + 3600, SUB);
        let order = check(&a, Some(&good), &f.keys, &ReplayCache::default(), NOW).expect("ear");
        let (media, bytes) = order.ear.expect("kept");
        assert_eq!(media, EAR_JWT_MEDIA_TYPE);
        assert_eq!(bytes, good.as_bytes());
        let other_iat = ear_for(&f, NOW - 11, NOW + 3600, SUB);
        let other_exp = ear_for(&f, NOW - 10, NOW + 3599, SUB);
        let other_workload = ear_for(&f, NOW - 10, NOW + 3600, "spiffe://locus.example/other");
        let not_ours = ear_for(&fx(), NOW - 10, NOW + 3600, SUB);
        for (what, ear) in [
            ("iat", other_iat),
            ("exp", other_exp),
            ("workload", other_workload),
            ("signer", not_ours),
        ] {
            let c = claims(&f, "x509-svid");
            let a = auth(&f, &c);
            assert_eq!(
                check(&a, Some(&ear), &f.keys, &ReplayCache::default(), NOW)
                    .expect_err(what)
                    .code,
                ErrorCode::CredentialInvalid,
                "{what}"
            );
        }
    }

    fn issue_kind(f: &Fx, kind: &str, now: u64) -> (Issued, Value) {
        let dir = tempfile::tempdir().expect("tmp");
        let jwt = KeySet::ensure_kind(dir.path(), KeyKind::JwtSvid).expect("jwt");
        let ca = SpiffeCa::ensure(dir.path(), "locus.example", NOW - 100).expect("ca");
        let mut c = claims(f, kind);
        c["iat"] = json!(now);
        let a = auth(f, &c);
        let order = check(&a, None, &f.keys, &ReplayCache::default(), now).expect("check");
        let issued = issue(
            &a,
            &order,
            &Signers {
                issuer: ISS,
                wit: &f.issuer,
                jwt: jwt.active(now),
                ca: ca.active(now),
            },
            now,
        )
        .expect("issue");
        (issued, c)
    }

    #[test]
    fn a_jwt_svid_has_the_spiffe_claims_and_the_wits_locus_claims_and_a_short_life() {
        let f = fx();
        let (issued, c) = issue_kind(&f, "jwt-svid", NOW);
        let token = issued.body["jwt_svid"].as_str().expect("jwt");
        let jws = CompactJws::parse(token).expect("jws");
        assert_eq!(jws.header.typ.as_deref(), Some("JWT"));
        assert_eq!(jws.header.alg, "ES256");
        assert_eq!(jws.header.kid.as_deref(), Some(issued.kid.as_str()));
        let claims = jws.claims().expect("claims");
        assert_eq!(claims["sub"], SUB);
        assert_eq!(claims["aud"], c["aud"]);
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + JWT_SVID_TTL);
        assert_eq!(claims["locus_tee"]["type"], "sev-snp");
        assert_eq!(claims["locus_residency"]["country"], "DE");
        assert_eq!(issued.body["expires_at"], NOW + JWT_SVID_TTL);
        // Near the WIT's end the JWT-SVID ends with it.
        let (late, _) = issue_kind(&f, "jwt-svid", NOW + 3500);
        assert_eq!(late.exp, NOW + 3600);
    }

    #[test]
    fn a_wit_svid_binds_the_per_svid_key_and_keeps_the_wits_claims_and_end() {
        let f = fx();
        let (issued, c) = issue_kind(&f, "wit-svid", NOW);
        let token = issued.body["wit"].as_str().expect("wit");
        let v = f
            .verifier
            .verify(token, NOW)
            .expect("verifies as a WIT of ours");
        let key = Jwk::from_value(&c["public_key"]).expect("jwk");
        assert_eq!(v.claims().cnf.key, key.key);
        assert_eq!(v.claims().sub.as_str(), SUB);
        assert_eq!(v.claims().exp, NOW + 3600);
        assert_eq!(v.claims().extra["locus_tee"]["type"], "sev-snp");
        assert_eq!(
            v.claims().extra[SVID_OF_CLAIM],
            f.verifier
                .verify(&f.wit, NOW)
                .expect("wit")
                .claims()
                .jti
                .clone()
                .expect("jti")
                .as_str()
        );
        assert_eq!(issued.svid_jkt, Some(key.thumbprint_b64()));
    }

    #[test]
    fn a_wit_svid_does_not_authorize_further_svid_requests() {
        let f = fx();
        let dir = tempfile::tempdir().expect("tmp");
        let jwt = KeySet::ensure_kind(dir.path(), KeyKind::JwtSvid).expect("jwt");
        let ca = SpiffeCa::ensure(dir.path(), "locus.example", NOW - 100).expect("ca");
        let svid_key = Es256SigningKey::generate().expect("key");
        let mut c = claims(&f, "wit-svid");
        c["public_key"] = svid_key.public_jwk().to_value();
        let a = auth(&f, &c);
        let order = check(&a, None, &f.keys, &ReplayCache::default(), NOW).expect("check");
        let signers = Signers {
            issuer: ISS,
            wit: &f.issuer,
            jwt: jwt.active(NOW),
            ca: ca.active(NOW),
        };
        let issued = issue(&a, &order, &signers, NOW).expect("issue");
        let wit_svid = issued.body["wit"].as_str().expect("wit").to_string();
        // The workload holds the WIT-SVID's key: it signs a request for an X.509-SVID with it.
        let holder = Fx {
            issuer: WitIssuer::new(
                Es256SigningKey::generate().expect("key").with_kid("unused"),
                None,
            )
            .expect("issuer"),
            agent: svid_key,
            wit: wit_svid,
            keys: f.keys.clone(),
            verifier: wit_verifier("locus.example", ISS, f.keys.clone()).expect("verifier"),
        };
        let c = claims(&holder, "x509-svid");
        let err = authenticate(&body(&holder, &c), &holder.verifier, NOW).expect_err("refused");
        assert_eq!(err.code, ErrorCode::CredentialInvalid);
        assert!(err.message.contains("WIT-SVID"), "{}", err.message);
    }

    #[test]
    fn an_x509_svid_ends_with_the_wit_and_is_for_the_per_svid_key() {
        use der::Decode as _;
        let f = fx();
        let (issued, c) = issue_kind(&f, "x509-svid", NOW);
        let chain = issued.body["x509_svid"].as_array().expect("chain");
        assert_eq!(chain.len(), 1);
        use base64::Engine as _;
        let der_bytes = base64::engine::general_purpose::STANDARD
            .decode(chain[0].as_str().expect("b64"))
            .expect("std base64");
        let cert = x509_cert::Certificate::from_der(&der_bytes).expect("cert");
        let v = &cert.tbs_certificate.validity;
        assert_eq!(v.not_after.to_unix_duration().as_secs(), NOW + 3600);
        // The WIT was issued at NOW - 10: the certificate starts there, not X509_BACKDATE before NOW.
        assert_eq!(v.not_before.to_unix_duration().as_secs(), NOW - 10);
        // Later, the back-dating applies.
        let (later, _) = issue_kind(&f, "x509-svid", NOW + 600);
        let later_der = base64::engine::general_purpose::STANDARD
            .decode(later.body["x509_svid"][0].as_str().expect("b64"))
            .expect("std base64");
        let later_cert = x509_cert::Certificate::from_der(&later_der).expect("cert");
        assert_eq!(
            later_cert
                .tbs_certificate
                .validity
                .not_before
                .to_unix_duration()
                .as_secs(),
            NOW + 600 - X509_BACKDATE
        );
        let key = Jwk::from_value(&c["public_key"]).expect("jwk");
        assert_eq!(
            cert.tbs_certificate.subject_public_key_info,
            x509::spki_p256(&key.key).expect("spki")
        );
        assert_eq!(
            issued.id,
            hex::encode(cert.tbs_certificate.serial_number.as_bytes())
        );
    }
}
