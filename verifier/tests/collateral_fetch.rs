//! The collateral layer against a real HTTP server on 127.0.0.1:0: a small KDS + PCS stand-in written here that
//! serves real-hardware vector files (`LOCUS_VECTORS`, default: see `tests/support/vectors.rs`), counts requests per path and can
//! answer 429 (Retry-After: 1), 503 or slowly. Proves: cache hits fetch nothing (memory and disk), single-flight,
//! 429 back-off, 5xx retry, unreachable service with warm/cold cache, per-item `nextUpdate` expiry and refresh-ahead,
//! offline directories, and shipped certificates preferred.
//! Missing vectors: a loud `SKIP:` line, or a panic when `LOCUS_REQUIRE_VECTORS=1`.

#[path = "../../tests/support/vectors.rs"]
mod vectors;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as AxPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use locus_verifier::collateral::evidence::{PckCa, TdxPlatform};
use locus_verifier::collateral::http::{RetryPolicy, Timeouts};
use locus_verifier::collateral::{Collateral, CollateralConfig};
use locus_verifier::ErrorCode;

/// The requester these tests fetch for (its new-platform budget is the default, far above what a test spends).
const LOCAL: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

const SNP_SET: &str = "snp/genoa-v3-azure-trustee";
const TDX_SET: &str = "tdx/v4-b0c06f-uptodate-dcapqvl";
/// 2026-01-01T00:00:00Z: inside the stand-in AMD CRL's window (the b0c06f root CA CRL, 2025-03-20..2026-04-03).
const SNP_NOW: u64 = 1_767_225_600;
/// 2025-07-01T00:00:00Z: inside every b0c06f collateral window.
const TDX_NOW: u64 = 1_751_328_000;
/// TCB info nextUpdate of the b0c06f set: 2025-07-19T10:16:03Z.
const TCB_NEXT_UPDATE: u64 = 1_752_920_163;

