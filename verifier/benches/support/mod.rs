//! Shared pieces of the benchmarks: a plain `Instant` timing loop, the crypto-floor operations (the report/quote
//! signature check plus an ES256 WIT signature, with the production backend — the verifier's own functions — and,
//! for comparison, with ring) and real-vector loading.
//!
//! Timing: a warm-up of at least [`WARMUP`], then [`ROUNDS`] rounds of a fixed call count (about [`ROUND`] each), every
//! call timed on its own. Reported: the median of the rounds' median latencies, the 99th percentile over every call,
//! and the median of the rounds' throughputs (calls per second on one thread).

// Each bench binary uses a different part of this module.
#![allow(dead_code)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use locus_verifier::appraisal::x509::{verify_p256_fixed, verify_p384_fixed};
use locus_wimse::Es256SigningKey;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED};
use serde_json::{json, Value};

/// The test files' helpers: the vectors folder (SKIP line when absent) and the simulator's collateral.
#[path = "../../tests/appraise_support/mod.rs"]
pub mod shared;

pub const WARMUP: Duration = Duration::from_millis(300);
pub const ROUND: Duration = Duration::from_millis(300);
pub const ROUNDS: usize = 7;

/// One scenario's numbers.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub median_us: f64,
    pub p99_us: f64,
    pub ops_per_s: f64,
}

