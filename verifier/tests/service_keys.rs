//! The keys directory seen from outside: `keys rotate` / `keys rotate-challenge` (flags, defaults, what they print
//! and write), and key files with loose permissions refused by `serve` at start, by `keys`, and by a running
//! verifier's reload (which keeps its keys).

mod service_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use locus_verifier::service::config;
use locus_verifier::service::keys::{safe_activate_in, DEFAULT_ACTIVATE_IN, JWKS_MAX_AGE};
use service_support::*;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

/// A config (one replica, key rescan every second) whose keys are created by a first `keys rotate`: returns the
/// config path, the keys dir, and the `es256-*.pk8` files (the first key and the rotated one).
fn keys_ready(dir: &Path) -> (PathBuf, PathBuf, Vec<PathBuf>) {
    let keys = dir.join("keys");
    let config_path = dir.join("verifier.toml");
    std::fs::write(&config_path, replica_config(dir, "r", &keys)).expect("config");
    keys_cli(&["rotate", "--activate-in", "0"], &config_path).report();
    let mut pk8: Vec<PathBuf> = std::fs::read_dir(&keys)
        .expect("keys dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("es256-") && n.ends_with(".pk8"))
        })
        .collect();
    pk8.sort();
    assert_eq!(pk8.len(), 2);
    (config_path, keys, pk8)
}

/// The refusal every loader gives for a key file with loose permissions.
fn loose(path: &Path, mode: u32) -> String {
    format!(
        "{}: mode {mode:04o} lets group/other write it or other read it; refusing to use the key (chmod 0600 or \
         0400; group read 0440 is allowed)",
        path.display()
    )
}

