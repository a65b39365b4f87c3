//! Across real processes: `locus-verifier serve` with `examples/verifier.toml` (state in a temporary directory) and
//! `locus-agent attest` / `locus-agent run` against it. Credentials are checked with `locus-wimse` against the
//! verifier's own `/.well-known/jwks.json`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use locus_tests::http1::{self, Request};
use locus_tests::procs::{
    run_to_completion, wait_for, workspace_bin, ChildGuard, Finished, VerifierProcess,
};
use locus_tests::{unix_now, EU_WORKLOAD, TRUST_DOMAIN};
use locus_wimse::{
    Jwks, RelyingParty, RpConfig, TrustDomain, TrustStore, VerifiedWit, WitPolicy, WitVerifier,
};
use serde_json::{json, Value};

const STEP: Duration = Duration::from_secs(120);

struct Env {
    verifier: VerifierProcess,
    agent: PathBuf,
    dir: tempfile::TempDir,
}

fn start() -> Env {
    let agent = workspace_bin("locus-agent").expect("locus-agent binary");
    let dir = tempfile::tempdir().expect("tempdir");
    let verifier =
        VerifierProcess::start_example(dir.path(), STEP).unwrap_or_else(|e| panic!("{e}"));
    Env {
        verifier,
        agent,
        dir,
    }
}

impl Env {
    fn attest(&self, args: &[&str]) -> Finished {
        let mut cmd = Command::new(&self.agent);
        cmd.args(["attest", "--verifier", &self.verifier.base])
            .args(args)
            .env("RUST_LOG", "warn");
        run_to_completion("locus-agent attest", &mut cmd, STEP).expect("spawn locus-agent")
    }

    fn jwks(&self) -> Jwks {
        let addr = http1::loopback_addr(&self.verifier.base).expect("verifier address");
        let resp =
            http1::tcp(addr, &Request::get("/.well-known/jwks.json"), STEP).expect("GET jwks");
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
        Jwks::from_json(std::str::from_utf8(&resp.body).expect("utf-8")).expect("JWKS")
    }

    fn trust(&self) -> TrustStore {
        TrustStore::new().with_keys(
            TrustDomain::parse(TRUST_DOMAIN).expect("trust domain"),
            self.jwks(),
        )
    }

    fn verify_wit(&self, wit: &str) -> VerifiedWit {
        WitVerifier::new(self.trust(), WitPolicy::wit_svid())
            .verify(wit, unix_now())
            .unwrap_or_else(|e| {
                panic!(
                    "WIT does not verify against the verifier's JWKS: {} ({e})",
                    e.code()
                )
            })
    }
}

fn json_line(done: &Finished) -> Value {
    let line = done.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
            done.stdout, done.stderr
        )
    })
}

fn assert_eu_on_fra_1(claims: &Value, tee: &str) {
    assert_eq!(claims["sub"], EU_WORKLOAD, "{claims}");
    assert_eq!(claims["locus_tee"]["type"], tee, "{claims}");
    assert_eq!(claims["locus_tee"]["simulated"], true, "{claims}");
    assert_eq!(claims["locus_tee"]["debug"], false, "{claims}");
    let res = &claims["locus_residency"];
    assert_eq!(res["country"], "DE", "{claims}");
    assert_eq!(res["region"], "DE-HE", "{claims}");
    assert_eq!(res["site"], "fra-1", "{claims}");
    assert!(
        res["zones"]
            .as_array()
            .is_some_and(|z| z.contains(&json!("eu"))),
        "{claims}"
    );
    assert!(claims["cnf"]["jwk"].is_object(), "{claims}");
}

#[test]
fn attest_json_on_snp_fra_1_returns_a_verifiable_eu_wit_with_de_residency() {
    let env = start();
    let done = env.attest(&[
        "--tee",
        "sim-snp",
        "--sim-profile",
        "snp-fra-1",
        "--workload",
        EU_WORKLOAD,
        "--json",
    ]);
    assert!(
        done.success(),
        "exit {:?}\n{}\n{}",
        done.status,
        done.stdout,
        done.stderr
    );
    let out = json_line(&done);
    let wit = out["wit"].as_str().expect("wit");
    assert_eu_on_fra_1(&out["claims"], "sev-snp");
    assert_eq!(
        out["claims"]["locus_tee"]["tcb_status"], "UpToDate",
        "{out}"
    );
    assert!(
        out["ear"].is_string(),
        "examples/verifier.toml asks for an EAR: {out}"
    );
    // The printed claims are the signed ones.
    let verified = env.verify_wit(wit);
    assert_eq!(verified.id().as_str(), EU_WORKLOAD);
    assert_eq!(
        verified.claims().extra["locus_residency"],
        out["claims"]["locus_residency"]
    );
    assert_eq!(
        verified.claims().extra["locus_tee"],
        out["claims"]["locus_tee"]
    );
}

