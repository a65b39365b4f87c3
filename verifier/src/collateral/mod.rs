//! Collateral and endorsement fetching and caching: AMD KDS, Intel PCS / PCCS, offline directories.
//!
//! This layer sits outside the sans-I/O appraisal core: it finds the endorsements a piece of evidence needs and
//! hands them to appraisal, which checks everything again (a bad cache entry can only cause a refusal).
//!
//! Lookup order for one item: in-memory cache → on-disk cache (`state_dir/cache`) → offline directory → network
//! (unless `offline`). Concurrent misses for one item share a single fetch. Items are served while valid at `now`
//! (VCEKs and AMD chains forever; TCB info, QE identity and CRLs until their `nextUpdate`) and refreshed in the
//! background when less than min(window / 10, 24 h) remains; a failed refresh keeps serving the valid copy. An
//! expired copy is re-fetched; if that fails the answer is `collateral_expired`, with nothing at all
//! `collateral_missing`.
//!
//! Network fetches run in their own bounded pool (`fetch_concurrency`), apart from the appraisal slots, so a slow
//! vendor service never holds CPU-bound work up. An item named by the evidence itself (a VCEK by CHIP_ID and TCB,
//! TCB info by FMSPC) that has no copy at all is a *new platform*: fetching it spends the requesting client's and the
//! global budget ([`budget`]), and with either exhausted, or with the pool full, the answer is `collateral_missing`
//! at once rather than after a wait. Items are cached per source (the service they came from), so switching a
//! service URL never serves the old service's copies.
//!
//! Entry points: [`Collateral::snp_endorsements`], [`Collateral::tdx_collateral`] and [`Collateral::tdx_view`], each
//! given the requesting client's address for the budgets. The view is the appraisal core's form of one platform's
//! TDX collateral, built once per set of cached items (so once per refresh) and shared by every request until an
//! item is replaced: a request no longer re-parses the documents nor re-derives the memo's collateral identity.

pub mod budget;
pub mod cache;
pub mod evidence;
pub mod http;
pub mod kds;
pub mod offline;
pub mod pcs;
pub mod singleflight;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use budget::FetchBudget;
use cache::{Cache, CachedItem};
use evidence::{
    cert_der, classify_amd_cert, pem_certificates, AmdCertRole, PckCa, SnpPlatform, SnpProduct,
    SnpSigner, SnpTcb, TdxPlatform,
};
use http::{FetchError, HttpClient, RetryPolicy, Timeouts};
use kds::{AmdKeyKind, KdsClient};
use offline::OfflineDir;
use pcs::PcsClient;
use sha2::{Digest, Sha256};
use singleflight::SingleFlight;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ErrorCode, Refusal};
use crate::lru::Lru;

pub use kds::AMD_KDS_URL;
pub use pcs::INTEL_PCS_URL;

/// The endorsements of an SEV-SNP report (the appraisal core's type): `ask_der`/`ark_der` are `None` when neither
/// shipped nor obtainable (appraisal then uses the pinned set), `crl_der` is `None` when no CRL could be obtained.
pub use crate::appraisal::SnpEndorsements;

/// The collateral of a TDX quote, in the vectors' collateral layout. JSON texts are kept byte-exact (their
/// signatures cover the raw `tcbInfo` / `enclaveIdentity` text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TdxCollateralItems {
    pub tcb_info_json: String,
    pub tcb_info_issuer_chain_pem: String,
    pub qe_identity_json: String,
    pub qe_identity_issuer_chain_pem: String,
    pub pck_crl_der: Vec<u8>,
    pub pck_crl_issuer_chain_pem: String,
    pub root_ca_crl_der: Vec<u8>,
}

impl TdxCollateralItems {
    /// Borrow the items in the appraisal core's form.
    pub fn parts(&self) -> crate::appraisal::TdxCollateralParts<'_> {
        crate::appraisal::TdxCollateralParts {
            tcb_info_json: &self.tcb_info_json,
            tcb_info_issuer_chain_pem: &self.tcb_info_issuer_chain_pem,
            qe_identity_json: &self.qe_identity_json,
            qe_identity_issuer_chain_pem: &self.qe_identity_issuer_chain_pem,
            pck_crl_der: &self.pck_crl_der,
            pck_crl_issuer_chain_pem: &self.pck_crl_issuer_chain_pem,
            root_ca_crl_der: &self.root_ca_crl_der,
        }
    }

    /// Build the appraisal core's collateral (`collateral_missing` when an item is malformed).
    pub fn to_appraisal(&self) -> Result<crate::appraisal::TdxCollateral, Refusal> {
        crate::appraisal::TdxCollateral::from_parts(self.parts())
    }
}

/// Collateral configuration (docs/configuration.md `[trust]`, plus the cache location under `server.state_dir`).
#[derive(Clone, Debug)]
pub struct CollateralConfig {
    /// AMD KDS base URL.
    pub amd_kds_url: String,
    /// Intel PCS base URL (used when `pccs_url` is not set).
    pub intel_pcs_url: String,
    /// A PCCS base URL; takes precedence over `intel_pcs_url`.
    pub pccs_url: Option<String>,
    /// Where the Intel root CA CRL comes from; default per [`PcsClient::new`].
    pub intel_root_ca_crl_url: Option<String>,
    /// Offline collateral directory (see [`offline`]).
    pub collateral_dir: Option<PathBuf>,
    /// On-disk cache directory (`state_dir/cache`); `None` caches in memory only.
    pub cache_dir: Option<PathBuf>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Never use the network: shipped certificates, cache and `collateral_dir` only.
    pub offline: bool,
    /// Also obtain the AMD CRL for SNP (best effort: `crl_der` is `None` when unavailable).
    pub fetch_snp_crl: bool,
    /// After a failed fetch of an item, answer from that failure without retrying the network for this long.
    pub failure_backoff: Duration,
    /// Do not start another background refresh of an item within this many seconds (of `now`) of the last one.
    pub refresh_retry_secs: u64,
    /// Network fetches in flight at once (foreground and background); a new-platform fetch finding the pool full is
    /// refused at once, any other fetch waits for a place.
    pub fetch_concurrency: usize,
    /// New-platform fetches one client may start per minute (token bucket, burst of the same size).
    pub new_platform_fetches_per_client: u32,
    /// New-platform fetches all clients together may start per minute (token bucket, burst of the same size).
    pub new_platform_fetches_global: u32,
    /// Bound on the total size of the on-disk cache files (least recently used deleted first).
    pub cache_max_bytes: u64,
}

/// Default `fetch_concurrency`.
pub const DEFAULT_FETCH_CONCURRENCY: usize = 8;
/// Default `new_platform_fetches_per_client` (per minute).
pub const DEFAULT_NEW_PLATFORM_FETCHES_PER_CLIENT: u32 = 10;
/// Default `new_platform_fetches_global` (per minute).
pub const DEFAULT_NEW_PLATFORM_FETCHES_GLOBAL: u32 = 120;
pub use cache::DEFAULT_MAX_DISK_BYTES as DEFAULT_CACHE_MAX_BYTES;

