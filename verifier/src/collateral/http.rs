//! HTTP GET with timeouts, HTTP 429 back-off and bounded 5xx retries, for the KDS and PCS clients.
//!
//! - Every request has a connect timeout and a total timeout; bodies are capped.
//! - 429: wait `Retry-After` seconds (or the exponential back-off when absent or an HTTP date), each wait capped, and
//!   give up once the next wait would exceed the total wait budget.
//! - 5xx and transport errors: retried up to `max_retries` times with exponential back-off.
//! - Anything else that is not 2xx (e.g. 404) fails at once.
//!
//! Errors carry a message; the caller maps them to `collateral_missing`.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// Timeouts for collateral requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Whole request, headers and body, per attempt.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(20),
        }
    }
}

/// Retry and back-off bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after a 5xx answer or a transport error (so at most `max_retries + 1` attempts for those).
    pub max_retries: u32,
    /// Retries after 429 answers.
    pub max_429_retries: u32,
    /// First back-off; doubles each retry.
    pub base_backoff: Duration,
    /// Largest single wait, whether from back-off or `Retry-After`.
    pub max_backoff: Duration,
    /// Largest total time spent waiting between attempts of one request.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            max_429_retries: 4,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(15),
            max_total_wait: Duration::from_secs(30),
        }
    }
}

/// Largest body accepted from a collateral service (a TCB info document is tens of KiB).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A successful answer.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub headers: HeaderMap,
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not found (HTTP {status})")]
    NotFound { url: String, status: u16 },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: still rate limited (HTTP 429) after {attempts} attempts")]
    RateLimited { url: String, attempts: u32 },
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url}: body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge { url: String },
    #[error("network access is disabled (offline mode)")]
    Offline,
    #[error("{0}")]
    Invalid(String),
}

/// The HTTP client shared by the KDS and PCS clients.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    retry: RetryPolicy,
}

impl HttpClient {
    pub fn new(timeouts: &Timeouts, retry: RetryPolicy) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .user_agent(concat!("locus-verifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient { client, retry })
    }

    /// GET `url`, retrying per the policy.
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let mut waited = Duration::ZERO;
        let mut errors_retried = 0u32;
        let mut limited = 0u32;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let (wait, last_error) = match self.attempt(url).await {
                Attempt::Done(result) => return result,
                Attempt::RateLimited(retry_after) => {
                    limited += 1;
                    let err = FetchError::RateLimited {
                        url: url.to_owned(),
                        attempts,
                    };
                    if limited > self.retry.max_429_retries {
                        return Err(err);
                    }
                    (
                        retry_after.unwrap_or_else(|| self.backoff(limited - 1)),
                        err,
                    )
                }
                Attempt::Retryable(err) => {
                    errors_retried += 1;
                    if errors_retried > self.retry.max_retries {
                        return Err(err);
                    }
                    (self.backoff(errors_retried - 1), err)
                }
            };
            let wait = wait.min(self.retry.max_backoff);
            if waited + wait > self.retry.max_total_wait {
                // The retry budget is spent: report the last failure.
                return Err(last_error);
            }
            tracing::debug!(
                url,
                wait_ms = wait.as_millis() as u64,
                "collateral fetch retry"
            );
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    fn backoff(&self, retry_index: u32) -> Duration {
        let factor = 1u32.checked_shl(retry_index.min(16)).unwrap_or(u32::MAX);
        self.retry
            .base_backoff
            .saturating_mul(factor)
            .min(self.retry.max_backoff)
    }

    async fn attempt(&self, url: &str) -> Attempt {
        let transport = |e: reqwest::Error| FetchError::Transport {
            url: url.to_owned(),
            message: describe(&e),
        };
        let mut resp = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Retryable(transport(e)),
        };
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Attempt::RateLimited(retry_after(resp.headers()));
        }
        if status.is_server_error() {
            return Attempt::Retryable(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        if status == StatusCode::NOT_FOUND {
            return Attempt::Done(Err(FetchError::NotFound {
                url: url.to_owned(),
                status: status.as_u16(),
            }));
        }
        if !status.is_success() {
            return Attempt::Done(Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            }));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Attempt::Done(Err(FetchError::TooLarge {
                url: url.to_owned(),
            }));
        }
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Attempt::Done(Err(FetchError::TooLarge {
                            url: url.to_owned(),
                        }));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Attempt::Retryable(transport(e)),
            }
        }
        Attempt::Done(Ok(Fetched { body, headers }))
    }
}

enum Attempt {
    Done(Result<Fetched, FetchError>),
    RateLimited(Option<Duration>),
    Retryable(FetchError),
}

/// `Retry-After` as delay-seconds; an HTTP-date or garbage gives `None` (the caller backs off exponentially).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut msg = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_accepts_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = HttpClient::new(
            &Timeouts::default(),
            RetryPolicy {
                base_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(350),
                ..RetryPolicy::default()
            },
        )
        .expect("client");
        assert_eq!(c.backoff(0), Duration::from_millis(100));
        assert_eq!(c.backoff(1), Duration::from_millis(200));
        assert_eq!(c.backoff(2), Duration::from_millis(350));
        assert_eq!(c.backoff(40), Duration::from_millis(350));
    }
}
