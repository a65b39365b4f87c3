//! Where SVIDs and bundles come from: the [`SvidSource`] trait. The agent's implementation is
//! [`crate::svid_client::VerifierSvidSource`] (`POST /v1/svid`, `GET /v1/spiffe/bundle`); tests plug in their own
//! issuer. The Workload API above it neither knows nor cares which.

use std::future::Future;
use std::pin::Pin;

use crate::error::AgentError;
use crate::spiffe::bundle::SpiffeBundle;

/// A boxed, sendable future (keeps [`SvidSource`] object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One issuance call: the agent's WIT, the EAR of the same attestation, and the request JWS signed with the attested
/// key ([`crate::credential::Credential::sign_svid_request`]).
#[derive(Debug, Clone)]
pub struct SvidCall {
    /// The agent's current WIT for the identity.
    pub wit: String,
    /// The EAR from the same `/v1/attest` answer, when the verifier sent one.
    pub ear: Option<String>,
    /// The signed request.
    pub request: String,
}

impl SvidCall {
    /// `req` signed with `cred`'s attested key, beside the WIT and EAR it rests on.
    pub fn signed(
        cred: &crate::credential::Credential,
        req: &super::request::SvidRequest,
    ) -> Result<SvidCall, crate::error::AgentError> {
        Ok(SvidCall {
            wit: cred.wit().to_string(),
            ear: cred.ear().map(str::to_string),
            request: cred.sign_svid_request(req)?,
        })
    }
}

/// An issued X.509-SVID.
#[derive(Debug, Clone)]
pub struct IssuedX509 {
    /// DER certificates, leaf first, up to (not including) the bundle's CA.
    pub chain: Vec<Vec<u8>>,
    /// `notAfter` as Unix seconds.
    pub expires_at: u64,
}

/// An issued JWT-SVID.
#[derive(Debug, Clone)]
pub struct IssuedJwt {
    /// The JWS.
    pub token: String,
    /// `exp`.
    pub expires_at: u64,
}

/// An issued WIT-SVID.
#[derive(Debug, Clone)]
pub struct IssuedWit {
    /// The WIT (`typ` wit+jwt) bound to the per-SVID key.
    pub wit: String,
    /// `exp`.
    pub expires_at: u64,
}

/// An SVID issuer and bundle publisher.
pub trait SvidSource: Send + Sync + 'static {
    /// Issue an X.509-SVID (`call.request` is of kind `x509-svid`).
    fn issue_x509(&self, call: SvidCall) -> BoxFuture<'_, Result<IssuedX509, AgentError>>;
    /// Issue a JWT-SVID (`jwt-svid`).
    fn issue_jwt(&self, call: SvidCall) -> BoxFuture<'_, Result<IssuedJwt, AgentError>>;
    /// Issue a WIT-SVID (`wit-svid`).
    fn issue_wit(&self, call: SvidCall) -> BoxFuture<'_, Result<IssuedWit, AgentError>>;
    /// The current SPIFFE bundle of the issuer's trust domain.
    fn bundle(&self) -> BoxFuture<'_, Result<SpiffeBundle, AgentError>>;
}
