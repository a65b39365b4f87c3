//! Replicas sharing only the keys directory (DESIGN §13) interoperate, and key rotation keeps old WITs verifiable.

mod service_support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use service_support::*;

fn replica_config(dir: &std::path::Path, name: &str, keys: &std::path::Path) -> String {
    example_config(&dir.join(format!("state-{name}")))
        .replace("key_rescan_secs = 30", "key_rescan_secs = 1")
        .replace(
            "# keys_dir = \"/var/run/secrets/locus\"",
            &format!("keys_dir = {:?}", keys.display().to_string()),
        )
}

async fn active_kid(base: &str) -> String {
    get_json(base, "/readyz").await["active_kid"]
        .as_str()
        .expect("kid")
        .to_string()
}

async fn wait_for_kid_change(base: &str, old: &str) -> String {
    for _ in 0..200 {
        let kid = active_kid(base).await;
        if kid != old {
            return kid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} never picked up the rotated key");
}

fn hup(pid: u32) {
    let st = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_keys_interoperate_and_rotation_keeps_old_wits_valid() {
    let dir = tempdir();
    let keys = dir.path().join("shared-keys");
    let a = Verifier::start_named(dir.path(), "a", &replica_config(dir.path(), "a", &keys));
    let b = Verifier::start_named(dir.path(), "b", &replica_config(dir.path(), "b", &keys));

    // Challenge from A, attest at B, and the other way round.
    let mut wits = Vec::new();
    for (from, to) in [(&a, &b), (&b, &a)] {
        let nonce = challenge(&from.base).await;
        let agent = Agent::new();
        let (s, body, _) = post_attest(
            &to.base,
            &agent.request("snp-fra-1", &nonce, Some(EU_WORKLOAD)),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        wits.push(body["wit"].as_str().expect("wit").to_string());
    }
    for wit in &wits {
        verify_wit(&a.base, wit)
            .await
            .expect("verifies with A's JWKS");
        verify_wit(&b.base, wit)
            .await
            .expect("verifies with B's JWKS");
    }

    // Rotate: a new key becomes active after reload; both are published; old WITs still verify.
    let old_kid = active_kid(&a.base).await;
    let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .args(["keys", "rotate", "--config"])
        .arg(&a.config_path)
        .output()
        .expect("keys rotate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("rotate prints JSON");
    // A reloads on SIGHUP; B notices the new key file by itself (key_rescan_secs = 1).
    hup(a.pid());
    let new_a = wait_for_kid_change(&a.base, &old_kid).await;
    let new_b = wait_for_kid_change(&b.base, &old_kid).await;
    assert_eq!(new_a, new_b);
    assert_eq!(printed["active_kid"], new_a.as_str());

    for v in [&a, &b] {
        let jwks = get_json(&v.base, "/.well-known/jwks.json").await;
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        assert!(
            kids.contains(&old_kid.as_str()) && kids.contains(&new_a.as_str()),
            "{kids:?}"
        );
        for wit in &wits {
            verify_wit(&v.base, wit)
                .await
                .expect("a WIT signed by the old key still verifies");
        }
    }
    let (s, body) = attest(&b.base, "tdx-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{body}");
    let fresh = body["wit"].as_str().expect("wit");
    let header: Value =
        serde_json::from_slice(&b64d(fresh.split('.').next().expect("h"))).expect("json");
    assert_eq!(
        header["kid"],
        new_a.as_str(),
        "new WITs are signed by the new key"
    );
    verify_wit(&a.base, fresh)
        .await
        .expect("verifies at the other replica");
}
