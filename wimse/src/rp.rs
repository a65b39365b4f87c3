//! The relying-party entry point: one call that authenticates an HTTP request carrying
//! `Workload-Identity-Token` and `Workload-Proof-Token`.
//!
//! Flow of [`RelyingParty::verify_request`]:
//! 1. collect headers (names case-insensitive): exactly one WIT and one WPT header; at most one `Authorization`,
//!    `Txn-Token` and configured context-token header;
//! 2. verify the WIT (draft-ietf-wimse-workload-creds, [`WitVerifier::verify`]);
//! 3. compute acceptable audiences from *configuration* and the target URI — never from `Host` or
//!    `X-Forwarded-Host`;
//! 4. verify the WPT (draft-ietf-wimse-wpt, [`verify_wpt`]);
//! 5. record `(sub, jti)` in the replay cache until `exp` + skew; a second use is `replayed`; each `sub` holds at
//!    most a quota of live entries and a `jti` has a length cap ([`crate::replay`]).
//!
//! The defaults are strict ([`WitPolicy::default`], [`WptPolicy::default`]): ES256, `kid` required, no `aud` in the
//! WIT, WIT lifetime ≤ 24 h, WPT `exp` ≤ 5 min (+ skew) ahead.
//!
//! Only then is the identity returned. Every failure is a [`WimseError`] whose `code()` the caller puts in its 400
//! problem document.

use std::collections::BTreeMap;

use crate::error::WimseError;
use crate::id::WorkloadId;
use crate::replay::{ReplayCache, ReplayLimits};
use crate::wit::{TrustStore, WitClaims, WitPolicy, WitVerifier, MAX_CLOCK_SKEW};
use crate::wpt::{strip_query_fragment, verify_wpt, WptClaims, WptExpectations, WptPolicy};

/// Relying-party configuration (all of it trusted, none of it from the request).
#[derive(Debug, Clone)]
pub struct RpConfig {
    /// Trust anchors per trust domain.
    pub trust: TrustStore,
    /// The origins this service is reached at, `scheme://host[:port]` (no path), e.g. `https://workload.example.com`.
    /// A WPT `aud` must be one of them followed by the request path.
    pub authorities: Vec<String>,
    /// Further `aud` values accepted verbatim (deployment-specific aliases behind rewriting proxies).
    pub audience_aliases: Vec<String>,
    /// Context-token headers this service understands and may use for authorization; they must be covered by `oth`
    /// when present, and only they may appear in `oth`. Compared case-insensitively.
    pub context_token_headers: Vec<String>,
    /// WIT policy.
    pub wit_policy: WitPolicy,
    /// WPT policy.
    pub wpt_policy: WptPolicy,
    /// Replay cache bounds: total live entries, live entries per sender (WIT `sub`), longest `jti`.
    pub replay: ReplayLimits,
}

impl RpConfig {
    /// Defaults: the strict WIT and WPT policies (ES256 only, `kid` required, no WIT `aud`, WIT lifetime ≤ 24 h,
    /// WPT lifetime ≤ 300 s, 60 s skew), default replay bounds, no aliases or context tokens.
    pub fn new(trust: TrustStore, authorities: Vec<String>) -> Self {
        Self {
            trust,
            authorities,
            audience_aliases: Vec::new(),
            context_token_headers: Vec::new(),
            wit_policy: WitPolicy::default(),
            wpt_policy: WptPolicy::default(),
            replay: ReplayLimits::default(),
        }
    }
}

/// A request whose WIT and WPT passed every check.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The authenticated Workload Identifier (`sub` of the WIT).
    pub id: WorkloadId,
    /// The WIT claims (`locus_tee`, `locus_residency` and other extras in `extra`).
    pub wit_claims: WitClaims,
    /// The WPT claims.
    pub wpt_claims: WptClaims,
    /// The WIT exactly as received (for audit, or to forward).
    pub wit_token: String,
    /// `kid` of the trust-anchor key that signed the WIT.
    pub wit_kid: Option<String>,
}

/// Verifies requests. Holds the replay cache: keep one per service and share it across threads.
#[derive(Debug)]
pub struct RelyingParty {
    wit: WitVerifier,
    wpt_policy: WptPolicy,
    authorities: Vec<String>,
    aliases: Vec<String>,
    context_headers: Vec<String>,
    replay: ReplayCache,
}

const H_WIT: &str = "workload-identity-token";
const H_WPT: &str = "workload-proof-token";
const H_AUTHORIZATION: &str = "authorization";
const H_TXN: &str = "txn-token";

impl RelyingParty {
    /// Validate `config` and build. Authorities must be `scheme://authority` with nothing after.
    pub fn new(config: RpConfig) -> Result<Self, WimseError> {
        let mut authorities = Vec::with_capacity(config.authorities.len());
        for a in &config.authorities {
            let a = a.strip_suffix('/').unwrap_or(a);
            let valid = a.split_once("://").is_some_and(|(scheme, auth)| {
                !scheme.is_empty() && !auth.is_empty() && !auth.contains(['/', '?', '#'])
            });
            if !valid {
                return Err(WimseError::RequestInvalid {
                    detail: format!("authority {a:?} is not scheme://host[:port]"),
                });
            }
            authorities.push(a.to_owned());
        }
        if authorities.is_empty() && config.audience_aliases.is_empty() {
            return Err(WimseError::RequestInvalid {
                detail: "no authority or audience configured".into(),
            });
        }
        if config.wit_policy.clock_skew() > MAX_CLOCK_SKEW
            || config.wpt_policy.clock_skew() > MAX_CLOCK_SKEW
        {
            return Err(WimseError::RequestInvalid {
                detail: format!("clock skew above {MAX_CLOCK_SKEW} s"),
            });
        }
        let context_headers = config
            .context_token_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        Ok(Self {
            wit: WitVerifier::new(config.trust, config.wit_policy),
            wpt_policy: config.wpt_policy,
            authorities,
            aliases: config.audience_aliases,
            context_headers,
            replay: ReplayCache::with_limits(config.replay),
        })
    }

