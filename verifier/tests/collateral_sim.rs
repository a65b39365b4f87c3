//! The collateral layer against the simulator's KDS/PCS server (`locus_simulator::server`, the code behind
//! `locus-sim serve`) on 127.0.0.1:0, counting requests through its `GET /_sim/stats` endpoint. No vectors needed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use locus_hw::snp::Product;
use locus_simulator::fault::Faults;
use locus_simulator::world::World;
use locus_verifier::appraisal::{appraise_snp, TrustAnchors};
use locus_verifier::collateral::http::{RetryPolicy, Timeouts};
use locus_verifier::collateral::{Collateral, CollateralConfig};
use locus_verifier::ErrorCode;

/// The requester these tests fetch for (its new-platform budget is the default, far above what a test spends).
const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// 2026-06-01T00:00:00Z: inside the simulated VCEK (2025..2032) and AMD CRL (2025..2049) windows.
const NOW: u64 = 1_780_272_000;
const PROFILE: &str = "snp-fra-1";

struct Sim {
    url: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
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
        let task = tokio::spawn(locus_simulator::server::serve(listener, World::shared(), f));
        Sim { url, task }
    }

    /// Stop listening and return the URL: the same source (the cache is keyed by source), now unreachable.
    async fn stop(self) -> String {
        self.task.abort();
        let _ = self.task.await;
        self.url
    }

    async fn stats(&self) -> serde_json::Value {
        reqwest::get(format!("{}/_sim/stats", self.url))
            .await
            .expect("stats request")
            .json()
            .await
            .expect("stats json")
    }

    /// Requests the server saw for VCEKs (not the chain or CRL).
    async fn vcek_requests(&self) -> u64 {
        let stats = self.stats().await;
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

    async fn total(&self) -> u64 {
        self.stats().await["total"].as_u64().expect("total")
    }
}

fn config(url: &str, cache: &std::path::Path) -> CollateralConfig {
    CollateralConfig {
        amd_kds_url: url.to_owned(),
        intel_pcs_url: url.to_owned(),
        cache_dir: Some(cache.to_path_buf()),
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            total: Duration::from_secs(10),
        },
        retry: RetryPolicy {
            max_retries: 2,
            max_429_retries: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            max_total_wait: Duration::from_secs(5),
        },
        failure_backoff: Duration::ZERO,
        ..CollateralConfig::default()
    }
}

fn report() -> Vec<u8> {
    let world = World::shared();
    world
        .snp_attester(PROFILE)
        .expect("attester")
        .report(&[7u8; 64])
        .expect("report")
        .report
}

fn anchors() -> TrustAnchors {
    let world = World::shared();
    let product = world
        .profile(PROFILE)
        .and_then(|p| p.snp())
        .expect("snp profile")
        .product;
    TrustAnchors::pinned()
        .expect("pinned")
        .danger_trust_simulator_roots(&[world.amd_ark_der(product).expect("ark")])
}

#[tokio::test]
async fn first_snp_appraisal_fetches_and_the_second_fetches_nothing() {
    let sim = Sim::start(&[]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&sim.url, cache.path())).expect("collateral");
    let raw = report();
    let anchors = anchors();

    let e = c
        .snp_endorsements(LOCAL, &raw, &[], NOW)
        .await
        .expect("endorsements");
    assert!(
        e.vek_der.is_some() && e.ask_der.is_some() && e.ark_der.is_some() && e.crl_der.is_some()
    );
    let verified =
        appraise_snp(&raw, &e, &anchors, NOW).expect("appraisal with fetched endorsements");
    assert!(verified.simulated());
    assert_eq!(sim.vcek_requests().await, 1);
    let after_first = sim.total().await;
    assert_eq!(after_first, 3, "VCEK, cert chain, CRL");

    let again = c
        .snp_endorsements(LOCAL, &raw, &[], NOW)
        .await
        .expect("endorsements");
    appraise_snp(&raw, &again, &anchors, NOW).expect("second appraisal");
    assert_eq!(
        sim.total().await,
        after_first,
        "the second appraisal fetched something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_cold_requests_for_one_platform_make_one_vcek_fetch() {
    let sim = Sim::start(&["slow:300"]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&sim.url, cache.path())).expect("collateral");
    let raw = Arc::new(report());
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let c = c.clone();
        let raw = raw.clone();
        tasks.push(tokio::spawn(async move {
            c.snp_endorsements(LOCAL, &raw, &[], NOW).await
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("join").expect("endorsements"));
    }
    assert!(all.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(sim.vcek_requests().await, 1);
    assert_eq!(sim.total().await, 3);
}

#[tokio::test]
async fn kds_429_is_retried_after_retry_after_and_then_succeeds() {
    let sim = Sim::start(&["kds-429"]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&sim.url, cache.path());
    cfg.fetch_snp_crl = false;
    let c = Collateral::new(cfg).expect("collateral");
    let raw = report();
    let started = Instant::now();
    let e = c
        .snp_endorsements(LOCAL, &raw, &[], NOW)
        .await
        .expect("endorsements after a 429");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 not honoured"
    );
    appraise_snp(&raw, &e, &anchors(), NOW).expect("appraisal");
    let stats = sim.stats().await;
    assert_eq!(stats["throttled"].as_u64(), Some(1));
    assert_eq!(sim.vcek_requests().await, 2, "the 429 and the retry");
}