/// Run `serve` expecting it to stop by itself: exit code and stderr.
fn serve_until_exit(config_path: &Path, dir: &Path) -> (i32, String) {
    let stderr_path = dir.join("serve.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .args(["serve", "--config"])
        .arg(config_path)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn serve");
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve kept running with a loose key file");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    )
}

#[test]
fn serve_refuses_to_start_on_a_key_file_group_or_other_may_write_or_other_may_read() {
    for (which, mode) in [("challenge", 0o644), ("first", 0o660), ("rotated", 0o602)] {
        let dir = tempdir();
        let (config_path, keys, pk8) = keys_ready(dir.path());
        let file = match which {
            "challenge" => keys.join("challenge.key"),
            "first" => pk8[0].clone(),
            _ => pk8[1].clone(),
        };
        chmod(&file, mode);
        let (code, stderr) = serve_until_exit(&config_path, dir.path());
        assert_eq!(code, 1, "{which} {mode:o}: {stderr}");
        assert!(
            stderr.contains(&format!("locus-verifier: keys: {}", loose(&file, mode))),
            "{which} {mode:o}: {stderr}"
        );
    }
}

#[test]
fn keys_rotate_refuses_a_loose_key_file_and_writes_nothing() {
    let dir = tempdir();
    let (config_path, keys, pk8) = keys_ready(dir.path());
    chmod(&pk8[1], 0o644);
    let before = std::fs::read_dir(&keys).expect("dir").count();
    for cmd in ["rotate", "rotate-challenge"] {
        let run = keys_cli(&[cmd], &config_path);
        assert_eq!(run.code, 1, "{cmd}: {}", run.stderr);
        assert_eq!(
            run.stderr.trim_end(),
            format!("keys: {}", loose(&pk8[1], 0o644)),
            "{cmd}"
        );
        assert_eq!(run.stdout, "");
    }
    assert_eq!(std::fs::read_dir(&keys).expect("dir").count(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_verifier_keeps_its_keys_when_a_key_file_turns_loose_and_reloads_when_fixed() {
    let dir = tempdir();
    let (config_path, keys, pk8) = keys_ready(dir.path());
    let v = Verifier::start_file(&config_path, &dir.path().join("serve.stderr"));
    let kid = active_kid(&v.base).await;
    let kids = jwks_kids(&v.base).await;

    // A chmod changes the files' fingerprint: the rescan reloads, the reload refuses, the running keys stay.
    let mac = keys.join("challenge.key");
    chmod(&mac, 0o604);
    let mut waited = 0;
    while reloads(&v.base, "failed").await == 0 {
        assert!(waited < 200, "the loose key file never caused a reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(v.stderr().contains(&loose(&mac, 0o604)), "{}", v.stderr());
    assert_eq!(active_kid(&v.base).await, kid);
    assert_eq!(jwks_kids(&v.base).await, kids);
    let (s, body) = attest(&v.base, "snp-fra-1", Some(EU_WORKLOAD)).await;
    assert_eq!(s, 200, "{body}");

    // Fixed (0440, as a Secret with fsGroup has it): the next rescan reloads.
    chmod(&mac, 0o440);
    let ok = reloads_ok(&v.base).await;
    let mut waited = 0;
    while reloads_ok(&v.base).await == ok {
        assert!(waited < 200, "the fixed key file never reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(pk8.iter().all(|p| mode_of(p) == 0o600));
}

#[test]
fn keys_rotate_schedules_the_new_key_ahead_by_default_and_prints_what_it_did() {
    let dir = tempdir();
    let (config_path, keys, pk8) = keys_ready(dir.path());
    // A key that signs at once (`keys_ready` rotated this second already, so it may start a second later).
    let immediate = keys_cli(&["rotate", "--activate-in", "0"], &config_path).report();
    let signing_now = immediate["kid"].as_str().expect("kid").to_string();
    let immediate_nb = immediate["not_before"].as_u64().expect("not_before");
    assert!(immediate_nb <= now() + 1, "{immediate}");
    while now() < immediate_nb {
        std::thread::sleep(Duration::from_millis(100));
    }

    let t0 = now();
    let run = keys_cli(&["rotate"], &config_path);
    let t1 = now();
    assert_eq!(run.stderr, "", "the default needs no warning");
    let report = run.report();
    let nb = report["not_before"].as_u64().expect("not_before");
    let ahead = DEFAULT_ACTIVATE_IN.as_secs();
    assert_eq!(ahead, 300);
    assert!((t0 + ahead..=t1 + ahead).contains(&nb), "{report}");
    assert_eq!(
        report["active_kid"], signing_now,
        "the previous key signs until the not-before"
    );
    assert_ne!(report["kid"], signing_now);
    let activates = time::OffsetDateTime::parse(
        report["activates_at"].as_str().expect("activates_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert_eq!(activates.unix_timestamp(), i64::try_from(nb).expect("i64"));
    let file = keys.join(format!("es256-{nb:010}.pk8"));
    assert_eq!(mode_of(&file), 0o600);
    // Nothing was old enough to prune.
    assert_eq!(report["removed"], serde_json::json!([]));
    assert!(pk8.iter().all(|p| p.exists()));

    let run = keys_cli(&["rotate-challenge"], &config_path);
    assert_eq!(run.stderr, "");
    let report = run.report();
    let nb = report["not_before"].as_u64().expect("not_before");
    assert!((t0 + ahead..=now() + ahead).contains(&nb), "{report}");
    assert!(report.get("kid").is_none() && report.get("active_kid").is_none());
    assert_eq!(
        mode_of(&keys.join(format!("challenge-{nb:010}.key"))),
        0o600
    );
}

#[test]
fn an_activation_sooner_than_the_jwks_cache_and_rescan_allow_is_done_with_a_warning() {
    let dir = tempdir();
    let (config_path, _, _) = keys_ready(dir.path());
    // replica_config rescans every second: JWKS max-age 60 + rescan 1 + skew 30.
    for cmd in ["rotate", "rotate-challenge"] {
        let run = keys_cli(&[cmd, "--activate-in", "90"], &config_path);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            run.stderr,
            "warning: --activate-in 90s is shorter than 91s (JWKS max-age + key rescan + skew): replicas or \
             relying parties may not have the new key when it starts\n",
            "{cmd}"
        );
        let run = keys_cli(&[cmd, "--activate-in", "91"], &config_path);
        assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{cmd}");
    }
}

#[test]
fn the_default_activation_delay_outlasts_the_jwks_cache_the_default_rescan_and_skew() {
    let text = std::fs::read_to_string(examples_dir().join("verifier.toml")).expect("example");
    let cfg = config::parse(&text, &examples_dir()).unwrap_or_else(|e| panic!("{e}"));
    let rescan = cfg.server.key_rescan.expect("the example rescans keys");
    assert!(DEFAULT_ACTIVATE_IN >= safe_activate_in(Some(rescan)));
    assert_eq!(
        safe_activate_in(Some(rescan)),
        JWKS_MAX_AGE + rescan + Duration::from_secs(30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_max_age_is_the_one_the_activation_delay_is_computed_from() {
    let dir = tempdir();
    let v = Verifier::start(dir.path(), &example_config(&dir.path().join("state")));
    let resp = client()
        .get(format!("{}/.well-known/jwks.json", v.base))
        .send()
        .await
        .expect("jwks");
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|h| h.to_str().ok()),
        Some(format!("public, max-age={}", JWKS_MAX_AGE.as_secs()).as_str())
    );
    assert_eq!(JWKS_MAX_AGE, Duration::from_secs(60));
}

#[test]
fn keys_help_documents_rotate_challenge_and_activate_in_with_its_default() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
            .args(args)
            .output()
            .expect("help");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let keys = help(&["keys", "--help"]);
    assert!(keys.contains("rotate-challenge"), "{keys}");
    assert!(keys.contains("challenge MAC key"), "{keys}");
    for cmd in ["rotate", "rotate-challenge"] {
        let text = help(&["keys", cmd, "--help"]);
        assert!(
            text.contains("--activate-in <ACTIVATE_IN>") && text.contains("[default: 300]"),
            "{cmd}: {text}"
        );
    }
}
