//! Stable replay of every fuzz target (the cargo-fuzz targets need nightly; see FUZZING.md): each target's entry point
//! in `locus-fuzz-entry` runs over
//! (a) seeds made now from the real-hardware vectors, read in place (`tests/support/vectors.rs`),
//! (b) seeds made now by the simulator,
//! (c) the committed minimized corpus `fuzz/corpus/<target>/` and every past finding `fuzz/regressions/<target>/`.
//!
//! A panic (a broken invariant, an index out of bounds, an overflow in a debug build) fails the test and names the
//! input. With `LOCUS_FUZZ_SEEDS_OUT=<dir>` the generated seeds are also written to `<dir>/<target>/`, the starting
//! corpus for real fuzzing (outside the repository: seeds from the vectors are copies of them).

#[path = "../support/vectors.rs"]
mod vectors;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use locus_fuzz_entry::TARGETS;
use locus_hw::snp::cert_table::{self, CertKind, CertTableEntry};
use locus_hw::Attester;
use locus_simulator::World;
use locus_wimse::{Ed25519SigningKey, Es256SigningKey, Jwks};

type Seeds = BTreeMap<&'static str, Vec<(String, Vec<u8>)>>;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Files directly under `dir`, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Every file under `dir`, recursively, sorted.
fn files_deep(dir: &Path) -> Vec<PathBuf> {
    let mut out = files(dir);
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    subdirs.sort();
    for d in subdirs {
        out.extend(files_deep(&d));
    }
    out
}

/// The configfs-tsm fuzz input: provider, generation before/after, privlevel_floor, outblob, auxblob.
fn tsm_input(fields: [&[u8]; 6]) -> Vec<u8> {
    fields.join(&[0xff, 0x00][..])
}

fn attest_body(tee: &str, evidence: &[u8], certs: &[Vec<u8>], jwk: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "nonce": b64url(&[0x5a; 48]),
        "tee": tee,
        "evidence": b64url(evidence),
        "certs": certs.iter().map(|c| b64url(c)).collect::<Vec<_>>(),
        "jwk": jwk,
        "workload": "spiffe://example.com/ns/prod/sa/payments",
    }))
    .expect("JSON encoding")
}

/// Proximity seeds: every frame type, and a statement's payload and whole COSE_Sign1 (signed by an unknown key).
fn proximity_seeds(seeds: &mut Seeds) {
    use locus_wimse::proximity::Frame;
    let lm = Es256SigningKey::generate().expect("key generation");
    let frames = [
        Frame::Hello(lm.public_jwk().to_value().to_string().into_bytes()),
        Frame::Challenge {
            landmark_id: [1; 32],
            challenge: [2; 32],
        },
        Frame::Response(vec![3; 64]),
        Frame::Statement(vec![0xd2, 0x84]),
        Frame::Error {
            code: "signature_invalid".into(),
            message: "m".into(),
        },
    ];
    for (i, f) in frames.iter().enumerate() {
        let bytes = f.encode().expect("frame");
        // The entry point reads the type byte then the payload (no length).
        let mut input = vec![bytes[0]];
        input.extend_from_slice(&bytes[3..]);
        push(seeds, "proximity", format!("frame{i}"), input);
    }
    let statement = locus_verifier::proximity::Statement {
        key_thumbprint: [9; 32],
        landmark_id: lm.thumbprint_sha256(),
        site: "fra-1".into(),
        coordinates: [50_110_900, 8_682_100],
        min_rtt_us: 1_000,
        d_max_km: 150,
        rounds: 8,
        time: 1_800_000_000,
    };
    push(
        seeds,
        "proximity",
        "statement-payload",
        statement.payload().expect("payload"),
    );
    push(
        seeds,
        "proximity",
        "statement",
        statement.sign(&lm).expect("sign"),
    );
}

fn push(seeds: &mut Seeds, target: &'static str, name: impl Into<String>, bytes: Vec<u8>) {
    seeds.entry(target).or_default().push((name.into(), bytes));
}

