//! Locus evidence formats (SEV-SNP reports, the extended-report certificate table, TDX quotes) and the in-guest
//! attester backends.
//!
//! Parsers take untrusted bytes and keep them beside the parsed view; serializers mirror the parsers exactly.
//! Only the FFI and ioctl modules under `backend` may use `unsafe`, each block with a `// SAFETY:` comment.
#![deny(unsafe_code)]

pub mod backend;