#[tokio::test]
async fn unreachable_kds_with_warm_cache_serves_and_with_cold_cache_is_collateral_missing() {
    let sim = Sim::start(&[]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let raw = report();
    let warm = Collateral::new(config(&sim.url, cache.path())).expect("collateral");
    let fetched = warm
        .snp_endorsements(LOCAL, &raw, &[], NOW)
        .await
        .expect("warm");

    let dead = sim.stop().await;
    let c = Collateral::new(config(&dead, cache.path())).expect("collateral");
    let served = c
        .snp_endorsements(LOCAL, &raw, &[], NOW)
        .await
        .expect("from the warm cache");
    assert_eq!(served, fetched);
    appraise_snp(&raw, &served, &anchors(), NOW).expect("appraisal");

    let cold = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&dead, cold.path())).expect("collateral");
    let err = c
        .snp_endorsements(LOCAL, &raw, &[], NOW)
        .await
        .expect_err("cold cache, no KDS");
    assert_eq!(err.code, ErrorCode::CollateralMissing);
}

#[test]
fn simulator_product_matches_the_report() {
    // Guards the helper above: the profile used here is a Milan platform.
    let world = World::shared();
    let product = world
        .profile(PROFILE)
        .and_then(|p| p.snp())
        .expect("snp profile")
        .product;
    assert_eq!(product, Product::Milan);
}

const TDX_PROFILE: &str = "tdx-fra-1";
/// The simulated TCB info / QE identity nextUpdate (2049-12-31T00:00:00Z).
const TDX_NEXT_UPDATE: u64 = 2_524_521_600;

fn quote() -> Vec<u8> {
    locus_simulator::intel_bridge::tdx_quote(&World::shared(), TDX_PROFILE, &[9u8; 64], &[])
        .expect("quote")
        .0
}

fn tdx_anchors() -> TrustAnchors {
    TrustAnchors::pinned()
        .expect("pinned")
        .danger_trust_simulator_roots(&[World::shared().intel_root_der()])
}

impl Sim {
    async fn path_requests(&self, path: &str) -> u64 {
        self.stats().await["requests"][path].as_u64().unwrap_or(0)
    }
}

const TCB_PATH: &str = "/tdx/certification/v4/tcb";
const QE_PATH: &str = "/tdx/certification/v4/qe/identity";
const PCK_CRL_PATH: &str = "/sgx/certification/v4/pckcrl";
const ROOT_CRL_PATH: &str = "/sgx/certification/v4/rootcacrl";

#[tokio::test]
async fn first_tdx_appraisal_fetches_and_the_second_fetches_nothing() {
    use locus_verifier::appraisal::appraise_tdx;
    let sim = Sim::start(&[]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&sim.url, cache.path())).expect("collateral");
    let q = quote();
    let anchors = tdx_anchors();
    for round in 0..2 {
        let items = c.tdx_collateral(LOCAL, &q, NOW).await.expect("collateral");
        let collateral = items.to_appraisal().expect("parts");
        let verified = appraise_tdx(&q, &collateral, &anchors, NOW).expect("TDX appraisal");
        assert!(verified.simulated());
        for p in [TCB_PATH, QE_PATH, PCK_CRL_PATH, ROOT_CRL_PATH] {
            assert_eq!(sim.path_requests(p).await, 1, "{p} after round {round}");
        }
    }
    assert_eq!(sim.total().await, 4);
}

#[tokio::test]
async fn tdx_items_are_refetched_once_past_their_next_update() {
    let sim = Sim::start(&[]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&sim.url, cache.path())).expect("collateral");
    let q = quote();
    c.tdx_collateral(LOCAL, &q, NOW).await.expect("collateral");
    // A day before nextUpdate minus the refresh lead: still served from the cache, nothing fetched.
    c.tdx_collateral(LOCAL, &q, TDX_NEXT_UPDATE - 2 * 86_400)
        .await
        .expect("cached");
    assert_eq!(sim.path_requests(TCB_PATH).await, 1);
    // Past nextUpdate: fetched again.
    let _ = c.tdx_collateral(LOCAL, &q, TDX_NEXT_UPDATE + 1).await;
    assert_eq!(sim.path_requests(TCB_PATH).await, 2);
    assert_eq!(sim.path_requests(QE_PATH).await, 2);
}

