//! Hostile clients and faults against the real `locus-verifier serve` (issue 10): the verifier stays up, keeps
//! answering a well-behaved client and loses no audit record.
//!
//! Flow of every test: start the binary on `127.0.0.1:0` (timers tuned short where the test waits on them), start a
//! well-behaved client on 127.0.0.1 that keeps attesting (challenge, simulator evidence, attest), run one attack from
//! other loopback addresses (127.0.0.2 and up, so the per-client caps and buckets meet the attacker and not the good
//! client), then check what the attack was owed (its refusal codes, closed sockets, metrics, the audit log) and that the
//! good client was served. Each test prints `HOSTILE <attack> good_ok=<ok>/<tried> p99_ms=<ms>`: the latency is
//! measured and printed, never asserted. Every loop is bounded in count and time; loopback only.
//!
//! The `kill -9` under load case is `service_audit.rs`
//! (`every_wit_a_client_received_is_in_the_audit_log_after_kill_9_and_restart`).

mod service_support;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use service_support::*;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/// The example configuration with `server_keys` appended to `[server]`.
fn config_with(state: &Path, server_keys: &[&str]) -> String {
    let base = example_config(state);
    let mut keys = String::from("key_rescan_secs = 30");
    for k in server_keys {
        keys.push('\n');
        keys.push_str(k);
    }
    let out = base.replace("key_rescan_secs = 30", &keys);
    assert!(
        server_keys.is_empty() || out != base,
        "[server] anchor not found"
    );
    out
}

fn socket_addr(v: &Verifier) -> SocketAddr {
    v.base
        .trim_start_matches("http://")
        .parse()
        .expect("listen address")
}

/// A TCP connection from the loopback address `from`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((from, 0)))?;
    tokio::time::timeout(Duration::from_secs(5), s.connect(to))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// An HTTP client whose requests leave from the loopback address `from`.
fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(from))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// Whether `buf` holds a whole HTTP/1.1 response (head and its Content-Length body).
fn complete_response(buf: &[u8]) -> bool {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    buf.len() >= head_end + 4 + len
}

/// Read one response, or whatever arrives before EOF, an error or `within`.
async fn read_response<R: AsyncRead + Unpin>(r: &mut R, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while !complete_response(&buf) {
        match tokio::time::timeout_at(deadline, r.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).to_string()
}

/// Send raw bytes on a fresh connection from `from` and read the answer ("" when the server closed without one).
async fn raw_from(from: [u8; 4], to: SocketAddr, request: &[u8]) -> String {
    let mut s = connect_from(from, to).await.expect("connect");
    // The server may close before reading everything (an oversized head): that is an answer too.
    let _ = s.write_all(request).await;
    read_response(&mut s, Duration::from_secs(10)).await
}

/// The JSON body of a raw response.
fn raw_body(http: &str) -> Value {
    let body = http.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// When the peer closed `s` (EOF or reset), counting from `since`; `None` if it is still open after `within`.
async fn closed_within<R: AsyncRead + Unpin>(
    s: &mut R,
    since: Instant,
    within: Duration,
) -> Option<Duration> {
    let deadline = tokio::time::Instant::now() + within;
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// A counter or gauge from `/metrics`.
async fn metric(base: &str, name: &str) -> f64 {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

/// POST a JSON value (or raw bytes) and return status, headers and the parsed body.
async fn post(
    http: &reqwest::Client,
    url: String,
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, headers, v)
}

/// A fresh challenge nonce, asked by `http`.
async fn nonce_via(http: &reqwest::Client, base: &str) -> Vec<u8> {
    let (s, _, v) = post(http, format!("{base}/v1/challenge"), b"{}".to_vec()).await;
    assert_eq!(s, 200, "challenge: {v}");
    b64d(v["nonce"].as_str().expect("nonce"))
}

/// One attestation for the EU workload from simulator `profile` (`snp-fra-1` is issued, `snp-iad-1` refused
/// `geofence_denied`, both audited); the time is that of the two HTTP exchanges (evidence is made in between).
async fn attest_once(
    http: &reqwest::Client,
    base: &str,
    profile: &'static str,
) -> Result<(u16, Value, Duration), String> {
    let t0 = Instant::now();
    let resp = http
        .post(format!("{base}/v1/challenge"))
        .json(&json!({}))
        .send()
        .await
        .map_err(|e| format!("challenge: {e}"))?;
    let status = resp.status().as_u16();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| format!("challenge body: {e}"))?;
    if status != 200 {
        return Ok((status, v, t0.elapsed()));
    }
    let nonce = v["nonce"]
        .as_str()
        .and_then(|n| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(n)
                .ok()
        })
        .ok_or_else(|| format!("challenge without a nonce: {v}"))?;
    let mut spent = t0.elapsed();
    let body = tokio::task::spawn_blocking(move || {
        Agent::new().request(profile, &nonce, Some(EU_WORKLOAD))
    })
    .await
    .map_err(|e| format!("evidence: {e}"))?;
    let t1 = Instant::now();
    let resp = http
        .post(format!("{base}/v1/attest"))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("attest: {e}"))?;
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.map_err(|e| format!("attest body: {e}"))?;
    spent += t1.elapsed();
    Ok((status, v, spent))
}

