//! Locus verifier: appraisal of SEV-SNP and TDX evidence, policy, residency, WIT issuance and the HTTP service.
//!
//! The appraisal core (`appraisal`) is sans-I/O: evidence, collateral, trust anchors and time go in, verified facts or a
//! coded refusal come out. Collateral fetching and caching (`collateral`) and the HTTP service (`service`) sit around it.
#![forbid(unsafe_code)]

pub mod appraisal;
pub mod cli;
pub mod collateral;
pub mod config;
pub mod decision;
pub mod endorsement;
pub mod error;
pub mod lru;
pub mod measure;
pub mod proximity;
pub mod service;
pub mod spiffe;

pub use error::{ErrorCode, Refusal};
