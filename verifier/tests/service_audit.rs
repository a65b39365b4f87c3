//! The audit log survives `kill -9` under concurrent load: every WIT a client received is in it, and it parses.

mod service_support;

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};

use service_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wit_a_client_received_is_in_the_audit_log_after_kill_9_and_restart() {
    let dir = tempdir();
    let state = dir.path().join("state");
    let cfg = example_config(&state);
    let v = Verifier::start(dir.path(), &cfg);
    let base = v.base.clone();

    // Pre-build request bodies so the load is HTTP and appraisal, not simulator signing.
    let mut bodies = Vec::new();
    for i in 0..48 {
        let nonce = challenge(&base).await;
        let agent = Agent::new();
        let profile = if i % 2 == 0 { "snp-fra-1" } else { "tdx-iad-1" };
        bodies.push(agent.request(profile, &nonce, None));
    }
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for chunk in bodies.chunks(6) {
        let chunk = chunk.to_vec();
        let base = base.clone();
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            for body in chunk {
                // After the kill, requests fail; that is expected.
                let Ok(resp) = client()
                    .post(format!("{base}/v1/attest"))
                    .json(&body)
                    .send()
                    .await
                else {
                    return;
                };
                if resp.status().as_u16() != 200 {
                    continue;
                }
                if let Ok(v) = resp.json::<serde_json::Value>().await {
                    if let Some(wit) = v["wit"].as_str() {
                        received.lock().expect("lock").push(wit.to_string());
                    }
                }
            }
        }));
    }
    // Kill -9 while the load runs: once some WITs were received.
    loop {
        if received.lock().expect("lock").len() >= 4 || tasks.iter().all(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let st = Command::new("kill")
        .args(["-9", &v.pid().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    for t in tasks {
        let _ = t.await;
    }
    drop(v);

    // Restart on the same state: the log is opened (a torn tail would be cut) and appended to.
    let v2 = Verifier::start_named(dir.path(), "restart", &cfg);
    let (s, _) = attest(&v2.base, "snp-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200);
    let (s, _) = attest(&v2.base, "snp-iad-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 403);

    let lines = audit_lines(&state); // panics if any line does not parse
    let audited: HashSet<String> = lines
        .iter()
        .filter(|l| l["decision"] == "issued")
        .filter_map(|l| l["jti"].as_str().map(str::to_string))
        .collect();
    let received = received.lock().expect("lock").clone();
    assert!(received.len() >= 4);
    for wit in &received {
        let claims: serde_json::Value =
            serde_json::from_slice(&b64d(wit.split('.').nth(1).expect("payload"))).expect("claims");
        let jti = claims["jti"].as_str().expect("jti");
        assert!(
            audited.contains(jti),
            "WIT {jti} was received but is not in the audit log"
        );
    }
    // Refusals are audited too, after the restart as before it.
    let last = lines.last().expect("lines");
    assert_eq!(last["decision"], "refused");
    assert_eq!(last["code"], "geofence_denied");
}
