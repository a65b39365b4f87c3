//! The SVID request the agent signs with the attested key (`POST /v1/svid`'s `request` member).
//!
//! The agent alone builds every claim: the kind, `wth` (the hash of its own WIT), `iat`, a random `jti`, the public
//! key of the per-SVID key it generated, and (JWT-SVID only) the audiences. A workload chooses nothing here but the
//! audiences of a JWT-SVID, and the explicit `typ` `locus-svid-request+jwt` keeps the signature from being read as a
//! WPT, a proximity answer or anything else the attested key signs.

use locus_wimse::jws::random_jti;
use locus_wimse::wpt::token_hash;
use locus_wimse::Jwk;
use serde_json::{json, Value};

use crate::error::AgentError;

/// The request's `typ` and the audience bounds are the verifier's own.
pub use locus_wimse::jwt_svid::{MAX_AUDIENCES, MAX_AUDIENCE_LEN, SVID_REQUEST_TYP};

/// Which SVID to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvidKind {
    /// An X.509-SVID for the per-SVID key.
    X509,
    /// A JWT-SVID for the audiences (signed by the verifier; no key of the agent's).
    Jwt,
    /// A WIT-SVID whose `cnf.jwk` is the per-SVID key.
    Wit,
}

impl SvidKind {
    /// The `kind` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SvidKind::X509 => "x509-svid",
            SvidKind::Jwt => "jwt-svid",
            SvidKind::Wit => "wit-svid",
        }
    }
}

/// The claims of one SVID request, before signing.
#[derive(Debug, Clone, PartialEq)]
pub struct SvidRequest {
    kind: SvidKind,
    wth: String,
    iat: u64,
    jti: String,
    public_key: Option<Jwk>,
    aud: Vec<String>,
}

impl SvidRequest {
    /// Ask for an X.509-SVID (`kind` x509-svid) or WIT-SVID (`kind` wit-svid) for `public_key`, for the holder of
    /// `wit`, at `now`.
    pub fn for_key(
        kind: SvidKind,
        wit: &str,
        public_key: Jwk,
        now: u64,
    ) -> Result<Self, AgentError> {
        if kind == SvidKind::Jwt {
            return Err(AgentError::Internal(
                "a JWT-SVID request names audiences, not a key".into(),
            ));
        }
        Ok(Self {
            kind,
            wth: token_hash(wit),
            iat: now,
            jti: random_jti().map_err(|e| AgentError::Internal(format!("jti: {e}")))?,
            public_key: Some(public_key),
            aud: Vec::new(),
        })
    }

    /// Ask for a JWT-SVID for `aud` (1 to [`MAX_AUDIENCES`] non-empty values of at most [`MAX_AUDIENCE_LEN`] bytes,
    /// without control characters) for the holder of `wit`, at `now`. The `Err` text says which rule an audience
    /// broke (the Workload API answers it as `InvalidArgument`).
    pub fn jwt(wit: &str, aud: Vec<String>, now: u64) -> Result<Self, String> {
        check_audiences(&aud)?;
        Ok(Self {
            kind: SvidKind::Jwt,
            wth: token_hash(wit),
            iat: now,
            jti: random_jti().map_err(|e| format!("jti: {e}"))?,
            public_key: None,
            aud,
        })
    }

    /// `wth`: the base64url SHA-256 of the WIT the request is for.
    pub fn wth(&self) -> &str {
        &self.wth
    }

    /// The per-SVID public key (X.509- and WIT-SVID requests).
    pub fn public_key(&self) -> Option<&Jwk> {
        self.public_key.as_ref()
    }

    /// The JWS payload.
    pub fn claims(&self) -> Value {
        let mut claims = json!({
            "kind": self.kind.as_str(),
            "wth": self.wth,
            "iat": self.iat,
            "jti": self.jti,
        });
        if let Some(k) = &self.public_key {
            claims["public_key"] = k.to_value();
        }
        if self.kind == SvidKind::Jwt {
            claims["aud"] = json!(self.aud);
        }
        claims
    }
}

/// The audience rules of [`SvidRequest::jwt`].
pub fn check_audiences(aud: &[String]) -> Result<(), String> {
    if aud.is_empty() {
        return Err("at least one audience is required".into());
    }
    if aud.len() > MAX_AUDIENCES {
        return Err(format!("at most {MAX_AUDIENCES} audiences"));
    }
    for a in aud {
        if a.is_empty() || a.len() > MAX_AUDIENCE_LEN {
            return Err(format!("an audience is 1 to {MAX_AUDIENCE_LEN} bytes"));
        }
        if a.chars().any(char::is_control) {
            return Err("an audience contains control characters".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use locus_wimse::Es256SigningKey;

    #[test]
    fn claims_carry_kind_wth_and_the_key_or_the_audiences() {
        let key = Es256SigningKey::generate().expect("key").public_jwk();
        let x = SvidRequest::for_key(SvidKind::X509, "a.b.c", key.clone(), 100).expect("x509");
        let c = x.claims();
        assert_eq!(c["kind"], "x509-svid");
        assert_eq!(c["wth"], token_hash("a.b.c"));
        assert_eq!(c["iat"], 100);
        assert_eq!(c["public_key"], key.to_value());
        assert!(c.get("aud").is_none());
        assert_eq!(
            locus_wimse::b64::decode(c["jti"].as_str().expect("jti"))
                .map(|j| j.len())
                .ok(),
            Some(16)
        );
        let j = SvidRequest::jwt("a.b.c", vec!["https://svc".into()], 100).expect("jwt");
        assert_eq!(j.claims()["kind"], "jwt-svid");
        assert_eq!(j.claims()["aud"], json!(["https://svc"]));
        assert!(j.claims().get("public_key").is_none());
        assert!(SvidRequest::for_key(SvidKind::Jwt, "a.b.c", key, 1).is_err());
    }

    #[test]
    fn audiences_are_bounded() {
        assert!(check_audiences(&[]).is_err());
        assert!(check_audiences(&["".into()]).is_err());
        assert!(check_audiences(&["a\nb".into()]).is_err());
        assert!(check_audiences(&vec!["a".to_string(); MAX_AUDIENCES + 1]).is_err());
        assert!(check_audiences(&["x".repeat(MAX_AUDIENCE_LEN + 1)]).is_err());
        assert!(check_audiences(&["spiffe://td/svc".into(), "https://x".into()]).is_ok());
    }
}
