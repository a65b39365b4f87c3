//! A credential the agent holds: the WIT, its claims, the optional EAR, and the private key the WIT's `cnf.jwk`
//! names. The key is a `locus_wimse::Es256SigningKey`: generated in memory, its PKCS#8 kept in a `Zeroizing` buffer
//! (wiped on drop), never exported or written anywhere. Dropping the credential drops the key.
//!
//! [`crate::attest::obtain_credential`] verifies the WIT against the verifier's JWKS first
//! ([`crate::client::VerifierClient::verify_wit`]); [`Credential::from_response`] then checks that its `cnf.jwk` is
//! *our* key and its `exp` lies ahead, because serving a token bound to someone else's key, or an expired one, would
//! be useless at best.

use std::fmt;

use locus_wimse::jws::CompactJws;
use locus_wimse::wpt::{create_wpt, WptRequest};
use locus_wimse::{Alg, Es256SigningKey, Jwk};
use serde_json::{Map, Value};

use crate::client::AttestResponse;
use crate::error::AgentError;
use crate::spiffe::request::{SvidRequest, SVID_REQUEST_TYP};

/// A WIT with its key.
pub struct Credential {
    wit: String,
    claims: Map<String, Value>,
    ear: Option<String>,
    /// `iat` of the WIT (the receipt time when the WIT has none).
    iat: u64,
    /// `exp` of the WIT: the credential is served strictly before this second.
    exp: u64,
    /// When the agent received it (Unix seconds, agent clock): renewal is scheduled from the earlier of this and `iat`
    /// so a verifier clock ahead of ours cannot push renewal past expiry.
    received_at: u64,
    key: Es256SigningKey,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .field(
                "key_thumbprint",
                &Jwk::new(self.key.public_key()).thumbprint_b64(),
            )
            .finish_non_exhaustive()
    }
}

fn u64_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, AgentError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            AgentError::BadResponse(format!("WIT claim {name} is not a non-negative integer"))
        }),
    }
}

impl Credential {
    /// The public JWK the agent sends for `key` (with `"alg":"ES256"`).
    pub fn public_jwk_of(key: &Es256SigningKey) -> Jwk {
        Jwk::new(key.public_key()).with_alg(Alg::Es256)
    }

    /// Accept the verifier's answer for `key`, received at `now` (Unix seconds).
    pub fn from_response(
        resp: AttestResponse,
        key: Es256SigningKey,
        now: u64,
    ) -> Result<Self, AgentError> {
        let jws = CompactJws::parse(&resp.wit)
            .map_err(|e| AgentError::BadResponse(format!("WIT is not a compact JWS: {e}")))?;
        let claims = jws
            .claims()
            .map_err(|e| AgentError::BadResponse(format!("WIT claims: {e}")))?;
        let exp = u64_claim(&claims, "exp")?
            .ok_or_else(|| AgentError::BadResponse("WIT has no exp".into()))?;
        let iat = u64_claim(&claims, "iat")?.unwrap_or(now);
        if exp <= iat {
            return Err(AgentError::BadResponse(format!(
                "WIT exp {exp} is not after iat {iat}"
            )));
        }
        if exp <= now {
            return Err(AgentError::BadResponse(format!(
                "WIT already expired (exp {exp}, now {now})"
            )));
        }
        let cnf = claims
            .get("cnf")
            .and_then(|c| c.get("jwk"))
            .ok_or_else(|| AgentError::BadResponse("WIT has no cnf.jwk".into()))?;
        let cnf = Jwk::from_value(cnf)
            .map_err(|e| AgentError::BadResponse(format!("WIT cnf.jwk: {e}")))?;
        let ours = Self::public_jwk_of(&key);
        if cnf.thumbprint_sha256() != ours.thumbprint_sha256() {
            return Err(AgentError::CnfMismatch {
                expected: ours.thumbprint_b64(),
                got: cnf.thumbprint_b64(),
            });
        }
        Ok(Self {
            wit: resp.wit,
            claims,
            ear: resp.ear,
            iat,
            exp,
            received_at: now,
            key,
        })
    }

    /// The WIT, exactly as issued.
    pub fn wit(&self) -> &str {
        &self.wit
    }

    /// The WIT's claims (decoded, as issued).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The EAR, if the verifier sent one.
    pub fn ear(&self) -> Option<&str> {
        self.ear.as_deref()
    }

