//! The running service's state and its reload.
//!
//! [`Runtime`] is everything derived from one configuration file plus the keys directory: validated config, trust
//! anchors, collateral client, verified endorsements, signing keys, WIT issuer, challenge key. It is immutable and
//! swapped whole (`RwLock<Arc<Runtime>>`, readers clone the `Arc` and never hold the lock across an await), so a
//! request sees one consistent configuration from start to end. A reload builds a complete new `Runtime` first and
//! swaps only if every step succeeded: a bad file, a bad key or an unreadable directory keeps the running one.
//!
//! What a reload does not change (fixed at start): the listen address, the audit target and the concurrency caps.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use der::Decode as _;
use locus_wimse::WitIssuer;
use tokio::sync::Semaphore;

use super::audit::AuditLog;
use super::challenge::ChallengeKey;
use super::config::{self, Config};
use super::keys::{self, KeyKind, KeySet, RETAIN_SKEW};
use super::metrics::Metrics;
use crate::appraisal::TrustAnchors;
use crate::collateral::{Collateral, CollateralConfig};
use crate::endorsement::{self, Endorsement};
use crate::spiffe::ca::SpiffeCa;

/// Everything derived from one config file and the keys directory.
#[derive(Debug)]
pub struct Runtime {
    pub config: Arc<Config>,
    /// Pinned vendor roots, plus the simulator's when `trust.simulator` is on.
    pub anchors: TrustAnchors,
    /// Collateral fetch + cache (per replica; docs/operations.md#replicas-and-shared-keys).
    pub collateral: Arc<Collateral>,
    /// Endorsements from `server.endorsements_dir` whose signature verified under a configured endorser.
    pub endorsements: Vec<Endorsement>,
    pub keys: KeySet,
    /// JWT-SVID signing keys (`jwt-svid-*.pk8`), scheduled like the WIT keys.
    pub jwt_svid_keys: KeySet,
    /// The SPIFFE X.509 CA keys and certificates (`spiffe-ca-*`), scheduled like the WIT keys.
    pub spiffe_ca: SpiffeCa,
    /// One WIT (and EAR) issuer per signing key, in the order of `keys.all()`; [`Runtime::issuer`] picks the one
    /// active at the request's time, so a key scheduled ahead starts signing at its not-before without a reload.
    issuers: Vec<WitIssuer>,
    /// The challenge MAC keys (current, next and previous, by not-before).
    pub challenge: ChallengeKey,
    /// This verifier as a landmark (`[landmark_role]` enabled), with its statement key from the keys directory.
    pub landmark: Option<Arc<crate::proximity::Landmark>>,
}

impl Runtime {
    /// How long a superseded key stays in the JWKS: the longest credential lifetime plus skew.
    pub fn key_retention(&self) -> Duration {
        self.config.longest_ttl() + RETAIN_SKEW
    }

    /// The issuer signing with the key active at `now` (the same on every replica reading the same keys).
    pub fn issuer(&self, now: u64) -> &WitIssuer {
        // One issuer per key, and a key set is never empty.
        &self.issuers[self.keys.active_index(now)]
    }
}

/// Why a runtime could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    #[error("keys: {0}")]
    Keys(#[from] keys::KeyError),
    #[error("{0}")]
    Other(String),
}

