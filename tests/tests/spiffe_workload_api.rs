//! The SPIFFE Workload API of an in-process `locus-agent run` whose attested credential comes from a real
//! `locus-verifier serve` (examples/verifier.toml, simulator) and whose SVIDs come from an issuer double
//! ([`DoubleIssuer`]) — the gRPC layer tested on its own: the Rust `spiffe` crate's client and a client generated
//! from the agent's own proto (WIT-SVID profile), the security header and peer refusals with the spec's status codes,
//! push on renewal on one stream, fresh per-SVID keys that are never the attested key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use locus_agent::client::VerifierClient;
use locus_agent::run::{
    start, system_clock, PeerAllowList, RunConfig, RunParams, RunningAgent, SpiffeParams,
};
use locus_agent::select::{open_attester, AttesterOptions, TeeChoice};
use locus_agent::spiffe::identity::IdentityMap;
use locus_agent::spiffe::pb;
use locus_agent::spiffe::pb::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use locus_tests::procs::VerifierProcess;
use locus_tests::spiffe::{checked_wit_svid, next_answer, uds_channel, with_header, DoubleIssuer};
use locus_tests::{unix_now, EU_WORKLOAD, TRUST_DOMAIN};
use locus_wimse::{Jwks, TrustDomain};

const STEP: Duration = Duration::from_secs(120);

struct Env {
    _verifier: VerifierProcess,
    _dir: tempfile::TempDir,
    agent: RunningAgent,
    spiffe_socket: PathBuf,
    issuer: Arc<DoubleIssuer>,
}

async fn start_env(x509_lifetime: u64, peers: PeerAllowList, wit_svid: bool) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let verifier = {
        let path = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || VerifierProcess::start_example(&path, STEP))
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let issuer = Arc::new(DoubleIssuer::new(TRUST_DOMAIN, x509_lifetime));
    let spiffe_socket = dir.path().join("spiffe.sock");
    let params = RunParams {
        client: VerifierClient::new(&verifier.base, Duration::from_secs(30)).expect("client"),
        attester: open_attester(&AttesterOptions {
            tee: TeeChoice::SimSnp,
            sim_profile: Some("snp-fra-1".into()),
            ..AttesterOptions::default()
        })
        .expect("attester"),
        cfg: RunConfig {
            workload: Some(EU_WORKLOAD.into()),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_millis(500),
            ..RunConfig::default()
        },
        socket: dir.path().join("agent.sock"),
        peers,
        clock: system_clock(),
        spiffe: Some(SpiffeParams {
            socket: spiffe_socket.clone(),
            identities: IdentityMap::default(),
            wit_svid,
            source: issuer.clone(),
        }),
    };
    let agent = start(params).await.expect("agent starts");
    Env {
        _verifier: verifier,
        _dir: dir,
        agent,
        spiffe_socket,
        issuer,
    }
}

async fn client(socket: &Path) -> SpiffeWorkloadApiClient<tonic::transport::Channel> {
    SpiffeWorkloadApiClient::new(uds_channel(socket).await)
}

fn attested_thumbprint(agent: &RunningAgent) -> [u8; 32] {
    agent
        .slot()
        .valid_at(unix_now())
        .expect("a valid credential")
        .public_jwk()
        .thumbprint_sha256()
}