fn vectors_dir() -> Option<PathBuf> {
    vectors::dir()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn encode_header(pem: &[u8]) -> HeaderValue {
    let s = percent_encoding::utf8_percent_encode(
        std::str::from_utf8(pem).expect("pem utf8"),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    HeaderValue::from_str(&s).expect("header")
}

/// What the stand-in serves and how it misbehaves.
struct Stub {
    /// (KDS product name, hwid hex, VCEK DER) of every SNP vector set with a VCEK.
    vceks: Vec<(String, String, Vec<u8>)>,
    /// Every request as `path?query`.
    log: Mutex<Vec<String>>,
    cert_chain: Vec<u8>,
    amd_crl: Vec<u8>,
    tdx: PathBuf,
    hits: Mutex<BTreeMap<String, u64>>,
    throttle_first: AtomicU32,
    fail_first: AtomicU32,
    delay: Mutex<Option<Duration>>,
}

impl Stub {
    fn hits(&self, path: &str) -> u64 {
        self.hits
            .lock()
            .expect("hits")
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    fn total(&self) -> u64 {
        self.hits.lock().expect("hits").values().sum()
    }
}

async fn faults(State(stub): State<Arc<Stub>>, req: Request, next: Next) -> Response {
    stub.log.lock().expect("log").push(req.uri().to_string());
    *stub
        .hits
        .lock()
        .expect("hits")
        .entry(req.uri().path().to_owned())
        .or_insert(0) += 1;
    if stub
        .throttle_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let mut r = (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
        return r;
    }
    if stub
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let delay = *stub.delay.lock().expect("delay");
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    next.run(req).await
}

async fn vcek(
    State(stub): State<Arc<Stub>>,
    AxPath((product, hwid)): AxPath<(String, String)>,
) -> Response {
    match stub
        .vceks
        .iter()
        .find(|(p, h, _)| *p == product && *h == hwid)
    {
        Some((_, _, der)) => der.clone().into_response(),
        None => (StatusCode::NOT_FOUND, "unknown chip").into_response(),
    }
}

/// Every SNP vector set with a VCEK: (product, hwid, DER), hwid per the KDS rule (Turin: 8 bytes).
fn vector_vceks(vectors: &Path) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    for set in std::fs::read_dir(vectors.join("snp")).expect("snp dir") {
        let set = set.expect("entry").path();
        if !set.join("vcek.der").is_file() {
            continue;
        }
        let name = set
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let product = if name.starts_with("milan") {
            "Milan"
        } else if name.starts_with("genoa") {
            "Genoa"
        } else {
            "Turin"
        };
        let report = read(&set.join("report.bin"));
        let len = if product == "Turin" { 8 } else { 64 };
        out.push((
            product.to_owned(),
            hex::encode(&report[0x1A0..0x1A0 + len]),
            read(&set.join("vcek.der")),
        ));
    }
    out
}

async fn cert_chain(State(stub): State<Arc<Stub>>) -> Response {
    stub.cert_chain.clone().into_response()
}

async fn amd_crl(State(stub): State<Arc<Stub>>) -> Response {
    stub.amd_crl.clone().into_response()
}

fn with_chain(body: Vec<u8>, header: &'static str, chain: &[u8]) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header, encode_header(chain));
    r
}

async fn tcb(State(stub): State<Arc<Stub>>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let body = read(&stub.tdx.join("collateral/tcb_info.json"));
    let text = String::from_utf8_lossy(&body).to_ascii_lowercase();
    let fmspc = q
        .get("fmspc")
        .map(|f| f.to_ascii_lowercase())
        .unwrap_or_default();
    if !text.contains(&format!("\"fmspc\":\"{fmspc}\"")) {
        return (StatusCode::NOT_FOUND, "unknown fmspc").into_response();
    }
    let chain = read(&stub.tdx.join("collateral/tcb_info_issuer_chain.pem"));
    with_chain(body, "TCB-Info-Issuer-Chain", &chain)
}

async fn qe_identity(State(stub): State<Arc<Stub>>) -> Response {
    let body = read(&stub.tdx.join("collateral/qe_identity.json"));
    let chain = read(&stub.tdx.join("collateral/qe_identity_issuer_chain.pem"));
    with_chain(body, "SGX-Enclave-Identity-Issuer-Chain", &chain)
}

async fn pck_crl(
    State(stub): State<Arc<Stub>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if q.get("ca").map(String::as_str) != Some("platform")
        || q.get("encoding").map(String::as_str) != Some("der")
    {
        return (StatusCode::BAD_REQUEST, "want ca=platform&encoding=der").into_response();
    }
    let body = read(&stub.tdx.join("collateral/pck_crl.der"));
    let chain = read(&stub.tdx.join("collateral/pck_crl_issuer_chain.pem"));
    with_chain(body, "SGX-PCK-CRL-Issuer-Chain", &chain)
}

async fn root_ca_crl(State(stub): State<Arc<Stub>>) -> Response {
    hex::encode(read(&stub.tdx.join("collateral/root_ca_crl.der"))).into_response()
}

struct Server {
    url: String,
    stub: Arc<Stub>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Stop listening (the URL then refuses connections) and return the URL: the same source, now unreachable.
    async fn stop(self) -> String {
        self.task.abort();
        let _ = self.task.await;
        self.url
    }
}

async fn start(vectors: &Path) -> Server {
    let snp = vectors.join(SNP_SET);
    let tdx = vectors.join(TDX_SET);
    let stub = Arc::new(Stub {
        vceks: vector_vceks(vectors),
        log: Mutex::new(Vec::new()),
        cert_chain: read(&snp.join("cert_chain.pem")),
        amd_crl: read(&tdx.join("collateral/root_ca_crl.der")),
        tdx,
        hits: Mutex::new(BTreeMap::new()),
        throttle_first: AtomicU32::new(0),
        fail_first: AtomicU32::new(0),
        delay: Mutex::new(None),
    });
    let app = Router::new()
        .route("/vcek/v1/{product}/cert_chain", get(cert_chain))
        .route("/vcek/v1/{product}/crl", get(amd_crl))
        .route("/vcek/v1/{product}/{hwid}", get(vcek))
        .route("/tdx/certification/v4/tcb", get(tcb))
        .route("/tdx/certification/v4/qe/identity", get(qe_identity))
        .route("/sgx/certification/v4/pckcrl", get(pck_crl))
        .route("/sgx/certification/v4/rootcacrl", get(root_ca_crl))
        .layer(axum::middleware::from_fn_with_state(stub.clone(), faults))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server {
        url: format!("http://{addr}"),
        stub,
        task,
    }
}

/// A URL nothing listens on.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

fn config(url: &str, cache: &Path) -> CollateralConfig {
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

fn snp_report(vectors: &Path) -> Vec<u8> {
    read(&vectors.join(SNP_SET).join("report.bin"))
}

fn tdx_quote(vectors: &Path) -> Vec<u8> {
    read(&vectors.join(TDX_SET).join("quote.bin"))
}

/// Requests for a VCEK (any product).
fn vcek_hits(stub: &Stub) -> u64 {
    stub.hits
        .lock()
        .expect("hits")
        .iter()
        .filter(|(p, _)| {
            p.starts_with("/vcek/v1/") && !p.ends_with("/cert_chain") && !p.ends_with("/crl")
        })
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn second_snp_request_fetches_nothing_from_memory_or_disk() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&server.url, cache.path())).expect("collateral");
    let report = snp_report(&v);

    let first = c
        .snp_endorsements(LOCAL, &report, &[], SNP_NOW)
        .await
        .expect("first");
    assert_eq!(
        first.vek_der.as_deref(),
        Some(&read(&v.join(SNP_SET).join("vcek.der"))[..])
    );
    assert!(first.ask_der.is_some() && first.ark_der.is_some() && first.crl_der.is_some());
    assert_eq!(vcek_hits(&server.stub), 1);
    assert_eq!(server.stub.hits("/vcek/v1/Genoa/cert_chain"), 1);
    assert_eq!(server.stub.hits("/vcek/v1/Genoa/crl"), 1);
    let after_first = server.stub.total();
    assert_eq!(after_first, 3);

    let second = c
        .snp_endorsements(LOCAL, &report, &[], SNP_NOW)
        .await
        .expect("second");
    assert_eq!(second, first);
    assert_eq!(
        server.stub.total(),
        after_first,
        "memory cache hit must not fetch"
    );

    // A new process on the same cache directory: served from disk.
    let restarted = Collateral::new(config(&server.url, cache.path())).expect("collateral");
    let third = restarted
        .snp_endorsements(LOCAL, &report, &[], SNP_NOW)
        .await
        .expect("third");
    assert_eq!(third, first);
    assert_eq!(
        server.stub.total(),
        after_first,
        "disk cache hit must not fetch"
    );
    assert_eq!(restarted.stats().disk_hits, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_cold_requests_make_one_vcek_fetch() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    *server.stub.delay.lock().expect("delay") = Some(Duration::from_millis(300));
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&server.url, cache.path())).expect("collateral");
    let report = Arc::new(snp_report(&v));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let c = c.clone();
        let report = report.clone();
        tasks.push(tokio::spawn(async move {
            c.snp_endorsements(LOCAL, &report, &[], SNP_NOW).await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("join").expect("endorsements"));
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        vcek_hits(&server.stub),
        1,
        "one VCEK fetch for 32 concurrent misses"
    );
    assert_eq!(server.stub.hits("/vcek/v1/Genoa/cert_chain"), 1);
    assert_eq!(server.stub.hits("/vcek/v1/Genoa/crl"), 1);
}

#[tokio::test]
async fn rate_limited_fetch_waits_for_retry_after_then_succeeds() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    server.stub.throttle_first.store(1, Ordering::SeqCst);
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&server.url, cache.path());
    cfg.fetch_snp_crl = false;
    let c = Collateral::new(cfg).expect("collateral");
    let started = Instant::now();
    let e = c
        .snp_endorsements(LOCAL, &snp_report(&v), &[], SNP_NOW)
        .await
        .expect("after 429");
    assert!(e.vek_der.is_some());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 must be honoured"
    );
    assert_eq!(
        vcek_hits(&server.stub),
        2,
        "one 429, then the successful retry"
    );
    assert_eq!(server.stub.throttle_first.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn persistent_rate_limit_gives_up_with_collateral_missing() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    server.stub.throttle_first.store(100, Ordering::SeqCst);
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&server.url, cache.path());
    cfg.retry.max_429_retries = 1;
    let c = Collateral::new(cfg).expect("collateral");
    let err = c
        .snp_endorsements(LOCAL, &snp_report(&v), &[], SNP_NOW)
        .await
        .expect_err("must be refused");
    assert_eq!(err.code, ErrorCode::CollateralMissing);
    assert!(err.message.contains("429"), "{}", err.message);
    assert_eq!(
        vcek_hits(&server.stub),
        2,
        "bounded: first attempt + 1 retry"
    );
}

