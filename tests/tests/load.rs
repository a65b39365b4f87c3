//! `locus-load` against a real verifier process: a small bounded run completes, counts what it did and ends with its
//! RESULT line.

use std::process::Command;
use std::time::Duration;

use locus_tests::procs::{run_to_completion, VerifierProcess};
use locus_tests::EU_WORKLOAD;

#[test]
fn load_tool_runs_the_requested_rounds_and_reports_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let verifier = VerifierProcess::start_example(dir.path(), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let done = run_to_completion(
        "locus-load",
        Command::new(env!("CARGO_BIN_EXE_locus-load")).args([
            "--verifier",
            &verifier.base,
            "--clients",
            "2",
            "--requests",
            "6",
            "--duration-secs",
            "120",
            "--workload",
            EU_WORKLOAD,
        ]),
        Duration::from_secs(180),
    )
    .expect("spawn locus-load");
    assert!(
        done.success(),
        "{:?}\n{}\n{}",
        done.status,
        done.stdout,
        done.stderr
    );
    assert!(done.stdout.contains("rounds      6 in "), "{}", done.stdout);
    assert!(done.stdout.contains("issued      6\n"), "{}", done.stdout);
    assert!(!done.stdout.contains("refused"), "{}", done.stdout);
    assert!(done.stdout.contains("verifier    p50 "), "{}", done.stdout);
    // Its last line: the RESULT with the floor measured in the same run; no RSS for a verifier it did not start.
    let result = done.stdout.lines().last().unwrap_or_default();
    assert!(result.starts_with("RESULT tee=sev-snp rps="), "{result}");
    for field in [" floor_rps=", " ratio=", " p50_ms=", " p99_ms="] {
        assert!(result.contains(field), "{field} in {result}");
    }
    assert!(result.contains(" errors=0 rss_mib=-"), "{result}");
}

#[test]
fn load_tool_counts_refusals_by_code_and_fails_when_nothing_is_issued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let verifier = VerifierProcess::start_example(dir.path(), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let done = run_to_completion(
        "locus-load",
        Command::new(env!("CARGO_BIN_EXE_locus-load")).args([
            "--verifier",
            &verifier.base,
            "--clients",
            "2",
            "--requests",
            "4",
            "--profile",
            "snp-iad-1",
            "--workload",
            EU_WORKLOAD,
        ]),
        Duration::from_secs(180),
    )
    .expect("spawn locus-load");
    assert_eq!(
        done.status.and_then(|s| s.code()),
        Some(1),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(
        done.stdout.contains("refused     4 × geofence_denied"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("issued      0\n"), "{}", done.stdout);
    assert!(done.stdout.contains(" errors=4 "), "{}", done.stdout);
}

#[test]
fn without_a_verifier_url_the_load_tool_starts_its_own_with_rate_limits_off_and_beats_the_default_burst(
) {
    // 240 challenge + attest pairs from one address exceed the default per-client burst (200): they are all issued only
    // because the tool's own verifier has the limit turned off, as its output says.
    let done = run_to_completion(
        "locus-load",
        Command::new(env!("CARGO_BIN_EXE_locus-load")).args([
            "--concurrency",
            "4",
            "--requests",
            "120",
            "--duration-secs",
            "300",
            "--tee",
            "tdx",
            "--workload",
            EU_WORKLOAD,
        ]),
        Duration::from_secs(600),
    )
    .expect("spawn locus-load");
    assert!(
        done.success(),
        "{:?}\n{}\n{}",
        done.status,
        done.stdout,
        done.stderr
    );
    assert!(
        done.stdout.contains("started its own verifier"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("rate limits off"), "{}", done.stdout);
    assert!(
        done.stdout.contains("plaintext HTTP on loopback"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("issued      120\n"), "{}", done.stdout);
    assert!(!done.stdout.contains("refused"), "{}", done.stdout);
    // Its own verifier's process is known: the RESULT line carries its peak RSS.
    let result = done.stdout.lines().last().unwrap_or_default();
    assert!(result.starts_with("RESULT tee=tdx rps="), "{result}");
    let rss = result
        .split(" rss_mib=")
        .nth(1)
        .and_then(|v| v.parse::<f64>().ok());
    assert!(rss.is_some_and(|mib| mib > 1.0), "{result}");
    assert!(result.contains(" errors=0 "), "{result}");
}