    /// `iat` (or receipt time).
    pub fn iat(&self) -> u64 {
        self.iat
    }

    /// `exp`.
    pub fn exp(&self) -> u64 {
        self.exp
    }

    /// Whether the WIT may be served at `now` (Unix seconds): strictly before `exp`.
    pub fn is_valid_at(&self, now: u64) -> bool {
        now < self.exp
    }

    /// When to renew, in Unix seconds: `fraction` (e.g. 2/3) of the lifetime after the earlier of `iat` and receipt.
    pub fn renew_at(&self, fraction: f64) -> f64 {
        let start = self.iat.min(self.received_at) as f64;
        let life = self.exp.saturating_sub(self.iat) as f64;
        start + fraction.clamp(0.0, 1.0) * life
    }

    /// The public JWK of the key this WIT is bound to.
    pub fn public_jwk(&self) -> Jwk {
        Self::public_jwk_of(&self.key)
    }

    /// Sign an HTTP request with this WIT's key (draft-ietf-wimse-http-signature). The signature must cover this
    /// credential's own `Workload-Identity-Token`, carried by `req`: a signature for another WIT is refused.
    pub fn sign_http_request(
        &self,
        req: &locus_wimse::http_sig::HttpRequest,
        params: &locus_wimse::http_sig::SignatureParams,
    ) -> Result<locus_wimse::http_sig::SignatureHeaders, AgentError> {
        let wit_covered = params
            .covered
            .contains(&locus_wimse::http_sig::Component::new(
                "workload-identity-token",
            ));
        let carries_own = req
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("workload-identity-token") && v == &self.wit);
        if !wit_covered || !carries_own {
            return Err(AgentError::Internal(
                "an HTTP signature must cover this credential's own WIT".into(),
            ));
        }
        locus_wimse::http_sig::sign(
            &self.key,
            locus_wimse::http_sig::Message::Request(req),
            params,
        )
        .map_err(|e| AgentError::Internal(format!("signing the HTTP request: {e}")))
    }

    /// The private key's PKCS#8 document, only for the tests that scan what the agent writes for key bytes. Nothing
    /// in the agent calls it: the key never leaves memory.
    #[doc(hidden)]
    pub fn danger_private_pkcs8_for_leak_tests(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(self.key.to_pkcs8().to_vec())
    }

    /// Sign a WPT for this WIT with its key. `req.wth` must be the hash of [`Credential::wit`] (use
    /// `WptRequest::new(aud, cred.wit(), exp)`).
    pub fn sign_wpt(&self, req: &WptRequest) -> Result<String, AgentError> {
        create_wpt(&self.key, req)
            .map_err(|e| AgentError::Internal(format!("signing the WPT: {e}")))
    }

    /// Sign an SVID request (`typ` `locus-svid-request+jwt`) with the attested key, proving to the verifier that the
    /// agent holds the key this WIT binds. Refused: a request for another WIT (`wth`), and one naming this
    /// credential's own key as the per-SVID key — the attested key is never certified for a workload to hold.
    pub fn sign_svid_request(&self, req: &SvidRequest) -> Result<String, AgentError> {
        if req.wth() != locus_wimse::wpt::token_hash(&self.wit) {
            return Err(AgentError::Internal(
                "SVID request built for another WIT".into(),
            ));
        }
        if let Some(k) = req.public_key() {
            if k.thumbprint_sha256() == self.public_jwk().thumbprint_sha256() {
                return Err(AgentError::Internal(
                    "an SVID request may not name the attested key".into(),
                ));
            }
        }
        self.key
            .sign_jws(SVID_REQUEST_TYP, &req.claims())
            .map_err(|e| AgentError::Internal(format!("signing the SVID request: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(claims: &Value) -> String {
        let h = locus_wimse::b64::encode(br#"{"alg":"ES256","typ":"wit+jwt","kid":"k"}"#);
        let p = locus_wimse::b64::encode(claims.to_string());
        format!("{h}.{p}.{}", locus_wimse::b64::encode([1u8; 64]))
    }

    fn response(wit: String) -> AttestResponse {
        AttestResponse {
            wit,
            ear: None,
            expires_at: None,
        }
    }

    fn key() -> Es256SigningKey {
        Es256SigningKey::generate().expect("key")
    }

    #[test]
    fn accepts_a_wit_bound_to_our_key_and_schedules_renewal_at_two_thirds() {
        let k = key();
        let jwk = Credential::public_jwk_of(&k).to_value();
        let wit = token(&json!({"sub":"spiffe://e.org/w","iat":1000,"exp":1300,"cnf":{"jwk":jwk}}));
        let c = Credential::from_response(response(wit.clone()), k, 1001).expect("accepted");
        assert_eq!((c.iat(), c.exp(), c.wit()), (1000, 1300, wit.as_str()));
        assert!(c.is_valid_at(1299) && !c.is_valid_at(1300));
        assert!((c.renew_at(2.0 / 3.0) - 1200.0).abs() < 1e-9);
    }

    #[test]
    fn svid_requests_are_signed_by_the_attested_key_for_this_wit_and_never_for_the_attested_key() {
        use crate::spiffe::request::SvidKind;
        let k = key();
        let attested = Credential::public_jwk_of(&k);
        let wit = token(&json!({"iat":1000,"exp":1300,"cnf":{"jwk":attested.to_value()}}));
        let c = Credential::from_response(response(wit.clone()), k, 1001).expect("accepted");
        let svid_key = key().public_jwk();
        let req = SvidRequest::for_key(SvidKind::X509, &wit, svid_key, 1001).expect("request");
        let jws = c.sign_svid_request(&req).expect("signed");
        let parsed = locus_wimse::jws::CompactJws::parse(&jws).expect("jws");
        assert_eq!(parsed.header.typ.as_deref(), Some("locus-svid-request+jwt"));
        assert_eq!(parsed.header.kid, None);
        parsed
            .verify_with(locus_wimse::Alg::Es256, &attested.key)
            .expect("verifies under the WIT's cnf.jwk");
        assert_eq!(parsed.claims().expect("claims")["kind"], "x509-svid");
        let other_wit = SvidRequest::for_key(SvidKind::X509, "x.y.z", key().public_jwk(), 1001)
            .expect("request");
        assert_eq!(
            c.sign_svid_request(&other_wit)
                .expect_err("other WIT")
                .code(),
            "internal"
        );
        let self_cert = SvidRequest::for_key(SvidKind::Wit, &wit, attested, 1001).expect("request");
        assert_eq!(
            c.sign_svid_request(&self_cert)
                .expect_err("attested key")
                .code(),
            "internal"
        );
    }

    #[test]
    fn verifier_clock_ahead_does_not_push_renewal_past_expiry() {
        let k = key();
        let jwk = Credential::public_jwk_of(&k).to_value();
        // iat 30 s ahead of our clock: renewal is scheduled from our receipt time.
        let wit = token(&json!({"iat":1030,"exp":1090,"cnf":{"jwk":jwk}}));
        let c = Credential::from_response(response(wit), k, 1000).expect("accepted");
        assert!((c.renew_at(2.0 / 3.0) - 1040.0).abs() < 1e-9);
    }

    #[test]
    fn malformed_or_unusable_wits_are_refused_with_their_codes() {
        let other = Credential::public_jwk_of(&key()).to_value();
        let k = key();
        let ours = Credential::public_jwk_of(&k).to_value();
        let cases = [
            ("not-a-jws".to_string(), "verifier_response_invalid"),
            (
                token(&json!({"iat":1000,"cnf":{"jwk":ours}})),
                "verifier_response_invalid",
            ),
            (
                token(&json!({"iat":1000,"exp":"soon","cnf":{"jwk":ours}})),
                "verifier_response_invalid",
            ),
            (
                token(&json!({"iat":1000,"exp":1000,"cnf":{"jwk":ours}})),
                "verifier_response_invalid",
            ),
            (
                token(&json!({"iat":900,"exp":1000,"cnf":{"jwk":ours}})),
                "verifier_response_invalid",
            ),
            (
                token(&json!({"iat":1000,"exp":1300})),
                "verifier_response_invalid",
            ),
            (
                token(&json!({"iat":1000,"exp":1300,"cnf":{"jwk":{"kty":"EC"}}})),
                "verifier_response_invalid",
            ),
            (
                token(&json!({"iat":1000,"exp":1300,"cnf":{"jwk":other}})),
                "cnf_mismatch",
            ),
        ];
        for (wit, code) in cases {
            let k = Es256SigningKey::from_pkcs8(k.to_pkcs8()).expect("same key");
            let err = Credential::from_response(response(wit.clone()), k, 1000).expect_err(&wit);
            assert_eq!(err.code(), code, "{wit}");
        }
    }
}
