//! Validation of `verifier.toml`: [`raw`](super::raw) → [`model`](super::model).
//!
//! Flow: read the file → parse TOML into the `Raw*` structs (unknown keys are errors) → [`validate`] walks every
//! section and collects *every* problem it finds, so an operator fixes a bad file in one go → a [`Config`] whose
//! paths are absolute (relative ones resolved against the config file's directory), whose identifiers are parsed
//! [`WorkloadId`]s, whose reference values are bytes inside each workload's [`Policy`], and whose cross references
//! (platform → site, workload → zone) are known to hold. Filesystem facts (directories that must exist) are checked
//! last, in [`check_paths`], so the rest can be tested without a filesystem.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use locus_hw::snp::Product;
use locus_hw::TeeType;
use locus_wimse::{Alg, Scheme, WorkloadId};

use super::model::*;
use super::raw::*;
use crate::appraisal::policy::{
    self, check_current_tcb, check_statuses, parse_abi, parse_product, AttributesMask, CurrentTcb,
    MinTcb, SnpPolicy, TdxPolicy, SNP_TCB_STATUSES, TDX_TCB_STATUSES,
};
use crate::appraisal::Policy;
use crate::endorsement::{parse_public_key, Endorser};

/// Every problem found in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    pub path: Option<PathBuf>,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => writeln!(
                f,
                "invalid configuration {} ({} problem(s)):",
                p.display(),
                self.problems.len()
            )?,
            None => writeln!(
                f,
                "invalid configuration ({} problem(s)):",
                self.problems.len()
            )?,
        }
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Read, parse and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        path: Some(path.to_path_buf()),
        problems: vec![format!("cannot read {}: {e}", path.display())],
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let mut cfg = parse(&text, &base).map_err(|mut e| {
        e.path = Some(path.to_path_buf());
        e
    })?;
    cfg.source = Some(path.to_path_buf());
    Ok(cfg)
}

/// Parse and validate config text; relative paths are resolved against `base`.
pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigErrors> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigErrors {
        path: None,
        problems: vec![format!("TOML: {}", e.to_string().trim_end())],
    })?;
    validate(raw, base)
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn is_country(c: &str) -> bool {
    c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())
}

/// ISO 3166-2: `CC-XXX` with 1–3 alphanumeric subdivision characters.
fn is_region(r: &str, country: &str) -> bool {
    match r.split_once('-') {
        Some((c, sub)) => {
            c == country
                && (1..=3).contains(&sub.len())
                && sub
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        }
        None => false,
    }
}

fn decode_hex(problems: &mut Vec<String>, what: &str, s: &str, lens: &[usize]) -> Option<Vec<u8>> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        problems.push(format!("{what}: hex must be lowercase: {s:?}"));
        return None;
    }
    match hex::decode(s) {
        Ok(b) if lens.contains(&b.len()) => Some(b),
        Ok(b) => {
            problems.push(format!(
                "{what}: expected {} bytes of hex, got {}",
                lens.iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
                b.len()
            ));
            None
        }
        Err(e) => {
            problems.push(format!("{what}: not hex ({e}): {s:?}"));
            None
        }
    }
}

/// Lowercase hex of exactly `N` bytes per entry, decoded once at load.
fn hex_arrays<const N: usize>(
    problems: &mut Vec<String>,
    what: &str,
    list: &[String],
) -> Vec<[u8; N]> {
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let b = decode_hex(problems, &format!("{what}[{i}]"), s, &[N])?;
            b.try_into().ok()
        })
        .collect()
}

fn check_url(problems: &mut Vec<String>, what: &str, url: &Option<String>) {
    if let Some(u) = url {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            problems.push(format!("{what}: must be an http(s) URL, got {u:?}"));
        }
    }
}

/// One async worker per four CPUs, at least one. Appraisal and signing run on the `max_blocking` pool, so the async
/// side only parses HTTP and moves bytes (tens of microseconds per answer); a second worker on a small machine mostly
/// adds wake-ups between the two and preempts the pool more often.
fn default_async_workers(cpus: usize) -> usize {
    cpus.div_ceil(4).max(1)
}

fn check_ttl(problems: &mut Vec<String>, what: &str, secs: u64) -> Duration {
    if secs == 0 || Duration::from_secs(secs) > MAX_TTL {
        problems.push(format!(
            "{what}: must be between 1 and {} seconds, got {secs}",
            MAX_TTL.as_secs()
        ));
    }
    Duration::from_secs(secs)
}

/// Most collateral fetches in flight a config may ask for.
const MAX_FETCH_CONCURRENCY: usize = 1024;
/// Smallest on-disk collateral cache bound: 1 MiB (a few hundred items).
const MIN_CACHE_MAX_BYTES: u64 = 1024 * 1024;

/// The trust domain rules of docs/architecture.md#identifiers: lowercase DNS-like name, no port.
fn check_trust_domain(problems: &mut Vec<String>, td: &str) {
    let ok = !td.is_empty()
        && td.len() <= 255
        && td.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_'
        })
        && !td.starts_with('.')
        && !td.ends_with('.');
    if !ok {
        problems.push(format!(
            "credentials.trust_domain: {td:?} is not a lowercase trust domain name"
        ));
    }
}

