//! Shared helpers for the `service_*` tests: start the real `locus-verifier` binary on `127.0.0.1:0`, act as an
//! agent with simulator evidence, verify what comes back with `locus-wimse`.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use locus_hw::attester::Attester as _;
use locus_simulator::World;
use locus_verifier::decision::binding;
use locus_wimse::{
    Es256SigningKey, Jwk, Jwks, TrustDomain, TrustStore, VerifiedWit, WitPolicy, WitVerifier,
};
use serde_json::{json, Value};

pub const EU_WORKLOAD: &str = "spiffe://locus.example/model-server";
pub const ANY_WORKLOAD: &str = "spiffe://locus.example/batch-worker";

pub fn b64(b: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn b64d(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("b64url")
}

pub fn world() -> Arc<World> {
    World::shared()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn examples_dir() -> PathBuf {
    repo_root().join("examples")
}

/// `examples/verifier.toml` with its state in `state_dir` and absolute paths to the committed simulator PKI.
pub fn example_config(state_dir: &Path) -> String {
    let text = std::fs::read_to_string(examples_dir().join("verifier.toml"))
        .expect("examples/verifier.toml");
    let pki = examples_dir().join("sim-pki");
    let out = text
        .replace(
            "state_dir = \"../target/locus-verifier-example\"",
            &format!("state_dir = {:?}", state_dir.display().to_string()),
        )
        .replace("\"sim-pki\"", &format!("{:?}", pki.display().to_string()));
    assert_ne!(out, text, "example config placeholders not found");
    out
}

/// A running verifier process; killed on drop.
pub struct Verifier {
    pub child: Child,
    pub base: String,
    pub config_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Verifier {
    /// Write `config` to `dir/<name>.toml` and start `locus-verifier serve` on it.
    pub fn start_named(dir: &Path, name: &str, config: &str) -> Verifier {
        let config_path = dir.join(format!("{name}.toml"));
        std::fs::write(&config_path, config).expect("write config");
        Self::start_file(&config_path, &dir.join(format!("{name}.stderr")))
    }

    pub fn start(dir: &Path, config: &str) -> Verifier {
        Self::start_named(dir, "verifier", config)
    }

    pub fn start_file(config_path: &Path, stderr_path: &Path) -> Verifier {
        let stderr = std::fs::File::create(stderr_path).expect("stderr file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
            .args(["serve", "--config"])
            .arg(config_path)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn locus-verifier");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let err = std::fs::read_to_string(stderr_path).unwrap_or_default();
                panic!("verifier did not start: stdout {line:?}, stderr:\n{err}")
            })
            .to_string();
        Verifier {
            child,
            base: format!("http://{addr}"),
            config_path: config_path.to_path_buf(),
            stderr_path: stderr_path.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

pub async fn get_json(base: &str, path: &str) -> Value {
    client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json")
}

pub async fn challenge(base: &str) -> Vec<u8> {
    let v: Value = client()
        .post(format!("{base}/v1/challenge"))
        .json(&json!({}))
        .send()
        .await
        .expect("challenge")
        .json()
        .await
        .expect("json");
    b64d(v["nonce"].as_str().expect("nonce"))
}

/// An agent: a fresh key.
pub struct Agent {
    pub key: Es256SigningKey,
    pub jwk: Jwk,
}

impl Agent {
    pub fn new() -> Agent {
        let key = Es256SigningKey::generate().expect("key");
        let jwk = Jwk::new(key.public_key());
        Agent { key, jwk }
    }

    pub fn thumbprint(&self) -> [u8; 32] {
        self.jwk.thumbprint_sha256()
    }

    /// Evidence from simulator profile `profile` bound to `nonce` and this agent's key.
    pub fn evidence(&self, profile: &str, nonce: &[u8]) -> locus_hw::attester::Evidence {
        let rd = binding::report_data(nonce, &self.thumbprint());
        evidence_for(profile, &rd)
    }

    /// The attest request body.
    pub fn request(&self, profile: &str, nonce: &[u8], workload: Option<&str>) -> Value {
        let ev = self.evidence(profile, nonce);
        body_for(&ev, nonce, &self.jwk, workload)
    }
}

impl Default for Agent {
    fn default() -> Self {
        Self::new()
    }
}

pub fn evidence_for(profile: &str, report_data: &[u8; 64]) -> locus_hw::attester::Evidence {
    let w = world();
    if profile.starts_with("snp") {
        w.snp_attester(profile)
            .expect("snp attester")
            .attest(report_data)
            .expect("attest")
    } else {
        w.tdx_attester(profile)
            .expect("tdx attester")
            .attest(report_data)
            .expect("attest")
    }
}

pub fn body_for(
    ev: &locus_hw::attester::Evidence,
    nonce: &[u8],
    jwk: &Jwk,
    workload: Option<&str>,
) -> Value {
    let tee = match ev.tee {
        locus_hw::TeeType::SevSnp => "sev-snp",
        locus_hw::TeeType::Tdx => "tdx",
    };
    let mut body = json!({
        "nonce": b64(nonce),
        "tee": tee,
        "evidence": b64(&ev.raw),
        "certs": ev.certs.iter().map(b64).collect::<Vec<_>>(),
        "jwk": jwk.to_value(),
    });
    if let Some(w) = workload {
        body["workload"] = Value::String(w.to_string());
    }
    body
}

pub async fn post_attest(base: &str, body: &Value) -> (u16, Value, String) {
    let resp = client()
        .post(format!("{base}/v1/attest"))
        .json(body)
        .send()
        .await
        .expect("attest");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let v: Value = resp.json().await.expect("json body");
    (status, v, ctype)
}

/// Full flow: challenge, evidence from `profile`, attest.
pub async fn attest(base: &str, profile: &str, workload: Option<&str>) -> (u16, Value) {
    let nonce = challenge(base).await;
    let agent = Agent::new();
    let (status, v, _) = post_attest(base, &agent.request(profile, &nonce, workload)).await;
    (status, v)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Verify a WIT with the JWKS served at `base`.
pub async fn verify_wit(base: &str, wit: &str) -> Result<VerifiedWit, locus_wimse::WimseError> {
    let jwks = Jwks::from_value(&get_json(base, "/.well-known/jwks.json").await).expect("jwks");
    verify_wit_with(jwks, wit)
}

pub fn verify_wit_with(jwks: Jwks, wit: &str) -> Result<VerifiedWit, locus_wimse::WimseError> {
    let trust = TrustStore::new().with_keys(TrustDomain::parse("locus.example").expect("td"), jwks);
    WitVerifier::new(trust, WitPolicy::default()).verify(wit, now())
}

/// Assert a problem+json refusal with `code`.
pub fn assert_refused(status: u16, body: &Value, code: &str, http: u16) {
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(status, http, "body: {body}");
    assert_eq!(body["status"], http, "body: {body}");
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// The audit log lines of a state dir.
pub fn audit_lines(state_dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(state_dir.join("audit.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("audit line does not parse ({e}): {l:?}"))
        })
        .collect()
}

static INIT: OnceLock<()> = OnceLock::new();

/// Warm the shared simulator world once (key derivation is the slow part).
pub fn warm() {
    INIT.get_or_init(|| {
        let _ = world();
    });
}

/// `examples/verifier.toml` for replica `name`: its own state dir under `dir`, the shared `keys` directory, and a
/// key rescan every second so a new key file is picked up without a signal.
pub fn replica_config(dir: &Path, name: &str, keys: &Path) -> String {
    let out = example_config(&dir.join(format!("state-{name}")))
        .replace("key_rescan_secs = 30", "key_rescan_secs = 1")
        .replace(
            "# keys_dir = \"/var/run/secrets/locus\"",
            &format!("keys_dir = {:?}", keys.display().to_string()),
        );
    assert!(
        out.contains("key_rescan_secs = 1") && out.contains("\nkeys_dir = "),
        "example config placeholders for replicas not found"
    );
    out
}

/// What `locus-verifier keys ...` did.
pub struct KeysRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl KeysRun {
    /// The JSON report on stdout (panics with stderr when the command failed).
    pub fn report(&self) -> Value {
        assert_eq!(self.code, 0, "keys failed: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("keys printed no JSON ({e}): {:?}", self.stdout))
    }
}

/// Run `locus-verifier keys <args...> --config <config>`.
pub fn keys_cli(args: &[&str], config: &Path) -> KeysRun {
    let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .arg("keys")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run locus-verifier keys");
    KeysRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// A JWS's protected header and claims, without checking anything.
pub fn jws_parts(jws: &str) -> (Value, Value) {
    let mut parts = jws.split('.');
    let header = serde_json::from_slice(&b64d(parts.next().expect("header"))).expect("header json");
    let claims = serde_json::from_slice(&b64d(parts.next().expect("claims"))).expect("claims json");
    (header, claims)
}

/// The `kid` values of the JWKS served at `base`.
pub async fn jwks_kids(base: &str) -> Vec<String> {
    get_json(base, "/.well-known/jwks.json").await["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_string))
        .collect()
}

/// The `active_kid` a replica reports on `/readyz`.
pub async fn active_kid(base: &str) -> String {
    get_json(base, "/readyz").await["active_kid"]
        .as_str()
        .expect("kid")
        .to_string()
}

/// The `/metrics` text of the verifier at `base`.
pub async fn metrics(base: &str) -> String {
    client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The value of the sample `series` (a name with its labels, if any) in a `/metrics` text.
pub fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series:?} in /metrics:\n{metrics}"))
}

/// `locus_config_reloads_total{result="<result>"}` (`ok` or `failed`) of the verifier at `base`.
pub async fn reloads(base: &str, result: &str) -> u64 {
    sample(
        &metrics(base).await,
        &format!("locus_config_reloads_total{{result=\"{result}\"}}"),
    )
}

pub async fn reloads_ok(base: &str) -> u64 {
    reloads(base, "ok").await
}
