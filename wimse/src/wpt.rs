//! Workload Proof Tokens (draft-ietf-wimse-wpt-02): creation and its receiver checks.
//!
//! A WPT is a JWS with `typ` `wpt+jwt`, signed with the WIT's `cnf` key using exactly `cnf.jwk.alg`, carrying `aud`,
//! `exp`, `jti`, `wth` (hash of the WIT) and `ath` / `tth` / `oth` hashes of the other tokens of the request.
//! Hashes are `base64url(SHA-256(ASCII(value)))`.
//!
//! [`verify_wpt`] applies checks 2–6 and 8–10 of the draft's receiver checks (typ, alg = cnf alg, signature, aud, exp, wth, ath/tth,
//! oth); check 7 (replay) needs shared state and lives in [`crate::rp::RelyingParty`].

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::b64;
use crate::error::WimseError;
use crate::jwk::Alg;
use crate::jws::{random_jti, sign_compact, typ_matches, CompactJws, JwsSigner};
use crate::wit::{cnf_key, numeric_date, VerifiedWit, MAX_CLOCK_SKEW};

/// The WPT `typ`.
pub const WPT_TYP: &str = "wpt+jwt";
/// HTTP header carrying the WPT.
pub const WPT_HEADER: &str = "Workload-Proof-Token";
/// Default longest WPT lifetime accepted (`exp` − now), seconds.
pub const DEFAULT_MAX_LIFETIME: u64 = 300;

/// `base64url(SHA-256(ASCII(token)))`: the `wth`, `ath`, `tth` construction.
pub fn token_hash(token: &str) -> String {
    b64::encode(Sha256::digest(token.as_bytes()))
}

/// The `oth` hash of a header value: leading and trailing spaces (SP, HTAB) trimmed, then [`token_hash`].
pub fn oth_hash(value: &str) -> String {
    token_hash(value.trim_matches([' ', '\t']))
}

/// What a workload asks to have signed into a WPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WptRequest {
    /// `aud`: the target URI without query and fragment (or an agreed alias).
    pub aud: String,
    /// `exp`.
    pub exp: u64,
    /// `wth`.
    pub wth: String,
    /// `ath`, when an access token travels.
    pub ath: Option<String>,
    /// `tth`, when a Txn-Token travels.
    pub tth: Option<String>,
    /// `oth`: lower-cased header name → hash.
    pub oth: BTreeMap<String, String>,
    /// `jti`; `None` draws 128 random bits.
    pub jti: Option<String>,
}

impl WptRequest {
    /// A proof for `wit` (the exact WIT string sent) towards `aud`, expiring at `exp`.
    pub fn new(aud: impl Into<String>, wit: &str, exp: u64) -> Self {
        Self {
            aud: aud.into(),
            exp,
            wth: token_hash(wit),
            ath: None,
            tth: None,
            oth: BTreeMap::new(),
            jti: None,
        }
    }

    /// Cover the OAuth access token sent with the request.
    pub fn access_token(mut self, token: &str) -> Self {
        self.ath = Some(token_hash(token));
        self
    }

    /// Cover the Txn-Token sent with the request.
    pub fn txn_token(mut self, token: &str) -> Self {
        self.tth = Some(token_hash(token));
        self
    }

    /// Cover another context-token header.
    pub fn other_token(mut self, header_name: &str, value: &str) -> Self {
        self.oth
            .insert(header_name.to_ascii_lowercase(), oth_hash(value));
        self
    }
}

#[derive(Serialize)]
struct WptPayload<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<&'a str>,
    aud: &'a str,
    exp: u64,
    jti: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    oth: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tth: Option<&'a str>,
    wth: &'a str,
}

#[derive(Serialize)]
struct WptHeader<'a> {
    alg: &'a str,
    typ: &'a str,
}

/// Sign a WPT with the workload key (the WIT's `cnf` key). Header `{"alg":<signer alg>,"typ":"wpt+jwt"}`.
pub fn create_wpt(signer: &dyn JwsSigner, req: &WptRequest) -> Result<String, WimseError> {
    let jti = match &req.jti {
        Some(j) => j.clone(),
        None => random_jti()?,
    };
    let payload = WptPayload {
        ath: req.ath.as_deref(),
        aud: &req.aud,
        exp: req.exp,
        jti: &jti,
        oth: &req.oth,
        tth: req.tth.as_deref(),
        wth: &req.wth,
    };
    let header = WptHeader {
        alg: signer.alg().name(),
        typ: WPT_TYP,
    };
    sign_compact(signer, &header, &payload)
}

/// Decoded WPT claims.
#[derive(Debug, Clone, PartialEq)]
pub struct WptClaims {
    /// `aud` value(s).
    pub aud: Vec<String>,
    /// `exp`.
    pub exp: u64,
    /// `jti`.
    pub jti: String,
    /// `wth`.
    pub wth: String,
    /// `ath`.
    pub ath: Option<String>,
    /// `tth`.
    pub tth: Option<String>,
    /// `oth`.
    pub oth: BTreeMap<String, String>,
    /// Other claims, uninterpreted.
    pub extra: Map<String, Value>,
}