impl Default for CollateralConfig {
    fn default() -> Self {
        CollateralConfig {
            amd_kds_url: AMD_KDS_URL.to_owned(),
            intel_pcs_url: INTEL_PCS_URL.to_owned(),
            pccs_url: None,
            intel_root_ca_crl_url: None,
            collateral_dir: None,
            cache_dir: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            offline: false,
            fetch_snp_crl: true,
            failure_backoff: Duration::from_secs(10),
            refresh_retry_secs: 300,
            fetch_concurrency: DEFAULT_FETCH_CONCURRENCY,
            new_platform_fetches_per_client: DEFAULT_NEW_PLATFORM_FETCHES_PER_CLIENT,
            new_platform_fetches_global: DEFAULT_NEW_PLATFORM_FETCHES_GLOBAL,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
        }
    }
}

impl CollateralConfig {
    /// The default configuration with the cache under `state_dir/cache`.
    pub fn with_state_dir(state_dir: &Path) -> Self {
        CollateralConfig {
            cache_dir: Some(state_dir.join("cache")),
            ..CollateralConfig::default()
        }
    }
}

/// One cacheable piece of collateral.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Item {
    Vcek {
        product: SnpProduct,
        hwid: String,
        tcb: SnpTcb,
    },
    AmdCertChain {
        kind: AmdKeyKind,
        product: SnpProduct,
    },
    AmdCrl {
        kind: AmdKeyKind,
        product: SnpProduct,
    },
    /// `fmspc` is lowercase hex.
    TcbInfo {
        fmspc: String,
    },
    QeIdentity,
    PckCrl {
        ca: PckCa,
    },
    RootCaCrl,
}

impl Item {
    /// The cache key (also the relative path of the cache file).
    pub fn key(&self) -> String {
        match self {
            Item::Vcek { product, hwid, tcb } => {
                format!("snp/vcek/{}/{hwid}/{}", product.kds_name(), tcb.kds_query())
            }
            Item::AmdCertChain { kind, product } => {
                format!("snp/cert_chain/{}/{}", kind.path(), product.kds_name())
            }
            Item::AmdCrl { kind, product } => {
                format!("snp/crl/{}/{}", kind.path(), product.kds_name())
            }
            Item::TcbInfo { fmspc } => format!("tdx/tcb/{fmspc}"),
            Item::QeIdentity => "tdx/qe_identity".to_owned(),
            Item::PckCrl { ca } => format!("tdx/pckcrl/{}", ca.as_str()),
            Item::RootCaCrl => "tdx/rootcacrl".to_owned(),
        }
    }

    /// Whether the evidence names this item (so each made-up value would be a new fetch): a VCEK (CHIP_ID, TCB) or
    /// TCB info (FMSPC). The other items are a small fixed set per product or service.
    pub fn named_by_evidence(&self) -> bool {
        matches!(self, Item::Vcek { .. } | Item::TcbInfo { .. })
    }

    fn describe(&self) -> String {
        match self {
            Item::Vcek { product, hwid, tcb } => format!(
                "VCEK for {} hwID {}… TCB {}",
                product.kds_name(),
                &hwid[..hwid.len().min(16)],
                tcb.kds_query()
            ),
            Item::AmdCertChain { kind, product } => {
                format!("AMD {} cert chain for {}", kind.path(), product.kds_name())
            }
            Item::AmdCrl { kind, product } => {
                format!("AMD {} CRL for {}", kind.path(), product.kds_name())
            }
            Item::TcbInfo { fmspc } => format!("TDX TCB info for FMSPC {fmspc}"),
            Item::QeIdentity => "TDX QE identity".to_owned(),
            Item::PckCrl { ca } => format!("PCK {} CA CRL", ca.as_str()),
            Item::RootCaCrl => "Intel SGX Root CA CRL".to_owned(),
        }
    }
}

/// Counters of what the collateral layer did (for metrics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollateralStats {
    /// Items served from memory.
    pub memory_hits: u64,
    /// Items loaded from the on-disk cache.
    pub disk_hits: u64,
    /// Items served from the offline directory.
    pub offline_hits: u64,
    /// Successful network fetches (foreground and background).
    pub fetches: u64,
    /// Failed network fetches.
    pub fetch_failures: u64,
    /// Background refreshes started.
    pub refreshes_started: u64,
    /// New-platform fetches refused because a budget was exhausted or the fetch pool was full.
    pub new_platform_refusals: u64,
    /// Items being looked up or fetched right now (single-flight entries).
    pub flights_in_progress: u64,
    /// Network fetches a request waited for (the rest are background refreshes and scheduled ones).
    pub request_fetches: u64,
    /// Request fetches of an item that had a valid cached copy when the fetch started: must stay 0 (a cached item
    /// is served, refreshed in the background, never fetched again in a request's path).
    pub request_fetches_while_cached: u64,
    /// TDX collateral views built (one per platform and set of cached items).
    pub tdx_views_built: u64,
}

#[derive(Debug, Default)]
struct Counters {
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    offline_hits: AtomicU64,
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
    refreshes_started: AtomicU64,
    new_platform_refusals: AtomicU64,
    request_fetches: AtomicU64,
    request_fetches_while_cached: AtomicU64,
    tdx_views_built: AtomicU64,
}

type Shared = Result<Arc<CachedItem>, Refusal>;

/// Most failed fetches remembered at once (see `Inner::remember_failure`).
pub const MAX_REMEMBERED_FAILURES: usize = 4096;

/// The collateral provider the service and CLI call. Cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct Collateral {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: CollateralConfig,
    cache: Cache,
    kds: KdsClient,
    pcs: PcsClient,
    offline_dir: Option<OfflineDir>,
    flights: SingleFlight<Shared>,
    /// Bounds the network fetches in flight (their own pool, never an appraisal slot).
    pool: Arc<Semaphore>,
    /// Per-client and global budgets for new-platform fetches.
    budget: FetchBudget,
    /// Cache-key prefix per source: AMD KDS, Intel PCS/PCCS, Intel root CA CRL.
    sources: Sources,
    /// Last failed fetch per key (monotonic instant) and its refusal.
    failures: Mutex<HashMap<String, (Instant, Refusal)>>,
    /// Last background refresh start per key (`now` seconds).
    refreshing: Mutex<HashMap<String, u64>>,
    /// TDX collateral views per platform (FMSPC and PCK CA), each with the cached items it was built from.
    views: Mutex<Lru<(String, PckCa), TdxView>>,
    /// Certificates shipped with SNP evidence, classified, with the bytes shipped: a platform ships the same VCEK
    /// (and chain) with every report, and parsing them costs more per request than everything else here. Found by
    /// [`shipped_key`], used only when every byte matches.
    shipped: Mutex<Lru<[u8; 32], ShippedEntry>>,
    /// What a TDX quote's PCK chain names (FMSPC, PCK CA), with the chain's PEM: a platform sends the same chain with
    /// every quote, and decoding it (three PEM certificates, the issuer's name) cost more per request than the rest of
    /// the collateral lookup. Found by [`pck_chain_key`] (hashing the ~4.5 KB chain cost more than comparing it), used
    /// only when every byte matches.
    tdx_platforms: Mutex<Lru<[u8; 32], PlatformEntry>>,
    counters: Counters,
}

