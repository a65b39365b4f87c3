//! locus-agent: the in-VM side of Locus (docs/architecture.md#evidence-binding, docs/agent.md).
//!
//! - [`select`]: which attester (`--tee auto|sev-snp|tdx|sim-snp|sim-tdx`), over `locus_hw::backend` and, with the
//!   `simulator` feature, [`sim`].
//! - [`attest`]: one round — fresh key, challenge, [`binding`], evidence, attest — giving a [`credential::Credential`].
//! - [`run`]: keep a valid WIT (renewal at 2/3 of its life, jittered back-off) and serve the Workload API on a Unix
//!   socket.
//! - [`spiffe`]: the SPIFFE Workload API over gRPC (`--spiffe-socket`), fed by [`svid_client`] (`POST /v1/svid`).
//! - [`proximity`]: statements from the landmarks the challenge answer names, collected before attesting.
//! - [`client`]: the verifier's HTTP API; [`error`]: [`AgentError`] and its stable codes.
//!
//! The private key exists only in memory (a zeroised PKCS#8 buffer inside `locus_wimse::Es256SigningKey`); nothing
//! the agent writes contains it.
#![forbid(unsafe_code)]

pub mod attest;
pub mod binding;
pub mod client;
pub mod credential;
pub mod error;
pub mod http_sig;
pub mod proximity;
pub mod run;
pub mod select;
#[cfg(feature = "simulator")]
pub mod sim;
pub mod spiffe;
pub mod svid_client;

pub use error::AgentError;
