//! JWT-SVID validation (the SPIFFE JWT-SVID standard), for relying parties and for the agent's `ValidateJWTSVID`.
//!
//! 1. Compact JWS, strict ([`CompactJws::parse`]); `typ`, when present, is `JWT` or `JOSE` (§2.3).
//! 2. `alg` is one of the JWT-SVID algorithms this crate implements (ES256, ES384, RS256, PS256 — §2.1 excludes
//!    EdDSA); `kid` is present (§2.2) and names a key of the trust domain's JWT bundle whose `use`, if any, is
//!    `jwt-svid`; the key fits `alg` and, when it has an `alg`, that `alg` is the header's.
//! 3. The signature verifies over the received bytes.
//! 4. `sub` is a SPIFFE ID of the bundle's trust domain (§3.1); `aud` (string or array) contains the relying
//!    party's audience (§3.2); `exp` is present and `now` is before it (§3.3); `nbf`, when present, has passed.

use serde_json::{Map, Value};

use crate::error::WimseError;
use crate::id::{TrustDomain, WorkloadId};
use crate::jwk::{Alg, Jwks};
use crate::jws::CompactJws;
use crate::wit::numeric_date_value;

/// JWKS `use` value of JWT-SVID signing keys in a SPIFFE bundle.
pub const USE_JWT_SVID: &str = "jwt-svid";

/// The JOSE `typ` of the agent's signed request for an SVID (`POST /v1/svid`), which only the verifier accepts.
pub const SVID_REQUEST_TYP: &str = "locus-svid-request+jwt";
/// Most audiences in one JWT-SVID request, and the longest audience (bytes): one bound for the agent, which refuses
/// a request the verifier would refuse, and for the verifier.
pub const MAX_AUDIENCES: usize = 16;
/// See [`MAX_AUDIENCES`].
pub const MAX_AUDIENCE_LEN: usize = 1024;

/// The algorithms a JWT-SVID may use that this crate verifies.
pub const JWT_SVID_ALGS: &[Alg] = &[Alg::Es256, Alg::Es384, Alg::Rs256, Alg::Ps256];

/// A JWT-SVID that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedJwtSvid {
    /// `sub`.
    pub id: WorkloadId,
    /// Every claim, as signed.
    pub claims: Map<String, Value>,
}

