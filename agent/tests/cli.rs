//! The `locus-agent` binary against the in-process fake verifier: `attest` output formats and exit codes, `auto`
//! falling through every probe on a machine without a TEE, and `run` serving the Workload API until SIGTERM.
#![cfg(feature = "simulator")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::Duration;

use common::{now_f64, now_secs, uds_request, FakeVerifier};
use serde_json::Value;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_locus-agent");

async fn agent(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .await
        .expect("run locus-agent")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attest_json_prints_wit_claims_and_ear_bound_to_the_agents_key() {
    let fv = FakeVerifier::start(600).await;
    let url = fv.url();
    let workload = "spiffe://example.org/billing";
    let out = agent(&[
        "attest",
        "--verifier",
        &url,
        "--tee",
        "sim-snp",
        "--sim-profile",
        "snp-iad-1",
        "--workload",
        workload,
        "--json",
    ])
    .await;
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = stdout_json(&out);
    let wit = doc["wit"].as_str().expect("wit");
    let verified = fv
        .wit_verifier()
        .verify(wit, now_secs())
        .expect("WIT verifies");
    assert_eq!(verified.id().as_str(), workload);
    assert_eq!(doc["claims"]["sub"], workload);
    assert_eq!(doc["ear"], "fake.ear.token");
    // The key in cnf is the one whose thumbprint the agent bound into the evidence it sent.
    let records = fv.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].tee, "sev-snp");
    assert_eq!(
        verified.claims().cnf.thumbprint_sha256(),
        records[0].jwk_thumbprint
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attest_without_json_prints_only_the_wit() {
    let fv = FakeVerifier::start(600).await;
    let out = agent(&["attest", "--verifier", &fv.url(), "--tee", "sim-tdx"]).await;
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let wit = text.trim_end_matches('\n');
    assert!(!wit.contains('\n'));
    fv.wit_verifier()
        .verify(wit, now_secs())
        .expect("the line is the WIT");
    assert_eq!(fv.records()[0].tee, "tdx");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_is_an_error_object_with_the_verifiers_code_and_nonzero_exit() {
    let fv = FakeVerifier::start(600).await;
    fv.refuse_with(403, "tcb_status_rejected");
    let out = agent(&[
        "attest",
        "--verifier",
        &fv.url(),
        "--tee",
        "sim-tdx",
        "--json",
    ])
    .await;
    assert!(!out.status.success());
    let doc = stdout_json(&out);
    assert_eq!(doc["error"]["code"], "tcb_status_rejected");
    assert!(doc["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(
        doc.as_object().map(|o| o.len()),
        Some(1),
        "only the error member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_without_any_tee_fails_listing_every_probe() {
    if std::path::Path::new("/dev/sev-guest").exists() {
        println!("SKIP: this machine has /dev/sev-guest; the fall-through test needs a machine without a TEE");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tsm = dir.path().join("no-tsm");
    let lib = dir.path().join("libtdx_attest.so.1");
    let out = agent(&[
        "attest",
        "--verifier",
        "http://127.0.0.1:9",
        "--tsm-root",
        tsm.to_str().expect("utf-8"),
        "--tdx-attest-lib",
        lib.to_str().expect("utf-8"),
        "--json",
    ])
    .await;
    assert!(!out.status.success());
    let doc = stdout_json(&out);
    assert_eq!(doc["error"]["code"], "attester_unavailable");
    let msg = doc["error"]["message"].as_str().expect("message");
    for probe in [
        "configfs-tsm",
        "sev-guest",
        "libtdx_attest",
        "no-tsm",
        "libtdx_attest.so.1",
    ] {
        assert!(msg.contains(probe), "{probe} missing from: {msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_refused() {
    let out = agent(&["attest", "--verifier", "http://127.0.0.1:9", "--tee", "sgx"]).await;
    assert_eq!(out.status.code(), Some(2), "usage error");
    let out = agent(&[
        "attest",
        "--verifier",
        "http://127.0.0.1:9",
        "--tee",
        "tdx",
        "--sim-profile",
        "tdx-fra-1",
        "--json",
    ])
    .await;
    assert_eq!(stdout_json(&out)["error"]["code"], "config_invalid");
    let out = agent(&[
        "attest",
        "--verifier",
        "ftp://x",
        "--tee",
        "sim-snp",
        "--json",
    ])
    .await;
    assert_eq!(stdout_json(&out)["error"]["code"], "config_invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_the_workload_api_and_cleans_up_on_sigterm() {
    let fv = FakeVerifier::start(600).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--verifier",
            &fv.url(),
            "--tee",
            "sim-snp",
            "--socket",
        ])
        .arg(&socket)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let deadline = now_f64() + 60.0;
    let wit = loop {
        if socket.exists() {
            let (status, _, body) = uds_request(&socket, "GET", "/v1/wit", None).await;
            if status == 200 {
                break body["wit"].as_str().expect("wit").to_string();
            }
        }
        assert!(now_f64() < deadline, "no WIT from the running agent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    fv.wit_verifier()
        .verify(&wit, now_secs())
        .expect("served WIT verifies");
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);

    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert!(status.success(), "clean exit: {status:?}");
    assert!(!socket.exists(), "socket removed");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .flatten()
        .collect();
    assert!(left.is_empty(), "the agent wrote nothing else: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_remote_verifier_needs_insecure_http() {
    for cmd in ["attest", "run"] {
        let mut args = vec![
            cmd,
            "--verifier",
            "http://verifier.example:8443",
            "--tee",
            "sim-snp",
        ];
        if cmd == "attest" {
            args.push("--json");
        } else {
            args.extend(["--socket", "/nonexistent/agent.sock"]);
        }
        let out = agent(&args).await;
        assert_ne!(out.status.code(), Some(0), "{cmd}");
        let shown = if cmd == "attest" {
            stdout_json(&out)["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            String::from_utf8_lossy(&out.stderr).to_string()
        };
        assert!(shown.contains("config_invalid"), "{cmd}: {shown}");
    }
    // Loopback over http needs no flag, and the flag is accepted by both commands.
    let fv = FakeVerifier::start(600).await;
    let url = fv.url();
    for extra in [&[][..], &["--insecure-http"][..]] {
        let mut args = vec!["attest", "--verifier", &url, "--tee", "sim-snp", "--json"];
        args.extend_from_slice(extra);
        let out = agent(&args).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout_json(&out)["wit"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_an_allow_list_without_our_uid_refuses_us_with_peer_not_allowed() {
    let fv = FakeVerifier::start(600).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    // Neither this uid nor gid (we may be root: root is not implied once a list is given).
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--verifier",
            &fv.url(),
            "--tee",
            "sim-snp",
            "--insecure-http",
            "--allow-uid",
            "4242420",
            "--allow-uid",
            "4242421",
            "--allow-gid",
            "4242422",
            "--socket",
        ])
        .arg(&socket)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let deadline = now_f64() + 60.0;
    // Wait until the agent holds a credential (it attested), then ask for it.
    while fv.records().is_empty() || !socket.exists() {
        assert!(now_f64() < deadline, "the agent never attested");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, ctype, body) = uds_request(&socket, "GET", "/v1/wit", None).await;
    assert_eq!((status, ctype.as_str()), (403, "application/problem+json"));
    assert_eq!(body["code"], "peer_not_allowed");
    child.start_kill().expect("kill");
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spiffe_flags_refuse_a_non_spiffe_identity_and_a_mapping_without_the_spiffe_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    let socket = socket.to_str().expect("utf-8 path");
    let spiffe = dir.path().join("spiffe.sock");
    let spiffe = spiffe.to_str().expect("utf-8 path");
    let base = [
        "run",
        "--verifier",
        "http://127.0.0.1:9",
        "--tee",
        "sim-snp",
        "--socket",
        socket,
    ];
    // A mapping to something that is not a SPIFFE ID is a usage error (clap: exit 2), naming the rule.
    for bad in [
        "1001=wimse://locus.example/a",
        "1001=spiffe://locus.example/a/",
        "x=spiffe://locus.example/a",
    ] {
        let mut args = base.to_vec();
        args.extend(["--spiffe-socket", spiffe, "--spiffe-uid", bad]);
        let out = agent(&args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The WIT-SVID profile needs the SPIFFE socket.
    let mut args = base.to_vec();
    args.push("--spiffe-wit-svid");
    assert_eq!(agent(&args).await.status.code(), Some(2));
    // A mapping without the SPIFFE socket is a configuration error.
    let mut args = base.to_vec();
    args.extend(["--spiffe-gid", "100=spiffe://locus.example/a"]);
    let out = agent(&args).await;
    assert_ne!(out.status.code(), Some(0));
    let shown = String::from_utf8_lossy(&out.stderr);
    assert!(
        shown.contains("config_invalid") && shown.contains("--spiffe-socket"),
        "{shown}"
    );
}