#[tokio::test]
async fn server_error_is_retried_a_bounded_number_of_times() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    server.stub.fail_first.store(1, Ordering::SeqCst);
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&server.url, cache.path());
    cfg.fetch_snp_crl = false;
    let c = Collateral::new(cfg).expect("collateral");
    c.snp_endorsements(LOCAL, &snp_report(&v), &[], SNP_NOW)
        .await
        .expect("after one 503");
    assert_eq!(vcek_hits(&server.stub), 2);

    let server = start(&v).await;
    server.stub.fail_first.store(100, Ordering::SeqCst);
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&server.url, cache.path())).expect("collateral");
    let err = c
        .snp_endorsements(LOCAL, &snp_report(&v), &[], SNP_NOW)
        .await
        .expect_err("must be refused");
    assert_eq!(err.code, ErrorCode::CollateralMissing);
    assert!(err.message.contains("503"), "{}", err.message);
    assert_eq!(
        vcek_hits(&server.stub),
        3,
        "max_retries = 2: three attempts in all"
    );
}

#[tokio::test]
async fn unknown_chip_is_collateral_missing_without_retry() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&server.url, cache.path())).expect("collateral");
    let mut report = snp_report(&v);
    report[0x1A0] ^= 0xFF; // another chip
    let err = c
        .snp_endorsements(LOCAL, &report, &[], SNP_NOW)
        .await
        .expect_err("must be refused");
    assert_eq!(err.code, ErrorCode::CollateralMissing);
    assert!(err.message.contains("404"), "{}", err.message);
    assert_eq!(vcek_hits(&server.stub), 1);
}

