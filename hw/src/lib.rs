//! Locus evidence formats (SEV-SNP reports, the extended-report certificate table, TDX quotes) and the in-guest
//! attester backends.
//!
//! Parsers take untrusted bytes and keep them beside the parsed view; serializers mirror the parsers exactly.
//! Only the FFI and ioctl modules under `backend` may use `unsafe`, each block with a `// SAFETY:` comment.
#![deny(unsafe_code)]

pub mod attester;
pub mod backend;
mod bytes;
mod error;
pub mod snp;
pub mod tdx;
mod tee;

pub use attester::{AttestError, Attester, Evidence};
pub use error::FormatError;
pub use tee::TeeType;
