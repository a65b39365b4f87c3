//! Helpers shared by the appraisal test files (`vectors_*`, `mutation_*`, `appraise_*`): the real-vector folder and
//! running `locus-verifier appraise`.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The real-hardware vectors (`LOCUS_VECTORS`, default `../shared/vectors`). Missing: a loud SKIP line and `None`,
/// unless `LOCUS_REQUIRE_VECTORS=1`, which makes it a failure.
pub fn vectors_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LOCUS_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"));
    if dir.join("index.json").is_file() {
        return Some(dir);
    }
    if std::env::var("LOCUS_REQUIRE_VECTORS").as_deref() == Ok("1") {
        panic!(
            "vectors required (LOCUS_REQUIRE_VECTORS=1) but not found at {}",
            dir.display()
        );
    }
    eprintln!(
        "SKIP: vectors not found at {} (set LOCUS_VECTORS)",
        dir.display()
    );
    None
}

/// The outcome of one `locus-verifier appraise` run.
pub struct Run {
    pub code: i32,
    pub json: Value,
}

/// Run `locus-verifier appraise <args>`; it must print exactly one line of JSON.
pub fn appraise_cli(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_locus-verifier"))
        .arg("appraise")
        .args(args)
        .output()
        .expect("run locus-verifier");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one line of JSON, got: {stdout}"
    );
    let json: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    Run {
        code: out.status.code().expect("exit code"),
        json,
    }
}