#[tokio::test]
async fn unreachable_service_with_warm_cache_still_gives_collateral() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let warm = Collateral::new(config(&server.url, cache.path())).expect("collateral");
    let snp = warm
        .snp_endorsements(LOCAL, &snp_report(&v), &[], SNP_NOW)
        .await
        .expect("snp");
    let tdx = warm
        .tdx_collateral(LOCAL, &tdx_quote(&v), TDX_NOW)
        .await
        .expect("tdx");

    // The same service (the cache is keyed by source), now down.
    let dead = server.stop().await;
    let c = Collateral::new(config(&dead, cache.path())).expect("collateral");
    assert_eq!(
        c.snp_endorsements(LOCAL, &snp_report(&v), &[], SNP_NOW)
            .await
            .expect("snp"),
        snp
    );
    assert_eq!(
        c.tdx_collateral(LOCAL, &tdx_quote(&v), TDX_NOW)
            .await
            .expect("tdx"),
        tdx
    );
    assert_eq!(c.stats().fetch_failures, 0);
}

#[tokio::test]
async fn unreachable_service_with_cold_cache_is_collateral_missing() {
    let Some(v) = vectors_dir() else { return };
    let cache = tempfile::tempdir().expect("tempdir");
    let dead = dead_url().await;
    let c = Collateral::new(config(&dead, cache.path())).expect("collateral");
    let err = c
        .snp_endorsements(LOCAL, &snp_report(&v), &[], SNP_NOW)
        .await
        .expect_err("must be refused");
    assert_eq!(err.code, ErrorCode::CollateralMissing);
    let err = c
        .tdx_collateral(LOCAL, &tdx_quote(&v), TDX_NOW)
        .await
        .expect_err("must be refused");
    assert_eq!(err.code, ErrorCode::CollateralMissing);
}

