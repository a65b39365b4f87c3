//! The verifier as SPIFFE issuer for its trust domain (docs/api.md#post-v1svid): an X.509 CA whose keys rotate like the
//! WIT keys ([`ca`], [`x509`]), X.509-SVIDs, JWT-SVIDs and WIT-SVIDs for per-SVID keys the agent asks for with its
//! attested key ([`svid`]), and the SPIFFE and WIMSE trust bundles with the trust-domain discovery document
//! ([`bundle`]); [`http`] puts them on the router.
//!
//! The attested key never leaves the agent and never certifies anything here: every SVID is for a key the agent made
//! for it, and the agent proves it holds the attested key by signing the request.

pub mod bundle;
pub mod ca;
pub mod http;
pub mod svid;
pub mod x509;
