//! Proximity end to end (docs/proximity.md): a real `locus-verifier` serving both the landmark role and issuance, a
//! real `locus-agent` on the simulator, and the delaying relay of `locus_tests::relay` between them.
//!
//! Where network namespaces can be made (root, `iproute2`), the agent runs in one namespace and the verifier in
//! another, each joined to the test's namespace by a veth pair, and the relay (in the test's namespace) is the only
//! path between them. Without namespaces those scenarios fail when `LOCUS_REQUIRE_NETNS=1` (as `.ci/run` sets) and
//! print a loud skip line otherwise; the scenarios that need no delay also run on loopback everywhere.
//!
//! Each delay scenario prints `PROXIMITY <scenario> min_rtt_ms=<n> d_max_km=<n> verdict=<code or issued>`, the
//! round trip as the landmark measured it (from its log) and the bound it signed.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use locus_tests::http1::{self, Request};
use locus_tests::paths::example_config_for;
use locus_tests::procs::{run_to_completion, wait_for, workspace_bin, ChildGuard};
use locus_tests::relay::Relay;
use locus_wimse::Es256SigningKey;
use serde_json::Value;

const NEAR: &str = "spiffe://locus.example/near-fra";
const NEAR_SHORT: &str = "spiffe://locus.example/near-fra-short";
const STEP: Duration = Duration::from_secs(60);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two namespaces (agent, verifier), each joined to ours by a veth pair; deleted on drop.
struct Netns {
    agent_ns: String,
    verifier_ns: String,
    /// Our end towards the agent's namespace: the relay listens here.
    relay_ip: IpAddr,
    /// The verifier's address in its namespace.
    verifier_ip: IpAddr,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    fn make() -> Result<Netns, String> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let net = 100 + (std::process::id() % 50) * 3 + n % 3;
        let (a, l) = (format!("lcsa{tag}"), format!("lcsl{tag}"));
        let ns = Netns {
            agent_ns: a.clone(),
            verifier_ns: l.clone(),
            relay_ip: format!("10.{net}.1.1")
                .parse()
                .map_err(|e| format!("{e}"))?,
            verifier_ip: format!("10.{net}.2.2")
                .parse()
                .map_err(|e| format!("{e}"))?,
        };
        ip(&["netns", "add", &a])?;
        ip(&["netns", "add", &l])?;
        for (name, side, ours, theirs) in [
            (
                &a,
                "a",
                format!("10.{net}.1.1/24"),
                format!("10.{net}.1.2/24"),
            ),
            (
                &l,
                "l",
                format!("10.{net}.2.1/24"),
                format!("10.{net}.2.2/24"),
            ),
        ] {
            let host = format!("v{side}{tag}");
            let peer = format!("p{side}{tag}");
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer])?;
            ip(&["link", "set", &peer, "netns", name])?;
            ip(&["addr", "add", &ours, "dev", &host])?;
            ip(&["link", "set", &host, "up"])?;
            ip(&["-n", name, "addr", "add", &theirs, "dev", &peer])?;
            ip(&["-n", name, "link", "set", &peer, "up"])?;
            ip(&["-n", name, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth ends inside it, and with them their peers here.
        let _ = ip(&["netns", "del", &self.agent_ns]);
        let _ = ip(&["netns", "del", &self.verifier_ns]);
    }
}

/// Namespaces, or `None` after the loud skip line (a failure under `LOCUS_REQUIRE_NETNS=1`).
fn netns_or_skip(test: &str) -> Option<Netns> {
    match Netns::make() {
        Ok(ns) => Some(ns),
        Err(e) => {
            if std::env::var("LOCUS_REQUIRE_NETNS").as_deref() == Ok("1") {
                panic!("LOCUS_REQUIRE_NETNS=1 but network namespaces cannot be made: {e}");
            }
            eprintln!(
                "SKIPPED {test}: network namespaces cannot be made here ({e}); run as root with iproute2, or set \
                 LOCUS_REQUIRE_NETNS=1 to make this a failure"
            );
            None
        }
    }
}

/// A verifier (landmark + issuer) behind a relay.
struct Env {
    /// Killed on drop, first (fields drop in order): before its state directory and namespace go.
    _verifier: ChildGuard,
    dir: tempfile::TempDir,
    relay: Relay,
    verifier_stderr: PathBuf,
    /// `ip netns exec <agent ns>` or nothing.
    agent_prefix: Vec<String>,
    agent_bin: PathBuf,
    // Last: namespaces go after the processes in them.
    _netns: Option<Netns>,
}