/// WPT policy. The default is strict: ES256 only, `exp` at most [`DEFAULT_MAX_LIFETIME`] (plus the clock skew)
/// ahead, 60 s clock skew. Loosening it takes a `danger_` method.
#[derive(Debug, Clone)]
pub struct WptPolicy {
    /// Longest accepted `exp` − now, seconds, before the clock skew is added.
    max_lifetime: u64,
    /// Clock skew tolerated on `exp`, both ways (capped at [`MAX_CLOCK_SKEW`]).
    clock_skew: u64,
    /// Algorithms accepted (the WPT must also use exactly `cnf.jwk.alg`).
    allowed_algs: Vec<Alg>,
}

impl Default for WptPolicy {
    fn default() -> Self {
        Self {
            max_lifetime: DEFAULT_MAX_LIFETIME,
            clock_skew: crate::wit::DEFAULT_CLOCK_SKEW,
            allowed_algs: vec![Alg::Es256],
        }
    }
}

impl WptPolicy {
    /// Tolerate `secs` of clock skew (a relying party refuses a value above [`MAX_CLOCK_SKEW`]).
    pub fn with_clock_skew(mut self, secs: u64) -> Self {
        self.clock_skew = secs;
        self
    }

    /// Shorten the longest accepted lifetime to `secs` (values above the current maximum are ignored: use
    /// [`WptPolicy::danger_allow_lifetime`] to lengthen it).
    pub fn with_max_lifetime(mut self, secs: u64) -> Self {
        self.max_lifetime = self.max_lifetime.min(secs);
        self
    }

    /// **Weakens checks.** Accept these algorithms too (the WPT must still use exactly `cnf.jwk.alg`).
    pub fn danger_allow_algs(mut self, algs: &[Alg]) -> Self {
        for a in algs {
            if !self.allowed_algs.contains(a) {
                self.allowed_algs.push(*a);
            }
        }
        self
    }

    /// **Weakens checks.** Set the longest accepted lifetime to `secs`, above the default if asked: a captured proof
    /// stays replayable elsewhere (other audiences' caches do not know it) for that long, and replay-cache entries
    /// live that long.
    pub fn danger_allow_lifetime(mut self, secs: u64) -> Self {
        self.max_lifetime = secs;
        self
    }

    /// Longest accepted `exp` − now before skew, seconds.
    pub fn max_lifetime(&self) -> u64 {
        self.max_lifetime
    }

    /// Clock skew, as configured.
    pub fn clock_skew(&self) -> u64 {
        self.clock_skew
    }

    /// Algorithms accepted.
    pub fn allowed_algs(&self) -> &[Alg] {
        &self.allowed_algs
    }

    /// The clock skew in force (capped at [`MAX_CLOCK_SKEW`]).
    pub(crate) fn skew(&self) -> u64 {
        self.clock_skew.min(MAX_CLOCK_SKEW)
    }
}

/// What the request says the WPT must match.
#[derive(Debug, Clone, Default)]
pub struct WptExpectations<'a> {
    /// Acceptable `aud` values, already without query and fragment, from trusted configuration.
    pub audiences: Vec<String>,
    /// The access token in the request, if any.
    pub access_token: Option<&'a str>,
    /// The Txn-Token in the request, if any.
    pub txn_token: Option<&'a str>,
    /// Context-token headers the relying party understands (lower case).
    pub known_context_headers: &'a [String],
    /// Those of them present in the request: lower-cased name → raw value.
    pub context_tokens: BTreeMap<String, &'a str>,
}

/// Strip `?query` and `#fragment`.
pub fn strip_query_fragment(uri: &str) -> &str {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    &uri[..end]
}

