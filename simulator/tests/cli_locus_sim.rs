//! The `locus-sim` binary honours the docs/architecture.md#the-simulator contract: commands, flags, output files, exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_locus-sim"))
        .args(args)
        .output()
        .expect("run locus-sim")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

#[test]
fn profiles_json_lists_every_builtin_profile() {
    let out = sim(&["profiles", "--json"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let list = v.as_array().expect("array");
    let names: Vec<&str> = list.iter().filter_map(|p| p["name"].as_str()).collect();
    for name in [
        "snp-fra-1",
        "snp-iad-1",
        "snp-unregistered",
        "tdx-fra-1",
        "tdx-iad-1",
        "tdx-unregistered",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let fra = list
        .iter()
        .find(|p| p["name"] == "snp-fra-1")
        .expect("snp-fra-1");
    assert_eq!(fra["tee"], "sev-snp");
    assert_eq!(fra["product"], "Milan");
    assert_eq!(fra["site"], "fra-1");
    assert_eq!(fra["country"], "DE");
    assert_eq!(fra["platform_id"].as_str().map(str::len), Some(128));
    let tdx = list
        .iter()
        .find(|p| p["name"] == "tdx-iad-1")
        .expect("tdx-iad-1");
    assert_eq!(tdx["tee"], "tdx");
    assert_eq!(tdx["country"], "US");
    assert_eq!(
        tdx["platform_id"].as_str().map(str::len),
        Some(32),
        "PPID, 16 bytes"
    );
    // The table form works too.
    let table = sim(&["profiles"]);
    assert_eq!(code(&table), 0);
    assert!(String::from_utf8_lossy(&table.stdout).contains("snp-iad-1"));
}

#[test]
fn snp_report_writes_1184_bytes_and_the_certificate_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.bin");
    let certs = dir.path().join("certs");
    let rd = "ab".repeat(64);
    let out = sim(&[
        "snp",
        "report",
        "--profile",
        "snp-fra-1",
        "--report-data",
        &rd,
        "--out",
        report.to_str().expect("utf8"),
        "--certs-out",
        certs.to_str().expect("utf8"),
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let raw = std::fs::read(&report).expect("report");
    assert_eq!(raw.len(), 1184);
    assert_eq!(&raw[0x50..0x90], &[0xab; 64][..], "REPORT_DATA");
    let world = locus_simulator::World::shared();
    let expected = world
        .snp_attester("snp-fra-1")
        .expect("a")
        .report(&[0xab; 64])
        .expect("r");
    assert_eq!(
        raw, expected.report,
        "the CLI and the library produce the same bytes"
    );
    assert_eq!(
        std::fs::read(certs.join("vcek.der")).expect("vcek"),
        expected.vcek_der
    );
    for f in ["ask.pem", "ark.pem", "cert_chain.pem"] {
        let text = std::fs::read_to_string(certs.join(f)).expect(f);
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{f}");
    }
    let chain = std::fs::read_to_string(certs.join("cert_chain.pem")).expect("chain");
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
}

#[test]
fn snp_report_with_a_fault_differs_and_short_report_data_is_zero_padded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("r.bin");
    let out = sim(&[
        "snp",
        "report",
        "--profile",
        "snp-iad-1",
        "--report-data",
        "0102",
        "--out",
        report.to_str().expect("utf8"),
        "--fault",
        "debug",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let raw = std::fs::read(&report).expect("report");
    let mut rd = [0u8; 64];
    rd[0] = 1;
    rd[1] = 2;
    assert_eq!(&raw[0x50..0x90], &rd[..]);
    let policy = u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes"));
    assert_ne!(policy & (1 << 19), 0, "debug bit set by the fault");
}

#[test]
fn pki_export_writes_the_documented_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = sim(&["pki", "export", "--out", dir.path().to_str().expect("utf8")]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    for product in ["milan", "genoa", "turin"] {
        for f in [
            "ark.pem",
            "ask.pem",
            "cert_chain.pem",
            "crl.der",
            "asvk.pem",
            "vlek_cert_chain.pem",
        ] {
            let p = dir.path().join("snp").join(product).join(f);
            assert!(p.is_file(), "{} missing", p.display());
        }
    }
    let collateral = dir.path().join("tdx/collateral");
    for f in [
        "tcb_info.json",
        "qe_identity.json",
        "pck_crl.der",
        "root_ca_crl.der",
        "intel_sgx_root_ca.der",
    ] {
        assert!(collateral.join(f).is_file(), "tdx/collateral/{f} missing");
    }
    let world = locus_simulator::World::shared();
    let ark_pem = std::fs::read_to_string(dir.path().join("snp/genoa/ark.pem")).expect("ark");
    assert_eq!(
        ark_pem,
        locus_simulator::x509::cert_pem(
            &world.amd_ark_der(locus_hw::snp::Product::Genoa).expect("a")
        )
    );
}

#[test]
fn tdx_quote_writes_a_quote_and_its_collateral() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quote = dir.path().join("quote.bin");
    let coll = dir.path().join("collateral");
    let out = sim(&[
        "tdx",
        "quote",
        "--profile",
        "tdx-fra-1",
        "--report-data",
        &"cd".repeat(64),
        "--out",
        quote.to_str().expect("utf8"),
        "--collateral-out",
        coll.to_str().expect("utf8"),
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let raw = std::fs::read(&quote).expect("quote");
    assert_eq!(
        locus_hw::TeeType::detect(&raw),
        Some(locus_hw::TeeType::Tdx)
    );
    let parsed = locus_hw::tdx::Quote::parse(&raw).expect("quote parses");
    assert_eq!(parsed.body.report_data, [0xcd; 64]);
    assert!(coll.join("tcb_info.json").is_file());
}

fn assert_usage_error(args: &[&str]) {
    let out = sim(args);
    assert_eq!(
        code(&out),
        2,
        "{args:?}: stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = tmp.path().join("x.bin");
    let f = f.to_str().expect("utf8");
    assert_usage_error(&[]);
    assert_usage_error(&["frobnicate"]);
    assert_usage_error(&["snp", "report", "--profile", "snp-fra-1", "--out", f]); // no --report-data
    assert_usage_error(&[
        "snp",
        "report",
        "--profile",
        "nope",
        "--report-data",
        "00",
        "--out",
        f,
    ]);
    assert_usage_error(&[
        "snp",
        "report",
        "--profile",
        "tdx-fra-1",
        "--report-data",
        "00",
        "--out",
        f,
    ]);
    assert_usage_error(&[
        "snp",
        "report",
        "--profile",
        "snp-fra-1",
        "--report-data",
        "zz",
        "--out",
        f,
    ]);
    assert_usage_error(&[
        "snp",
        "report",
        "--profile",
        "snp-fra-1",
        "--report-data",
        &"00".repeat(65),
        "--out",
        f,
    ]);
    assert_usage_error(&[
        "snp",
        "report",
        "--profile",
        "snp-fra-1",
        "--report-data",
        "00",
        "--out",
        f,
        "--fault",
        "x",
    ]);
    assert_usage_error(&[
        "tdx",
        "quote",
        "--profile",
        "snp-fra-1",
        "--report-data",
        "00",
        "--out",
        f,
    ]);
    assert_usage_error(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--fault",
        "kds-429:many",
    ]);
    assert_usage_error(&["--seed", "notanumber", "profiles"]);
    assert!(!Path::new(f).exists(), "nothing written on usage errors");
}

#[test]
fn serve_prints_its_address_and_answers_kds_paths() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_locus-sim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--fault", "slow:1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn locus-sim serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .map(str::to_string);
    let result = addr.ok_or_else(|| format!("unexpected first line {line:?}")).and_then(|addr| {
        let mut s = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
        write!(s, "GET /vcek/v1/Milan/cert_chain HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
        Ok(answer)
    });
    // Stop the server we started before asserting, so a failure never leaks the process.
    let _ = child.kill();
    let _ = child.wait();
    let answer = result.expect("request");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.matches("BEGIN CERTIFICATE").count(), 2);
}