#[tokio::test]
async fn tdx_items_are_cached_until_their_next_update_then_refetched() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&server.url, cache.path())).expect("collateral");
    let quote = tdx_quote(&v);
    let items = c.tdx_collateral(LOCAL, &quote, TDX_NOW).await.expect("tdx");
    let dir = v.join(TDX_SET).join("collateral");
    assert_eq!(
        items.tcb_info_json.as_bytes(),
        &read(&dir.join("tcb_info.json"))[..]
    );
    assert_eq!(
        items.qe_identity_json.as_bytes(),
        &read(&dir.join("qe_identity.json"))[..]
    );
    assert_eq!(items.pck_crl_der, read(&dir.join("pck_crl.der")));
    assert_eq!(
        items.root_ca_crl_der,
        read(&dir.join("root_ca_crl.der")),
        "hex body decoded"
    );
    assert_eq!(
        items.tcb_info_issuer_chain_pem.as_bytes(),
        &read(&dir.join("tcb_info_issuer_chain.pem"))[..],
        "issuer chain header percent-decoded"
    );
    let tcb_path = "/tdx/certification/v4/tcb";
    for p in [
        tcb_path,
        "/tdx/certification/v4/qe/identity",
        "/sgx/certification/v4/pckcrl",
        "/sgx/certification/v4/rootcacrl",
    ] {
        assert_eq!(server.stub.hits(p), 1, "{p}");
    }

    // Later, still well inside every window: nothing fetched (memory, then disk after a restart).
    c.tdx_collateral(LOCAL, &quote, TDX_NOW + 86_400)
        .await
        .expect("tdx");
    c.cache().clear_memory();
    c.tdx_collateral(LOCAL, &quote, TDX_NOW + 2 * 86_400)
        .await
        .expect("tdx");
    assert_eq!(server.stub.total(), 4);

    // Past the TCB info's (and QE identity's and PCK CRL's) nextUpdate: those are fetched again; the root CA CRL,
    // valid until 2026, is not.
    let after = TCB_NEXT_UPDATE + 1;
    c.tdx_collateral(LOCAL, &quote, after).await.expect("tdx");
    assert_eq!(server.stub.hits(tcb_path), 2);
    assert_eq!(server.stub.hits("/tdx/certification/v4/qe/identity"), 2);
    assert_eq!(server.stub.hits("/sgx/certification/v4/pckcrl"), 2);
    assert_eq!(server.stub.hits("/sgx/certification/v4/rootcacrl"), 1);
}

#[tokio::test]
async fn expired_copy_that_cannot_be_refetched_is_collateral_expired() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let warm = Collateral::new(config(&server.url, cache.path())).expect("collateral");
    warm.tdx_collateral(LOCAL, &tdx_quote(&v), TDX_NOW)
        .await
        .expect("tdx");

    let dead = server.stop().await;
    let c = Collateral::new(config(&dead, cache.path())).expect("collateral");
    let err = c
        .tdx_collateral(LOCAL, &tdx_quote(&v), TCB_NEXT_UPDATE + 1)
        .await
        .expect_err("must be refused");
    assert_eq!(err.code, ErrorCode::CollateralExpired);
}

#[tokio::test]
async fn item_near_next_update_is_served_and_refreshed_in_the_background() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let c = Collateral::new(config(&server.url, cache.path())).expect("collateral");
    let quote = tdx_quote(&v);
    let first = c.tdx_collateral(LOCAL, &quote, TDX_NOW).await.expect("tdx");
    // Twelve hours before nextUpdate: inside the 24 h refresh lead, still valid.
    let near = TCB_NEXT_UPDATE - 12 * 3600;
    let served = c
        .tdx_collateral(LOCAL, &quote, near)
        .await
        .expect("served from cache");
    assert_eq!(served, first);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.stub.hits("/tdx/certification/v4/tcb") < 2 {
        assert!(
            Instant::now() < deadline,
            "background refresh never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(c.stats().refreshes_started >= 1);
    // A second request in the lead window does not start another refresh of the same item.
    let before = c.stats().refreshes_started;
    c.tdx_collateral(LOCAL, &quote, near + 60)
        .await
        .expect("served");
    assert_eq!(c.stats().refreshes_started, before);
}

#[tokio::test]
async fn offline_mode_uses_the_collateral_directory_and_never_the_network() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&server.url, cache.path());
    cfg.offline = true;
    cfg.collateral_dir = Some(v.join(TDX_SET));
    let c = Collateral::new(cfg).expect("collateral");
    let items = c
        .tdx_collateral(LOCAL, &tdx_quote(&v), TDX_NOW)
        .await
        .expect("tdx offline");
    let expected = locus_verifier::collateral::offline::read_tdx_collateral_dir(
        &v.join(TDX_SET).join("collateral"),
    )
    .expect("dir");
    assert_eq!(items, expected);

    // SNP: the VCEK in the directory is matched to the report by its hwID and TCB extensions.
    let mut cfg = config(&server.url, cache.path());
    cfg.offline = true;
    cfg.collateral_dir = Some(v.join(SNP_SET));
    let c = Collateral::new(cfg).expect("collateral");
    let e = c
        .snp_endorsements(LOCAL, &snp_report(&v), &[], SNP_NOW)
        .await
        .expect("snp offline");
    assert_eq!(e.vek_der, Some(read(&v.join(SNP_SET).join("vcek.der"))));
    assert!(e.ask_der.is_some() && e.ark_der.is_some());
    assert_eq!(e.crl_der, None);
    // Another chip's report finds nothing offline.
    let mut other = snp_report(&v);
    other[0x1A0] ^= 0xFF;
    let err = c
        .snp_endorsements(LOCAL, &other, &[], SNP_NOW)
        .await
        .expect_err("must be refused");
    assert_eq!(err.code, ErrorCode::CollateralMissing);
    assert_eq!(server.stub.total(), 0, "offline mode made a request");
}

