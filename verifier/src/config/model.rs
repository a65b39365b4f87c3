//! The validated configuration the service runs on. Only [`super::validate`](mod@super::validate) builds a [`Config`]: paths are absolute,
//! identifiers parsed, reference values bytes, cross references (platform → site, workload → zone) known to hold.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use locus_hw::TeeType;
use locus_wimse::{Alg, WorkloadId};

use crate::appraisal::Policy;
use crate::endorsement::Endorser;

/// Default challenge validity (docs/architecture.md#challenges).
pub const DEFAULT_CHALLENGE_TTL: Duration = Duration::from_secs(120);
/// Default credential lifetime (docs/architecture.md#credentials).
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Request body cap (docs/api.md).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
pub const DEFAULT_MAX_CONCURRENCY: usize = 256;
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_KEY_RESCAN: Duration = Duration::from_secs(30);
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;
pub const DEFAULT_BODY_MIN_RATE: u64 = 8 * 1024;
/// Generous enough that one agent, the demo and the test suites never meet it; an attacker on one address is held to
/// 50 requests a second.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 50;
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 200;
/// TCB statuses accepted when the config names none (docs/architecture.md#appraisal).
pub const DEFAULT_TDX_ALLOWED: &[&str] = &["UpToDate"];
pub const DEFAULT_SNP_ALLOWED: &[&str] = &["UpToDate"];
/// Longest credential lifetime the service accepts in its config: short-lived credentials are how a migrated VM
/// loses its residency claim (docs/architecture.md#residency-and-the-geo-fence).
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
    /// Async worker threads (connections, HTTP, TLS handshakes).
    pub async_workers: usize,
    pub request_timeout: Duration,
    /// `None`: keys are re-read only on SIGHUP.
    pub key_rescan: Option<Duration>,
    /// TLS certificate chain and key (PEM); `None` = plaintext.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub allow_plaintext: bool,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub body_min_bytes_per_sec: u64,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub trusted_proxies: Vec<std::net::IpAddr>,
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
    /// Collateral network fetches in flight at once, in their own pool (never an appraisal slot).
    pub fetch_concurrency: usize,
    /// Per-client budget (token bucket, per minute) for fetching the collateral of platforms never seen before.
    pub new_platform_fetches_per_client: u32,
    /// The same budget for all clients together.
    pub new_platform_fetches_global: u32,
    /// Bound on the on-disk collateral cache (`state_dir/cache`), least recently used files deleted first.
    pub cache_max_bytes: u64,
    /// Proximity statements older than this (by their own time) are ignored.
    pub proximity_max_age: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    pub name: String,
    pub country: String,
    pub region: Option<String>,
    pub coordinates: Option<[f64; 2]>,
}

/// What a registered platform identity names (docs/architecture.md#residency-and-the-geo-fence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformScope {
    /// One machine (SNP CHIP_ID, TDX PPID).
    Host,
    /// Every host of a cloud provider (SNP VLEK cspID): never presented as one host.
    Provider,
}

impl PlatformScope {
    /// The `granularity` of the residency claim.
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformScope::Host => "host",
            PlatformScope::Provider => "provider",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub tee: TeeType,
    /// SNP CHIP_ID (64 bytes), the VLEK cspID (its UTF-8 bytes) or TDX PPID (16 bytes).
    pub id: Vec<u8>,
    pub site: String,
    pub name: Option<String>,
    pub scope: PlatformScope,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub countries: BTreeSet<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Geofence {
    pub zones: Vec<String>,
    pub countries: Vec<String>,
    /// Each: a fresh proximity statement from this landmark must bound the distance to at most `km`.
    pub within: Vec<Within>,
}

impl Geofence {
    /// Whether the fence names zones or countries (then it needs a location; `within` alone does not).
    pub fn has_places(&self) -> bool {
        !self.zones.is_empty() || !self.countries.is_empty()
    }
}

/// `within = [{ landmark, km }]` of a geo-fence (docs/proximity.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Within {
    /// A configured `[[landmark]]` name.
    pub landmark: String,
    pub km: u64,
}

/// Default age past which a proximity statement is ignored (docs/proximity.md).
pub const DEFAULT_PROXIMITY_MAX_AGE: Duration = Duration::from_secs(60);
/// Default challenges per proximity session.
pub const DEFAULT_LANDMARK_ROUNDS: u32 = 8;
pub const DEFAULT_LANDMARK_ROUND_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_LANDMARK_MAX_SESSIONS: usize = 64;

