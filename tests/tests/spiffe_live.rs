//! Across real processes: `locus-verifier serve` (examples/verifier.toml, simulator) issuing SVIDs on `/v1/svid`, and
//! `locus-agent run --spiffe-socket` serving them. Independent clients — the Rust `spiffe` crate and py-spiffe — fetch
//! an X.509-SVID, a JWT-SVID and both bundles; the X.509-SVID chains to the bundle (also checked with Python
//! `cryptography`), carries the EAR in `id-pe-cmw`, and its key is not the attested key; the JWT-SVID validates with
//! the JWT bundle; two workloads complete rustls mTLS with their X.509-SVIDs; `FetchX509SVID` pushes the SVID renewed
//! with the agent's WIT on the same stream.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use der::Decode as _;
use locus_tests::http1::{self, Request};
use locus_tests::procs::{run_to_completion, workspace_bin, ChildGuard, VerifierProcess};
use locus_tests::spiffe::{handshake, provider};
use locus_tests::{unix_now, ANY_WORKLOAD, EU_WORKLOAD, TRUST_DOMAIN};
use locus_wimse::spiffe_tls::{SpiffeClientVerifier, SpiffeIdMatcher, SpiffeServerVerifier};
use locus_wimse::{Jwk, Jwks, TrustDomain, WorkloadId};
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier as _;
use tokio_stream::StreamExt as _;

const STEP: Duration = Duration::from_secs(120);
const AUDIENCE: &str = "https://orders.example";

/// `locus-agent run --spiffe-socket` for one workload; killed on drop.
struct Agent {
    _guard: ChildGuard,
    rest: PathBuf,
    spiffe: PathBuf,
}

fn start_verifier(dir: &Path, wit_ttl: Option<u64>) -> VerifierProcess {
    match wit_ttl {
        None => VerifierProcess::start_example(dir, STEP).unwrap_or_else(|e| panic!("{e}")),
        Some(ttl) => {
            let text =
                locus_tests::paths::example_config_for(&dir.join("state"), None).expect("config");
            let mut doc: toml::Table = text.parse().expect("toml");
            for w in doc["workload"].as_array_mut().expect("workloads") {
                w.as_table_mut()
                    .expect("table")
                    .insert("ttl".into(), toml::Value::Integer(ttl as i64));
            }
            let config = dir.join("verifier.toml");
            std::fs::write(&config, toml::to_string(&doc).expect("toml")).expect("write config");
            let bin = workspace_bin("locus-verifier").expect("locus-verifier");
            VerifierProcess::start(&bin, &config, &dir.join("verifier.stderr"), STEP)
                .unwrap_or_else(|e| panic!("{e}"))
        }
    }
}

fn start_agent(verifier: &VerifierProcess, dir: &Path, name: &str, workload: &str) -> Agent {
    start_agent_with(verifier, dir, name, workload, &[])
}

fn start_agent_with(
    verifier: &VerifierProcess,
    dir: &Path,
    name: &str,
    workload: &str,
    extra: &[&str],
) -> Agent {
    let bin = workspace_bin("locus-agent").expect("locus-agent");
    let rest = dir.join(format!("{name}.sock"));
    let spiffe = dir.join(format!("{name}-spiffe.sock"));
    let stderr = std::fs::File::create(dir.join(format!("{name}.stderr"))).expect("stderr file");
    let child = Command::new(bin)
        .args([
            "run",
            "--verifier",
            &verifier.base,
            "--tee",
            "sim-snp",
            "--sim-profile",
            "snp-fra-1",
        ])
        .args(["--workload", workload, "--socket"])
        .arg(&rest)
        .arg("--spiffe-socket")
        .arg(&spiffe)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn locus-agent run");
    let guard = ChildGuard::new(format!("locus-agent {name}"), child);
    // The SPIFFE socket appears once the agent runs; its first answer waits for the first SVIDs.
    locus_tests::procs::wait_for(STEP, || spiffe.exists().then_some(())).expect("SPIFFE socket");
    Agent {
        _guard: guard,
        rest,
        spiffe,
    }
}

