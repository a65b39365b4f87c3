//! Prometheus text metrics (docs/api.md): requests by route and status, decisions by TEE and outcome (`issued` or the
//! refusal code), a latency histogram per route, and in-flight requests. Kept dependency-free: a few maps under one
//! mutex, touched once per request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Debug)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default, Debug)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    decisions: BTreeMap<(&'static str, &'static str), u64>,
    latency: BTreeMap<String, Histogram>,
}

#[derive(Default, Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    in_flight: AtomicI64,
    reloads_ok: AtomicI64,
    reloads_failed: AtomicI64,
    connections_refused: AtomicI64,
    rate_limited: AtomicI64,
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *g.requests.entry((route.to_string(), status)).or_default() += 1;
        let h = g.latency.entry(route.to_string()).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// `outcome` is `issued` or a refusal code.
    pub fn decision(&self, tee: &'static str, outcome: &'static str) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *g.decisions.entry((tee, outcome)).or_default() += 1;
    }

    pub fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    /// A connection closed at accept because a connection cap was reached.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A request answered 429 by admission control.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reload(&self, ok: bool) {
        if ok {
            self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reloads_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = String::new();
        counter(
            &mut s,
            "locus_connections_refused_total",
            "Connections closed at accept by a connection cap.",
            self.connections_refused.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "locus_rate_limited_total",
            "Requests answered 429 by per-client admission control.",
            self.rate_limited.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP locus_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(s, "# TYPE locus_requests_total counter");
        for ((route, status), n) in &g.requests {
            let _ = writeln!(
                s,
                "locus_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(s, "# HELP locus_attest_outcomes_total Attestation decisions by TEE and outcome (issued or refusal code).");
        let _ = writeln!(s, "# TYPE locus_attest_outcomes_total counter");
        for ((tee, outcome), n) in &g.decisions {
            let _ = writeln!(
                s,
                "locus_attest_outcomes_total{{tee=\"{tee}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP locus_request_duration_seconds Request latency by route."
        );
        let _ = writeln!(s, "# TYPE locus_request_duration_seconds histogram");
        for (route, h) in &g.latency {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "locus_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                s,
                "locus_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                s,
                "locus_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                s,
                "locus_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(s, "# HELP locus_in_flight_requests Requests being served.");
        let _ = writeln!(s, "# TYPE locus_in_flight_requests gauge");
        let _ = writeln!(
            s,
            "locus_in_flight_requests {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP locus_config_reloads_total Configuration reloads by result."
        );
        let _ = writeln!(s, "# TYPE locus_config_reloads_total counter");
        let _ = writeln!(
            s,
            "locus_config_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "locus_config_reloads_total{{result=\"failed\"}} {}",
            self.reloads_failed.load(Ordering::Relaxed)
        );
        s
    }
}

/// One unlabelled counter: its HELP and TYPE lines and its value.
fn counter(s: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} counter");
    let _ = writeln!(s, "{name} {value}");
}

/// The audit writer's counters: records made durable and the fsync batches they took (group commit).
pub fn render_audit(s: &mut String, a: &super::audit::AuditStats) {
    counter(
        s,
        "locus_audit_records_total",
        "Audit records made durable.",
        a.records,
    );
    counter(
        s,
        "locus_audit_fsyncs_total",
        "Audit write + fsync batches (one fsync serves every record queued meanwhile).",
        a.batches,
    );
}

/// The collateral layer's counters: where items came from, the network fetches by path, and the fetches a
/// request made of an item that had a valid cached copy (0 when the cache works).
pub fn render_collateral(s: &mut String, c: &crate::collateral::CollateralStats) {
    let _ = writeln!(
        s,
        "# HELP locus_collateral_lookups_total Collateral items served, by where they came from."
    );
    let _ = writeln!(s, "# TYPE locus_collateral_lookups_total counter");
    for (source, n) in [
        ("memory", c.memory_hits),
        ("disk", c.disk_hits),
        ("offline_dir", c.offline_hits),
    ] {
        let _ = writeln!(
            s,
            "locus_collateral_lookups_total{{source=\"{source}\"}} {n}"
        );
    }
    counter(
        s,
        "locus_collateral_fetches_total",
        "Successful network fetches of collateral (requests and refreshes).",
        c.fetches,
    );
    counter(
        s,
        "locus_collateral_request_fetches_total",
        "Network fetches of collateral a request waited for.",
        c.request_fetches,
    );
    counter(
        s,
        "locus_collateral_request_fetches_while_cached_total",
        "Request fetches of an item that had a valid cached copy (expected 0).",
        c.request_fetches_while_cached,
    );
    counter(
        s,
        "locus_collateral_tdx_views_built_total",
        "TDX collateral views built (once per platform and refresh).",
        c.tdx_views_built,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_counts_requests_outcomes_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("/v1/attest", 200, Duration::from_millis(3));
        m.request("/v1/attest", 403, Duration::from_millis(30));
        m.decision("tdx", "issued");
        m.decision("sev-snp", "geofence_denied");
        let text = m.render();
        assert!(text.contains("locus_requests_total{route=\"/v1/attest\",status=\"200\"} 1"));
        assert!(text.contains(
            "locus_attest_outcomes_total{tee=\"sev-snp\",outcome=\"geofence_denied\"} 1"
        ));
        assert!(text.contains(
            "locus_request_duration_seconds_bucket{route=\"/v1/attest\",le=\"0.005\"} 1"
        ));
        assert!(text
            .contains("locus_request_duration_seconds_bucket{route=\"/v1/attest\",le=\"0.05\"} 2"));
        assert!(text.contains("locus_request_duration_seconds_count{route=\"/v1/attest\"} 2"));
    }
}
