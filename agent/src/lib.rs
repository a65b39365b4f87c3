//! locus-agent
#![forbid(unsafe_code)]
