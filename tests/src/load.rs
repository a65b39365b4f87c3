//! `locus-load`: a bounded load generator for a verifier, measured against the crypto floor of the same machine in
//! the same run.
//!
//! Phases:
//! 1. **Prepare** (untimed): one warm-up round (challenge, evidence, attest; its credential is checked in full and
//!    tells whether the verifier sends EARs), then for every request a fresh agent key, a challenge
//!    (`POST /v1/challenge`) and simulated evidence bound to the nonce and the key (docs/architecture.md#evidence-binding),
//!    serialized into the exact `POST /v1/attest` body. A challenge lives 120 s, so the timed phase follows at once.
//! 2. **Floor** (untimed, one thread): every signature the verifier must make or check for one answer, with the
//!    production backend (the verifier's own functions and `locus-wimse`): the evidence signature, the WIT signature
//!    and, when the verifier sends EARs, the EAR signature. `floor_rps` = cores / that time.
//! 3. **Load** (timed): `clients` concurrent connections send the prepared bodies until all are sent or `duration`
//!    has passed; each answer is counted by status and code, its latency recorded.
//!
//! It reports throughput, outcomes by code, p50/p99 latency of the attest calls, the verifier's peak RSS when its
//! process is known, an fsync of the state directory's disk, and one `RESULT` line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use locus_agent::binding;
use locus_agent::client::{AttestRequest, VerifierClient};
use locus_agent::credential::Credential;
use locus_agent::select::{open_attester, AttesterOptions, TeeChoice};
use locus_agent::AgentError;
use locus_hw::{Attester, Evidence, TeeType};
use locus_wimse::Es256SigningKey;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The verifier's base URL.
    pub verifier: String,
    /// Concurrent clients (≥ 1).
    pub clients: usize,
    /// Total rounds (≥ 1).
    pub requests: u64,
    /// Upper bound on the timed phase.
    pub duration: Duration,
    /// Simulator profile (`snp-*` or `tdx-*`).
    pub profile: String,
    /// Workload to ask for (`None`: the verifier picks).
    pub workload: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The verifier's process id, for its peak RSS (`None`: not reported).
    pub verifier_pid: Option<u32>,
    /// A directory on the verifier's audit disk, for the fsync measurement (`None`: the system temp directory).
    pub fsync_dir: Option<PathBuf>,
}

/// Why the load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad arguments.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Setting up the client or the attester, or the warm-up round.
    #[error("{0}")]
    Agent(#[from] AgentError),
}

/// The single-thread floor of one answer with the production backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Floor {
    /// Median time of the evidence signature check.
    pub evidence_check: Duration,
    /// Median time of one ES256 signature of the WIT (the EAR costs the same).
    pub token_sign: Duration,
    /// Whether the verifier sends an EAR (a second signature per answer).
    pub ear: bool,
    /// Cores of this machine.
    pub cores: usize,
}

impl Floor {
    /// Every signature of one answer: evidence check + WIT (+ EAR).
    pub fn per_request(&self) -> Duration {
        self.evidence_check + self.token_sign * if self.ear { 2 } else { 1 }
    }

