//! The verifier's HTTP API (docs/api.md), client side: `POST /v1/challenge`, `POST /v1/attest`, and
//! `GET /.well-known/jwks.json` to verify every WIT it issues before the agent serves it.
//!
//! Transport: `https://` (rustls) only; plain `http://` only to a loopback host (127.0.0.0/8, `::1`, `localhost`)
//! or through [`VerifierClient::danger_insecure_http`] (`--insecure-http`). Redirects are never followed.
//! Refusals arrive as RFC 9457 problem documents with a stable `code`, which is kept verbatim. Answers are read with
//! a size cap, and a request that does not complete within the timeout is a transport failure.
//!
//! WIT check ([`VerifierClient::verify_wit`]): the verifier's keys are cached in a `locus_wimse::JwksCache` shared by
//! every clone of the client (so renewals reuse them), refreshed when stale (`Cache-Control`) or when a WIT names an
//! unknown `kid` (at most once per 30 s), and the WIT must pass `locus_wimse`'s strict `WitVerifier` under them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use locus_wimse::jws::CompactJws;
use locus_wimse::{
    Jwk, JwksCache, JwksCachePolicy, TrustStore, VerifiedWit, WitPolicy, WitVerifier, WorkloadId,
};
use serde::{Deserialize, Serialize};

use crate::error::AgentError;

/// Where the verifier publishes its WIT signing keys (docs/architecture.md#credentials, docs/api.md).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Largest answer body read from the verifier.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// A challenge: the nonce as sent (base64url) and its raw bytes (the binding input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// As the verifier sent it; echoed back in the attest request.
    pub nonce_b64: String,
    /// Decoded bytes.
    pub nonce: Vec<u8>,
    /// Landmarks to collect proximity statements from before attesting (docs/proximity.md).
    pub landmarks: Vec<LandmarkRef>,
}

/// A landmark named in the challenge answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LandmarkRef {
    /// The verifier's name for it.
    pub name: String,
    /// Its base URL (`<url>/v1/proximity` is dialled).
    pub url: String,
    /// base64url of its id (what the agent signs for; a landmark asking for another is refused).
    pub id: String,
}

/// The body of `POST /v1/attest`.
#[derive(Debug, Clone, Serialize)]
pub struct AttestRequest {
    /// The challenge nonce, base64url as received.
    pub nonce: String,
    /// `sev-snp` or `tdx`.
    pub tee: String,
    /// The raw report or quote, base64url.
    pub evidence: String,
    /// DER certificates shipped with the evidence, base64url.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<String>,
    /// The agent's public JWK.
    pub jwk: serde_json::Value,
    /// The Workload Identifier asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Proximity statements (base64url COSE_Sign1) collected from landmarks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proximity: Vec<String>,
}

impl AttestRequest {
    /// The body for `evidence`, answering the challenge whose nonce arrived as `nonce_b64`, for the key `jwk`.
    pub fn new(
        nonce_b64: String,
        evidence: &locus_hw::Evidence,
        jwk: &Jwk,
        workload: Option<&str>,
        proximity: Vec<String>,
    ) -> Self {
        AttestRequest {
            nonce: nonce_b64,
            tee: evidence.tee.as_str().to_string(),
            evidence: locus_wimse::b64::encode(&evidence.raw),
            certs: evidence
                .certs
                .iter()
                .map(locus_wimse::b64::encode)
                .collect(),
            jwk: jwk.to_value(),
            workload: workload.map(str::to_string),
            proximity,
        }
    }
}

