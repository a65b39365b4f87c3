//! Issue 10, item 2 ("the verifier stays up and loses nothing under hostile clients and faults"), fetch amplification:
//! during a flood of SEV-SNP reports with made-up CHIP_IDs against a slow AMD KDS, a TDX attestation whose collateral
//! is cached is answered without waiting for the KDS.
//!
//! Real processes on loopback: `locus-sim serve --fault slow:MS` is the AMD KDS and Intel PCS; `locus-verifier serve`
//! runs `examples/verifier.toml` turned online (no `collateral_dir`, `offline = false`, both services pointed at the
//! simulator) with small new-platform budgets. The good client speaks from 127.0.0.1; the attackers bind their
//! sockets to 127.0.0.2 and 127.0.0.3, so the per-client budget is exercised apart from the global one:
//!
//! 1. the good client's first TDX attestation fetches the collateral (slowly; its TCB info spends one global token)
//!    and the second is served from cache;
//! 2. attacker .2 sends a burst: exactly its per-client budget reaches the KDS, the rest is refused
//!    `collateral_missing` at once ("this client's budget … exhausted");
//! 3. attacker .3 sends a burst: what is left of the global budget reaches the KDS, the rest is refused at once
//!    ("the verifier's budget … exhausted");
//! 4. while the KDS still sits on the admitted fetches, the good client attests over TDX again, several times, each
//!    answered (issued) in far less than the KDS delay.
//!
//! Bounded: a fixed number of requests, every request with a timeout, the processes killed on drop.
//! `cargo test -p locus-tests --test fetch_flood -- --nocapture` prints the measured figures (`FLOOD …` lines).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use locus_hw::attester::Attester as _;
use locus_simulator::World;
use locus_tests::procs::{workspace_bin, ChildGuard, VerifierProcess};
use locus_verifier::decision::binding;
use locus_wimse::{b64, Es256SigningKey, Jwk};
use serde_json::{json, Value};

/// The simulated vendor services' delay on every answer.
const KDS_DELAY_MS: u64 = 3000;
/// The new-platform budgets under test (per minute). The good client's first TDX attestation spends one global token
/// (TCB info for its FMSPC, never fetched before), so the attackers share `GLOBAL - 1`.
const PER_CLIENT: usize = 2;
const GLOBAL: usize = 4;
/// Global tokens left for the attackers.
const FOR_ATTACKERS: usize = GLOBAL - 1;
/// Requests in each attacker's burst.
const BURST: usize = 5;
/// TDX attestations of the good client during the flood.
const GOOD_DURING_FLOOD: usize = 5;
/// CHIP_ID: offset 0x1A0, 64 bytes (SEV-SNP ABI, ATTESTATION_REPORT).
const CHIP_ID: std::ops::Range<usize> = 0x1A0..0x1E0;