fn write_key(path: &Path, key: &Es256SigningKey) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("landmark key file");
    f.write_all(key.to_pkcs8()).expect("write landmark key");
}

/// The example config plus this verifier's landmark role at `landmark_site`, the landmark `fra-lm` (itself, reached
/// through the relay at `relay`) and the workloads fenced `within 500 km of fra-lm`.
fn config(state: &Path, relay: SocketAddr, landmark_site: &str, key: &Es256SigningKey) -> String {
    let base = format!("http://{relay}");
    let text = example_config_for(state, Some(&base)).expect("example config");
    let mut doc: toml::Table = text.parse().expect("toml");
    doc["server"]
        .as_table_mut()
        .expect("server")
        .insert("allow_plaintext".into(), true.into());
    let role: toml::Table = toml::from_str(&format!(
        "enabled = true\nsite = \"{landmark_site}\"\nrounds = 8\nround_timeout_ms = 2000"
    ))
    .expect("role");
    doc.insert("landmark_role".into(), role.into());
    let mut lm = toml::Table::new();
    lm.insert("name".into(), "fra-lm".into());
    lm.insert("url".into(), base.clone().into());
    lm.insert("site".into(), landmark_site.into());
    lm.insert(
        "public_key".into(),
        key.public_jwk().to_value().to_string().into(),
    );
    doc.insert("landmark".into(), toml::Value::Array(vec![lm.into()]));
    let workloads = doc["workload"].as_array_mut().expect("workloads");
    let template = workloads[0].as_table().expect("model-server").clone();
    for (id, ttl) in [(NEAR, 3600), (NEAR_SHORT, 6)] {
        let mut w = template.clone();
        w.insert("id".into(), id.into());
        w.remove("default");
        w.insert("ttl".into(), toml::Value::Integer(ttl));
        let fence: toml::Table =
            toml::from_str("within = [{ landmark = \"fra-lm\", km = 500 }]").expect("fence");
        w.insert("geofence".into(), fence.into());
        workloads.push(w.into());
    }
    toml::to_string(&doc).expect("toml out")
}

impl Env {
    fn start(netns: Option<Netns>, landmark_site: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let keys = state.join("keys");
        std::fs::create_dir_all(&keys).expect("keys dir");
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let key = Es256SigningKey::generate().expect("landmark key");
        write_key(&keys.join("landmark.pk8"), &key);

        let (relay_ip, verifier_ip) = match &netns {
            Some(ns) => (ns.relay_ip, ns.verifier_ip),
            None => ([127, 0, 0, 1].into(), [127, 0, 0, 1].into()),
        };
        let listener = TcpListener::bind((relay_ip, 0)).expect("relay listener");
        let relay_addr = listener.local_addr().expect("relay addr");
        let config_path = dir.path().join("verifier.toml");
        std::fs::write(
            &config_path,
            config(&state, relay_addr, landmark_site, &key),
        )
        .expect("config");

        let bin = workspace_bin("locus-verifier").expect("locus-verifier");
        let verifier_stderr = dir.path().join("verifier.stderr");
        let mut cmd = match &netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.verifier_ns]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.args(["serve", "--config"])
            .arg(&config_path)
            .args(["--listen", &SocketAddr::new(verifier_ip, 0).to_string()])
            .env("RUST_LOG", "warn,locus_verifier::proximity=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&verifier_stderr).expect("stderr"));
        let mut verifier = ChildGuard::new("locus-verifier", cmd.spawn().expect("spawn verifier"));
        let stdout = verifier
            .child_mut()
            .and_then(|c| c.stdout.take())
            .expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let line = match rx.recv_timeout(STEP) {
            Ok(Some(Ok(l))) => l,
            other => panic!(
                "verifier did not start ({other:?}); stderr:\n{}",
                std::fs::read_to_string(&verifier_stderr).unwrap_or_default()
            ),
        };
        let upstream: SocketAddr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let relay = Relay::start(listener, upstream, Duration::ZERO).expect("relay");
        let agent_prefix = match &netns {
            Some(ns) => vec![
                "ip".to_string(),
                "netns".into(),
                "exec".into(),
                ns.agent_ns.clone(),
            ],
            None => Vec::new(),
        };
        Env {
            dir,
            relay,
            _verifier: verifier,
            verifier_stderr,
            agent_prefix,
            agent_bin: workspace_bin("locus-agent").expect("locus-agent"),
            _netns: netns,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.relay.addr)
    }

    fn agent(&self, args: &[&str]) -> Command {
        self.agent_on("snp-fra-1", args)
    }

