//! The end-to-end demo (README.md), as a library so the binary stays thin:
//!
//! 1. a verifier on loopback (in-process, `examples/verifier.toml`, state in a temporary directory);
//! 2. an agent on the simulated platform `snp-fra-1` (Frankfurt, DE) asks for the EU-fenced workload → a WIT whose
//!    claims say what and where;
//! 3. an agent on `snp-iad-1` (Ashburn, US) asks for the same workload → refused `geofence_denied`; the unfenced
//!    batch worker is still issued there, with a US residency;
//! 4. a relying party (`locus_wimse::RelyingParty`, trust anchor fetched from the verifier's JWKS) accepts the WIT
//!    with a WPT signed by the agent's key for its target URI, and refuses a replay and a proof for another service;
//! 5. proximity (docs/proximity.md): the verifier also serves as landmark `fra-lm` at site fra-1; the agent on
//!    `snp-fra-1` asks for a workload fenced `within 500 km of fra-lm`, answers the landmark's timed challenges with
//!    its attested key, and gets a WIT whose residency shows the bound beside the registry location.
//!
//! Every step checks its outcome; the first deviation ends the demo with [`DemoError::Deviation`].

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use locus_agent::attest::{obtain_credential, system_now};
use locus_agent::client::VerifierClient;
use locus_agent::credential::Credential;
use locus_agent::select::{open_attester, AttesterOptions, TeeChoice};
use locus_agent::AgentError;
use locus_verifier::service::config::{self, AuditTarget, Config};
use locus_wimse::wpt::WptRequest;
use locus_wimse::{Jwks, RelyingParty, RpConfig, TrustAnchor, TrustDomain, TrustStore, WitPolicy};
use serde_json::Value;

use crate::{paths, ANY_WORKLOAD, EU_WORKLOAD, TRUST_DOMAIN};

/// The workload the demo adds, fenced by distance to the landmark `fra-lm`.
pub const NEAR_WORKLOAD: &str = "spiffe://locus.example/near-fra";
/// The landmark the demo's verifier serves as.
pub const DEMO_LANDMARK: &str = "fra-lm";

/// The relying party's own origin in the demo; WPTs are made for a URI under it.
pub const RP_AUTHORITY: &str = "https://orders.example";
/// The request path the workload calls on the relying party.
pub const RP_PATH: &str = "/v1/orders";

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Writing the output.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
    /// The demo could not set itself up (config, socket, runtime).
    #[error("setup: {0}")]
    Setup(String),
    /// A step did not give the expected outcome.
    #[error("step {step:?} deviated: {detail}")]
    Deviation {
        /// The step.
        step: &'static str,
        /// What was expected and what happened.
        detail: String,
    },
}

fn deviation(step: &'static str, detail: impl Into<String>) -> DemoError {
    DemoError::Deviation {
        step,
        detail: detail.into(),
    }
}

/// What the demo established (for callers that want the values, e.g. tests).
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The verifier's URL.
    pub verifier: String,
    /// `sub` of the WIT issued on fra-1.
    pub issued_sub: String,
    /// `locus_residency` of that WIT.
    pub residency: Value,
    /// `locus_tee` of that WIT.
    pub tee: Value,
    /// The refusal code on iad-1.
    pub refusal_code: String,
    /// The identifier the relying party authenticated.
    pub rp_authenticated: String,
}

/// Load `examples/verifier.toml` with its state (keys, caches, audit log) in `state_dir` and `issuer` as `iss`.
pub fn demo_config(state_dir: &Path, issuer: &str) -> Result<Config, DemoError> {
    let path = paths::example_config_path();
    let mut cfg = config::load(&path).map_err(|e| DemoError::Setup(format!("{e}")))?;
    cfg.server.state_dir = state_dir.to_path_buf();
    cfg.server.keys_dir = state_dir.join("keys");
    cfg.server.audit = AuditTarget::File(state_dir.join("audit.jsonl"));
    cfg.server.issuer = issuer.to_string();
    cfg.server.listen = None;
    Ok(cfg)
}

