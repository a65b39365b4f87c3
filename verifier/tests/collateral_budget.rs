//! Fetches of platforms never seen before (issue 10, item 2), against the simulator's KDS slowed down with its `slow`
//! fault: beyond the per-client budget, the global budget or a full fetch pool a made-up CHIP_ID is refused
//! `collateral_missing` at once instead of waiting for the KDS; a known platform is served from the cache meanwhile;
//! and a flight every waiter gave up on is dropped.
//!
//! A "made-up CHIP_ID" is a genuine simulator report with its CHIP_ID bytes replaced: the collateral layer reads the
//! CHIP_ID before anything is verified, which is exactly what an attacker exploits.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use locus_simulator::fault::Faults;
use locus_simulator::world::World;
use locus_verifier::collateral::http::{RetryPolicy, Timeouts};
use locus_verifier::collateral::{Collateral, CollateralConfig};
use locus_verifier::ErrorCode;

/// 2026-06-01T00:00:00Z: inside the simulated VCEK (2025..2032) and AMD CRL (2025..2049) windows.
const NOW: u64 = 1_780_272_000;
const PROFILE: &str = "snp-fra-1";
/// CHIP_ID: offset 0x1A0, 64 bytes (SEV-SNP ABI, ATTESTATION_REPORT).
const CHIP_ID: std::ops::Range<usize> = 0x1A0..0x1E0;
/// REPORTED_TCB: offset 0x180, 8 bytes.
const REPORTED_TCB: std::ops::Range<usize> = 0x180..0x188;
/// A refusal "at once" comes well before the slowed KDS could have answered anything.
const AT_ONCE: Duration = Duration::from_millis(400);

const CLIENT_A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const CLIENT_B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const CLIENT_C: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));

struct Sim {
    url: String,
}

impl Sim {
    async fn start(faults: &[&str]) -> Sim {
        let mut f = Faults::none();
        for name in faults {
            f.add(name).expect("fault");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(locus_simulator::server::serve(listener, World::shared(), f));
        Sim { url }
    }

    /// VCEK requests the KDS saw so far.
    async fn vcek_requests(&self) -> u64 {
        let stats: serde_json::Value = reqwest::get(format!("{}/_sim/stats", self.url))
            .await
            .expect("stats request")
            .json()
            .await
            .expect("stats json");
        stats["requests"]
            .as_object()
            .expect("requests map")
            .iter()
            .filter(|(p, _)| {
                p.starts_with("/vcek/v1/") && !p.ends_with("/cert_chain") && !p.ends_with("/crl")
            })
            .map(|(_, n)| n.as_u64().expect("count"))
            .sum()
    }
}

fn config(
    url: &str,
    cache: &std::path::Path,
    per_client: u32,
    global: u32,
    pool: usize,
) -> CollateralConfig {
    CollateralConfig {
        amd_kds_url: url.to_owned(),
        intel_pcs_url: url.to_owned(),
        cache_dir: Some(cache.to_path_buf()),
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            total: Duration::from_secs(20),
        },
        retry: RetryPolicy {
            max_retries: 0,
            max_429_retries: 0,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            max_total_wait: Duration::from_secs(1),
        },
        failure_backoff: Duration::ZERO,
        fetch_concurrency: pool,
        new_platform_fetches_per_client: per_client,
        new_platform_fetches_global: global,
        ..CollateralConfig::default()
    }
}

/// A genuine report of the profile's platform.
fn genuine() -> Vec<u8> {
    World::shared()
        .snp_attester(PROFILE)
        .expect("attester")
        .report(&[7u8; 64])
        .expect("report")
        .report
}

/// The genuine report with CHIP_ID `n` (never a real chip of the simulator's world).
fn made_up_chip(n: u64) -> Vec<u8> {
    let mut raw = genuine();
    let chip = &mut raw[CHIP_ID];
    chip.fill(0xa5);
    chip[..8].copy_from_slice(&n.to_be_bytes());
    raw
}