/// Build a runtime from a validated config. `create_keys`: generate missing keys (first start) or only load.
pub fn build_runtime(cfg: Config, create_keys: bool) -> Result<Runtime, BuildError> {
    let mut anchors =
        TrustAnchors::pinned().map_err(|r| BuildError::Other(format!("trust anchors: {r}")))?;
    if cfg.trust.simulator {
        let dir =
            cfg.trust.simulator_pki.as_deref().ok_or_else(|| {
                BuildError::Other("trust.simulator needs trust.simulator_pki".into())
            })?;
        let roots = simulator_roots(dir);
        if roots.is_empty() {
            return Err(BuildError::Other(format!(
                "trust.simulator_pki {}: no self-signed root certificate found",
                dir.display()
            )));
        }
        anchors = anchors.danger_trust_simulator_roots(&roots);
    }
    let mut ccfg = CollateralConfig::with_state_dir(&cfg.server.state_dir);
    if let Some(u) = &cfg.trust.amd_kds_url {
        ccfg.amd_kds_url = u.clone();
    }
    if let Some(u) = &cfg.trust.intel_pcs_url {
        ccfg.intel_pcs_url = u.clone();
    }
    ccfg.pccs_url = cfg.trust.pccs_url.clone();
    ccfg.collateral_dir = cfg.trust.collateral_dir.clone();
    ccfg.offline = cfg.trust.offline;
    ccfg.fetch_concurrency = cfg.trust.fetch_concurrency;
    ccfg.new_platform_fetches_per_client = cfg.trust.new_platform_fetches_per_client;
    ccfg.new_platform_fetches_global = cfg.trust.new_platform_fetches_global;
    ccfg.cache_max_bytes = cfg.trust.cache_max_bytes;
    let collateral =
        Collateral::new(ccfg).map_err(|r| BuildError::Other(format!("collateral: {r}")))?;

    let endorsements = match &cfg.server.endorsements_dir {
        Some(dir) => {
            let (kept, dropped) = endorsement::load_dir(dir, &cfg.endorsers);
            for d in dropped {
                tracing::warn!(endorsement = %d, "location endorsement ignored");
            }
            kept
        }
        None => Vec::new(),
    };

    let dir = &cfg.server.keys_dir;
    let (keys, jwt_svid_keys, spiffe_ca) = if create_keys {
        (
            KeySet::ensure(dir)?,
            KeySet::ensure_kind(dir, KeyKind::JwtSvid)?,
            SpiffeCa::ensure(dir, &cfg.credentials.trust_domain, super::http::now_unix())?,
        )
    } else {
        (
            KeySet::load(dir)?,
            KeySet::load_kind(dir, KeyKind::JwtSvid)?,
            SpiffeCa::load(dir)?,
        )
    };
    let secrets = keys::load_challenge_keys(&cfg.server.keys_dir)?;
    let schedule: Vec<(u64, &[u8])> = secrets.iter().map(|(nb, s)| (*nb, s.as_slice())).collect();
    let challenge = ChallengeKey::with_schedule(&schedule)
        .map_err(|_| BuildError::Other("challenge key: random source failed".into()))?;
    let issuers = keys
        .all()
        .iter()
        .map(|k| {
            let key = k.to_owned_key()?;
            WitIssuer::new(key, Some(cfg.server.issuer.clone()))
                .map_err(|e| BuildError::Other(format!("WIT issuer: {e}")))
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    let landmark = match &cfg.landmark_role {
        Some(role) => {
            let key = keys::landmark_key(&cfg.server.keys_dir, create_keys)?;
            Some(Arc::new(crate::proximity::Landmark::new(key, role.clone())))
        }
        None => None,
    };
    Ok(Runtime {
        landmark,
        config: Arc::new(cfg),
        anchors,
        collateral: Arc::new(collateral),
        endorsements,
        keys,
        jwt_svid_keys,
        spiffe_ca,
        issuers,
        challenge,
    })
}

/// Every self-signed certificate (PEM or DER) under `dir` (depth ≤ 4): the simulator's AMD ARKs and Intel root as
/// written by `locus-sim pki export`.
pub fn simulator_roots(dir: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut stack: Vec<(PathBuf, usize)> = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if depth < 4 {
                    stack.push((p, depth + 1));
                }
                continue;
            }
            let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
            if !matches!(ext, "pem" | "der" | "crt" | "cer") {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let mut certs = crate::collateral::evidence::pem_certificates(&bytes);
            if certs.is_empty() && ext != "pem" {
                certs.push(bytes);
            }
            for der in certs {
                let Ok(cert) = x509_cert::Certificate::from_der(&der) else {
                    continue;
                };
                if cert.tbs_certificate.subject == cert.tbs_certificate.issuer
                    && !out.contains(&der)
                {
                    out.push(der);
                }
            }
        }
    }
    out
}

