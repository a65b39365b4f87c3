//! WIMSE workload identifiers and credentials for Locus.
//!
//! - [`id`]: `spiffe://` / `wimse://` Workload Identifiers, strict and canonical ([`WorkloadId`], [`TrustDomain`]).
//! - [`jwk`]: JWK / JWKS, RFC 7638 thumbprints, algorithms ([`Jwk`], [`Jwks`], [`Alg`]).
//! - [`jws`]: compact JWS parsing and signing keys ([`Es256SigningKey`], [`Ed25519SigningKey`]).
//! - [`jwt_svid`]: JWT-SVID validation against a SPIFFE JWT bundle ([`jwt_svid::validate_jwt_svid`]).
//! - [`wit`]: Workload Identity Tokens, issue ([`WitIssuer`]) and verify ([`WitVerifier`]).
//! - [`wpt`]: Workload Proof Tokens, create ([`create_wpt`]) and verify.
//! - [`spiffe_tls`]: rustls verifiers that authenticate TLS peers by their X.509-SVID's SPIFFE ID.
//! - [`http_sig`]: HTTP Message Signatures proof of possession (draft-ietf-wimse-http-signature, RFC 9421), sign and
//!   verify, the alternative to a WPT.
//! - [`rp`]: the relying-party entry point ([`RelyingParty::verify_request`]) applying every check of both drafts.
//! - [`replay`]: the bounded `jti` replay cache (per-sender quota, `jti` length cap).
//! - [`jwks_cache`]: a sans-I/O JWKS cache (`Cache-Control`, refresh on unknown `kid`, rate-limited, stale limit).
//! - [`proximity`]: what the agent signs in a proximity round with a landmark, and the frames of that protocol.
//! - [`ear`]: EAT Attestation Results (draft-ietf-rats-ear-03) as JWT and CWT.
//! - [`error`]: [`WimseError`] and its stable codes.
//!
//! No I/O and no clock reads: keys, configuration and `now` (Unix seconds) are parameters.
//!
//! # The whole flow
//! ```
//! use locus_wimse::wpt::WptRequest;
//! use locus_wimse::*;
//!
//! # fn main() -> Result<(), WimseError> {
//! let now = 1_800_000_000;
//! // Verifier: an ES256 issuing key with a kid, published as a JWKS (`use` = `wit-svid`).
//! let issuer = WitIssuer::new(Es256SigningKey::generate()?.with_kid("k1"), Some("https://verifier.example".into()))?;
//! let jwks = Jwks::new(vec![issuer.public_jwk()]);
//!
//! // Agent: a fresh P-256 key; its RFC 7638 thumbprint goes into the evidence binding.
//! let agent_key = Es256SigningKey::generate()?;
//! let _binding: [u8; 32] = agent_key.thumbprint_sha256();
//!
//! // Verifier, after appraisal: the WIT, with Locus claims.
//! let sub = WorkloadId::parse("spiffe://example.com/ns/prod/sa/payments")?;
//! let mut extra = serde_json::Map::new();
//! extra.insert("locus_tee".into(), serde_json::json!({"type": "sev-snp", "debug": false}));
//! let (wit, _claims) = issuer.issue(&sub, &agent_key.public_jwk(), now, now + 3600, &extra)?;
//!
//! // Workload (through the agent): a proof for one request.
//! let wpt = create_wpt(&agent_key, &WptRequest::new("https://orders.example/v1/orders", &wit, now + 60))?;
//!
//! // Relying party: trust anchors per trust domain, its own authority, one call.
//! let trust = TrustStore::new().with_keys(TrustDomain::parse("example.com")?, jwks);
//! let rp = RelyingParty::new(RpConfig::new(trust, vec!["https://orders.example".into()]))?;
//! let headers = [("Workload-Identity-Token", wit.as_str()), ("Workload-Proof-Token", wpt.as_str())];
//! let ok = rp.verify_request(headers, "/v1/orders?page=2", now)?;
//! assert_eq!(ok.id, sub);
//! assert_eq!(ok.wit_claims.extra["locus_tee"]["type"], "sev-snp");
//! // The same proof again is a replay.
//! assert_eq!(rp.verify_request(headers, "/v1/orders", now).unwrap_err().code(), "replayed");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod ear;
pub mod error;
pub mod http_sig;
pub mod id;
pub mod json;
pub mod jwk;
pub mod jwks_cache;
pub mod jws;
pub mod jwt_svid;
pub mod proximity;
pub mod replay;
pub mod rp;
pub mod spiffe_tls;
pub mod wit;
pub mod wpt;

pub use ear::{Ear, EarAppraisal, TrustTier, TrustVector, VerifierId, EAR_PROFILE};
pub use error::WimseError;
pub use id::{IdReason, Scheme, TrustDomain, WorkloadId};
pub use jwk::{Alg, Jwk, Jwks, PublicKey, USE_WIT_SVID};
pub use jwks_cache::{CacheControl, JwksCache, JwksCachePolicy};
pub use jws::{Ed25519SigningKey, Es256SigningKey, JwsSigner};
pub use replay::{ReplayCache, ReplayLimits};
pub use rp::{Authenticated, RelyingParty, RpConfig};
pub use wit::{TrustAnchor, TrustStore, VerifiedWit, WitClaims, WitIssuer, WitPolicy, WitVerifier};
pub use wpt::{create_wpt, token_hash, WptClaims, WptPolicy, WptRequest};

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
