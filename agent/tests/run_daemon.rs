//! `locus-agent run` in-process against the fake verifier: renewal with short-lived WITs and no gap in validity,
//! WPTs that verify against the served WIT, a verifier outage bridged by the current WIT, 503 (never an expired
//! WIT) once it has expired, recovery, the Workload API's refusals, the socket's mode, and no key bytes on disk.
//!
//! These tests observe real time (WITs live a few seconds). They assert validity properties — every WIT served was
//! unexpired when asked for, renewals happened, recovery happened — never how long something took.
#![cfg(feature = "simulator")]

mod common;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    files_containing_key, files_containing_key_since, now_f64, now_secs, p256_d_from_pkcs8,
    uds_request, FakeVerifier,
};
use locus_agent::client::VerifierClient;
use locus_agent::run::{start, system_clock, PeerAllowList, RunConfig, RunParams, RunningAgent};
use locus_agent::select::{open_attester, AttesterOptions, TeeChoice};
use locus_wimse::wpt::token_hash;
use locus_wimse::{RelyingParty, RpConfig};
use serde_json::{json, Value};

fn params(fv: &FakeVerifier, socket: &Path, tee: TeeChoice) -> RunParams {
    RunParams {
        client: VerifierClient::new(&fv.url(), Duration::from_secs(5)).expect("client"),
        attester: open_attester(&AttesterOptions {
            tee,
            ..AttesterOptions::default()
        })
        .expect("attester"),
        cfg: RunConfig {
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_millis(400),
            ..RunConfig::default()
        },
        socket: socket.to_path_buf(),
        peers: PeerAllowList::default(),
        clock: system_clock(),
        spiffe: None,
    }
}

/// One poll of `GET /v1/wit`: `Ok((wit, exp))` after checking the WIT was valid when asked for, or `Err(code)`.
async fn poll_wit(socket: &Path) -> Result<(String, u64), String> {
    let asked_at = now_secs();
    let (status, ctype, body) = uds_request(socket, "GET", "/v1/wit", None).await;
    match status {
        200 => {
            assert_eq!(ctype, "application/json");
            let wit = body["wit"].as_str().expect("wit").to_string();
            let exp = body["expires_at"].as_u64().expect("expires_at");
            assert!(
                asked_at < exp,
                "served a WIT expired at {exp} when asked at {asked_at}"
            );
            Ok((wit, exp))
        }
        503 => {
            assert_eq!(ctype, "application/problem+json");
            assert_eq!(body["status"], 503);
            Err(body["code"].as_str().expect("code").to_string())
        }
        other => panic!("unexpected status {other}: {body}"),
    }
}

