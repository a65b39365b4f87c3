//! The agent against a verifier that serves TLS with a private CA (issue 10 items 1 and 6): `--verifier-ca` pins that
//! CA and the attestation succeeds over `https://`; without it (system roots only) the connection is refused.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use locus_tests::procs::{run_to_completion, workspace_bin, VerifierProcess};

const STEP: Duration = Duration::from_secs(120);

#[test]
fn the_agent_attests_over_https_to_a_verifier_with_a_private_ca_only_when_told_to_trust_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lo: IpAddr = "127.0.0.1".parse().expect("ip");
    let tls =
        locus_simulator::tls::test_tls(11, &["localhost"], &[lo], 1_700_000_000, 4_102_444_800)
            .expect("test TLS");
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&cert, &tls.chain_pem).expect("cert");
    std::fs::write(&key, &tls.key_pem).expect("key");
    std::fs::write(&ca, &tls.ca_pem).expect("ca");
    let config = locus_tests::paths::example_config_for(&dir.path().join("state"), None)
        .expect("example config")
        .replace(
            "[server]\n",
            &format!(
                "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
                cert.display().to_string(),
                key.display().to_string()
            ),
        );
    assert!(config.contains("tls_cert"), "the [server] table was found");
    let config_path = dir.path().join("verifier.toml");
    std::fs::write(&config_path, config).expect("write config");
    let verifier = VerifierProcess::start(
        &workspace_bin("locus-verifier").expect("verifier binary"),
        &config_path,
        &dir.path().join("verifier.stderr"),
        STEP,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let base = verifier.base.replace("http://", "https://");
    let agent = workspace_bin("locus-agent").expect("agent binary");
    let attest = |extra: &[&str]| {
        let mut cmd = Command::new(&agent);
        cmd.args([
            "attest",
            "--verifier",
            &base,
            "--tee",
            "sim-snp",
            "--sim-profile",
            "snp-fra-1",
            "--json",
        ])
        .args(extra)
        .env("RUST_LOG", "warn");
        run_to_completion("locus-agent attest", &mut cmd, STEP).expect("spawn locus-agent")
    };
    let pinned = attest(&["--verifier-ca", ca.to_str().expect("path")]);
    assert!(
        pinned.success(),
        "{}\n{}\n{}",
        pinned.stdout,
        pinned.stderr,
        verifier.stderr()
    );
    let v: serde_json::Value = serde_json::from_str(pinned.stdout.trim()).expect("json");
    assert_eq!(v["claims"]["sub"], "spiffe://locus.example/model-server");
    let unpinned = attest(&[]);
    assert!(
        !unpinned.success(),
        "the private CA is not in the system roots"
    );
    let v: serde_json::Value = serde_json::from_str(unpinned.stdout.trim()).expect("json");
    assert_eq!(v["error"]["code"], "verifier_unreachable", "{v}");
}
