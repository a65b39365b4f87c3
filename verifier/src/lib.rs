//! Locus verifier: appraisal of SEV-SNP and TDX evidence, policy, residency, WIT issuance and the HTTP service.
#![forbid(unsafe_code)]

pub mod error;

pub use error::{ErrorCode, Refusal};
