//! TLS on the listener (issue 10 item 1): the example configuration with a test CA serves HTTPS, and attestation works
//! over it; a changed certificate is picked up without a restart; plaintext is refused on a non-loopback address
//! unless `allow_plaintext = true`.

mod service_support;

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use locus_simulator::tls::{test_tls, TestTls};
use service_support::*;

const VALID_UNTIL: u64 = 4_102_444_800; // 2100-01-01

fn pki(seed: u64) -> TestTls {
    let lo: IpAddr = "127.0.0.1".parse().expect("ip");
    test_tls(seed, &["localhost"], &[lo], 1_700_000_000, VALID_UNTIL).expect("test TLS PKI")
}

fn write_pki(dir: &std::path::Path, t: &TestTls) {
    std::fs::write(dir.join("tls.crt"), &t.chain_pem).expect("cert");
    std::fs::write(dir.join("tls.key"), &t.key_pem).expect("key");
}

fn tls_config(state: &std::path::Path, dir: &std::path::Path) -> String {
    example_config(state).replace(
        "key_rescan_secs = 30",
        &format!(
            "key_rescan_secs = 1\ntls_cert = {:?}\ntls_key = {:?}",
            dir.join("tls.crt").display().to_string(),
            dir.join("tls.key").display().to_string()
        ),
    )
}

fn https_client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("ca"))
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn challenge_status(client: &reqwest::Client, base: &str) -> Result<u16, String> {
    client
        .post(format!("{base}/v1/challenge"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_with_a_test_ca_serves_https_and_attests_over_it() {
    let dir = tempdir();
    let first = pki(1);
    write_pki(dir.path(), &first);
    let v = Verifier::start(
        dir.path(),
        &tls_config(&dir.path().join("state"), dir.path()),
    );
    let base = v.base.replace("http://", "https://");
    let client = https_client(&first.ca_pem);
    assert_eq!(challenge_status(&client, &base).await, Ok(200));
    // Plain HTTP to the TLS port gets no answer.
    assert!(challenge_status(&service_support::client(), &v.base).await != Ok(200));
    // A full attestation over TLS.
    let nonce_v: serde_json::Value = client
        .post(format!("{base}/v1/challenge"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("challenge")
        .json()
        .await
        .expect("json");
    let nonce = b64d(nonce_v["nonce"].as_str().expect("nonce"));
    let agent = Agent::new();
    let resp = client
        .post(format!("{base}/v1/attest"))
        .json(&agent.request("snp-fra-1", &nonce, Some(EU_WORKLOAD)))
        .send()
        .await
        .expect("attest");
    assert_eq!(resp.status().as_u16(), 200);

    // A new certificate is picked up when the files change (rescan every second): a client that trusts only the new
    // CA connects, one that trusts only the old CA no longer does.
    let second = pki(2);
    write_pki(dir.path(), &second);
    let new_client = https_client(&second.ca_pem);
    let mut switched = false;
    for _ in 0..50 {
        if challenge_status(&new_client, &base).await == Ok(200) {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        switched,
        "the new certificate is served without a restart\n{}",
        v.stderr()
    );
    assert!(challenge_status(&https_client(&first.ca_pem), &base)
        .await
        .is_err());
}

#[test]
fn plaintext_on_a_non_loopback_address_is_refused_unless_allowed() {
    let dir = tempdir();
    let config = example_config(&dir.path().join("state"));
    let path = dir.path().join("verifier.toml");
    std::fs::write(&path, &config).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to serve plaintext HTTP"),
        "{stderr}"
    );
    // With allow_plaintext it serves (and says so at warn).
    let allowed = config.replace(
        "key_rescan_secs = 30",
        "key_rescan_secs = 30\nallow_plaintext = true",
    );
    std::fs::write(&path, allowed).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", "0.0.0.0:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    use std::io::BufRead as _;
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("listening on 0.0.0.0:"), "{line}");
}
