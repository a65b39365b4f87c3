//! The TOML shape of `verifier.toml` (docs/configuration.md), exactly as written by an operator: strings, numbers and tables,
//! unknown keys refused. Nothing here is checked beyond what TOML and serde check; [`super::validate`](mod@super::validate) turns it into
//! the [`super::model`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::appraisal::policy::CurrentTcb;

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
    /// This verifier also serves as a landmark for proximity rounds (docs/proximity.md).
    pub landmark_role: Option<RawLandmarkRole>,
    /// Landmarks whose proximity statements this verifier trusts.
    #[serde(default, rename = "landmark")]
    pub landmarks: Vec<RawLandmark>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLandmarkRole {
    #[serde(default)]
    pub enabled: bool,
    /// A configured `[[site]]` with coordinates: where this host is.
    pub site: String,
    /// Challenges per session (default 8).
    pub rounds: Option<u32>,
    /// Longest wait for one answer (and for the agent's hello), milliseconds.
    pub round_timeout_ms: Option<u64>,
    /// Proximity sessions at once.
    pub max_sessions: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLandmark {
    pub name: String,
    /// The landmark verifier's base URL (agents dial `<url>/v1/proximity`).
    pub url: String,
    /// A configured `[[site]]` with coordinates: where the landmark is.
    pub site: String,
    /// PEM `PUBLIC KEY` (SPKI, P-256) or a JWK JSON object: the landmark's statement key.
    pub public_key: String,
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
    /// Threads that run the async I/O (connections, HTTP, TLS); appraisal runs on the `max_blocking` pool.
    pub async_workers: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    /// How often to look for changed key files (rotation, an updated Secret) and reload, seconds; 0 = only on SIGHUP.
    pub key_rescan_secs: Option<u64>,
    /// PEM certificate chain and private key for TLS on the listener; reloaded on SIGHUP and when the files change.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// Serve plaintext HTTP on a non-loopback address (logged at warn). Loopback addresses never need it.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// A request's head must arrive within this time (slow-loris), milliseconds.
    pub header_read_timeout_ms: Option<u64>,
    /// A connection that moves no byte for this long is closed, seconds.
    pub idle_timeout_secs: Option<u64>,
    /// Open connections overall, and per client address.
    pub max_connections: Option<usize>,
    pub max_connections_per_client: Option<usize>,
    /// A body must arrive at least this fast (bytes/second, after a 2 s grace): its deadline grows with its length.
    pub body_min_bytes_per_sec: Option<u64>,
    /// Per-client token bucket on /v1/* (requests per second, burst); 0 = no limit.
    pub rate_limit_per_second: Option<u32>,
    pub rate_limit_burst: Option<u32>,
    /// Proxies whose `X-Forwarded-For` names the client (exact IP addresses).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
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
    /// SEV-SNP TCB statuses accepted unless a workload says otherwise (default `["UpToDate"]`).
    pub snp_allowed_tcb: Option<Vec<String>>,
    /// `[trust.snp_current_tcb.<milan|genoa|turin>]`: the TCB the operator considers current per product.
    #[serde(default)]
    pub snp_current_tcb: BTreeMap<String, CurrentTcb>,
    /// Collateral network fetches in flight at once (default 8).
    pub fetch_concurrency: Option<usize>,
    /// Fetches of platforms never seen before one client may start per minute (default 10; 0 = none).
    pub new_platform_fetches_per_client: Option<u32>,
    /// Fetches of platforms never seen before all clients together may start per minute (default 120; 0 = none).
    pub new_platform_fetches_global: Option<u32>,
    /// Bound on the on-disk collateral cache in bytes (default 256 MiB).
    pub cache_max_bytes: Option<u64>,
    /// Proximity statements older than this are ignored, seconds (default 60).
    pub proximity_max_age_secs: Option<u64>,
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
    /// `host` (default: the identity names one machine) or `provider` (a VLEK cspID: every host of a provider).
    pub scope: Option<String>,
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
    /// `[workload.min_tcb_by_product.<product>]`: a floor for one SNP product, used instead of `min_tcb` for it.
    #[serde(default)]
    pub min_tcb_by_product: BTreeMap<String, RawMinTcb>,
    #[serde(default)]
    pub allow_debug: bool,
    /// Allow SEV-SNP MIGRATE_MA (and TDX MIGRATABLE, which dcap-qvl 0.7.1 refuses regardless).
    #[serde(default)]
    pub allow_migration: bool,
    /// Allow a TD bound to service TDs (non-zero MRSERVICETD, SERVTD_EXT).
    #[serde(default)]
    pub allow_service_td: bool,
    pub tdx_allowed_tcb: Option<Vec<String>>,
    pub snp_allowed_tcb: Option<Vec<String>>,
    pub geofence: Option<RawGeofence>,
    pub ttl: Option<u64>,
    /// `required` (default) or `optional`.
    pub residency: Option<String>,
    /// TDX: `full` (default; rtmr1 or rtmr2 must be pinned) or `firmware` (only the firmware is pinned).
    pub measurement_scope: Option<String>,
    /// Chosen when a request names no workload and several match.
    #[serde(default)]
    pub default: bool,
    /// JWS algorithms the confirmation key may use (default `["ES256"]`).
    pub key_algorithms: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnpSelector {
    #[serde(default)]
    pub measurement: Vec<String>,
    #[serde(default)]
    pub host_data: Vec<String>,
    #[serde(default)]
    pub id_key_digest: Vec<String>,
    #[serde(default)]
    pub author_key_digest: Vec<String>,
    #[serde(default)]
    pub family_id: Vec<String>,
    #[serde(default)]
    pub image_id: Vec<String>,
    pub min_guest_svn: Option<u32>,
    /// `"MAJOR.MINOR"`.
    pub min_policy_abi: Option<String>,
    /// Allowed VMPLs (default `[0]`).
    pub vmpl: Option<Vec<u32>>,
    #[serde(default)]
    pub require_smt_disabled: bool,
    #[serde(default)]
    pub require_tsme: bool,
    #[serde(default)]
    pub require_alias_check: bool,
}

#[derive(Debug, Default, Deserialize)]
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
    #[serde(default)]
    pub mr_owner: Vec<String>,
    #[serde(default)]
    pub mr_owner_config: Vec<String>,
    #[serde(default)]
    pub xfam: Vec<String>,
    /// 16 hex digits (the u64 as written, most significant first); goes with `td_attributes_value`.
    pub td_attributes_mask: Option<String>,
    pub td_attributes_value: Option<String>,
    #[serde(default)]
    pub pck_sgx_type: Vec<u64>,
    pub pck_dynamic_platform: Option<bool>,
    pub pck_cached_keys: Option<bool>,
    pub pck_smt_enabled: Option<bool>,
}

/// `min_tcb = { bootloader = 3, tee = 0, snp = 8, microcode = 115 }` (`fmc` on Turin); an absent component is 0.
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
    /// Distance bounds: `[{ landmark = "...", km = N }]`.
    #[serde(default)]
    pub within: Vec<RawWithin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWithin {
    pub landmark: String,
    pub km: u64,
}
