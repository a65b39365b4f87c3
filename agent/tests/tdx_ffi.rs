//! The agent binary on "TDX hardware" reached through our libtdx_attest FFI: the stand-in library (compiled from
//! `hw/tests/stand-in/tdx_attest_standin.c`) returns a simulator quote with the agent's report data written in, and
//! the fake verifier checks the binding inside the parsed quote. `--tee tdx` and `--tee auto` both find it when
//! configfs-tsm is absent.
#![cfg(feature = "simulator")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use common::{now_secs, FakeVerifier};
use locus_hw::Attester;
use locus_simulator::World;
use serde_json::Value;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_locus-agent");

struct Setup {
    dir: tempfile::TempDir,
    lib: PathBuf,
    template: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = dir.path().join("libtdx_attest.so.1");
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw/tests/stand-in/tdx_attest_standin.c");
    let status = StdCommand::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect(
            "a C compiler `cc` is needed for the libtdx_attest stand-in (.ci/run installs gcc)",
        );
    assert!(status.success());
    let world = World::shared();
    let profile = world
        .profile("tdx-iad-1")
        .and_then(|p| p.tdx())
        .expect("profile")
        .clone();
    let quote = locus_simulator::intel::SimTdxAttester::new(world.intel(), profile)
        .attest(&[0u8; 64])
        .expect("quote")
        .raw;
    let template = dir.path().join("quote-template.bin");
    std::fs::write(&template, quote).expect("write template");
    Setup { dir, lib, template }
}

async fn attest_with(s: &Setup, fv: &FakeVerifier, tee: &str) -> Value {
    let out = Command::new(BIN)
        .args([
            "attest",
            "--verifier",
            &fv.url(),
            "--tee",
            tee,
            "--json",
            "--tsm-root",
        ])
        .arg(s.dir.path().join("no-tsm"))
        .arg("--tdx-attest-lib")
        .arg(&s.lib)
        .env("LOCUS_STANDIN_QUOTE_TEMPLATE", &s.template)
        .output()
        .await
        .expect("run");
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tdx_through_libtdx_attest_ffi_yields_a_wit_bound_to_the_agents_key() {
    let s = setup();
    let fv = FakeVerifier::start(600).await;
    let doc = attest_with(&s, &fv, "tdx").await;
    let verified = fv
        .wit_verifier()
        .verify(doc["wit"].as_str().expect("wit"), now_secs())
        .expect("verifies");
    let records = fv.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].tee, "tdx");
    assert_eq!(
        verified.claims().cnf.thumbprint_sha256(),
        records[0].jwk_thumbprint
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_through_to_libtdx_attest_when_configfs_is_absent() {
    if Path::new("/dev/sev-guest").exists() {
        println!("SKIP: /dev/sev-guest exists; auto would pick it before libtdx_attest");
        return;
    }
    let s = setup();
    let fv = FakeVerifier::start(600).await;
    let doc = attest_with(&s, &fv, "auto").await;
    assert!(doc["wit"].as_str().is_some());
    assert_eq!(fv.records()[0].tee, "tdx");
}
