//! TDX quote parser: never panics; whatever parses re-serializes to the quote structure bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use locus_hw::tdx::{Quote, SignedQuote};

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedQuote::parse_ignoring_trailing_bytes(data) {
        assert_eq!(signed.quote().to_bytes(), signed.structure_bytes());
        assert_eq!(
            Quote::structure_len(data).ok(),
            Some(signed.structure_len())
        );
        let _ = signed.quote().pck_chain_der();
        let _ = signed.qe_report_bytes();
        let _ = signed.signed_bytes();
    }
    if let Ok(quote) = Quote::parse(data) {
        let bytes = quote.to_bytes();
        assert!(data[bytes.len()..].iter().all(|&b| b == 0));
    }
});
