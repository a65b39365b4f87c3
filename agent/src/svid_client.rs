//! The verifier as the SPIFFE issuer: `POST /v1/svid` and `GET /v1/spiffe/bundle` (docs/api.md).
//!
//! `POST /v1/svid` takes `{"wit","ear"?,"request"}` — the agent's WIT, the EAR of the same attestation and the SVID
//! request signed with the attested key ([`crate::spiffe::request`]) — and answers, by `kind`:
//! `{"x509_svid":["<b64 DER>"…],"expires_at"}`, `{"jwt_svid","expires_at"}` or `{"wit","expires_at"}`. A refusal
//! is a problem document whose code is passed through ([`AgentError::Refused`]).

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use crate::client::VerifierClient;
use crate::error::AgentError;
use crate::spiffe::bundle::SpiffeBundle;
use crate::spiffe::source::{BoxFuture, IssuedJwt, IssuedWit, IssuedX509, SvidCall, SvidSource};

/// Path of SVID issuance.
pub const SVID_PATH: &str = "/v1/svid";
/// Path of the SPIFFE bundle.
pub const SPIFFE_BUNDLE_PATH: &str = "/v1/spiffe/bundle";
/// Most certificates accepted in an X.509-SVID chain.
pub const MAX_CHAIN_LEN: usize = 8;

/// [`SvidSource`] over the verifier's HTTP API.
#[derive(Debug, Clone)]
pub struct VerifierSvidSource {
    client: VerifierClient,
}

#[derive(Deserialize)]
struct X509Answer {
    x509_svid: Vec<String>,
    expires_at: u64,
}

#[derive(Deserialize)]
struct JwtAnswer {
    jwt_svid: String,
    expires_at: u64,
}

#[derive(Deserialize)]
struct WitAnswer {
    wit: String,
    expires_at: u64,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, AgentError> {
    serde_json::from_slice(body).map_err(|e| AgentError::BadResponse(format!("{what}: {e}")))
}

impl VerifierSvidSource {
    /// Issue through `client`'s verifier.
    pub fn new(client: VerifierClient) -> Self {
        Self { client }
    }

    async fn post_svid(&self, call: SvidCall) -> Result<Vec<u8>, AgentError> {
        let mut body = json!({ "wit": call.wit, "request": call.request });
        if let Some(ear) = call.ear {
            body["ear"] = ear.into();
        }
        self.client.post(SVID_PATH, &body).await
    }
}

/// Decode the `x509_svid` member: 1 to [`MAX_CHAIN_LEN`] standard-base64 DER certificates, leaf first.
pub fn decode_chain(encoded: &[String]) -> Result<Vec<Vec<u8>>, AgentError> {
    if encoded.is_empty() || encoded.len() > MAX_CHAIN_LEN {
        return Err(AgentError::BadResponse(format!(
            "x509_svid has {} certificates, expected 1 to {MAX_CHAIN_LEN}",
            encoded.len()
        )));
    }
    encoded
        .iter()
        .map(|c| {
            base64::engine::general_purpose::STANDARD
                .decode(c)
                .map_err(|e| AgentError::BadResponse(format!("x509_svid is not base64: {e}")))
        })
        .collect()
}

impl SvidSource for VerifierSvidSource {
    fn issue_x509(&self, call: SvidCall) -> BoxFuture<'_, Result<IssuedX509, AgentError>> {
        Box::pin(async move {
            let a: X509Answer = parse(&self.post_svid(call).await?, "x509-svid answer")?;
            Ok(IssuedX509 {
                chain: decode_chain(&a.x509_svid)?,
                expires_at: a.expires_at,
            })
        })
    }

    fn issue_jwt(&self, call: SvidCall) -> BoxFuture<'_, Result<IssuedJwt, AgentError>> {
        Box::pin(async move {
            let a: JwtAnswer = parse(&self.post_svid(call).await?, "jwt-svid answer")?;
            Ok(IssuedJwt {
                token: a.jwt_svid,
                expires_at: a.expires_at,
            })
        })
    }

    fn issue_wit(&self, call: SvidCall) -> BoxFuture<'_, Result<IssuedWit, AgentError>> {
        Box::pin(async move {
            let a: WitAnswer = parse(&self.post_svid(call).await?, "wit-svid answer")?;
            Ok(IssuedWit {
                wit: a.wit,
                expires_at: a.expires_at,
            })
        })
    }

    fn bundle(&self) -> BoxFuture<'_, Result<SpiffeBundle, AgentError>> {
        Box::pin(async move {
            let (body, _) = self.client.get(SPIFFE_BUNDLE_PATH).await?;
            SpiffeBundle::from_json(&body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_are_standard_base64_and_bounded() {
        let one = base64::engine::general_purpose::STANDARD.encode([0x30, 0x00]);
        assert_eq!(
            decode_chain(std::slice::from_ref(&one)).expect("one"),
            vec![vec![0x30, 0x00]]
        );
        for bad in [
            vec![],
            vec!["***".to_string()],
            vec![one; MAX_CHAIN_LEN + 1],
        ] {
            assert_eq!(
                decode_chain(&bad).expect_err("bad").code(),
                "verifier_response_invalid"
            );
        }
    }
}