/// Time `f` (its result is kept alive with `black_box`).
pub fn measure<T>(mut f: impl FnMut() -> T) -> Stats {
    let start = Instant::now();
    let mut warm = 0u32;
    while warm < 3 || start.elapsed() < WARMUP {
        black_box(f());
        warm += 1;
    }
    let per_call = start.elapsed().as_nanos() / u128::from(warm);
    let n = (ROUND.as_nanos() / per_call.max(1)).clamp(5, 1_000_000) as usize;
    let mut all = Vec::with_capacity(n * ROUNDS);
    let mut medians = Vec::with_capacity(ROUNDS);
    let mut rates = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let mut round = Vec::with_capacity(n);
        let t0 = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            black_box(f());
            round.push(t.elapsed().as_secs_f64() * 1e6);
        }
        rates.push(n as f64 / t0.elapsed().as_secs_f64());
        round.sort_by(f64::total_cmp);
        medians.push(round[n / 2]);
        all.extend(round);
    }
    all.sort_by(f64::total_cmp);
    Stats {
        median_us: median(&mut medians),
        p99_us: all[(all.len() * 99 / 100).min(all.len() - 1)],
        ops_per_s: median(&mut rates),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One output line: `name  median  p99  ops/s  [R]`.
pub fn row(name: &str, s: Stats, floor: Option<Stats>) {
    let r = floor
        .map(|f| format!("  R = {:5.2}", s.median_us / f.median_us))
        .unwrap_or_default();
    println!(
        "{name:<58} median {:>9.1} µs  p99 {:>9.1} µs  {:>9.0} ops/s{r}",
        s.median_us, s.p99_us, s.ops_per_s
    );
}

/// The token half of the floor: an ES256 key and a WIT-sized claim set (the claims the service issues: `sub`, `cnf`
/// with the workload's P-256 JWK, `locus_tee`, `locus_residency`), signed as the service signs (`locus-wimse`).
pub struct Token {
    key: Es256SigningKey,
    claims: Value,
}

/// A WIT-sized claim set.
fn wit_claims() -> Value {
    json!({
            "iss": "https://verifier.locus.example",
            "sub": "wimse://locus.example/ns/payments/sa/ledger-writer",
            "iat": 1_767_225_600u64,
            "exp": 1_767_229_200u64,
            "jti": "4f1c2a9b7e3d4c5a8b6e9f0a1b2c3d4e",
            "cnf": { "jwk": {
                "kty": "EC", "crv": "P-256", "alg": "ES256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            }},
            "locus_tee": {
                "type": "tdx",
                "measurement": "a5".repeat(48),
                "tcb_status": "UpToDate",
                "debug": false,
                "platform": "3c".repeat(32),
                "simulated": false,
            },
            "locus_residency": {
                "country": "DE", "region": "eu-central", "site": "fra-1", "zones": ["eu", "eea"],
                "sources": ["registry"], "checked_at": 1_767_225_600u64,
            },
    })
}

impl Token {
    pub fn new() -> Token {
        let key = Es256SigningKey::generate().expect("ES256 key");
        Token {
            key,
            claims: wit_claims(),
        }
    }

    /// Sign the claim set as a compact JWS.
    pub fn sign(&self) -> String {
        self.key.sign_jws("wit+jwt", &self.claims).expect("sign")
    }
}

/// The same token signed with ring (the comparison floor): the same claim set serialized and signed as a compact JWS.
pub struct RingToken {
    key: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
    claims: Value,
}

impl RingToken {
    pub fn new() -> RingToken {
        let rng = ring::rand::SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("ring key");
        let key =
            ring::signature::EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).expect("ring key");
        RingToken {
            key,
            rng,
            claims: wit_claims(),
        }
    }

    pub fn sign(&self) -> String {
        let header = locus_wimse::b64::encode(br#"{"alg":"ES256","typ":"wit+jwt"}"#);
        let payload = locus_wimse::b64::encode(serde_json::to_vec(&self.claims).expect("claims"));
        let input = format!("{header}.{payload}");
        let sig = self.key.sign(&self.rng, input.as_bytes()).expect("sign");
        format!("{input}.{}", locus_wimse::b64::encode(sig.as_ref()))
    }
}

impl Default for RingToken {
    fn default() -> Self {
        RingToken::new()
    }
}

impl Default for Token {
    fn default() -> Self {
        Token::new()
    }
}

/// The SNP floor's check: ECDSA P-384 / SHA-384 (the hash is part of the verify) of the report's signed range
/// 0x000–0x29F with the VCEK/VLEK public key; [`SnpFloor::verify`] with the production backend (the verifier's own
/// function), [`SnpFloor::verify_ring`] with ring.
pub struct SnpFloor {
    pub key: Vec<u8>,
    pub signed: Vec<u8>,
    pub sig: [u8; 96],
}

impl SnpFloor {
    pub fn new(report: &[u8], vek_der: &[u8]) -> SnpFloor {
        let signed = locus_hw::snp::SignedReport::parse(report).expect("report");
        let cert =
            locus_verifier::appraisal::x509::ParsedCert::parse(vek_der, "VCEK").expect("VEK");
        let floor = SnpFloor {
            key: cert.p384_public_key().expect("P-384 key").to_vec(),
            signed: signed.signed_bytes().to_vec(),
            sig: signed.signature_p384_fixed().expect("signature"),
        };
        assert!(floor.verify(), "the report signature must verify");
        floor
    }

    pub fn verify(&self) -> bool {
        verify_p384_fixed(&self.key, &self.signed, &self.sig)
    }

    pub fn verify_ring(&self) -> bool {
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &self.key)
            .verify(&self.signed, &self.sig)
            .is_ok()
    }
}

/// The TDX floor's check: ECDSA P-256 / SHA-256 of header ‖ (descriptor ‖) body with the attestation key
/// (production backend; [`TdxFloor::verify_ring`] with ring).
pub struct TdxFloor {
    pub key: Vec<u8>,
    pub signed: Vec<u8>,
    pub sig: [u8; 64],
}

impl TdxFloor {
    pub fn new(quote: &[u8]) -> TdxFloor {
        let q = locus_hw::tdx::SignedQuote::parse_ignoring_trailing_bytes(quote).expect("quote");
        let mut key = vec![0x04];
        key.extend_from_slice(&q.quote().attestation_key);
        let floor = TdxFloor {
            key,
            signed: q.signed_bytes().to_vec(),
            sig: q.quote().signature,
        };
        assert!(floor.verify(), "the quote signature must verify");
        floor
    }

    pub fn verify(&self) -> bool {
        verify_p256_fixed(&self.key, &self.signed, &self.sig)
    }

    pub fn verify_ring(&self) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.key)
            .verify(&self.signed, &self.sig)
            .is_ok()
    }
}

/// The sets of one kind (`snp`, `tdx`) with their verification time (unix seconds), sorted by name.
pub fn vector_sets(root: &Path, kind: &str) -> Vec<(String, PathBuf, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join(kind)).expect("vectors dir") {
        let path = entry.expect("entry").path();
        let Ok(text) = std::fs::read(path.join("expected.json")) else {
            continue;
        };
        let e: Value = serde_json::from_slice(&text).expect("expected.json");
        let at = e["verification_time"].as_str().expect("verification_time");
        let now = locus_verifier::cli::parse_rfc3339(at)
            .map_err(|e| e.0)
            .expect("time");
        let name = format!(
            "{kind}/{}",
            path.file_name().expect("name").to_string_lossy()
        );
        out.push((name, path, now));
    }
    out.sort();
    out
}
