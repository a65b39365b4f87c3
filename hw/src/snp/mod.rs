//! AMD SEV-SNP evidence: the attestation report (versions 2–5), its TCB, policy and platform fields, the product
//! generations, and the extended-report certificate table. Specification: AMD SEV-SNP Firmware ABI Specification (publication 56860) and the VCEK Certificate and KDS Interface Specification (publication 57230).

pub mod cert_table;
mod policy;
mod product;
mod report;
mod signed;
mod tcb;

pub use policy::{GuestPolicy, PlatformInfo};
pub use product::Product;
pub use report::{
    reserved_region, AttestationReport, Cpuid, FirmwareVersion, ReportReserved, ReportSignature,
    SigningKey, REPORT_SIZE, SIGNATURE_COMPONENT_LEN, SIGNATURE_OFFSET, SIGNED_LEN,
    SUPPORTED_VERSIONS,
};
pub use signed::SignedReport;
pub use tcb::TcbVersion;