/// Validate a raw config; returns every problem at once.
pub fn validate(raw: RawConfig, base: &Path) -> Result<Config, ConfigErrors> {
    let mut p: Vec<String> = Vec::new();

    // [server]
    let listen = match &raw.server.listen {
        Some(l) => match l.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                p.push(format!("server.listen: {l:?} is not an IP:port address"));
                None
            }
        },
        None => None,
    };
    if !(raw.server.issuer.starts_with("https://") || raw.server.issuer.starts_with("http://")) {
        p.push(format!(
            "server.issuer: must be an http(s) URL, got {:?}",
            raw.server.issuer
        ));
    }
    if raw.server.state_dir.trim().is_empty() {
        p.push("server.state_dir: must not be empty".into());
    }
    let state_dir = resolve(base, &raw.server.state_dir);
    let keys_dir = match raw.server.keys_dir.as_deref() {
        Some(d) => resolve(base, d),
        None => state_dir.join("keys"),
    };
    let audit = match raw.server.audit_log.as_deref() {
        Some("-") => AuditTarget::Stdout,
        Some(f) => AuditTarget::File(resolve(base, f)),
        None => AuditTarget::File(state_dir.join("audit.jsonl")),
    };
    let endorsements_dir = raw
        .server
        .endorsements_dir
        .as_deref()
        .map(|d| resolve(base, d));
    let challenge_ttl = raw
        .server
        .challenge_ttl
        .unwrap_or(DEFAULT_CHALLENGE_TTL.as_secs());
    if !(1..=3600).contains(&challenge_ttl) {
        p.push(format!(
            "server.challenge_ttl: must be between 1 and 3600 seconds, got {challenge_ttl}"
        ));
    }
    let max_body_bytes = raw.server.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
    if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
        p.push(format!(
            "server.max_body_bytes: must be between 1024 and 16777216, got {max_body_bytes}"
        ));
    }
    let max_concurrency = raw
        .server
        .max_concurrency
        .unwrap_or(DEFAULT_MAX_CONCURRENCY);
    if max_concurrency == 0 {
        p.push("server.max_concurrency: must be at least 1".into());
    }
    let default_blocking = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let max_blocking = raw.server.max_blocking.unwrap_or(default_blocking);
    if max_blocking == 0 {
        p.push("server.max_blocking: must be at least 1".into());
    }
    let async_workers = raw
        .server
        .async_workers
        .unwrap_or_else(|| default_async_workers(default_blocking));
    if async_workers == 0 {
        p.push("server.async_workers: must be at least 1".into());
    }
    let timeout_ms = raw
        .server
        .request_timeout_ms
        .unwrap_or(DEFAULT_REQUEST_TIMEOUT.as_millis() as u64);
    if timeout_ms == 0 {
        p.push("server.request_timeout_ms: must be at least 1".into());
    }

    let tls = match (&raw.server.tls_cert, &raw.server.tls_key) {
        (Some(c), Some(k)) => Some((resolve(base, c), resolve(base, k))),
        (None, None) => None,
        _ => {
            p.push("server.tls_cert and server.tls_key go together".into());
            None
        }
    };
    let header_read_timeout = Duration::from_millis(
        raw.server
            .header_read_timeout_ms
            .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT.as_millis() as u64),
    );
    let idle_timeout = Duration::from_secs(
        raw.server
            .idle_timeout_secs
            .unwrap_or(DEFAULT_IDLE_TIMEOUT.as_secs()),
    );
    if header_read_timeout.is_zero() || header_read_timeout > Duration::from_secs(30) {
        p.push("server.header_read_timeout_ms: must be between 1 and 30000".into());
    }
    if idle_timeout.is_zero() || idle_timeout > Duration::from_secs(300) {
        p.push("server.idle_timeout_secs: must be between 1 and 300".into());
    }
    let max_connections = raw
        .server
        .max_connections
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    let max_connections_per_client = raw
        .server
        .max_connections_per_client
        .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_CLIENT);
    if max_connections == 0 || max_connections_per_client == 0 {
        p.push("server.max_connections and max_connections_per_client: must be at least 1".into());
    }
    let body_min_bytes_per_sec = raw
        .server
        .body_min_bytes_per_sec
        .unwrap_or(DEFAULT_BODY_MIN_RATE);
    if body_min_bytes_per_sec == 0 {
        p.push("server.body_min_bytes_per_sec: must be at least 1".into());
    }
    let mut trusted_proxies = Vec::new();
    for (i, t) in raw.server.trusted_proxies.iter().enumerate() {
        match t.parse::<std::net::IpAddr>() {
            Ok(ip) => trusted_proxies.push(ip),
            Err(_) => p.push(format!(
                "server.trusted_proxies[{i}]: {t:?} is not an IP address"
            )),
        }
    }

    // [credentials]
    check_trust_domain(&mut p, &raw.credentials.trust_domain);
    let default_ttl = check_ttl(
        &mut p,
        "credentials.default_ttl",
        raw.credentials.default_ttl.unwrap_or(DEFAULT_TTL.as_secs()),
    );

    let ear_format = match raw.credentials.ear_format.as_deref() {
        None | Some("jwt") => EarFormat::Jwt,
        Some("cwt") => EarFormat::Cwt,
        Some(other) => {
            p.push(format!(
                "credentials.ear_format: {other:?} is not \"jwt\" or \"cwt\""
            ));
            EarFormat::Jwt
        }
    };

    // [trust]
    check_url(&mut p, "trust.amd_kds_url", &raw.trust.amd_kds_url);
    check_url(&mut p, "trust.intel_pcs_url", &raw.trust.intel_pcs_url);
    check_url(&mut p, "trust.pccs_url", &raw.trust.pccs_url);
    if raw.trust.intel_pcs_url.is_some() && raw.trust.pccs_url.is_some() {
        p.push("trust: set intel_pcs_url or pccs_url, not both".into());
    }
    let fetch_concurrency = raw
        .trust
        .fetch_concurrency
        .unwrap_or(crate::collateral::DEFAULT_FETCH_CONCURRENCY);
    if !(1..=MAX_FETCH_CONCURRENCY).contains(&fetch_concurrency) {
        p.push(format!(
            "trust.fetch_concurrency: must be between 1 and {MAX_FETCH_CONCURRENCY}, got {fetch_concurrency}"
        ));
    }
    let new_platform_fetches_per_client = raw
        .trust
        .new_platform_fetches_per_client
        .unwrap_or(crate::collateral::DEFAULT_NEW_PLATFORM_FETCHES_PER_CLIENT);
    let new_platform_fetches_global = raw
        .trust
        .new_platform_fetches_global
        .unwrap_or(crate::collateral::DEFAULT_NEW_PLATFORM_FETCHES_GLOBAL);
    let cache_max_bytes = raw
        .trust
        .cache_max_bytes
        .unwrap_or(crate::collateral::DEFAULT_CACHE_MAX_BYTES);
    if cache_max_bytes < MIN_CACHE_MAX_BYTES {
        p.push(format!(
            "trust.cache_max_bytes: must be at least {MIN_CACHE_MAX_BYTES} (1 MiB), got {cache_max_bytes}"
        ));
    }
    let collateral_dir = raw
        .trust
        .collateral_dir
        .as_deref()
        .map(|d| resolve(base, d));
    let simulator_pki = raw.trust.simulator_pki.as_deref().map(|d| resolve(base, d));
    if simulator_pki.is_none() && raw.trust.simulator {
        p.push("trust.simulator = true needs trust.simulator_pki (the `locus-sim pki export` directory)".into());
    }
    let tdx_allowed_tcb = statuses(
        &mut p,
        "trust.tdx_allowed_tcb",
        raw.trust.tdx_allowed_tcb.as_ref(),
        DEFAULT_TDX_ALLOWED,
        &TDX_TCB_STATUSES,
    );
    let snp_allowed_tcb = statuses(
        &mut p,
        "trust.snp_allowed_tcb",
        raw.trust.snp_allowed_tcb.as_ref(),
        DEFAULT_SNP_ALLOWED,
        &SNP_TCB_STATUSES,
    );
    let mut snp_current_tcb: BTreeMap<Product, CurrentTcb> = BTreeMap::new();
    for (name, tcb) in &raw.trust.snp_current_tcb {
        let what = format!("trust.snp_current_tcb.{name}");
        match parse_product(name) {
            Ok(product) => {
                if let Err(e) = check_current_tcb(product, tcb) {
                    p.push(format!("{what}: {e}"));
                }
                snp_current_tcb.insert(product, *tcb);
            }
            Err(e) => p.push(format!("{what}: {e}")),
        }
    }

    // [[site]]
    let mut sites = Vec::new();
    let mut site_names = BTreeSet::new();
    for (i, s) in raw.sites.iter().enumerate() {
        let what = format!("site[{i}] {:?}", s.name);
        if s.name.is_empty() {
            p.push(format!("{what}: name must not be empty"));
        }
        if !site_names.insert(s.name.clone()) {
            p.push(format!("{what}: duplicate site name"));
        }
        if !is_country(&s.country) {
            p.push(format!(
                "{what}: country {:?} is not an ISO 3166-1 alpha-2 code",
                s.country
            ));
        }
        if let Some(r) = &s.region {
            if !is_region(r, &s.country) {
                p.push(format!(
                    "{what}: region {r:?} is not an ISO 3166-2 code of country {:?}",
                    s.country
                ));
            }
        }
        if let Some([lat, lon]) = s.coordinates {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                p.push(format!("{what}: coordinates [{lat}, {lon}] out of range"));
            }
        }
        sites.push(Site {
            name: s.name.clone(),
            country: s.country.clone(),
            region: s.region.clone(),
            coordinates: s.coordinates,
        });
    }

    // [[platform]]
    let mut platforms = Vec::new();
    let mut platform_ids = BTreeMap::new();
    for (i, pl) in raw.platforms.iter().enumerate() {
        let what = format!("platform[{i}]");
        let tee = parse_tee(&mut p, &what, &pl.tee);
        let lens: &[usize] = match tee {
            Some(TeeType::SevSnp) => &[64],
            Some(TeeType::Tdx) => &[16],
            None => &[16, 64],
        };
        // A VLEK-signed SEV-SNP platform is identified by its cloud provider's cspID (docs/architecture.md#residency-and-the-geo-fence): `vlek:<cspID>`,
        // which names every host of that provider, so its entry must say `scope = "provider"`.
        let vlek = pl.id.strip_prefix("vlek:");
        let id = match (tee, vlek) {
            (Some(TeeType::SevSnp), Some(csp)) if !csp.is_empty() => Some(csp.as_bytes().to_vec()),
            (_, Some(_)) => {
                p.push(format!(
                    "{what}.id: `vlek:<cspID>` is only for sev-snp platforms and needs a cspID"
                ));
                None
            }
            _ => decode_hex(&mut p, &format!("{what}.id"), &pl.id, lens),
        };
        let scope = match (pl.scope.as_deref(), vlek.is_some()) {
            (None | Some("host"), false) => PlatformScope::Host,
            (Some("provider"), true) => PlatformScope::Provider,
            (None | Some("host"), true) => {
                p.push(format!(
                    "{what}: a `vlek:` identity names a cloud provider, not one host: set scope = \"provider\""
                ));
                PlatformScope::Provider
            }
            (Some("provider"), false) => {
                p.push(format!(
                    "{what}: scope = \"provider\" is only for a `vlek:<cspID>` identity; a chip id or PPID is one host"
                ));
                PlatformScope::Host
            }
            (Some(other), _) => {
                p.push(format!(
                    "{what}: scope {other:?} is not \"host\" or \"provider\""
                ));
                PlatformScope::Host
            }
        };
        if !site_names.contains(&pl.site) {
            p.push(format!(
                "{what}: site {:?} is not a configured [[site]]",
                pl.site
            ));
        }
        if let (Some(tee), Some(id)) = (tee, id) {
            if let Some(prev) = platform_ids.insert((tee.as_str(), id.clone()), i) {
                p.push(format!(
                    "{what}: same {tee} platform id as platform[{prev}]"
                ));
            }
            platforms.push(Platform {
                tee,
                id,
                site: pl.site.clone(),
                name: pl.name.clone(),
                scope,
            });
        }
    }

    // [[zone]]
    let mut zones = Vec::new();
    let mut zone_names = BTreeSet::new();
    for (i, z) in raw.zones.iter().enumerate() {
        let what = format!("zone[{i}] {:?}", z.name);
        if z.name.is_empty() {
            p.push(format!("{what}: name must not be empty"));
        }
        if !zone_names.insert(z.name.clone()) {
            p.push(format!("{what}: duplicate zone name"));
        }
        if z.countries.is_empty() {
            p.push(format!("{what}: must list at least one country"));
        }
        for c in &z.countries {
            if !is_country(c) {
                p.push(format!("{what}: {c:?} is not an ISO 3166-1 alpha-2 code"));
            }
        }
        zones.push(Zone {
            name: z.name.clone(),
            countries: z.countries.iter().cloned().collect(),
        });
    }

    // [[endorser]]
    let mut endorsers = Vec::new();
    let mut endorser_names = BTreeSet::new();
    for (i, e) in raw.endorsers.iter().enumerate() {
        let what = format!("endorser[{i}] {:?}", e.name);
        if !endorser_names.insert(e.name.clone()) {
            p.push(format!("{what}: duplicate endorser name"));
        }
        match parse_public_key(&e.public_key) {
            Ok(k) => endorsers.push(Endorser {
                name: e.name.clone(),
                public_key: k,
            }),
            Err(msg) => p.push(format!("{what}: public_key: {msg}")),
        }
    }

    // [[landmark]], [landmark_role], trust.proximity_max_age_secs
    let landmarks = super::proximity::trusted_landmarks(&mut p, &raw.landmarks, &sites);
    let landmark_role = super::proximity::landmark_role(&mut p, raw.landmark_role.as_ref(), &sites);
    let proximity_max_age =
        super::proximity::proximity_max_age(&mut p, raw.trust.proximity_max_age_secs);
    let landmark_names: BTreeSet<String> = raw.landmarks.iter().map(|l| l.name.clone()).collect();

    // [[workload]]
    let defaults = WorkloadDefaults {
        landmark_names: &landmark_names,
        trust_domain: &raw.credentials.trust_domain,
        default_ttl,
        tdx_allowed_tcb: &tdx_allowed_tcb,
        snp_allowed_tcb: &snp_allowed_tcb,
        snp_current_tcb: &snp_current_tcb,
        zone_names: &zone_names,
    };
    let mut workloads = Vec::new();
    let mut workload_ids = BTreeSet::new();
    for (i, w) in raw.workloads.iter().enumerate() {
        let what = format!("workload[{i}] {:?}", w.id);
        if !workload_ids.insert(w.id.clone()) {
            p.push(format!("{what}: duplicate workload id"));
        }
        if let Some(w) = workload(&mut p, &what, w, &defaults) {
            workloads.push(w);
        }
    }
    if raw.workloads.is_empty() {
        p.push("no [[workload]]: the verifier would refuse every request".into());
    }
    let defaults_marked: Vec<&str> = workloads
        .iter()
        .filter(|w| w.default)
        .map(|w| w.id.as_str())
        .collect();
    if defaults_marked.len() > 1 {
        p.push(format!(
            "more than one workload has default = true ({}): at most one may be chosen for requests naming none",
            defaults_marked.join(", ")
        ));
    }
    if workloads.iter().any(|w| w.tees.contains(&TeeType::SevSnp)) && snp_current_tcb.is_empty() {
        p.push(
            "SEV-SNP workloads are configured but no [trust.snp_current_tcb.<product>] is declared: every SNP report \
             would be tcb_not_supported"
                .into(),
        );
    }

    check_paths(
        &mut p,
        &[
            ("server.endorsements_dir", endorsements_dir.as_deref()),
            ("trust.collateral_dir", collateral_dir.as_deref()),
            ("trust.simulator_pki", simulator_pki.as_deref()),
        ],
    );

    if !p.is_empty() {
        return Err(ConfigErrors {
            path: None,
            problems: p,
        });
    }
    Ok(Config {
        source: None,
        server: ServerConfig {
            listen,
            issuer: raw.server.issuer,
            state_dir,
            keys_dir,
            audit,
            endorsements_dir,
            challenge_ttl: Duration::from_secs(challenge_ttl),
            max_body_bytes,
            max_concurrency,
            max_blocking,
            async_workers,
            request_timeout: Duration::from_millis(timeout_ms),
            key_rescan: match raw
                .server
                .key_rescan_secs
                .unwrap_or(DEFAULT_KEY_RESCAN.as_secs())
            {
                0 => None,
                s => Some(Duration::from_secs(s)),
            },
            tls,
            allow_plaintext: raw.server.allow_plaintext,
            header_read_timeout,
            idle_timeout,
            max_connections,
            max_connections_per_client,
            body_min_bytes_per_sec,
            rate_limit_per_second: raw
                .server
                .rate_limit_per_second
                .unwrap_or(DEFAULT_RATE_LIMIT_PER_SECOND),
            rate_limit_burst: raw
                .server
                .rate_limit_burst
                .unwrap_or(DEFAULT_RATE_LIMIT_BURST),
            trusted_proxies,
        },
        credentials: CredentialsConfig {
            trust_domain: raw.credentials.trust_domain,
            default_ttl,
            ear: raw.credentials.ear.unwrap_or(true),
            ear_format,
        },
        trust: TrustConfig {
            simulator: raw.trust.simulator,
            simulator_pki,
            amd_kds_url: raw.trust.amd_kds_url,
            intel_pcs_url: raw.trust.intel_pcs_url,
            pccs_url: raw.trust.pccs_url,
            collateral_dir,
            offline: raw.trust.offline,
            fetch_concurrency,
            new_platform_fetches_per_client,
            new_platform_fetches_global,
            cache_max_bytes,
            proximity_max_age,
        },
        sites,
        platforms,
        zones,
        endorsers,
        workloads,
        landmarks,
        landmark_role,
    })
}