/// A landmark whose statements this verifier trusts (`[[landmark]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedLandmark {
    pub name: String,
    /// Base URL agents dial (told to them in the challenge answer).
    pub url: String,
    /// The `[[site]]` it stands at, and that site's coordinates `[lat, lon]` (degrees) as this config says them.
    pub site: String,
    pub coordinates: [CoordinateMicro; 2],
    /// Its statement key (P-256).
    pub public_key: locus_wimse::PublicKey,
    /// The landmark id: RFC 7638 SHA-256 thumbprint of `public_key`.
    pub id: [u8; 32],
}

/// A latitude or longitude in millionths of a degree (exact in config, statements and comparisons).
pub type CoordinateMicro = i64;

/// This verifier's own landmark role (`[landmark_role]`, enabled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LandmarkRole {
    pub site: String,
    pub coordinates: [CoordinateMicro; 2],
    pub rounds: u32,
    pub round_timeout: Duration,
    pub max_sessions: usize,
}

/// Degrees to millionths of a degree (rounded to nearest).
pub fn to_micro(deg: f64) -> CoordinateMicro {
    (deg * 1e6).round() as i64
}

/// Whether a workload may be issued on a platform nobody located.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResidencyRequirement {
    /// `location_unknown` when no location is established (the default).
    Required,
    /// Issued; the WIT says residency was not established.
    Optional,
}

/// What a TDX workload's reference values cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasurementScope {
    /// Firmware and kernel/command line (`rtmr1` or `rtmr2` pinned).
    Full,
    /// Only the firmware (MRTD): any kernel and command line pass; the WIT says so.
    Firmware,
}

impl MeasurementScope {
    pub fn as_str(self) -> &'static str {
        match self {
            MeasurementScope::Full => "full",
            MeasurementScope::Firmware => "firmware",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub id: WorkloadId,
    pub tees: Vec<TeeType>,
    /// Every appraisal rule of this workload (both TEEs), reference values as bytes.
    pub policy: Policy,
    /// `None` = not fenced.
    pub geofence: Option<Geofence>,
    pub ttl: Duration,
    pub residency: ResidencyRequirement,
    pub measurement_scope: MeasurementScope,
    /// Chosen among several matching workloads when the request names none.
    pub default: bool,
    /// Algorithms the confirmation key may use.
    pub key_algorithms: Vec<Alg>,
}

/// A validated configuration. Only [`super::validate`](mod@super::validate) builds one.
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
    pub landmarks: Vec<TrustedLandmark>,
    /// `None`: this verifier is not a landmark.
    pub landmark_role: Option<LandmarkRole>,
}

impl Config {
    pub fn landmark(&self, name: &str) -> Option<&TrustedLandmark> {
        self.landmarks.iter().find(|l| l.name == name)
    }

    /// The landmarks an agent asking for `workload` must collect statements from: that workload's `within`
    /// landmarks, or, when the request names none, those of every workload (any of them may be chosen).
    pub fn landmarks_for(&self, workload: Option<&str>) -> Vec<&TrustedLandmark> {
        let fences = self
            .workloads
            .iter()
            .filter(|w| workload.is_none_or(|id| w.id.as_str() == id))
            .filter_map(|w| w.geofence.as_ref());
        let mut out: Vec<&TrustedLandmark> = Vec::new();
        for within in fences.flat_map(|g| g.within.iter()) {
            if let Some(l) = self.landmark(&within.landmark) {
                if !out.iter().any(|o| o.name == l.name) {
                    out.push(l);
                }
            }
        }
        out
    }

    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }

    pub fn workload(&self, id: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.id.as_str() == id)
    }

    /// Zones whose country list holds `country`, in config order.
    pub fn zones_of(&self, country: &str) -> Vec<String> {
        self.zones
            .iter()
            .filter(|z| z.countries.contains(country))
            .map(|z| z.name.clone())
            .collect()
    }

    /// The longest credential lifetime this config can issue.
    pub fn longest_ttl(&self) -> Duration {
        self.workloads
            .iter()
            .map(|w| w.ttl)
            .chain(std::iter::once(self.credentials.default_ttl))
            .max()
            .unwrap_or(DEFAULT_TTL)
    }
}
