//! The demo binary runs to completion from a fresh state and tells the story README.md promises.

use std::process::Command;
use std::time::Duration;

use locus_tests::procs::run_to_completion;

#[test]
fn demo_issues_on_fra_1_refuses_geofence_on_iad_1_and_the_relying_party_accepts() {
    let done = run_to_completion(
        "locus-demo",
        Command::new(env!("CARGO_BIN_EXE_locus-demo")).env("RUST_LOG", "off"),
        Duration::from_secs(300),
    )
    .expect("spawn locus-demo");
    let out = &done.stdout;
    assert!(
        done.success(),
        "demo failed ({:?})\nstdout:\n{out}\nstderr:\n{}",
        done.status,
        done.stderr
    );
    // The identifier issued on fra-1, and its residency.
    assert!(
        out.contains("sub               spiffe://locus.example/model-server"),
        "{out}"
    );
    assert!(out.contains("\"country\": \"DE\""), "{out}");
    assert!(out.contains("\"site\": \"fra-1\""), "{out}");
    assert!(out.contains("\"type\": \"sev-snp\""), "{out}");
    // The refusal on iad-1.
    assert!(out.contains("code geofence_denied"), "{out}");
    // The relying party.
    assert!(
        out.contains("accepted        spiffe://locus.example/model-server"),
        "{out}"
    );
    assert!(out.contains("same proof again refused: replayed"), "{out}");
    // The proximity bound beside the registry location.
    assert!(out.contains("physics says     within "), "{out}");
    assert!(out.contains("\"fra-lm\": "), "{out}");
    assert!(
        out.contains("Every step gave the expected outcome"),
        "{out}"
    );
    assert!(!out.contains("DEMO FAILED"), "{out}");
}

#[test]
fn demo_config_keeps_every_written_file_in_the_given_state_dir() {
    // So a fresh clone works and the demo writes nothing into the repository.
    let cfg = locus_tests::demo::demo_config(
        std::path::Path::new("/tmp/locus-demo-check"),
        "http://127.0.0.1:1",
    )
    .expect("config");
    assert!(cfg.server.keys_dir.starts_with("/tmp/locus-demo-check"));
    assert!(cfg.server.state_dir.starts_with("/tmp/locus-demo-check"));
    assert_eq!(
        cfg.server.audit,
        locus_verifier::service::config::AuditTarget::File(
            "/tmp/locus-demo-check/audit.jsonl".into()
        )
    );
    assert_eq!(cfg.server.issuer, "http://127.0.0.1:1");
}