/// The appraisal core's collateral, built from exactly these cached items (held, so their identity is stable).
#[derive(Debug)]
struct TdxView {
    items: [Arc<CachedItem>; 4],
    view: Arc<crate::appraisal::TdxCollateral>,
}

/// Most classified sets of shipped SNP certificates, and most TDX PCK chains, kept (least recently used evicted first).
pub const MAX_SHIPPED_SETS: usize = 256;

/// Most TDX views kept (one per FMSPC and PCK CA in use; least recently used evicted first).
pub const MAX_TDX_VIEWS: usize = 1024;

impl Collateral {
    /// Build the provider. Fails (`internal`) only if the HTTP client cannot be built.
    pub fn new(config: CollateralConfig) -> Result<Self, Refusal> {
        let http = HttpClient::new(&config.timeouts, config.retry.clone())
            .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?;
        let kds = KdsClient::new(&config.amd_kds_url, http.clone());
        let pcs_base = config.pccs_url.as_deref().unwrap_or(&config.intel_pcs_url);
        let pcs = PcsClient::new(pcs_base, config.intel_root_ca_crl_url.as_deref(), http);
        let offline_dir = config.collateral_dir.as_ref().map(OfflineDir::new);
        let sources = Sources {
            amd: source_label(kds.base()),
            intel: source_label(pcs.base()),
            intel_root_crl: source_label(pcs.root_ca_crl_url()),
        };
        Ok(Collateral {
            inner: Arc::new(Inner {
                cache: Cache::with_max_disk_bytes(config.cache_dir.clone(), config.cache_max_bytes),
                pool: Arc::new(Semaphore::new(config.fetch_concurrency.max(1))),
                budget: FetchBudget::new(
                    config.new_platform_fetches_per_client,
                    config.new_platform_fetches_global,
                    Instant::now(),
                ),
                sources,
                kds,
                pcs,
                offline_dir,
                flights: SingleFlight::new(),
                failures: Mutex::new(HashMap::new()),
                refreshing: Mutex::new(HashMap::new()),
                views: Mutex::new(Lru::new(MAX_TDX_VIEWS)),
                shipped: Mutex::new(Lru::new(MAX_SHIPPED_SETS)),
                tdx_platforms: Mutex::new(Lru::new(MAX_SHIPPED_SETS)),
                counters: Counters::default(),
                config,
            }),
        })
    }

    pub fn config(&self) -> &CollateralConfig {
        &self.inner.config
    }

    /// The cache (e.g. to drop the memory layer in tests or on reload).
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    pub fn stats(&self) -> CollateralStats {
        let c = &self.inner.counters;
        CollateralStats {
            memory_hits: c.memory_hits.load(Ordering::Relaxed),
            disk_hits: c.disk_hits.load(Ordering::Relaxed),
            offline_hits: c.offline_hits.load(Ordering::Relaxed),
            fetches: c.fetches.load(Ordering::Relaxed),
            fetch_failures: c.fetch_failures.load(Ordering::Relaxed),
            refreshes_started: c.refreshes_started.load(Ordering::Relaxed),
            new_platform_refusals: c.new_platform_refusals.load(Ordering::Relaxed),
            flights_in_progress: self.inner.flights.in_flight() as u64,
            request_fetches: c.request_fetches.load(Ordering::Relaxed),
            request_fetches_while_cached: c.request_fetches_while_cached.load(Ordering::Relaxed),
            tdx_views_built: c.tdx_views_built.load(Ordering::Relaxed),
        }
    }

    /// The endorsements of a raw SEV-SNP report. Certificates shipped with the evidence (`shipped_certs`, DER or PEM,
    /// e.g. from the extended-report table) are preferred; whatever is missing comes from the cache, the offline
    /// directory or the KDS. A VCEK that cannot be obtained is `collateral_missing`; the ASK/ARK chain and the CRL are
    /// best effort (`None` when unavailable, for appraisal to judge). `client` is the requester, whose budget a
    /// new-platform fetch spends.
    pub async fn snp_endorsements(
        &self,
        client: IpAddr,
        report_raw: &[u8],
        shipped_certs: &[Vec<u8>],
        now: u64,
    ) -> Result<SnpEndorsements, Refusal> {
        let platform = SnpPlatform::from_report(report_raw)?;
        let shipped = self.inner.shipped(shipped_certs);
        let mut out = SnpEndorsements {
            vek_der: shipped.vek.clone(),
            ask_der: shipped.ask.clone(),
            ark_der: shipped.ark.clone(),
            // The verifier's own CRL is always looked up (below) and is authoritative; a shipped one is passed on
            // as the client's, which appraisal uses only when it verifies and is newer.
            crl_der: None,
            client_crl_der: shipped
                .crl
                .as_ref()
                .filter(|(_, this, next)| *this <= now && now < *next)
                .map(|(crl, _, _)| crl.clone()),
        };
        let kind = match platform.signer {
            SnpSigner::Vcek => AmdKeyKind::Vcek,
            SnpSigner::Vlek => AmdKeyKind::Vlek,
            // Unsigned or reserved signing key: nothing to fetch; appraisal refuses the report.
            SnpSigner::Other(_) => return Ok(out),
        };
        let mut product = platform.product.or(shipped.product);

        if out.vek_der.is_none() {
            if kind == AmdKeyKind::Vlek {
                return Err(Refusal::new(
                    ErrorCode::CollateralMissing,
                    "the report is signed by a VLEK, which the AMD KDS does not serve: ship the VLEK certificate with \
                     the evidence",
                ));
            }
            let (found_product, vcek) = self.find_vcek(client, &platform, product, now).await?;
            product = Some(found_product);
            out.vek_der = Some(vcek);
        }
        let Some(product) = product else {
            // A v2 report with a shipped leaf whose issuer names no product: nothing more to look up.
            return Ok(out);
        };

        // The chain (unless shipped) and the CRL, concurrently.
        let need_chain = out.ask_der.is_none() || out.ark_der.is_none();
        let want_crl = self.inner.config.fetch_snp_crl;
        let chain_item = Item::AmdCertChain { kind, product };
        let crl_item = Item::AmdCrl { kind, product };
        let (chain, crl) = tokio::join!(
            async {
                if need_chain {
                    Some(self.get(client, &chain_item, now).await)
                } else {
                    None
                }
            },
            async {
                if want_crl {
                    Some(self.get(client, &crl_item, now).await)
                } else {
                    None
                }
            },
        );
        match chain {
            Some(Ok(chain)) => {
                let certs = pem_certificates(&chain.body);
                if out.ask_der.is_none() {
                    out.ask_der = certs.first().cloned();
                }
                if out.ark_der.is_none() {
                    out.ark_der = certs.get(1).cloned();
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "AMD cert chain unavailable; leaving ASK/ARK to appraisal")
            }
            None => {}
        }
        match crl {
            Some(Ok(crl)) => out.crl_der = Some(crl.body.clone()),
            Some(Err(e)) => tracing::warn!(error = %e, "AMD CRL unavailable"),
            None => {}
        }
        Ok(out)
    }

