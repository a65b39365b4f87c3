#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| locus_fuzz_entry::http_signature(data));