    fn agent_on(&self, profile: &str, args: &[&str]) -> Command {
        let mut cmd = match self.agent_prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&self.agent_bin);
                c
            }
            None => Command::new(&self.agent_bin),
        };
        cmd.args(args)
            .args(["--verifier", &self.base(), "--insecure-http"])
            .args(["--tee", "sim-snp", "--sim-profile", profile])
            .env("RUST_LOG", "warn");
        cmd
    }

    /// `locus-agent attest --json` for `workload` on `snp-fra-1`: the one JSON object it prints.
    fn attest(&self, workload: &str) -> Value {
        self.attest_on("snp-fra-1", workload)
    }

    fn attest_on(&self, profile: &str, workload: &str) -> Value {
        let mut cmd = self.agent_on(profile, &["attest", "--json", "--workload", workload]);
        let done = run_to_completion("locus-agent attest", &mut cmd, STEP).expect("agent");
        let line = done.stdout.lines().last().unwrap_or_default().to_string();
        serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "agent printed no JSON ({e}): {}\nstderr:\n{}\nverifier:\n{}",
                done.stdout,
                done.stderr,
                self.verifier_log()
            )
        })
    }

    /// The verifier's stderr without terminal colour sequences.
    fn verifier_log(&self) -> String {
        let raw = std::fs::read_to_string(&self.verifier_stderr).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC '[' parameters, up to the final letter.
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The landmark's last measurement from its log: (min RTT µs, d_max_km).
    fn last_measurement(&self) -> Option<(u64, u64)> {
        let log = self.verifier_log();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("proximity statement issued"))?;
        let field = |name: &str| -> Option<u64> {
            let rest = &line[line.find(name)? + name.len()..];
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        };
        Some((field("min_rtt_us=")?, field("d_max_km=")?))
    }
}

/// `"issued"` or the refusal code.
fn verdict(answer: &Value) -> String {
    match answer["error"]["code"].as_str() {
        Some(code) => code.to_string(),
        None if answer["wit"].is_string() => "issued".into(),
        None => panic!("neither a WIT nor an error: {answer}"),
    }
}

fn print_line(env: &Env, scenario: &str, verdict: &str) -> (u64, u64) {
    let (rtt_us, d_max) = env.last_measurement().unwrap_or_else(|| {
        panic!(
            "no measurement in the landmark's log:\n{}",
            env.verifier_log()
        )
    });
    println!(
        "PROXIMITY {scenario} min_rtt_ms={:.3} d_max_km={d_max} verdict={verdict} (fibre estimate {:.0} km)",
        rtt_us as f64 / 1000.0,
        locus_verifier::proximity::fibre_estimate_km(rtt_us)
    );
    (rtt_us, d_max)
}

#[test]
fn in_namespaces_no_delay_passes_a_500_km_fence_and_10_ms_each_way_is_geofence_denied() {
    let Some(ns) = netns_or_skip("proximity delay scenarios") else {
        return;
    };
    let env = Env::start(Some(ns), "fra-1");

    let answer = env.attest(NEAR);
    let v = verdict(&answer);
    let (_, d_max) = print_line(&env, "netns-no-delay", &v);
    assert_eq!(v, "issued", "{answer}\nverifier:\n{}", env.verifier_log());
    assert!(d_max <= 500, "{d_max}");
    let residency = &answer["claims"]["locus_residency"];
    assert_eq!(residency["max_distance_km"]["fra-lm"], d_max, "{residency}");
    assert!(
        residency["sources"].as_array().is_some_and(
            |s| s.iter().any(|x| x == "proximity") && s.iter().any(|x| x == "registry")
        ),
        "{residency}"
    );

    env.relay.set_delay(Duration::from_millis(10));
    let answer = env.attest(NEAR);
    let v = verdict(&answer);
    let (rtt_us, d_max) = print_line(&env, "netns-10ms-each-way", &v);
    assert!(rtt_us >= 20_000, "{rtt_us}");
    assert!(d_max > 2_000, "{d_max}");
    assert_eq!(v, "geofence_denied", "{answer}");
}