    /// Find the VCEK of a report: the known product, or for a v2 report without certificates each product in turn
    /// (cache and offline directory first for all of them, then the KDS).
    async fn find_vcek(
        &self,
        client: IpAddr,
        platform: &SnpPlatform,
        product: Option<SnpProduct>,
        now: u64,
    ) -> Result<(SnpProduct, Vec<u8>), Refusal> {
        let candidates: Vec<SnpProduct> = match product {
            Some(p) => vec![p],
            // A v2 report names no product: Turin chips have an 8-byte chip id (the rest zero), the others 64 bytes.
            None if platform.chip_id[8..].iter().all(|b| *b == 0) => vec![SnpProduct::Turin],
            None => vec![SnpProduct::Milan, SnpProduct::Genoa],
        };
        let mut items = Vec::new();
        for p in candidates {
            if let Some(hwid) = platform.hwid(p) {
                items.push((
                    p,
                    Item::Vcek {
                        product: p,
                        hwid,
                        tcb: platform.tcb(p),
                    },
                ));
            }
        }
        if items.is_empty() {
            return Err(Refusal::new(
                ErrorCode::CollateralMissing,
                "CHIP_ID is masked (all zero), so the VCEK cannot be fetched: ship the VCEK or VLEK with the evidence",
            ));
        }
        if items.len() > 1 {
            for (p, item) in &items {
                if let Some(found) = self.inner.local(item, now).await {
                    return Ok((*p, found.body.clone()));
                }
            }
        }
        let mut last = None;
        for (p, item) in &items {
            match self.get(client, item, now).await {
                Ok(found) => return Ok((*p, found.body.clone())),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Refusal::new(ErrorCode::CollateralMissing, "no VCEK found")))
    }

    /// The collateral of a raw TDX quote (v4/v5): FMSPC and PCK CA from the PCK leaf in the quote, then TCB info,
    /// QE identity, PCK CRL and root CA CRL, fetched concurrently.
    pub async fn tdx_collateral(
        &self,
        client: IpAddr,
        quote_raw: &[u8],
        now: u64,
    ) -> Result<TdxCollateralItems, Refusal> {
        let platform = TdxPlatform::from_quote(quote_raw)?;
        self.tdx_collateral_for(client, &platform, now).await
    }

    /// The appraisal core's collateral for a raw TDX quote: the items as [`Collateral::tdx_collateral`] finds them,
    /// as a view shared with every other request while the same cached items are served (built again only when one
    /// of them was replaced: a refresh).
    pub async fn tdx_view(
        &self,
        client: IpAddr,
        quote_raw: &[u8],
        now: u64,
    ) -> Result<Arc<crate::appraisal::TdxCollateral>, Refusal> {
        let platform = self.inner.tdx_platform(quote_raw)?;
        let items = self.tdx_items(client, &platform, now).await?;
        let key = (platform.fmspc_hex(), platform.ca);
        // Built under the lock (a short parse, once per refresh), so concurrent first requests share one view.
        let mut views = self.inner.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = views.get(&key) {
            if v.items.iter().zip(&items).all(|(a, b)| Arc::ptr_eq(a, b)) {
                return Ok(v.view.clone());
            }
        }
        let view = Arc::new(tdx_items_of(&items)?.to_appraisal()?);
        self.inner
            .counters
            .tdx_views_built
            .fetch_add(1, Ordering::Relaxed);
        views.insert(
            key,
            TdxView {
                items,
                view: view.clone(),
            },
        );
        Ok(view)
    }

    /// TCB info, QE identity, PCK CRL and root CA CRL of a platform, fetched concurrently.
    async fn tdx_items(
        &self,
        client: IpAddr,
        platform: &TdxPlatform,
        now: u64,
    ) -> Result<[Arc<CachedItem>; 4], Refusal> {
        let tcb_item = Item::TcbInfo {
            fmspc: platform.fmspc_hex(),
        };
        let pck_item = Item::PckCrl { ca: platform.ca };
        let (tcb, qe, pck, root) = tokio::join!(
            self.get(client, &tcb_item, now),
            self.get(client, &Item::QeIdentity, now),
            self.get(client, &pck_item, now),
            self.get(client, &Item::RootCaCrl, now),
        );
        Ok([tcb?, qe?, pck?, root?])
    }

    /// The collateral for an FMSPC and PCK CA.
    pub async fn tdx_collateral_for(
        &self,
        client: IpAddr,
        platform: &TdxPlatform,
        now: u64,
    ) -> Result<TdxCollateralItems, Refusal> {
        let items = self.tdx_items(client, platform, now).await?;
        tdx_items_of(&items)
    }

    /// One item, through memory, disk, the offline directory and the network, single-flighted. A new-platform fetch
    /// spends `client`'s budget (the budget of the caller that starts the flight; callers joining it spend nothing).
    pub async fn get(
        &self,
        client: IpAddr,
        item: &Item,
        now: u64,
    ) -> Result<Arc<CachedItem>, Refusal> {
        let key = self.inner.cache_key(item);
        if let Some(found) = self.inner.cache.memory_get(&key) {
            if found.is_valid(now) {
                self.inner
                    .counters
                    .memory_hits
                    .fetch_add(1, Ordering::Relaxed);
                self.inner.maybe_refresh(item, &found, now);
                return Ok(found);
            }
        }
        let inner = self.inner.clone();
        let owned = item.clone();
        self.inner
            .flights
            .run(&key, || async move {
                inner.load_or_fetch(&owned, now, client).await
            })
            .await
    }

    /// Fetch `item` from the network now, replacing the cached copy (e.g. for a scheduled refresh).
    pub async fn refresh(&self, item: &Item, now: u64) -> Result<Arc<CachedItem>, Refusal> {
        let fetched = self
            .inner
            .fetch_and_store(item, now, Admission::Known)
            .await?;
        Ok(fetched)
    }
}

/// Why a fetch may start: the item had a copy before (or is one of the fixed items), or it is a new platform's and
/// the fetch must fit the pool at once and the budgets of this client.
#[derive(Clone, Copy, Debug)]
enum Admission {
    Known,
    NewPlatform(IpAddr),
}

/// The cache-key prefix of each collateral source.
#[derive(Debug)]
struct Sources {
    amd: String,
    intel: String,
    intel_root_crl: String,
}

/// A path-safe label naming one source: its host and the first 64 bits of SHA-256 of its URL.
fn source_label(url: &str) -> String {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let digest = Sha256::digest(url.as_bytes());
    format!("{host}-{}", hex::encode(&digest[..8]))
}

impl Inner {
    /// The platform a raw TDX quote names ([`TdxPlatform::from_quote`]), from the memo when its PCK chain was seen.
    fn tdx_platform(&self, quote_raw: &[u8]) -> Result<TdxPlatform, Refusal> {
        let quote = locus_hw::tdx::Quote::parse_ignoring_trailing_bytes(quote_raw)
            .map_err(Refusal::from)?;
        let chain = quote.pck_cert_chain_pem.as_slice();
        remembered(
            &self.tdx_platforms,
            pck_chain_key(chain),
            |kept| kept.as_slice() == chain,
            || TdxPlatform::from_parsed_quote(&quote).map(|p| (chain.to_vec(), p)),
        )
    }