#[test]
fn attest_without_workload_on_snp_fra_1_prints_the_eu_wit_design_14() {
    // README.md: `locus-agent attest --verifier URL --tee sim-snp --sim-profile snp-fra-1` gets the EU workload's WIT.
    let env = start();
    let done = env.attest(&["--tee", "sim-snp", "--sim-profile", "snp-fra-1"]);
    assert!(
        done.success(),
        "exit {:?}\n{}\n{}",
        done.status,
        done.stdout,
        done.stderr
    );
    let wit = done.stdout.trim();
    let verified = env.verify_wit(wit);
    assert_eq!(verified.id().as_str(), EU_WORKLOAD);
    assert_eq!(verified.claims().extra["locus_residency"]["country"], "DE");
}

#[test]
fn attest_json_on_tdx_fra_1_returns_a_verifiable_eu_wit_with_de_residency() {
    let env = start();
    let done = env.attest(&[
        "--tee",
        "sim-tdx",
        "--sim-profile",
        "tdx-fra-1",
        "--workload",
        EU_WORKLOAD,
        "--json",
    ]);
    assert!(
        done.success(),
        "exit {:?}\n{}\n{}\nverifier:\n{}",
        done.status,
        done.stdout,
        done.stderr,
        env.verifier.stderr()
    );
    let out = json_line(&done);
    assert_eu_on_fra_1(&out["claims"], "tdx");
    let verified = env.verify_wit(out["wit"].as_str().expect("wit"));
    assert_eq!(verified.claims().extra["locus_tee"]["type"], "tdx");
}

#[test]
fn attest_on_snp_iad_1_for_the_eu_workload_is_refused_geofence_denied_with_nonzero_exit() {
    let env = start();
    let done = env.attest(&[
        "--tee",
        "sim-snp",
        "--sim-profile",
        "snp-iad-1",
        "--workload",
        EU_WORKLOAD,
        "--json",
    ]);
    assert!(done.status.is_some(), "agent did not finish");
    assert!(
        !done.success(),
        "refusal must exit non-zero: {}",
        done.stdout
    );
    let out = json_line(&done);
    assert_eq!(out["error"]["code"], "geofence_denied", "{out}");
    assert!(out["error"]["message"].is_string(), "{out}");
    assert!(out.get("wit").is_none(), "{out}");
}

#[test]
fn attest_on_tdx_iad_1_for_the_eu_workload_is_refused_geofence_denied() {
    let env = start();
    let done = env.attest(&[
        "--tee",
        "sim-tdx",
        "--sim-profile",
        "tdx-iad-1",
        "--workload",
        EU_WORKLOAD,
        "--json",
    ]);
    assert!(
        !done.success(),
        "refusal must exit non-zero: {}",
        done.stdout
    );
    assert_eq!(
        json_line(&done)["error"]["code"],
        "geofence_denied",
        "{}",
        done.stdout
    );
}

#[test]
fn attest_on_an_unregistered_platform_is_refused_location_unknown() {
    let env = start();
    let done = env.attest(&[
        "--tee",
        "sim-snp",
        "--sim-profile",
        "snp-unregistered",
        "--workload",
        EU_WORKLOAD,
        "--json",
    ]);
    assert!(
        !done.success(),
        "refusal must exit non-zero: {}",
        done.stdout
    );
    assert_eq!(
        json_line(&done)["error"]["code"],
        "location_unknown",
        "{}",
        done.stdout
    );
}

/// `locus-agent run` with its Workload API socket; killed on drop.
struct RunningAgent {
    guard: ChildGuard,
    socket: PathBuf,
    stderr_path: PathBuf,
}

