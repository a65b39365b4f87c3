//! `verifier.toml` (DESIGN §8): the raw TOML shape, and its validation into a [`Config`] the service runs on.
//!
//! Flow: read the file → parse TOML into the `Raw*` structs (unknown keys are errors) → [`validate`] walks every
//! section and collects *every* problem it finds, so an operator fixes a bad file in one go → a [`Config`] whose
//! paths are absolute (relative ones are resolved against the config file's directory), whose hex values are bytes,
//! and whose cross references (platform → site, workload → zone) are known to hold.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The TEE a platform or workload selector is about. Spelled as on the wire (`sev-snp`, `tdx`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
pub enum Tee {
    #[serde(rename = "sev-snp")]
    SevSnp,
    #[serde(rename = "tdx")]
    Tdx,
}

impl Tee {
    pub fn as_str(self) -> &'static str {
        match self {
            Tee::SevSnp => "sev-snp",
            Tee::Tdx => "tdx",
        }
    }

    pub fn parse(s: &str) -> Option<Tee> {
        match s {
            "sev-snp" => Some(Tee::SevSnp),
            "tdx" => Some(Tee::Tdx),
            _ => None,
        }
    }
}

impl fmt::Display for Tee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Raw TOML shape
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub credentials: RawCredentials,
    #[serde(default)]
    pub trust: RawTrust,
    #[serde(default, rename = "site")]
    pub sites: Vec<RawSite>,
    #[serde(default, rename = "platform")]
    pub platforms: Vec<RawPlatform>,
    #[serde(default, rename = "zone")]
    pub zones: Vec<RawZone>,
    #[serde(default, rename = "endorser")]
    pub endorsers: Vec<RawEndorser>,
    #[serde(default, rename = "workload")]
    pub workloads: Vec<RawWorkload>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub issuer: String,
    pub state_dir: String,
    /// Shared secrets (challenge MAC key, signing keys). Default: `<state_dir>/keys`. In Kubernetes, the Secret mount.
    pub keys_dir: Option<String>,
    /// Audit log file; `-` for stdout. Default: `<state_dir>/audit.jsonl`.
    pub audit_log: Option<String>,
    /// Directory of COSE_Sign1 location endorsements (`*.cose`) loaded at start and reload.
    pub endorsements_dir: Option<String>,
    pub challenge_ttl: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub max_concurrency: Option<usize>,
    pub max_blocking: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    /// How often to look for changed key files (rotation, an updated Secret) and reload, seconds; 0 = only on SIGHUP.
    pub key_rescan_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentials {
    pub trust_domain: String,
    pub default_ttl: Option<u64>,
    /// Also issue an EAR beside the WIT (default true).
    pub ear: Option<bool>,
    /// `jwt` (default, `application/eat+jwt`) or `cwt` (`application/eat+cwt`, base64url in the answer).
    pub ear_format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrust {
    #[serde(default)]
    pub simulator: bool,
    /// Directory written by `locus-sim pki export`; its roots are trusted only when `simulator = true`.
    pub simulator_pki: Option<String>,
    pub amd_kds_url: Option<String>,
    pub intel_pcs_url: Option<String>,
    pub pccs_url: Option<String>,
    pub collateral_dir: Option<String>,
    /// Never fetch collateral from the network: shipped certificates, `collateral_dir` and the cache only.
    #[serde(default)]
    pub offline: bool,
    pub tdx_allowed_tcb: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub name: String,
    pub country: String,
    pub region: Option<String>,
    pub coordinates: Option<[f64; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlatform {
    pub tee: String,
    pub id: String,
    pub site: String,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub name: String,
    pub countries: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndorser {
    pub name: String,
    /// PEM `PUBLIC KEY` (SPKI, P-256) or a JWK JSON object (`kty` EC, `crv` P-256).
    pub public_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub id: String,
    pub tee: Vec<String>,
    #[serde(rename = "sev-snp")]
    pub sev_snp: Option<RawSnpSelector>,
    pub tdx: Option<RawTdxSelector>,
    pub min_tcb: Option<RawMinTcb>,
    #[serde(default)]
    pub allow_debug: bool,
    pub tdx_allowed_tcb: Option<Vec<String>>,
    pub geofence: Option<RawGeofence>,
    pub ttl: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnpSelector {
    #[serde(default)]
    pub measurement: Vec<String>,
    #[serde(default)]
    pub host_data: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTdxSelector {
    #[serde(default)]
    pub mr_td: Vec<String>,
    #[serde(default)]
    pub rtmr0: Vec<String>,
    #[serde(default)]
    pub rtmr1: Vec<String>,
    #[serde(default)]
    pub rtmr2: Vec<String>,
    #[serde(default)]
    pub rtmr3: Vec<String>,
    #[serde(default)]
    pub mr_config_id: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMinTcb {
    pub fmc: Option<u8>,
    #[serde(default)]
    pub bootloader: u8,
    #[serde(default)]
    pub tee: u8,
    #[serde(default)]
    pub snp: u8,
    #[serde(default)]
    pub microcode: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeofence {
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default)]
    pub countries: Vec<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// Validated configuration
// ---------------------------------------------------------------------------------------------------------------

/// Default challenge validity (DESIGN §2).
pub const DEFAULT_CHALLENGE_TTL: Duration = Duration::from_secs(120);
/// Default credential lifetime (DESIGN §5).
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Request body cap (DESIGN §7).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
pub const DEFAULT_MAX_CONCURRENCY: usize = 256;
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_KEY_RESCAN: Duration = Duration::from_secs(30);
/// TDX TCB statuses accepted when the config names none (DESIGN §3).
pub const DEFAULT_TDX_ALLOWED: &[&str] = &["UpToDate"];
use crate::appraisal::policy::TDX_TCB_STATUSES as KNOWN_TDX_STATUSES;
/// Longest credential lifetime the service accepts in its config: short-lived credentials are how a migrated VM
/// loses its residency claim (DESIGN §4).
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Where the audit log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditTarget {
    File(PathBuf),
    Stdout,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: Option<SocketAddr>,
    pub issuer: String,
    pub state_dir: PathBuf,
    pub keys_dir: PathBuf,
    pub audit: AuditTarget,
    pub endorsements_dir: Option<PathBuf>,
    pub challenge_ttl: Duration,
    pub max_body_bytes: usize,
    pub max_concurrency: usize,
    pub max_blocking: usize,
    pub request_timeout: Duration,
    /// `None`: keys are re-read only on SIGHUP.
    pub key_rescan: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct CredentialsConfig {
    pub trust_domain: String,
    pub default_ttl: Duration,
    pub ear: bool,
    pub ear_format: EarFormat,
}

/// How the EAR beside the WIT is encoded (draft-ietf-rats-ear-03).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EarFormat {
    Jwt,
    Cwt,
}

#[derive(Clone, Debug)]
pub struct TrustConfig {
    pub simulator: bool,
    pub simulator_pki: Option<PathBuf>,
    pub amd_kds_url: Option<String>,
    pub intel_pcs_url: Option<String>,
    pub pccs_url: Option<String>,
    pub collateral_dir: Option<PathBuf>,
    pub offline: bool,
    pub tdx_allowed_tcb: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    pub name: String,
    pub country: String,
    pub region: Option<String>,
    pub coordinates: Option<[f64; 2]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub tee: Tee,
    /// SNP CHIP_ID (64 bytes), the VLEK cspID (its UTF-8 bytes) or TDX PPID (16 bytes).
    pub id: Vec<u8>,
    pub site: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub countries: BTreeSet<String>,
}

#[derive(Clone, Debug)]
pub struct Endorser {
    pub name: String,
    /// Uncompressed SEC1 P-256 point (65 bytes), the form ring verifies with.
    pub public_key: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnpSelector {
    pub measurement: Vec<Vec<u8>>,
    pub host_data: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TdxSelector {
    pub mr_td: Vec<Vec<u8>>,
    pub rtmr: [Vec<Vec<u8>>; 4],
    pub mr_config_id: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Geofence {
    pub zones: Vec<String>,
    pub countries: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub id: String,
    pub tees: Vec<Tee>,
    pub snp: Option<SnpSelector>,
    pub tdx: Option<TdxSelector>,
    pub min_tcb: Option<RawMinTcb>,
    pub allow_debug: bool,
    pub tdx_allowed_tcb: Vec<String>,
    /// `None` = not fenced.
    pub geofence: Option<Geofence>,
    pub ttl: Duration,
}

/// A validated configuration. Only [`validate`] builds one.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from (for reloads and relative paths).
    pub source: Option<PathBuf>,
    pub server: ServerConfig,
    pub credentials: CredentialsConfig,
    pub trust: TrustConfig,
    pub sites: Vec<Site>,
    pub platforms: Vec<Platform>,
    pub zones: Vec<Zone>,
    pub endorsers: Vec<Endorser>,
    pub workloads: Vec<Workload>,
}

impl Config {
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }

    pub fn workload(&self, id: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.id == id)
    }

    /// Zones whose country list holds `country`, in config order.
    pub fn zones_of(&self, country: &str) -> Vec<String> {
        self.zones
            .iter()
            .filter(|z| z.countries.contains(country))
            .map(|z| z.name.clone())
            .collect()
    }
}

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

fn hex_list(problems: &mut Vec<String>, what: &str, list: &[String], len: usize) -> Vec<Vec<u8>> {
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| decode_hex(problems, &format!("{what}[{i}]"), s, &[len]))
        .collect()
}

fn check_tdx_statuses(problems: &mut Vec<String>, what: &str, list: &[String]) {
    if list.is_empty() {
        problems.push(format!("{what}: must name at least one TCB status"));
    }
    for s in list {
        if !KNOWN_TDX_STATUSES.contains(&s.as_str()) {
            problems.push(format!(
                "{what}: unknown TDX TCB status {s:?} (known: {})",
                KNOWN_TDX_STATUSES.join(", ")
            ));
        }
    }
}

fn check_url(problems: &mut Vec<String>, what: &str, url: &Option<String>) {
    if let Some(u) = url {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            problems.push(format!("{what}: must be an http(s) URL, got {u:?}"));
        }
    }
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

/// The trust domain rules of DESIGN §6: lowercase DNS-like name, no port.
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

/// Validate a workload identifier against DESIGN §6, without depending on the identifier type's home crate here:
/// the issuing path re-parses with `locus_wimse` before signing.
pub fn check_workload_id(id: &str, trust_domain: &str) -> Result<(), String> {
    let rest = if let Some(r) = id.strip_prefix("spiffe://") {
        r
    } else if let Some(r) = id.strip_prefix("wimse://") {
        r
    } else {
        return Err(format!("{id:?}: scheme must be spiffe:// or wimse://"));
    };
    if id.len() > 2048 {
        return Err(format!("{id:?}: longer than 2048 bytes"));
    }
    if rest.contains(['?', '#', '@']) {
        return Err(format!("{id:?}: query, fragment or userinfo not allowed"));
    }
    let (td, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if td.contains(':') {
        return Err(format!("{id:?}: port not allowed"));
    }
    if td != trust_domain {
        return Err(format!(
            "{id:?}: trust domain {td:?} is not the configured {trust_domain:?}"
        ));
    }
    if path.is_empty() {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(format!("{id:?}: trailing '/'"));
    }
    for seg in path[1..].split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(format!("{id:?}: empty or dot path segment"));
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{id:?}: segment {seg:?} has characters outside [A-Za-z0-9._-]"
            ));
        }
    }
    Ok(())
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
    if let Some(d) = &endorsements_dir {
        if !d.is_dir() {
            p.push(format!(
                "server.endorsements_dir: {} is not a directory",
                d.display()
            ));
        }
    }
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
    let timeout_ms = raw
        .server
        .request_timeout_ms
        .unwrap_or(DEFAULT_REQUEST_TIMEOUT.as_millis() as u64);
    if timeout_ms == 0 {
        p.push("server.request_timeout_ms: must be at least 1".into());
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
    let collateral_dir = raw
        .trust
        .collateral_dir
        .as_deref()
        .map(|d| resolve(base, d));
    if let Some(d) = &collateral_dir {
        if !d.is_dir() {
            p.push(format!(
                "trust.collateral_dir: {} is not a directory",
                d.display()
            ));
        }
    }
    let simulator_pki = raw.trust.simulator_pki.as_deref().map(|d| resolve(base, d));
    if let Some(d) = &simulator_pki {
        if !d.is_dir() {
            p.push(format!(
                "trust.simulator_pki: {} is not a directory",
                d.display()
            ));
        }
        if !raw.trust.simulator {
            // Not an error: the directory is simply unused. Kept quiet on purpose so a config can toggle one flag.
        }
    } else if raw.trust.simulator {
        p.push("trust.simulator = true needs trust.simulator_pki (the `locus-sim pki export` directory)".into());
    }
    let tdx_allowed_tcb = raw
        .trust
        .tdx_allowed_tcb
        .clone()
        .unwrap_or_else(|| DEFAULT_TDX_ALLOWED.iter().map(|s| s.to_string()).collect());
    check_tdx_statuses(&mut p, "trust.tdx_allowed_tcb", &tdx_allowed_tcb);

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
        let tee = Tee::parse(&pl.tee);
        if tee.is_none() {
            p.push(format!(
                "{what}: tee {:?} is not \"sev-snp\" or \"tdx\"",
                pl.tee
            ));
        }
        let lens: &[usize] = match tee {
            Some(Tee::SevSnp) => &[64],
            Some(Tee::Tdx) => &[16],
            None => &[16, 64],
        };
        // A VLEK-signed SEV-SNP platform is identified by its cloud provider's cspID (DESIGN §4): `vlek:<cspID>`.
        let id = match (tee, pl.id.strip_prefix("vlek:")) {
            (Some(Tee::SevSnp), Some(csp)) if !csp.is_empty() => Some(csp.as_bytes().to_vec()),
            (_, Some(_)) => {
                p.push(format!(
                    "{what}.id: `vlek:<cspID>` is only for sev-snp platforms and needs a cspID"
                ));
                None
            }
            _ => decode_hex(&mut p, &format!("{what}.id"), &pl.id, lens),
        };
        if !site_names.contains(&pl.site) {
            p.push(format!(
                "{what}: site {:?} is not a configured [[site]]",
                pl.site
            ));
        }
        if let (Some(tee), Some(id)) = (tee, id) {
            if let Some(prev) = platform_ids.insert((tee, id.clone()), i) {
                p.push(format!(
                    "{what}: same {tee} platform id as platform[{prev}]"
                ));
            }
            platforms.push(Platform {
                tee,
                id,
                site: pl.site.clone(),
                name: pl.name.clone(),
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
        match super::endorsement::parse_public_key(&e.public_key) {
            Ok(k) => endorsers.push(Endorser {
                name: e.name.clone(),
                public_key: k,
            }),
            Err(msg) => p.push(format!("{what}: public_key: {msg}")),
        }
    }

    // [[workload]]
    let mut workloads = Vec::new();
    let mut workload_ids = BTreeSet::new();
    for (i, w) in raw.workloads.iter().enumerate() {
        let what = format!("workload[{i}] {:?}", w.id);
        if let Err(m) = check_workload_id(&w.id, &raw.credentials.trust_domain) {
            p.push(format!("{what}: id: {m}"));
        }
        if !workload_ids.insert(w.id.clone()) {
            p.push(format!("{what}: duplicate workload id"));
        }
        let mut tees = Vec::new();
        if w.tee.is_empty() {
            p.push(format!("{what}: tee must list \"sev-snp\" and/or \"tdx\""));
        }
        for t in &w.tee {
            match Tee::parse(t) {
                Some(t) => tees.push(t),
                None => p.push(format!("{what}: tee {t:?} is not \"sev-snp\" or \"tdx\"")),
            }
        }
        let snp = w.sev_snp.as_ref().map(|s| SnpSelector {
            measurement: hex_list(
                &mut p,
                &format!("{what}.sev-snp.measurement"),
                &s.measurement,
                48,
            ),
            host_data: hex_list(
                &mut p,
                &format!("{what}.sev-snp.host_data"),
                &s.host_data,
                32,
            ),
        });
        let tdx = w.tdx.as_ref().map(|s| TdxSelector {
            mr_td: hex_list(&mut p, &format!("{what}.tdx.mr_td"), &s.mr_td, 48),
            rtmr: [
                hex_list(&mut p, &format!("{what}.tdx.rtmr0"), &s.rtmr0, 48),
                hex_list(&mut p, &format!("{what}.tdx.rtmr1"), &s.rtmr1, 48),
                hex_list(&mut p, &format!("{what}.tdx.rtmr2"), &s.rtmr2, 48),
                hex_list(&mut p, &format!("{what}.tdx.rtmr3"), &s.rtmr3, 48),
            ],
            mr_config_id: hex_list(
                &mut p,
                &format!("{what}.tdx.mr_config_id"),
                &s.mr_config_id,
                48,
            ),
        });
        // A workload must pin the measurement of every TEE it admits: an empty selector would admit any image.
        if tees.contains(&Tee::SevSnp) && snp.as_ref().is_none_or(|s| s.measurement.is_empty()) {
            p.push(format!(
                "{what}: admits sev-snp but [workload.sev-snp] lists no measurement"
            ));
        }
        if tees.contains(&Tee::Tdx) && tdx.as_ref().is_none_or(|s| s.mr_td.is_empty()) {
            p.push(format!(
                "{what}: admits tdx but [workload.tdx] lists no mr_td"
            ));
        }
        if snp.is_some() && !tees.contains(&Tee::SevSnp) {
            p.push(format!(
                "{what}: has a sev-snp selector but tee does not list \"sev-snp\""
            ));
        }
        if tdx.is_some() && !tees.contains(&Tee::Tdx) {
            p.push(format!(
                "{what}: has a tdx selector but tee does not list \"tdx\""
            ));
        }
        let tdx_allowed = match &w.tdx_allowed_tcb {
            Some(list) => {
                check_tdx_statuses(&mut p, &format!("{what}.tdx_allowed_tcb"), list);
                list.clone()
            }
            None => tdx_allowed_tcb.clone(),
        };
        let geofence = match &w.geofence {
            Some(g) => {
                if g.zones.is_empty() && g.countries.is_empty() {
                    p.push(format!(
                        "{what}: geofence must list zones or countries (omit it for no fence)"
                    ));
                }
                for z in &g.zones {
                    if !zone_names.contains(z) {
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
                })
            }
            None => None,
        };
        let ttl = match w.ttl {
            Some(t) => check_ttl(&mut p, &format!("{what}.ttl"), t),
            None => default_ttl,
        };
        workloads.push(Workload {
            id: w.id.clone(),
            tees,
            snp,
            tdx,
            min_tcb: w.min_tcb,
            allow_debug: w.allow_debug,
            tdx_allowed_tcb: tdx_allowed,
            geofence,
            ttl,
        });
    }
    if raw.workloads.is_empty() {
        p.push("no [[workload]]: the verifier would refuse every request".into());
    }

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
            request_timeout: Duration::from_millis(timeout_ms),
            key_rescan: match raw
                .server
                .key_rescan_secs
                .unwrap_or(DEFAULT_KEY_RESCAN.as_secs())
            {
                0 => None,
                s => Some(Duration::from_secs(s)),
            },
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
            tdx_allowed_tcb,
        },
        sites,
        platforms,
        zones,
        endorsers,
        workloads,
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
        assert_eq!(cfg.trust.tdx_allowed_tcb, vec!["UpToDate".to_string()]);
        assert_eq!(cfg.workloads[0].ttl, DEFAULT_TTL);
        assert_eq!(cfg.zones_of("DE"), vec!["eu".to_string()]);
        assert!(cfg.zones_of("US").is_empty());
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
    fn workload_ids_follow_design_section_6() {
        let td = "locus.example";
        assert!(check_workload_id("spiffe://locus.example/a/b", td).is_ok());
        assert!(check_workload_id("wimse://locus.example/a", td).is_ok());
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
            assert!(check_workload_id(bad, td).is_err(), "{bad}");
        }
    }

    #[test]
    fn vlek_platforms_are_registered_by_csp_id_and_only_for_snp() {
        let text = good().replace(
            "tee = \"tdx\"\nid = \"00112233445566778899aabbccddeeff\"",
            "tee = \"sev-snp\"\nid = \"vlek:ExampleCloud\"",
        );
        let cfg = parse(&text, Path::new(".")).expect("valid");
        assert_eq!(cfg.platforms[0].id, b"ExampleCloud".to_vec());
        let text = good().replace(
            "id = \"00112233445566778899aabbccddeeff\"",
            "id = \"vlek:ExampleCloud\"",
        );
        let err = parse(&text, Path::new(".")).expect_err("tdx has no VLEK");
        assert!(err.to_string().contains("only for sev-snp"), "{err}");
    }

    #[test]
    fn simulator_trust_needs_the_simulator_pki_dir() {
        let text = good().replace("[credentials]", "[trust]\nsimulator = true\n[credentials]");
        let err = parse(&text, Path::new(".")).expect_err("invalid");
        assert!(err.to_string().contains("simulator_pki"), "{err}");
    }
}