    /// `certs` classified ([`Shipped::classify`]), from the memo when the same bytes were shipped before.
    fn shipped(&self, certs: &[Vec<u8>]) -> Arc<Shipped> {
        if certs.is_empty() {
            return Arc::new(Shipped::default());
        }
        let Ok(classified) = remembered(
            &self.shipped,
            shipped_key(certs),
            |kept| kept.as_slice() == certs,
            || {
                Ok::<_, std::convert::Infallible>((
                    certs.to_vec(),
                    Arc::new(Shipped::classify(certs)),
                ))
            },
        );
        classified
    }

    /// The cache key of `item`: its source's label, then the item's own key.
    fn cache_key(&self, item: &Item) -> String {
        let source = match item {
            Item::Vcek { .. } | Item::AmdCertChain { .. } | Item::AmdCrl { .. } => {
                &self.sources.amd
            }
            Item::TcbInfo { .. } | Item::QeIdentity | Item::PckCrl { .. } => &self.sources.intel,
            Item::RootCaCrl => &self.sources.intel_root_crl,
        };
        format!("{source}/{}", item.key())
    }

    /// A valid copy from memory, disk or the offline directory, without the network.
    async fn local(&self, item: &Item, now: u64) -> Option<Arc<CachedItem>> {
        let key = self.cache_key(item);
        if let Some(found) = self.cache.get(&key).await {
            if found.is_valid(now) {
                return Some(found);
            }
        }
        self.offline_lookup(item, now)
            .filter(|o| o.is_valid(now))
            .map(Arc::new)
    }

    fn offline_lookup(&self, item: &Item, now: u64) -> Option<CachedItem> {
        let dir = self.offline_dir.as_ref()?;
        match item {
            Item::Vcek { product, hwid, tcb } => dir.vcek(*product, hwid, tcb, now),
            Item::AmdCertChain { kind, product } => dir.cert_chain(*kind, *product, now),
            Item::AmdCrl { kind, product } => dir.crl(*kind, *product, now),
            Item::TcbInfo { fmspc } => dir.tcb_info(fmspc, now),
            Item::QeIdentity => dir.qe_identity(now),
            Item::PckCrl { ca } => dir.pck_crl(*ca, now),
            Item::RootCaCrl => dir.root_ca_crl(now),
        }
    }

    async fn load_or_fetch(self: &Arc<Self>, item: &Item, now: u64, client: IpAddr) -> Shared {
        let key = self.cache_key(item);
        let mut stale: Option<Arc<CachedItem>> = None;
        let from_memory = self.cache.memory_get(&key).is_some();
        if let Some(found) = self.cache.get(&key).await {
            if found.is_valid(now) {
                let counter = if from_memory {
                    &self.counters.memory_hits
                } else {
                    &self.counters.disk_hits
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.maybe_refresh(item, &found, now);
                return Ok(found);
            }
            stale = Some(found);
        }
        if let Some(found) = self.offline_lookup(item, now) {
            let found = Arc::new(found);
            if found.is_valid(now) {
                self.counters.offline_hits.fetch_add(1, Ordering::Relaxed);
                // Kept in memory (not on disk: the directory is its own copy) so later requests do not scan and
                // parse the directory again; a reload starts a new cache and so sees changed files.
                self.cache.memory_put(&key, found.clone());
                return Ok(found);
            }
            if stale
                .as_ref()
                .is_none_or(|s| s.next_update < found.next_update)
            {
                stale = Some(found);
            }
        }
        let error = if self.config.offline {
            Refusal::new(
                ErrorCode::CollateralMissing,
                format!(
                    "{}: not in the cache or collateral directory (offline mode)",
                    item.describe()
                ),
            )
        } else {
            // Nothing at all, not even an expired copy, of an item the evidence names: a platform never seen.
            let admission = if item.named_by_evidence() && stale.is_none() {
                Admission::NewPlatform(client)
            } else {
                Admission::Known
            };
            match self.recent_failure(&key) {
                Some(e) => e,
                None => match self.fetch_for_request(item, now, admission).await {
                    Ok(found) => return Ok(found),
                    Err(e) => e,
                },
            }
        };
        match stale {
            Some(s) => Err(Refusal::new(
                ErrorCode::CollateralExpired,
                format!(
                    "{} expired at {} (now {now}) and could not be refreshed: {}",
                    item.describe(),
                    s.next_update.unwrap_or(0),
                    error.message
                ),
            )),
            None => Err(error),
        }
    }

    /// Record a failed fetch. Failures are keyed by item, and items by evidence (a chip id, an FMSPC), so the map is
    /// pruned of entries past the back-off whenever it grows beyond [`MAX_REMEMBERED_FAILURES`]; if it is still full
    /// the new failure is not remembered (the next request simply tries again).
    fn remember_failure(
        &self,
        failures: &mut HashMap<String, (Instant, Refusal)>,
        key: String,
        refusal: Refusal,
    ) {
        if failures.len() >= MAX_REMEMBERED_FAILURES {
            let backoff = self.config.failure_backoff;
            failures.retain(|_, (at, _)| at.elapsed() < backoff);
        }
        if failures.len() < MAX_REMEMBERED_FAILURES {
            failures.insert(key, (Instant::now(), refusal));
        }
    }

    fn recent_failure(&self, key: &str) -> Option<Refusal> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(key) {
            Some((at, e)) if at.elapsed() < self.config.failure_backoff => Some(e.clone()),
            Some(_) => {
                failures.remove(key);
                None
            }
            None => None,
        }
    }

