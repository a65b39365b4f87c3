//! The SPIFFE Workload API (`locus-agent run --spiffe-socket PATH`): gRPC over a Unix socket, for workloads that
//! speak SPIFFE (go-spiffe, py-spiffe, java-spiffe, the Rust `spiffe` crate, Envoy, spiffe-helper).
//!
//! Flow, per caller:
//! 1. [`server`]: the `workload.spiffe.io: true` metadata header (else `InvalidArgument`), the caller's
//!    `SO_PEERCRED` on the agent's allow-list (else `PermissionDenied`), and an identity for it ([`identity`], else
//!    `PermissionDenied`).
//! 2. [`state`]: per identity, the agent holds an attested credential (its own WIT and attested key, renewed by
//!    [`crate::run::renewal_loop`]) and keeps X.509-SVIDs (and WIT-SVIDs) issued for fresh per-SVID keys ([`key`]),
//!    requested with a JWS signed by the attested key ([`request`]) from an [`source::SvidSource`] —
//!    [`crate::svid_client::VerifierSvidSource`] in the agent.
//! 3. Streams push a new answer whenever an SVID is renewed or the bundle ([`bundle`]) changes.
//!
//! The attested key never leaves the agent and never signs anything a workload chose except the audiences of a
//! JWT-SVID request, inside a `locus-svid-request+jwt` JWS only the verifier accepts.

pub mod bundle;
pub mod check;
pub mod identity;
pub mod key;
pub mod pb;
pub mod request;
pub mod server;
pub mod source;
pub mod state;
