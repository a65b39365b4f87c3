//! End-to-end support for Locus: the demo ([`demo`]), the load tool ([`load`]), and what the tests across real
//! processes share — repository paths ([`paths`]), child processes that are always reaped ([`procs`]) and a small
//! HTTP/1.1 client over TCP or a Unix socket ([`http1`]), a delaying TCP relay for the proximity tests ([`relay`]),
//! and SPIFFE test support ([`spiffe`]).
//!
//! Everything here talks to `127.0.0.1` or a Unix socket (the relay: to the addresses a test gives it, in network
//! namespaces of its own), and every wait is bounded.
#![forbid(unsafe_code)]

pub mod demo;
pub mod http1;
pub mod load;
pub mod paths;
pub mod procs;
pub mod relay;
pub mod spiffe;

/// The EU-fenced workload of `examples/verifier.toml`.
pub const EU_WORKLOAD: &str = "spiffe://locus.example/model-server";
/// The unfenced workload of `examples/verifier.toml`.
pub const ANY_WORKLOAD: &str = "spiffe://locus.example/batch-worker";
/// The trust domain of `examples/verifier.toml`.
pub const TRUST_DOMAIN: &str = "locus.example";

/// The pages of `docs/`, so that their ```` ```rust ```` examples run as doc tests of this crate (which can use every
/// Locus crate). Other fenced blocks carry a language tag, which rustdoc leaves alone; the shell and Python examples
/// run in `tests/tests/docs_examples.rs`.
#[cfg(doctest)]
pub mod docs {
    #[doc = include_str!("../../docs/architecture.md")]
    pub struct Architecture;
    #[doc = include_str!("../../docs/configuration.md")]
    pub struct Configuration;
    #[doc = include_str!("../../docs/api.md")]
    pub struct Api;
    #[doc = include_str!("../../docs/operations.md")]
    pub struct Operations;
    #[doc = include_str!("../../docs/relying-party.md")]
    pub struct RelyingParty;
    #[doc = include_str!("../../docs/agent.md")]
    pub struct Agent;
    #[doc = include_str!("../../docs/proximity.md")]
    pub struct Proximity;
}

/// Whether `python3` can run `imports` (e.g. `import jwt, cryptography`), for the tests that drive Python peers.
/// Without it the test is skipped loudly — and fails when `CI` or `LOCUS_REQUIRE_VECTORS=1` is set, where
/// `.ci/run` has installed `.ci/requirements.txt`. `what` names the test and its peer in the messages.
pub fn python_with(imports: &str, what: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", imports])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let required = std::env::var_os("CI").is_some()
            || std::env::var("LOCUS_REQUIRE_VECTORS").as_deref() == Ok("1");
        assert!(
            !required,
            "{what}: python3 with `{imports}` is required when CI or LOCUS_REQUIRE_VECTORS=1 is set \
             (pip install -r .ci/requirements.txt)"
        );
        eprintln!("SKIP: {what}: python3 cannot `{imports}` (pip install -r .ci/requirements.txt)");
    }
    ok
}

/// Unix seconds from the system clock. Callers read it once and pass it to the checks.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