/// Verify `token` as the proof of possession for `wit` (checks 2–6 and 8–10 of draft-ietf-wimse-wpt; replay is the caller's).
pub fn verify_wpt(
    token: &str,
    wit: &VerifiedWit,
    expect: &WptExpectations<'_>,
    policy: &WptPolicy,
    now: u64,
) -> Result<WptClaims, WimseError> {
    // Check 1 (format) and 2: explicit type.
    let jws = CompactJws::parse(token)?;
    typ_matches(jws.header.typ.as_deref(), WPT_TYP)?;
    // Check 3: alg allowed and string-equal to cnf.jwk.alg.
    let alg = jws.alg_allowed(&policy.allowed_algs)?;
    let (cnf_alg, cnf_key) = cnf_key(wit.claims())?;
    if jws.header.alg != wit.claims().pop_alg() || alg != cnf_alg {
        return Err(WimseError::AlgMismatch {
            expected: wit.claims().pop_alg().to_owned(),
            got: jws.header.alg.clone(),
        });
    }
    // Check 4: signature under the cnf key, over the received bytes.
    jws.verify_with(alg, cnf_key)?;
    let mut claims = jws.claims()?;
    // Check 5: audience from trusted configuration, ignoring query and fragment.
    let aud = match claims.remove("aud") {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) if !a.is_empty() => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(WimseError::claim("aud", "array member not a string")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(WimseError::claim("aud", "not a string or non-empty array")),
        None => return Err(WimseError::ClaimMissing { claim: "aud" }),
    };
    let aud_ok = aud.iter().any(|a| {
        expect
            .audiences
            .iter()
            .any(|e| strip_query_fragment(a) == e.as_str())
    });
    if !aud_ok {
        return Err(WimseError::AudMismatch { aud: aud.join(" ") });
    }
    // Check 6: exp present, not passed, not unreasonably far. The skew applies both ways: a workload whose clock
    // runs ahead by up to the skew still gets its full lifetime, and no further.
    let skew = policy.skew();
    let exp = numeric_date(&mut claims, "exp")?.ok_or(WimseError::ClaimMissing { claim: "exp" })?;
    if now >= exp.saturating_add(skew) {
        return Err(WimseError::TokenExpired { exp, now });
    }
    if exp > now.saturating_add(policy.max_lifetime).saturating_add(skew) {
        return Err(WimseError::ExpTooFar {
            exp,
            now,
            max_lifetime: policy.max_lifetime,
        });
    }
    // Check 7 (jti presence; the replay cache is the caller's).
    let jti = match claims.remove("jti") {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(_) => return Err(WimseError::claim("jti", "not a non-empty string")),
        None => return Err(WimseError::ClaimMissing { claim: "jti" }),
    };
    // Check 8: wth binds this exact WIT string.
    let wth = string_claim(&mut claims, "wth")?.ok_or(WimseError::ClaimMissing { claim: "wth" })?;
    if !ct_eq(&wth, &token_hash(wit.raw())) {
        return Err(WimseError::WthMismatch);
    }
    // Check 9: ath / tth whenever the tokens travel (and never a hash of a token that is not there).
    let ath = string_claim(&mut claims, "ath")?;
    match (expect.access_token, &ath) {
        (Some(_), None) => return Err(WimseError::AthMissing),
        (Some(t), Some(h)) if !ct_eq(h, &token_hash(t)) => return Err(WimseError::AthMismatch),
        (None, Some(_)) => return Err(WimseError::AthMismatch),
        _ => {}
    }
    let tth = string_claim(&mut claims, "tth")?;
    match (expect.txn_token, &tth) {
        (Some(_), None) => return Err(WimseError::TthMissing),
        (Some(t), Some(h)) if !ct_eq(h, &token_hash(t)) => return Err(WimseError::TthMismatch),
        (None, Some(_)) => return Err(WimseError::TthMismatch),
        _ => {}
    }
    // Check 10: oth — every entry known and matching, every known context token present covered.
    let oth = match claims.remove("oth") {
        None => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(WimseError::claim("oth", "member not a string")),
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?,
        Some(_) => return Err(WimseError::claim("oth", "not an object")),
    };
    for (name, hash) in &oth {
        if !expect.known_context_headers.iter().any(|k| k == name) {
            return Err(WimseError::OthUnknown {
                header: name.clone(),
            });
        }
        match expect.context_tokens.get(name) {
            Some(value) if ct_eq(hash, &oth_hash(value)) => {}
            _ => {
                return Err(WimseError::OthMismatch {
                    header: name.clone(),
                })
            }
        }
    }
    if let Some(uncovered) = expect.context_tokens.keys().find(|k| !oth.contains_key(*k)) {
        return Err(WimseError::OthMissing {
            header: uncovered.clone(),
        });
    }
    Ok(WptClaims {
        aud,
        exp,
        jti,
        wth,
        ath,
        tth,
        oth,
        extra: claims,
    })
}

fn string_claim(
    claims: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, WimseError> {
    match claims.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(WimseError::claim(name, "not a string")),
    }
}

/// Constant-time comparison of two hash strings (they are public values, but it costs nothing).
fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_of_the_spec_vector() {
        // draft-ietf-wimse-wpt example: ath of the access token.
        assert_eq!(
            token_hash("16_mAd0GiwaZokU26_0902100"),
            "CL4wjfpRmNf-bdYIbYLnV9d5rMARGwKYE10wUwzC0jI"
        );
        assert_eq!(oth_hash("  v \t"), token_hash("v"));
    }

    #[test]
    fn query_and_fragment_stripped() {
        assert_eq!(
            strip_query_fragment("https://a.example/p?q=1#f"),
            "https://a.example/p"
        );
        assert_eq!(
            strip_query_fragment("https://a.example/p#f?x"),
            "https://a.example/p"
        );
        assert_eq!(
            strip_query_fragment("https://a.example/p"),
            "https://a.example/p"
        );
    }
}
