//! The documentation in `docs/` is kept true by construction:
//!
//! - every key the `verifier.toml` types accept (traced from the serde shape of `locus_verifier::config::raw`, so a
//!   field added there is seen here without anyone listing it) has a row in `docs/configuration.md`, the page names
//!   no key they do not accept, and its TOML examples use only real keys;
//! - every error code of the verifier (with its HTTP status), the agent and `locus-wimse` is in
//!   `docs/architecture.md`;
//! - every operation of the verifier's `/openapi.json` is in `docs/api.md`, and the page names no other;
//! - no file of the repository points outside it (`../shared`, "DESIGN §", a Markdown file it does not have) except
//!   the test helper that locates the vector files and the README line saying how to point tests at them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use locus_tests::paths::repo_root;
use locus_verifier::config::raw::RawConfig;
use locus_verifier::error::ErrorCode;
use serde_reflection::{ContainerFormat, Format, Registry, Samples, Tracer, TracerConfig};

fn read_doc(name: &str) -> String {
    let path = repo_root().join("docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The placeholder for the key of a map of tables (`[trust.snp_current_tcb.<product>]`).
const ANY: &str = "<name>";

/// `a.b` with `<anything>` segments made [`ANY`].
fn normalise(path: &str) -> String {
    path.split('.')
        .map(|s| {
            if s.starts_with('<') && s.ends_with('>') {
                ANY
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The keys (`server.listen`, `workload.sev-snp.measurement`, `trust.snp_current_tcb.<name>.snp`, ...) and the
/// table paths (`server`, `workload`, `trust.snp_current_tcb.<name>`, ...) of `verifier.toml`, as serde sees them.
#[derive(Debug, Default)]
struct Shape {
    keys: BTreeSet<String>,
    tables: BTreeSet<String>,
}

fn config_shape() -> Shape {
    let mut tracer = Tracer::new(TracerConfig::default());
    let samples = Samples::new();
    tracer
        .trace_type::<RawConfig>(&samples)
        .expect("trace the serde shape of RawConfig");
    let registry = tracer.registry().expect("a complete registry");
    let mut shape = Shape::default();
    walk_container(&registry, "RawConfig", "", &mut shape);
    assert!(
        shape.keys.len() > 50,
        "the trace found only {} keys",
        shape.keys.len()
    );
    shape
}

fn walk_container(registry: &Registry, name: &str, prefix: &str, shape: &mut Shape) {
    let Some(ContainerFormat::Struct(fields)) = registry.get(name) else {
        panic!("{name}: expected a struct in the traced config shape");
    };
    for field in fields {
        let path = if prefix.is_empty() {
            field.name.clone()
        } else {
            format!("{prefix}.{}", field.name)
        };
        walk_format(registry, &field.value, path, shape);
    }
}

fn walk_format(registry: &Registry, format: &Format, path: String, shape: &mut Shape) {
    match format {
        Format::Option(inner) => walk_format(registry, inner, path, shape),
        Format::TypeName(name) => {
            shape.tables.insert(path.clone());
            walk_container(registry, name, &path, shape);
        }
        Format::Seq(inner) if matches!(**inner, Format::TypeName(_)) => {
            walk_format(registry, inner, path, shape)
        }
        Format::Map { value, .. } if matches!(**value, Format::TypeName(_)) => {
            walk_format(registry, value, format!("{path}.{ANY}"), shape)
        }
        _ => {
            shape.keys.insert(path);
        }
    }
}

/// The keys `docs/configuration.md` documents: the first cell of every table row under a heading that names a TOML
/// table (``## `[server]` ``, ``### `[workload.sev-snp]` ``), as `table.key`.
fn documented_keys(page: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut table: Option<String> = None;
    for (n, line) in page.lines().enumerate() {
        if line.starts_with('#') {
            table = line
                .split_once("`[")
                .and_then(|(_, rest)| rest.split_once("]`"))
                .map(|(inner, _)| normalise(inner.trim_matches(['[', ']'])));
            continue;
        }
        let Some(table) = &table else { continue };
        let Some(cell) = line.strip_prefix("| `") else {
            continue;
        };
        let Some((key, _)) = cell.split_once('`') else {
            continue;
        };
        if out.insert(format!("{table}.{key}"), n + 1).is_some() {
            panic!("configuration.md:{}: {table}.{key} documented twice", n + 1);
        }
    }
    out
}

/// The fenced blocks of `page` whose info string starts with `lang`.
fn blocks(page: &str, lang: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in page.lines().enumerate() {
        match &mut current {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    current = if info.split_whitespace().next() == Some(lang) {
                        Some((n + 1, String::new()))
                    } else {
                        // Another language: skip to its end.
                        Some((usize::MAX, String::new()))
                    };
                }
            }
            Some((start, text)) => {
                if line == "```" {
                    if *start != usize::MAX {
                        out.push((*start, std::mem::take(text)));
                    }
                    current = None;
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    out
}

/// Every key path a TOML example uses, checked against the shape; returns the problems.
fn example_problems(shape: &Shape, prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let map_of_tables = format!("{path}.{ANY}");
        if shape.tables.contains(&path) {
            match value {
                toml::Value::Table(t) => example_problems(shape, &path, t, out),
                toml::Value::Array(items) => {
                    for item in items {
                        match item {
                            toml::Value::Table(t) => example_problems(shape, &path, t, out),
                            other => out.push(format!("{path}: expected a table, got {other}")),
                        }
                    }
                }
                other => out.push(format!("{path}: expected a table, got {other}")),
            }
        } else if shape.tables.contains(&map_of_tables) {
            match value {
                toml::Value::Table(t) => {
                    for entry in t.values() {
                        match entry {
                            toml::Value::Table(t) => {
                                example_problems(shape, &map_of_tables, t, out)
                            }
                            other => out.push(format!("{path}: expected tables, got {other}")),
                        }
                    }
                }
                other => out.push(format!("{path}: expected a table, got {other}")),
            }
        } else if !shape.keys.contains(&path) {
            out.push(format!("{path}: not a key of verifier.toml"));
        }
    }
}

#[test]
fn configuration_md_documents_exactly_the_keys_verifier_toml_accepts() {
    let shape = config_shape();
    let page = read_doc("configuration.md");
    let documented = documented_keys(&page);
    let missing: Vec<&String> = shape
        .keys
        .iter()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document these keys of verifier.toml (add a row under their table's \
         heading): {missing:?}"
    );
    let unknown: Vec<String> = documented
        .iter()
        .filter(|(k, _)| !shape.keys.contains(*k))
        .map(|(k, line)| format!("{k} (line {line})"))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/configuration.md documents keys verifier.toml does not accept: {unknown:?}"
    );
}

#[test]
fn configuration_md_toml_examples_use_only_real_keys() {
    let shape = config_shape();
    let page = read_doc("configuration.md");
    let examples = blocks(&page, "toml");
    assert!(examples.len() >= 10, "{} TOML examples", examples.len());
    let mut problems = Vec::new();
    for (line, text) in &examples {
        match text.parse::<toml::Table>() {
            Ok(table) => {
                let mut here = Vec::new();
                example_problems(&shape, "", &table, &mut here);
                problems.extend(here.into_iter().map(|p| format!("line {line}: {p}")));
            }
            Err(e) => problems.push(format!("line {line}: not TOML: {e}")),
        }
    }
    assert!(
        problems.is_empty(),
        "docs/configuration.md examples: {problems:#?}"
    );
}

#[test]
fn the_reference_test_sees_a_key_that_is_not_documented() {
    // The comparison above is only as good as the trace: a key it cannot see could never fail it.
    let shape = config_shape();
    for key in [
        "server.listen",
        "server.trusted_proxies",
        "trust.snp_current_tcb.<name>.microcode",
        "site.coordinates",
        "workload.sev-snp.measurement",
        "workload.tdx.pck_smt_enabled",
        "workload.min_tcb_by_product.<name>.fmc",
        "workload.geofence.zones",
    ] {
        assert!(shape.keys.contains(key), "{key} not traced");
    }
    let mut page = read_doc("configuration.md");
    page = page.replace("| `trusted_proxies` |", "| removed |");
    let documented = documented_keys(&page);
    assert!(!documented.contains_key("server.trusted_proxies"));
    assert!(documented.contains_key("server.listen"));
}

/// `| `code` | ...` rows of the table under the heading `heading` of `page`: code → the remaining cells.
fn code_rows(page: &str, heading: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in page.lines() {
        if line.starts_with('#') {
            inside = line.trim_start_matches('#').trim() == heading;
            continue;
        }
        if !inside {
            continue;
        }
        let Some(cells) = line.strip_prefix('|') else {
            continue;
        };
        let cells: Vec<String> = cells.split('|').map(|c| c.trim().to_owned()).collect();
        if let Some(code) = cells
            .first()
            .and_then(|c| c.strip_prefix('`'))
            .and_then(|c| c.strip_suffix('`'))
        {
            out.insert(code.to_owned(), cells[1..].to_vec());
        }
    }
    out
}

#[test]
fn architecture_md_lists_every_verifier_code_with_its_http_status() {
    let page = read_doc("architecture.md");
    let rows = code_rows(&page, "Verifier");
    for code in ErrorCode::ALL {
        let row = rows
            .get(code.as_str())
            .unwrap_or_else(|| panic!("docs/architecture.md: no row for verifier code {code}"));
        assert_eq!(
            row.first().map(String::as_str),
            Some(code.http_status().to_string().as_str()),
            "docs/architecture.md: HTTP status of {code}"
        );
    }
    let known: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let extra: Vec<&String> = rows
        .keys()
        .filter(|c| !known.contains(c.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "docs/architecture.md lists codes the verifier does not have: {extra:?}"
    );
}

#[test]
fn architecture_md_lists_every_agent_and_wimse_code() {
    use locus_agent::AgentError;
    use locus_hw::AttestError;
    let page = read_doc("architecture.md");
    let agent_rows = code_rows(&page, "Agent");
    let agent_codes = [
        AgentError::from(AttestError::Unavailable(String::new()))
            .code()
            .to_owned(),
        AgentError::from(AttestError::Busy(String::new()))
            .code()
            .to_owned(),
        AgentError::from(AttestError::Failed(String::new()))
            .code()
            .to_owned(),
        AttestError::Malformed(locus_hw::FormatError::TrailingBytes {
            what: "quote",
            offset: 0,
        })
        .code()
        .to_owned(),
        AgentError::Unreachable(String::new()).code().to_owned(),
        AgentError::BadResponse(String::new()).code().to_owned(),
        AgentError::CnfMismatch {
            expected: String::new(),
            got: String::new(),
        }
        .code()
        .to_owned(),
        AgentError::WitInvalid {
            code: "signature_invalid",
            detail: String::new(),
        }
        .code()
        .to_owned(),
        AgentError::SubMismatch {
            expected: String::new(),
            got: String::new(),
        }
        .code()
        .to_owned(),
        locus_agent::error::PEER_NOT_ALLOWED.to_owned(),
        locus_agent::error::CREDENTIAL_UNAVAILABLE.to_owned(),
        AgentError::Config(String::new()).code().to_owned(),
        AgentError::Internal(String::new()).code().to_owned(),
    ];
    for code in &agent_codes {
        assert!(
            agent_rows.contains_key(code),
            "docs/architecture.md: no row for agent code {code}"
        );
    }
    let wimse_rows = code_rows(&page, "Relying party (`locus-wimse`)");
    for code in locus_wimse::error::ALL_CODES {
        assert!(
            wimse_rows.contains_key(*code),
            "docs/architecture.md: no row for locus-wimse code {code}"
        );
    }
    assert_eq!(
        wimse_rows.len(),
        locus_wimse::error::ALL_CODES.len(),
        "docs/architecture.md lists locus-wimse codes the library does not have"
    );
}

fn openapi() -> serde_json::Value {
    let path = repo_root().join("verifier/src/service/openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("openapi.json is JSON")
}

/// `METHOD /path` of every operation in the OpenAPI document.
fn openapi_operations(doc: &serde_json::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    out
}

#[test]
fn api_md_documents_exactly_the_operations_of_openapi_json() {
    let doc = openapi();
    let operations = openapi_operations(&doc);
    assert!(operations.contains("POST /v1/attest"), "{operations:?}");
    let page = read_doc("api.md");
    // The endpoint headings: ``### `POST /v1/attest` ``.
    let documented: BTreeSet<String> = page
        .lines()
        .filter(|l| l.starts_with("### `"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .filter(|op| op.starts_with("GET ") || op.starts_with("POST "))
        .collect();
    let undocumented: Vec<&String> = operations.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "docs/api.md has no section for {undocumented:?}"
    );
    let unknown: Vec<&String> = documented
        .iter()
        .filter(|op| {
            !op.contains(" /v1/wit") && !op.contains(" /v1/wpt") && !op.contains(" /v1/http-sig")
        })
        .filter(|op| !operations.contains(*op))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/api.md documents verifier operations /openapi.json does not have: {unknown:?}"
    );
}

#[test]
fn api_md_has_a_row_for_every_member_of_the_attest_request_and_answer() {
    let doc = openapi();
    let page = read_doc("api.md");
    for schema in ["AttestRequest", "AttestResponse"] {
        let properties = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema} properties"));
        assert!(properties.len() >= 4, "{schema}: {properties:?}");
        for name in properties.keys() {
            assert!(
                page.contains(&format!("| `{name}` |")),
                "docs/api.md has no row for {schema}.{name}"
            );
        }
    }
}

#[test]
fn openapi_problem_codes_are_the_verifier_codes() {
    let doc = openapi();
    let listed: Vec<&str> = doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .expect("Problem.code enum")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, all);
}

/// Files that may name `../shared`: the helper that locates the vector files, and the README (its `LOCUS_VECTORS`
/// line only). This test names the strings it looks for.
const MAY_NAME_SHARED: &[&str] = &["tests/support/vectors.rs", "tests/tests/docs_reference.rs"];

/// Paths other branches are changing at the time of writing; their references are replaced when those branches are
/// merged, and the entries removed from here.
const PENDING: &[&str] = &[];

/// Fuzz inputs are data (mutated bytes, some of them mangled copies of our own comments), not documentation.
const DATA_DIRS: &[&str] = &["fuzz/corpus/", "fuzz/regressions/"];

fn repository_files(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name == "target" || name == ".git" || name == "node_modules" {
                continue;
            }
            repository_files(&path, root, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_path_buf());
        }
    }
}

/// The `*.md` names `line` mentions (`docs/api.md`, `README.md`), by file name.
fn markdown_names(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')))
        .map(|word| word.trim_end_matches('.'))
        .filter_map(|word| word.strip_suffix(".md").map(|_| word))
        .map(|word| word.rsplit('/').next().unwrap_or(word))
        .filter(|name| name.len() > 3)
        .collect()
}

#[test]
fn markdown_names_are_found_in_comments() {
    assert_eq!(
        markdown_names("//! see docs/api.md#x and (notes.md §3), README.md."),
        ["api.md", "notes.md", "README.md"]
    );
    assert!(markdown_names("no file here; .md alone").is_empty());
}

#[test]
fn no_file_points_outside_the_repository() {
    let root = repo_root();
    let mut files = Vec::new();
    repository_files(&root, &root, &mut files);
    assert!(files.len() > 100, "{} files found", files.len());
    // A Markdown file named anywhere must be one of the repository's.
    let markdown: BTreeSet<String> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "md"))
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert!(markdown.contains("configuration.md"), "{markdown:?}");
    let mut problems = Vec::new();
    for rel in files {
        let rel_str = rel.to_string_lossy().replace('\\', "/");
        if MAY_NAME_SHARED.contains(&rel_str.as_str())
            || PENDING.iter().any(|p| rel_str.starts_with(p))
            || DATA_DIRS.iter().any(|p| rel_str.starts_with(p))
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&rel)) else {
            continue; // binary
        };
        for (n, line) in text.lines().enumerate() {
            let names_shared = line.contains("../shared") || line.contains("shared/specs");
            let readme_vectors_line = rel_str == "README.md" && line.contains("LOCUS_VECTORS");
            let foreign_markdown = markdown_names(line)
                .into_iter()
                .any(|name| !markdown.contains(name));
            if (names_shared && !readme_vectors_line)
                || line.contains("DESIGN §")
                || foreign_markdown
            {
                problems.push(format!("{rel_str}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "these lines point outside the repository (point into docs/ instead):\n{}",
        problems.join("\n")
    );
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// `page.md` or `page.md#anchor` targets in `text`: `docs/page.md#x` anywhere, and `](page.md#x)` links.
fn docs_links(text: &str, in_docs: bool) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut push = |target: &str| {
        let target = target.trim_end_matches(['.', ',', ';', ':', ')', '`', '\'', '"']);
        let (page, frag) = match target.split_once('#') {
            Some((p, f)) => (p, Some(f.to_owned())),
            None => (target, None),
        };
        if page.ends_with(".md") && !page.contains('/') {
            out.push((page.to_owned(), frag));
        }
    };
    for (i, _) in text.match_indices("docs/") {
        let rest = &text[i + 5..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '#')))
            .unwrap_or(rest.len());
        push(&rest[..end]);
    }
    if in_docs {
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            push(&rest[..end]);
        }
    }
    out
}

#[test]
fn every_link_into_docs_resolves_to_a_page_and_heading() {
    assert_eq!(
        anchor("The agent's Workload API"),
        "the-agents-workload-api"
    );
    assert_eq!(anchor("`[workload.sev-snp]`"), "workloadsev-snp");
    let root = repo_root();
    let mut headings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(entry.path()).expect("page");
        let mut in_code = false;
        let set = headings.entry(name).or_default();
        for line in text.lines() {
            if line.starts_with("```") {
                in_code = !in_code;
            } else if !in_code && line.starts_with('#') {
                set.insert(anchor(line.trim_start_matches('#')));
            }
        }
    }
    let mut files = Vec::new();
    repository_files(&root, &root, &mut files);
    let mut problems = Vec::new();
    let mut links = 0;
    for rel in files {
        let rel_str = rel.to_string_lossy().replace('\\', "/");
        // This file's own examples are not links.
        if PENDING.iter().any(|p| rel_str.starts_with(p))
            || rel_str == "tests/tests/docs_reference.rs"
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&rel)) else {
            continue;
        };
        for (page, frag) in docs_links(&text, rel_str.starts_with("docs/")) {
            links += 1;
            match (headings.get(&page), frag) {
                (None, _) => problems.push(format!("{rel_str}: docs/{page} does not exist")),
                (Some(set), Some(frag)) if !set.contains(&frag) => {
                    problems.push(format!("{rel_str}: docs/{page} has no heading #{frag}"))
                }
                _ => {}
            }
        }
    }
    assert!(links > 50, "only {links} links into docs/ found");
    assert!(
        problems.is_empty(),
        "broken links into docs/:\n{}",
        problems.join("\n")
    );
}
