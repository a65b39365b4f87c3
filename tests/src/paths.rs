//! Repository paths, fixed at compile time so the demo and the tests work from any directory of a fresh clone, and
//! the example configuration rewritten for a throw-away state directory.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
}

/// `examples/`.
pub fn examples_dir() -> PathBuf {
    repo_root().join("examples")
}

/// `examples/verifier.toml`.
pub fn example_config_path() -> PathBuf {
    examples_dir().join("verifier.toml")
}

/// Why the example configuration could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum ExampleConfigError {
    /// Reading the file.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not TOML, or not the expected shape.
    #[error("{path}: {detail}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// `examples/verifier.toml` as TOML text with `server.state_dir` set to `state_dir`, every relative path of
/// `[server]` and `[trust]` made absolute against `examples/` (so the copy can live anywhere), and the optional
/// `server.issuer` replaced when given. Comments are not kept.
pub fn example_config_for(
    state_dir: &Path,
    issuer: Option<&str>,
) -> Result<String, ExampleConfigError> {
    let path = example_config_path();
    let text = std::fs::read_to_string(&path).map_err(|source| ExampleConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let shape = |detail: String| ExampleConfigError::Shape {
        path: path.clone(),
        detail,
    };
    let mut doc: toml::Table = text.parse().map_err(|e| shape(format!("TOML: {e}")))?;
    let base = examples_dir();
    let absolute = |v: &toml::Value| -> Option<toml::Value> {
        let s = v.as_str()?;
        let p = Path::new(s);
        if p.is_absolute() || s == "-" {
            None
        } else {
            Some(toml::Value::String(base.join(p).display().to_string()))
        }
    };
    for (section, keys) in [
        ("server", &["keys_dir", "audit_log", "endorsements_dir"][..]),
        ("trust", &["simulator_pki", "collateral_dir"][..]),
    ] {
        let Some(table) = doc.get_mut(section).and_then(toml::Value::as_table_mut) else {
            continue;
        };
        for key in keys {
            if let Some(new) = table.get(*key).and_then(absolute) {
                table.insert((*key).to_string(), new);
            }
        }
    }
    let server = doc
        .get_mut("server")
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| shape("no [server] table".into()))?;
    server.insert(
        "state_dir".into(),
        toml::Value::String(state_dir.display().to_string()),
    );
    // Secrets and the audit log go with the throw-away state unless the example points elsewhere on purpose.
    server.remove("keys_dir");
    server.remove("audit_log");
    if let Some(iss) = issuer {
        server.insert("issuer".into(), toml::Value::String(iss.to_string()));
    }
    toml::to_string(&doc).map_err(|e| shape(format!("re-encoding: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_copy_points_state_at_the_given_dir_and_paths_at_examples() {
        let text = example_config_for(Path::new("/tmp/locus-state-x"), Some("http://127.0.0.1:9"))
            .expect("rewrite");
        let doc: toml::Table = text.parse().expect("toml");
        assert_eq!(
            doc["server"]["state_dir"].as_str(),
            Some("/tmp/locus-state-x")
        );
        assert_eq!(doc["server"]["issuer"].as_str(), Some("http://127.0.0.1:9"));
        let pki = doc["trust"]["simulator_pki"]
            .as_str()
            .expect("simulator_pki");
        assert!(Path::new(pki).is_absolute(), "{pki}");
        assert!(Path::new(pki).join("snp").is_dir(), "{pki}");
    }
}
