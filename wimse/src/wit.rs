//! Workload Identity Tokens (draft-ietf-wimse-workload-creds-03 §3; SPIFFE WIT-SVID).
//!
//! Issuance: ES256, header `{"alg":"ES256","kid":…,"typ":"wit+jwt"}`, claims `cnf.jwk` (with `alg`), `exp`, `iat`,
//! `iss`, `jti` (128 random bits), `sub` and caller extras (`locus_tee`, `locus_residency`). With a `spiffe://`
//! subject such a token is also a WIT-SVID (ES256, `kid`, no `aud`).
//!
//! Verification follows draft-ietf-wimse-workload-creds:
//! 1. compact JWS ABNF;
//! 2. `typ` = `wit+jwt`, `alg` on the allow-list;
//! 3. `sub` parsed as a Workload Identifier before any lookup;
//! 4. keys configured for that trust domain, selected by `kid` (never fetched from the token);
//! 5. signature over the received `header.payload`;
//! 6. `exp` (bounded skew), `nbf`/`iat` not in the future, lifetime (`exp` − `iat`, and `exp` − now) within the
//!    policy's maximum, `cnf.jwk` with an allowed `alg` fitting the key; issuer allow-list when configured; no `aud`
//!    unless allowed. Unknown claims are kept, not interpreted.
//!
//! The default [`WitPolicy`] is strict (ES256, `kid`, no `aud`, 24 h at most); loosening it takes a `danger_` method.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::WimseError;
use crate::id::{TrustDomain, WorkloadId};
use crate::jwk::{Alg, Jwk, Jwks, PublicKey};
use crate::jws::{random_jti, sign_compact, typ_matches, CompactJws, Es256SigningKey, OutHeader};

/// The WIT `typ`.
pub const WIT_TYP: &str = "wit+jwt";
/// HTTP header carrying the WIT.
pub const WIT_HEADER: &str = "Workload-Identity-Token";
/// Largest clock skew a policy may allow, seconds.
pub const MAX_CLOCK_SKEW: u64 = 300;
/// Claims the issuer sets itself; extras may not override them.
const RESERVED: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "cnf"];

