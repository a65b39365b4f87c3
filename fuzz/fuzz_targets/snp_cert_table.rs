//! SEV-SNP certificate table parser: never panics; what parses encodes to a table that parses back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus_hw::snp::cert_table;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = cert_table::parse(data) {
        assert!(entries.len() <= cert_table::MAX_ENTRIES);
        let encoded = cert_table::encode(&entries);
        assert_eq!(cert_table::parse(&encoded).ok(), Some(entries));
    }
});