/// Directories the config names must exist (the one filesystem check of validation).
pub fn check_paths(problems: &mut Vec<String>, dirs: &[(&str, Option<&Path>)]) {
    for (what, dir) in dirs {
        if let Some(d) = dir {
            if !d.is_dir() {
                problems.push(format!("{what}: {} is not a directory", d.display()));
            }
        }
    }
}

/// What every workload inherits from the rest of the config.
struct WorkloadDefaults<'a> {
    trust_domain: &'a str,
    default_ttl: Duration,
    tdx_allowed_tcb: &'a [String],
    snp_allowed_tcb: &'a [String],
    snp_current_tcb: &'a BTreeMap<Product, CurrentTcb>,
    zone_names: &'a BTreeSet<String>,
    landmark_names: &'a BTreeSet<String>,
}

fn parse_tee(p: &mut Vec<String>, what: &str, text: &str) -> Option<TeeType> {
    match text.parse::<TeeType>() {
        Ok(t) => Some(t),
        Err(_) => {
            p.push(format!(
                "{what}: tee {text:?} is not \"sev-snp\" or \"tdx\""
            ));
            None
        }
    }
}

fn statuses(
    p: &mut Vec<String>,
    what: &str,
    list: Option<&Vec<String>>,
    default: &[&str],
    known: &[&str],
) -> Vec<String> {
    match list {
        Some(list) => {
            if let Err(e) = check_statuses(what, list, known) {
                p.push(e);
            }
            list.clone()
        }
        None => default.iter().map(|s| s.to_string()).collect(),
    }
}