/// The thumbprint of the attested key: the `cnf.jwk` of the WIT the agent serves on its REST Workload API.
fn attested_thumbprint(agent: &Agent) -> [u8; 32] {
    let resp = http1::unix(&agent.rest, &Request::get("/v1/wit"), STEP).expect("GET /v1/wit");
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let wit = resp.json().expect("json")["wit"]
        .as_str()
        .expect("wit")
        .to_string();
    let claims = locus_wimse::jws::CompactJws::parse(&wit)
        .expect("jws")
        .claims()
        .expect("claims");
    Jwk::from_value(&claims["cnf"]["jwk"])
        .expect("cnf")
        .thumbprint_sha256()
}

fn point_thumbprint(point: &[u8]) -> [u8; 32] {
    assert_eq!(point.len(), 65, "uncompressed P-256 point");
    Jwk::new(locus_wimse::PublicKey::P256 {
        x: point[1..33].try_into().expect("x"),
        y: point[33..65].try_into().expect("y"),
    })
    .thumbprint_sha256()
}

fn leaf_point(der: &[u8]) -> Vec<u8> {
    let cert = x509_cert::Certificate::from_der(der).expect("leaf");
    cert.tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec()
}

async fn connect(agent: &Agent) -> spiffe::WorkloadApiClient {
    spiffe::WorkloadApiClient::connect_to(format!("unix:{}", agent.spiffe.display()))
        .await
        .expect("connect")
}

fn td() -> TrustDomain {
    TrustDomain::parse(TRUST_DOMAIN).expect("td")
}

