//! One attestation round through the library against the in-process fake verifier: simulator evidence (SNP and
//! TDX, directly and through the configfs-tsm backend on a simulator-backed fake kernel) carries the docs/architecture.md#evidence-binding
//! binding, the WIT is bound to the key the agent holds (a WPT signed with it verifies against the WIT), and every
//! refusal surfaces with its exact code.
#![cfg(feature = "simulator")]

mod common;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use common::{now_secs, FakeVerifier};
use locus_agent::attest::obtain_credential;
use locus_agent::client::VerifierClient;
use locus_agent::select::{open_attester, AttesterOptions, TeeChoice};
use locus_hw::backend::configfs_tsm::fake::FakeTsm;
use locus_hw::backend::configfs_tsm::{ConfigfsTsmAttester, TsmOptions};
use locus_hw::backend::BackendConfig;
use locus_hw::{Attester, TeeType};
use locus_simulator::World;
use locus_wimse::wpt::WptRequest;
use locus_wimse::{RelyingParty, RpConfig};

fn client(fv: &FakeVerifier) -> VerifierClient {
    VerifierClient::new(&fv.url(), Duration::from_secs(10)).expect("client")
}

fn sim(tee: TeeChoice, profile: Option<&str>) -> Arc<dyn Attester> {
    open_attester(&AttesterOptions {
        tee,
        sim_profile: profile.map(str::to_string),
        ..AttesterOptions::default()
    })
    .expect("simulated attester")
}

