//! SEV-SNP report parser: never panics; whatever parses re-serializes to the exact input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus_hw::snp::{AttestationReport, SignedReport};

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = AttestationReport::parse(data) {
        assert_eq!(report.to_bytes(), data);
        let _ = report.reserved_nonzero();
        let _ = report.product_from_cpuid();
    }
    if let Ok(signed) = SignedReport::parse(data) {
        let _ = signed.signature_p384_fixed();
    }
});
