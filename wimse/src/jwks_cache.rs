//! A JWKS cache for relying parties and agents that fetch an issuer's `/.well-known/jwks.json`, without I/O: the
//! caller fetches (HTTP, a file, a test double) and hands the body, its `Cache-Control` value and `now` in.
//!
//! The flow, per token to verify:
//! 1. [`JwksCache::needs_fetch`]`(now, kid)`: fetch when nothing is cached, when the cached set is past its
//!    freshness lifetime, or when the token names a `kid` the cached set lacks (a rotation) — but never more than
//!    once per [`JwksCachePolicy::refresh_interval`], so tokens with made-up `kid`s cannot turn into a flood of
//!    fetches, and a failing endpoint is not hammered;
//! 2. the caller fetches and reports [`JwksCache::on_fetched`] (body and `Cache-Control`) or
//!    [`JwksCache::on_fetch_failed`];
//! 3. [`JwksCache::keys`]`(now)` gives the set to verify with. A failed or unparsable refresh keeps the previous set,
//!    for at most [`JwksCachePolicy::max_stale`] past its freshness lifetime; after that there are no keys
//!    (`jwks_unavailable`), because a key the issuer withdrew must stop verifying eventually.
//!
//! Freshness comes from `Cache-Control` (RFC 9111 §5.2.2): `max-age`, with `no-store` / `no-cache` / `max-age=0`
//! meaning "stale at once"; it is clamped to [`JwksCachePolicy::min_max_age`] ..
//! [`JwksCachePolicy::max_max_age`], and [`JwksCachePolicy::default_max_age`] applies when the header says nothing.
//! [`JwksCache::get_with`] runs the whole flow for callers with a blocking fetch function.

use crate::error::WimseError;
use crate::jwk::Jwks;

/// Tuning of a [`JwksCache`], seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksCachePolicy {
    /// Freshness lifetime when the answer has no usable `Cache-Control` freshness (default 300).
    pub default_max_age: u64,
    /// Shortest freshness lifetime, whatever the header says (default 30): `no-store` must not mean a fetch per
    /// token.
    pub min_max_age: u64,
    /// Longest freshness lifetime (default 86 400).
    pub max_max_age: u64,
    /// At most one fetch attempt per this many seconds, for unknown `kid`s and after failures (default 30).
    pub refresh_interval: u64,
    /// How long past its freshness lifetime a set is still used while refreshes fail (default 86 400).
    pub max_stale: u64,
}

impl Default for JwksCachePolicy {
    fn default() -> Self {
        Self {
            default_max_age: 300,
            min_max_age: 30,
            max_max_age: 86_400,
            refresh_interval: 30,
            max_stale: 86_400,
        }
    }
}

/// The cache. Not synchronised: the owner wraps it in the lock it needs (an async mutex across an async fetch
/// gives single-flight for free).
#[derive(Debug, Clone)]
pub struct JwksCache {
    policy: JwksCachePolicy,
    /// The last set that parsed; kept when a refresh fails.
    keys: Option<Jwks>,
    /// Fresh until this second (exclusive).
    fresh_until: u64,
    /// The last fetch attempt, successful or not (the rate limit's reference).
    last_attempt: Option<u64>,
    /// Why the last attempt failed, for error messages.
    last_error: Option<String>,
}