async fn wit_is_bound_to_the_held_key(tee: TeeChoice, profile: &str, expect_tee: &str) {
    let fv = FakeVerifier::start(600).await;
    let workload = "spiffe://example.org/payments";
    let cred = obtain_credential(
        &client(&fv),
        sim(tee, Some(profile)),
        Some(workload),
        &now_secs,
    )
    .await
    .expect("credential");

    // The verifier saw evidence binding this very key (it checked report_data against the JWK's thumbprint).
    let records = fv.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].tee, expect_tee);
    assert_eq!(records[0].workload.as_deref(), Some(workload));
    assert_eq!(
        records[0].jwk_thumbprint,
        cred.public_jwk().thumbprint_sha256()
    );

    // The WIT verifies, names the workload, and its cnf is our key.
    let now = now_secs();
    let verified = fv
        .wit_verifier()
        .verify(cred.wit(), now)
        .expect("WIT verifies");
    assert_eq!(verified.id().as_str(), workload);
    assert_eq!(
        verified.claims().cnf.thumbprint_sha256(),
        cred.public_jwk().thumbprint_sha256()
    );
    assert_eq!(cred.exp(), verified.claims().exp);
    assert_eq!(cred.ear(), Some("fake.ear.token"));

    // Proof of possession: a WPT signed by the agent's key passes the relying-party checks.
    let rp = RelyingParty::new(RpConfig::new(
        fv.trust(),
        vec!["https://svc.example".into()],
    ))
    .expect("rp");
    let wpt = cred
        .sign_wpt(&WptRequest::new(
            "https://svc.example/orders",
            cred.wit(),
            now + 60,
        ))
        .expect("wpt");
    let auth = rp
        .verify_request(
            [
                ("Workload-Identity-Token", cred.wit()),
                ("Workload-Proof-Token", wpt.as_str()),
            ],
            "/orders",
            now,
        )
        .expect("request authenticated");
    assert_eq!(auth.id.as_str(), workload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_snp_wit_is_bound_to_the_key_the_agent_holds() {
    wit_is_bound_to_the_held_key(TeeChoice::SimSnp, "snp-fra-1", "sev-snp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_tdx_wit_is_bound_to_the_key_the_agent_holds() {
    wit_is_bound_to_the_held_key(TeeChoice::SimTdx, "tdx-fra-1", "tdx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_round_uses_a_fresh_key() {
    let fv = FakeVerifier::start(600).await;
    let a = sim(TeeChoice::SimSnp, None);
    let c1 = obtain_credential(&client(&fv), a.clone(), None, &now_secs)
        .await
        .expect("first");
    let c2 = obtain_credential(&client(&fv), a, None, &now_secs)
        .await
        .expect("second");
    assert_ne!(
        c1.public_jwk().thumbprint_sha256(),
        c2.public_jwk().thumbprint_sha256()
    );
}

/// The configfs-tsm backend over a fake kernel whose "firmware" is the simulator: the report comes from the inblob
/// we wrote, the auxblob is the simulator's certificate table, and the verifier receives VCEK, ASK and ARK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configfs_tsm_over_a_simulator_backed_fake_kernel_attests_end_to_end() {
    let world = World::shared();
    let snp = world.snp_attester("snp-iad-1").expect("profile");
    let fake = FakeTsm::new(Some("sev_guest"), move |rd: &[u8; 64], privlevel: u32| {
        if privlevel != 0 {
            return Err(io::Error::from_raw_os_error(22));
        }
        let ev = snp.report(rd).map_err(io::Error::other)?;
        Ok((ev.report.clone(), Some(ev.cert_table())))
    });
    // Another writer races the first attempt: the backend must retry and still bind our report data.
    fake.race_next_reads(1);
    let attester = ConfigfsTsmAttester::open(
        Arc::new(fake.clone()),
        TsmOptions {
            expect: Some(TeeType::SevSnp),
            ..TsmOptions::default()
        },
    )
    .expect("open");
    let fv = FakeVerifier::start(600).await;
    let cred = obtain_credential(&client(&fv), Arc::new(attester), None, &now_secs)
        .await
        .expect("credential");
    let records = fv.records();
    assert_eq!(records[0].tee, "sev-snp");
    assert_eq!(records[0].certs, 3, "VCEK, ASK and ARK from the auxblob");
    assert_eq!(
        records[0].jwk_thumbprint,
        cred.public_jwk().thumbprint_sha256()
    );
    assert_eq!(fake.raced(), 1);
    assert_eq!(fake.live_entries(), 0);
}

/// `auto` through the library finds the (fake) configfs-tsm TDX provider backed by the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_selects_configfs_tsm_for_tdx() {
    let world = World::shared();
    let profile = world
        .profile("tdx-fra-1")
        .and_then(|p| p.tdx())
        .expect("tdx profile")
        .clone();
    let tdx = locus_simulator::intel::SimTdxAttester::new(world.intel(), profile);
    let fake = FakeTsm::new(Some("tdx_guest"), move |rd: &[u8; 64], _| {
        let ev = tdx.attest(rd).map_err(io::Error::other)?;
        Ok((ev.raw, None))
    });
    let opts = AttesterOptions {
        tee: TeeChoice::Auto,
        sim_profile: None,
        backend: BackendConfig {
            tsm: Arc::new(fake),
            sev_guest_enabled: false,
            tdx_attest_library: Some("/nonexistent/libtdx_attest.so.1".into()),
            ..BackendConfig::default()
        },
    };
    let attester = open_attester(&opts).expect("auto");
    assert_eq!(
        (attester.name(), attester.tee()),
        ("configfs-tsm", TeeType::Tdx)
    );
    let fv = FakeVerifier::start(600).await;
    let cred = obtain_credential(&client(&fv), attester, None, &now_secs)
        .await
        .expect("credential");
    assert_eq!(fv.records()[0].tee, "tdx");
    assert!(cred.is_valid_at(now_secs()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_refusal_code_is_passed_through() {
    let fv = FakeVerifier::start(600).await;
    fv.refuse_with(403, "geofence_denied");
    let err = obtain_credential(&client(&fv), sim(TeeChoice::SimSnp, None), None, &now_secs)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "geofence_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wit_bound_to_another_key_is_refused_as_cnf_mismatch() {
    let fv = FakeVerifier::start(600).await;
    fv.bind_wits_to_a_foreign_key();
    let err = obtain_credential(&client(&fv), sim(TeeChoice::SimTdx, None), None, &now_secs)
        .await
        .expect_err("foreign cnf");
    assert_eq!(err.code(), "cnf_mismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_for_another_challenge_is_refused_by_the_binding_check() {
    // An attester that ignores the report data it is given (e.g. replays old evidence): the verifier's binding
    // check refuses it, and the agent reports the verifier's code.
    struct Replayer(Arc<dyn Attester>);
    impl Attester for Replayer {
        fn name(&self) -> &str {
            "replayer"
        }
        fn tee(&self) -> TeeType {
            self.0.tee()
        }
        fn attest(&self, _rd: &[u8; 64]) -> Result<locus_hw::Evidence, locus_hw::AttestError> {
            self.0.attest(&[0x42; 64])
        }
    }
    let fv = FakeVerifier::start(600).await;
    let err = obtain_credential(
        &client(&fv),
        Arc::new(Replayer(sim(TeeChoice::SimSnp, None))),
        None,
        &now_secs,
    )
    .await
    .expect_err("replayed evidence");
    assert_eq!(err.code(), "report_data_mismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_verifier_is_verifier_unreachable() {
    let fv = FakeVerifier::start(600).await;
    fv.stop().await;
    let err = obtain_credential(&client(&fv), sim(TeeChoice::SimSnp, None), None, &now_secs)
        .await
        .expect_err("nobody listening");
    assert_eq!(err.code(), "verifier_unreachable");
}

#[test]
fn unknown_or_mismatched_simulator_profile_is_a_config_error() {
    for (tee, profile) in [
        (TeeChoice::SimSnp, "no-such-profile"),
        (TeeChoice::SimSnp, "tdx-fra-1"),
    ] {
        let err = open_attester(&AttesterOptions {
            tee,
            sim_profile: Some(profile.into()),
            ..AttesterOptions::default()
        })
        .err()
        .expect("refused");
        assert_eq!(err.code(), "config_invalid", "{profile}");
    }
}

// ---------------- The WIT is checked against the verifier's JWKS before it is accepted ----------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wit_signed_with_a_key_the_verifier_does_not_publish_is_wit_invalid() {
    let fv = FakeVerifier::start(600).await;
    fv.sign_with_an_unpublished_key();
    let err = obtain_credential(&client(&fv), sim(TeeChoice::SimSnp, None), None, &now_secs)
        .await
        .expect_err("signature under an unpublished key");
    assert_eq!(err.code(), "wit_invalid");
    assert!(err.to_string().contains("signature_invalid"), "{err}");
    // Signed with the published key again: accepted.
    fv.sign_with_the_published_key();
    obtain_credential(&client(&fv), sim(TeeChoice::SimSnp, None), None, &now_secs)
        .await
        .expect("published key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wit_for_another_workload_than_asked_is_sub_mismatch() {
    let fv = FakeVerifier::start(600).await;
    fv.issue_for_sub("spiffe://example.org/someone-else");
    let err = obtain_credential(
        &client(&fv),
        sim(TeeChoice::SimSnp, None),
        Some("spiffe://example.org/payments"),
        &now_secs,
    )
    .await
    .expect_err("another sub");
    assert_eq!(err.code(), "sub_mismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wit_lifetime_above_the_maximum_is_wit_invalid() {
    // 25 h: above the strict default (24 h, the verifier's own ceiling).
    let fv = FakeVerifier::start(25 * 3600).await;
    let err = obtain_credential(&client(&fv), sim(TeeChoice::SimSnp, None), None, &now_secs)
        .await
        .expect_err("too long");
    assert_eq!(err.code(), "wit_invalid");
    assert!(err.to_string().contains("lifetime_too_long"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_without_a_jwks_is_verifier_response_invalid() {
    let fv = FakeVerifier::start(600).await;
    fv.hide_jwks();
    let err = obtain_credential(&client(&fv), sim(TeeChoice::SimSnp, None), None, &now_secs)
        .await
        .expect_err("no JWKS");
    assert_eq!(err.code(), "verifier_response_invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_is_cached_and_refreshed_on_an_unknown_kid_at_most_once_per_interval() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let fv = FakeVerifier::start(600).await;
    let client = client(&fv);
    let attester = sim(TeeChoice::SimSnp, None);
    // The agent's clock, shifted by `offset` seconds (the WITs keep the real time).
    let offset = AtomicU64::new(0);
    let now = || now_secs() + offset.load(Ordering::Relaxed);

    obtain_credential(&client, attester.clone(), None, &now)
        .await
        .expect("first");
    obtain_credential(&client, attester.clone(), None, &now)
        .await
        .expect("second");
    assert_eq!(
        fv.jwks_fetches(),
        1,
        "the second round used the cached JWKS"
    );

    // Rotation right after a fetch: the new kid is unknown and the rate limit holds the refresh back.
    fv.rotate_key("fake-2");
    let err = obtain_credential(&client, attester.clone(), None, &now)
        .await
        .expect_err("unknown kid within the refresh interval");
    assert_eq!(err.code(), "wit_invalid");
    assert!(err.to_string().contains("kid_unknown"), "{err}");
    assert_eq!(fv.jwks_fetches(), 1);

    // 30 s later (the interval): one refresh, and the new key verifies.
    offset.store(30, Ordering::Relaxed);
    obtain_credential(&client, attester.clone(), None, &now)
        .await
        .expect("after the refresh");
    assert_eq!(fv.jwks_fetches(), 2);
    // Clones of the client share the cache.
    obtain_credential(&client.clone(), attester, None, &now)
        .await
        .expect("clone");
    assert_eq!(fv.jwks_fetches(), 2);
}
