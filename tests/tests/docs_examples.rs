//! The examples of `docs/` run: every fenced block whose info string carries `locus-test` (```` ```sh locus-test ````,
//! ```` ```python locus-test ````) is extracted and run, page by page and in page order, against one
//! `locus-verifier serve` on a copy of `examples/verifier.toml` (temporary state, `127.0.0.1:0`).
//!
//! What a block gets, as the pages say: `LOCUS_VERIFIER` (the base URL), `LOCUS_CONFIG` (the configuration the
//! verifier runs), `LOCUS_STATE_DIR` (its `state_dir`), `LOCUS_VERIFIER_PID`, and `PATH` starting with the directory
//! of the workspace binaries (`locus-verifier`, `locus-agent`, `locus-sim`). The blocks of one page share a working
//! directory (files written by one are read by the next). Shell blocks run with `bash -eu`, and what they leave running
//! in the background is killed when they exit; every block has a time limit. Everything stays on loopback.
//!
//! Python blocks need python3 with PyJWT and cryptography (`.ci/requirements.txt`): without them they print a loud
//! SKIP, unless `CI` or `LOCUS_REQUIRE_VECTORS=1` is set, in which case the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use locus_tests::paths::repo_root;
use locus_tests::procs::{run_to_completion, workspace_bin, VerifierProcess};

/// Longest a single block may run.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(120);
const MARKER: &str = "locus-test";

/// One runnable block.
#[derive(Debug, Clone)]
struct Block {
    page: String,
    line: usize,
    lang: String,
    code: String,
}

/// The `locus-test` blocks of `text` (a Markdown page named `page`), in order.
fn extract(page: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(Block, bool)> = None;
    for (n, line) in text.lines().enumerate() {
        match &mut open {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    let mut words = info.split_whitespace();
                    let lang = words.next().unwrap_or_default().to_owned();
                    let tested = words.any(|w| w == MARKER);
                    open = Some((
                        Block {
                            page: page.to_owned(),
                            line: n + 1,
                            lang,
                            code: String::new(),
                        },
                        tested,
                    ));
                }
            }
            Some((block, tested)) => {
                if line.trim_end() == "```" {
                    if *tested {
                        out.push(block.clone());
                    }
                    open = None;
                } else {
                    block.code.push_str(line);
                    block.code.push('\n');
                }
            }
        }
    }
    out
}

fn python_available() -> bool {
    locus_tests::python_with(
        "import jwt, cryptography",
        "docs python examples (PyJWT[crypto])",
    )
}

/// `'path'` for bash.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// What a block sees.
struct Env {
    vars: Vec<(String, String)>,
    python: bool,
}

/// Run one block in `dir`; `Err` with everything needed to see why when it fails.
fn run_block(block: &Block, dir: &Path, env: &Env) -> Result<bool, String> {
    let script = dir.join(format!("block-{}.src", block.line));
    std::fs::write(&script, &block.code).map_err(|e| format!("writing the block: {e}"))?;
    let mut cmd = match block.lang.as_str() {
        "sh" | "bash" => {
            // Whatever a block leaves running in the background (an agent, when a later line failed) is killed
            // when it exits; the exit status stays the block's.
            let wrapped = format!(
                "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n. {}\n",
                shell_quote(&script)
            );
            let mut c = Command::new("bash");
            c.arg("-eu").arg("-c").arg(wrapped);
            c
        }
        "python" => {
            if !env.python {
                return Ok(false);
            }
            let mut c = Command::new("python3");
            c.arg(&script);
            c
        }
        other => return Err(format!("no runner for ```{other} {MARKER}")),
    };
    cmd.current_dir(dir);
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    let done = run_to_completion("docs example", &mut cmd, BLOCK_TIMEOUT)
        .map_err(|e| format!("spawn: {e}"))?;
    if done.success() {
        Ok(true)
    } else {
        Err(format!(
            "exit {:?}\n--- code ---\n{}--- stdout ---\n{}--- stderr ---\n{}",
            done.status, block.code, done.stdout, done.stderr
        ))
    }
}