/// The well-behaved client: 127.0.0.1, a new connection per request (a pooled one could meet the idle timer).
fn good_http() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 1]))
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A successful attestation: its HTTP time and the WIT.
async fn good_attest(http: &reqwest::Client, base: &str) -> Result<(Duration, String), String> {
    let (status, v, spent) = attest_once(http, base, "snp-fra-1").await?;
    match (status, v["wit"].as_str()) {
        (200, Some(wit)) => Ok((spent, wit.to_string())),
        _ => Err(format!("{status}: {v}")),
    }
}

/// A well-behaved client attesting back to back while an attack runs.
struct GoodClient {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Result<(Duration, String), String>>>,
}

impl GoodClient {
    /// At least `min` attestations, then until [`GoodClient::finish`]; at most `max`, and at most 25 s.
    fn start(base: &str, min: usize, max: usize) -> GoodClient {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let base = base.to_string();
        let task = tokio::spawn(async move {
            let http = good_http();
            let deadline = Instant::now() + Duration::from_secs(25);
            let mut out = Vec::new();
            for i in 0..max {
                if (i >= min && flag.load(Ordering::Relaxed)) || Instant::now() > deadline {
                    break;
                }
                out.push(good_attest(&http, &base).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            out
        });
        GoodClient { stop, task }
    }

    /// Stop, print the HOSTILE line, require at least `min_percent` successes; the WITs received.
    async fn finish(self, attack: &str, min_percent: usize) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let results = self.task.await.expect("good client task");
        let tried = results.len();
        let mut times: Vec<Duration> = Vec::new();
        let mut wits = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok((t, wit)) => {
                    times.push(t);
                    wits.push(wit);
                }
                Err(e) => errors.push(e),
            }
        }
        times.sort();
        let ok = times.len();
        let p99 = times
            .get((ok * 99).div_ceil(100).saturating_sub(1))
            .map(|d| d.as_millis())
            .unwrap_or(0);
        println!("HOSTILE {attack} good_ok={ok}/{tried} p99_ms={p99}");
        assert!(tried > 0, "the good client never ran during {attack}");
        assert!(
            ok * 100 >= tried * min_percent,
            "good client during {attack}: {ok}/{tried} served; errors: {errors:?}"
        );
        wits
    }
}