#[tokio::test]
async fn shipped_certificates_are_preferred_over_the_kds() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&server.url, cache.path());
    cfg.fetch_snp_crl = false;
    let c = Collateral::new(cfg).expect("collateral");
    let set = v.join(SNP_SET);
    let shipped = vec![
        read(&set.join("vcek.der")),
        read(&set.join("ask.pem")),
        read(&set.join("ark.pem")),
    ];
    let e = c
        .snp_endorsements(LOCAL, &snp_report(&v), &shipped, SNP_NOW)
        .await
        .expect("snp");
    assert_eq!(e.vek_der.as_deref(), Some(&shipped[0][..]));
    assert!(e.ask_der.is_some() && e.ark_der.is_some());
    assert_eq!(server.stub.total(), 0);
}

#[tokio::test]
async fn vlek_report_without_its_certificate_is_collateral_missing() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&server.url, cache.path());
    cfg.fetch_snp_crl = false;
    let c = Collateral::new(cfg).expect("collateral");
    let set = v.join("snp/milan-v3-vlek-trustee");
    let report = read(&set.join("report.bin"));
    let err = c
        .snp_endorsements(LOCAL, &report, &[], SNP_NOW)
        .await
        .expect_err("must be refused");
    assert_eq!(err.code, ErrorCode::CollateralMissing);
    assert!(err.message.contains("VLEK"), "{}", err.message);
    // Shipped, the VLEK and its ASVK chain are used as is.
    let chain = read(&set.join("cert_chain.pem"));
    let e = c
        .snp_endorsements(
            LOCAL,
            &report,
            &[read(&set.join("vlek.der")), chain],
            SNP_NOW,
        )
        .await
        .expect("vlek shipped");
    assert_eq!(e.vek_der, Some(read(&set.join("vlek.der"))));
    assert!(e.ask_der.is_some() && e.ark_der.is_some());
    assert_eq!(server.stub.total(), 0);
}

#[test]
fn fmspc_and_pck_ca_come_from_the_pck_leaf_of_every_vector_quote() {
    let Some(v) = vectors_dir() else { return };
    for set in std::fs::read_dir(v.join("tdx")).expect("tdx dir") {
        let set = set.expect("entry").path();
        let quote = read(&set.join("quote.bin"));
        let tcb: serde_json::Value =
            serde_json::from_slice(&read(&set.join("collateral/tcb_info.json"))).expect("json");
        let want = tcb["tcbInfo"]["fmspc"]
            .as_str()
            .expect("fmspc")
            .to_ascii_lowercase();
        let p =
            TdxPlatform::from_quote(&quote).unwrap_or_else(|e| panic!("{}: {e}", set.display()));
        assert_eq!(p.fmspc_hex(), want, "{}", set.display());
        assert_eq!(p.ca, PckCa::Platform, "{}", set.display());
    }
}

