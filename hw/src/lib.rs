//! Locus evidence formats (SEV-SNP reports, the extended-report certificate table, TDX quotes) and the in-guest
//! attester backends.
//!
//! Parsers take untrusted bytes and keep them beside the parsed view; serializers mirror the parsers exactly.
//! Every refusal is a [`FormatError`] whose [`FormatError::code`] is a stable docs/architecture.md#error-codes code
//! (`evidence_malformed` or `unsupported_version`) and whose message names the field. The crate does no I/O outside
//! `backend`, and no cryptography: signatures are checked by the verifier over [`snp::SignedReport::signed_bytes`]
//! and [`tdx::SignedQuote::signed_bytes`], the bytes as received.
//!
//! Only the FFI and ioctl modules under `backend` may use `unsafe`, each block with a `// SAFETY:` comment.
//!
//! ```
//! use locus_hw::{snp, TeeType};
//!
//! let mut raw = vec![0u8; snp::REPORT_SIZE];
//! raw[0] = 3; // VERSION
//! raw[0x188] = 0x19; // CPUID_FAM_ID
//! raw[0x189] = 0x01; // CPUID_MOD_ID
//! assert_eq!(TeeType::detect(&raw), Some(TeeType::SevSnp));
//! let signed = snp::SignedReport::parse(&raw)?;
//! assert_eq!(signed.report().product_from_cpuid(), Some(snp::Product::Milan));
//! assert_eq!(signed.report().to_bytes(), raw);
//! raw[0] = 6;
//! assert_eq!(snp::AttestationReport::parse(&raw).unwrap_err().code(), "unsupported_version");
//! # Ok::<(), locus_hw::FormatError>(())
//! ```
#![deny(unsafe_code)]

pub mod attester;
pub mod backend;
pub mod binding;
mod bytes;
mod error;
pub mod snp;
pub mod tdx;
mod tee;

pub use attester::{AttestError, Attester, Evidence};
pub use error::FormatError;
pub use tee::TeeType;