    /// cores / per-request floor.
    pub fn rps(&self) -> f64 {
        let t = self.per_request().as_secs_f64();
        if t > 0.0 {
            self.cores as f64 / t
        } else {
            0.0
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Rounds attempted in the timed phase.
    pub rounds: u64,
    /// Rounds that got a WIT.
    pub issued: u64,
    /// Failures by stable code.
    pub failures: BTreeMap<String, u64>,
    /// Wall time of the timed phase.
    pub elapsed: Duration,
    /// Wall time of the preparation (warm-up, challenges and evidence).
    pub prepare: Duration,
    /// Latency of each attest call, sorted.
    pub verifier_latency: Vec<Duration>,
    /// The floor measured in this run.
    pub floor: Floor,
    /// Median `write` + `fdatasync` of one record-sized append on the fsync directory's disk.
    pub fsync: Duration,
    /// The verifier's peak and current resident set (VmHWM, VmRSS) after the run, MiB.
    pub verifier_rss_mib: Option<(f64, f64)>,
    /// CPU time (user + system) the verifier and this load tool used during the timed phase, when readable.
    pub cpu: Option<(Duration, Duration)>,
    /// The verifier's `/metrics` counters this report shows (audit group commit, collateral fetches), after the run.
    pub counters: BTreeMap<String, f64>,
}

/// The `/metrics` counters the report shows.
const COUNTERS: [&str; 5] = [
    "locus_audit_records_total",
    "locus_audit_fsyncs_total",
    "locus_collateral_request_fetches_total",
    "locus_collateral_request_fetches_while_cached_total",
    "locus_collateral_tdx_views_built_total",
];

/// The unlabelled samples of `names` in a Prometheus text exposition.
pub fn counters_of(text: &str, names: &[&str]) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            names
                .contains(&name)
                .then(|| value.trim().parse().ok().map(|v| (name.to_string(), v)))?
        })
        .collect()
}

/// The `q` quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2} ms", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn ms_value(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

impl LoadReport {
    /// Rounds per second in the timed phase.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.rounds as f64 / secs
        } else {
            0.0
        }
    }

    /// Rounds that did not get a WIT.
    pub fn errors(&self) -> u64 {
        self.failures.values().sum()
    }

    /// The last line: `RESULT tee=… rps=… floor_rps=… ratio=… p50_ms=… p99_ms=… errors=… rss_mib=…`.
    pub fn result_line(&self, tee: TeeType) -> String {
        let floor_rps = self.floor.rps();
        let ratio = if floor_rps > 0.0 {
            self.throughput() / floor_rps
        } else {
            0.0
        };
        let rss = self
            .verifier_rss_mib
            .map(|(peak, _)| format!("{peak:.1}"))
            .unwrap_or_else(|| "-".into());
        format!(
            "RESULT tee={} rps={:.0} floor_rps={:.0} ratio={:.3} p50_ms={} p99_ms={} errors={} rss_mib={rss}",
            tee.as_str(),
            self.throughput(),
            floor_rps,
            ratio,
            ms_value(quantile(&self.verifier_latency, 0.50)),
            ms_value(quantile(&self.verifier_latency, 0.99)),
            self.errors(),
        )
    }

    /// A human-readable summary.
    pub fn render(&self, cfg: &LoadConfig) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "locus-load: {} clients, profile {}, workload {}\n",
            cfg.clients,
            cfg.profile,
            cfg.workload.as_deref().unwrap_or("(verifier's choice)")
        ));
        s.push_str(&format!(
            "prepared    {} challenges + evidence in {:.2} s (before the timed phase)\n",
            self.rounds,
            self.prepare.as_secs_f64()
        ));
        s.push_str(&format!(
            "rounds      {} in {:.2} s ({:.1} rounds/s)\n",
            self.rounds,
            self.elapsed.as_secs_f64(),
            self.throughput()
        ));
        s.push_str(&format!("issued      {}\n", self.issued));
        for (code, n) in &self.failures {
            s.push_str(&format!("refused     {n} × {code}\n"));
        }
        s.push_str(&format!(
            "verifier    p50 {}  p99 {}  max {}   (attest)\n",
            ms(quantile(&self.verifier_latency, 0.50)),
            ms(quantile(&self.verifier_latency, 0.99)),
            ms(self.verifier_latency.last().copied())
        ));
        let f = &self.floor;
        s.push_str(&format!(
            "floor       {:.1} µs per answer = evidence check {:.1} µs + {} × ES256 sign {:.1} µs (production backend, one thread); {} cores → {:.0} answers/s\n",
            f.per_request().as_secs_f64() * 1e6,
            f.evidence_check.as_secs_f64() * 1e6,
            if f.ear { "2 (WIT + EAR)" } else { "1 (WIT)" },
            f.token_sign.as_secs_f64() * 1e6,
            f.cores,
            f.rps()
        ));
        s.push_str(&format!(
            "fsync       {:.2} ms (write + fdatasync of one record; the audit log's group commit makes one per batch)\n",
            self.fsync.as_secs_f64() * 1000.0
        ));
        s.push_str(&format!(
            "c=1 budget  {:.2} ms = floor + one fsync + 0.3 ms\n",
            (f.per_request() + self.fsync).as_secs_f64() * 1000.0 + 0.3
        ));
        if let (Some((verifier, client)), true) = (self.cpu, self.rounds > 0) {
            let per = |d: Duration| d.as_secs_f64() * 1e6 / self.rounds as f64;
            let wall = self.elapsed.as_secs_f64() * f.cores as f64;
            s.push_str(&format!(
                "cpu         verifier {:.0} µs per answer (floor {:.0} µs), load client {:.0} µs per answer; together {:.0}% of the {} cores' time (the rest: other processes, idle)\n",
                per(verifier),
                f.per_request().as_secs_f64() * 1e6,
                per(client),
                100.0 * (verifier + client).as_secs_f64() / wall.max(1e-9),
                f.cores
            ));
        }
        let c = |name: &str| self.counters.get(name).copied();
        if let (Some(records), Some(fsyncs)) = (
            c("locus_audit_records_total"),
            c("locus_audit_fsyncs_total"),
        ) {
            s.push_str(&format!(
                "audit       {records:.0} records in {fsyncs:.0} fsyncs ({:.1} records per fsync: group commit)\n",
                records / fsyncs.max(1.0)
            ));
        }
        if let (Some(fetches), Some(cached)) = (
            c("locus_collateral_request_fetches_total"),
            c("locus_collateral_request_fetches_while_cached_total"),
        ) {
            s.push_str(&format!(
                "collateral  {fetches:.0} fetches in requests, {cached:.0} of them while a valid copy was cached; {} TDX views built\n",
                c("locus_collateral_tdx_views_built_total").unwrap_or(0.0)
            ));
        }
        match self.verifier_rss_mib {
            Some((peak, now)) => s.push_str(&format!(
                "verifier    peak RSS {peak:.1} MiB, {now:.1} MiB at the end\n"
            )),
            None => s.push_str(
                "verifier    RSS unknown (its process is not ours: pass --verifier-pid)\n",
            ),
        }
        s
    }
}