    /// A place in the fetch pool: waited for when the item is known; for a new platform taken only if free at once
    /// and paid for from the client's and the global budget (refusals are `collateral_missing`, immediate).
    async fn admit(
        &self,
        item: &Item,
        admission: Admission,
    ) -> Result<OwnedSemaphorePermit, Refusal> {
        match admission {
            Admission::Known => self
                .pool
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Refusal::new(ErrorCode::Internal, "collateral fetch pool closed")),
            Admission::NewPlatform(client) => {
                let refuse = |why: String| {
                    self.counters
                        .new_platform_refusals
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(item = %item.describe(), %client, reason = %why, "new-platform fetch refused");
                    Refusal::new(
                        ErrorCode::CollateralMissing,
                        format!("{} not fetched: {why}; retry later", item.describe()),
                    )
                };
                let permit = self.pool.clone().try_acquire_owned().map_err(|_| {
                    refuse(format!(
                        "the collateral fetch pool is full ({} fetches in flight)",
                        self.config.fetch_concurrency.max(1)
                    ))
                })?;
                self.budget
                    .try_spend(client, Instant::now())
                    .map_err(|exhausted| refuse(exhausted.to_string()))?;
                Ok(permit)
            }
        }
    }

    /// A fetch a request waits for, counted; and counted again if a valid copy was cached when it started (which
    /// the lookup order rules out: the counter shows it stays so under load).
    async fn fetch_for_request(&self, item: &Item, now: u64, admission: Admission) -> Shared {
        let key = self.cache_key(item);
        self.counters
            .request_fetches
            .fetch_add(1, Ordering::Relaxed);
        if self
            .cache
            .memory_get(&key)
            .is_some_and(|cached| cached.is_valid(now))
        {
            self.counters
                .request_fetches_while_cached
                .fetch_add(1, Ordering::Relaxed);
        }
        self.fetch_and_store(item, now, admission).await
    }

    async fn fetch_and_store(&self, item: &Item, now: u64, admission: Admission) -> Shared {
        if self.config.offline {
            return Err(Refusal::new(
                ErrorCode::CollateralMissing,
                format!("{}: {}", item.describe(), FetchError::Offline),
            ));
        }
        let key = self.cache_key(item);
        let permit = self.admit(item, admission).await?;
        let fetched = self.fetch(item, now).await;
        drop(permit);
        match fetched {
            Ok(found) => {
                self.counters.fetches.fetch_add(1, Ordering::Relaxed);
                let found = Arc::new(found);
                self.cache.put(&key, found.clone()).await;
                let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                if found.is_valid(now) {
                    failures.remove(&key);
                } else {
                    // The source itself serves an expired copy: hand it to appraisal this time (it refuses with
                    // `collateral_expired`), and do not ask again for every request during the failure back-off.
                    tracing::warn!(item = %key, "collateral source served an item already past its nextUpdate");
                    let refusal = Refusal::new(
                        ErrorCode::CollateralExpired,
                        format!("the source serves an expired {}", item.describe()),
                    );
                    self.remember_failure(&mut failures, key, refusal);
                }
                Ok(found)
            }
            Err(e) => {
                self.counters.fetch_failures.fetch_add(1, Ordering::Relaxed);
                let refusal = Refusal::new(
                    ErrorCode::CollateralMissing,
                    format!("{} could not be fetched: {e}", item.describe()),
                );
                tracing::warn!(item = %key, error = %e, "collateral fetch failed");
                let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                self.remember_failure(&mut failures, key, refusal.clone());
                Err(refusal)
            }
        }
    }

    async fn fetch(&self, item: &Item, now: u64) -> Result<CachedItem, FetchError> {
        match item {
            Item::Vcek { product, hwid, tcb } => self.kds.vcek(*product, hwid, tcb, now).await,
            Item::AmdCertChain { kind, product } => self.kds.cert_chain(*kind, *product, now).await,
            Item::AmdCrl { kind, product } => self.kds.crl(*kind, *product, now).await,
            Item::TcbInfo { fmspc } => self.pcs.tcb_info(fmspc, now).await,
            Item::QeIdentity => self.pcs.qe_identity(now).await,
            Item::PckCrl { ca } => self.pcs.pck_crl(*ca, now).await,
            Item::RootCaCrl => self.pcs.root_ca_crl(now).await,
        }
    }

    /// Start a background refresh of a valid item nearing its `nextUpdate` (at most one per item per
    /// `refresh_retry_secs`). The new copy replaces the old only if it is not older. Needs a Tokio runtime.
    fn maybe_refresh(self: &Arc<Self>, item: &Item, current: &Arc<CachedItem>, now: u64) {
        if self.config.offline || !current.refresh_due(now) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let key = self.cache_key(item);
        {
            let mut refreshing = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(last) = refreshing.get(&key) {
                if now < last.saturating_add(self.config.refresh_retry_secs) && now >= *last {
                    return;
                }
            }
            refreshing.insert(key.clone(), now);
        }
        self.counters
            .refreshes_started
            .fetch_add(1, Ordering::Relaxed);
        let inner = self.clone();
        let item = item.clone();
        let old_next = current.next_update;
        runtime.spawn(async move {
            let Ok(_permit) = inner.pool.clone().acquire_owned().await else {
                return;
            };
            match inner.fetch(&item, now).await {
                Ok(fresh) if fresh.next_update >= old_next => {
                    inner.counters.fetches.fetch_add(1, Ordering::Relaxed);
                    inner.cache.put(&key, Arc::new(fresh)).await;
                    tracing::info!(item = %key, "collateral refreshed ahead of nextUpdate");
                }
                Ok(_) => {
                    inner.counters.fetches.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(item = %key, "refresh returned older collateral; keeping the cached copy");
                }
                Err(e) => {
                    inner.counters.fetch_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(item = %key, error = %e, "collateral refresh failed; serving the cached copy");
                }
            }
        });
    }
}

/// The value `memo` holds for `key` if what it was made from is `same` as the input at hand, or else `make`'s (the
/// input it was made from, and the value), kept on success in place of any entry under that key. The lock is not held
/// while `make` runs, so two first requests may both compute it; they compute the same value.
fn remembered<S, V: Clone, E>(
    memo: &Mutex<Lru<[u8; 32], (S, V)>>,
    key: [u8; 32],
    same: impl FnOnce(&S) -> bool,
    make: impl FnOnce() -> Result<(S, V), E>,
) -> Result<V, E> {
    let lock = || memo.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((source, found)) = lock().get(&key) {
        if same(source) {
            return Ok(found.clone());
        }
    }
    let (source, made) = make()?;
    lock().insert(key, (source, made.clone()));
    Ok(made)
}

/// The memo key of a set of shipped blobs ([`crate::lru::ends_key`]: their count, and the ends of each); a hit must
/// also match every byte (the comparison in [`remembered`]).
fn shipped_key(certs: &[Vec<u8>]) -> [u8; 32] {
    let count = (certs.len() as u64).to_be_bytes();
    crate::lru::ends_key(
        &[b"locus/shipped/v1".as_slice(), &count].concat(),
        certs.iter().map(|c| Some(c.as_slice())),
    )
}

/// The memo key of a TDX quote's PCK chain PEM ([`crate::lru::ends_key`]); a hit must also match every byte.
fn pck_chain_key(chain_pem: &[u8]) -> [u8; 32] {
    crate::lru::ends_key(b"locus/tdx-pck-chain/v1", [Some(chain_pem)])
}

/// A TDX platform memo entry: the PCK chain's PEM as sent, and the platform it names.
type PlatformEntry = (Vec<u8>, TdxPlatform);

/// A shipped-certificate memo entry: the blobs as shipped, and their classification.
type ShippedEntry = (Vec<Vec<u8>>, Arc<Shipped>);

/// Certificates shipped with SNP evidence, classified.
#[derive(Debug, Default)]
struct Shipped {
    vek: Option<Vec<u8>>,
    ask: Option<Vec<u8>>,
    ark: Option<Vec<u8>>,
    /// A DER CRL shipped beside the certificates (the extended-report table may carry one), with its window.
    crl: Option<(Vec<u8>, u64, u64)>,
    product: Option<SnpProduct>,
}

impl Shipped {
    fn classify(certs: &[Vec<u8>]) -> Self {
        let mut out = Shipped::default();
        let ders = certs.iter().flat_map(|c| {
            if c.first() == Some(&0x30) {
                vec![c.clone()]
            } else {
                pem_certificates(c)
            }
        });
        for der in ders {
            if let Ok((this, next)) = cache::crl_window(&der) {
                if out.crl.is_none() {
                    out.crl = Some((der, this, next));
                }
                continue;
            }
            match classify_amd_cert(&der) {
                Some((role, product)) => {
                    out.product = out.product.or(product);
                    let slot = match role {
                        AmdCertRole::Vcek | AmdCertRole::Vlek => &mut out.vek,
                        AmdCertRole::Ask | AmdCertRole::Asvk => &mut out.ask,
                        AmdCertRole::Ark => &mut out.ark,
                    };
                    if slot.is_none() {
                        *slot = Some(der);
                    }
                }
                None => tracing::debug!(
                    "ignoring a shipped blob that is not an AMD VCEK/VLEK/ASK/ARK or a CRL"
                ),
            }
        }
        out
    }
}

