//! Location endorsements (docs/architecture.md#residency-and-the-geo-fence): a valid COSE_Sign1 endorsement places an unregistered platform; one signed by
//! an untrusted key, expired, or naming another platform changes nothing.

mod service_support;

use locus_verifier::endorsement::{encode, EndorsementClaims};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use service_support::*;

fn keypair() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pk = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("gen");
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pk.as_ref(), &rng).expect("load")
}

fn jwk_of(k: &EcdsaKeyPair) -> String {
    let p = k.public_key().as_ref();
    format!(
        r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#,
        b64(&p[1..33]),
        b64(&p[33..])
    )
}

fn endorse(
    k: &EcdsaKeyPair,
    platform: &[u8],
    country: &str,
    region: &str,
    site: &str,
    nb: u64,
    na: u64,
) -> Vec<u8> {
    let claims = EndorsementClaims {
        platform,
        site,
        country,
        region: Some(region),
        not_before: nb,
        not_after: na,
    };
    encode(&claims, "dc-operator", |tbs| {
        k.sign(&SystemRandom::new(), tbs)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| ())
    })
    .expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_valid_endorsement_places_an_unregistered_platform_and_bad_ones_change_nothing() {
    let dir = tempdir();
    let trusted = keypair();
    let untrusted = keypair();
    let endorsements = dir.path().join("endorsements");
    std::fs::create_dir_all(&endorsements).expect("mkdir");
    let snp_unreg = world()
        .profile("snp-unregistered")
        .expect("p")
        .platform_id();
    let tdx_unreg = world()
        .profile("tdx-unregistered")
        .expect("p")
        .platform_id();
    let t = now();
    let write =
        |name: &str, bytes: Vec<u8>| std::fs::write(endorsements.join(name), bytes).expect("write");
    // Places snp-unregistered in France.
    write(
        "snp-unregistered.cose",
        endorse(
            &trusted,
            &snp_unreg,
            "FR",
            "FR-IDF",
            "par-1",
            t - 60,
            t + 3600,
        ),
    );
    // None of these may place tdx-unregistered anywhere.
    write(
        "untrusted-key.cose",
        endorse(
            &untrusted,
            &tdx_unreg,
            "DE",
            "DE-HE",
            "fra-9",
            t - 60,
            t + 3600,
        ),
    );
    write(
        "expired.cose",
        endorse(
            &trusted,
            &tdx_unreg,
            "DE",
            "DE-HE",
            "fra-9",
            t - 7200,
            t - 3600,
        ),
    );
    write(
        "other-platform.cose",
        endorse(
            &trusted,
            &[0x42; 16],
            "DE",
            "DE-HE",
            "fra-9",
            t - 60,
            t + 3600,
        ),
    );
    // A registered platform endorsed elsewhere: the registry wins.
    let iad = world().profile("tdx-iad-1").expect("p").platform_id();
    write(
        "disagrees-with-registry.cose",
        endorse(&trusted, &iad, "DE", "DE-HE", "fra-9", t - 60, t + 3600),
    );
    write("garbage.cose", b"not cose".to_vec());

    let cfg = example_config(&dir.path().join("state"))
        .replace(
            "# endorsements_dir = \"endorsements\"",
            &format!(
                "endorsements_dir = {:?}",
                endorsements.display().to_string()
            ),
        )
        .replace(
            "# [[endorser]]\n",
            &format!(
                "[[endorser]]\nname = \"dc-operator\"\npublic_key = '{}'\n",
                jwk_of(&trusted)
            ),
        );
    assert!(
        cfg.contains("[[endorser]]\nname = \"dc-operator\""),
        "endorser placeholder not found"
    );
    let v = Verifier::start(dir.path(), &cfg);

    let (s, b) = attest(&v.base, "snp-unregistered", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{b}");
    let w = verify_wit(&v.base, b["wit"].as_str().expect("wit"))
        .await
        .expect("verifies");
    let res = &w.claims().extra["locus_residency"];
    assert_eq!(res["country"], "FR");
    assert_eq!(res["site"], "par-1");
    assert_eq!(res["zones"], serde_json::json!(["eu"]));
    assert_eq!(res["sources"], serde_json::json!(["endorsement"]));

    let (s, b) = attest(&v.base, "tdx-unregistered", Some(EU_WORKLOAD)).await;
    assert_refused(s, &b, "location_unknown", 403);

    let (s, b) = attest(&v.base, "tdx-iad-1", Some(EU_WORKLOAD)).await;
    assert_refused(s, &b, "geofence_denied", 403);

    // An endorsement added later takes effect on SIGHUP.
    write(
        "tdx-unregistered.cose",
        endorse(
            &trusted,
            &tdx_unreg,
            "NL",
            "NL-NH",
            "ams-1",
            t - 60,
            t + 3600,
        ),
    );
    let st = std::process::Command::new("kill")
        .args(["-HUP", &v.pid().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let mut placed = None;
    for _ in 0..200 {
        let (s, b) = attest(&v.base, "tdx-unregistered", Some(EU_WORKLOAD)).await;
        if s == 200 {
            placed = Some(b);
            break;
        }
        assert_refused(s, &b, "location_unknown", 403);
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let b = placed.expect("the new endorsement is loaded on reload");
    let w = verify_wit(&v.base, b["wit"].as_str().expect("wit"))
        .await
        .expect("verifies");
    assert_eq!(w.claims().extra["locus_residency"]["country"], "NL");
}
