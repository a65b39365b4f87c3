//! `locus-load`: a bounded load generator for a verifier. `clients` concurrent agents each repeat one attestation
//! round — `POST /v1/challenge`, simulated evidence bound to the nonce and the client's key (docs/architecture.md#evidence-binding),
//! `POST /v1/attest` — until `requests` rounds are done in total or `duration` has passed, whichever comes first.
//! It reports throughput, outcomes by code, and p50/p99 latency of the verifier's part (challenge + attest, without
//! the client-side evidence generation) and of the whole round.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use locus_agent::binding;
use locus_agent::client::{AttestRequest, VerifierClient};
use locus_agent::credential::Credential;
use locus_agent::select::{open_attester, AttesterOptions, TeeChoice};
use locus_agent::AgentError;
use locus_hw::Attester;
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
    /// Upper bound on the run time.
    pub duration: Duration,
    /// Simulator profile (`snp-*` or `tdx-*`).
    pub profile: String,
    /// Workload to ask for (`None`: the verifier picks).
    pub workload: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Why the load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad arguments.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Setting up the client or the attester.
    #[error("{0}")]
    Agent(#[from] AgentError),
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Rounds attempted.
    pub rounds: u64,
    /// Rounds that got a WIT.
    pub issued: u64,
    /// Failures by stable code.
    pub failures: BTreeMap<String, u64>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Verifier time (challenge + attest) of each round, sorted.
    pub verifier_latency: Vec<Duration>,
    /// Whole-round time (including evidence generation), sorted.
    pub round_latency: Vec<Duration>,
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
    d.map(|d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

impl LoadReport {
    /// Rounds per second.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.rounds as f64 / secs
        } else {
            0.0
        }
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
            "verifier    p50 {}  p99 {}  max {}   (challenge + attest)\n",
            ms(quantile(&self.verifier_latency, 0.50)),
            ms(quantile(&self.verifier_latency, 0.99)),
            ms(self.verifier_latency.last().copied())
        ));
        s.push_str(&format!(
            "round       p50 {}  p99 {}  max {}   (with client-side evidence)\n",
            ms(quantile(&self.round_latency, 0.50)),
            ms(quantile(&self.round_latency, 0.99)),
            ms(self.round_latency.last().copied())
        ));
        s
    }
}

#[derive(Default)]
struct Shared {
    failures: BTreeMap<String, u64>,
    issued: u64,
    verifier_latency: Vec<Duration>,
    round_latency: Vec<Duration>,
}

async fn one_round(
    client: &VerifierClient,
    attester: &Arc<dyn Attester>,
    workload: Option<&str>,
) -> (Result<(), AgentError>, Duration, Duration) {
    let start = Instant::now();
    let mut verifier_time = Duration::ZERO;
    let result = async {
        let key =
            Es256SigningKey::generate().map_err(|e| AgentError::Internal(format!("key: {e}")))?;
        let jwk = Credential::public_jwk_of(&key);
        let t = Instant::now();
        let challenge = client.challenge().await?;
        verifier_time += t.elapsed();
        let report_data = binding::report_data(&challenge.nonce, &jwk.thumbprint_sha256());
        let a = attester.clone();
        let evidence = tokio::task::spawn_blocking(move || a.attest(&report_data))
            .await
            .map_err(|e| AgentError::Internal(format!("attester task: {e}")))??;
        let request = AttestRequest {
            nonce: challenge.nonce_b64,
            tee: evidence.tee.as_str().to_string(),
            evidence: locus_wimse::b64::encode(&evidence.raw),
            certs: evidence
                .certs
                .iter()
                .map(locus_wimse::b64::encode)
                .collect(),
            jwk: jwk.to_value(),
            workload: workload.map(str::to_string),
            proximity: Vec::new(),
        };
        let t = Instant::now();
        let response = client.attest(&request).await?;
        verifier_time += t.elapsed();
        Credential::from_response(response, key, crate::unix_now()).map(|_| ())
    }
    .await;
    (result, verifier_time, start.elapsed())
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
    let next = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Mutex::new(Shared::default()));
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut tasks = Vec::with_capacity(cfg.clients);
    for _ in 0..cfg.clients {
        let (client, attester, next, shared) = (
            client.clone(),
            attester.clone(),
            next.clone(),
            shared.clone(),
        );
        let workload = cfg.workload.clone();
        let total = cfg.requests;
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline && next.fetch_add(1, Ordering::Relaxed) < total {
                let (res, vt, rt) = one_round(&client, &attester, workload.as_deref()).await;
                let Ok(mut s) = shared.lock() else { return };
                match res {
                    Ok(()) => s.issued += 1,
                    Err(e) => *s.failures.entry(e.code().to_string()).or_default() += 1,
                }
                s.verifier_latency.push(vt);
                s.round_latency.push(rt);
            }
        }));
    }
    for t in tasks {
        // A panicking client task is counted as an internal failure rather than aborting the report.
        if t.await.is_err() {
            if let Ok(mut s) = shared.lock() {
                *s.failures.entry("internal".into()).or_default() += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    let mut s = std::mem::take(
        &mut *shared
            .lock()
            .map_err(|_| LoadError::Config("poisoned".into()))?,
    );
    s.verifier_latency.sort();
    s.round_latency.sort();
    Ok(LoadReport {
        rounds: s.issued + s.failures.values().sum::<u64>(),
        issued: s.issued,
        failures: s.failures,
        elapsed,
        verifier_latency: s.verifier_latency,
        round_latency: s.round_latency,
    })
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
}