/// Validate `token` for `audience` against the JWT bundle `keys` of `trust_domain` at `now` (Unix seconds).
pub fn validate_jwt_svid(
    token: &str,
    audience: &str,
    keys: &Jwks,
    trust_domain: &TrustDomain,
    now: u64,
) -> Result<VerifiedJwtSvid, WimseError> {
    // Step 1: shape and typ.
    let jws = CompactJws::parse(token)?;
    if let Some(typ) = jws.header.typ.as_deref() {
        if typ != "JWT" && typ != "JOSE" {
            return Err(WimseError::TypInvalid {
                expected: "JWT",
                got: Some(typ.to_owned()),
            });
        }
    }
    // Step 2: algorithm and key.
    let alg = jws.alg_allowed(JWT_SVID_ALGS)?;
    let kid = jws.header.kid.as_deref().ok_or(WimseError::KidMissing)?;
    let key = keys
        .find(kid)
        .filter(|k| k.key_use.as_deref().is_none_or(|u| u == USE_JWT_SVID))
        .ok_or_else(|| WimseError::KidUnknown {
            kid: kid.to_owned(),
        })?;
    if let Some(key_alg) = key.alg.as_deref() {
        if key_alg != alg.name() {
            return Err(WimseError::AlgMismatch {
                expected: key_alg.to_owned(),
                got: alg.name().to_owned(),
            });
        }
    }
    // Step 3: signature over the received bytes (a key that does not fit `alg` is refused there, before any crypto).
    jws.verify_with(alg, &key.key)?;
    // Step 4: claims.
    let claims = jws.claims()?;
    let sub = match claims.get("sub") {
        Some(Value::String(s)) => WorkloadId::parse(s)?,
        Some(_) => return Err(WimseError::claim("sub", "not a string")),
        None => return Err(WimseError::ClaimMissing { claim: "sub" }),
    };
    if !sub.is_spiffe() {
        return Err(WimseError::claim("sub", "not a SPIFFE ID"));
    }
    if sub.trust_domain() != *trust_domain {
        return Err(WimseError::TrustDomainUnknown {
            trust_domain: sub.trust_domain_str().to_owned(),
        });
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == audience,
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
            list.iter().any(|a| a.as_str() == Some(audience))
        }
        Some(_) => {
            return Err(WimseError::claim(
                "aud",
                "not a string or an array of strings",
            ))
        }
        None => return Err(WimseError::ClaimMissing { claim: "aud" }),
    };
    if !aud_ok {
        return Err(WimseError::AudMismatch {
            aud: audience.to_owned(),
        });
    }
    let exp = numeric_date_value(claims.get("exp"), "exp")?
        .ok_or(WimseError::ClaimMissing { claim: "exp" })?;
    if now >= exp {
        return Err(WimseError::TokenExpired { exp, now });
    }
    if let Some(nbf) = numeric_date_value(claims.get("nbf"), "nbf")? {
        if now < nbf {
            return Err(WimseError::TokenNotYetValid {
                claim: "nbf",
                value: nbf,
                now,
            });
        }
    }
    Ok(VerifiedJwtSvid { id: sub, claims })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::{sign_compact, Es256SigningKey};
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn setup() -> (Es256SigningKey, Jwks, TrustDomain) {
        let key = Es256SigningKey::generate().unwrap().with_kid("j1");
        let jwks = Jwks::new(vec![key.public_jwk().with_use(USE_JWT_SVID)]);
        (key, jwks, TrustDomain::parse("example.org").unwrap())
    }

    fn token(key: &Es256SigningKey, header: Value, claims: Value) -> String {
        sign_compact(key, &header, &claims).unwrap()
    }

    fn good_claims() -> Value {
        json!({"sub":"spiffe://example.org/svc","aud":["https://a","https://b"],"exp":NOW + 60,"iat":NOW})
    }

    #[test]
    fn a_valid_jwt_svid_gives_its_spiffe_id_and_claims() {
        let (key, jwks, td) = setup();
        let t = token(
            &key,
            json!({"alg":"ES256","kid":"j1","typ":"JWT"}),
            good_claims(),
        );
        let ok = validate_jwt_svid(&t, "https://b", &jwks, &td, NOW).unwrap();
        assert_eq!(ok.id.as_str(), "spiffe://example.org/svc");
        assert_eq!(ok.claims["iat"], NOW);
        // `aud` as a single string, no typ.
        let mut c = good_claims();
        c["aud"] = json!("https://a");
        let t = token(&key, json!({"alg":"ES256","kid":"j1"}), c);
        assert!(validate_jwt_svid(&t, "https://a", &jwks, &td, NOW).is_ok());
    }

    #[test]
    fn every_failed_check_has_its_code() {
        let (key, jwks, td) = setup();
        let other = Es256SigningKey::generate().unwrap().with_kid("j1");
        let h = json!({"alg":"ES256","kid":"j1","typ":"JWT"});
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = good_claims();
            f(&mut c);
            token(&key, h.clone(), c)
        };
        let cases: Vec<(String, &str, u64, &str)> = vec![
            ("x.y".into(), "https://a", NOW, "token_malformed"),
            (
                token(
                    &key,
                    json!({"alg":"ES256","kid":"j1","typ":"wit+jwt"}),
                    good_claims(),
                ),
                "https://a",
                NOW,
                "typ_invalid",
            ),
            (
                token(&key, json!({"alg":"ES256","typ":"JWT"}), good_claims()),
                "https://a",
                NOW,
                "kid_missing",
            ),
            (
                token(&key, json!({"alg":"ES256","kid":"nope"}), good_claims()),
                "https://a",
                NOW,
                "kid_unknown",
            ),
            (
                token(&other, h.clone(), good_claims()),
                "https://a",
                NOW,
                "signature_invalid",
            ),
            (
                with(&|c| c["aud"] = json!(["https://x"])),
                "https://a",
                NOW,
                "aud_mismatch",
            ),
            (
                with(&|c| {
                    c.as_object_mut().unwrap().remove("aud");
                }),
                "https://a",
                NOW,
                "claim_missing",
            ),
            (
                with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                "https://a",
                NOW,
                "claim_missing",
            ),
            (
                with(&|c| c["sub"] = json!("spiffe://other.org/svc")),
                "https://a",
                NOW,
                "trust_domain_unknown",
            ),
            (
                with(&|c| c["sub"] = json!("wimse://example.org/svc")),
                "https://a",
                NOW,
                "claim_invalid",
            ),
            (
                with(&|c| c["sub"] = json!("spiffe://example.org/%61")),
                "https://a",
                NOW,
                "identifier_invalid",
            ),
            (
                with(&|c| c["nbf"] = json!(NOW + 10)),
                "https://a",
                NOW,
                "token_not_yet_valid",
            ),
            (good_token(&key), "https://a", NOW + 60, "token_expired"),
        ];
        for (t, aud, now, code) in cases {
            let err = validate_jwt_svid(&t, aud, &jwks, &td, now).expect_err(code);
            assert_eq!(err.code(), code, "{err}");
        }
        // A key published for another use is not a JWT-SVID key.
        let wit_use = Jwks::new(vec![key.public_jwk().with_use("wit-svid")]);
        let err =
            validate_jwt_svid(&good_token(&key), "https://a", &wit_use, &td, NOW).unwrap_err();
        assert_eq!(err.code(), "kid_unknown");
    }

    fn good_token(key: &Es256SigningKey) -> String {
        token(
            key,
            json!({"alg":"ES256","kid":"j1","typ":"JWT"}),
            good_claims(),
        )
    }
}