    /// The replay cache (for its counters).
    pub fn replay_cache(&self) -> &ReplayCache {
        &self.replay
    }

    /// The WIT verifier (for callers that check a WIT alone, e.g. with HTTP message signatures).
    pub fn wit_verifier(&self) -> &WitVerifier {
        &self.wit
    }

    /// Authenticate a request. `headers` are the request's fields as (name, value) pairs, in any case;
    /// `target_uri` is the request target as the server received it: origin-form (`/path?query`) or absolute
    /// (`https://host/path`). In absolute form its origin must be a configured authority. `now` is Unix seconds.
    pub fn verify_request<I, K, V>(
        &self,
        headers: I,
        target_uri: &str,
        now: u64,
    ) -> Result<Authenticated, WimseError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        // Step 1: headers.
        let mut wit: Option<String> = None;
        let mut wpt: Option<String> = None;
        let mut authorization: Option<String> = None;
        let mut txn: Option<String> = None;
        let mut context: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let name = name.as_ref().to_ascii_lowercase();
            let value = value.as_ref();
            let slot = match name.as_str() {
                H_WIT => &mut wit,
                H_WPT => &mut wpt,
                H_AUTHORIZATION => &mut authorization,
                H_TXN => &mut txn,
                other if self.context_headers.iter().any(|h| h == other) => {
                    if context.insert(name.clone(), value.to_owned()).is_some() {
                        return Err(WimseError::HeaderRepeated { name });
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.replace(value.to_owned()).is_some() {
                return Err(WimseError::HeaderRepeated { name });
            }
        }
        let wit_token = wit.ok_or(WimseError::HeaderMissing {
            name: crate::wit::WIT_HEADER,
        })?;
        let wpt_token = wpt.ok_or(WimseError::HeaderMissing {
            name: crate::wpt::WPT_HEADER,
        })?;

        // Step 2: the WIT.
        let verified = self.wit.verify(&wit_token, now)?;

        // Step 3: audiences from configuration.
        let audiences = self.audiences(target_uri);

        // Step 4: the WPT.
        let access_token = authorization.as_deref().and_then(access_token_of);
        let expect = WptExpectations {
            audiences,
            access_token,
            txn_token: txn.as_deref(),
            known_context_headers: &self.context_headers,
            context_tokens: context
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str()))
                .collect(),
        };
        let claims = verify_wpt(&wpt_token, &verified, &expect, &self.wpt_policy, now)?;

        // Step 5: replay, per sender, for as long as the token could be accepted.
        let until = claims.exp.saturating_add(self.wpt_policy.skew());
        self.replay
            .check_and_insert(verified.id().as_str(), &claims.jti, until, now)?;

        let wit_kid = verified.kid().map(str::to_owned);
        let wit_token = verified.raw().to_owned();
        let wit_claims = verified.into_claims();
        Ok(Authenticated {
            id: wit_claims.sub.clone(),
            wit_claims,
            wpt_claims: claims,
            wit_token,
            wit_kid,
        })
    }

    fn audiences(&self, target_uri: &str) -> Vec<String> {
        let target = strip_query_fragment(target_uri);
        let mut out = self.aliases.clone();
        if target.starts_with('/') {
            out.extend(self.authorities.iter().map(|a| format!("{a}{target}")));
        } else {
            for a in &self.authorities {
                if let Some(rest) = target.strip_prefix(a.as_str()) {
                    if rest.starts_with('/') {
                        out.push(target.to_owned());
                    } else if rest.is_empty() {
                        out.push(format!("{a}/"));
                    }
                }
            }
        }
        out
    }
}

/// The token of `Authorization: Bearer <token>` or `DPoP <token>` (RFC 6750, RFC 9449); other schemes carry no
/// OAuth access token.
fn access_token_of(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop") {
        let token = rest.trim_start_matches(' ');
        (!token.is_empty()).then_some(token)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_token_schemes() {
        assert_eq!(access_token_of("Bearer abc"), Some("abc"));
        assert_eq!(access_token_of("bearer  abc"), Some("abc"));
        assert_eq!(access_token_of("DPoP abc"), Some("abc"));
        assert_eq!(access_token_of("Basic abc"), None);
        assert_eq!(access_token_of("Bearer"), None);
    }

    #[test]
    fn bad_authority_config_refused() {
        for bad in [
            "workload.example.com",
            "https://a.example/path",
            "https://",
            "https://a?x",
        ] {
            let cfg = RpConfig::new(TrustStore::new(), vec![bad.to_owned()]);
            assert_eq!(
                RelyingParty::new(cfg).unwrap_err().code(),
                "request_invalid",
                "{bad}"
            );
        }
        let cfg = RpConfig::new(TrustStore::new(), vec![]);
        assert_eq!(
            RelyingParty::new(cfg).unwrap_err().code(),
            "request_invalid"
        );
    }

    #[test]
    fn audiences_come_from_configuration_only() {
        let cfg = RpConfig::new(TrustStore::new(), vec!["https://svc.example".into()]);
        let rp = RelyingParty::new(cfg).unwrap();
        assert_eq!(
            rp.audiences("/p?q=1"),
            vec!["https://svc.example/p".to_owned()]
        );
        assert_eq!(
            rp.audiences("https://svc.example/p#f"),
            vec!["https://svc.example/p".to_owned()]
        );
        assert!(rp.audiences("https://evil.example/p").is_empty());
        assert!(rp.audiences("https://svc.example.evil/p").is_empty());
    }
}