#[test]
fn in_namespaces_run_stops_renewing_once_delay_pushes_the_bound_past_the_fence() {
    let Some(ns) = netns_or_skip("proximity run renewal scenario") else {
        return;
    };
    let env = Env::start(Some(ns), "fra-1");
    let socket = env.dir.path().join("a.sock");
    let stderr_path = env.dir.path().join("agent.stderr");
    let mut cmd = env.agent(&["run", "--workload", NEAR_SHORT, "--retry-initial-ms", "200"]);
    cmd.arg("--retry-max-ms")
        .arg("500")
        .arg("--socket")
        .arg(&socket)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr"));
    let _agent = ChildGuard::new("locus-agent run", cmd.spawn().expect("spawn agent"));
    let agent_log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let wit = |want_other_than: Option<&str>| -> Option<(String, u64)> {
        let resp = http1::unix(&socket, &Request::get("/v1/wit"), Duration::from_secs(10)).ok()?;
        let v = resp.json().ok()?;
        let w = v["wit"].as_str()?.to_string();
        (Some(w.as_str()) != want_other_than).then(|| (w, v["expires_at"].as_u64().unwrap_or(0)))
    };
    let (first, _) = wait_for(STEP, || wit(None))
        .unwrap_or_else(|| panic!("no first WIT; agent:\n{}", agent_log()));
    // A renewal without delay: a new WIT (the 6 s WIT is renewed at 4 s).
    let (second, exp) =
        wait_for(Duration::from_secs(20), || wit(Some(&first))).unwrap_or_else(|| {
            panic!(
                "not renewed; agent:\n{}\nverifier:\n{}",
                agent_log(),
                env.verifier_log()
            )
        });
    let renewed = print_line(&env, "netns-run-renewed", "issued");
    assert!(renewed.1 <= 500);
    // The VM "moves": 10 ms each way from now on. The current WIT is served until it expires, never renewed.
    env.relay.set_delay(Duration::from_millis(10));
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let resp = http1::unix(&socket, &Request::get("/v1/wit"), Duration::from_secs(10));
        match resp {
            Ok(r) if r.status == 200 => {
                let v = r.json().expect("json");
                assert_eq!(
                    v["wit"].as_str(),
                    Some(second.as_str()),
                    "renewed despite the delay"
                );
                assert!(locus_tests::unix_now() < exp + 1, "served after its exp");
            }
            Ok(r) => break r,
            Err(e) => panic!("Workload API: {e:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "still served; agent:\n{}",
            agent_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(refused.status, 503);
    let body = String::from_utf8_lossy(&refused.body).to_string();
    assert!(body.contains("geofence_denied"), "{body}");
    print_line(&env, "netns-run-after-delay", "geofence_denied");
}

#[test]
fn on_loopback_a_distance_fence_issues_with_its_bound_even_unregistered_and_without_statements_is_proximity_failed(
) {
    let env = Env::start(None, "fra-1");
    let answer = env.attest(NEAR);
    let v = verdict(&answer);
    let (_, d_max) = print_line(&env, "loopback", &v);
    assert_eq!(v, "issued", "{answer}\n{}", env.verifier_log());
    assert_eq!(
        answer["claims"]["locus_residency"]["max_distance_km"]["fra-lm"],
        d_max
    );

    // The challenge answer names the landmark the fence needs; `{}` stays valid.
    let addr = env.relay.addr;
    let body = serde_json::json!({ "workload": NEAR });
    let resp =
        http1::tcp(addr, &Request::post_json("/v1/challenge", &body), STEP).expect("challenge");
    let v = resp.json().expect("json");
    assert_eq!(v["landmarks"][0]["name"], "fra-lm", "{v}");
    let empty = serde_json::json!({});
    let resp =
        http1::tcp(addr, &Request::post_json("/v1/challenge", &empty), STEP).expect("challenge");
    assert!(resp.json().expect("json")["nonce"].is_string());

    // An attest request with no statements (an agent that skipped the landmark): proximity_failed.
    let answer = attest_without_statements(&env);
    assert_eq!(answer["code"], "proximity_failed", "{answer}");

    // A platform nobody registered: the fence of distance bounds alone decides, and the WIT says only the bound.
    let answer = env.attest_on("snp-unregistered", NEAR);
    assert_eq!(verdict(&answer), "issued", "{answer}");
    let residency = &answer["claims"]["locus_residency"];
    assert_eq!(
        residency["sources"],
        serde_json::json!(["proximity"]),
        "{residency}"
    );
    assert_eq!(residency["granularity"], "key", "{residency}");
    assert!(residency.get("country").is_none(), "{residency}");
    assert!(
        residency["max_distance_km"]["fra-lm"]
            .as_u64()
            .is_some_and(|km| km <= 500),
        "{residency}"
    );
    // The EU workload (zones) still needs a location there.
    assert_eq!(
        verdict(&env.attest_on("snp-unregistered", locus_tests::EU_WORKLOAD)),
        "location_unknown"
    );
}

/// Attest for [`NEAR`] without collecting statements, through the library with the simulator attester.
fn attest_without_statements(env: &Env) -> Value {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = locus_agent::client::VerifierClient::new(&env.base(), STEP).expect("client");
        let key = Es256SigningKey::generate().expect("key");
        let jwk = locus_agent::credential::Credential::public_jwk_of(&key);
        let ch = client.challenge_for(Some(NEAR)).await.expect("challenge");
        let rd = locus_hw::binding::report_data(&ch.nonce, &jwk.thumbprint_sha256());
        let attester = locus_agent::sim::attester(locus_hw::TeeType::SevSnp, Some("snp-fra-1"))
            .expect("simulator attester");
        let ev = attester.attest(&rd).expect("evidence");
        let req = locus_agent::client::AttestRequest::new(
            ch.nonce_b64,
            &ev,
            &jwk,
            Some(NEAR),
            Vec::new(),
        );
        match client.attest(&req).await {
            Ok(_) => serde_json::json!({"code": "issued"}),
            Err(e) => serde_json::json!({"code": e.code()}),
        }
    })
}