fn min_tcb(raw: &RawMinTcb) -> MinTcb {
    MinTcb {
        fmc: raw.fmc,
        bootloader: Some(raw.bootloader),
        tee: Some(raw.tee),
        snp: Some(raw.snp),
        microcode: Some(raw.microcode),
    }
}

/// Validate one `[[workload]]` into its model, its selectors into the workload's [`Policy`].
fn workload(
    p: &mut Vec<String>,
    what: &str,
    w: &RawWorkload,
    d: &WorkloadDefaults<'_>,
) -> Option<Workload> {
    let id = match WorkloadId::parse(&w.id) {
        Ok(id) if id.trust_domain_str() == d.trust_domain => Some(id),
        Ok(id) => {
            p.push(format!(
                "{what}: id: trust domain {:?} is not the configured {:?}",
                id.trust_domain_str(),
                d.trust_domain
            ));
            None
        }
        Err(e) => {
            p.push(format!("{what}: id: {e}"));
            None
        }
    };
    let mut tees = Vec::new();
    if w.tee.is_empty() {
        p.push(format!("{what}: tee must list \"sev-snp\" and/or \"tdx\""));
    }
    for t in &w.tee {
        if let Some(t) = parse_tee(p, what, t) {
            tees.push(t);
        }
    }
    let admits_snp = tees.contains(&TeeType::SevSnp);
    let admits_tdx = tees.contains(&TeeType::Tdx);
    // A workload must pin the measurement of every TEE it admits: an empty selector would admit any image.
    let empty_snp = RawSnpSelector::default();
    let s = w.sev_snp.as_ref().unwrap_or(&empty_snp);
    if admits_snp && s.measurement.is_empty() {
        p.push(format!(
            "{what}: admits sev-snp but [workload.sev-snp] lists no measurement"
        ));
    }
    if w.sev_snp.is_some() && !admits_snp {
        p.push(format!(
            "{what}: has a sev-snp selector but tee does not list \"sev-snp\""
        ));
    }
    let empty_tdx = RawTdxSelector::default();
    let t = w.tdx.as_ref().unwrap_or(&empty_tdx);
    if admits_tdx && t.mr_td.is_empty() {
        p.push(format!(
            "{what}: admits tdx but [workload.tdx] lists no mr_td"
        ));
    }
    if w.tdx.is_some() && !admits_tdx {
        p.push(format!(
            "{what}: has a tdx selector but tee does not list \"tdx\""
        ));
    }
    let measurement_scope = match w.measurement_scope.as_deref() {
        None | Some("full") => MeasurementScope::Full,
        Some("firmware") => MeasurementScope::Firmware,
        Some(other) => {
            p.push(format!(
                "{what}: measurement_scope {other:?} is not \"full\" or \"firmware\""
            ));
            MeasurementScope::Full
        }
    };
    if w.measurement_scope.is_some() && !admits_tdx {
        p.push(format!(
            "{what}: measurement_scope applies to tdx workloads only"
        ));
    }
    // docs/architecture.md#appraisal: MRTD alone is the firmware; the kernel and command line are in RTMR1/RTMR2.
    if admits_tdx
        && t.rtmr1.is_empty()
        && t.rtmr2.is_empty()
        && measurement_scope != MeasurementScope::Firmware
    {
        p.push(format!(
            "{what}: admits tdx but pins neither rtmr1 nor rtmr2 (kernel, command line): pin them, or declare \
             measurement_scope = \"firmware\" to accept any kernel (the WIT then says so)"
        ));
    }
    let snp_allowed_tcb = statuses(
        p,
        &format!("{what}.snp_allowed_tcb"),
        w.snp_allowed_tcb.as_ref(),
        &d.snp_allowed_tcb
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &SNP_TCB_STATUSES,
    );
    let tdx_allowed_tcb = statuses(
        p,
        &format!("{what}.tdx_allowed_tcb"),
        w.tdx_allowed_tcb.as_ref(),
        &d.tdx_allowed_tcb
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &TDX_TCB_STATUSES,
    );
    let mut min_tcb_by_product = BTreeMap::new();
    for (name, tcb) in &w.min_tcb_by_product {
        match parse_product(name) {
            Ok(product) => {
                min_tcb_by_product.insert(product, min_tcb(tcb));
            }
            Err(e) => p.push(format!("{what}.min_tcb_by_product.{name}: {e}")),
        }
    }
    let min_abi = match s.min_policy_abi.as_deref().map(parse_abi) {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            p.push(format!("{what}.sev-snp.min_policy_abi: {e}"));
            None
        }
        None => None,
    };
    let vmpl = s.vmpl.clone().unwrap_or_else(|| vec![0]);
    if vmpl.is_empty() || vmpl.iter().any(|v| *v > 3) {
        p.push(format!(
            "{what}.sev-snp.vmpl: must list VMPLs between 0 and 3, got {vmpl:?}"
        ));
    }
    let td_attributes = match (&t.td_attributes_mask, &t.td_attributes_value) {
        (None, None) => None,
        (Some(mask), Some(value)) => {
            match (policy::hex_array::<8>(mask), policy::hex_array::<8>(value)) {
                (Ok(mask), Ok(value)) => Some(AttributesMask {
                    mask: u64::from_be_bytes(mask),
                    value: u64::from_be_bytes(value),
                }),
                (Err(e), _) | (_, Err(e)) => {
                    p.push(format!("{what}.tdx.td_attributes_mask/value: {e}"));
                    None
                }
            }
        }
        _ => {
            p.push(format!(
                "{what}.tdx: td_attributes_mask and td_attributes_value go together"
            ));
            None
        }
    };
    let key_algorithms = match &w.key_algorithms {
        None => vec![Alg::Es256],
        Some(list) => {
            let mut out = Vec::new();
            if list.is_empty() {
                p.push(format!(
                    "{what}.key_algorithms: must name at least one algorithm"
                ));
            }
            for name in list {
                match name.as_str() {
                    "ES256" => out.push(Alg::Es256),
                    "ES384" => out.push(Alg::Es384),
                    "EdDSA" => out.push(Alg::EdDsa),
                    other => p.push(format!(
                        "{what}.key_algorithms: {other:?} is not ES256, ES384 or EdDSA"
                    )),
                }
            }
            out
        }
    };
    if let Some(id) = &id {
        if id.scheme() == Scheme::Spiffe && key_algorithms.contains(&Alg::EdDsa) {
            p.push(format!(
                "{what}.key_algorithms: EdDSA is excluded by the WIT-SVID profile for a spiffe:// subject"
            ));
        }
    }
    let residency = match w.residency.as_deref() {
        None | Some("required") => ResidencyRequirement::Required,
        Some("optional") => ResidencyRequirement::Optional,
        Some(other) => {
            p.push(format!(
                "{what}: residency {other:?} is not \"required\" or \"optional\""
            ));
            ResidencyRequirement::Required
        }
    };
    let geofence = match &w.geofence {
        Some(g) => {
            if g.zones.is_empty() && g.countries.is_empty() && g.within.is_empty() {
                p.push(format!(
                    "{what}: geofence must list zones, countries or within bounds (omit it for no fence)"
                ));
            }
            for b in &g.within {
                if !d.landmark_names.contains(&b.landmark) {
                    p.push(format!(
                        "{what}: geofence within landmark {:?} is not a configured [[landmark]]",
                        b.landmark
                    ));
                }
                if b.km == 0 || b.km > 20_038 {
                    p.push(format!(
                        "{what}: geofence within km must be between 1 and 20038 (half the equator), got {}",
                        b.km
                    ));
                }
            }
            for z in &g.zones {
                if !d.zone_names.contains(z) {
                    p.push(format!(
                        "{what}: geofence zone {z:?} is not a configured [[zone]]"
                    ));
                }
            }
            for c in &g.countries {
                if !is_country(c) {
                    p.push(format!(
                        "{what}: geofence country {c:?} is not an ISO 3166-1 alpha-2 code"
                    ));
                }
            }
            Some(Geofence {
                zones: g.zones.clone(),
                countries: g.countries.clone(),
                within: g
                    .within
                    .iter()
                    .map(|b| Within {
                        landmark: b.landmark.clone(),
                        km: b.km,
                    })
                    .collect(),
            })
        }
        None => None,
    };
    if geofence.is_some() && residency == ResidencyRequirement::Optional {
        p.push(format!(
            "{what}: a geo-fenced workload cannot have residency = \"optional\" (the fence needs a location)"
        ));
    }
    let ttl = match w.ttl {
        Some(t) => check_ttl(p, &format!("{what}.ttl"), t),
        None => d.default_ttl,
    };
    let policy = Policy {
        allow_debug: w.allow_debug,
        allow_migration: w.allow_migration,
        allow_service_td: w.allow_service_td,
        require_revocation: true,
        snp: SnpPolicy {
            allowed_vmpl: vmpl,
            current_tcb: d.snp_current_tcb.clone(),
            allowed_tcb: snp_allowed_tcb,
            min_tcb: w.min_tcb.as_ref().map(min_tcb),
            min_tcb_by_product,
            measurement: hex_arrays(p, &format!("{what}.sev-snp.measurement"), &s.measurement),
            host_data: hex_arrays(p, &format!("{what}.sev-snp.host_data"), &s.host_data),
            id_key_digest: hex_arrays(
                p,
                &format!("{what}.sev-snp.id_key_digest"),
                &s.id_key_digest,
            ),
            author_key_digest: hex_arrays(
                p,
                &format!("{what}.sev-snp.author_key_digest"),
                &s.author_key_digest,
            ),
            family_id: hex_arrays(p, &format!("{what}.sev-snp.family_id"), &s.family_id),
            image_id: hex_arrays(p, &format!("{what}.sev-snp.image_id"), &s.image_id),
            min_guest_svn: s.min_guest_svn,
            min_abi,
            require_smt_disabled: s.require_smt_disabled,
            require_tsme: s.require_tsme,
            require_alias_check: s.require_alias_check,
        },
        tdx: TdxPolicy {
            allowed_tcb: tdx_allowed_tcb,
            mr_td: hex_arrays(p, &format!("{what}.tdx.mr_td"), &t.mr_td),
            rtmr: [
                hex_arrays(p, &format!("{what}.tdx.rtmr0"), &t.rtmr0),
                hex_arrays(p, &format!("{what}.tdx.rtmr1"), &t.rtmr1),
                hex_arrays(p, &format!("{what}.tdx.rtmr2"), &t.rtmr2),
                hex_arrays(p, &format!("{what}.tdx.rtmr3"), &t.rtmr3),
            ],
            mr_config_id: hex_arrays(p, &format!("{what}.tdx.mr_config_id"), &t.mr_config_id),
            mr_owner: hex_arrays(p, &format!("{what}.tdx.mr_owner"), &t.mr_owner),
            mr_owner_config: hex_arrays(
                p,
                &format!("{what}.tdx.mr_owner_config"),
                &t.mr_owner_config,
            ),
            xfam: hex_arrays(p, &format!("{what}.tdx.xfam"), &t.xfam),
            td_attributes,
            pck_sgx_type: t.pck_sgx_type.clone(),
            pck_dynamic_platform: t.pck_dynamic_platform,
            pck_cached_keys: t.pck_cached_keys,
            pck_smt_enabled: t.pck_smt_enabled,
        },
    };
    Some(Workload {
        id: id?,
        tees,
        policy,
        geofence,
        ttl,
        residency,
        measurement_scope,
        default: w.default,
        key_algorithms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEAS: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f";

    fn good() -> String {
        format!(
            r#"
[server]
issuer = "https://verifier.locus.example"
state_dir = "state"
[credentials]
trust_domain = "locus.example"
[[site]]
name = "fra-1"
country = "DE"
region = "DE-HE"
[[zone]]
name = "eu"
countries = ["DE", "FR"]
[[platform]]
tee = "tdx"
id = "00112233445566778899aabbccddeeff"
site = "fra-1"
[trust.snp_current_tcb.milan]
bootloader = 3
tee = 0
snp = 8
microcode = 115
[[workload]]
id = "spiffe://locus.example/model-server"
tee = ["sev-snp"]
geofence = {{ zones = ["eu"] }}
[workload.sev-snp]
measurement = ["{MEAS}"]
"#
        )
    }

    #[test]
    fn a_good_config_validates_and_resolves_paths_against_the_config_dir() {
        let cfg = parse(&good(), Path::new("/etc/locus")).expect("valid");
        assert_eq!(cfg.server.state_dir, PathBuf::from("/etc/locus/state"));
        assert_eq!(
            cfg.server.audit,
            AuditTarget::File(PathBuf::from("/etc/locus/state/audit.jsonl"))
        );
        assert_eq!(
            cfg.workloads[0].policy.tdx.allowed_tcb,
            vec!["UpToDate".to_string()]
        );
        assert_eq!(
            cfg.workloads[0].policy.snp.allowed_tcb,
            vec!["UpToDate".to_string()]
        );
        assert_eq!(cfg.workloads[0].residency, ResidencyRequirement::Required);
        assert_eq!(cfg.workloads[0].key_algorithms, vec![Alg::Es256]);
        assert_eq!(cfg.workloads[0].ttl, DEFAULT_TTL);
        assert_eq!(cfg.zones_of("DE"), vec!["eu".to_string()]);
        assert!(cfg.zones_of("US").is_empty());
    }

    #[test]
    fn async_workers_default_to_one_per_four_cpus_and_zero_is_refused() {
        assert_eq!(default_async_workers(1), 1);
        assert_eq!(default_async_workers(2), 1);
        assert_eq!(default_async_workers(4), 1);
        assert_eq!(default_async_workers(8), 2);
        assert_eq!(default_async_workers(64), 16);
        let cfg = parse(&good(), Path::new("/")).expect("valid");
        let cpus = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2);
        assert_eq!(cfg.server.async_workers, default_async_workers(cpus));
        let set = good().replace("[server]\n", "[server]\nasync_workers = 3\n");
        assert_eq!(
            parse(&set, Path::new("/"))
                .expect("valid")
                .server
                .async_workers,
            3
        );
        let zero = good().replace("[server]\n", "[server]\nasync_workers = 0\n");
        let err = parse(&zero, Path::new("/")).expect_err("zero workers");
        assert!(
            err.problems
                .iter()
                .any(|p| p == "server.async_workers: must be at least 1"),
            "{:?}",
            err.problems
        );
    }

    #[test]
    fn validation_lists_every_problem_not_just_the_first() {
        let text = good()
            .replace("country = \"DE\"", "country = \"Germany\"")
            .replace("site = \"fra-1\"", "site = \"nowhere\"")
            .replace("zones = [\"eu\"]", "zones = [\"mars\"]")
            .replace("tee = [\"sev-snp\"]", "tee = [\"sgx\", \"sev-snp\"]");
        let err = parse(&text, Path::new(".")).expect_err("invalid");
        let all = err.problems.join("\n");
        assert!(all.contains("Germany"), "{all}");
        assert!(all.contains("nowhere"), "{all}");
        assert!(all.contains("mars"), "{all}");
        assert!(all.contains("sgx"), "{all}");
        assert!(err.problems.len() >= 4, "{all}");
    }

    #[test]
    fn collateral_fetch_bounds_default_and_are_read_from_trust() {
        let cfg = parse(&good(), Path::new("/")).expect("valid");
        assert_eq!(cfg.trust.fetch_concurrency, 8);
        assert_eq!(cfg.trust.new_platform_fetches_per_client, 10);
        assert_eq!(cfg.trust.new_platform_fetches_global, 120);
        assert_eq!(cfg.trust.cache_max_bytes, 256 * 1024 * 1024);
        let text = good().replace(
            "[trust.snp_current_tcb.milan]",
            "[trust]\nfetch_concurrency = 2\nnew_platform_fetches_per_client = 0\nnew_platform_fetches_global = 5\n\
             cache_max_bytes = 2097152\n[trust.snp_current_tcb.milan]",
        );
        let cfg = parse(&text, Path::new("/")).expect("valid");
        assert_eq!(
            (
                cfg.trust.fetch_concurrency,
                cfg.trust.new_platform_fetches_per_client,
                cfg.trust.new_platform_fetches_global,
                cfg.trust.cache_max_bytes
            ),
            (2, 0, 5, 2_097_152)
        );
    }

    #[test]
    fn collateral_fetch_bounds_out_of_range_are_refused() {
        let text = good().replace(
            "[trust.snp_current_tcb.milan]",
            "[trust]\nfetch_concurrency = 0\ncache_max_bytes = 1000\n[trust.snp_current_tcb.milan]",
        );
        let err = parse(&text, Path::new("/")).expect_err("invalid");
        let all = err.problems.join("\n");
        assert!(all.contains("trust.fetch_concurrency"), "{all}");
        assert!(all.contains("trust.cache_max_bytes"), "{all}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = good().replace("[credentials]", "[credentials]\ntrust_domian = \"x\"");
        let err = parse(&text, Path::new(".")).expect_err("invalid");
        assert!(err.problems[0].contains("trust_domian"), "{err}");
    }

    #[test]
    fn a_workload_without_reference_values_is_refused() {
        let text = good().replace(&format!("measurement = [\"{MEAS}\"]"), "measurement = []");
        let err = parse(&text, Path::new(".")).expect_err("invalid");
        assert!(err.to_string().contains("lists no measurement"), "{err}");
    }

    #[test]
    fn a_workload_outside_the_trust_domain_is_refused() {
        let text = good().replace(
            "spiffe://locus.example/model-server",
            "spiffe://other.example/x",
        );
        let err = parse(&text, Path::new(".")).expect_err("invalid");
        assert!(err.to_string().contains("trust domain"), "{err}");
    }

    #[test]
    fn workload_ids_are_parsed_once_into_workload_ids_under_design_section_6() {
        let cfg = parse(&good(), Path::new("/")).expect("valid");
        assert_eq!(
            cfg.workloads[0].id.as_str(),
            "spiffe://locus.example/model-server"
        );
        for bad in [
            "spiffe://locus.example/a/",
            "spiffe://locus.example//a",
            "spiffe://locus.example/./a",
            "spiffe://locus.example:443/a",
            "spiffe://u@locus.example/a",
            "spiffe://locus.example/a?q",
            "spiffe://Locus.example/a",
            "https://locus.example/a",
        ] {
            let text = good().replace("spiffe://locus.example/model-server", bad);
            let err = parse(&text, Path::new("/")).expect_err(bad);
            assert!(err.to_string().contains("id:"), "{bad}: {err}");
        }
    }

    #[test]
    fn vlek_platforms_are_registered_by_csp_id_and_only_for_snp() {
        let text = good().replace(
            "tee = \"tdx\"\nid = \"00112233445566778899aabbccddeeff\"",
            "tee = \"sev-snp\"\nid = \"vlek:ExampleCloud\"\nscope = \"provider\"",
        );
        let cfg = parse(&text, Path::new(".")).expect("valid");
        assert_eq!(cfg.platforms[0].id, b"ExampleCloud".to_vec());
        assert_eq!(cfg.platforms[0].scope, PlatformScope::Provider);
        let host = good().replace(
            "tee = \"tdx\"\nid = \"00112233445566778899aabbccddeeff\"",
            "tee = \"sev-snp\"\nid = \"vlek:ExampleCloud\"",
        );
        let err = parse(&host, Path::new(".")).expect_err("a VLEK identity is a provider");
        assert!(err.to_string().contains("scope = \"provider\""), "{err}");
        let text = good().replace(
            "id = \"00112233445566778899aabbccddeeff\"",
            "id = \"vlek:ExampleCloud\"",
        );
        let err = parse(&text, Path::new(".")).expect_err("tdx has no VLEK");
        assert!(err.to_string().contains("only for sev-snp"), "{err}");
    }

    #[test]
    fn simulator_trust_needs_the_simulator_pki_dir() {
        let text = good().replace("[trust.snp", "[trust]\nsimulator = true\n[trust.snp");
        let err = parse(&text, Path::new(".")).expect_err("invalid");
        assert!(err.to_string().contains("simulator_pki"), "{err}");
    }
}