/// The X.509 bundle of the trust domain and an SVID (chain, PKCS#8) for `agent`.
async fn x509_of(
    agent: &Agent,
) -> (
    Vec<CertificateDer<'static>>,
    Vec<CertificateDer<'static>>,
    Vec<u8>,
) {
    let wl = connect(agent).await;
    let svid = wl.fetch_x509_svid().await.expect("X.509-SVID");
    let bundles = wl.fetch_x509_bundles().await.expect("bundles");
    let bundle = bundles
        .get(&spiffe::TrustDomain::new(TRUST_DOMAIN).expect("td"))
        .expect("own bundle");
    let roots = bundle
        .authorities()
        .iter()
        .map(|c| CertificateDer::from(c.as_bytes().to_vec()))
        .collect();
    let chain = svid
        .cert_chain()
        .iter()
        .map(|c| CertificateDer::from(c.as_bytes().to_vec()))
        .collect();
    (roots, chain, svid.private_key().as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_spiffe_client_gets_verifier_issued_svids_that_chain_to_the_bundle_with_keys_not_the_attested_key(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let verifier = start_verifier(dir.path(), None);
    let agent = start_agent(&verifier, dir.path(), "a", EU_WORKLOAD);
    let (roots, chain, key) = x509_of(&agent).await;
    // The chain verifies against the bundle, and the SPIFFE ID is the workload's.
    let verifier_of = SpiffeClientVerifier::new(
        &roots,
        td(),
        SpiffeIdMatcher::Exact(WorkloadId::parse(EU_WORKLOAD).expect("id")),
        provider(),
    )
    .expect("verifier");
    verifier_of
        .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
        .expect("chains to the bundle");
    // The leaf carries the EAR in id-pe-cmw.
    let cert = x509_cert::Certificate::from_der(&chain[0]).expect("leaf");
    let cmw = const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.35");
    assert!(
        cert.tbs_certificate
            .extensions
            .iter()
            .flatten()
            .any(|e| e.extn_id == cmw),
        "the X.509-SVID carries the attestation result"
    );
    // Its key is a fresh one, never the attested key.
    let svid_key = locus_wimse::Es256SigningKey::from_pkcs8(&key)
        .expect("P-256 PKCS#8")
        .thumbprint_sha256();
    assert_eq!(
        svid_key,
        point_thumbprint(&leaf_point(&chain[0])),
        "the key certified is the key handed out"
    );
    assert_ne!(
        svid_key,
        attested_thumbprint(&agent),
        "the SVID key is not the attested key"
    );

    // JWT-SVID, validated against the JWT bundle the client fetched.
    let wl = connect(&agent).await;
    let jwt = wl.fetch_jwt_svid([AUDIENCE], None).await.expect("JWT-SVID");
    let jwt_bundles = wl.fetch_jwt_bundles().await.expect("JWT bundles");
    let jwt_bundle = jwt_bundles
        .get(&spiffe::TrustDomain::new(TRUST_DOMAIN).expect("td"))
        .expect("own bundle");
    let keys: Vec<serde_json::Value> = jwt_bundle
        .jwt_authorities()
        .map(|a| serde_json::from_slice(a.jwk_json()).expect("jwk json"))
        .collect();
    let jwks = Jwks::from_value(&serde_json::json!({ "keys": keys })).expect("jwks");
    let ok =
        locus_wimse::jwt_svid::validate_jwt_svid(jwt.token(), AUDIENCE, &jwks, &td(), unix_now())
            .expect("the JWT-SVID validates with the JWT bundle");
    assert_eq!(ok.id.as_str(), EU_WORKLOAD);
    assert_eq!(ok.claims["locus_tee"]["type"], "sev-snp", "{:?}", ok.claims);
    assert_eq!(
        ok.claims["locus_residency"]["country"], "DE",
        "{:?}",
        ok.claims
    );
    // No JWT bundle key is a WIT key or an X.509 CA: the profiles' keys stay apart.
    let validated = wl
        .validate_jwt_token(AUDIENCE, jwt.token())
        .await
        .expect("ValidateJWTSVID");
    assert_eq!(validated.spiffe_id().to_string(), EU_WORKLOAD);
}

#[test]
fn py_spiffe_fetches_the_svids_and_bundles_and_they_check_out_with_cryptography() {
    if !locus_tests::python_with("import spiffe, cryptography", "py-spiffe interop") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let verifier = start_verifier(dir.path(), None);
    let agent = start_agent(&verifier, dir.path(), "a", EU_WORKLOAD);
    let script = locus_tests::paths::repo_root().join("tests/support/py_spiffe_client.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(&agent.spiffe)
        .args([TRUST_DOMAIN, AUDIENCE]);
    let done = run_to_completion("py-spiffe client", &mut cmd, STEP).expect("run python3");
    assert!(
        done.success(),
        "py-spiffe client failed:\n{}\n{}",
        done.stdout,
        done.stderr
    );
    let out: serde_json::Value =
        serde_json::from_str(done.stdout.lines().last().unwrap_or_default())
            .expect("one JSON line");
    assert_eq!(out["x509_spiffe_id"], EU_WORKLOAD, "{out}");
    assert_eq!(out["chains_to_bundle"], true, "{out}");
    assert_eq!(out["valid_now"], true, "{out}");
    assert_eq!(out["jwt_spiffe_id"], EU_WORKLOAD, "{out}");
    assert_eq!(out["jwt_audience"], serde_json::json!([AUDIENCE]), "{out}");
    assert!(
        out["bundle_authorities"].as_u64() >= Some(1) && out["jwt_bundle_keys"].as_u64() >= Some(1),
        "{out}"
    );
    let point = hex::decode(out["x509_key_point"].as_str().expect("point")).expect("hex");
    assert_ne!(
        point_thumbprint(&point),
        attested_thumbprint(&agent),
        "the SVID key is not the attested key"
    );
}

fn rustls_key(pkcs8: Vec<u8>) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8))
}

