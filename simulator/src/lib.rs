//! A software TEE: simulated AMD and Intel PKI, SEV-SNP and TDX attesters, collateral services and fault injection.
#![forbid(unsafe_code)]

pub mod amd;
pub mod intel;