/// The `jti` of a WIT (its payload is trusted here: the verifier under test made it).
fn jti_of(wit: &str) -> String {
    let payload = wit.split('.').nth(1).expect("WIT payload");
    let claims: Value = serde_json::from_slice(&b64d(payload)).expect("claims");
    claims["jti"].as_str().expect("jti").to_string()
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Audit flood

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_with_60kb_workloads_is_not_audited_before_the_nonce_and_bounded_after_it() {
    warm();
    let dir = tempdir();
    let state = dir.path().join("state");
    // Room for real evidence beside a 60 KB workload string.
    let cfg = config_with(&state, &[]).replace("max_body_bytes = 65536", "max_body_bytes = 131072");
    let v = Verifier::start(dir.path(), &cfg);
    let audit = state.join("audit.jsonl");
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let good = GoodClient::start(&v.base, 5, 200);

    let junk = client_from([127, 0, 0, 2]);
    let agent = Agent::new();
    let big = format!("spiffe://locus.example/{}", "a".repeat(60_000));

    // Bogus nonces: refused before the nonce check, so nothing reaches the audit log.
    let before = size(&audit);
    for i in 0..51u8 {
        let body = json!({
            "nonce": b64([i; 32]),
            "tee": "sev-snp",
            "evidence": b64(b"junk"),
            "jwk": agent.jwk.to_value(),
            "workload": big,
        });
        let (s, _, b) = post(
            &junk,
            format!("{}/v1/attest", v.base),
            serde_json::to_vec(&body).expect("json"),
        )
        .await;
        assert_refused(s, &b, "nonce_invalid", 400);
    }

    // Valid nonces: audited, each record bounded. Half carry garbage evidence, half real evidence whose decision
    // sees the 60 KB workload.
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..51 {
        let nonce = nonce_via(&junk, &v.base).await;
        let body = if i % 2 == 0 {
            json!({
                "nonce": b64(nonce.as_slice()),
                "tee": "sev-snp",
                "evidence": b64([0xa5u8; 1184]),
                "jwk": agent.jwk.to_value(),
                "workload": big,
            })
        } else {
            agent.request("snp-fra-1", &nonce, Some(&big))
        };
        let (s, _, b) = post(
            &junk,
            format!("{}/v1/attest", v.base),
            serde_json::to_vec(&body).expect("json"),
        )
        .await;
        assert!((400..500).contains(&s), "{s}: {b}");
        *codes
            .entry(b["code"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    good.finish("audit_flood", 100).await;
    let after = size(&audit);

    let text = std::fs::read(&audit).expect("audit log");
    let new = &text[usize::try_from(before).expect("size")..];
    let mut refused = 0;
    let mut largest = 0;
    for line in new.split_inclusive(|&b| b == b'\n') {
        largest = largest.max(line.len());
        assert!(line.len() <= 4096, "a record of {} bytes", line.len());
        let rec: Value = serde_json::from_slice(line).expect("record parses");
        match rec["decision"].as_str() {
            Some("issued") => assert_eq!(rec["workload"], EU_WORKLOAD, "{rec}"),
            Some("refused") => refused += 1,
            other => panic!("unexpected decision {other:?}: {rec}"),
        }
    }
    println!(
        "audit_flood: growth {} bytes, largest record {largest} bytes, junk codes {codes:?}",
        after - before
    );
    // Only the 51 junk requests past the nonce check were recorded; the 51 before it left nothing.
    assert_eq!(refused, 51, "refused records");
    // Garbage evidence fails at its version field; the 60 KB workload is no identifier.
    let expected: std::collections::BTreeMap<String, usize> = [
        ("unsupported_version".to_string(), 26),
        ("identifier_invalid".to_string(), 25),
    ]
    .into();
    assert_eq!(codes, expected);
    assert!(
        after - before < 256 * 1024,
        "audit log grew {} bytes",
        after - before
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Slow bodies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_on_256_connections_starve_no_good_client_and_end_at_the_body_deadline() {
    warm();
    let dir = tempdir();
    let v = Verifier::start(dir.path(), &config_with(&dir.path().join("state"), &[]));
    let to = socket_addr(&v);
    let started = Instant::now();
    // 32 connections from each of 127.0.0.2..=127.0.0.9: under the per-client cap of 64.
    let mut slow = Vec::new();
    for n in 0..256u32 {
        let from = [127, 0, 0, 2 + (n % 8) as u8];
        let mut s = connect_from(from, to).await.expect("connect");
        s.write_all(
            b"POST /v1/attest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{",
        )
        .await
        .expect("write head");
        slow.push(s);
    }
    let good = GoodClient::start(&v.base, 10, 10);
    good.finish("slow_bodies", 100).await;

    // Each slow body is answered 400 request_invalid at its deadline: 2 s + 60000 B at 8192 B/s ≈ 9.3 s.
    let mut tasks = tokio::task::JoinSet::new();
    for mut s in slow {
        tasks.spawn(async move { read_response(&mut s, Duration::from_secs(20)).await });
    }
    let mut answered = 0;
    while let Some(r) = tasks.join_next().await {
        let http = r.expect("join");
        assert!(
            http.starts_with("HTTP/1.1 400"),
            "slow body answer: {http:?}"
        );
        assert_eq!(raw_body(&http)["code"], "request_invalid", "{http}");
        answered += 1;
    }
    let took = started.elapsed();
    println!("slow_bodies: {answered} slow bodies answered 400 request_invalid after {took:?}");
    assert_eq!(answered, 256);
    assert!(took < Duration::from_secs(25), "{took:?}");
    assert_eq!(get_json(&v.base, "/healthz").await["status"], "ok");
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Slow-loris and idle connections

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_silent_idle_and_stalled_connections_close_within_the_configured_timeouts() {
    warm();
    let dir = tempdir();
    let cfg = config_with(
        &dir.path().join("state"),
        &[
            "header_read_timeout_ms = 2000",
            "idle_timeout_secs = 3",
            // A body deadline of 10 s (the request timeout), so the idle timer is what ends a stalled body.
            "body_min_bytes_per_sec = 1000",
        ],
    );
    let v = Verifier::start(dir.path(), &cfg);
    let to = socket_addr(&v);
    let good = GoodClient::start(&v.base, 5, 200);

    // A drip: one header line a second, so bytes keep moving and only the header-read deadline can end it.
    let drip = async {
        let s = connect_from([127, 0, 0, 2], to).await.expect("connect");
        let since = Instant::now();
        let (mut rd, mut wr) = s.into_split();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match tokio::time::timeout(Duration::from_secs(30), rd.read(&mut chunk)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return (Some(since.elapsed()), got),
                    Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
                    Err(_) => return (None, got),
                }
            }
        });
        let _ = wr
            .write_all(b"POST /v1/challenge HTTP/1.1\r\nHost: x\r\n")
            .await;
        for i in 0..30 {
            if reader.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            if wr
                .write_all(format!("X-Drip-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        let (closed, got) = reader.await.expect("reader");
        (closed, String::from_utf8_lossy(&got).to_string())
    };
    // Connected, never a byte.
    let silent = async {
        let mut s = connect_from([127, 0, 0, 3], to).await.expect("connect");
        closed_within(&mut s, Instant::now(), Duration::from_secs(30)).await
    };
    // One request answered, then an idle keep-alive.
    let kept = async {
        let mut s = connect_from([127, 0, 0, 4], to).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let answer = read_response(&mut s, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        closed_within(&mut s, Instant::now(), Duration::from_secs(30)).await
    };
    // A head, one byte of a 60 KB body, then nothing: no byte moves, so the idle timer closes it.
    let stalled = async {
        let mut s = connect_from([127, 0, 0, 5], to).await.expect("connect");
        s.write_all(b"POST /v1/attest HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{")
            .await
            .expect("write");
        closed_within(&mut s, Instant::now(), Duration::from_secs(30)).await
    };
    let ((drip_closed, drip_answer), silent_closed, kept_closed, stalled_closed) =
        tokio::join!(drip, silent, kept, stalled);
    good.finish("slow_loris", 100).await;
    println!(
        "slow_loris: drip closed after {drip_closed:?} (answer {:?}), silent after {silent_closed:?}, idle keep-alive after {kept_closed:?}, stalled body after {stalled_closed:?}",
        drip_answer.lines().next().unwrap_or("")
    );
    // Configured: header read 2 s, idle 3 s (checked every 0.75 s); the slack is for a loaded CI machine.
    let bound = Duration::from_secs(12);
    for (what, closed) in [
        ("drip", drip_closed),
        ("silent", silent_closed),
        ("idle keep-alive", kept_closed),
        ("stalled body", stalled_closed),
    ] {
        let closed = closed.unwrap_or_else(|| panic!("{what} connection still open after 30 s"));
        assert!(closed <= bound, "{what} connection closed after {closed:?}");
    }
    assert!(
        drip_closed.expect("closed") >= Duration::from_millis(1500),
        "the drip was closed before its header deadline: {drip_closed:?}"
    );
    // The idle timer, not the 10 s body deadline, ended the stalled body.
    let stalled_closed = stalled_closed.expect("closed");
    assert!(
        stalled_closed >= Duration::from_millis(2500) && stalled_closed < Duration::from_secs(9),
        "stalled body closed after {stalled_closed:?}"
    );
    assert!(
        !drip_answer.starts_with("HTTP/1.1 2"),
        "a dripped head was served: {drip_answer:?}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Connection caps

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_client_cap_close_at_once_and_are_counted_while_others_attest() {
    warm();
    let dir = tempdir();
    // The idle timer is kept long so that only the cap closes connections during the check.
    let cfg = config_with(
        &dir.path().join("state"),
        &["idle_timeout_secs = 60", "max_connections_per_client = 64"],
    );
    let v = Verifier::start(dir.path(), &cfg);
    let to = socket_addr(&v);
    let good = GoodClient::start(&v.base, 10, 200);

    let mut conns = Vec::new();
    let mut connect_failed = 0;
    for _ in 0..600 {
        match connect_from([127, 0, 0, 2], to).await {
            Ok(s) => conns.push(s),
            // Out of descriptors on a small ulimit, say: the attack is smaller, the check the same.
            Err(_) => connect_failed += 1,
        }
    }
    let connected = conns.len();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut s) in conns.into_iter().enumerate() {
        tasks.spawn(async move {
            let closed = closed_within(&mut s, Instant::now(), Duration::from_secs(3)).await;
            (i, closed, s)
        });
    }
    let mut open = Vec::new();
    let mut closed = 0;
    while let Some(r) = tasks.join_next().await {
        let (i, c, s) = r.expect("join");
        match c {
            Some(_) => closed += 1,
            None => open.push((i, s)),
        }
    }
    let wits = good.finish("connection_caps", 100).await;
    let refused = metric(&v.base, "locus_connections_refused_total").await;
    println!(
        "connection_caps: {connected} connected ({connect_failed} failed to connect), {} held open, {closed} closed at once, refused_total {refused}",
        open.len()
    );
    assert!(connected >= 200, "only {connected} connections were made");
    assert_eq!(open.len(), 64, "held open beyond the per-client cap");
    // The first connections are the ones admitted.
    assert!(
        open.iter().all(|(i, _)| *i < 64 + 8),
        "{:?}",
        open.iter().map(|(i, _)| i).collect::<Vec<_>>()
    );
    assert_eq!(closed, connected - 64);
    assert!(
        refused >= closed as f64,
        "refused_total {refused} < {closed}"
    );
    assert!(!wits.is_empty());

    // Closing them frees the client's slots.
    drop(open);
    let mut admitted = false;
    for _ in 0..50 {
        if let Ok(r) = client_from([127, 0, 0, 2])
            .get(format!("{}/healthz", v.base))
            .send()
            .await
        {
            if r.status().as_u16() == 200 {
                admitted = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        admitted,
        "127.0.0.2 not admitted again after closing its connections"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 5. Rate limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_burst_gets_429_rate_limited_with_retry_after_while_others_attest() {
    warm();
    let dir = tempdir();
    let cfg = config_with(
        &dir.path().join("state"),
        // A slow refill, so that 300 requests overrun the burst of 200 even on a slow machine.
        &["rate_limit_per_second = 10", "rate_limit_burst = 200"],
    );
    let v = Verifier::start(dir.path(), &cfg);
    let good = GoodClient::start(&v.base, 5, 200);

    let flood = client_from([127, 0, 0, 3]);
    let mut ok = 0;
    let mut limited = Vec::new();
    for _ in 0..300 {
        let (s, h, b) = post(&flood, format!("{}/v1/challenge", v.base), b"{}".to_vec()).await;
        match s {
            200 => ok += 1,
            429 => limited.push((h, b)),
            other => panic!("unexpected {other}: {b}"),
        }
    }
    // Attest is behind the same bucket, and a forged X-Forwarded-For from an untrusted peer changes nothing.
    let (s, h, b) = post(&flood, format!("{}/v1/attest", v.base), b"{}".to_vec()).await;
    assert_refused(s, &b, "rate_limited", 429);
    limited.push((h, b));
    let resp = flood
        .post(format!("{}/v1/challenge", v.base))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.status().as_u16(),
        429,
        "a forged X-Forwarded-For escaped the limit"
    );
    let h = resp.headers().clone();
    limited.push((h, resp.json().await.expect("json")));

    let wits = good.finish("rate_limit", 100).await;
    println!(
        "rate_limit: 127.0.0.3 got {ok} answers and {} refusals",
        limited.len()
    );
    assert!(ok >= 200, "the burst of 200 was not honoured: {ok}");
    assert!(limited.len() > 2, "no 429 for 300 requests at once");
    let mut waits = Vec::new();
    for (h, b) in &limited {
        assert_refused(429, b, "rate_limited", 429);
        if let Some(wait) = h.get("retry-after") {
            let secs: u64 = wait
                .to_str()
                .expect("ascii")
                .parse()
                .expect("Retry-After in seconds");
            assert!((1..=60).contains(&secs), "Retry-After {secs}");
            waits.push(secs);
        }
    }
    assert_eq!(waits.len(), limited.len(), "every 429 carries Retry-After");
    assert_eq!(
        metric(&v.base, "locus_rate_limited_total").await,
        limited.len() as f64
    );
    assert!(!wits.is_empty());

    // After the advertised wait the client is served again.
    tokio::time::sleep(Duration::from_secs(*waits.iter().max().unwrap_or(&1))).await;
    let (s, _, b) = post(&flood, format!("{}/v1/challenge", v.base), b"{}".to_vec()).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket_and_none_is_forged() {
    let dir = tempdir();
    let cfg = config_with(
        &dir.path().join("state"),
        &[
            "rate_limit_per_second = 1",
            "rate_limit_burst = 5",
            "trusted_proxies = [\"127.0.0.4\"]",
        ],
    );
    let v = Verifier::start(dir.path(), &cfg);
    let challenge_as = |from: [u8; 4], forwarded: &'static str| {
        let url = format!("{}/v1/challenge", v.base);
        async move {
            let resp = client_from(from)
                .post(url)
                .header("x-forwarded-for", forwarded)
                .json(&json!({}))
                .send()
                .await
                .expect("send");
            let s = resp.status().as_u16();
            (s, resp.json::<Value>().await.expect("json"))
        }
    };
    // Client 198.51.100.1 behind the proxy uses up its burst...
    for _ in 0..5 {
        let (s, b) = challenge_as([127, 0, 0, 4], "198.51.100.1").await;
        assert_eq!(s, 200, "{b}");
    }
    let (s, b) = challenge_as([127, 0, 0, 4], "198.51.100.1").await;
    assert_refused(s, &b, "rate_limited", 429);
    // ... which neither another client behind the same proxy ...
    let (s, b) = challenge_as([127, 0, 0, 4], "198.51.100.2").await;
    assert_eq!(s, 200, "{b}");
    // ... nor a direct peer claiming to be the limited client shares: an untrusted peer is itself.
    for _ in 0..5 {
        let (s, b) = challenge_as([127, 0, 0, 5], "198.51.100.2").await;
        assert_eq!(s, 200, "{b}");
    }
    let (s, b) = challenge_as([127, 0, 0, 5], "198.51.100.3").await;
    assert_refused(s, &b, "rate_limited", 429);
    assert_eq!(metric(&v.base, "locus_rate_limited_total").await, 2.0);
}

// ---------------------------------------------------------------------------------------------------------------
// 6. Malformed input

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_their_4xx_code_and_the_verifier_stays_up() {
    warm();
    let dir = tempdir();
    let mut v = Verifier::start(dir.path(), &config_with(&dir.path().join("state"), &[]));
    let to = socket_addr(&v);
    let good = GoodClient::start(&v.base, 5, 200);

    // A broken chunked body: hyper's 400, or ours.
    let answer = raw_from(
        [127, 0, 0, 2],
        to,
        b"POST /v1/challenge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    )
    .await;
    println!(
        "malformed: bad chunk size → {:?}",
        answer.lines().next().unwrap_or("")
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    if let Some(code) = raw_body(&answer)["code"].as_str() {
        assert_eq!(code, "request_invalid");
    }

    let junk = client_from([127, 0, 0, 2]);
    let agent = Agent::new();
    let jwk = agent.jwk.to_value();
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let huge = format!("1{}", "0".repeat(400));
    // Refused before the nonce is looked at.
    let attest_with = |members: &str| {
        format!(r#"{{"tee":"sev-snp","evidence":"AA","jwk":{jwk},{members}}}"#).into_bytes()
    };
    // Refused before the nonce is accepted (so not audited). Unknown members are skipped without recursion, so deep
    // nesting or an overflowing number there is harmless and the short nonce is what gets refused.
    let before_nonce: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "/v1/attest",
            "truncated JSON",
            br#"{"nonce":"#.to_vec(),
            "request_invalid",
        ),
        ("/v1/attest", "empty body", Vec::new(), "request_invalid"),
        (
            "/v1/attest",
            "a JSON array",
            b"[1,2,3]".to_vec(),
            "request_invalid",
        ),
        (
            "/v1/attest",
            "not UTF-8",
            b"\xff\xfe{\"nonce\":1}".to_vec(),
            "request_invalid",
        ),
        (
            "/v1/attest",
            "duplicate keys",
            attest_with(r#""nonce":"AAAA","nonce":"AAAB""#),
            "request_invalid",
        ),
        (
            "/v1/attest",
            "a 401-digit nonce",
            attest_with(&format!(r#""nonce":{huge}"#)),
            "request_invalid",
        ),
        (
            "/v1/attest",
            "an overflowing exponent as the nonce",
            attest_with(r#""nonce":1e999999"#),
            "request_invalid",
        ),
        (
            "/v1/attest",
            "an overflowing exponent in an unknown member",
            attest_with(r#""nonce":"AAAA","x":1e999999"#),
            "nonce_invalid",
        ),
        (
            "/v1/attest",
            "10 000-deep nesting as the jwk",
            format!(
                r#"{{"nonce":"AAAA","tee":"sev-snp","evidence":"AA","jwk":{}}}"#,
                deep(10_000)
            )
            .into_bytes(),
            "request_invalid",
        ),
        (
            "/v1/attest",
            "10 000-deep nesting in an unknown member",
            attest_with(&format!(r#""nonce":"AAAA","x":{}"#, deep(10_000))),
            "nonce_invalid",
        ),
        (
            "/v1/attest",
            "nonce not base64url",
            attest_with(r#""nonce":"!!*~""#),
            "request_invalid",
        ),
        (
            "/v1/attest",
            "unknown tee",
            format!(r#"{{"nonce":"AAAA","tee":"sgx","evidence":"AA","jwk":{jwk}}}"#).into_bytes(),
            "request_invalid",
        ),
        (
            "/v1/challenge",
            "truncated JSON",
            b"{".to_vec(),
            "request_invalid",
        ),
        (
            "/v1/challenge",
            "10 000-deep nesting",
            deep(10_000).into_bytes(),
            "request_invalid",
        ),
        (
            "/v1/challenge",
            "10 000-deep nesting in a member",
            format!(r#"{{"x":{}}}"#, deep(10_000)).into_bytes(),
            "request_invalid",
        ),
        (
            "/v1/challenge",
            "a JSON string",
            br#""x""#.to_vec(),
            "request_invalid",
        ),
    ];
    for (path, what, body, code) in before_nonce {
        let (s, h, b) = post(&junk, format!("{}{path}", v.base), body).await;
        println!("malformed: {path} {what} → {s} {}", b["code"]);
        assert_refused(s, &b, code, 400);
        assert_eq!(h["content-type"], "application/problem+json", "{what}");
    }

    // Past the nonce: each with a fresh challenge.
    let cbor_garbage: Vec<u8> = [0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x59, 0xff, 0xff]
        .into_iter()
        .chain((0..1200u32).map(|i| (i * 37 % 251) as u8))
        .collect();
    let past_nonce: Vec<(&str, Value, &str)> = vec![
        (
            "CBOR garbage as SEV-SNP evidence",
            json!({"tee": "sev-snp", "evidence": b64(cbor_garbage.as_slice()), "jwk": jwk}),
            "evidence_malformed",
        ),
        (
            "CBOR garbage as a TDX quote",
            json!({"tee": "tdx", "evidence": b64(cbor_garbage.as_slice()), "jwk": jwk}),
            "unsupported_version",
        ),
        (
            "a TDX v4 quote cut after 20 bytes",
            json!({"tee": "tdx", "evidence": b64([4u8, 0, 2, 0, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "jwk": jwk}),
            "evidence_malformed",
        ),
        (
            "evidence not base64url",
            json!({"tee": "sev-snp", "evidence": "%%%%", "jwk": jwk}),
            "request_invalid",
        ),
        (
            "a certificate not base64url",
            json!({"tee": "sev-snp", "evidence": "AAAA", "certs": ["@@"], "jwk": jwk}),
            "request_invalid",
        ),
        (
            "a jwk that is no key",
            json!({"tee": "sev-snp", "evidence": "AAAA", "jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": 12}}),
            "request_invalid",
        ),
    ];
    for (what, mut body, code) in past_nonce {
        body["nonce"] = Value::String(b64(nonce_via(&junk, &v.base).await));
        let (s, h, b) = post(
            &junk,
            format!("{}/v1/attest", v.base),
            serde_json::to_vec(&body).expect("json"),
        )
        .await;
        println!("malformed: {what} → {s} {}", b["code"]);
        assert_refused(s, &b, code, 400);
        assert_eq!(h["content-type"], "application/problem+json", "{what}");
    }
    let resp = junk
        .get(format!("{}/no/such/path", v.base))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 404);
    let b: Value = resp.json().await.expect("json");
    assert_refused(404, &b, "request_invalid", 404);

    good.finish("malformed_input", 100).await;
    assert!(
        v.child.try_wait().expect("wait").is_none(),
        "the verifier exited"
    );
    assert_eq!(get_json(&v.base, "/healthz").await["status"], "ok");
    let (s, b) = attest(&v.base, "tdx-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_get_431_or_a_closed_connection_and_are_never_served() {
    let dir = tempdir();
    let mut v = Verifier::start(dir.path(), &config_with(&dir.path().join("state"), &[]));
    let to = socket_addr(&v);
    // Oversized request heads: 431, or closed without an answer; never served, never a crash.
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "h".repeat(100 * 1024)
    );
    let mut many_headers = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..500 {
        many_headers.push_str(&format!("X-H{i}: v\r\n"));
    }
    many_headers.push_str("\r\n");
    let huge_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "h".repeat(1024 * 1024)
    );
    let good = GoodClient::start(&v.base, 5, 200);
    let mut served = Vec::new();
    for (what, req) in [
        ("100 KB header", big_header),
        ("1 MB header", huge_header),
        ("500 headers", many_headers),
    ] {
        let answer = raw_from([127, 0, 0, 2], to, req.as_bytes()).await;
        let status = answer.lines().next().unwrap_or("").to_string();
        println!("oversized head: {what} → {status:?}");
        if !(answer.is_empty() || status.starts_with("HTTP/1.1 431")) {
            served.push(format!("{what}: {status}"));
        }
    }
    good.finish("oversized_heads", 100).await;
    assert!(served.is_empty(), "oversized heads were served: {served:?}");
    assert!(
        v.child.try_wait().expect("wait").is_none(),
        "the verifier exited"
    );
    assert_eq!(get_json(&v.base, "/healthz").await["status"], "ok");
}

// ---------------------------------------------------------------------------------------------------------------
// 7. Audit filesystem full

/// A small tmpfs, unmounted on drop (after the verifier using it is gone: declare it first).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).to_string());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Write 4 KiB blocks to `path` until the filesystem is full; the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).expect("filler");
    let block = [0x5au8; 4096];
    let mut written = 0u64;
    for _ in 0..1024 {
        match f.write_all(&block) {
            Ok(()) => written += block.len() as u64,
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
                let _ = f.sync_all();
                return written;
            }
        }
    }
    panic!("the filesystem never filled up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_audit_filesystem_stops_issuance_with_audit_unavailable_and_loses_no_record() {
    warm();
    let dir = tempdir();
    let mnt = dir.path().join("auditfs");
    let _fs = match Tmpfs::mount(&mnt, "256k") {
        Ok(fs) => fs,
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI: cannot mount a tmpfs: {e}"),
        Err(e) => {
            eprintln!("SKIP a_full_audit_filesystem_stops_issuance_with_audit_unavailable_and_loses_no_record: cannot mount a tmpfs (not root?): {e}");
            return;
        }
    };
    let audit = mnt.join("audit.jsonl");
    let cfg = config_with(
        &dir.path().join("state"),
        &[&format!("audit_log = {:?}", audit.display().to_string())],
    );
    let v = Verifier::start(dir.path(), &cfg);
    let http = good_http();
    let mut received = Vec::new();
    let mut refused_503 = 0;
    let (_, wit) = good_attest(&http, &v.base)
        .await
        .expect("attest before the fault");
    received.push(wit);
    let filler = mnt.join("filler");
    let readyz = || async {
        let r = client()
            .get(format!("{}/readyz", v.base))
            .send()
            .await
            .expect("readyz");
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.expect("json"))
    };
    // Poll /readyz for up to 10 s until it says ready; how long that took.
    let ready_again = || async {
        let freed = Instant::now();
        for _ in 0..100 {
            if readyz().await.0 == 200 {
                return freed.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("not ready 10 s after space was freed");
    };

    // Phase 1: the disk fills under credentials being issued. The log's last page may still hold a few records:
    // attest until the verifier refuses. The first refusal is a credential whose record failed: withheld.
    let filled = fill(&filler);
    for _ in 0..40 {
        let (s, b, _) = attest_once(&http, &v.base, "snp-fra-1")
            .await
            .expect("attest");
        match s {
            200 => received.push(b["wit"].as_str().expect("wit").to_string()),
            503 => {
                assert_refused(s, &b, "audit_unavailable", 503);
                refused_503 += 1;
                break;
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!(
        refused_503, 1,
        "the full audit filesystem never refused an attestation"
    );
    let (s, b) = readyz().await;
    assert_eq!((s, &b["audit"]), (503, &json!("unavailable")), "{b}");
    std::fs::remove_file(&filler).expect("remove filler");
    let ready_1 = ready_again().await;
    // The withheld marker is appended once the log works again (retried every second).
    let mut marked = false;
    for _ in 0..50 {
        if audit_lines(&mnt)
            .iter()
            .any(|l| l["decision"] == "withheld")
        {
            marked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(marked, "no withheld record 5 s after recovery");
    let good = GoodClient::start(&v.base, 5, 5);
    received.extend(good.finish("audit_fs_full_recovered", 100).await);

    // Phase 2: the disk fills under refusals (audited, no credential, so nothing is withheld and nothing retries):
    // the verifier must stay unavailable while writes still fail, whatever an fsync of nothing says.
    let filled_2 = fill(&filler);
    let mut refusals_written = 0;
    let mut unavailable = false;
    for _ in 0..40 {
        let (s, b, _) = attest_once(&http, &v.base, "snp-iad-1")
            .await
            .expect("attest");
        if s == 503 {
            assert_refused(s, &b, "audit_unavailable", 503);
            refused_503 += 1;
            unavailable = true;
            break;
        }
        assert_refused(s, &b, "geofence_denied", 403);
        refusals_written += 1;
    }
    assert!(unavailable, "a full log never refused");
    let mut ready_while_full = 0;
    for _ in 0..30 {
        if readyz().await.0 == 200 {
            ready_while_full += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, b, _) = attest_once(&http, &v.base, "snp-fra-1")
        .await
        .expect("attest");
    if s == 503 {
        assert_refused(s, &b, "audit_unavailable", 503);
        refused_503 += 1;
    }
    // Checked at the end, so that the log is checked whatever happens here.
    let flapped = (ready_while_full, s) != (0, 503);
    let flap = format!(
        "/readyz said ready {ready_while_full} times in 3 s while the audit filesystem was still full; an attestation then got {s}: {b}"
    );
    std::fs::remove_file(&filler).expect("remove filler");
    let ready_2 = ready_again().await;
    let (_, wit) = good_attest(&http, &v.base)
        .await
        .expect("attest after recovery");
    received.push(wit);

    let lines = audit_lines(&mnt); // every line parses: no torn record
    let text = std::fs::read(&audit).expect("audit log");
    assert_eq!(text.last(), Some(&b'\n'), "the log ends in a whole line");
    let jtis = |decision: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["decision"] == decision)
            .map(|l| l["jti"].as_str().expect("jti").to_string())
            .collect()
    };
    let issued = jtis("issued");
    let withheld = jtis("withheld");
    let received: Vec<String> = received.iter().map(|w| jti_of(w)).collect();
    println!(
        "audit_fs_full: fillers {filled}+{filled_2} bytes; {} WITs received, {refusals_written} geofence refusals written into the last page, {refused_503} refused 503, ready {ready_1:?} and {ready_2:?} after freeing; ready {ready_while_full}/30 polls while full; log: {} issued, {} withheld, {} refused, {} lines",
        received.len(),
        issued.len(),
        withheld.len(),
        lines.iter().filter(|l| l["decision"] == "refused").count(),
        lines.len()
    );
    for jti in &received {
        assert!(
            issued.contains(jti),
            "WIT {jti} was received but has no issued record"
        );
        assert!(
            !withheld.contains(jti),
            "WIT {jti} was received but is marked withheld"
        );
    }
    for jti in &issued {
        assert!(
            received.contains(jti) || withheld.contains(jti),
            "issued record {jti} names a WIT nobody received and nothing marks withheld"
        );
    }
    assert!(
        !withheld.is_empty(),
        "no withheld record for the credential refused at the fault"
    );
    assert!(withheld.len() <= refused_503, "{withheld:?}");
    let refused = lines.iter().filter(|l| l["decision"] == "refused").count();
    assert_eq!(
        refused, refusals_written,
        "refusals answered 403 and recorded"
    );
    assert!(!flapped, "{flap}");
    drop(v);
}