impl RunningAgent {
    fn start(env: &Env, profile: &str) -> RunningAgent {
        let socket = env.dir.path().join("agent.sock");
        let stderr_path = env.dir.path().join("agent.stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let child = Command::new(&env.agent)
            .args([
                "run",
                "--verifier",
                &env.verifier.base,
                "--tee",
                "sim-snp",
                "--sim-profile",
                profile,
            ])
            .args(["--workload", EU_WORKLOAD, "--socket"])
            .arg(&socket)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn locus-agent run");
        RunningAgent {
            guard: ChildGuard::new("locus-agent run", child),
            socket,
            stderr_path,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn call(&self, req: &Request<'_>) -> Option<http1::Response> {
        http1::unix(&self.socket, req, Duration::from_secs(30)).ok()
    }

    /// `GET /v1/wit` once the agent holds a credential (bounded wait).
    fn wit(&mut self) -> Value {
        let got = wait_for(STEP, || {
            if self.guard.try_wait().is_some() {
                return Some(None);
            }
            let resp = self.call(&Request::get("/v1/wit"))?;
            (resp.status == 200).then(|| resp.json().ok())
        });
        match got {
            Some(Some(v)) => v,
            _ => panic!(
                "no WIT from the Workload API at {}; agent stderr:\n{}",
                self.socket.display(),
                self.stderr()
            ),
        }
    }
}

fn socket_path_ok(p: &Path) -> bool {
    // sun_path is 108 bytes on Linux.
    p.as_os_str().len() < 100
}

#[test]
fn run_serves_wit_and_wpt_on_the_unix_socket_and_the_wpt_proves_the_cnf_key() {
    let env = start();
    let mut agent = RunningAgent::start(&env, "snp-fra-1");
    assert!(
        socket_path_ok(&agent.socket),
        "temp path too long for a Unix socket: {}",
        agent.socket.display()
    );
    let got = agent.wit();
    let wit = got["wit"].as_str().expect("wit").to_string();
    let verified = env.verify_wit(&wit);
    assert_eq!(verified.id().as_str(), EU_WORKLOAD);
    assert_eq!(
        got["expires_at"].as_u64(),
        Some(verified.claims().exp),
        "{got}"
    );
    assert_eq!(verified.claims().extra["locus_residency"]["site"], "fra-1");

    let aud = "https://orders.example/v1/orders";
    let body = json!({ "aud": aud });
    let resp = agent
        .call(&Request::post_json("/v1/wpt", &body))
        .expect("POST /v1/wpt");
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let wpt = resp.json().expect("json")["wpt"]
        .as_str()
        .expect("wpt")
        .to_string();

    // A relying party trusting only the verifier's JWKS accepts the pair: the WPT is signed by the key in cnf.jwk.
    let rp = RelyingParty::new(RpConfig {
        wit_policy: WitPolicy::wit_svid(),
        ..RpConfig::new(env.trust(), vec!["https://orders.example".into()])
    })
    .expect("relying party");
    let headers = [
        ("Workload-Identity-Token", wit.as_str()),
        ("Workload-Proof-Token", wpt.as_str()),
    ];
    let ok = rp
        .verify_request(headers, "/v1/orders", unix_now())
        .unwrap_or_else(|e| panic!("relying party refused: {} ({e})", e.code()));
    assert_eq!(ok.id.as_str(), EU_WORKLOAD);
    assert_eq!(ok.wpt_claims.aud, vec![aud.to_string()]);
    assert_eq!(
        rp.verify_request(headers, "/v1/orders", unix_now())
            .map(|_| ())
            .expect_err("must be refused")
            .code(),
        "replayed"
    );

    // Paired with a WIT for another key (a second agent run would have one), this WPT fails: it proves *this* key.
    let other = env.attest(&[
        "--tee",
        "sim-snp",
        "--sim-profile",
        "snp-fra-1",
        "--workload",
        EU_WORKLOAD,
    ]);
    assert!(other.success(), "{}", other.stderr);
    let other_wit = other.stdout.trim();
    let mismatched = [
        ("Workload-Identity-Token", other_wit),
        ("Workload-Proof-Token", wpt.as_str()),
    ];
    let err = rp
        .verify_request(mismatched, "/v1/orders", unix_now())
        .map(|_| ())
        .expect_err("must be refused");
    assert!(
        matches!(err.code(), "wth_mismatch" | "signature_invalid"),
        "a WPT under another WIT must fail, got {}",
        err.code()
    );

    agent.guard.kill();
}

#[test]
fn run_workload_api_refuses_a_wpt_request_without_aud() {
    let env = start();
    let mut agent = RunningAgent::start(&env, "snp-fra-1");
    let _ = agent.wit();
    let body = json!({ "ath": "x" });
    let resp = agent
        .call(&Request::post_json("/v1/wpt", &body))
        .expect("POST /v1/wpt");
    assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(
        resp.json().expect("problem json")["code"],
        "request_invalid"
    );
}