/// The service: the swappable runtime plus what is fixed for the process's life.
#[derive(Debug)]
pub struct Service {
    runtime: RwLock<Arc<Runtime>>,
    pub audit: AuditLog,
    pub metrics: Metrics,
    /// Requests in flight on `/v1/*`; when none is free the answer is 503 `overloaded` at once.
    pub requests: Arc<Semaphore>,
    /// The threads that run appraisals, decisions and signatures (`server.max_blocking` of them).
    pub cpu: super::cpu::CpuPool,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub ready: AtomicBool,
    /// Who we are in audit records.
    pub replica: String,
    /// Rate limit for log lines about requests refused before the nonce check (they are not audited).
    pub junk_log: super::http::LogLimiter,
    /// Per-client token buckets on /v1/* (fixed at start).
    pub admission: super::admission::Admission,
    /// Minimum body rate: a body's deadline is 2 s plus its length at this rate.
    pub body_min_bytes_per_sec: u64,
    /// `(subject, jti)` of the SVID requests seen while their `iat` window lasts (per replica).
    pub svid_replay: locus_wimse::ReplayCache,
}

impl Service {
    pub fn new(runtime: Runtime, audit: AuditLog) -> std::io::Result<Service> {
        let cfg = runtime.config.clone();
        let cpu = super::cpu::CpuPool::new(cfg.server.max_blocking, audit.producers())?;
        let replica = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| format!("pid-{}", std::process::id()));
        Ok(Service {
            runtime: RwLock::new(Arc::new(runtime)),
            audit,
            metrics: Metrics::default(),
            requests: Arc::new(Semaphore::new(cfg.server.max_concurrency)),
            cpu,
            request_timeout: cfg.server.request_timeout,
            max_body_bytes: cfg.server.max_body_bytes,
            ready: AtomicBool::new(true),
            replica,
            junk_log: Default::default(),
            admission: super::admission::Admission::new(
                cfg.server.rate_limit_per_second,
                cfg.server.rate_limit_burst,
                cfg.server.trusted_proxies.clone(),
            ),
            body_min_bytes_per_sec: cfg.server.body_min_bytes_per_sec,
            svid_replay: locus_wimse::ReplayCache::default(),
        })
    }

    /// The current runtime (cheap: an `Arc` clone).
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-read the config file and the keys directory; swap only if everything builds.
    pub fn reload(&self) -> Result<(), BuildError> {
        let current = self.runtime();
        let result = match &current.config.source {
            Some(path) => config::load(path)
                .map_err(BuildError::from)
                .and_then(|c| build_runtime(c, false)),
            None => build_runtime((*current.config).clone(), false),
        };
        match result {
            Ok(rt) => {
                // No clock here: which key is active is decided per request; log the newest and when it signs.
                let newest = rt.keys.all().last().map(|k| (k.kid.clone(), k.not_before));
                *self.runtime.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rt);
                self.metrics.reload(true);
                tracing::info!(newest_key = ?newest, "configuration reloaded");
                Ok(())
            }
            Err(e) => {
                self.metrics.reload(false);
                tracing::error!(error = %e, "reload failed; keeping the running configuration");
                Err(e)
            }
        }
    }

    /// Ready: not draining, and the audit log can be made durable (nothing can be issued otherwise).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.audit.is_healthy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulator_roots_are_the_self_signed_certificates_of_the_pki_export() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sim-pki");
        let roots = simulator_roots(&dir);
        // ARK-Milan, ARK-Genoa, ARK-Turin and the Intel root; ASKs and issuer chains' intermediates are not roots.
        assert_eq!(roots.len(), 4, "{} roots", roots.len());
        assert!(simulator_roots(Path::new("/nonexistent")).is_empty());
    }
}