/// Make the demo's verifier a landmark at site fra-1 (key created in its keys directory), trust it as `fra-lm` at
/// `base`, and add [`NEAR_WORKLOAD`]: the EU workload's reference values, fenced `within 500 km of fra-lm`.
pub fn add_demo_landmark(cfg: &mut Config, base: &str) -> Result<(), DemoError> {
    use locus_verifier::config::{to_micro, Geofence, LandmarkRole, TrustedLandmark, Within};
    let site = cfg
        .site("fra-1")
        .and_then(|s| s.coordinates)
        .ok_or_else(|| DemoError::Setup("site fra-1 has no coordinates".into()))?;
    let coordinates = [to_micro(site[0]), to_micro(site[1])];
    std::fs::create_dir_all(&cfg.server.keys_dir)
        .map_err(|e| DemoError::Setup(format!("keys dir: {e}")))?;
    let key = locus_verifier::service::keys::landmark_key(&cfg.server.keys_dir, true)
        .map_err(|e| DemoError::Setup(format!("landmark key: {e}")))?;
    cfg.landmark_role = Some(LandmarkRole {
        site: "fra-1".into(),
        coordinates,
        rounds: 8,
        round_timeout: Duration::from_secs(2),
        max_sessions: 16,
    });
    cfg.landmarks.push(TrustedLandmark {
        name: DEMO_LANDMARK.into(),
        url: base.to_string(),
        site: "fra-1".into(),
        coordinates,
        public_key: key.public_key(),
        id: key.thumbprint_sha256(),
    });
    let mut near = cfg
        .workload(EU_WORKLOAD)
        .cloned()
        .ok_or_else(|| DemoError::Setup(format!("{EU_WORKLOAD} is not configured")))?;
    near.id = locus_wimse::WorkloadId::parse(NEAR_WORKLOAD)
        .map_err(|e| DemoError::Setup(format!("{NEAR_WORKLOAD}: {e}")))?;
    near.default = false;
    near.geofence = Some(Geofence {
        within: vec![Within {
            landmark: DEMO_LANDMARK.into(),
            km: 500,
        }],
        ..Geofence::default()
    });
    cfg.workloads.push(near);
    Ok(())
}

fn heading(out: &mut dyn Write, title: &str) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "== {title} ==")?;
    Ok(())
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn agent_attest(
    base: &str,
    profile: &str,
    workload: &str,
) -> Result<Result<Credential, AgentError>, DemoError> {
    let client = VerifierClient::new(base, Duration::from_secs(30))
        .map_err(|e| DemoError::Setup(format!("verifier client: {e}")))?;
    let attester = open_attester(&AttesterOptions {
        tee: TeeChoice::SimSnp,
        sim_profile: Some(profile.to_string()),
        ..AttesterOptions::default()
    })
    .map_err(|e| DemoError::Setup(format!("simulated attester {profile}: {e}")))?;
    Ok(obtain_credential(&client, attester, Some(workload), &system_now).await)
}

fn expect_eq(step: &'static str, what: &str, got: &Value, want: &str) -> Result<(), DemoError> {
    if got.as_str() == Some(want) {
        Ok(())
    } else {
        Err(deviation(
            step,
            format!("{what}: expected {want:?}, got {got}"),
        ))
    }
}

/// Wait (bounded) for `GET /readyz` to answer 200.
async fn wait_ready(http: &reqwest::Client, base: &str) -> Result<(), DemoError> {
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(DemoError::Setup(format!(
        "{base}/readyz never answered 200"
    )))
}