#[tokio::test]
async fn vcek_request_follows_the_kds_format_for_every_vector_product() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&server.url, cache.path());
    cfg.fetch_snp_crl = false;
    let c = Collateral::new(cfg).expect("collateral");
    // Turin (v5): fmcSPL first, 8-byte hwid.
    let turin = read(&v.join("snp/turin-v5-routex/report.bin"));
    let e = c
        .snp_endorsements(LOCAL, &turin, &[], SNP_NOW)
        .await
        .expect("turin");
    assert_eq!(
        e.vek_der,
        Some(read(&v.join("snp/turin-v5-routex/vcek.der")))
    );
    let hwid = hex::encode(&turin[0x1A0..0x1A8]);
    let log = server.stub.log.lock().expect("log").clone();
    let vcek_req = log
        .iter()
        .find(|u| u.starts_with("/vcek/v1/Turin/") && !u.contains("cert_chain"))
        .expect("turin request");
    assert!(
        vcek_req.starts_with(&format!("/vcek/v1/Turin/{hwid}?fmcSPL=")),
        "{vcek_req}"
    );
    let q = vcek_req.split_once('?').expect("query").1;
    let keys: Vec<&str> = q
        .split('&')
        .map(|kv| kv.split_once('=').expect("kv").0)
        .collect();
    assert_eq!(keys, ["fmcSPL", "blSPL", "teeSPL", "snpSPL", "ucodeSPL"]);
    assert!(
        q.split('&')
            .all(|kv| kv.split_once('=').expect("kv").1.len() >= 2),
        "zero-padded: {q}"
    );

    // Milan v2 (no CPUID): the product is found by asking the KDS, Milan first; Genoa is never asked.
    let milan = read(&v.join("snp/milan-v2-virtee/report.bin"));
    let e = c
        .snp_endorsements(LOCAL, &milan, &[], SNP_NOW)
        .await
        .expect("milan v2");
    assert_eq!(
        e.vek_der,
        Some(read(&v.join("snp/milan-v2-virtee/vcek.der")))
    );
    let log = server.stub.log.lock().expect("log").clone();
    assert!(log
        .iter()
        .any(|u| u.starts_with("/vcek/v1/Milan/") && u.contains("?blSPL=")));
    assert!(!log.iter().any(|u| u.starts_with("/vcek/v1/Genoa/")));
}

#[tokio::test]
async fn fetched_endorsements_and_collateral_pass_appraisal_byte_exact() {
    use locus_verifier::appraisal::{appraise_snp, appraise_tdx, TrustAnchors};
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&server.url, cache.path());
    // The stand-in's AMD "CRL" is an Intel CRL; appraisal would rightly reject it.
    cfg.fetch_snp_crl = false;
    let c = Collateral::new(cfg).expect("collateral");
    let anchors = TrustAnchors::pinned().expect("anchors");

    let report = snp_report(&v);
    let e = c
        .snp_endorsements(LOCAL, &report, &[], SNP_NOW)
        .await
        .expect("snp");
    appraise_snp(&report, &e, &anchors, SNP_NOW)
        .expect("SNP appraisal with fetched VCEK and chain");

    let quote = tdx_quote(&v);
    // Twice: once fetched, once from the disk cache after dropping memory.
    for _ in 0..2 {
        let items = c.tdx_collateral(LOCAL, &quote, TDX_NOW).await.expect("tdx");
        let collateral = items.to_appraisal().expect("collateral parts");
        appraise_tdx(&quote, &collateral, &anchors, TDX_NOW)
            .expect("TDX appraisal with fetched collateral");
        c.cache().clear_memory();
    }
    assert_eq!(server.stub.hits("/tdx/certification/v4/tcb"), 1);
}

#[tokio::test]
async fn source_serving_expired_collateral_is_not_asked_again_during_the_backoff() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&server.url, cache.path());
    cfg.failure_backoff = Duration::from_secs(60);
    let c = Collateral::new(cfg).expect("collateral");
    let quote = tdx_quote(&v);
    let late = TCB_NEXT_UPDATE + 1;
    // First request: the (expired) items are handed over as served, for appraisal to refuse.
    let items = c
        .tdx_collateral(LOCAL, &quote, late)
        .await
        .expect("served as is");
    assert!(!items.tcb_info_json.is_empty());
    // Second request: answered from the remembered failure, no new fetch of the expired items.
    let err = c
        .tdx_collateral(LOCAL, &quote, late)
        .await
        .expect_err("expired");
    assert_eq!(err.code, ErrorCode::CollateralExpired);
    assert_eq!(server.stub.hits("/tdx/certification/v4/tcb"), 1);
}

#[tokio::test]
async fn slow_service_times_out_into_collateral_missing() {
    let Some(v) = vectors_dir() else { return };
    let server = start(&v).await;
    *server.stub.delay.lock().expect("delay") = Some(Duration::from_secs(3));
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&server.url, cache.path());
    cfg.timeouts.total = Duration::from_millis(200);
    cfg.retry.max_retries = 1;
    let c = Collateral::new(cfg).expect("collateral");
    let err = c
        .snp_endorsements(LOCAL, &snp_report(&v), &[], SNP_NOW)
        .await
        .expect_err("timed out");
    assert_eq!(err.code, ErrorCode::CollateralMissing);
    assert!(err.message.contains("timed out"), "{}", err.message);
    assert_eq!(vcek_hits(&server.stub), 2, "one retry after the timeout");
}
