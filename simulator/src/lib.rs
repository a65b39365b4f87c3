//! A software TEE: simulated AMD and Intel PKI, SEV-SNP and TDX attesters, collateral services and fault injection.
//!
//! Everything derives from one seed ([`World::new`], default [`world::DEFAULT_SEED`]), so the same seed always
//! gives byte-identical certificates, reports and quotes. Independent verifiers (the `sev` crate, `dcap-qvl`) accept
//! the evidence given the simulator's roots, which no production verifier trusts.
//!
//! - [`World`]: profiles, AMD PKI ([`amd`]), Intel PKI ([`intel`]), PKI export.
//! - [`profile`]: the built-in platforms (`snp-fra-1`, `snp-iad-1`, `tdx-fra-1`, … — names are a contract).
//! - [`amd::SimSnpAttester`] and the Intel TDX attester implement `locus_hw::attester::Attester`.
//! - [`fault`]: evidence and server faults. [`server`]: the KDS/PCS HTTP server of `locus-sim serve`.
#![forbid(unsafe_code)]

pub mod amd;
pub mod error;
pub mod fault;
pub mod intel;
pub mod intel_bridge;
pub mod keys;
pub mod profile;
pub mod server;
pub mod tls;
pub mod world;
pub mod x509;

pub use amd::{SimSnpAttester, SnpEvidence};
pub use error::SimError;
pub use fault::{Fault, Faults};
pub use profile::{Profile, Site, SnpProfile, TeeProfile};
pub use world::World;