#[test]
fn on_loopback_a_landmark_in_ashburn_contradicts_a_platform_registered_in_frankfurt() {
    // The landmark stands at iad-1; the agent answers it within a few km; the registry says fra-1 (6,500 km away).
    let env = Env::start(None, "iad-1");
    let answer = env.attest(NEAR);
    let v = verdict(&answer);
    print_line(&env, "loopback-landmark-iad-registry-fra", &v);
    assert_eq!(v, "location_inconsistent", "{answer}");
}

#[test]
fn on_loopback_a_relay_presenting_the_attested_key_but_signing_with_its_own_is_refused_by_the_landmark(
) {
    use locus_wimse::proximity::{sign_round, Frame};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let env = Env::start(None, "fra-1");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let frame = rt.block_on(async {
        let client = locus_agent::client::VerifierClient::new(&env.base(), STEP).expect("client");
        let attested = Es256SigningKey::generate().expect("key");
        let relay_key = Es256SigningKey::generate().expect("key");
        let mut io = client
            .upgrade_to_landmark(&env.base())
            .await
            .expect("upgrade");
        let hello = Frame::Hello(attested.public_jwk().to_value().to_string().into_bytes());
        io.write_all(&hello.encode().expect("frame"))
            .await
            .expect("hello");
        loop {
            let mut header = [0u8; 3];
            io.read_exact(&mut header).await.expect("header");
            let (kind, len) = Frame::parse_header(&header).expect("header");
            let mut payload = vec![0u8; len];
            io.read_exact(&mut payload).await.expect("payload");
            match Frame::decode(kind, &payload).expect("frame") {
                Frame::Challenge {
                    landmark_id,
                    challenge,
                } => {
                    let sig = sign_round(&relay_key, &landmark_id, &challenge).expect("sign");
                    let f = Frame::Response(sig).encode().expect("frame");
                    io.write_all(&f).await.expect("response");
                }
                other => return other,
            }
        }
    });
    match frame {
        Frame::Error { code, .. } => assert_eq!(code, "signature_invalid"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The smallest round trip of a raw TCP ping-pong (4 bytes) on loopback, over `n` rounds.
fn raw_tcp_min_rtt(n: usize) -> Duration {
    use std::io::{Read as _, Write as _};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.set_nodelay(true);
            let mut buf = [0u8; 4];
            while s.read_exact(&mut buf).is_ok() && s.write_all(&buf).is_ok() {}
        }
    });
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut best = Duration::MAX;
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(b"ping").expect("write");
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).expect("read");
        best = best.min(t.elapsed());
    }
    best
}

#[test]
fn on_loopback_a_proximity_round_costs_more_than_a_raw_tcp_echo_and_the_overhead_is_printed() {
    let env = Env::start(None, "fra-1");
    let answer = env.attest(NEAR);
    assert_eq!(verdict(&answer), "issued", "{answer}");
    let (round_us, _) = env.last_measurement().expect("measurement");
    let raw = raw_tcp_min_rtt(200);
    println!(
        "PROXIMITY overhead raw_tcp_min_rtt_ms={:.3} round_min_rtt_ms={:.3} overhead_ms={:.3} (= {} km of bound)",
        raw.as_secs_f64() * 1000.0,
        round_us as f64 / 1000.0,
        (round_us as f64 / 1000.0 - raw.as_secs_f64() * 1000.0).max(0.0),
        locus_verifier::proximity::d_max_km(round_us.saturating_sub(raw.as_micros() as u64))
    );
    // A round is a TCP round trip plus an ES256 signature: never cheaper than the bare round trip.
    assert!(
        Duration::from_micros(round_us) >= raw,
        "round {round_us} µs < raw {raw:?}"
    );
}