#[tokio::test]
async fn stale_collateral_from_the_source_is_refused_as_collateral_expired() {
    use locus_verifier::appraisal::appraise_tdx;
    let sim = Sim::start(&["stale-collateral"]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&sim.url, cache.path());
    cfg.failure_backoff = Duration::from_secs(60);
    let c = Collateral::new(cfg).expect("collateral");
    let q = quote();
    let items = c
        .tdx_collateral(LOCAL, &q, NOW)
        .await
        .expect("served as is");
    let collateral = items.to_appraisal().expect("parts");
    let err = appraise_tdx(&q, &collateral, &tdx_anchors(), NOW).expect_err("stale collateral");
    assert_eq!(err.code, ErrorCode::CollateralExpired);
    // The next request does not hammer the source for the same stale item.
    let err = c
        .tdx_collateral(LOCAL, &q, NOW)
        .await
        .expect_err("stale, not re-fetched");
    assert_eq!(err.code, ErrorCode::CollateralExpired);
    assert_eq!(sim.path_requests(TCB_PATH).await, 1);
}

#[tokio::test]
async fn exported_simulator_pki_serves_offline_with_no_server() {
    use locus_verifier::appraisal::appraise_tdx;
    let world = World::shared();
    let export = tempfile::tempdir().expect("tempdir");
    world.export_pki(export.path()).expect("export");
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config("http://127.0.0.1:9", cache.path());
    cfg.offline = true;
    cfg.collateral_dir = Some(export.path().to_path_buf());
    let c = Collateral::new(cfg).expect("collateral");

    // SNP: the VCEK ships with the evidence (as the simulated attester sends it); chain and CRL come from the export.
    let ev = world
        .snp_attester(PROFILE)
        .expect("attester")
        .report(&[7u8; 64])
        .expect("report");
    let e = c
        .snp_endorsements(LOCAL, &ev.report, std::slice::from_ref(&ev.vcek_der), NOW)
        .await
        .expect("offline endorsements");
    assert_eq!(e.ask_der.as_deref(), Some(&ev.ask_der[..]));
    assert_eq!(e.ark_der.as_deref(), Some(&ev.ark_der[..]));
    assert!(e.crl_der.is_some());
    appraise_snp(&ev.report, &e, &anchors(), NOW).expect("SNP appraisal offline");

    // TDX: everything from `tdx/collateral/`.
    let q = quote();
    let items = c
        .tdx_collateral(LOCAL, &q, NOW)
        .await
        .expect("offline collateral");
    appraise_tdx(
        &q,
        &items.to_appraisal().expect("parts"),
        &tdx_anchors(),
        NOW,
    )
    .expect("TDX appraisal offline");
    assert_eq!(c.stats().fetches + c.stats().fetch_failures, 0);
}

#[tokio::test]
async fn a_shipped_crl_is_passed_on_as_the_clients_and_the_verifiers_own_crl_is_always_looked_up() {
    let sim = Sim::start(&[]).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&sim.url, cache.path())).expect("collateral");
    let world = World::shared();
    let ev = world
        .snp_attester(PROFILE)
        .expect("attester")
        .report(&[7u8; 64])
        .expect("report");
    let crl = world.amd_crl_der(Product::Milan).expect("crl");
    let shipped = vec![
        ev.vcek_der.clone(),
        ev.ask_der.clone(),
        ev.ark_der.clone(),
        crl.clone(),
    ];
    let e = c
        .snp_endorsements(LOCAL, &ev.report, &shipped, NOW)
        .await
        .expect("endorsements");
    assert_eq!(e.client_crl_der.as_deref(), Some(&crl[..]));
    // The verifier's own CRL is authoritative (a client's older CRL could hide a revocation): it is fetched even
    // though one was shipped, and nothing else is.
    assert_eq!(e.crl_der.as_deref(), Some(&crl[..]));
    assert_eq!(sim.path_requests("/vcek/v1/Milan/crl").await, 1);
    assert_eq!(sim.total().await, 1, "only the CRL was fetched");
    appraise_snp(&ev.report, &e, &anchors(), NOW).expect("appraisal");

    // Before the shipped CRL's thisUpdate (2025-01-01) it is not current: it is not even passed on.
    let early = 1_735_000_000;
    let e = c
        .snp_endorsements(LOCAL, &ev.report, &shipped, early)
        .await
        .expect("endorsements");
    assert_eq!(e.client_crl_der, None);
}