/// One prepared request: the exact `POST /v1/attest` body.
struct Prepared {
    body: Vec<u8>,
}

/// A fresh key, a challenge, evidence bound to both, serialized.
async fn prepare_one(
    client: &VerifierClient,
    attester: &Arc<dyn Attester>,
    workload: Option<&str>,
) -> Result<(AttestRequest, Es256SigningKey, Evidence), AgentError> {
    let key = Es256SigningKey::generate().map_err(|e| AgentError::Internal(format!("key: {e}")))?;
    let jwk = Credential::public_jwk_of(&key);
    let challenge = client.challenge().await?;
    let report_data = binding::report_data(&challenge.nonce, &jwk.thumbprint_sha256());
    let a = attester.clone();
    let evidence = tokio::task::spawn_blocking(move || a.attest(&report_data))
        .await
        .map_err(|e| AgentError::Internal(format!("attester task: {e}")))??;
    let request = AttestRequest::new(challenge.nonce_b64, &evidence, &jwk, workload, Vec::new());
    Ok((request, key, evidence))
}

/// The evidence signature check of the floor, with the verifier's own functions.
fn evidence_check(evidence: &Evidence) -> Result<Box<dyn Fn() -> bool + Send>, String> {
    use locus_verifier::appraisal::x509::{verify_p256_fixed, verify_p384_fixed, ParsedCert};
    match evidence.tee {
        TeeType::SevSnp => {
            let signed =
                locus_hw::snp::SignedReport::parse(&evidence.raw).map_err(|e| e.to_string())?;
            let vek = evidence
                .certs
                .iter()
                .filter_map(|der| ParsedCert::parse(der, "VEK").ok())
                .find(|c| {
                    matches!(
                        c.subject_cn().as_deref(),
                        Some("SEV-VCEK") | Some("SEV-VLEK")
                    )
                })
                .ok_or("the evidence ships no VCEK/VLEK")?;
            let key = vek.p384_public_key().map_err(|r| r.message)?.to_vec();
            let msg = signed.signed_bytes().to_vec();
            let sig = signed.signature_p384_fixed().map_err(|e| e.to_string())?;
            Ok(Box::new(move || verify_p384_fixed(&key, &msg, &sig)))
        }
        TeeType::Tdx => {
            let q = locus_hw::tdx::SignedQuote::parse_ignoring_trailing_bytes(&evidence.raw)
                .map_err(|e| e.to_string())?;
            let mut key = vec![0x04];
            key.extend_from_slice(&q.quote().attestation_key);
            let msg = q.signed_bytes().to_vec();
            let sig = q.quote().signature;
            Ok(Box::new(move || verify_p256_fixed(&key, &msg, &sig)))
        }
    }
}