/// The four cached TDX items (TCB info, QE identity, PCK CRL, root CA CRL) in the collateral layout.
fn tdx_items_of(items: &[Arc<CachedItem>; 4]) -> Result<TdxCollateralItems, Refusal> {
    let [tcb, qe, pck, root] = items;
    Ok(TdxCollateralItems {
        tcb_info_json: utf8(&tcb.body, "TCB info")?,
        tcb_info_issuer_chain_pem: chain_of(tcb, "TCB info")?,
        qe_identity_json: utf8(&qe.body, "QE identity")?,
        qe_identity_issuer_chain_pem: chain_of(qe, "QE identity")?,
        pck_crl_der: pck.body.clone(),
        pck_crl_issuer_chain_pem: chain_of(pck, "PCK CRL")?,
        root_ca_crl_der: root.body.clone(),
    })
}

fn utf8(body: &[u8], what: &str) -> Result<String, Refusal> {
    String::from_utf8(body.to_vec())
        .map_err(|_| Refusal::new(ErrorCode::CollateralMissing, format!("{what} is not UTF-8")))
}

fn chain_of(item: &CachedItem, what: &str) -> Result<String, Refusal> {
    item.issuer_chain.clone().ok_or_else(|| {
        Refusal::new(
            ErrorCode::CollateralMissing,
            format!("{what} has no issuer chain"),
        )
    })
}

