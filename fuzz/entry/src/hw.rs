//! Evidence formats read by the agent and the verifier (`locus-hw`).

use locus_hw::snp::{cert_table, AttestationReport, SignedReport};
use locus_hw::tdx::{Quote, SignedQuote};
use locus_hw::TeeType;

/// SEV-SNP report: never panics; whatever parses re-serializes to the exact input.
pub fn snp_report(data: &[u8]) {
    let _ = TeeType::detect(data);
    if let Ok(report) = AttestationReport::parse(data) {
        assert_eq!(report.to_bytes(), data, "report does not re-serialize");
        let _ = report.reserved_nonzero();
        if let Some(product) = report.product_from_cpuid() {
            let _ = report.reported_tcb_version(product);
            let _ = report.committed_tcb_version(product);
        }
    }
    if let Ok(signed) = SignedReport::parse(data) {
        let _ = signed.signature_p384_fixed();
        assert!(signed.signed_bytes().len() <= data.len());
    }
    // The verifier's view of the same bytes (platform identity and TCB for collateral look-ups).
    if let Ok(platform) = locus_verifier::collateral::evidence::SnpPlatform::from_report(data) {
        for product in [
            locus_verifier::collateral::evidence::SnpProduct::Milan,
            locus_verifier::collateral::evidence::SnpProduct::Genoa,
            locus_verifier::collateral::evidence::SnpProduct::Turin,
        ] {
            let _ = platform.hwid(product);
            let _ = platform.tcb(product).kds_query();
        }
    }
}

/// SEV-SNP extended-report certificate table: never panics; what parses encodes to a table that parses back the same;
/// the agent's `auxblob` reading never panics either.
pub fn snp_cert_table(data: &[u8]) {
    if let Ok(entries) = cert_table::parse(data) {
        assert!(entries.len() <= cert_table::MAX_ENTRIES);
        let encoded = cert_table::encode(&entries);
        assert_eq!(
            cert_table::parse(&encoded).ok(),
            Some(entries),
            "table does not round-trip"
        );
    }
    let certs = locus_hw::backend::configfs_tsm::certs_from_auxblob(data);
    assert!(certs.len() <= cert_table::MAX_ENTRIES);
}

/// TDX quote: never panics; whatever parses re-serializes to the quote structure bytes.
pub fn tdx_quote(data: &[u8]) {
    let _ = TeeType::detect(data);
    if let Ok(signed) = SignedQuote::parse_ignoring_trailing_bytes(data) {
        assert_eq!(signed.quote().to_bytes(), signed.structure_bytes());
        assert_eq!(
            Quote::structure_len(data).ok(),
            Some(signed.structure_len())
        );
        let _ = signed.quote().pck_chain_der();
        let _ = signed.qe_report_bytes();
        let _ = signed.signed_bytes();
        let _ = signed.trailing_bytes();
    }
    if let Ok(quote) = Quote::parse(data) {
        let bytes = quote.to_bytes();
        assert!(bytes.len() <= data.len());
        assert!(data[bytes.len()..].iter().all(|&b| b == 0));
    }
    // The verifier's view of the same bytes (FMSPC and PCE id from the embedded PCK certificate).
    let _ = locus_verifier::collateral::evidence::TdxPlatform::from_quote(data);
}

/// configfs-tsm as the agent reads it: the input is the kernel's side of one report request — `provider`,
/// `generation` before and after, `privlevel_floor`, `outblob`, `auxblob` — as six fields separated by `0xff 0x00`
/// (missing fields are absent attributes). The attester must answer (evidence or an error) without panicking, and
/// evidence it returns must be the `outblob` of the TEE it probed.
pub fn configfs_tsm(data: &[u8]) {
    use locus_hw::backend::configfs_tsm::{ConfigfsTsmAttester, TsmOptions};
    use std::sync::Arc;

    let fs = Arc::new(tsm::FuzzTsm::new(data));
    let opts = TsmOptions {
        max_attempts: 2,
        retry_backoff: std::time::Duration::ZERO,
        ..TsmOptions::default()
    };
    let Ok(attester) = ConfigfsTsmAttester::open(fs.clone(), opts) else {
        return;
    };
    if let Ok(evidence) = locus_hw::Attester::attest(&attester, &[7u8; 64]) {
        assert_eq!(Some(evidence.raw.as_slice()), fs.field(tsm::OUTBLOB));
        assert_eq!(TeeType::detect(&evidence.raw), Some(evidence.tee));
    }
}

