//! locus-verifier
#![forbid(unsafe_code)]
