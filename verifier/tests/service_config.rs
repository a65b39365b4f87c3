//! Configuration: a bad file at start exits non-zero listing every problem; a bad file on SIGHUP keeps the service
//! answering as before; a good one takes effect.

mod service_support;

use std::process::Command;
use std::time::Duration;

use service_support::*;

#[test]
fn a_bad_config_at_start_exits_non_zero_listing_every_problem() {
    let dir = tempdir();
    let bad = example_config(&dir.path().join("state"))
        .replace("country = \"DE\"", "country = \"Germany\"")
        .replace("site = \"iad-1\"", "site = \"iad-9\"")
        .replace("zones = [\"eu\"]", "zones = [\"emea\"]")
        .replace(
            "issuer = \"http://127.0.0.1:8443\"",
            "issuer = \"verifier\"",
        )
        .replace(
            "tdx_allowed_tcb = [\"UpToDate\"]",
            "tdx_allowed_tcb = [\"Fine\"]",
        );
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, bad).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "never listened");
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["Germany", "iad-9", "emea", "server.issuer", "Fine"] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn toml_syntax_errors_are_reported_too() {
    let dir = tempdir();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "[server\nissuer = ").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TOML"));
}

fn hup(pid: u32) {
    let st = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

async fn reloads(base: &str, result: &str) -> u64 {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    let needle = format!("locus_config_reloads_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

async fn wait_reloads(base: &str, result: &str, n: u64) {
    for _ in 0..200 {
        if reloads(base, result).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("reload ({result}) #{n} never happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_on_sighup_keeps_the_running_one_and_a_good_one_applies() {
    let dir = tempdir();
    let good = example_config(&dir.path().join("state"));
    let v = Verifier::start(dir.path(), &good);
    let (s, _) = attest(&v.base, "snp-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200);

    // Break the file and reload: still answering, same decisions.
    std::fs::write(
        &v.config_path,
        good.replace("[[zone]]", "[[zone]]\nbogus = 1"),
    )
    .expect("write");
    hup(v.pid());
    wait_reloads(&v.base, "failed", 1).await;
    let (s, b) = attest(&v.base, "snp-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = attest(&v.base, "snp-iad-1", Some(EU_WORKLOAD)).await;
    assert_refused(s, &b, "geofence_denied", 403);
    assert!(
        v.stderr().contains("bogus"),
        "the failed reload names the problem"
    );

    // A good change (the US joins the fence) applies on the next SIGHUP.
    std::fs::write(
        &v.config_path,
        good.replace("zones = [\"eu\"]", "zones = [\"eu\", \"us\"]"),
    )
    .expect("write");
    hup(v.pid());
    wait_reloads(&v.base, "ok", 1).await;
    let (s, b) = attest(&v.base, "snp-iad-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
}
