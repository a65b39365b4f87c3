//! The verifier's HTTP API (DESIGN §7), client side: `POST /v1/challenge` and `POST /v1/attest`.
//!
//! Refusals arrive as RFC 9457 problem documents with a stable `code`, which is kept verbatim. Answers are read with
//! a size cap, and a request that does not complete within the timeout is a transport failure.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::AgentError;

/// Largest answer body read from the verifier.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// A challenge: the nonce as sent (base64url) and its raw bytes (the binding input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// As the verifier sent it; echoed back in the attest request.
    pub nonce_b64: String,
    /// Decoded bytes.
    pub nonce: Vec<u8>,
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
}

impl VerifierClient {
    /// A client for the verifier at `base` (`http(s)://host[:port][/prefix]`), with a per-request timeout.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, AgentError> {
        let trimmed = base.trim_end_matches('/');
        let parsed = reqwest::Url::parse(trimmed)
            .map_err(|e| AgentError::Config(format!("verifier URL {base:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(AgentError::Config(format!(
                "verifier URL {base:?}: must be http(s)://host[:port]"
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(AgentError::Config(format!(
                "verifier URL {base:?}: no query or fragment"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| AgentError::Internal(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: trimmed.to_string(),
            http,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /v1/challenge`.
    pub async fn challenge(&self) -> Result<Challenge, AgentError> {
        let body = self.post("/v1/challenge", &serde_json::json!({})).await?;
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
        })
    }

    /// `POST /v1/attest`.
    pub async fn attest(&self, req: &AttestRequest) -> Result<AttestResponse, AgentError> {
        let body = self.post("/v1/attest", req).await?;
        serde_json::from_slice(&body).map_err(|e| AgentError::BadResponse(format!("attest: {e}")))
    }

    async fn post<T: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Vec<u8>, AgentError> {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(|e| AgentError::Unreachable(format!("{url}: {}", error_chain(&e))))?;
        let status = resp.status();
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
            return Ok(bytes);
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
        for bad in ["ftp://x", "not a url", "http://x/?a=b", "unix:/tmp/s"] {
            let err = VerifierClient::new(bad, t).expect_err(bad);
            assert_eq!(err.code(), "config_invalid", "{bad}");
        }
    }
}
