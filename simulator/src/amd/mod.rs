//! Simulated AMD world: ARK/ASK (RSA-4096, RSA-PSS SHA-384), per-chip VCEKs (P-384) with KDS extensions, the ASK
//! CRL, and the SEV-SNP attester.
//!
//! Flow: [`crate::World`] builds a [`pki::ProductPki`] per product on first use (keys from [`embedded`]); the
//! [`attester::SimSnpAttester`] encodes a report ([`report`]), signs it with the chip's VCEK key and ships the VCEK
//! issued for the reported TCB with the ASK and ARK.

pub mod attester;
pub mod embedded;
pub mod pki;
pub mod report;

pub use attester::{SimSnpAttester, SnpEvidence};
