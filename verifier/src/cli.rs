//! The offline CLI `locus-verifier appraise` (DESIGN §11).
