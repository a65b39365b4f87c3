//! Replicas sharing only the keys directory (docs/operations.md#replicas-and-shared-keys) interoperate. A rotated signing key is published by every
//! replica before it signs, every replica switches to it at the same second (its not-before), and WITs signed by the
//! old key stay verifiable; a rotated challenge MAC key loses no challenge in flight.

mod service_support;

use std::process::Command;
use std::time::Duration;

use locus_verifier::service::challenge::ChallengeKey;
use serde_json::Value;
use service_support::*;

const CHALLENGE_TTL: Duration = Duration::from_secs(120);

fn hup(pid: u32) {
    let st = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

fn two_replicas(dir: &std::path::Path) -> (Verifier, Verifier, std::path::PathBuf) {
    let keys = dir.join("shared-keys");
    let a = Verifier::start_named(dir, "a", &replica_config(dir, "a", &keys));
    let b = Verifier::start_named(dir, "b", &replica_config(dir, "b", &keys));
    (a, b, keys)
}

/// Attest at `base`; the WIT, its header `kid` and its `iat`.
async fn signed_wit(base: &str) -> (String, String, u64) {
    let (s, body) = attest(base, "snp-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{body}");
    let wit = body["wit"].as_str().expect("wit").to_string();
    let (header, claims) = jws_parts(&wit);
    let kid = header["kid"].as_str().expect("kid").to_string();
    let iat = claims["iat"].as_u64().expect("iat");
    (wit, kid, iat)
}

/// Wait until both replicas have reloaded at least `n` times.
async fn wait_for_reloads(vs: [&Verifier; 2], n: u64) {
    for v in vs {
        let mut waited = 0;
        while reloads_ok(&v.base).await < n {
            assert!(waited < 200, "{} never reloaded the keys", v.base);
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
    }
}

async fn sleep_until(t: u64) {
    while now() < t {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_keys_accept_each_others_challenges_and_wits() {
    let dir = tempdir();
    let (a, b, _) = two_replicas(dir.path());
    assert_eq!(active_kid(&a.base).await, active_kid(&b.base).await);
    // Challenge from A, attest at B, and the other way round.
    for (from, to) in [(&a, &b), (&b, &a)] {
        let nonce = challenge(&from.base).await;
        let agent = Agent::new();
        let (s, body, _) = post_attest(
            &to.base,
            &agent.request("snp-fra-1", &nonce, Some(EU_WORKLOAD)),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        let wit = body["wit"].as_str().expect("wit");
        for v in [&a, &b] {
            verify_wit(&v.base, wit)
                .await
                .unwrap_or_else(|e| panic!("verifies with {}'s JWKS: {e}", v.base));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_publish_a_rotated_key_before_it_signs_and_all_switch_at_its_not_before() {
    const ACTIVATE_IN: u64 = 10;
    let dir = tempdir();
    let (a, b, keys) = two_replicas(dir.path());
    let old_kid = active_kid(&a.base).await;
    let mut wits = vec![signed_wit(&a.base).await, signed_wit(&b.base).await];
    assert!(wits.iter().all(|(_, kid, _)| *kid == old_kid));

    let rotated = keys_cli(
        &["rotate", "--activate-in", &ACTIVATE_IN.to_string()],
        &a.config_path,
    )
    .report();
    let new_kid = rotated["kid"].as_str().expect("kid").to_string();
    let not_before = rotated["not_before"].as_u64().expect("not_before");
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        rotated["active_kid"],
        old_kid.as_str(),
        "the old key still signs"
    );
    assert!(
        not_before > now() && not_before <= now() + ACTIVATE_IN,
        "{rotated}"
    );
    assert!(keys.join(format!("es256-{not_before:010}.pk8")).exists());

    // A reloads on SIGHUP, B notices the new file by itself (key_rescan_secs = 1); both publish the new key at once,
    // beside the old one, while the old one still signs.
    hup(a.pid());
    wait_for_reloads([&a, &b], 1).await;
    for v in [&a, &b] {
        let kids = jwks_kids(&v.base).await;
        assert!(
            kids.contains(&old_kid) && kids.contains(&new_kid),
            "{}: {kids:?}",
            v.base
        );
    }
    assert!(
        now() + 3 < not_before,
        "the replicas took too long to load the new key for this test's {ACTIVATE_IN} s window"
    );
    for v in [&a, &b] {
        assert_eq!(active_kid(&v.base).await, old_kid, "{}", v.base);
        let (wit, kid, iat) = signed_wit(&v.base).await;
        assert!(iat < not_before);
        assert_eq!(kid, old_kid, "{}: signed before the not-before", v.base);
        wits.push((wit, kid, iat));
    }

    // Across the switch, at both replicas: every WIT's kid follows its iat, the same rule on both.
    let mut after = [false; 2];
    while !(after[0] && after[1]) {
        assert!(
            now() < not_before + 20,
            "a replica never signed with the new key"
        );
        for (i, v) in [&a, &b].into_iter().enumerate() {
            let (wit, kid, iat) = signed_wit(&v.base).await;
            let expected = if iat < not_before { &old_kid } else { &new_kid };
            assert_eq!(
                &kid, expected,
                "{}: WIT issued at {iat}, switch at {not_before}",
                v.base
            );
            after[i] |= iat >= not_before;
            wits.push((wit, kid, iat));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    sleep_until(not_before).await;
    for v in [&a, &b] {
        assert_eq!(active_kid(&v.base).await, new_kid, "{}", v.base);
        // The old key stays published: every WIT either key signed verifies at either replica.
        let kids = jwks_kids(&v.base).await;
        assert!(
            kids.contains(&old_kid) && kids.contains(&new_kid),
            "{kids:?}"
        );
        for (wit, kid, _) in &wits {
            verify_wit(&v.base, wit)
                .await
                .unwrap_or_else(|e| panic!("{}: WIT by {kid} does not verify: {e}", v.base));
        }
    }
}

/// Which MAC key made `nonce`: "old", "new" or neither (checked at the nonce's own issue time).
fn made_by(nonce: &[u8], old: &ChallengeKey, new: &ChallengeKey) -> &'static str {
    let mut t = [0u8; 8];
    t.copy_from_slice(&nonce[..8]);
    let t = u64::from_be_bytes(t);
    match (
        old.check(nonce, t, CHALLENGE_TTL).is_ok(),
        new.check(nonce, t, CHALLENGE_TTL).is_ok(),
    ) {
        (true, false) => "old",
        (false, true) => "new",
        _ => "neither",
    }
}

async fn redeem(base: &str, nonce: &[u8]) -> (u16, Value) {
    let agent = Agent::new();
    let (s, body, _) =
        post_attest(base, &agent.request("tdx-fra-1", nonce, Some(EU_WORKLOAD))).await;
    (s, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_challenge_key_loses_no_challenge_in_flight_across_replicas() {
    const ACTIVATE_IN: u64 = 6;
    let dir = tempdir();
    let (a, b, keys) = two_replicas(dir.path());
    let first = challenge(&a.base).await;

    let rotated = keys_cli(
        &[
            "rotate-challenge",
            "--activate-in",
            &ACTIVATE_IN.to_string(),
        ],
        &a.config_path,
    )
    .report();
    let not_before = rotated["not_before"].as_u64().expect("not_before");
    assert!(rotated.get("kid").is_none(), "{rotated}");
    assert_eq!(rotated["removed"], serde_json::json!([]));
    let old = ChallengeKey::new(&std::fs::read(keys.join("challenge.key")).expect("old key"))
        .expect("old");
    let new_path = keys.join(format!("challenge-{not_before:010}.key"));
    let new = ChallengeKey::new(&std::fs::read(&new_path).expect("new key")).expect("new");
    assert_eq!(made_by(&first, &old, &new), "old");

    // Both replicas load the new key (A and B by rescan); before its not-before they still make nonces with the
    // old one, and each accepts the other's.
    wait_for_reloads([&a, &b], 1).await;
    assert!(
        now() + 2 < not_before,
        "the replicas took too long to load the new key for this test's {ACTIVATE_IN} s window"
    );
    let before_a = challenge(&a.base).await;
    let before_b = challenge(&b.base).await;
    assert_eq!(made_by(&before_a, &old, &new), "old");
    assert_eq!(made_by(&before_b, &old, &new), "old");
    let (s, body) = redeem(&b.base, &before_a).await;
    assert_eq!(s, 200, "{body}");

    // From the not-before, both make nonces with the new key; nonces the old key made before the switch are still
    // redeemed at either replica (the overlap), and so are the new ones.
    sleep_until(not_before).await;
    let after_a = challenge(&a.base).await;
    let after_b = challenge(&b.base).await;
    assert_eq!(made_by(&after_a, &old, &new), "new");
    assert_eq!(made_by(&after_b, &old, &new), "new");
    for (from_before, at) in [(&first, &b), (&before_b, &a)] {
        let (s, body) = redeem(&at.base, from_before).await;
        assert_eq!(s, 200, "a pre-rotation challenge at {}: {body}", at.base);
    }
    for (nonce, at) in [(&after_a, &b), (&after_b, &a)] {
        let (s, body) = redeem(&at.base, nonce).await;
        assert_eq!(s, 200, "a post-rotation challenge at {}: {body}", at.base);
    }
}