/// The answer of `POST /v1/attest`.
#[derive(Debug, Clone, Deserialize)]
pub struct AttestResponse {
    /// The WIT (compact JWS).
    pub wit: String,
    /// The EAR, when the verifier sends one.
    #[serde(default)]
    pub ear: Option<String>,
    /// As sent (RFC 3339 or Unix seconds); the WIT's `exp` is authoritative.
    #[serde(default)]
    pub expires_at: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChallengeResponse {
    nonce: String,
    #[serde(default)]
    landmarks: Vec<LandmarkRef>,
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

/// A client for one verifier.
#[derive(Debug, Clone)]
pub struct VerifierClient {
    base: String,
    http: reqwest::Client,
    /// The verifier's WIT signing keys, shared by every clone so that renewals reuse them. An async mutex held
    /// across the fetch: concurrent checks wait for one fetch instead of each starting their own.
    keys: Arc<tokio::sync::Mutex<JwksCache>>,
    /// `--insecure-http`: plain `http://` to non-loopback hosts (landmark URLs follow the same rule).
    insecure_http: bool,
}

/// Whether `host` (as in a URL: IPv6 in brackets) is a loopback address or `localhost`.
fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

impl VerifierClient {
    /// A client for the verifier at `base` (`https://host[:port][/prefix]`, or `http://` to a loopback host), with a
    /// per-request timeout.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, AgentError> {
        Self::build(base, timeout, false, None)
    }

    /// Like [`VerifierClient::new`], but the verifier's TLS certificate must chain to `ca_pem` (one or more PEM
    /// certificates) and to nothing else: a private CA for the verifier, pinned (`--verifier-ca FILE`).
    pub fn with_ca(base: &str, timeout: Duration, ca_pem: &[u8]) -> Result<Self, AgentError> {
        Self::build(base, timeout, false, Some(ca_pem))
    }

    /// **Weakens transport security.** Like [`VerifierClient::new`], but plain `http://` to any host: whoever is on
    /// the path sees the evidence and can answer in the verifier's place (the WIT check against the JWKS fetched
    /// over the same channel does not help then). For test networks only (`--insecure-http`); logs at `warn`.
    pub fn danger_insecure_http(base: &str, timeout: Duration) -> Result<Self, AgentError> {
        let client = Self::build(base, timeout, true, None)?;
        if client.base.starts_with("http://") {
            tracing::warn!(verifier = %client.base, "--insecure-http: talking to the verifier over plain HTTP");
        }
        Ok(client)
    }

    fn build(
        base: &str,
        timeout: Duration,
        insecure_http: bool,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, AgentError> {
        let trimmed = base.trim_end_matches('/');
        let parsed = reqwest::Url::parse(trimmed)
            .map_err(|e| AgentError::Config(format!("verifier URL {base:?}: {e}")))?;
        let host = parsed.host_str().unwrap_or_default();
        if !matches!(parsed.scheme(), "http" | "https") || host.is_empty() {
            return Err(AgentError::Config(format!(
                "verifier URL {base:?}: must be https://host[:port]"
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(AgentError::Config(format!(
                "verifier URL {base:?}: no query or fragment"
            )));
        }
        let https = parsed.scheme() == "https";
        if !https && !insecure_http && !is_loopback_host(host) {
            return Err(AgentError::Config(format!(
                "verifier URL {base:?}: must be https:// (plain http:// only to a loopback host, or with \
                 --insecure-http)"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(https);
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| AgentError::Config(format!("verifier CA: {e}")))?;
            if certs.is_empty() {
                return Err(AgentError::Config("verifier CA: no PEM certificate".into()));
            }
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder
            .build()
            .map_err(|e| AgentError::Internal(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: trimmed.to_string(),
            http,
            keys: Arc::new(tokio::sync::Mutex::new(JwksCache::new(
                JwksCachePolicy::default(),
            ))),
            insecure_http,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`: the body and its `Cache-Control` value.
    pub(crate) async fn get(&self, path: &str) -> Result<(Vec<u8>, Option<String>), AgentError> {
        let url = format!("{}{path}", self.base);
        self.call(&url, self.http.get(&url)).await
    }

    /// `POST /v1/challenge` with `{}`.
    pub async fn challenge(&self) -> Result<Challenge, AgentError> {
        self.challenge_for(None).await
    }

    /// `POST /v1/challenge` naming the workload the agent will ask for, so the answer lists the landmarks its
    /// geo-fence needs.
    pub async fn challenge_for(&self, workload: Option<&str>) -> Result<Challenge, AgentError> {
        let req = match workload {
            Some(w) => serde_json::json!({ "workload": w }),
            None => serde_json::json!({}),
        };
        let body = self.post("/v1/challenge", &req).await?;
        let ch: ChallengeResponse = serde_json::from_slice(&body)
            .map_err(|e| AgentError::BadResponse(format!("challenge: {e}")))?;
        let nonce = locus_wimse::b64::decode(&ch.nonce).map_err(|e| {
            AgentError::BadResponse(format!("challenge nonce is not base64url: {e}"))
        })?;
        if nonce.is_empty() {
            return Err(AgentError::BadResponse("challenge nonce is empty".into()));
        }
        Ok(Challenge {
            nonce_b64: ch.nonce,
            nonce,
            landmarks: ch.landmarks,
        })
    }

    /// `POST /v1/attest`.
    pub async fn attest(&self, req: &AttestRequest) -> Result<AttestResponse, AgentError> {
        let body = self.post("/v1/attest", req).await?;
        serde_json::from_slice(&body).map_err(|e| AgentError::BadResponse(format!("attest: {e}")))
    }

    /// `GET /.well-known/jwks.json`: the body and its `Cache-Control` value.
    pub async fn jwks(&self) -> Result<(Vec<u8>, Option<String>), AgentError> {
        self.get(JWKS_PATH).await
    }

    /// Verify a WIT the verifier issued, at `now` (Unix seconds), against the verifier's JWKS with the strict
    /// `locus_wimse` policy (ES256, `kid`, no `aud`, bounded lifetime). The keys come from the cache, fetched when
    /// missing, stale or lacking the WIT's `kid` (rate-limited). The agent trusts this verifier for whatever trust
    /// domain it issues in, so the keys are anchored at the WIT's own trust domain.
    pub async fn verify_wit(&self, wit: &str, now: u64) -> Result<VerifiedWit, AgentError> {
        let invalid = |e: locus_wimse::WimseError| AgentError::WitInvalid {
            code: e.code(),
            detail: e.to_string(),
        };
        let jws = CompactJws::parse(wit)
            .map_err(|e| AgentError::BadResponse(format!("WIT is not a compact JWS: {e}")))?;
        let claims = jws
            .claims()
            .map_err(|e| AgentError::BadResponse(format!("WIT claims: {e}")))?;
        let sub = claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| AgentError::BadResponse("WIT has no string sub".into()))?;
        let sub = WorkloadId::parse(sub).map_err(invalid)?;
        let keys = {
            let mut cache = self.keys.lock().await;
            let mut fetch_error = None;
            if cache.needs_fetch(now, jws.header.kid.as_deref()) {
                match self.jwks().await {
                    Ok((body, cache_control)) => {
                        if let Err(e) = cache.on_fetched(now, &body, cache_control.as_deref()) {
                            tracing::warn!(code = e.code(), error = %e, "the verifier's JWKS does not parse");
                            fetch_error = Some(AgentError::BadResponse(format!("JWKS: {e}")));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(code = e.code(), error = %e, "fetching the verifier's JWKS failed");
                        cache.on_fetch_failed(now, e.to_string());
                        fetch_error = Some(e);
                    }
                }
            }
            match (cache.keys(now), fetch_error) {
                (Ok(keys), _) => keys.clone(),
                // No usable keys: the fetch's own error says more than "unavailable".
                (Err(_), Some(e)) => return Err(e),
                (Err(e), None) => return Err(AgentError::BadResponse(e.to_string())),
            }
        };
        let trust = TrustStore::new().with_keys(sub.trust_domain(), keys);
        WitVerifier::new(trust, WitPolicy::default())
            .verify(wit, now)
            .map_err(invalid)
    }

    /// `GET <url>/v1/proximity` asking to upgrade to the proximity protocol, over this client's transport (the
    /// same TLS trust; plain `http://` under the same rule as the verifier's URL). Returns the upgraded stream.
    pub async fn upgrade_to_landmark(&self, url: &str) -> Result<reqwest::Upgraded, AgentError> {
        let base = url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base)
            .map_err(|e| AgentError::BadResponse(format!("landmark URL {url:?}: {e}")))?;
        let plain = parsed.scheme() == "http";
        let allowed = parsed.scheme() == "https"
            || (plain
                && (self.insecure_http || is_loopback_host(parsed.host_str().unwrap_or_default())));
        if !allowed {
            return Err(AgentError::BadResponse(format!(
                "landmark URL {url:?}: must be https:// (plain http:// only to a loopback host, or with \
                 --insecure-http)"
            )));
        }
        let target = format!("{base}{}", locus_wimse::proximity::PATH);
        let resp = self
            .http
            .get(&target)
            .header(reqwest::header::CONNECTION, "upgrade")
            .header(
                reqwest::header::UPGRADE,
                locus_wimse::proximity::UPGRADE_TOKEN,
            )
            .send()
            .await
            .map_err(|e| AgentError::Unreachable(format!("{target}: {}", error_chain(&e))))?;
        if resp.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            let status = resp.status();
            let bytes = resp.bytes().await.unwrap_or_default();
            return Err(match serde_json::from_slice::<Problem>(&bytes) {
                Ok(Problem {
                    code: Some(code),
                    detail,
                    title,
                }) if !code.is_empty() => AgentError::Refused {
                    status: status.as_u16(),
                    code,
                    message: detail.or(title).unwrap_or_default(),
                },
                _ => AgentError::BadResponse(format!("{target}: HTTP {status}, not an upgrade")),
            });
        }
        resp.upgrade()
            .await
            .map_err(|e| AgentError::Unreachable(format!("{target}: upgrade: {}", error_chain(&e))))
    }

    pub(crate) async fn post<T: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Vec<u8>, AgentError> {
        let url = format!("{}{path}", self.base);
        let (body, _) = self.call(&url, self.http.post(&url).json(body)).await?;
        Ok(body)
    }

    /// Send, read the answer with the size cap, and map a refusal to its code. Returns the body and the
    /// `Cache-Control` value of a successful answer.
    async fn call(
        &self,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<(Vec<u8>, Option<String>), AgentError> {
        let mut resp = req
            .send()
            .await
            .map_err(|e| AgentError::Unreachable(format!("{url}: {}", error_chain(&e))))?;
        let status = resp.status();
        let cache_control = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            AgentError::Unreachable(format!("{url}: reading the answer: {}", error_chain(&e)))
        })? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(AgentError::BadResponse(format!(
                    "{url}: answer larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok((bytes, cache_control));
        }
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(Problem {
                code: Some(code),
                detail,
                title,
            }) if !code.is_empty() => Err(AgentError::Refused {
                status: status.as_u16(),
                code,
                message: detail.or(title).unwrap_or_default(),
            }),
            _ => Err(AgentError::BadResponse(format!(
                "{url}: HTTP {status} without a problem document carrying a code"
            ))),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_url_must_be_http_without_query() {
        let t = Duration::from_secs(1);
        assert!(VerifierClient::new("http://127.0.0.1:8080/", t).is_ok());
        assert_eq!(
            VerifierClient::new("https://v.example/", t)
                .map(|c| c.base().to_string())
                .ok(),
            Some("https://v.example".into())
        );
        for bad in ["ftp://x", "not a url", "https://x/?a=b", "unix:/tmp/s"] {
            let err = VerifierClient::new(bad, t).expect_err(bad);
            assert_eq!(err.code(), "config_invalid", "{bad}");
        }
    }

    #[test]
    fn plain_http_only_to_loopback_unless_insecure_http() {
        let t = Duration::from_secs(1);
        for loopback in [
            "http://127.0.0.1:8080",
            "http://127.9.8.7",
            "http://[::1]:8443/",
            "http://localhost:8443",
            "http://LOCALHOST",
        ] {
            assert!(VerifierClient::new(loopback, t).is_ok(), "{loopback}");
        }
        for remote in [
            "http://verifier.example:8443",
            "http://10.0.0.1",
            "http://[2001:db8::1]",
            "http://localhost.example",
            "http://128.0.0.1",
        ] {
            let err = VerifierClient::new(remote, t).expect_err(remote);
            assert_eq!(err.code(), "config_invalid", "{remote}");
            assert!(err.to_string().contains("--insecure-http"), "{err}");
            assert!(
                VerifierClient::danger_insecure_http(remote, t).is_ok(),
                "{remote}"
            );
        }
        // The danger constructor keeps every other rule.
        assert_eq!(
            VerifierClient::danger_insecure_http("ftp://x", t)
                .expect_err("ftp")
                .code(),
            "config_invalid"
        );
    }
}