/// (a) Seeds from the real-hardware vectors, or none after a loud SKIP line.
fn vector_seeds(seeds: &mut Seeds) {
    let Some(dir) = vectors::dir() else { return };
    let agent = Es256SigningKey::generate().expect("key generation");
    for path in files_deep(&dir) {
        let rel = path
            .strip_prefix(&dir)
            .expect("under the vectors directory")
            .display()
            .to_string();
        let name = format!("vectors/{rel}");
        let file = path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .to_string();
        let bytes = read(&path);
        if rel.starts_with("snp/") && file.starts_with("report") && file.ends_with(".bin") {
            push(seeds, "snp_report", &name, bytes.clone());
            push(
                seeds,
                "configfs_tsm",
                &name,
                tsm_input([b"sev_guest\n", b"4\n", b"6\n", b"0\n", &bytes, &[]]),
            );
            push(
                seeds,
                "attest_request",
                &name,
                attest_body("sev-snp", &bytes, &[], &agent.public_jwk().to_value()),
            );
        }
        if rel.starts_with("tdx/") && file.starts_with("quote") && file.ends_with(".bin") {
            push(seeds, "tdx_quote", &name, bytes.clone());
            push(
                seeds,
                "configfs_tsm",
                &name,
                tsm_input([b"tdx_guest\n", b"1\n", b"2\n", b"", &bytes, b""]),
            );
            push(
                seeds,
                "attest_request",
                &name,
                attest_body("tdx", &bytes, &[], &agent.public_jwk().to_value()),
            );
        }
        if file.ends_with(".pem") || file.ends_with(".der") {
            push(seeds, "x509", &name, bytes.clone());
        }
        if file == "tcb_info.json" || file == "qe_identity.json" {
            push(seeds, "pcs_collateral", &name, bytes.clone());
        }
    }
    // A certificate table as a host would hand it over: VCEK/VLEK, ASK, ARK of each SNP set.
    for set in files_deep(&dir.join("snp"))
        .iter()
        .filter_map(|p| p.parent())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let vek = ["vcek.der", "vlek.der"]
            .iter()
            .map(|f| set.join(f))
            .find(|p| p.is_file());
        let Some(vek) = vek else { continue };
        let chain =
            locus_verifier::appraisal::x509::pem_certificates(&read(&set.join("cert_chain.pem")))
                .expect("PEM chain");
        let mut entries = vec![CertTableEntry {
            kind: CertKind::Vcek,
            data: read(&vek),
        }];
        for (kind, der) in [CertKind::Ask, CertKind::Ark].into_iter().zip(chain) {
            entries.push(CertTableEntry { kind, data: der });
        }
        let table = cert_table::encode(&entries);
        let name = format!(
            "vectors/{}/cert_table",
            set.strip_prefix(&dir)
                .expect("under the vectors directory")
                .display()
        );
        push(seeds, "snp_cert_table", &name, table.clone());
        let report = read(&set.join("report.bin"));
        push(
            seeds,
            "configfs_tsm",
            &name,
            tsm_input([b"sev_guest", b"10", b"12", b"0", &report, &table]),
        );
        let certs: Vec<Vec<u8>> = entries.into_iter().map(|e| e.data).collect();
        push(
            seeds,
            "attest_request",
            &name,
            attest_body("sev-snp", &report, &certs, &agent.public_jwk().to_value()),
        );
    }
}