/// Poll until a WIT different from every one in `seen` is served; every poll must succeed (no gap).
async fn next_wit_without_gap(
    socket: &Path,
    seen: &mut HashSet<String>,
    give_up_after: Duration,
) -> (String, u64) {
    let deadline = now_f64() + give_up_after.as_secs_f64();
    loop {
        let (wit, exp) = poll_wit(socket)
            .await
            .expect("no gap: a valid WIT is served at every poll");
        if seen.insert(wit.clone()) {
            return (wit, exp);
        }
        assert!(now_f64() < deadline, "no renewal observed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn first_wit(socket: &Path) -> (String, u64) {
    let deadline = now_f64() + 30.0;
    loop {
        if let Ok(w) = poll_wit(socket).await {
            return w;
        }
        assert!(now_f64() < deadline, "no first WIT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cnf_thumbprint(wit: &str) -> [u8; 32] {
    let claims = locus_wimse::jws::CompactJws::parse(wit)
        .expect("jws")
        .claims()
        .expect("claims");
    locus_wimse::Jwk::from_value(&claims["cnf"]["jwk"])
        .expect("cnf.jwk")
        .thumbprint_sha256()
}

fn key_d(agent: &RunningAgent) -> [u8; 32] {
    let cred = agent
        .slot()
        .valid_at(now_secs())
        .expect("a valid credential");
    p256_d_from_pkcs8(&cred.danger_private_pkcs8_for_leak_tests())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_second_wits_renew_three_times_without_a_gap_and_wpts_verify() {
    let started = std::time::SystemTime::now() - Duration::from_secs(1);
    let fv = FakeVerifier::start(3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    let agent = start(params(&fv, &socket, TeeChoice::SimSnp))
        .await
        .expect("start");

    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660, "Workload API socket mode");

    let mut seen = HashSet::new();
    let (w0, _) = first_wit(&socket).await;
    seen.insert(w0);
    for renewal in 1..=3 {
        let (_, exp) = next_wit_without_gap(&socket, &mut seen, Duration::from_secs(10)).await;
        assert!(exp > now_secs(), "renewal {renewal}");
    }
    assert!(agent.slot().stats().issued() >= 4);
    let keys: HashSet<[u8; 32]> = seen.iter().map(|w| cnf_thumbprint(w)).collect();
    assert_eq!(
        keys.len(),
        seen.len(),
        "every WIT is bound to its own fresh key"
    );

    // A WPT from the Workload API verifies against the WIT it was made for (retry if a renewal slipped between).
    let rp = RelyingParty::new(RpConfig::new(
        fv.trust(),
        vec!["https://svc.example".into()],
    ))
    .expect("rp");
    let access_token = "access-token-1";
    let mut verified = false;
    for _ in 0..5 {
        let (wit, _) = poll_wit(&socket).await.expect("wit");
        let (status, _, body) = uds_request(
            &socket,
            "POST",
            "/v1/wpt",
            Some(json!({"aud": "https://svc.example/orders", "ath": token_hash(access_token)})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let wpt = body["wpt"].as_str().expect("wpt").to_string();
        let (after, _) = poll_wit(&socket).await.expect("wit");
        if after != wit {
            continue;
        }
        let bearer = format!("Bearer {access_token}");
        let auth = rp
            .verify_request(
                [
                    ("Workload-Identity-Token", wit.as_str()),
                    ("Workload-Proof-Token", wpt.as_str()),
                    ("Authorization", bearer.as_str()),
                ],
                "/orders",
                now_secs(),
            )
            .expect("WPT verifies against the WIT with locus-wimse");
        assert_eq!(auth.id.as_str(), common::DEFAULT_SUB);
        assert!(
            auth.wpt_claims.exp <= auth.wit_claims.exp,
            "a WPT never outlives its WIT"
        );
        verified = true;
        break;
    }
    assert!(
        verified,
        "could not get a WPT and WIT from the same credential"
    );

    // No private key bytes in anything the agent wrote.
    let d = key_d(&agent);
    assert!(files_containing_key(dir.path(), &d).is_empty());
    let in_tmp = files_containing_key_since(&std::env::temp_dir(), &d, started);
    assert!(in_tmp.is_empty(), "key bytes in {in_tmp:?}");
    agent.stop().await.expect("stop");
    assert!(!socket.exists(), "socket removed on stop");
    assert!(files_containing_key(dir.path(), &d).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_is_bridged_by_the_valid_wit_and_past_expiry_the_api_answers_503_never_an_expired_wit(
) {
    // 6-second WITs: renewal at 4 s, 2 s of slack for an outage that overlaps the renewal point.
    let fv = FakeVerifier::start(6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    let agent = start(params(&fv, &socket, TeeChoice::SimTdx))
        .await
        .expect("start");

    let mut seen = HashSet::new();
    let (w0, _) = first_wit(&socket).await;
    seen.insert(w0);
    // Align on a renewal (it starts right after a whole second, so the new WIT has nearly its full life).
    let (w1, _) = next_wit_without_gap(&socket, &mut seen, Duration::from_secs(15)).await;

    // 1. Outage longer than the renewal interval (4 s), shorter than the WIT's remaining life.
    fv.stop().await;
    let failures_before = agent.slot().stats().failures();
    let outage_end = now_f64() + 4.4;
    while now_f64() < outage_end {
        let (wit, _) = poll_wit(&socket)
            .await
            .expect("the valid WIT is served during the outage");
        assert_eq!(
            wit, w1,
            "nothing new can be issued while the verifier is down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        agent.slot().stats().failures() > failures_before,
        "renewal was attempted and failed"
    );
    fv.restart().await;
    let (w2, _) = next_wit_without_gap(&socket, &mut seen, Duration::from_secs(10)).await;
    assert_ne!(w2, w1, "recovered");
    let last = agent
        .slot()
        .stats()
        .last_error()
        .expect("a failure was recorded");
    assert_eq!(last.0, "verifier_unreachable");

    // 2. Outage past expiry: the WIT is served until it expires, then 503 credential_unavailable, never the old one.
    fv.stop().await;
    let deadline = now_f64() + 15.0;
    let mut served_after_stop = 0;
    loop {
        match poll_wit(&socket).await {
            Ok((wit, _)) => {
                assert_eq!(wit, w2);
                served_after_stop += 1;
            }
            Err(code) => {
                assert_eq!(code, "credential_unavailable");
                break;
            }
        }
        assert!(now_f64() < deadline, "the WIT never expired?");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served_after_stop > 0,
        "the still-valid WIT was served after the verifier stopped"
    );
    for _ in 0..5 {
        assert_eq!(
            poll_wit(&socket).await,
            Err("credential_unavailable".to_string())
        );
        let (status, _, body) = uds_request(
            &socket,
            "POST",
            "/v1/wpt",
            Some(json!({"aud": "https://a.example/"})),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (503, Some("credential_unavailable"))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(agent.slot().valid_at(now_secs()).is_none());

    // 3. Recovery.
    fv.restart().await;
    let (w3, _) = first_wit(&socket).await;
    assert!(!seen.contains(&w3));
    agent.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_api_refusals_are_problem_documents_with_codes() {
    let fv = FakeVerifier::start(600).await;
    fv.refuse_with(403, "measurement_unknown");
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    let agent = start(params(&fv, &socket, TeeChoice::SimSnp))
        .await
        .expect("start");

    // No credential yet: 503, and the detail carries the verifier's refusal code.
    let deadline = now_f64() + 10.0;
    while agent.slot().stats().failures() == 0 {
        assert!(now_f64() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, ctype, body) = uds_request(&socket, "GET", "/v1/wit", None).await;
    assert_eq!((status, ctype.as_str()), (503, "application/problem+json"));
    assert_eq!(body["code"], "credential_unavailable");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("measurement_unknown")),
        "{body}"
    );

    fv.accept_again();
    first_wit(&socket).await;

    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        (
            "POST",
            "/v1/wpt",
            Some(json!({"aud": ""})),
            400,
            "request_invalid",
        ),
        (
            "POST",
            "/v1/wpt",
            Some(json!({"aud": "https://a.example/?q"})),
            400,
            "request_invalid",
        ),
        (
            "POST",
            "/v1/wpt",
            Some(json!({"aud": "https://a.example/", "ath": "short"})),
            400,
            "request_invalid",
        ),
        (
            "POST",
            "/v1/wpt",
            Some(json!({"aud": "https://a.example/", "extra": 1})),
            400,
            "request_invalid",
        ),
        (
            "POST",
            "/v1/wpt",
            Some(json!({"aud": "x".repeat(20_000)})),
            413,
            "request_too_large",
        ),
        ("POST", "/v1/wpt", None, 400, "request_invalid"),
        ("GET", "/v1/wpt", None, 405, "request_invalid"),
        ("GET", "/v1/nothing", None, 404, "not_found"),
    ];
    for (method, uri, body, want_status, want_code) in cases {
        let (status, ctype, got) = uds_request(&socket, method, uri, body).await;
        assert_eq!(status, want_status, "{method} {uri}: {got}");
        assert_eq!(ctype, "application/problem+json", "{method} {uri}");
        assert_eq!(got["code"], want_code, "{method} {uri}");
    }
    let (status, _, ok) = uds_request(
        &socket,
        "POST",
        "/v1/wpt",
        Some(json!({"aud": "https://a.example/p"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(ok["wpt"].as_str().is_some());
    agent.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_path_rules_stale_live_and_foreign_files() {
    let fv = FakeVerifier::start(600).await;
    let dir = tempfile::tempdir().expect("tempdir");

    // A stale socket (nobody listening) is replaced.
    let stale: PathBuf = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let agent = start(params(&fv, &stale, TeeChoice::SimSnp))
        .await
        .expect("stale socket replaced");

    // A live one is not taken over.
    let err = start(params(&fv, &stale, TeeChoice::SimSnp))
        .await
        .expect_err("live socket");
    assert_eq!(err.code(), "config_invalid");
    agent.stop().await.expect("stop");

    // Any other file is never deleted.
    let file = dir.path().join("file.sock");
    std::fs::write(&file, b"not a socket").expect("write");
    let err = start(params(&fv, &file, TeeChoice::SimSnp))
        .await
        .expect_err("regular file");
    assert_eq!(err.code(), "config_invalid");
    assert_eq!(std::fs::read(&file).expect("still there"), b"not a socket");

    // No staging directories are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".locus-agent"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn key_scanner_finds_planted_key_bytes_in_every_encoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = [0x5Au8; 32];
    assert!(files_containing_key(dir.path(), &d).is_empty());
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).expect("mkdir");
    for (i, bytes) in [
        d.to_vec(),
        hex::encode(d).into_bytes(),
        locus_wimse::b64::encode(d).into_bytes(),
    ]
    .into_iter()
    .enumerate()
    {
        let f = nested.join(format!("f{i}"));
        std::fs::write(&f, [b"prefix".as_slice(), &bytes, b"suffix"].concat()).expect("write");
        assert_eq!(
            files_containing_key(dir.path(), &d),
            vec![f.clone()],
            "encoding {i}"
        );
        std::fs::remove_file(&f).expect("rm");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_wit_failing_the_jwks_check_is_never_served_and_the_valid_one_is_kept() {
    // 6-second WITs: renewal at 4 s.
    let fv = FakeVerifier::start(6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("agent.sock");
    let agent = start(params(&fv, &socket, TeeChoice::SimSnp))
        .await
        .expect("start");
    let (w0, exp0) = first_wit(&socket).await;

    fv.sign_with_an_unpublished_key();
    let failures_before = agent.slot().stats().failures();
    // Until w0 expires, every poll serves w0 (never a forged one); then 503.
    let deadline = now_f64() + 15.0;
    loop {
        match poll_wit(&socket).await {
            Ok((wit, _)) => assert_eq!(wit, w0, "only the verified WIT is served"),
            Err(code) => {
                assert_eq!(code, "credential_unavailable");
                assert!(now_secs() >= exp0);
                break;
            }
        }
        assert!(now_f64() < deadline, "w0 never expired?");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(agent.slot().stats().failures() > failures_before);
    let (code, message) = agent.slot().stats().last_error().expect("recorded");
    assert_eq!(code, "wit_invalid");
    assert!(message.contains("signature_invalid"), "{message}");

    // The verifier signs with its published key again: recovery.
    fv.sign_with_the_published_key();
    let (w1, _) = first_wit(&socket).await;
    assert_ne!(w1, w0);
    agent.stop().await.expect("stop");
}

/// The uid and gid of this test process (owner of a file it creates).
fn own_ids(dir: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let probe = dir.join("probe");
    std::fs::write(&probe, b"").expect("probe file");
    let m = std::fs::metadata(&probe).expect("metadata");
    (m.uid(), m.gid())
}

async fn start_with_peers(fv: &FakeVerifier, socket: &Path, peers: PeerAllowList) -> RunningAgent {
    let mut p = params(fv, socket, TeeChoice::SimSnp);
    p.peers = peers;
    start(p).await.expect("start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_api_serves_only_peers_on_the_uid_gid_allow_list() {
    let fv = FakeVerifier::start(600).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (uid, gid) = own_ids(dir.path());
    let other = |id: u32| id.wrapping_add(4242);

    // Default (own uid, root): this process is served.
    let socket = dir.path().join("default.sock");
    let agent = start_with_peers(&fv, &socket, PeerAllowList::default()).await;
    first_wit(&socket).await;
    agent.stop().await.expect("stop");

    // Allowed by uid, or by gid alone.
    for peers in [
        PeerAllowList {
            uids: vec![uid],
            gids: vec![],
        },
        PeerAllowList {
            uids: vec![other(uid)],
            gids: vec![gid],
        },
    ] {
        let socket = dir.path().join("allowed.sock");
        let agent = start_with_peers(&fv, &socket, peers.clone()).await;
        first_wit(&socket).await;
        let (status, _, body) = uds_request(
            &socket,
            "POST",
            "/v1/wpt",
            Some(json!({"aud": "https://svc.example/orders"})),
        )
        .await;
        assert_eq!(status, 200, "{peers:?}: {body}");
        agent.stop().await.expect("stop");
    }

    // A list that names neither our uid nor our gid (root is not implied): 403 peer_not_allowed on every route,
    // before any handler runs, while the agent holds a valid credential.
    let socket = dir.path().join("refused.sock");
    let agent = start_with_peers(
        &fv,
        &socket,
        PeerAllowList {
            uids: vec![other(uid)],
            gids: vec![other(gid)],
        },
    )
    .await;
    let deadline = now_f64() + 30.0;
    while agent.slot().valid_at(now_secs()).is_none() {
        assert!(now_f64() < deadline, "no credential");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (method, uri, body) in [
        ("GET", "/v1/wit", None),
        (
            "POST",
            "/v1/wpt",
            Some(json!({"aud": "https://svc.example/orders"})),
        ),
        ("GET", "/nope", None),
    ] {
        let (status, ctype, body) = uds_request(&socket, method, uri, body).await;
        assert_eq!(
            (status, ctype.as_str()),
            (403, "application/problem+json"),
            "{method} {uri}"
        );
        assert_eq!(body["code"], "peer_not_allowed");
        assert!(body.get("wit").is_none() && body.get("wpt").is_none());
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("uid {uid}"))),
            "{body}"
        );
    }
    agent.stop().await.expect("stop");
}
