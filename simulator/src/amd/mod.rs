//! Simulated AMD world: ARK/ASK (RSA-4096, RSA-PSS SHA-384), per-chip VCEKs (P-384) with KDS extensions, SNP attester.