/// Decoded WIT claims.
#[derive(Debug, Clone, PartialEq)]
pub struct WitClaims {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`, the Workload Identifier.
    pub sub: WorkloadId,
    /// `exp`.
    pub exp: u64,
    /// `iat`.
    pub iat: Option<u64>,
    /// `nbf`.
    pub nbf: Option<u64>,
    /// `jti`.
    pub jti: Option<String>,
    /// `cnf.jwk`: the workload's proof-of-possession key, its `alg` present.
    pub cnf: Jwk,
    /// Every other claim, uninterpreted (`locus_tee`, `locus_residency`, …).
    pub extra: Map<String, Value>,
}

impl WitClaims {
    /// `cnf.jwk.alg`, the algorithm the proof of possession must use (always present after verification).
    pub fn pop_alg(&self) -> &str {
        self.cnf.alg.as_deref().unwrap_or_default()
    }
}

/// A WIT that passed every check of [`WitVerifier::verify`].
#[derive(Debug, Clone)]
pub struct VerifiedWit {
    raw: String,
    alg: Alg,
    kid: Option<String>,
    claims: WitClaims,
}

impl VerifiedWit {
    /// The token exactly as received (the input of `wth`).
    pub fn raw(&self) -> &str {
        &self.raw
    }
    /// The signing algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }
    /// The `kid` of the issuer key used.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
    /// The claims.
    pub fn claims(&self) -> &WitClaims {
        &self.claims
    }
    /// The authenticated identifier.
    pub fn id(&self) -> &WorkloadId {
        &self.claims.sub
    }
    /// Consume into the claims.
    pub fn into_claims(self) -> WitClaims {
        self.claims
    }
}

/// The claims of a WIT as signed, borrowed: the registered claims in this order, then the extra ones in theirs.
struct OutClaims<'a, T> {
    cnf: &'a Jwk,
    exp: u64,
    iat: u64,
    iss: Option<&'a str>,
    jti: &'a str,
    sub: &'a str,
    extra: &'a [(&'a str, T)],
}

impl<T: Serialize> Serialize for OutClaims<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        #[derive(Serialize)]
        struct OutCnf<'a> {
            jwk: &'a Jwk,
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("cnf", &OutCnf { jwk: self.cnf })?;
        m.serialize_entry("exp", &self.exp)?;
        m.serialize_entry("iat", &self.iat)?;
        if let Some(iss) = self.iss {
            m.serialize_entry("iss", iss)?;
        }
        m.serialize_entry("jti", self.jti)?;
        m.serialize_entry("sub", self.sub)?;
        for (name, value) in self.extra {
            m.serialize_entry(name, value)?;
        }
        m.end()
    }
}

/// A WIT as [`WitIssuer::issue_token`] signed it.
#[derive(Debug, Clone)]
pub struct IssuedWit {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `cnf` key, with the `alg` stamped.
    pub cnf: Jwk,
}

/// Issues WITs with one ES256 key.
#[derive(Debug)]
pub struct WitIssuer {
    key: Es256SigningKey,
    iss: Option<String>,
}

impl WitIssuer {
    /// An issuer signing with `key` (which must carry a `kid`), stamping `iss` when given.
    pub fn new(key: Es256SigningKey, iss: Option<String>) -> Result<Self, WimseError> {
        if key.kid().is_none() {
            return Err(WimseError::RequestInvalid {
                detail: "WIT signing key needs a kid".into(),
            });
        }
        Ok(Self { key, iss })
    }

    /// The signing key.
    pub fn key(&self) -> &Es256SigningKey {
        &self.key
    }

    /// The public JWK to publish (`use` = `wit-svid`, `kid`, `alg` ES256).
    pub fn public_jwk(&self) -> Jwk {
        self.key.public_jwk().with_use(crate::jwk::USE_WIT_SVID)
    }

    /// Issue a WIT for `sub` bound to `cnf` (its `alg` is set from the key type when absent, ES256 for P-256),
    /// valid from `iat` to `exp`, with `extra` claims added. Returns the token and its claims.
    pub fn issue(
        &self,
        sub: &WorkloadId,
        cnf: &Jwk,
        iat: u64,
        exp: u64,
        extra: &Map<String, Value>,
    ) -> Result<(String, WitClaims), WimseError> {
        let IssuedWit { token, jti, cnf } = self.issue_token(sub, cnf, iat, exp, extra)?;
        Ok((
            token,
            WitClaims {
                iss: self.iss.clone(),
                sub: sub.clone(),
                exp,
                iat: Some(iat),
                nbf: None,
                jti: Some(jti),
                cnf,
                extra: extra.clone(),
            },
        ))
    }

    /// [`WitIssuer::issue`] for an issuer that needs only the token, its `jti` and the `cnf` key as stamped (the
    /// verifier, per request): the same token, without building [`WitClaims`].
    pub fn issue_token(
        &self,
        sub: &WorkloadId,
        cnf: &Jwk,
        iat: u64,
        exp: u64,
        extra: &Map<String, Value>,
    ) -> Result<IssuedWit, WimseError> {
        let extra: Vec<(&str, &Value)> = extra.iter().map(|(k, v)| (k.as_str(), v)).collect();
        self.issue_token_as(random_jti()?, sub, cnf, iat, exp, &extra)
    }

    /// [`WitIssuer::issue_token`] under a `jti` the caller drew with [`random_jti`] (128 random bits), for an issuer
    /// that records the token's `jti` before the signature is made, and with the extra claims as named values that
    /// serialize themselves (written in the given order, after the registered claims), so an issuer need not build a
    /// JSON tree per token. A name that is reserved or given twice is refused.
    pub fn issue_token_as<T: Serialize>(
        &self,
        jti: String,
        sub: &WorkloadId,
        cnf: &Jwk,
        iat: u64,
        exp: u64,
        extra: &[(&str, T)],
    ) -> Result<IssuedWit, WimseError> {
        if exp <= iat {
            return Err(WimseError::RequestInvalid {
                detail: "exp must be after iat".into(),
            });
        }
        if let Some((r, _)) = extra.iter().find(|(k, _)| RESERVED.contains(k)) {
            return Err(WimseError::RequestInvalid {
                detail: format!("extra claim {r:?} is reserved"),
            });
        }
        if let Some((i, (r, _))) = extra
            .iter()
            .enumerate()
            .find(|(i, (k, _))| extra[..*i].iter().any(|(seen, _)| seen == k))
        {
            return Err(WimseError::RequestInvalid {
                detail: format!("extra claim {r:?} is given twice (at {i})"),
            });
        }
        let mut cnf = cnf.clone();
        match cnf.known_alg() {
            Some(a) if cnf.key.fits(a) => {}
            Some(_) | None if cnf.alg.is_some() => {
                return Err(WimseError::RequestInvalid {
                    detail: "cnf alg does not fit the key or is unknown".into(),
                })
            }
            _ => cnf.alg = Some(cnf.key.default_alg().name().to_owned()),
        }
        cnf.key_use = None;
        let claims = OutClaims {
            cnf: &cnf,
            exp,
            iat,
            iss: self.iss.as_deref(),
            jti: &jti,
            sub: sub.as_str(),
            extra,
        };
        let header = OutHeader {
            alg: Alg::Es256.name(),
            kid: self.key.kid(),
            typ: WIT_TYP,
        };
        let token = sign_compact(&self.key, &header, &claims)?;
        Ok(IssuedWit { token, jti, cnf })
    }
}

/// The trust anchors of one trust domain: its WIT signing keys and, optionally, the issuers allowed to use them.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchor {
    /// Signing keys (several during rotation).
    pub keys: Jwks,
    /// Allowed `iss` values; empty means `iss` is not checked (it is never used to find keys).
    pub issuers: Vec<String>,
}

/// Trust anchors per trust domain, configured out of band.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    domains: BTreeMap<TrustDomain, TrustAnchor>,
}

impl TrustStore {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust `keys` for `trust_domain` (replacing any previous anchor).
    pub fn insert(&mut self, trust_domain: TrustDomain, anchor: TrustAnchor) {
        self.domains.insert(trust_domain, anchor);
    }

    /// Builder form of [`TrustStore::insert`] with keys only.
    pub fn with_keys(mut self, trust_domain: TrustDomain, keys: Jwks) -> Self {
        self.insert(
            trust_domain,
            TrustAnchor {
                keys,
                issuers: Vec::new(),
            },
        );
        self
    }

    /// The anchor of a trust domain.
    pub fn get(&self, trust_domain: &str) -> Option<&TrustAnchor> {
        self.domains
            .iter()
            .find(|(td, _)| td.as_str() == trust_domain)
            .map(|(_, a)| a)
    }
}

/// Default longest WIT lifetime (`exp` − `iat`), seconds: 24 h, the longest `ttl` the verifier issues.
pub const DEFAULT_MAX_WIT_LIFETIME: u64 = 86_400;
/// Default clock skew, seconds.
pub const DEFAULT_CLOCK_SKEW: u64 = 60;

/// WIT verification policy. The default is strict, and is what Locus issues: ES256 only (signature and
/// `cnf.jwk.alg`), `kid` required, no `aud`, lifetime at most [`DEFAULT_MAX_WIT_LIFETIME`], 60 s clock skew.
/// Every way to loosen it is a method whose name starts with `danger_`.
#[derive(Debug, Clone)]
pub struct WitPolicy {
    /// Algorithms accepted for the WIT signature and for `cnf.jwk.alg`.
    allowed_algs: Vec<Alg>,
    /// Clock skew tolerated on `exp`, `nbf`, `iat` (capped at [`MAX_CLOCK_SKEW`]).
    clock_skew: u64,
    /// Refuse a WIT without `kid` even when the trust domain has a single key (SPIFFE WIT-SVID rule).
    require_kid: bool,
    /// Refuse a WIT carrying `aud` (SPIFFE WIT-SVID rule: the audience belongs in the proof of possession).
    reject_aud: bool,
    /// Longest `exp` − `iat`, and longest `exp` − now (plus skew), seconds.
    max_lifetime: u64,
}

impl Default for WitPolicy {
    fn default() -> Self {
        Self {
            allowed_algs: vec![Alg::Es256],
            clock_skew: DEFAULT_CLOCK_SKEW,
            require_kid: true,
            reject_aud: true,
            max_lifetime: DEFAULT_MAX_WIT_LIFETIME,
        }
    }
}

impl WitPolicy {
    /// The SPIFFE WIT-SVID profile: the defaults, with the other algorithms the profile names (ES384, RS256, PS256;
    /// never EdDSA) for both the WIT and `cnf.jwk.alg`.
    pub fn wit_svid() -> Self {
        Self::default().danger_allow_algs(&[Alg::Es384, Alg::Rs256, Alg::Ps256])
    }

    /// Tolerate `secs` of clock skew (a relying party refuses a value above [`MAX_CLOCK_SKEW`]).
    pub fn with_clock_skew(mut self, secs: u64) -> Self {
        self.clock_skew = secs;
        self
    }

    /// Shorten the longest accepted lifetime to `secs` (values above the current maximum are ignored: use
    /// [`WitPolicy::danger_allow_lifetime`] to lengthen it).
    pub fn with_max_lifetime(mut self, secs: u64) -> Self {
        self.max_lifetime = self.max_lifetime.min(secs);
        self
    }

    /// **Weakens checks.** Accept these algorithms too, for the WIT signature and `cnf.jwk.alg` (e.g. EdDSA
    /// proof-of-possession keys of other WIMSE issuers).
    pub fn danger_allow_algs(mut self, algs: &[Alg]) -> Self {
        for a in algs {
            if !self.allowed_algs.contains(a) {
                self.allowed_algs.push(*a);
            }
        }
        self
    }

    /// **Weakens checks.** Accept a WIT without `kid` when its trust domain has exactly one usable key.
    pub fn danger_allow_missing_kid(mut self) -> Self {
        self.require_kid = false;
        self
    }

    /// **Weakens checks.** Accept a WIT carrying `aud` (not a WIT-SVID; `aud` is still not interpreted).
    pub fn danger_allow_aud(mut self) -> Self {
        self.reject_aud = false;
        self
    }

    /// **Weakens checks.** Set the longest accepted lifetime to `secs`, above the default if asked: a stolen WIT
    /// stays usable (with its key) for that long.
    pub fn danger_allow_lifetime(mut self, secs: u64) -> Self {
        self.max_lifetime = secs;
        self
    }

    /// Algorithms accepted.
    pub fn allowed_algs(&self) -> &[Alg] {
        &self.allowed_algs
    }

    /// Clock skew tolerated, as configured.
    pub fn clock_skew(&self) -> u64 {
        self.clock_skew
    }

    /// Whether `kid` is required.
    pub fn requires_kid(&self) -> bool {
        self.require_kid
    }

    /// Whether `aud` is refused.
    pub fn rejects_aud(&self) -> bool {
        self.reject_aud
    }

    /// Longest accepted lifetime, seconds.
    pub fn max_lifetime(&self) -> u64 {
        self.max_lifetime
    }

    pub(crate) fn skew(&self) -> u64 {
        self.clock_skew.min(MAX_CLOCK_SKEW)
    }
}

/// Verifies WITs against a [`TrustStore`].
#[derive(Debug, Clone, Default)]
pub struct WitVerifier {
    /// Trust anchors.
    pub trust: TrustStore,
    /// Policy.
    pub policy: WitPolicy,
}

impl WitVerifier {
    /// A verifier.
    pub fn new(trust: TrustStore, policy: WitPolicy) -> Self {
        Self { trust, policy }
    }

    /// Verify `token` at time `now` (Unix seconds), following draft-ietf-wimse-workload-creds.
    pub fn verify(&self, token: &str, now: u64) -> Result<VerifiedWit, WimseError> {
        // Step 1: ABNF and decoding.
        let jws = CompactJws::parse(token)?;
        // Step 2: explicit type, algorithm allow-list.
        typ_matches(jws.header.typ.as_deref(), WIT_TYP)?;
        let alg = jws.alg_allowed(&self.policy.allowed_algs)?;
        // Step 3: the subject, strictly, before any key lookup.
        let mut claims = jws.claims()?;
        let sub = match claims.remove("sub") {
            Some(Value::String(s)) => WorkloadId::parse(&s)?,
            Some(_) => return Err(WimseError::claim("sub", "not a string")),
            None => return Err(WimseError::ClaimMissing { claim: "sub" }),
        };
        // Step 4: the keys of that trust domain only, selected by kid.
        let anchor = self.trust.get(sub.trust_domain_str()).ok_or_else(|| {
            WimseError::TrustDomainUnknown {
                trust_domain: sub.trust_domain_str().to_owned(),
            }
        })?;
        let key = select_key(
            &anchor.keys,
            jws.header.kid.as_deref(),
            self.policy.require_kid,
        )?;
        if let Some(key_alg) = &key.alg {
            if key_alg != &jws.header.alg {
                return Err(WimseError::AlgMismatch {
                    expected: key_alg.clone(),
                    got: jws.header.alg.clone(),
                });
            }
        }
        // Step 5: the signature over the received bytes.
        jws.verify_with(alg, &key.key)?;
        // Step 6: lifetime, confirmation key, issuer.
        let skew = self.policy.skew();
        let exp =
            numeric_date(&mut claims, "exp")?.ok_or(WimseError::ClaimMissing { claim: "exp" })?;
        if now >= exp.saturating_add(skew) {
            return Err(WimseError::TokenExpired { exp, now });
        }
        let nbf = numeric_date(&mut claims, "nbf")?;
        if let Some(nbf) = nbf {
            if nbf > now.saturating_add(skew) {
                return Err(WimseError::TokenNotYetValid {
                    claim: "nbf",
                    value: nbf,
                    now,
                });
            }
        }
        let iat = numeric_date(&mut claims, "iat")?;
        if let Some(iat) = iat {
            if iat > now.saturating_add(skew) {
                return Err(WimseError::TokenNotYetValid {
                    claim: "iat",
                    value: iat,
                    now,
                });
            }
            let lifetime = exp.saturating_sub(iat);
            if lifetime > self.policy.max_lifetime {
                return Err(WimseError::LifetimeTooLong {
                    lifetime,
                    max_lifetime: self.policy.max_lifetime,
                });
            }
        }
        // Without (or with a back-dated) iat, exp itself may lie no further ahead than one lifetime.
        if exp
            > now
                .saturating_add(self.policy.max_lifetime)
                .saturating_add(skew)
        {
            return Err(WimseError::ExpTooFar {
                exp,
                now,
                max_lifetime: self.policy.max_lifetime,
            });
        }
        let cnf = parse_cnf(claims.remove("cnf"), &self.policy.allowed_algs)?;
        let iss = opt_string(&mut claims, "iss")?;
        if !anchor.issuers.is_empty() && !iss.as_ref().is_some_and(|i| anchor.issuers.contains(i)) {
            return Err(WimseError::IssuerNotAllowed { iss });
        }
        let jti = opt_string(&mut claims, "jti")?;
        if self.policy.reject_aud && claims.contains_key("aud") {
            return Err(WimseError::claim("aud", "not allowed in a WIT-SVID"));
        }
        Ok(VerifiedWit {
            raw: token.to_owned(),
            alg,
            kid: jws.header.kid.clone(),
            claims: WitClaims {
                iss,
                sub,
                exp,
                iat,
                nbf,
                jti,
                cnf,
                extra: claims,
            },
        })
    }
}

fn select_key<'k>(
    keys: &'k Jwks,
    kid: Option<&str>,
    require_kid: bool,
) -> Result<&'k Jwk, WimseError> {
    // Keys published for another use (e.g. encryption) never verify a WIT.
    let usable = |k: &&Jwk| {
        matches!(
            k.key_use.as_deref(),
            None | Some("sig") | Some(crate::jwk::USE_WIT_SVID)
        )
    };
    match kid {
        Some(kid) => keys
            .keys
            .iter()
            .filter(usable)
            .find(|k| k.kid.as_deref() == Some(kid))
            .ok_or_else(|| WimseError::KidUnknown {
                kid: kid.to_owned(),
            }),
        None => {
            if require_kid {
                return Err(WimseError::KidMissing);
            }
            let mut it = keys.keys.iter().filter(usable);
            match (it.next(), it.next()) {
                (Some(k), None) => Ok(k),
                _ => Err(WimseError::KidMissing),
            }
        }
    }
}

/// A NumericDate claim as a non-negative integer (fractions and negative values refused).
pub(crate) fn numeric_date(
    claims: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, WimseError> {
    numeric_date_value(claims.remove(name).as_ref(), name)
}

/// A NumericDate claim's value, when present: a non-negative integer.
pub(crate) fn numeric_date_value(
    value: Option<&Value>,
    name: &'static str,
) -> Result<Option<u64>, WimseError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| WimseError::claim(name, "not a non-negative integer")),
        Some(_) => Err(WimseError::claim(name, "not a number")),
    }
}

pub(crate) fn opt_string(
    claims: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, WimseError> {
    match claims.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(WimseError::claim(name, "not a string")),
    }
}

fn parse_cnf(cnf: Option<Value>, allowed: &[Alg]) -> Result<Jwk, WimseError> {
    let cnf = cnf.ok_or(WimseError::ClaimMissing { claim: "cnf" })?;
    let jwk_value = cnf.get("jwk").ok_or_else(|| WimseError::CnfInvalid {
        detail: "cnf has no jwk".into(),
    })?;
    let jwk = Jwk::from_value(jwk_value).map_err(|e| WimseError::CnfInvalid {
        detail: e.to_string(),
    })?;
    let alg_name = jwk.alg.as_deref().ok_or_else(|| WimseError::CnfInvalid {
        detail: "cnf.jwk.alg missing".into(),
    })?;
    let alg = Alg::from_name(alg_name).map_err(|_| WimseError::CnfInvalid {
        detail: format!("cnf.jwk.alg {alg_name:?} not allowed"),
    })?;
    if !allowed.contains(&alg) || !jwk.key.fits(alg) {
        return Err(WimseError::CnfInvalid {
            detail: format!("cnf.jwk.alg {alg_name} not allowed for this key"),
        });
    }
    Ok(jwk)
}

/// The public key of a verified WIT's `cnf`, with its algorithm.
pub(crate) fn cnf_key(claims: &WitClaims) -> Result<(Alg, &PublicKey), WimseError> {
    let alg = Alg::from_name(claims.pop_alg()).map_err(|_| WimseError::CnfInvalid {
        detail: "cnf.jwk.alg unknown".into(),
    })?;
    Ok((alg, &claims.cnf.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_then_verify_round_trip_with_extras_and_issue_token_signs_the_same_claims() {
        let key = Es256SigningKey::generate().unwrap().with_kid("k1");
        let issuer = WitIssuer::new(key, Some("https://verifier.example".into())).unwrap();
        let workload = Es256SigningKey::generate().unwrap();
        let sub = WorkloadId::parse("spiffe://example.org/ns/a").unwrap();
        let mut extra = Map::new();
        extra.insert(
            "locus_tee".into(),
            serde_json::json!({"type":"sev-snp","debug":false}),
        );
        let (token, issued) = issuer
            .issue(&sub, &workload.public_jwk(), 1000, 4600, &extra)
            .unwrap();
        let trust =
            TrustStore::new().with_keys(sub.trust_domain(), Jwks::new(vec![issuer.public_jwk()]));
        let verifier = WitVerifier::new(trust, WitPolicy::default());
        let v = verifier.verify(&token, 1001).unwrap();
        assert_eq!(v.claims(), &issued);
        assert_eq!(v.claims().pop_alg(), "ES256");
        assert_eq!(v.claims().extra["locus_tee"]["type"], "sev-snp");
        assert_eq!(v.kid(), Some("k1"));
        // Header exactly as docs/architecture.md#credentials says (member order aside).
        let jws = CompactJws::parse(&token).unwrap();
        assert_eq!(jws.header.alg, "ES256");
        assert_eq!(jws.header.typ.as_deref(), Some("wit+jwt"));
        assert!(
            !jws.claims().unwrap().contains_key("aud"),
            "WIT-SVID forbids aud"
        );
        // `issue_token` signs the same claims as `issue` and returns the token's jti.
        extra.insert(
            "locus_residency".into(),
            serde_json::json!({"country": "DE"}),
        );
        let (_, issued) = issuer
            .issue(&sub, &workload.public_jwk(), 1000, 4600, &extra)
            .unwrap();
        let IssuedWit { token, jti, .. } = issuer
            .issue_token(&sub, &workload.public_jwk(), 1000, 4600, &extra)
            .unwrap();
        let v = verifier.verify(&token, 1001).unwrap();
        assert_eq!(v.claims().jti.as_deref(), Some(jti.as_str()));
        // Everything but the jti (random per token) is what `issue` reports.
        let mut expected = issued;
        expected.jti = Some(jti);
        assert_eq!(v.claims(), &expected);
        // The registered claims come first, in the order this crate writes them, then the extra ones (in the map's order).
        let payload =
            String::from_utf8(crate::b64::decode(token.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        let at = |k: &str| payload.find(&format!("\"{k}\":")).unwrap();
        let order = ["cnf", "exp", "iat", "iss", "jti", "sub"];
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{payload}");
        assert!(
            at("sub") < at("locus_tee") && at("sub") < at("locus_residency"),
            "{payload}"
        );
        // The same refusals as `issue`.
        assert!(issuer
            .issue_token(&sub, &workload.public_jwk(), 2, 2, &Map::new())
            .is_err());
    }

    #[test]
    fn issue_token_as_writes_the_claims_the_map_form_writes_and_refuses_reserved_or_repeated_names()
    {
        let issuer =
            WitIssuer::new(Es256SigningKey::generate().unwrap().with_kid("k"), None).unwrap();
        let sub = WorkloadId::parse("spiffe://example.org/a").unwrap();
        let cnf = Es256SigningKey::generate().unwrap().public_jwk();
        let residency = serde_json::json!({"country": "DE", "established": true});
        let tee = serde_json::json!({"debug": false, "type": "tdx"});
        let mut map = Map::new();
        map.insert("locus_residency".into(), residency.clone());
        map.insert("locus_tee".into(), tee.clone());
        let payload = |token: &str, jti: &str| {
            String::from_utf8(crate::b64::decode(token.split('.').nth(1).unwrap()).unwrap())
                .unwrap()
                .replace(jti, "JTI")
        };
        let a = issuer.issue_token(&sub, &cnf, 10, 20, &map).unwrap();
        let b = issuer
            .issue_token_as(
                random_jti().unwrap(),
                &sub,
                &cnf,
                10,
                20,
                &[("locus_residency", &residency), ("locus_tee", &tee)],
            )
            .unwrap();
        // Byte for byte the same payload, the random jti aside.
        assert_eq!(payload(&a.token, &a.jti), payload(&b.token, &b.jti));
        assert_eq!(a.cnf, b.cnf);
        // A jti drawn beforehand is the token's.
        let drawn = random_jti().unwrap();
        let c = issuer
            .issue_token_as(drawn.clone(), &sub, &cnf, 10, 20, &[("locus_tee", &tee)])
            .unwrap();
        assert_eq!(c.jti, drawn);
        let claims =
            String::from_utf8(crate::b64::decode(c.token.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        assert!(claims.contains(&format!("\"jti\":\"{drawn}\"")), "{claims}");
        for bad in [
            vec![("jti", &tee)],
            vec![("locus_tee", &tee), ("locus_tee", &residency)],
        ] {
            assert_eq!(
                issuer
                    .issue_token_as(random_jti().unwrap(), &sub, &cnf, 10, 20, &bad)
                    .unwrap_err()
                    .code(),
                "request_invalid"
            );
        }
    }

    #[test]
    fn issuer_refuses_reserved_extra_and_missing_kid() {
        assert_eq!(
            WitIssuer::new(Es256SigningKey::generate().unwrap(), None)
                .unwrap_err()
                .code(),
            "request_invalid"
        );
        let issuer =
            WitIssuer::new(Es256SigningKey::generate().unwrap().with_kid("k"), None).unwrap();
        let sub = WorkloadId::parse("wimse://example.com/a").unwrap();
        let mut extra = Map::new();
        extra.insert("sub".into(), "wimse://example.com/b".into());
        let cnf = issuer.key().public_jwk();
        assert_eq!(
            issuer.issue(&sub, &cnf, 1, 2, &extra).unwrap_err().code(),
            "request_invalid"
        );
        assert_eq!(
            issuer
                .issue(&sub, &cnf, 2, 2, &Map::new())
                .unwrap_err()
                .code(),
            "request_invalid"
        );
    }
}