/// Median of `f`'s time over about `budget` (at least 50 calls), after a short warm-up.
fn median_time<T>(budget: Duration, mut f: impl FnMut() -> T) -> Duration {
    for _ in 0..20 {
        std::hint::black_box(f());
    }
    let start = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < 50 || start.elapsed() < budget {
        let t = Instant::now();
        std::hint::black_box(f());
        samples.push(t.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// The payload of a compact JWS as JSON (to sign a token of the size the verifier signs).
fn jws_claims(token: &str) -> Option<serde_json::Value> {
    let claims = locus_wimse::jws::CompactJws::parse(token)
        .ok()?
        .claims()
        .ok()?;
    Some(serde_json::Value::Object(claims))
}

/// A claim set of the size the verifier issues, for a run where it issues none.
fn wit_sized_claims() -> serde_json::Value {
    serde_json::json!({
        "iss": "http://127.0.0.1:8443", "sub": "spiffe://locus.example/model-server",
        "iat": 1_767_225_600u64, "exp": 1_767_229_200u64, "jti": "4f1c2a9b7e3d4c5a8b6e9f0a1b2c3d4e",
        "cnf": { "jwk": { "kty": "EC", "crv": "P-256", "alg": "ES256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" } },
        "locus_tee": { "type": "sev-snp", "measurement": "a5".repeat(48), "tcb_status": "UpToDate",
            "debug": false, "platform": "3c".repeat(32), "simulated": true },
        "locus_residency": { "country": "DE", "region": "DE-HE", "site": "fra-1", "zones": ["eu"],
            "sources": ["registry"], "checked_at": 1_767_225_600u64 },
    })
}

/// Measure the floor in this process, one thread, before the timed phase.
fn measure_floor(
    evidence: &Evidence,
    claims: &serde_json::Value,
    ear: bool,
) -> Result<Floor, LoadError> {
    let check = evidence_check(evidence).map_err(LoadError::Config)?;
    if !check() {
        return Err(LoadError::Config(
            "the prepared evidence's signature does not verify".into(),
        ));
    }
    let key = Es256SigningKey::generate()
        .map_err(|e| LoadError::Config(format!("key: {e}")))?
        .with_kid("floor");
    let budget = Duration::from_millis(400);
    Ok(Floor {
        evidence_check: median_time(budget, &check),
        token_sign: median_time(budget, || key.sign_jws("wit+jwt", claims).map(|t| t.len())),
        ear,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// Median `write` + `fdatasync` of a record-sized append to a named file in `dir` (as the audit log appends).
fn measure_fsync(dir: &std::path::Path) -> Duration {
    use std::io::Write as _;
    let Ok(file) = tempfile::NamedTempFile::new_in(dir) else {
        return Duration::ZERO;
    };
    let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(file.path()) else {
        return Duration::ZERO;
    };
    let line = vec![b'x'; 400];
    let mut samples = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        if f.write_all(&line).and_then(|()| f.sync_data()).is_err() {
            return Duration::ZERO;
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat` (clock ticks of 10 ms).
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// VmHWM and VmRSS of a process, MiB.
pub fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

#[derive(Default)]
struct Shared {
    failures: BTreeMap<String, u64>,
    issued: u64,
    latency: Vec<Duration>,
}

/// The stable code of a refusal body (RFC 9457 problem with `code`), else `http_<status>`.
fn refusal_code(status: u16, body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string))
        .unwrap_or_else(|| format!("http_{status}"))
}

/// Run the load.
pub async fn run(cfg: &LoadConfig) -> Result<LoadReport, LoadError> {
    if cfg.clients == 0 || cfg.requests == 0 || cfg.duration.is_zero() {
        return Err(LoadError::Config(
            "clients, requests and duration must be positive".into(),
        ));
    }
    let tee = if cfg.profile.starts_with("tdx") {
        TeeChoice::SimTdx
    } else {
        TeeChoice::SimSnp
    };
    let attester = open_attester(&AttesterOptions {
        tee,
        sim_profile: Some(cfg.profile.clone()),
        ..AttesterOptions::default()
    })?;
    let client = VerifierClient::new(&cfg.verifier, cfg.timeout)?;
    let prepare_start = Instant::now();

    // Warm-up: one full round, its credential checked; it also fills the verifier's caches and memos. A refusal is
    // counted by the timed phase like any other; the floor then signs a WIT-sized claim set of its own.
    let (request, key, evidence) = prepare_one(&client, &attester, cfg.workload.as_deref()).await?;
    let (ear, claims) = match client.attest(&request).await {
        Ok(response) => {
            let ear = response.ear.is_some();
            let claims = jws_claims(&response.wit)
                .ok_or_else(|| LoadError::Config("the WIT has no JSON payload".into()))?;
            Credential::from_response(response, key, crate::unix_now())?;
            (ear, claims)
        }
        Err(AgentError::Refused { .. }) => (false, wit_sized_claims()),
        Err(e) => return Err(e.into()),
    };

    // Every request's key, challenge and evidence, `clients` at a time.
    let next = Arc::new(AtomicU64::new(0));
    let prepared: Arc<Mutex<Vec<Option<Prepared>>>> =
        Arc::new(Mutex::new((0..cfg.requests).map(|_| None).collect()));
    let mut tasks: Vec<tokio::task::JoinHandle<Result<(), AgentError>>> =
        Vec::with_capacity(cfg.clients);
    for _ in 0..cfg.clients {
        let (client, attester, next, prepared) = (
            client.clone(),
            attester.clone(),
            next.clone(),
            prepared.clone(),
        );
        let (workload, total) = (cfg.workload.clone(), cfg.requests);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok(());
                }
                let (request, _, _) = prepare_one(&client, &attester, workload.as_deref()).await?;
                let body = serde_json::to_vec(&request)
                    .map_err(|e| AgentError::Internal(format!("attest body: {e}")))?;
                if let Ok(mut p) = prepared.lock() {
                    p[i as usize] = Some(Prepared { body });
                }
            }
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| LoadError::Config(format!("preparing: {e}")))??;
    }
    let bodies: Vec<Vec<u8>> = std::mem::take(
        &mut *prepared
            .lock()
            .map_err(|_| LoadError::Config("poisoned".into()))?,
    )
    .into_iter()
    .flatten()
    .map(|p| p.body)
    .collect();
    let prepare = prepare_start.elapsed();

    // The preparation's connections are closed before the timed phase opens its own (per-client connection caps).
    drop(client);

    // The floor and the disk, measured here, before the timed phase.
    let floor = measure_floor(&evidence, &claims, ear)?;
    let fsync = measure_fsync(
        cfg.fsync_dir
            .as_deref()
            .unwrap_or_else(|| std::path::Path::new("/tmp")),
    );

    // The timed phase: the prepared bodies, `clients` keep-alive HTTP/1.1 connections driven by one thread (hyper's
    // connection API: no pool, no per-request layers), so the client takes as little of the shared cores as it can.
    let addr = authority_of(&cfg.verifier)?;
    let uri: hyper::Uri = format!("{}/v1/attest", cfg.verifier.trim_end_matches('/'))
        .parse()
        .map_err(|e| LoadError::Config(format!("verifier URL: {e}")))?;
    let bodies: Arc<Vec<hyper::body::Bytes>> =
        Arc::new(bodies.into_iter().map(hyper::body::Bytes::from).collect());
    let verifier_pid = cfg.verifier_pid.map(|p| p.to_string());
    let cpu_before = (verifier_pid.as_deref().and_then(cpu_time), cpu_time("self"));
    let (clients, timeout, duration) = (cfg.clients, cfg.timeout, cfg.duration);
    let timed = std::thread::Builder::new()
        .name("locus-load-timed".into())
        .spawn(move || -> Result<(Shared, Duration), LoadError> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| LoadError::Config(format!("tokio runtime: {e}")))?;
            rt.block_on(timed_phase(addr, uri, bodies, clients, timeout, duration))
        })
        .map_err(|e| LoadError::Config(format!("timed phase thread: {e}")))?;
    let (mut s, elapsed) = timed
        .join()
        .map_err(|_| LoadError::Config("the timed phase panicked".into()))??;
    let cpu = match (
        cpu_before,
        verifier_pid.as_deref().and_then(cpu_time),
        cpu_time("self"),
    ) {
        ((Some(v0), Some(c0)), Some(v1), Some(c1)) => Some((v1 - v0, c1 - c0)),
        _ => None,
    };
    let http = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .build()
        .map_err(|e| LoadError::Config(format!("HTTP client: {e}")))?;
    let counters = match http
        .get(format!("{}/metrics", cfg.verifier.trim_end_matches('/')))
        .send()
        .await
    {
        Ok(resp) => resp
            .text()
            .await
            .map(|t| counters_of(&t, &COUNTERS))
            .unwrap_or_default(),
        Err(_) => BTreeMap::new(),
    };
    s.latency.sort();
    Ok(LoadReport {
        rounds: s.issued + s.failures.values().sum::<u64>(),
        issued: s.issued,
        failures: s.failures,
        elapsed,
        prepare,
        verifier_latency: s.latency,
        floor,
        fsync,
        verifier_rss_mib: cfg.verifier_pid.and_then(rss_mib),
        cpu,
        counters,
    })
}

/// `host:port` of a plaintext `http://` verifier URL (the load runs on loopback without TLS).
fn authority_of(url: &str) -> Result<String, LoadError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| LoadError::Config(format!("verifier URL {url}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(LoadError::Config(format!(
            "verifier URL {url}: the load runs over plaintext http:// on loopback"
        )));
    }
    let host = uri
        .host()
        .ok_or_else(|| LoadError::Config(format!("verifier URL {url}: no host")))?;
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(80)))
}

/// `clients` connections, each sending the next prepared body as soon as its previous answer is in, until the bodies
/// or the duration run out. Returns what they saw and the phase's wall time.
async fn timed_phase(
    addr: String,
    uri: hyper::Uri,
    bodies: Arc<Vec<hyper::body::Bytes>>,
    clients: usize,
    timeout: Duration,
    duration: Duration,
) -> Result<(Shared, Duration), LoadError> {
    // Every connection is open before the clock starts.
    let mut senders = Vec::with_capacity(clients);
    for _ in 0..clients {
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| LoadError::Config(format!("connect {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| LoadError::Config(format!("HTTP/1.1 handshake: {e}")))?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for mut sender in senders {
        let (uri, bodies, next) = (uri.clone(), bodies.clone(), next.clone());
        tasks.spawn(async move {
            let mut local = Shared::default();
            let issued = memchr::memmem::Finder::new(b"\"wit\":");
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                let answer =
                    tokio::time::timeout(timeout, attest_once(&mut sender, &uri, body.clone()))
                        .await;
                // The latency is the round trip; reading the answer is the client's own time.
                local.latency.push(t.elapsed());
                let outcome = match answer {
                    Ok(Ok((200, b))) if issued.find(&b).is_some() => Ok(()),
                    Ok(Ok((status, b))) => Err(refusal_code(status, &b)),
                    Ok(Err(())) | Err(_) => Err("verifier_unreachable".to_string()),
                };
                let failed = outcome.is_err();
                match outcome {
                    Ok(()) => local.issued += 1,
                    Err(code) => *local.failures.entry(code).or_default() += 1,
                }
                // A connection that failed cannot be trusted to carry the next request.
                if failed && sender.ready().await.is_err() {
                    break;
                }
            }
            local
        });
    }
    let mut s = Shared::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(local) => {
                s.issued += local.issued;
                s.latency.extend(local.latency);
                for (code, n) in local.failures {
                    *s.failures.entry(code).or_default() += n;
                }
            }
            // A panicking client task is counted as an internal failure rather than aborting the report.
            Err(_) => *s.failures.entry("internal".into()).or_default() += 1,
        }
    }
    Ok((s, start.elapsed()))
}

/// One `POST /v1/attest` on an open connection: the status and the whole answer body.
async fn attest_once(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>,
    uri: &hyper::Uri,
    body: hyper::body::Bytes,
) -> Result<(u16, hyper::body::Bytes), ()> {
    use http_body_util::BodyExt as _;
    sender.ready().await.map_err(|_| ())?;
    let request = hyper::Request::post(uri.path())
        .header(
            hyper::header::HOST,
            uri.authority().map(|a| a.as_str()).unwrap_or("localhost"),
        )
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(body))
        .map_err(|_| ())?;
    let response = sender.send_request(request).await.map_err(|_| ())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|_| ())?
        .to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(quantile(&v, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&v, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(
            quantile(&[Duration::from_millis(7)], 0.99),
            Some(Duration::from_millis(7))
        );
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_floor_counts_the_ear_signature_when_the_verifier_sends_ears() {
        let f = Floor {
            evidence_check: Duration::from_micros(200),
            token_sign: Duration::from_micros(20),
            ear: true,
            cores: 2,
        };
        assert_eq!(f.per_request(), Duration::from_micros(240));
        assert!((f.rps() - 2.0 / 240e-6).abs() < 1e-6);
        let without = Floor { ear: false, ..f };
        assert_eq!(without.per_request(), Duration::from_micros(220));
    }

    #[test]
    fn the_result_line_carries_every_field_with_the_ratio_to_the_floor() {
        let report = LoadReport {
            rounds: 1000,
            issued: 998,
            failures: BTreeMap::from([("overloaded".to_string(), 2)]),
            elapsed: Duration::from_secs(1),
            verifier_latency: (1..=100).map(Duration::from_millis).collect(),
            floor: Floor {
                evidence_check: Duration::from_micros(180),
                token_sign: Duration::from_micros(10),
                ear: true,
                cores: 2,
            },
            verifier_rss_mib: Some((40.25, 30.0)),
            ..LoadReport::default()
        };
        assert_eq!(
            report.result_line(TeeType::SevSnp),
            "RESULT tee=sev-snp rps=1000 floor_rps=10000 ratio=0.100 p50_ms=50.000 p99_ms=99.000 errors=2 rss_mib=40.2"
        );
    }

    #[test]
    fn metrics_counters_are_read_by_exact_name() {
        let text = "# HELP x\nlocus_audit_records_total 12\nlocus_audit_records_total_bogus 3\nlocus_audit_fsyncs_total 4\nother{a=\"b\"} 1\n";
        let c = counters_of(text, &COUNTERS);
        assert_eq!(c.get("locus_audit_records_total"), Some(&12.0));
        assert_eq!(c.get("locus_audit_fsyncs_total"), Some(&4.0));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn refusal_bodies_give_their_stable_code() {
        assert_eq!(
            refusal_code(403, br#"{"code":"geofence_denied","status":403}"#),
            "geofence_denied"
        );
        assert_eq!(refusal_code(502, b"<html>"), "http_502");
    }
}
