//! Locus evidence formats and in-guest attester backends.
#![deny(unsafe_code)]
