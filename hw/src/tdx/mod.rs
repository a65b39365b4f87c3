//! Intel TDX evidence: quote versions 4 and 5 (TD report 1.0 and 1.5 bodies), the QE report and its certification
//! data, and the embedded PCK certificate chain. Specification: Intel DCAP `sgx_quote_4.h` / `sgx_quote_5.h` and the TDX Module ABI.

mod attributes;
mod enclave;
mod header;
mod pem;
mod quote;
mod report;
mod signed;

pub use attributes::TdAttributes;
pub use enclave::{EnclaveReport, ENCLAVE_REPORT_SIZE};
pub use header::{
    QuoteHeader, ATT_KEY_TYPE_ECDSA_P256, HEADER_SIZE, INTEL_QE_VENDOR_ID,
    SUPPORTED_QUOTE_VERSIONS, TEE_TYPE_TDX,
};
pub use quote::{
    Quote, BODY_DESCRIPTOR_SIZE, BODY_TYPE_TD10, BODY_TYPE_TD15, CERT_DATA_PCK_CHAIN,
    CERT_DATA_QE_REPORT, V4_SIGNED_LEN,
};
pub use report::{TdReport, TD_REPORT10_SIZE, TD_REPORT15_SIZE};
pub use signed::SignedQuote;