/// Start a request from `client` that will wait on the slowed KDS, and give it time to reach it.
async fn start_fetch(c: &Collateral, client: IpAddr, raw: Vec<u8>) -> tokio::task::JoinHandle<()> {
    let c = c.clone();
    let task = tokio::spawn(async move {
        let _ = c.snp_endorsements(client, &raw, &[], NOW).await;
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    task
}

/// A request expected to be refused at once: its refusal and how long it took.
async fn refused(
    c: &Collateral,
    client: IpAddr,
    raw: &[u8],
) -> (locus_verifier::Refusal, Duration) {
    let started = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        c.snp_endorsements(client, raw, &[], NOW),
    )
    .await
    .expect("a budget refusal never waits for the KDS")
    .expect_err("must be refused");
    (err, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_its_budget_a_client_asking_for_new_platforms_is_collateral_missing_at_once() {
    let sim = Sim::start(&["slow:3000"]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&sim.url, cache.path(), 2, 100, 8)).expect("collateral");
    let a1 = start_fetch(&c, CLIENT_A, made_up_chip(1)).await;
    let a2 = start_fetch(&c, CLIENT_A, made_up_chip(2)).await;

    let (err, took) = refused(&c, CLIENT_A, &made_up_chip(3)).await;
    assert_eq!(err.code, ErrorCode::CollateralMissing);
    assert!(
        err.message.contains("this client's budget") && err.message.contains("exhausted"),
        "{}",
        err.message
    );
    assert!(took < AT_ONCE, "refused after {took:?}");
    // A budget refusal is not a failed fetch, and it was never sent.
    assert_eq!(c.stats().fetch_failures, 0);
    assert_eq!(c.stats().new_platform_refusals, 1);
    assert_eq!(sim.vcek_requests().await, 2);

    // Another client has its own budget: its request goes to the (slow) KDS.
    let other = tokio::time::timeout(
        AT_ONCE,
        c.snp_endorsements(CLIENT_B, &made_up_chip(4), &[], NOW),
    )
    .await;
    assert!(other.is_err(), "client B was refused: {other:?}");
    a1.abort();
    a2.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_budget_bounds_new_platform_fetches_of_all_clients_together() {
    let sim = Sim::start(&["slow:3000"]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&sim.url, cache.path(), 2, 3, 8)).expect("collateral");
    let tasks = vec![
        start_fetch(&c, CLIENT_A, made_up_chip(1)).await,
        start_fetch(&c, CLIENT_A, made_up_chip(2)).await,
        start_fetch(&c, CLIENT_B, made_up_chip(3)).await,
    ];
    for (client, n) in [(CLIENT_B, 4), (CLIENT_C, 5)] {
        let (err, took) = refused(&c, client, &made_up_chip(n)).await;
        assert_eq!(err.code, ErrorCode::CollateralMissing);
        assert!(
            err.message.contains("verifier's budget") && err.message.contains("exhausted"),
            "{}",
            err.message
        );
        assert!(took < AT_ONCE, "refused after {took:?}");
    }
    assert_eq!(sim.vcek_requests().await, 3);
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_fetch_pool_refuses_a_new_platform_at_once_while_a_known_one_is_served_from_the_cache(
) {
    let sim = Sim::start(&["slow:700"]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&sim.url, cache.path(), 10, 100, 1)).expect("collateral");
    let known = genuine();
    let warm = c
        .snp_endorsements(CLIENT_A, &known, &[], NOW)
        .await
        .expect("the genuine platform's endorsements");

    // One new-platform fetch holds the only place in the pool (for the KDS's 700 ms).
    let holder = start_fetch(&c, CLIENT_A, made_up_chip(1)).await;
    let (err, took) = refused(&c, CLIENT_B, &made_up_chip(2)).await;
    assert_eq!(err.code, ErrorCode::CollateralMissing);
    assert!(
        err.message.contains("fetch pool is full"),
        "{}",
        err.message
    );
    assert!(took < AT_ONCE, "refused after {took:?}");

    let started = Instant::now();
    let served = c
        .snp_endorsements(CLIENT_C, &known, &[], NOW)
        .await
        .expect("served from the cache");
    assert!(started.elapsed() < AT_ONCE, "took {:?}", started.elapsed());
    assert_eq!(served, warm);
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_chip_at_a_tcb_never_fetched_spends_the_budget_and_its_cached_tcb_does_not() {
    let sim = Sim::start(&[]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    // One new-platform fetch for everybody, spent on the genuine platform.
    let c = Collateral::new(config(&sim.url, cache.path(), 1, 1, 8)).expect("collateral");
    let known = genuine();
    c.snp_endorsements(CLIENT_A, &known, &[], NOW)
        .await
        .expect("first fetch");
    // The same chip at its cached TCB: served, from any client, with no budget left.
    for client in [CLIENT_A, CLIENT_B] {
        c.snp_endorsements(client, &known, &[], NOW)
            .await
            .expect("cached");
    }
    // The same chip claiming another TCB: KDS would sign a VCEK for any TCB asked, so it is a fetch like any
    // made-up chip's, and the budget is spent.
    let mut other_tcb = known.clone();
    other_tcb[REPORTED_TCB][0] ^= 0x01;
    let (err, _) = refused(&c, CLIENT_B, &other_tcb).await;
    assert_eq!(err.code, ErrorCode::CollateralMissing);
    assert!(err.message.contains("budget"), "{}", err.message);
    assert_eq!(sim.vcek_requests().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_platform_flight_every_waiter_gave_up_on_is_dropped() {
    let sim = Sim::start(&["slow:3000"]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&sim.url, cache.path(), 100, 100, 8)).expect("collateral");
    for n in 0..20 {
        let gave_up = tokio::time::timeout(
            Duration::from_millis(50),
            c.snp_endorsements(CLIENT_A, &made_up_chip(n), &[], NOW),
        )
        .await;
        assert!(
            gave_up.is_err(),
            "request {n} did not wait for the slow KDS"
        );
    }
    assert_eq!(c.stats().flights_in_progress, 0);
    // Giving up also let go of the fetch pool: a full-size pool admits a new fetch at once.
    let next = tokio::time::timeout(
        AT_ONCE,
        c.snp_endorsements(CLIENT_B, &made_up_chip(99), &[], NOW),
    )
    .await;
    assert!(next.is_err(), "pool or budget refused: {next:?}");
}