/// The thumbprint of the P-256 key inside a PKCS#8 document.
fn pkcs8_thumbprint(pkcs8: &[u8]) -> [u8; 32] {
    locus_wimse::Es256SigningKey::from_pkcs8(pkcs8)
        .expect("P-256 PKCS#8")
        .thumbprint_sha256()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_spiffe_client_fetches_svids_and_bundles_and_each_svid_has_a_fresh_key() {
    let env = start_env(3600, PeerAllowList::default(), false).await;
    let endpoint = format!("unix:{}", env.spiffe_socket.display());
    let wl = spiffe::WorkloadApiClient::connect_to(&endpoint)
        .await
        .expect("connect");
    let svid = wl.fetch_x509_svid().await.expect("X.509-SVID");
    assert_eq!(svid.spiffe_id().to_string(), EU_WORKLOAD);
    let key = pkcs8_thumbprint(svid.private_key().as_bytes());
    assert_ne!(
        key,
        attested_thumbprint(&env.agent),
        "the SVID key is not the attested key"
    );
    assert!(
        env.issuer.seen_keys().contains(&key),
        "the SVID certifies the key the agent asked for"
    );
    let td = spiffe::TrustDomain::new(TRUST_DOMAIN).expect("td");
    let bundles = wl.fetch_x509_bundles().await.expect("X.509 bundles");
    let x509_bundle = bundles.get(&td).expect("own trust domain");
    assert_eq!(x509_bundle.authorities().len(), 1);

    let jwt = wl
        .fetch_jwt_svid(["https://orders.example"], None)
        .await
        .expect("JWT-SVID");
    assert_eq!(jwt.spiffe_id().to_string(), EU_WORKLOAD);
    assert_eq!(jwt.audience(), ["https://orders.example".to_string()]);
    let jwt_bundles = wl.fetch_jwt_bundles().await.expect("JWT bundles");
    let jwt_bundle = jwt_bundles.get(&td).expect("own trust domain");
    let authority = jwt_bundle
        .find_jwt_authority(jwt.key_id())
        .expect("the signing key is in the bundle");
    let keys = Jwks::from_json(&format!(
        "{{\"keys\":[{}]}}",
        std::str::from_utf8(authority.jwk_json()).expect("utf-8")
    ))
    .expect("jwks");
    let verified = locus_wimse::jwt_svid::validate_jwt_svid(
        jwt.token(),
        "https://orders.example",
        &keys,
        &TrustDomain::parse(TRUST_DOMAIN).expect("td"),
        unix_now(),
    )
    .expect("the JWT-SVID verifies with the JWT bundle");
    assert_eq!(verified.id.as_str(), EU_WORKLOAD);
    // The agent validates too (ValidateJWTSVID), and refuses another audience.
    let ok = wl
        .validate_jwt_token("https://orders.example", jwt.token())
        .await
        .expect("ValidateJWTSVID");
    assert_eq!(ok.spiffe_id().to_string(), EU_WORKLOAD);
    let mut raw = client(&env.spiffe_socket).await;
    let status = raw
        .validate_jwtsvid(with_header(pb::ValidateJwtsvidRequest {
            audience: "https://other.example".into(),
            svid: jwt.token().into(),
        }))
        .await
        .expect_err("wrong audience");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("aud_mismatch"), "{status:?}");
    env.agent.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_the_security_header_is_invalid_argument_before_anything_else() {
    let env = start_env(3600, PeerAllowList::default(), false).await;
    let mut c = client(&env.spiffe_socket).await;
    let status = c
        .fetch_jwtsvid(pb::JwtsvidRequest {
            audience: vec!["a".into()],
            spiffe_id: String::new(),
        })
        .await
        .expect_err("no header");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let mut wrong = tonic::Request::new(pb::X509svidRequest {});
    wrong
        .metadata_mut()
        .insert("workload.spiffe.io", "TRUE".parse().expect("metadata"));
    let status = c.fetch_x509svid(wrong).await.expect_err("wrong value");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    env.agent.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_outside_the_allow_list_is_permission_denied() {
    // Only uid 4242 may connect: this process is someone else.
    let peers = PeerAllowList {
        uids: vec![4242],
        gids: vec![],
    };
    let env = start_env(3600, peers, false).await;
    let mut c = client(&env.spiffe_socket).await;
    let status = c
        .fetch_x509_bundles(with_header(pb::X509BundlesRequest {}))
        .await
        .expect_err("not allowed");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("--allow-uid"), "{status:?}");
    // The header check comes first.
    let status = c
        .fetch_x509_bundles(pb::X509BundlesRequest {})
        .await
        .expect_err("no header");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    env.agent.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_x509_svid_pushes_the_renewed_svid_on_the_same_stream() {
    // X.509-SVIDs of 6 s: the agent renews at 2/3 of that.
    let env = start_env(6, PeerAllowList::default(), false).await;
    let mut c = client(&env.spiffe_socket).await;
    let mut stream = c
        .fetch_x509svid(with_header(pb::X509svidRequest {}))
        .await
        .expect("stream")
        .into_inner();
    let first = next_answer(&mut stream, STEP).await;
    let second = next_answer(&mut stream, STEP).await;
    let (a, b) = (&first.svids[0], &second.svids[0]);
    assert_eq!(
        (a.spiffe_id.as_str(), b.spiffe_id.as_str()),
        (EU_WORKLOAD, EU_WORKLOAD)
    );
    assert_ne!(a.x509_svid, b.x509_svid, "a new certificate");
    assert_ne!(
        pkcs8_thumbprint(&a.x509_svid_key),
        pkcs8_thumbprint(&b.x509_svid_key),
        "for a new key"
    );
    assert!(env.issuer.x509_issued() >= 2);
    assert!(!a.bundle.is_empty() && first.federated_bundles.is_empty());
    env.agent.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wit_svid_profile_serves_a_wit_bound_to_the_private_jwk_it_hands_out_and_is_unimplemented_when_off(
) {
    let env = start_env(3600, PeerAllowList::default(), true).await;
    let mut c = client(&env.spiffe_socket).await;
    let (public, _) = checked_wit_svid(&mut c, "", EU_WORKLOAD, STEP).await;
    assert_ne!(
        public.thumbprint_sha256(),
        attested_thumbprint(&env.agent),
        "not the attested key"
    );
    // Asking for another SPIFFE ID is refused.
    let status = c
        .fetch_witsvid(with_header(pb::WitsvidRequest {
            spiffe_id: "spiffe://locus.example/someone-else".into(),
        }))
        .await
        .expect_err("not entitled");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    env.agent.stop().await.expect("stop");

    let off = start_env(3600, PeerAllowList::default(), false).await;
    let mut c = client(&off.spiffe_socket).await;
    let status = c
        .fetch_witsvid(with_header(pb::WitsvidRequest {
            spiffe_id: String::new(),
        }))
        .await
        .expect_err("profile off");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let status = c
        .fetch_wit_bundles(with_header(pb::WitBundlesRequest {}))
        .await
        .expect_err("profile off");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    off.agent.stop().await.expect("stop");
}