impl JwksCache {
    /// An empty cache.
    pub fn new(policy: JwksCachePolicy) -> Self {
        Self {
            policy,
            keys: None,
            fresh_until: 0,
            last_attempt: None,
            last_error: None,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &JwksCachePolicy {
        &self.policy
    }

    /// Whether a fetch should happen now before verifying a token naming `kid`: something is wanted (nothing
    /// cached, stale, or `kid` unknown) and the rate limit allows an attempt.
    pub fn needs_fetch(&self, now: u64, kid: Option<&str>) -> bool {
        let wanted = match &self.keys {
            None => true,
            Some(keys) => now >= self.fresh_until || kid.is_some_and(|k| keys.find(k).is_none()),
        };
        wanted
            && self
                .last_attempt
                .is_none_or(|t| now >= t.saturating_add(self.policy.refresh_interval))
    }

    /// Record a successful fetch at `now`: the body and the `Cache-Control` header value, if any. A body that is
    /// not a JWKS is a failed attempt (the previous set stays) and its error is returned.
    pub fn on_fetched(
        &mut self,
        now: u64,
        body: &[u8],
        cache_control: Option<&str>,
    ) -> Result<(), WimseError> {
        self.last_attempt = Some(now);
        let parsed = std::str::from_utf8(body)
            .map_err(|_| WimseError::key("JWKS body is not UTF-8"))
            .and_then(Jwks::from_json);
        match parsed {
            Ok(keys) => {
                let max_age = cache_control
                    .map(CacheControl::parse)
                    .and_then(|cc| cc.freshness())
                    .unwrap_or(self.policy.default_max_age)
                    .clamp(
                        self.policy.min_max_age,
                        self.policy.max_max_age.max(self.policy.min_max_age),
                    );
                self.keys = Some(keys);
                self.fresh_until = now.saturating_add(max_age);
                self.last_error = None;
                Ok(())
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Record a failed fetch at `now` (the previous set stays).
    pub fn on_fetch_failed(&mut self, now: u64, why: impl Into<String>) {
        self.last_attempt = Some(now);
        self.last_error = Some(why.into());
    }

    /// The set to verify with at `now`: the last good one, unless it is older than its freshness lifetime plus
    /// [`JwksCachePolicy::max_stale`] (`jwks_unavailable`, with the last failure's reason).
    pub fn keys(&self, now: u64) -> Result<&Jwks, WimseError> {
        let unavailable = |what: &str| WimseError::JwksUnavailable {
            detail: match &self.last_error {
                Some(e) => format!("{what}; last fetch failed: {e}"),
                None => what.to_owned(),
            },
        };
        match &self.keys {
            None => Err(unavailable("no key set fetched yet")),
            Some(_) if now >= self.fresh_until.saturating_add(self.policy.max_stale) => Err(
                unavailable("the last key set is past its freshness lifetime and the stale limit"),
            ),
            Some(keys) => Ok(keys),
        }
    }

    /// Whether the cached set is within its freshness lifetime at `now`.
    pub fn is_fresh(&self, now: u64) -> bool {
        self.keys.is_some() && now < self.fresh_until
    }

    /// The whole flow with a blocking `fetch` returning `(body, Cache-Control value)`: fetch if
    /// [`JwksCache::needs_fetch`], record the outcome, return [`JwksCache::keys`].
    pub fn get_with<E: std::fmt::Display>(
        &mut self,
        now: u64,
        kid: Option<&str>,
        fetch: impl FnOnce() -> Result<(Vec<u8>, Option<String>), E>,
    ) -> Result<&Jwks, WimseError> {
        if self.needs_fetch(now, kid) {
            match fetch() {
                // A bad body is recorded inside; the previous set (if any) still answers below.
                Ok((body, cc)) => {
                    let _ = self.on_fetched(now, &body, cc.as_deref());
                }
                Err(e) => self.on_fetch_failed(now, e.to_string()),
            }
        }
        self.keys(now)
    }
}

/// The freshness directives of a `Cache-Control` value (RFC 9111 §5.2.2), as a private cache reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheControl {
    /// `max-age` in seconds; `Some(0)` also for an invalid or conflicting `max-age` (§4.2.1: treat as stale).
    pub max_age: Option<u64>,
    /// `no-store`.
    pub no_store: bool,
    /// `no-cache` without field names (with field names it concerns header fields only, not the body we keep).
    pub no_cache: bool,
}

/// RFC 9111 §1.2.2: a delta-seconds value too large for us is taken as 2^31.
const DELTA_SECONDS_MAX: u64 = 2_147_483_648;

impl CacheControl {
    /// Parse a `Cache-Control` field value: `#( token [ "=" ( token / quoted-string ) ] )`, names case-insensitive,
    /// unknown directives ignored. Parsing stops at the first syntax error; what was read until then counts, and a
    /// broken `max-age` makes the response stale.
    pub fn parse(value: &str) -> Self {
        let mut out = Self::default();
        let mut max_ages: Vec<Option<u64>> = Vec::new();
        let mut p = Cursor {
            b: value.as_bytes(),
            i: 0,
        };
        loop {
            p.skip_ows_and_commas();
            if p.done() {
                break;
            }
            let Some(name) = p.token() else {
                // Not a directive name: the rest cannot be read reliably.
                if max_ages.is_empty() {
                    max_ages.push(None);
                }
                break;
            };
            p.skip_ows();
            let arg = if p.eat(b'=') {
                p.skip_ows();
                match p.token().map(str::to_owned).or_else(|| p.quoted()) {
                    Some(a) => Some(a),
                    None => {
                        if name.eq_ignore_ascii_case("max-age") {
                            max_ages.push(None);
                        }
                        break;
                    }
                }
            } else {
                None
            };
            if name.eq_ignore_ascii_case("max-age") {
                max_ages.push(arg.as_deref().and_then(delta_seconds));
            } else if name.eq_ignore_ascii_case("no-store") {
                out.no_store = true;
            } else if name.eq_ignore_ascii_case("no-cache") && arg.is_none() {
                out.no_cache = true;
            }
            p.skip_ows();
            if !p.done() && !p.eat(b',') {
                // Garbage after a directive.
                break;
            }
        }
        out.max_age = match max_ages.as_slice() {
            [] => None,
            [first, rest @ ..] => {
                // Several max-age directives that disagree, or an invalid one: stale (§4.2.1).
                if first.is_some() && rest.iter().all(|m| m == first) {
                    *first
                } else {
                    Some(0)
                }
            }
        };
        out
    }

    /// Seconds the response may be used without revalidation; `None` when the header says nothing about it.
    pub fn freshness(&self) -> Option<u64> {
        if self.no_store || self.no_cache {
            Some(0)
        } else {
            self.max_age
        }
    }
}

/// `1*DIGIT`, saturating at 2^31.
fn delta_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = v.saturating_mul(10).saturating_add(u64::from(b - b'0'));
        if v >= DELTA_SECONDS_MAX {
            return Some(DELTA_SECONDS_MAX);
        }
    }
    Some(v)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_ows_and_commas(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// RFC 9110 `token` (1*tchar).
    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self
            .b
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(c))
        {
            self.i += 1;
        }
        (self.i > start)
            .then(|| std::str::from_utf8(&self.b[start..self.i]).ok())
            .flatten()
    }

    /// RFC 9110 `quoted-string`, unescaped.
    fn quoted(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            match self.b.get(self.i).copied() {
                None => return None,
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).ok();
                }
                Some(b'\\') => {
                    out.push(*self.b.get(self.i + 1)?);
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::Jwk;
    use crate::jws::Es256SigningKey;

    fn jwks_json(kids: &[&str]) -> Vec<u8> {
        let keys = kids
            .iter()
            .map(|k| {
                Es256SigningKey::generate()
                    .unwrap()
                    .with_kid(*k)
                    .public_jwk()
            })
            .collect::<Vec<Jwk>>();
        Jwks::new(keys).to_json().into_bytes()
    }

    fn policy() -> JwksCachePolicy {
        JwksCachePolicy {
            default_max_age: 300,
            min_max_age: 30,
            max_max_age: 3600,
            refresh_interval: 10,
            max_stale: 1000,
        }
    }

    #[test]
    fn cache_control_max_age_forms() {
        let fresh = |v: &str| CacheControl::parse(v).freshness();
        assert_eq!(fresh("public, max-age=60"), Some(60));
        assert_eq!(fresh("MAX-AGE=60"), Some(60));
        assert_eq!(fresh("max-age=\"60\""), Some(60));
        assert_eq!(fresh(" , max-age = 60 ,"), Some(60));
        assert_eq!(fresh("max-age=60, max-age=60"), Some(60));
        assert_eq!(fresh("public"), None);
        assert_eq!(fresh(""), None);
        assert_eq!(
            fresh("s-maxage=100"),
            None,
            "shared-cache directive ignored"
        );
        assert_eq!(
            fresh("max-age=99999999999999999999"),
            Some(DELTA_SECONDS_MAX)
        );
    }

    #[test]
    fn cache_control_stale_forms() {
        let fresh = |v: &str| CacheControl::parse(v).freshness();
        assert_eq!(fresh("no-store"), Some(0));
        assert_eq!(fresh("max-age=60, no-cache"), Some(0));
        assert_eq!(fresh("max-age=0"), Some(0));
        // Invalid or conflicting max-age: stale.
        assert_eq!(fresh("max-age=-1"), Some(0));
        assert_eq!(fresh("max-age=1.5"), Some(0));
        assert_eq!(fresh("max-age="), Some(0));
        assert_eq!(fresh("max-age=60, max-age=120"), Some(0));
        assert_eq!(fresh("max-age"), Some(0));
        // A qualified no-cache concerns header fields only.
        assert_eq!(fresh("no-cache=\"set-cookie, x\", max-age=60"), Some(60));
        // Escapes inside a quoted string do not end it.
        assert_eq!(fresh("private=\"a\\\"b, c\", max-age=5"), Some(5));
        // Garbage stops the parse; a max-age read before it still counts.
        assert_eq!(fresh("max-age=60 garbage"), Some(60));
        assert_eq!(fresh("max-age=\"60"), Some(0));
    }

    #[test]
    fn first_fetch_then_cached_until_max_age() {
        let mut c = JwksCache::new(policy());
        assert!(c.needs_fetch(1000, None));
        assert_eq!(c.keys(1000).unwrap_err().code(), "jwks_unavailable");
        c.on_fetched(1000, &jwks_json(&["a"]), Some("max-age=60"))
            .unwrap();
        assert!(c.is_fresh(1059) && !c.is_fresh(1060));
        assert!(!c.needs_fetch(1059, Some("a")));
        assert!(c.needs_fetch(1060, Some("a")));
        assert!(c.keys(1059).unwrap().find("a").is_some());
    }

    #[test]
    fn max_age_is_clamped_and_defaulted() {
        let mut c = JwksCache::new(policy());
        c.on_fetched(0, &jwks_json(&["a"]), Some("no-store"))
            .unwrap();
        assert!(c.is_fresh(29) && !c.is_fresh(30), "floor 30 s");
        c.on_fetched(100, &jwks_json(&["a"]), Some("max-age=999999"))
            .unwrap();
        assert!(c.is_fresh(3699) && !c.is_fresh(3700), "ceiling 3600 s");
        c.on_fetched(5000, &jwks_json(&["a"]), None).unwrap();
        assert!(c.is_fresh(5299) && !c.is_fresh(5300), "default 300 s");
    }

    #[test]
    fn unknown_kid_refreshes_at_most_once_per_interval() {
        let mut c = JwksCache::new(policy());
        c.on_fetched(1000, &jwks_json(&["a"]), Some("max-age=3600"))
            .unwrap();
        assert!(!c.needs_fetch(1005, Some("a")));
        assert!(
            !c.needs_fetch(1005, Some("b")),
            "rate limit since the last fetch"
        );
        assert!(c.needs_fetch(1010, Some("b")));
        c.on_fetched(1010, &jwks_json(&["a"]), Some("max-age=3600"))
            .unwrap();
        // Still unknown after the refresh: no new attempt until the interval has passed again.
        for t in 1010..1020 {
            assert!(!c.needs_fetch(t, Some("b")), "{t}");
        }
        assert!(c.needs_fetch(1020, Some("b")));
    }

    #[test]
    fn failed_or_bad_refresh_keeps_the_old_set_until_the_stale_limit() {
        let mut c = JwksCache::new(policy());
        c.on_fetched(0, &jwks_json(&["a"]), Some("max-age=60"))
            .unwrap();
        c.on_fetch_failed(60, "connection refused");
        assert!(c.keys(60).unwrap().find("a").is_some());
        assert!(!c.needs_fetch(65, None), "back-off after a failure");
        let e = c.on_fetched(70, b"{\"keys\":7}", None).unwrap_err();
        assert_eq!(e.code(), "key_invalid");
        assert!(c.keys(70).unwrap().find("a").is_some());
        assert!(c.keys(1059).is_ok());
        let e = c.keys(1060).unwrap_err();
        assert_eq!(e.code(), "jwks_unavailable");
        assert!(e.to_string().contains("last fetch failed"), "{e}");
    }

    #[test]
    fn get_with_fetches_only_when_needed() {
        let mut c = JwksCache::new(policy());
        let fetches = std::cell::Cell::new(0);
        let body = jwks_json(&["a"]);
        let fetch = || {
            fetches.set(fetches.get() + 1);
            Ok::<_, String>((body.clone(), Some("max-age=100".to_owned())))
        };
        assert!(c.get_with(0, Some("a"), fetch).is_ok());
        assert!(c.get_with(50, Some("a"), fetch).is_ok());
        assert_eq!(c.get_with(50, Some("z"), fetch).unwrap().find("z"), None);
        assert_eq!(
            fetches.get(),
            2,
            "first fetch, then one refresh for the unknown kid"
        );
        let e = JwksCache::new(policy())
            .get_with(0, None, || Err::<(Vec<u8>, Option<String>), _>("refused"))
            .unwrap_err();
        assert_eq!(e.code(), "jwks_unavailable");
        assert!(e.to_string().contains("refused"));
    }
}
