//! Locating the real-hardware vectors for tests, shared by every crate's tests through
//! `#[path = "../../tests/support/vectors.rs"] mod vectors;` (one copy of the rule).
//!
//! Vectors are read in place from `../shared/vectors` beside the repository, or from `LOCUS_VECTORS`. When they are
//! missing a test prints a loud `SKIP:` line and returns, unless `LOCUS_REQUIRE_VECTORS=1` (set by `.ci/run`), which
//! makes it a failure.

use std::path::{Path, PathBuf};

/// The vectors directory (the one holding `index.json`), or `None` after a loud SKIP line.
#[allow(dead_code)] // not every including test uses both functions
pub fn dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LOCUS_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"));
    if dir.join("index.json").is_file() {
        return Some(dir);
    }
    if std::env::var("LOCUS_REQUIRE_VECTORS").as_deref() == Ok("1") {
        panic!(
            "LOCUS_REQUIRE_VECTORS=1 but no vectors at {} (set LOCUS_VECTORS)",
            dir.display()
        );
    }
    eprintln!(
        "SKIP: no hardware vectors at {} (set LOCUS_VECTORS)",
        dir.display()
    );
    None
}

/// One vector set (`snp/<name>` or `tdx/<name>`), or `None` after a loud SKIP line.
#[allow(dead_code)]
pub fn set(name: &str) -> Option<PathBuf> {
    let set = dir()?.join(name);
    if set.is_dir() {
        return Some(set);
    }
    if std::env::var("LOCUS_REQUIRE_VECTORS").as_deref() == Ok("1") {
        panic!(
            "LOCUS_REQUIRE_VECTORS=1 but no vector set {}",
            set.display()
        );
    }
    eprintln!("SKIP: no vector set {}", set.display());
    None
}
