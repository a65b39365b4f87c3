//! Under concurrent load, no request fetches collateral that is in a valid cache entry: the real `locus-verifier
//! serve` fetching from the simulator's KDS/PCS (in this process, on 127.0.0.1:0), a burst of concurrent SEV-SNP and
//! TDX attestations, and the `/metrics` counters that show it (`locus_collateral_request_fetches_total`,
//! `locus_collateral_request_fetches_while_cached_total`, `locus_collateral_tdx_views_built_total`).

mod service_support;

use locus_simulator::fault::Faults;
use locus_simulator::World;
use service_support::*;

/// The example configuration turned online: no collateral directory, both services at `sim_url`.
fn online_config(state: &std::path::Path, sim_url: &str) -> String {
    let mut doc: toml::Table = example_config(state).parse().expect("TOML");
    let trust = doc
        .get_mut("trust")
        .and_then(toml::Value::as_table_mut)
        .expect("[trust]");
    trust.remove("collateral_dir");
    trust.insert("offline".into(), false.into());
    trust.insert("amd_kds_url".into(), sim_url.into());
    trust.insert("intel_pcs_url".into(), sim_url.into());
    toml::to_string(&doc).expect("TOML out")
}

/// `n` concurrent attestations from `profile`; every one must be issued.
async fn burst(base: &str, profile: &'static str, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let base = base.to_string();
            tokio::spawn(async move { attest(&base, profile, Some(EU_WORKLOAD)).await })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.expect("join");
        assert_eq!(status, 200, "{profile}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attestations_never_fetch_collateral_that_is_cached_and_share_one_tdx_view() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim_url = format!("http://{}", listener.local_addr().expect("addr"));
    let sim = tokio::spawn(locus_simulator::server::serve(
        listener,
        World::shared(),
        Faults::none(),
    ));
    let dir = tempdir();
    let v = Verifier::start(
        dir.path(),
        &online_config(&dir.path().join("state"), &sim_url),
    );

    // First wave: every item is fetched once (concurrent misses share one flight), never while cached.
    tokio::join!(
        burst(&v.base, "snp-fra-1", 12),
        burst(&v.base, "tdx-fra-1", 12)
    );
    let first = metrics(&v.base).await;
    let fetched = sample(&first, "locus_collateral_request_fetches_total");
    // SEV-SNP: the certificates ship with the evidence, the AMD CRL is fetched; TDX: TCB info, QE identity, PCK CRL,
    // root CA CRL.
    assert!((1..=5).contains(&fetched), "{fetched} fetches:\n{first}");
    assert_eq!(
        sample(
            &first,
            "locus_collateral_request_fetches_while_cached_total"
        ),
        0
    );
    assert_eq!(sample(&first, "locus_collateral_tdx_views_built_total"), 1);

    // Second wave: everything is served from the cache; the TDX view is the one already built.
    tokio::join!(
        burst(&v.base, "snp-fra-1", 12),
        burst(&v.base, "tdx-fra-1", 12)
    );
    let second = metrics(&v.base).await;
    assert_eq!(
        sample(&second, "locus_collateral_request_fetches_total"),
        fetched
    );
    assert_eq!(
        sample(
            &second,
            "locus_collateral_request_fetches_while_cached_total"
        ),
        0
    );
    assert_eq!(sample(&second, "locus_collateral_tdx_views_built_total"), 1);
    // And every answer's record was made durable with fewer fsyncs than records.
    let records = sample(&second, "locus_audit_records_total");
    assert_eq!(records, 48);
    assert!(sample(&second, "locus_audit_fsyncs_total") <= records);
    sim.abort();
}
