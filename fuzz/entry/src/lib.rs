//! Entry points of the Locus fuzz targets, one plain `pub fn <target>(data: &[u8])` per parser that reads outside
//! input.
//!
//! The cargo-fuzz targets under `fuzz/fuzz_targets/` are three-line wrappers around these functions (cargo-fuzz needs
//! nightly features), and the stable test `tests/tests/fuzz_replay.rs` calls the same functions over every seed and
//! every committed corpus and regression input, so CI exercises each target without nightly. Each function feeds the
//! bytes to the parser the way production does and checks what holds for every input: no panic, and where cheap a
//! round trip (parse → serialize → parse gives the same value). A failed check panics, which is what the fuzzer
//! reports.
//!
//! [`TARGETS`] lists every target by name; `FUZZING.md` says how to run them.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)] // a fuzz entry point panics on purpose when an invariant breaks

pub mod hw;
pub mod verifier;
pub mod wimse;

pub use hw::{configfs_tsm, snp_cert_table, snp_report, tdx_quote};
pub use verifier::{
    attest_request, cose_endorsement, pcs_collateral, proximity, svid_request, verifier_toml, x509,
};
pub use wimse::{ear, http_signature, jwk, wimse_tokens, workload_id};

/// A fuzz target: its name (the cargo-fuzz binary and the corpus directory) and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("snp_report", snp_report),
    ("snp_cert_table", snp_cert_table),
    ("tdx_quote", tdx_quote),
    ("configfs_tsm", configfs_tsm),
    ("pcs_collateral", pcs_collateral),
    ("x509", x509),
    ("attest_request", attest_request),
    ("wimse_tokens", wimse_tokens),
    ("jwk", jwk),
    ("workload_id", workload_id),
    ("ear", ear),
    ("cose_endorsement", cose_endorsement),
    ("verifier_toml", verifier_toml),
    ("proximity", proximity),
    ("svid_request", svid_request),
    ("http_signature", http_signature),
];