/// DER of one certificate file (DER or PEM); exposed for the CLI's `--certs DIR`.
pub fn certificate_der(bytes: &[u8]) -> Option<Vec<u8>> {
    cert_der(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn cache_keys_name_each_item_distinctly() {
        let tcb = SnpTcb::from_raw(0x7308_0000_0000_0003, SnpProduct::Milan);
        let items = [
            Item::Vcek {
                product: SnpProduct::Milan,
                hwid: "ab".into(),
                tcb,
            },
            Item::AmdCertChain {
                kind: AmdKeyKind::Vcek,
                product: SnpProduct::Milan,
            },
            Item::AmdCertChain {
                kind: AmdKeyKind::Vlek,
                product: SnpProduct::Milan,
            },
            Item::AmdCrl {
                kind: AmdKeyKind::Vcek,
                product: SnpProduct::Milan,
            },
            Item::TcbInfo {
                fmspc: "00806f050000".into(),
            },
            Item::QeIdentity,
            Item::PckCrl {
                ca: PckCa::Platform,
            },
            Item::PckCrl {
                ca: PckCa::Processor,
            },
            Item::RootCaCrl,
        ];
        let keys: std::collections::HashSet<String> = items.iter().map(Item::key).collect();
        assert_eq!(keys.len(), items.len());
        assert_eq!(
            items[0].key(),
            "snp/vcek/Milan/ab/blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"
        );
    }

    #[test]
    fn only_items_the_evidence_names_count_as_new_platforms() {
        let tcb = SnpTcb::from_raw(0x7308_0000_0000_0003, SnpProduct::Milan);
        assert!(Item::Vcek {
            product: SnpProduct::Milan,
            hwid: "ab".into(),
            tcb
        }
        .named_by_evidence());
        assert!(Item::TcbInfo {
            fmspc: "00806f050000".into()
        }
        .named_by_evidence());
        for fixed in [
            Item::QeIdentity,
            Item::RootCaCrl,
            Item::PckCrl {
                ca: PckCa::Platform,
            },
            Item::AmdCertChain {
                kind: AmdKeyKind::Vcek,
                product: SnpProduct::Milan,
            },
            Item::AmdCrl {
                kind: AmdKeyKind::Vcek,
                product: SnpProduct::Genoa,
            },
        ] {
            assert!(!fixed.named_by_evidence(), "{fixed:?}");
        }
    }

    #[test]
    fn cache_keys_carry_the_source_so_two_services_never_share_copies() {
        let with = |kds: &str, pcs: &str| {
            Collateral::new(CollateralConfig {
                amd_kds_url: kds.into(),
                intel_pcs_url: pcs.into(),
                ..CollateralConfig::default()
            })
            .expect("collateral")
        };
        let real = with(AMD_KDS_URL, INTEL_PCS_URL);
        let sim = with("http://127.0.0.1:8080", "http://127.0.0.1:8080");
        let again = with(AMD_KDS_URL, "https://pccs.internal:8081");
        let vcek = Item::Vcek {
            product: SnpProduct::Milan,
            hwid: "ab".into(),
            tcb: SnpTcb::from_raw(0x7308_0000_0000_0003, SnpProduct::Milan),
        };
        let tcb = Item::TcbInfo {
            fmspc: "00806f050000".into(),
        };
        assert_ne!(real.inner.cache_key(&vcek), sim.inner.cache_key(&vcek));
        assert_ne!(real.inner.cache_key(&tcb), sim.inner.cache_key(&tcb));
        // Same KDS, other PCS: the AMD items are shared, the Intel ones are not.
        assert_eq!(real.inner.cache_key(&vcek), again.inner.cache_key(&vcek));
        assert_ne!(real.inner.cache_key(&tcb), again.inner.cache_key(&tcb));
        let key = real.inner.cache_key(&vcek);
        assert!(
            key.starts_with("kdsintf.amd.com-") && key.ends_with(&vcek.key()),
            "{key}"
        );
        // The official PCS's root CA CRL comes from its own distribution point, another source.
        assert!(real
            .inner
            .cache_key(&Item::RootCaCrl)
            .starts_with("certificates.trustedservices.intel.com-"));
        assert_eq!(
            source_label("http://127.0.0.1:8080").len(),
            "127.0.0.1_8080-".len() + 16
        );
    }

    #[test]
    fn shipped_certificates_are_classified_and_garbage_ignored() {
        let shipped = Shipped::classify(&[b"not a certificate".to_vec(), vec![0x30, 0x00]]);
        assert!(shipped.vek.is_none() && shipped.ask.is_none() && shipped.ark.is_none());
    }

    #[test]
    fn shipped_certificates_are_classified_once_per_distinct_set() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sim-pki/snp/milan");
        let read = |name: &str| std::fs::read(dir.join(name)).expect("sim PKI certificate");
        let (ark, ask) = (read("ark.pem"), read("ask.pem"));
        let c = Collateral::new(CollateralConfig::default()).expect("collateral");
        let first = c.inner.shipped(&[ask.clone(), ark.clone()]);
        assert!(first.ask.is_some() && first.ark.is_some() && first.vek.is_none());
        // The same bytes again: the memo's classification, not a new one.
        assert!(Arc::ptr_eq(
            &first,
            &c.inner.shipped(&[ask.clone(), ark.clone()])
        ));
        // Other bytes (here: the same certificates split differently) are classified afresh.
        let mut joined = ask.clone();
        joined.extend_from_slice(&ark);
        let other = c.inner.shipped(&[joined]);
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(other.ask.is_some() && other.ark.is_some());
        assert!(c.inner.shipped(&[ask]).ark.is_none());
    }

    #[test]
    fn shipped_sets_that_share_a_memo_key_but_differ_in_the_middle_are_each_classified_from_their_own_bytes(
    ) {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sim-pki/snp/milan");
        let ark = std::fs::read(dir.join("ark.pem")).expect("sim PKI certificate");
        // Same length and the same bytes at both ends, garbage in the middle: the same key, other bytes.
        let mut garbled = ark.clone();
        let mid = garbled.len() / 2;
        garbled[mid..mid + 8].copy_from_slice(b"!!!!!!!!");
        assert_eq!(
            shipped_key(std::slice::from_ref(&ark)),
            shipped_key(std::slice::from_ref(&garbled))
        );
        let c = Collateral::new(CollateralConfig::default()).expect("collateral");
        assert!(c.inner.shipped(std::slice::from_ref(&ark)).ark.is_some());
        // Not the remembered classification of the genuine ARK: the garbled PEM is no certificate.
        assert!(c
            .inner
            .shipped(std::slice::from_ref(&garbled))
            .ark
            .is_none());
        // And the genuine bytes are classified as an ARK again (the entry was replaced, never confused).
        assert!(c.inner.shipped(&[ark]).ark.is_some());
    }

    #[test]
    fn a_tdx_quotes_platform_is_read_once_per_pck_chain() {
        use locus_simulator::intel::IntelPki;
        let pki = Arc::new(IntelPki::new(7));
        let (fra, other) = (
            pki.attester_by_name("tdx-fra-1").expect("profile"),
            pki.attester_by_name("tdx-iad-1").expect("profile"),
        );
        let c = Collateral::new(CollateralConfig::default()).expect("collateral");
        let first = fra.quote(&[1; 64]);
        let read = c.inner.tdx_platform(&first).expect("platform");
        assert_eq!(read, TdxPlatform::from_quote(&first).expect("platform"));
        assert_eq!(c.inner.tdx_platforms.lock().expect("memo").len(), 1);
        // Another quote of the same platform: the memo's answer, nothing new kept.
        assert_eq!(
            c.inner
                .tdx_platform(&fra.quote(&[2; 64]))
                .expect("platform"),
            read
        );
        assert_eq!(c.inner.tdx_platforms.lock().expect("memo").len(), 1);
        // Another platform's chain is read afresh.
        let second = other.quote(&[3; 64]);
        assert_eq!(
            c.inner.tdx_platform(&second).expect("platform"),
            TdxPlatform::from_quote(&second).expect("platform")
        );
        assert_eq!(c.inner.tdx_platforms.lock().expect("memo").len(), 2);
        // A malformed quote is refused as before, and nothing is kept for it.
        let err = c.inner.tdx_platform(&first[..700]).expect_err("truncated");
        assert_eq!(err.code, ErrorCode::EvidenceMalformed);
        assert_eq!(c.inner.tdx_platforms.lock().expect("memo").len(), 2);
    }

    #[test]
    fn a_pck_chain_that_shares_a_memo_key_but_differs_in_the_middle_is_read_from_its_own_bytes() {
        use locus_simulator::intel::IntelPki;
        let pki = Arc::new(IntelPki::new(7));
        let genuine = pki
            .attester_by_name("tdx-fra-1")
            .expect("profile")
            .quote(&[1; 64]);
        let chain = locus_hw::tdx::Quote::parse_ignoring_trailing_bytes(&genuine)
            .expect("quote")
            .pck_cert_chain_pem;
        let at = genuine
            .windows(chain.len())
            .position(|w| w == chain.as_slice())
            .expect("the chain inside the quote");
        // Same length and the same bytes at both ends of the chain, garbage in its middle: the same key, other bytes.
        let mut garbled = genuine.clone();
        let mid = at + chain.len() / 2;
        garbled[mid..mid + 8].copy_from_slice(b"!!!!!!!!");
        let garbled_chain = locus_hw::tdx::Quote::parse_ignoring_trailing_bytes(&garbled)
            .expect("still a quote")
            .pck_cert_chain_pem;
        assert_ne!(garbled_chain, chain);
        assert_eq!(pck_chain_key(&garbled_chain), pck_chain_key(&chain));
        let c = Collateral::new(CollateralConfig::default()).expect("collateral");
        let read = c.inner.tdx_platform(&genuine).expect("platform");
        // Not the remembered platform of the genuine chain: the garbled PEM holds no certificate.
        let err = c.inner.tdx_platform(&garbled).expect_err("garbled chain");
        assert_eq!(err.code, ErrorCode::EvidenceMalformed);
        // The genuine chain still reads as before.
        assert_eq!(c.inner.tdx_platform(&genuine).expect("platform"), read);
    }

    #[tokio::test]
    async fn a_request_fetch_of_an_item_with_a_valid_cached_copy_is_counted() {
        // Nothing listens on port 9: the fetch fails, but it was started, and that is what is counted.
        let c = Collateral::new(CollateralConfig {
            intel_pcs_url: "http://127.0.0.1:9".into(),
            retry: RetryPolicy {
                max_retries: 0,
                ..RetryPolicy::default()
            },
            ..CollateralConfig::default()
        })
        .expect("collateral");
        let key = c.inner.cache_key(&Item::QeIdentity);
        let _ = c
            .inner
            .fetch_for_request(&Item::QeIdentity, 1_000, Admission::Known)
            .await;
        assert_eq!(c.stats().request_fetches, 1);
        assert_eq!(c.stats().request_fetches_while_cached, 0);
        let valid = CachedItem {
            body: b"{}".to_vec(),
            issuer_chain: None,
            issued_at: Some(0),
            next_update: Some(2_000),
            fetched_at: 0,
        };
        c.cache().put(&key, Arc::new(valid)).await;
        let _ = c
            .inner
            .fetch_for_request(&Item::QeIdentity, 1_000, Admission::Known)
            .await;
        assert_eq!(c.stats().request_fetches, 2);
        assert_eq!(c.stats().request_fetches_while_cached, 1);
        // Through the request path the valid copy is served and nothing is fetched.
        c.get(LOCAL, &Item::QeIdentity, 1_000)
            .await
            .expect("cached");
        assert_eq!(c.stats().request_fetches, 2);
        assert_eq!(c.stats().memory_hits, 1);
    }

    #[tokio::test]
    async fn offline_mode_with_nothing_cached_is_collateral_missing() {
        let c = Collateral::new(CollateralConfig {
            offline: true,
            ..CollateralConfig::default()
        })
        .expect("collateral");
        let err = c
            .get(LOCAL, &Item::QeIdentity, 1_000)
            .await
            .expect_err("nothing offline");
        assert_eq!(err.code, ErrorCode::CollateralMissing);
        assert!(err.message.contains("offline"), "{}", err.message);
        assert_eq!(c.stats().fetches + c.stats().fetch_failures, 0);
    }
}
