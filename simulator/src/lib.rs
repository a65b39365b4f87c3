//! locus-simulator
#![forbid(unsafe_code)]