/// (b) Seeds made by the simulator and the WIMSE and verifier crates.
fn simulator_seeds(seeds: &mut Seeds) {
    let world: Arc<World> = World::shared();
    let agent = Es256SigningKey::generate().expect("key generation");
    for profile in world.profiles() {
        let name = format!("simulator/{}", profile.name);
        let evidence = match profile.tee() {
            locus_hw::TeeType::SevSnp => world
                .snp_attester(&profile.name)
                .expect("simulated evidence")
                .attest(&[3; 64]),
            locus_hw::TeeType::Tdx => world
                .tdx_attester(&profile.name)
                .expect("simulated evidence")
                .attest(&[3; 64]),
        }
        .expect("simulated evidence");
        match evidence.tee {
            locus_hw::TeeType::SevSnp => {
                push(seeds, "snp_report", &name, evidence.raw.clone());
                let kinds = [CertKind::Vcek, CertKind::Ask, CertKind::Ark];
                let entries: Vec<CertTableEntry> = evidence
                    .certs
                    .iter()
                    .zip(kinds)
                    .map(|(d, kind)| CertTableEntry {
                        kind,
                        data: d.clone(),
                    })
                    .collect();
                let table = cert_table::encode(&entries);
                push(seeds, "snp_cert_table", &name, table.clone());
                push(
                    seeds,
                    "configfs_tsm",
                    &name,
                    tsm_input([b"sev_guest", b"0", b"2", b"0", &evidence.raw, &table]),
                );
                push(
                    seeds,
                    "attest_request",
                    &name,
                    attest_body(
                        "sev-snp",
                        &evidence.raw,
                        &evidence.certs,
                        &agent.public_jwk().to_value(),
                    ),
                );
                for (i, c) in evidence.certs.iter().enumerate() {
                    push(seeds, "x509", format!("{name}/cert{i}"), c.clone());
                }
            }
            locus_hw::TeeType::Tdx => {
                push(seeds, "tdx_quote", &name, evidence.raw.clone());
                push(
                    seeds,
                    "configfs_tsm",
                    &name,
                    tsm_input([b"tdx_guest", b"0", b"1", b"", &evidence.raw, b""]),
                );
                push(
                    seeds,
                    "attest_request",
                    &name,
                    attest_body("tdx", &evidence.raw, &[], &agent.public_jwk().to_value()),
                );
            }
        }
    }
    let collateral = world.tdx_collateral();
    push(
        seeds,
        "pcs_collateral",
        "simulator/tcb_info.json",
        collateral.tcb_info_json.into_bytes(),
    );
    push(
        seeds,
        "pcs_collateral",
        "simulator/qe_identity.json",
        collateral.qe_identity_json.into_bytes(),
    );
    push(
        seeds,
        "x509",
        "simulator/pck_crl.der",
        collateral.pck_crl_der,
    );
    push(
        seeds,
        "x509",
        "simulator/root_ca_crl.der",
        collateral.root_ca_crl_der,
    );
    push(
        seeds,
        "x509",
        "simulator/root_ca.der",
        collateral.root_ca_der,
    );
    push(
        seeds,
        "x509",
        "simulator/tcb_chain.pem",
        collateral.tcb_info_issuer_chain_pem.into_bytes(),
    );
    for product in [
        locus_hw::snp::Product::Milan,
        locus_hw::snp::Product::Genoa,
        locus_hw::snp::Product::Turin,
    ] {
        push(
            seeds,
            "x509",
            format!("simulator/{product:?}/crl.der"),
            world.amd_crl_der(product).expect("simulated AMD PKI"),
        );
        push(
            seeds,
            "x509",
            format!("simulator/{product:?}/cert_chain.pem"),
            world
                .amd_cert_chain_pem(product)
                .expect("simulated AMD PKI")
                .into_bytes(),
        );
    }

    // Tokens, EARs and an endorsement under the targets' fixed trusted keys.
    for (target, name, bytes) in locus_fuzz_entry::wimse::signed_seeds() {
        push(seeds, target, format!("signed/{name}"), bytes);
    }
    let issuer = Es256SigningKey::generate()
        .expect("key generation")
        .with_kid("k1");
    let ed = Ed25519SigningKey::generate()
        .expect("key generation")
        .with_kid("ed");
    push(
        seeds,
        "jwk",
        "wimse/es256",
        agent.public_jwk().to_value().to_string().into_bytes(),
    );
    push(
        seeds,
        "jwk",
        "wimse/ed25519",
        ed.public_jwk().to_value().to_string().into_bytes(),
    );
    push(
        seeds,
        "jwk",
        "wimse/jwks",
        Jwks::new(vec![issuer.public_jwk(), ed.public_jwk()])
            .to_json()
            .into_bytes(),
    );
    for id in [
        "spiffe://example.com/ns/prod/sa/payments",
        "wimse://example.com/orders/v1",
        "spiffe://a-b.example.co.uk/x/y_z.1",
        "example.com",
    ] {
        push(
            seeds,
            "workload_id",
            format!("wimse/id-{}", id.len()),
            id.as_bytes().to_vec(),
        );
    }

    // The example configuration and the configs the verifier's own tests write.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for path in files_deep(&examples)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
    {
        push(
            seeds,
            "verifier_toml",
            format!(
                "examples/{}",
                path.file_name().expect("a file name").to_string_lossy()
            ),
            read(&path),
        );
    }
}