/// A configfs-tsm tree whose attribute contents come from the fuzz input.
mod tsm {
    use std::io;
    use std::sync::atomic::{AtomicU32, Ordering};

    use locus_hw::backend::configfs_tsm::TsmFs;

    pub const PROVIDER: usize = 0;
    pub const GENERATION_BEFORE: usize = 1;
    pub const GENERATION_AFTER: usize = 2;
    pub const PRIVLEVEL_FLOOR: usize = 3;
    pub const OUTBLOB: usize = 4;
    pub const AUXBLOB: usize = 5;
    pub const SEPARATOR: &[u8] = &[0xff, 0x00];

    #[derive(Debug)]
    pub struct FuzzTsm {
        fields: Vec<Vec<u8>>,
        generation_reads: AtomicU32,
    }

    impl FuzzTsm {
        pub fn new(data: &[u8]) -> Self {
            let mut fields = Vec::new();
            let mut rest = data;
            while fields.len() < AUXBLOB {
                match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
                    Some(at) => {
                        fields.push(rest[..at].to_vec());
                        rest = &rest[at + SEPARATOR.len()..];
                    }
                    None => break,
                }
            }
            fields.push(rest.to_vec());
            Self {
                fields,
                generation_reads: AtomicU32::new(0),
            }
        }

        pub fn field(&self, i: usize) -> Option<&[u8]> {
            self.fields.get(i).map(Vec::as_slice)
        }
    }

    fn absent() -> io::Error {
        io::Error::new(io::ErrorKind::NotFound, "no such attribute")
    }

    impl TsmFs for FuzzTsm {
        fn location(&self) -> String {
            "fuzz".into()
        }
        fn root_present(&self) -> io::Result<()> {
            Ok(())
        }
        fn create_entry(&self, _entry: &str) -> io::Result<()> {
            Ok(())
        }
        fn remove_entry(&self, _entry: &str) -> io::Result<()> {
            Ok(())
        }
        fn read_attr(&self, _entry: &str, attr: &str) -> io::Result<Vec<u8>> {
            let i = match attr {
                "provider" => PROVIDER,
                "generation" => {
                    // Alternate before/after within one attempt.
                    if self.generation_reads.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
                        GENERATION_BEFORE
                    } else {
                        GENERATION_AFTER
                    }
                }
                "privlevel_floor" => PRIVLEVEL_FLOOR,
                "outblob" => OUTBLOB,
                "auxblob" => AUXBLOB,
                _ => return Err(absent()),
            };
            self.field(i).map(<[u8]>::to_vec).ok_or_else(absent)
        }
        fn write_attr(&self, _entry: &str, _attr: &str, _data: &[u8]) -> io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use locus_hw::backend::configfs_tsm::{ConfigfsTsmAttester, TsmOptions};
    use std::sync::Arc;

    fn attest(input: &[u8]) -> Result<locus_hw::Evidence, locus_hw::AttestError> {
        let fs = Arc::new(tsm::FuzzTsm::new(input));
        let attester = ConfigfsTsmAttester::open(fs, TsmOptions::default())?;
        locus_hw::Attester::attest(&attester, &[0; 64])
    }

    fn snp_report_bytes() -> Vec<u8> {
        let mut raw = vec![0u8; locus_hw::snp::REPORT_SIZE];
        raw[0] = 3;
        raw[0x188] = 0x19;
        raw[0x189] = 0x01;
        raw
    }

    #[test]
    fn the_seed_layout_yields_evidence_when_the_generation_matches_our_writes() {
        let report = snp_report_bytes();
        let input = [&b"sev_guest"[..], b"4", b"6", b"0", &report, b""].join(&[0xff, 0x00][..]);
        let evidence = attest(&input).unwrap();
        assert_eq!(evidence.raw, report);
        configfs_tsm(&input);
    }

    #[test]
    fn a_raced_generation_yields_no_evidence() {
        let report = snp_report_bytes();
        let input = [&b"sev_guest"[..], b"4", b"7", b"0", &report, b""].join(&[0xff, 0x00][..]);
        assert_eq!(attest(&input).unwrap_err().code(), "attester_busy");
    }
}