fn doc_pages() -> Vec<(String, PathBuf)> {
    let root = repo_root();
    let mut pages = vec![("README.md".to_owned(), root.join("README.md"))];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    for p in docs {
        let name = format!(
            "docs/{}",
            p.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        pages.push((name, p));
    }
    pages
}

#[test]
fn the_extractor_finds_tagged_blocks_only_and_a_failing_block_fails() {
    let page = "text\n```sh locus-test\necho one\n```\n```sh\necho untested\n```\n```python locus-test\nprint(2)\n```\n";
    let blocks = extract("a page", page);
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!((blocks[0].line, blocks[0].lang.as_str()), (2, "sh"));
    assert_eq!(blocks[0].code, "echo one\n");
    assert_eq!(blocks[1].lang, "python");

    let dir = tempfile::tempdir().expect("tempdir");
    let env = Env {
        vars: Vec::new(),
        python: false,
    };
    let failing = Block {
        page: "a page".into(),
        line: 1,
        lang: "sh".into(),
        code: "true\nfalse\necho never\n".into(),
    };
    assert!(run_block(&failing, dir.path(), &env).is_err());
    let unset = Block {
        code: "echo \"$LOCUS_SURELY_UNSET_VARIABLE\"\n".into(),
        ..failing.clone()
    };
    assert!(
        run_block(&unset, dir.path(), &env).is_err(),
        "bash -u refuses unset variables"
    );
    let passing = Block {
        code: "test -d .\n".into(),
        ..failing
    };
    assert_eq!(run_block(&passing, dir.path(), &env), Ok(true));
}

#[test]
fn every_tested_example_in_the_docs_runs_against_the_simulator() {
    let pages = doc_pages();
    let mut blocks = Vec::new();
    for (name, path) in &pages {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        blocks.extend(extract(name, &text));
    }
    assert!(
        blocks.len() >= 12,
        "only {} tested examples in the docs",
        blocks.len()
    );
    for page in [
        "docs/api.md",
        "docs/agent.md",
        "docs/operations.md",
        "docs/relying-party.md",
    ] {
        assert!(
            blocks.iter().any(|b| b.page == page),
            "{page} has no tested example"
        );
    }

    // The binaries the blocks call, built into this target directory when missing or stale.
    let mut bin_dir = None;
    for bin in ["locus-verifier", "locus-agent", "locus-sim"] {
        let path = workspace_bin(bin).unwrap_or_else(|e| panic!("{e}"));
        bin_dir = path.parent().map(Path::to_path_buf);
    }
    let bin_dir = bin_dir.expect("binary directory");
    let dir = tempfile::tempdir().expect("tempdir");
    let verifier = VerifierProcess::start_example(dir.path(), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let env = Env {
        vars: vec![
            ("LOCUS_VERIFIER".into(), verifier.base.clone()),
            (
                "LOCUS_CONFIG".into(),
                dir.path().join("verifier.toml").display().to_string(),
            ),
            (
                "LOCUS_STATE_DIR".into(),
                dir.path().join("state").display().to_string(),
            ),
            (
                "LOCUS_VERIFIER_PID".into(),
                verifier
                    .guard
                    .id()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            ),
            ("PATH".into(), path),
            ("RUST_LOG".into(), "warn".into()),
        ],
        python: python_available(),
    };

    let mut failures = Vec::new();
    let mut ran = 0;
    for block in &blocks {
        let work = dir.path().join("work").join(block.page.replace('/', "_"));
        std::fs::create_dir_all(&work).expect("work dir");
        match run_block(block, &work, &env) {
            Ok(true) => ran += 1,
            Ok(false) => eprintln!("SKIP: {}:{} ({})", block.page, block.line, block.lang),
            Err(why) => failures.push(format!("{}:{}: {why}", block.page, block.line)),
        }
    }
    eprintln!("docs examples: {ran} ran, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} documented example(s) failed:\n\n{}\n\nverifier stderr:\n{}",
        failures.len(),
        failures.join("\n\n"),
        verifier.stderr()
    );
}