fn seeds() -> Seeds {
    let mut seeds = Seeds::new();
    vector_seeds(&mut seeds);
    simulator_seeds(&mut seeds);
    proximity_seeds(&mut seeds);
    if let Some(out) = std::env::var_os("LOCUS_FUZZ_SEEDS_OUT") {
        for (target, list) in &seeds {
            let dir = Path::new(&out).join(target);
            std::fs::create_dir_all(&dir).expect("write seeds");
            for (name, bytes) in list {
                std::fs::write(dir.join(name.replace('/', "_")), bytes).expect("write seeds");
            }
        }
    }
    seeds
}

/// Run `entry` over every input; the names of the ones that panicked.
fn replay(entry: fn(&[u8]), inputs: &[(String, Vec<u8>)]) -> Vec<String> {
    inputs
        .iter()
        .filter(|(_, bytes)| std::panic::catch_unwind(|| entry(bytes)).is_err())
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn every_fuzz_target_survives_its_seeds_corpus_and_regressions() {
    let seeds = seeds();
    let mut failures = Vec::new();
    for (target, entry) in TARGETS {
        let mut inputs = seeds.get(target).cloned().unwrap_or_default();
        let generated = inputs.len();
        let mut committed = 0;
        for sub in ["corpus", "regressions"] {
            for path in files(&fuzz_dir().join(sub).join(target)) {
                inputs.push((
                    format!(
                        "fuzz/{sub}/{target}/{}",
                        path.file_name().expect("a file name").to_string_lossy()
                    ),
                    read(&path),
                ));
                committed += 1;
            }
        }
        assert!(generated + committed > 0, "{target}: nothing to replay");
        // Seeds alone must reach past the first checks: every target has generated seeds.
        assert!(generated > 0, "{target}: no seed was generated");
        eprintln!("{target}: {generated} generated seeds, {committed} committed inputs");
        failures.extend(
            replay(*entry, &inputs)
                .into_iter()
                .map(|n| format!("{target}: {n}")),
        );
    }
    assert!(
        failures.is_empty(),
        "inputs that panicked:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_fuzz_target_has_a_cargo_fuzz_wrapper_and_a_manifest_entry() {
    let manifest = String::from_utf8(read(&fuzz_dir().join("Cargo.toml"))).expect("UTF-8 text");
    let mut wrappers: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .map(|p| {
            p.file_stem()
                .expect("a file name")
                .to_string_lossy()
                .to_string()
        })
        .collect();
    wrappers.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(wrappers, names, "fuzz/fuzz_targets/*.rs and TARGETS differ");
    assert!(names.len() >= 12, "issue 10 asks for at least 12 targets");
    for name in &names {
        let wrapper = String::from_utf8(read(&fuzz_dir().join(format!("fuzz_targets/{name}.rs"))))
            .expect("UTF-8 text");
        assert!(
            wrapper.contains(&format!("locus_fuzz_entry::{name}(data)")),
            "{name}.rs does not call its entry point"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
}

#[test]
fn committed_fuzz_inputs_are_small_and_no_copy_of_a_vector() {
    let mut committed = Vec::new();
    for sub in ["corpus", "regressions"] {
        committed.extend(files_deep(&fuzz_dir().join(sub)));
    }
    let total: u64 = committed
        .iter()
        .map(|p| std::fs::metadata(p).expect("file size").len())
        .sum();
    assert!(
        total <= 512 * 1024,
        "committed fuzz inputs total {total} bytes; minimize with cargo fuzz cmin"
    );
    let Some(dir) = vectors::dir() else { return };
    let vector_files: Vec<Vec<u8>> = files_deep(&dir).iter().map(|p| read(p)).collect();
    for path in &committed {
        let bytes = read(path);
        assert!(
            !vector_files.contains(&bytes),
            "{} is a byte copy of a vector file",
            path.display()
        );
    }
}
