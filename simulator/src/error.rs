//! The simulator's error type. The simulator is test infrastructure, but it still never panics on bad input.

/// Everything that can go wrong while building the simulated world or its evidence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// DER encoding or decoding failed (a bug in the simulator or a corrupt key file).
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    /// RSA key generation or signing failed.
    #[error("RSA: {0}")]
    Rsa(#[from] rsa::Error),
    /// A PKCS#8 key could not be read or written.
    #[error("PKCS#8: {0}")]
    Pkcs8(String),
    /// No built-in profile has this name.
    #[error("unknown profile `{0}`")]
    UnknownProfile(String),
    /// The profile exists but is for another TEE than the one asked for.
    #[error("profile `{name}` is a {tee} profile")]
    WrongTee {
        /// The profile's name.
        name: String,
        /// The TEE the profile is for.
        tee: &'static str,
    },
    /// The evidence format library refused the simulator's own output (a simulator bug).
    #[error("evidence format: {0}")]
    Format(String),
    /// Writing an exported file failed.
    #[error("I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An argument was out of range.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl SimError {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        SimError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