#[cfg(test)]
mod workload_rules {
    use super::*;

    const M: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f";

    fn cfg(workloads: &str, trust: &str) -> Result<Config, ConfigErrors> {
        parse(
            &format!(
                "[server]\nissuer = \"https://v.example\"\nstate_dir = \"s\"\n[credentials]\ntrust_domain = \"locus.example\"\n{trust}\n{workloads}"
            ),
            Path::new("/"),
        )
    }

    const MILAN: &str =
        "[trust.snp_current_tcb.milan]\nbootloader = 3\ntee = 0\nsnp = 8\nmicrocode = 115\n";

    fn problems(r: Result<Config, ConfigErrors>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn a_tdx_workload_pinning_only_mr_td_is_refused_unless_its_scope_is_firmware() {
        let w = format!("[[workload]]\nid = \"spiffe://locus.example/t\"\ntee = [\"tdx\"]\n[workload.tdx]\nmr_td = [\"{M}\"]\n");
        assert!(problems(cfg(&w, "")).contains("pins neither rtmr1 nor rtmr2"));
        let fw = w.replace(
            "tee = [\"tdx\"]",
            "tee = [\"tdx\"]\nmeasurement_scope = \"firmware\"",
        );
        let c = cfg(&fw, "").expect("firmware scope is valid");
        assert_eq!(c.workloads[0].measurement_scope, MeasurementScope::Firmware);
        let pinned = format!("{w}rtmr1 = [\"{M}\"]\n");
        assert_eq!(
            cfg(&pinned, "").expect("valid").workloads[0].measurement_scope,
            MeasurementScope::Full
        );
    }

    #[test]
    fn snp_workloads_without_any_declared_current_tcb_are_refused() {
        let w = format!("[[workload]]\nid = \"spiffe://locus.example/s\"\ntee = [\"sev-snp\"]\nresidency = \"optional\"\n[workload.sev-snp]\nmeasurement = [\"{M}\"]\n");
        assert!(problems(cfg(&w, "")).contains("snp_current_tcb"));
        let c = cfg(&w, MILAN).expect("valid");
        assert!(c.workloads[0]
            .policy
            .snp
            .current_tcb
            .contains_key(&Product::Milan));
        assert!(problems(cfg(&w, &MILAN.replace("milan", "venice"))).contains("venice"));
        assert!(problems(cfg(&w, &MILAN.replace("milan", "turin"))).contains("fmc is required"));
    }

    #[test]
    fn eddsa_confirmation_keys_are_refused_for_spiffe_subjects_and_two_defaults_are_refused() {
        let w = format!("[[workload]]\nid = \"spiffe://locus.example/s\"\ntee = [\"sev-snp\"]\nkey_algorithms = [\"EdDSA\"]\n[workload.sev-snp]\nmeasurement = [\"{M}\"]\n");
        assert!(problems(cfg(&w, MILAN)).contains("WIT-SVID"));
        let wimse = w.replace("spiffe://", "wimse://");
        assert_eq!(
            cfg(&wimse, MILAN).expect("valid").workloads[0].key_algorithms,
            vec![Alg::EdDsa]
        );
        let one = format!("[[workload]]\nid = \"spiffe://locus.example/a\"\ntee = [\"sev-snp\"]\ndefault = true\n[workload.sev-snp]\nmeasurement = [\"{M}\"]\n");
        let two = format!("{one}{}", one.replace("/a\"", "/b\""));
        assert!(problems(cfg(&two, MILAN)).contains("more than one workload has default = true"));
    }

    #[test]
    fn proximity_keys_are_validated_with_a_message_each() {
        let key = r#"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"#;
        let w = format!(
            "[[workload]]\nid = \"spiffe://locus.example/s\"\ntee = [\"sev-snp\"]\ngeofence = {{ within = [{{ landmark = \"nowhere\", km = 0 }}] }}\n[workload.sev-snp]\nmeasurement = [\"{M}\"]\n"
        );
        let lm = format!(
            "[[site]]\nname = \"bare\"\ncountry = \"FR\"\n\
             [[landmark]]\nname = \"a\"\nurl = \"ftp://x\"\nsite = \"bare\"\npublic_key = \"{key}\"\n\
             [[landmark]]\nname = \"a\"\nurl = \"https://x\"\nsite = \"nosuch\"\npublic_key = \"not a key\"\n\
             [landmark_role]\nenabled = true\nsite = \"bare\"\nrounds = 0\nround_timeout_ms = 0\nmax_sessions = 0\n"
        );
        let all = problems(cfg(
            &format!("{w}{lm}"),
            &format!("[trust]\nproximity_max_age_secs = 0\n{MILAN}"),
        ));
        for needle in [
            "geofence within landmark \"nowhere\" is not a configured [[landmark]]",
            "geofence within km must be between 1 and 20038",
            "url must be an http(s) base URL",
            "site \"bare\" has no coordinates",
            "duplicate landmark name",
            "site \"nosuch\" is not a configured [[site]]",
            "public_key:",
            "landmark_role.rounds",
            "landmark_role.round_timeout_ms",
            "landmark_role.max_sessions",
            "trust.proximity_max_age_secs",
        ] {
            assert!(all.contains(needle), "{needle}: {all}");
        }
    }

    #[test]
    fn new_keys_are_validated_with_a_message_each() {
        let w = format!(
            "[[workload]]\nid = \"spiffe://locus.example/s\"\ntee = [\"sev-snp\"]\nresidency = \"sometimes\"\n[workload.sev-snp]\nmeasurement = [\"{M}\"]\nmin_policy_abi = \"x\"\nvmpl = [7]\nfamily_id = [\"00\"]\n"
        );
        let all = problems(cfg(&w, MILAN));
        for needle in ["residency", "min_policy_abi", "vmpl", "family_id"] {
            assert!(all.contains(needle), "{needle}: {all}");
        }
    }
}
