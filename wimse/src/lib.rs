//! WIMSE workload identifiers and credentials for Locus.
//!
//! - [`id`]: `spiffe://` / `wimse://` Workload Identifiers, strict and canonical ([`WorkloadId`], [`TrustDomain`]).
//! - [`jwk`]: JWK / JWKS, RFC 7638 thumbprints, algorithms ([`Jwk`], [`Jwks`], [`Alg`]).
//! - [`jws`]: compact JWS parsing and signing keys ([`Es256SigningKey`], [`Ed25519SigningKey`]).
//! - [`wit`]: Workload Identity Tokens, issue ([`WitIssuer`]) and verify ([`WitVerifier`]).
//! - [`wpt`]: Workload Proof Tokens, create ([`create_wpt`]) and verify.
//! - [`rp`]: the relying-party entry point ([`RelyingParty::verify_request`]) applying every check of both drafts.
//! - [`replay`]: the bounded `jti` replay cache.
//! - [`ear`]: EAT Attestation Results (draft-ietf-rats-ear-03) as JWT and CWT.
//! - [`error`]: [`WimseError`] and its stable codes.
//!
//! No I/O and no clock reads: keys, configuration and `now` (Unix seconds) are parameters.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod ear;
pub mod error;
pub mod id;
pub mod json;
pub mod jwk;
pub mod jws;
pub mod replay;
pub mod rp;
pub mod wit;
pub mod wpt;

pub use ear::{Ear, EarAppraisal, TrustTier, TrustVector, VerifierId, EAR_PROFILE};
pub use error::WimseError;
pub use id::{IdReason, Scheme, TrustDomain, WorkloadId};
pub use jwk::{Alg, Jwk, Jwks, PublicKey, USE_WIT_SVID};
pub use jws::{Ed25519SigningKey, Es256SigningKey, JwsSigner};
pub use replay::ReplayCache;
pub use rp::{Authenticated, RelyingParty, RpConfig};
pub use wit::{TrustAnchor, TrustStore, VerifiedWit, WitClaims, WitIssuer, WitPolicy, WitVerifier};
pub use wpt::{create_wpt, token_hash, WptClaims, WptRequest};

/// base64url without padding, strict on input (no padding, canonical trailing bits).
pub mod b64 {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    /// Encode.
    pub fn encode(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decode; padding, non-alphabet characters and non-zero trailing bits are errors.
    pub fn decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
        URL_SAFE_NO_PAD.decode(s)
    }
}