fn exact(id: &str) -> SpiffeIdMatcher {
    SpiffeIdMatcher::Exact(WorkloadId::parse(id).expect("id"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workloads_complete_mtls_with_their_x509_svids_each_checking_the_others_spiffe_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let verifier = start_verifier(dir.path(), None);
    let server_agent = start_agent(&verifier, dir.path(), "model", EU_WORKLOAD);
    let client_agent = start_agent(&verifier, dir.path(), "batch", ANY_WORKLOAD);
    let (roots, server_chain, server_key) = x509_of(&server_agent).await;
    let (_, client_chain, client_key) = x509_of(&client_agent).await;
    let configs = |client_expects: &str, server_expects: &str| {
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(
                SpiffeServerVerifier::new(&roots, td(), exact(client_expects), provider())
                    .expect("verifier"),
            ))
            .with_client_auth_cert(client_chain.clone(), rustls_key(client_key.clone()))
            .expect("client cert");
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(Arc::new(
                SpiffeClientVerifier::new(&roots, td(), exact(server_expects), provider())
                    .expect("verifier"),
            ))
            .with_single_cert(server_chain.clone(), rustls_key(server_key.clone()))
            .expect("server cert");
        (Arc::new(client), Arc::new(server))
    };
    let (c, s) = configs(EU_WORKLOAD, ANY_WORKLOAD);
    handshake(c, s).expect("mTLS with each side's expected SPIFFE ID");
    let (c, s) = configs(ANY_WORKLOAD, ANY_WORKLOAD);
    handshake(c, s).expect_err("the client expected another server");
    let (c, s) = configs(EU_WORKLOAD, EU_WORKLOAD);
    handshake(c, s).expect_err("the server expected another client");
    // The server verifier on its own: the model server's SVID is accepted for its own ID only.
    let v =
        SpiffeServerVerifier::new(&roots, td(), exact(EU_WORKLOAD), provider()).expect("verifier");
    let name = ServerName::try_from("ignored.invalid").expect("name");
    v.verify_server_cert(
        &server_chain[0],
        &server_chain[1..],
        &name,
        &[],
        UnixTime::now(),
    )
    .expect("server SVID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_x509_svid_pushes_the_svid_renewed_with_the_agents_wit_on_the_same_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    // WITs of 15 s: the agent renews at 10 s, and each new WIT brings new SVIDs.
    let verifier = start_verifier(dir.path(), Some(15));
    let agent = start_agent(&verifier, dir.path(), "a", EU_WORKLOAD);
    let wl = connect(&agent).await;
    let mut stream = wl.stream_x509_svids().await.expect("stream");
    let first = tokio::time::timeout(STEP, stream.next())
        .await
        .expect("first in time")
        .expect("item")
        .expect("svid");
    let second = tokio::time::timeout(STEP, stream.next())
        .await
        .expect("pushed in time")
        .expect("item")
        .expect("svid");
    assert_eq!(first.spiffe_id().to_string(), EU_WORKLOAD);
    assert_eq!(second.spiffe_id().to_string(), EU_WORKLOAD);
    assert_ne!(
        first.leaf().as_bytes(),
        second.leaf().as_bytes(),
        "a new certificate"
    );
    assert_ne!(
        first.private_key().as_bytes(),
        second.private_key().as_bytes(),
        "for a new key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wit_svid_profile_serves_a_verifier_issued_wit_svid_for_a_fresh_key_that_verifies_with_the_wit_bundle(
) {
    use locus_agent::spiffe::pb::spiffe_workload_api_client::SpiffeWorkloadApiClient;
    use locus_tests::spiffe::{checked_wit_svid, uds_channel};

    let dir = tempfile::tempdir().expect("tempdir");
    let verifier = start_verifier(dir.path(), None);
    let agent = start_agent_with(
        &verifier,
        dir.path(),
        "a",
        EU_WORKLOAD,
        &["--spiffe-wit-svid"],
    );
    let mut c = SpiffeWorkloadApiClient::new(uds_channel(&agent.spiffe).await);
    let (public, claims) = checked_wit_svid(&mut c, EU_WORKLOAD, EU_WORKLOAD, STEP).await;
    assert_ne!(
        public.thumbprint_sha256(),
        attested_thumbprint(&agent),
        "not the attested key"
    );
    assert!(
        claims["locus_svid_of"].is_string(),
        "names the agent's WIT: {claims:?}"
    );
}
