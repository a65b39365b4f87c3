//! End-to-end support for Locus: the demo ([`demo`]), the load tool ([`load`]), and what the tests across real
//! processes share — repository paths ([`paths`]), child processes that are always reaped ([`procs`]) and a small
//! HTTP/1.1 client over TCP or a Unix socket ([`http1`]).
//!
//! Everything here talks to `127.0.0.1` or a Unix socket only, and every wait is bounded.
#![forbid(unsafe_code)]

pub mod demo;
pub mod http1;
pub mod load;
pub mod paths;
pub mod procs;

/// The EU-fenced workload of `examples/verifier.toml`.
pub const EU_WORKLOAD: &str = "spiffe://locus.example/model-server";
/// The unfenced workload of `examples/verifier.toml`.
pub const ANY_WORKLOAD: &str = "spiffe://locus.example/batch-worker";
/// The trust domain of `examples/verifier.toml`.
pub const TRUST_DOMAIN: &str = "locus.example";

/// Unix seconds from the system clock. Callers read it once and pass it to the checks.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