const GOOD: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const ATTACKER_A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const ATTACKER_B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// `locus-sim serve --listen 127.0.0.1:0 --fault slow:MS`, its URL read from its first stdout line.
fn start_sim(dir: &std::path::Path) -> (ChildGuard, String) {
    use std::io::BufRead as _;
    let bin = workspace_bin("locus-sim").expect("locus-sim binary");
    let stderr = std::fs::File::create(dir.join("sim.stderr")).expect("sim stderr");
    let child = std::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--fault"])
        .arg(format!("slow:{KDS_DELAY_MS}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(stderr))
        .spawn()
        .expect("spawn locus-sim");
    let mut guard = ChildGuard::new("locus-sim", child);
    let stdout = guard
        .child_mut()
        .and_then(|c| c.stdout.take())
        .expect("sim stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("locus-sim did not start listening")
        .expect("locus-sim exited")
        .expect("locus-sim stdout");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (guard, url)
}

/// `examples/verifier.toml` for `state_dir`, fetching from `sim_url` with the budgets under test.
fn online_config(state_dir: &std::path::Path, sim_url: &str) -> String {
    let text = locus_tests::paths::example_config_for(state_dir, None).expect("example config");
    let mut doc: toml::Table = text.parse().expect("TOML");
    let trust = doc
        .get_mut("trust")
        .and_then(toml::Value::as_table_mut)
        .expect("[trust]");
    trust.remove("collateral_dir");
    trust.insert("offline".into(), false.into());
    trust.insert("amd_kds_url".into(), sim_url.into());
    trust.insert("intel_pcs_url".into(), sim_url.into());
    trust.insert(
        "new_platform_fetches_per_client".into(),
        (PER_CLIENT as i64).into(),
    );
    trust.insert("new_platform_fetches_global".into(), (GLOBAL as i64).into());
    trust.insert("fetch_concurrency".into(), 8i64.into());
    toml::to_string(&doc).expect("TOML out")
}

fn client_from(addr: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(addr)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let resp = client.post(url).json(body).send().await.expect("POST");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn challenge(client: &reqwest::Client, base: &str) -> Vec<u8> {
    let (status, v) = post(client, &format!("{base}/v1/challenge"), &json!({})).await;
    assert_eq!(status, 200, "challenge: {v}");
    b64::decode(v["nonce"].as_str().expect("nonce")).expect("nonce is base64url")
}

/// A genuine TDX attestation of `tdx-fra-1` for the EU workload: status, body and latency of the attest call.
async fn good_tdx(client: &reqwest::Client, base: &str) -> (u16, Value, Duration) {
    let nonce = challenge(client, base).await;
    let key = Es256SigningKey::generate().expect("agent key");
    let jwk = Jwk::new(key.public_key());
    let rd = binding::report_data(&nonce, &jwk.thumbprint_sha256());
    let ev = World::shared()
        .tdx_attester("tdx-fra-1")
        .expect("TDX profile")
        .attest(&rd)
        .expect("attest");
    let body = json!({
        "nonce": b64::encode(&nonce),
        "tee": "tdx",
        "evidence": b64::encode(&ev.raw),
        "jwk": jwk.to_value(),
        "workload": "spiffe://locus.example/model-server",
    });
    let started = Instant::now();
    let (status, v) = post(client, &format!("{base}/v1/attest"), &body).await;
    (status, v, started.elapsed())
}

/// An SEV-SNP report of `snp-fra-1` with CHIP_ID `n` (no such chip exists) and no certificates: the verifier must
/// ask the KDS for its VCEK.
async fn made_up_chip(client: &reqwest::Client, base: &str, n: u64) -> (u16, Value, Duration) {
    let nonce = challenge(client, base).await;
    let key = Es256SigningKey::generate().expect("key");
    let jwk = Jwk::new(key.public_key());
    let rd = binding::report_data(&nonce, &jwk.thumbprint_sha256());
    let mut raw = World::shared()
        .snp_attester("snp-fra-1")
        .expect("SNP profile")
        .report(&rd)
        .expect("report")
        .report;
    let chip = &mut raw[CHIP_ID];
    chip.fill(0x5a);
    chip[..8].copy_from_slice(&n.to_be_bytes());
    let body = json!({
        "nonce": b64::encode(&nonce),
        "tee": "sev-snp",
        "evidence": b64::encode(&raw),
        "jwk": jwk.to_value(),
    });
    let started = Instant::now();
    let (status, v) = post(client, &format!("{base}/v1/attest"), &body).await;
    (status, v, started.elapsed())
}

/// A burst of `BURST` made-up CHIP_IDs from `client`, sent concurrently.
async fn burst(
    client: &reqwest::Client,
    base: &str,
    first: u64,
) -> Vec<tokio::task::JoinHandle<(u16, Value, Duration)>> {
    let mut tasks = Vec::new();
    for n in first..first + BURST as u64 {
        let (client, base) = (client.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            made_up_chip(&client, &base, n).await
        }));
    }
    tasks
}

async fn kds_vcek_requests(sim: &str) -> u64 {
    let stats: Value = reqwest::get(format!("{sim}/_sim/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json");
    stats["requests"]
        .as_object()
        .expect("requests")
        .iter()
        .filter(|(p, _)| {
            p.starts_with("/vcek/v1/") && !p.ends_with("/cert_chain") && !p.ends_with("/crl")
        })
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum()
}

/// Split a burst's answers into (finished, still waiting) after `wait`.
async fn settle(
    tasks: Vec<tokio::task::JoinHandle<(u16, Value, Duration)>>,
    wait: Duration,
) -> (
    Vec<(u16, Value, Duration)>,
    Vec<tokio::task::JoinHandle<(u16, Value, Duration)>>,
) {
    tokio::time::sleep(wait).await;
    let mut done = Vec::new();
    let mut waiting = Vec::new();
    for t in tasks {
        if t.is_finished() {
            done.push(t.await.expect("join"));
        } else {
            waiting.push(t);
        }
    }
    (done, waiting)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn a_cached_tdx_attestation_is_answered_during_a_flood_of_made_up_chip_ids_against_a_slow_kds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_sim_guard, sim) = start_sim(dir.path());
    let config_path = dir.path().join("verifier.toml");
    std::fs::write(&config_path, online_config(&dir.path().join("state"), &sim))
        .expect("write config");
    let verifier = VerifierProcess::start(
        &workspace_bin("locus-verifier").expect("locus-verifier binary"),
        &config_path,
        &dir.path().join("verifier.stderr"),
        Duration::from_secs(60),
    )
    .expect("verifier");
    let base = verifier.base.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let good = client_from(GOOD);
        let attacker_a = client_from(ATTACKER_A);
        let attacker_b = client_from(ATTACKER_B);
        let delay = Duration::from_millis(KDS_DELAY_MS);

        // 1. Warm the TDX collateral (fetched through the slow PCS once), then the cached baseline.
        let (status, v, cold) = good_tdx(&good, &base).await;
        assert_eq!(status, 200, "first TDX attestation: {v}\n{}", verifier.stderr());
        let (status, v, baseline) = good_tdx(&good, &base).await;
        assert_eq!(status, 200, "cached TDX attestation: {v}");
        assert!(baseline < delay / 2, "the cached attestation took {baseline:?}");

        // 2. Attacker .2: its per-client budget reaches the KDS, the rest is refused at once.
        let flood_started = Instant::now();
        let (a_refused, a_waiting) =
            settle(burst(&attacker_a, &base, 1).await, Duration::from_millis(500)).await;
        // 3. Attacker .3: what is left of the global budget reaches the KDS, the rest is refused at once.
        let (b_refused, b_waiting) =
            settle(burst(&attacker_b, &base, 1_000).await, Duration::from_millis(500)).await;
        let at_kds = kds_vcek_requests(&sim).await;

        // 4. The good client, while the admitted fetches still wait on the KDS.
        let mut during = Vec::new();
        for _ in 0..GOOD_DURING_FLOOD {
            let (status, v, took) = good_tdx(&good, &base).await;
            assert_eq!(status, 200, "TDX attestation during the flood: {v}");
            during.push(took);
        }
        let good_done = flood_started.elapsed();
        assert!(
            good_done < delay,
            "the good client finished {good_done:?} after the flood began: it waited for the KDS"
        );
        assert_eq!(a_waiting.len() + b_waiting.len(), FOR_ATTACKERS);
        assert!(
            a_waiting.iter().chain(&b_waiting).all(|t| !t.is_finished()),
            "the admitted fetches are still at the KDS while the good client is served"
        );

        // The admitted attacker requests end with the KDS's answer (no such chip).
        let mut admitted = Vec::new();
        for t in a_waiting.into_iter().chain(b_waiting) {
            admitted.push(t.await.expect("join"));
        }

        // Checks on the attackers' answers.
        assert_eq!(a_refused.len(), BURST - PER_CLIENT, "attacker .2 refused at once");
        assert_eq!(
            b_refused.len(),
            BURST - (FOR_ATTACKERS - PER_CLIENT),
            "attacker .3 refused at once"
        );
        for (who, answers, budget) in [
            ("attacker .2", &a_refused, "this client's budget"),
            ("attacker .3", &b_refused, "the verifier's budget"),
        ] {
            for (status, v, _) in answers.iter() {
                assert!(*status >= 400, "{who}: {v}");
                assert_eq!(v["code"], "collateral_missing", "{who}: {v}");
                let detail = v["detail"].as_str().unwrap_or_default();
                assert!(
                    detail.contains(budget) && detail.contains("exhausted"),
                    "{who}: {v}"
                );
            }
        }
        for (status, v, took) in &admitted {
            assert!(*status >= 400, "admitted: {v}");
            assert_eq!(v["code"], "collateral_missing", "admitted: {v}");
            assert!(*took >= delay, "an admitted request did not wait for the KDS: {took:?}");
        }
        assert_eq!(at_kds, FOR_ATTACKERS as u64, "VCEK requests the KDS saw");

        let refused_at_once: Vec<Duration> =
            a_refused.iter().chain(&b_refused).map(|(_, _, d)| *d).collect();
        let max_refusal = refused_at_once.iter().max().copied().unwrap_or_default();
        assert!(max_refusal < delay / 2, "a refusal took {max_refusal:?}");
        let mut sorted = during.clone();
        sorted.sort();
        let (p50, max) = (sorted[sorted.len() / 2], sorted[sorted.len() - 1]);
        assert!(max < delay / 2, "a TDX attestation during the flood took {max:?}");
        let admitted_min = admitted.iter().map(|(_, _, d)| *d).min().unwrap_or_default();
        println!("FLOOD KDS delay {KDS_DELAY_MS} ms; budgets {PER_CLIENT}/client, {GLOBAL} global per minute");
        println!(
            "FLOOD good TDX: cold {:.1} ms, cached baseline {:.1} ms, during flood p50 {:.1} ms max {:.1} ms ({} requests)",
            ms(cold),
            ms(baseline),
            ms(p50),
            ms(max),
            during.len()
        );
        println!(
            "FLOOD attackers: {} requests, {} refused at once (max {:.1} ms), {} reached the KDS (min {:.1} ms), KDS VCEK requests {at_kds}",
            2 * BURST,
            refused_at_once.len(),
            ms(max_refusal),
            admitted.len(),
            ms(admitted_min)
        );
    });
    drop(verifier);
}