/// Run the demo, writing its narrative to `out`. Exits with the first deviation.
pub async fn run(out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    writeln!(out, "Locus end-to-end demo: what a workload is, where it runs, and a WIMSE credential that says so.")?;
    writeln!(
        out,
        "Everything runs on the software TEE simulator (no hardware needed)."
    )?;

    // ---- the verifier -------------------------------------------------------------------------------------------
    heading(out, "1. Verifier")?;
    let state = tempfile::Builder::new()
        .prefix("locus-demo-")
        .tempdir()
        .map_err(|e| DemoError::Setup(format!("temporary state directory: {e}")))?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| DemoError::Setup(format!("bind 127.0.0.1:0: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| DemoError::Setup(format!("local address: {e}")))?;
    let base = format!("http://{addr}");
    let mut cfg = demo_config(state.path(), &base)?;
    add_demo_landmark(&mut cfg, &base)?;
    writeln!(
        out,
        "config          {}",
        paths::example_config_path().display()
    )?;
    writeln!(out, "state (temp)    {}", state.path().display())?;
    writeln!(out, "listening on    {base}")?;
    writeln!(
        out,
        "simulator trust {} (every credential says \"simulated\": true; never in production)",
        cfg.trust.simulator
    )?;
    if !cfg.trust.simulator {
        return Err(deviation(
            "verifier",
            "examples/verifier.toml does not trust the simulator",
        ));
    }
    for p in &cfg.platforms {
        let site = cfg.site(&p.site);
        writeln!(
            out,
            "platform        {:<18} {:<8} site {:<6} country {}",
            p.name.as_deref().unwrap_or("(unnamed)"),
            p.tee.as_str(),
            p.site,
            site.map(|s| s.country.as_str()).unwrap_or("?")
        )?;
    }
    for w in &cfg.workloads {
        let fence = match &w.geofence {
            None => "not fenced".to_string(),
            Some(g) if !g.zones.is_empty() => format!("geo-fence: zones {:?}", g.zones),
            Some(g) if !g.countries.is_empty() => format!("geo-fence: countries {:?}", g.countries),
            Some(g) => format!(
                "geo-fence: within {}",
                g.within
                    .iter()
                    .map(|w| format!("{} km of landmark {}", w.km, w.landmark))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        writeln!(out, "workload        {:<40} {fence}", w.id)?;
    }

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(locus_verifier::service::run(listener, cfg, async move {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| DemoError::Setup(format!("HTTP client: {e}")))?;
    let outcome = steps(out, &http, &base).await;

    // ---- shut down ----------------------------------------------------------------------------------------------
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => {
            return Err(outcome.err().unwrap_or(DemoError::Setup(format!(
                "verifier stopped with an error: {e}"
            ))))
        }
        Ok(Err(e)) => {
            return Err(outcome
                .err()
                .unwrap_or(DemoError::Setup(format!("verifier task: {e}"))))
        }
        Err(_) => {
            return Err(outcome
                .err()
                .unwrap_or(DemoError::Setup("verifier did not stop within 10 s".into())))
        }
    }
    let report = outcome?;
    heading(out, "Result")?;
    writeln!(out, "Every step gave the expected outcome:")?;
    writeln!(
        out,
        "  issued      {} on snp-fra-1 (residency {} / {})",
        report.issued_sub,
        report.residency["country"].as_str().unwrap_or("?"),
        report.residency["site"].as_str().unwrap_or("?")
    )?;
    writeln!(
        out,
        "  refused     {} on snp-iad-1 ({})",
        EU_WORKLOAD, report.refusal_code
    )?;
    writeln!(
        out,
        "  accepted    by the relying party as {}",
        report.rp_authenticated
    )?;
    Ok(report)
}

/// Step 5: a bound from landmark `fra-lm` beside the registry location.
async fn proximity_step(out: &mut dyn Write, base: &str) -> Result<(), DemoError> {
    heading(
        out,
        "5. Proximity: the agent's key answers timed challenges from landmark fra-lm (site fra-1)",
    )?;
    writeln!(out, "agent: POST /v1/challenge names {NEAR_WORKLOAD} → the answer lists landmark {DEMO_LANDMARK} → GET /v1/proximity (upgraded), 8 challenges signed with the attested key → signed statement → POST /v1/attest with it")?;
    let step = "proximity on snp-fra-1";
    let cred = agent_attest(base, "snp-fra-1", NEAR_WORKLOAD)
        .await?
        .map_err(|e| deviation(step, format!("expected a WIT, got {} ({e})", e.code())))?;
    let residency = cred
        .claims()
        .get("locus_residency")
        .cloned()
        .unwrap_or(Value::Null);
    let bound = residency["max_distance_km"][DEMO_LANDMARK]
        .as_u64()
        .ok_or_else(|| {
            deviation(
                step,
                format!("no max_distance_km for {DEMO_LANDMARK}: {residency}"),
            )
        })?;
    writeln!(
        out,
        "  locus_residency\n{}",
        indent(&pretty(&residency), "    ")
    )?;
    writeln!(
        out,
        "registry says    site {} ({})",
        residency["site"].as_str().unwrap_or("?"),
        residency["country"].as_str().unwrap_or("?")
    )?;
    writeln!(
        out,
        "physics says     within {bound} km of landmark {DEMO_LANDMARK} (light in vacuum over the minimum round trip, on loopback)"
    )?;
    if bound > 500 {
        return Err(deviation(
            step,
            format!("bound {bound} km over the 500 km fence"),
        ));
    }
    let sources = residency["sources"].as_array().cloned().unwrap_or_default();
    if !sources.iter().any(|s| s == "proximity") || !sources.iter().any(|s| s == "registry") {
        return Err(deviation(
            step,
            format!("sources: {}", residency["sources"]),
        ));
    }
    Ok(())
}

async fn steps(
    out: &mut dyn Write,
    http: &reqwest::Client,
    base: &str,
) -> Result<DemoReport, DemoError> {
    wait_ready(http, base).await?;
    writeln!(out, "ready           GET {base}/readyz → 200")?;

    // ---- issued on fra-1 ----------------------------------------------------------------------------------------
    heading(
        out,
        "2. Agent on snp-fra-1 (site fra-1, DE) asks for the EU-fenced workload",
    )?;
    writeln!(out, "agent: fresh P-256 key in memory → POST /v1/challenge → simulated SEV-SNP report bound to nonce and key → POST /v1/attest")?;
    let step = "issue on snp-fra-1";
    let cred = agent_attest(base, "snp-fra-1", EU_WORKLOAD)
        .await?
        .map_err(|e| deviation(step, format!("expected a WIT, got {} ({e})", e.code())))?;
    let claims = cred.claims();
    let null = Value::Null;
    let get = |k: &str| claims.get(k).unwrap_or(&null);
    writeln!(out, "issued WIT ({} bytes), claims:", cred.wit().len())?;
    writeln!(
        out,
        "  sub               {}",
        get("sub").as_str().unwrap_or("?")
    )?;
    writeln!(
        out,
        "  iss               {}",
        get("iss").as_str().unwrap_or("?")
    )?;
    writeln!(
        out,
        "  iat / exp         {} / {} (lifetime {} s)",
        cred.iat(),
        cred.exp(),
        cred.exp() - cred.iat()
    )?;
    writeln!(
        out,
        "  cnf.jwk           thumbprint {} (the agent's key; it never leaves the agent)",
        cred.public_jwk().thumbprint_b64()
    )?;
    writeln!(
        out,
        "  locus_tee\n{}",
        indent(&pretty(get("locus_tee")), "    ")
    )?;
    writeln!(
        out,
        "  locus_residency\n{}",
        indent(&pretty(get("locus_residency")), "    ")
    )?;
    expect_eq(step, "sub", get("sub"), EU_WORKLOAD)?;
    let tee = get("locus_tee").clone();
    let residency = get("locus_residency").clone();
    expect_eq(step, "locus_tee.type", &tee["type"], "sev-snp")?;
    if tee["simulated"] != Value::Bool(true) {
        return Err(deviation(
            step,
            format!(
                "locus_tee.simulated: expected true, got {}",
                tee["simulated"]
            ),
        ));
    }
    if tee["debug"] != Value::Bool(false) {
        return Err(deviation(
            step,
            format!("locus_tee.debug: expected false, got {}", tee["debug"]),
        ));
    }
    expect_eq(step, "locus_residency.country", &residency["country"], "DE")?;
    expect_eq(step, "locus_residency.site", &residency["site"], "fra-1")?;
    if !residency["zones"]
        .as_array()
        .is_some_and(|z| z.iter().any(|v| v == "eu"))
    {
        return Err(deviation(
            step,
            format!(
                "locus_residency.zones: expected to contain \"eu\", got {}",
                residency["zones"]
            ),
        ));
    }

    // ---- refused on iad-1 ---------------------------------------------------------------------------------------
    heading(
        out,
        "3. Agent on snp-iad-1 (site iad-1, US) asks for the same workload",
    )?;
    let step = "refuse on snp-iad-1";
    let refusal_code = match agent_attest(base, "snp-iad-1", EU_WORKLOAD).await? {
        Ok(c) => {
            return Err(deviation(
                step,
                format!(
                    "expected geofence_denied, got a WIT for {:?}",
                    c.claims().get("sub")
                ),
            ))
        }
        Err(AgentError::Refused {
            status,
            code,
            message,
        }) => {
            writeln!(out, "refused: HTTP {status}, code {code}")?;
            writeln!(out, "  {message}")?;
            if code != "geofence_denied" || status != 403 {
                return Err(deviation(
                    step,
                    format!("expected 403 geofence_denied, got {status} {code}"),
                ));
            }
            code
        }
        Err(e) => {
            return Err(deviation(
                step,
                format!("expected geofence_denied, got {} ({e})", e.code()),
            ))
        }
    };
    writeln!(out, "The evidence is genuine and the workload's measurement matches; the platform is in the US, outside the fence.")?;
    let step = "unfenced workload on snp-iad-1";
    let batch = agent_attest(base, "snp-iad-1", ANY_WORKLOAD)
        .await?
        .map_err(|e| deviation(step, format!("expected a WIT, got {} ({e})", e.code())))?;
    let batch_res = batch
        .claims()
        .get("locus_residency")
        .cloned()
        .unwrap_or(Value::Null);
    writeln!(
        out,
        "The unfenced {} is issued on the same platform: residency {} / {} / zones {}",
        ANY_WORKLOAD,
        batch_res["country"].as_str().unwrap_or("?"),
        batch_res["site"].as_str().unwrap_or("?"),
        batch_res["zones"]
    )?;
    expect_eq(
        step,
        "sub",
        batch.claims().get("sub").unwrap_or(&null),
        ANY_WORKLOAD,
    )?;
    expect_eq(step, "locus_residency.country", &batch_res["country"], "US")?;

    // ---- relying party ------------------------------------------------------------------------------------------
    heading(out, "4. Relying party accepts WIT + WPT")?;
    let step = "relying party";
    let jwks_text = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .map_err(|e| deviation(step, format!("GET jwks: {e}")))?
        .text()
        .await
        .map_err(|e| deviation(step, format!("reading jwks: {e}")))?;
    let jwks = Jwks::from_json(&jwks_text).map_err(|e| deviation(step, format!("JWKS: {e}")))?;
    writeln!(out, "trust anchor    {} key(s) from {base}/.well-known/jwks.json for trust domain {TRUST_DOMAIN}", jwks.keys.len())?;
    let mut trust = TrustStore::new();
    trust.insert(
        TrustDomain::parse(TRUST_DOMAIN)
            .map_err(|e| DemoError::Setup(format!("trust domain: {e}")))?,
        TrustAnchor {
            keys: jwks,
            issuers: vec![base.to_string()],
        },
    );
    let mut rp_cfg = RpConfig::new(trust, vec![RP_AUTHORITY.to_string()]);
    rp_cfg.wit_policy = WitPolicy::wit_svid();
    let rp =
        RelyingParty::new(rp_cfg).map_err(|e| DemoError::Setup(format!("relying party: {e}")))?;
    let aud = format!("{RP_AUTHORITY}{RP_PATH}");
    let now = crate::unix_now();
    let wpt = cred
        .sign_wpt(&WptRequest::new(aud.clone(), cred.wit(), now + 60))
        .map_err(|e| deviation(step, format!("signing the WPT: {e}")))?;
    writeln!(out, "workload        POST {aud}")?;
    writeln!(
        out,
        "                Workload-Identity-Token: <the WIT from step 2>"
    )?;
    writeln!(out, "                Workload-Proof-Token: <WPT, aud {aud}, signed by the agent's key, {} bytes>", wpt.len())?;
    let headers = [
        ("Workload-Identity-Token", cred.wit()),
        ("Workload-Proof-Token", wpt.as_str()),
    ];
    let ok = rp
        .verify_request(headers, RP_PATH, now)
        .map_err(|e| deviation(step, format!("expected acceptance, got {} ({e})", e.code())))?;
    let rp_res = ok
        .wit_claims
        .extra
        .get("locus_residency")
        .cloned()
        .unwrap_or(Value::Null);
    writeln!(
        out,
        "accepted        {} (WIT kid {}), running in {} / {} on {}",
        ok.id,
        ok.wit_kid.as_deref().unwrap_or("-"),
        rp_res["country"].as_str().unwrap_or("?"),
        rp_res["site"].as_str().unwrap_or("?"),
        ok.wit_claims
            .extra
            .get("locus_tee")
            .and_then(|t| t["type"].as_str())
            .unwrap_or("?")
    )?;
    if ok.id.as_str() != EU_WORKLOAD {
        return Err(deviation(
            step,
            format!("authenticated {}, expected {EU_WORKLOAD}", ok.id),
        ));
    }
    let replay = rp.verify_request(headers, RP_PATH, now);
    match replay {
        Err(e) if e.code() == "replayed" => {
            writeln!(out, "same proof again refused: {}", e.code())?
        }
        Err(e) => {
            return Err(deviation(
                step,
                format!("replay: expected replayed, got {}", e.code()),
            ))
        }
        Ok(_) => return Err(deviation(step, "replay: expected replayed, got acceptance")),
    }
    let other = cred
        .sign_wpt(&WptRequest::new(
            "https://billing.example/v1/invoices",
            cred.wit(),
            now + 60,
        ))
        .map_err(|e| deviation(step, format!("signing the WPT: {e}")))?;
    let other_headers = [
        ("Workload-Identity-Token", cred.wit()),
        ("Workload-Proof-Token", other.as_str()),
    ];
    match rp.verify_request(other_headers, RP_PATH, now) {
        Err(e) if e.code() == "aud_mismatch" => writeln!(
            out,
            "a proof made for https://billing.example refused: {}",
            e.code()
        )?,
        Err(e) => {
            return Err(deviation(
                step,
                format!("other audience: expected aud_mismatch, got {}", e.code()),
            ))
        }
        Ok(_) => {
            return Err(deviation(
                step,
                "other audience: expected aud_mismatch, got acceptance",
            ))
        }
    }

    proximity_step(out, base).await?;

    Ok(DemoReport {
        verifier: base.to_string(),
        issued_sub: EU_WORKLOAD.to_string(),
        residency,
        tee,
        refusal_code,
        rp_authenticated: ok.id.to_string(),
    })
}
