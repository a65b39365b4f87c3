//! The one error type of the format parsers. Every variant names the field (and offset) that failed so a refusal can
//! be traced back to the byte that caused it; [`FormatError::code`] maps it to the stable codes of docs/architecture.md#error-codes.

/// A malformed or unsupported piece of evidence. Parsers never panic on untrusted input; they return this.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// A fixed-size structure had the wrong length.
    #[error("{what}: expected {expected} bytes, got {actual}")]
    WrongSize {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    /// A field runs past the end of the buffer.
    #[error("truncated at {field} (offset {offset}): need {needed} bytes, {available} available")]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// A version (or body type) outside the explicit allow-list.
    #[error("unsupported {what} {version}")]
    UnsupportedVersion { what: &'static str, version: u32 },
    /// A field holds a value the format does not allow.
    #[error("{field} at offset {offset}: {reason}")]
    InvalidField {
        field: &'static str,
        offset: usize,
        reason: String,
    },
    /// Non-zero bytes after the end of a structure whose format allows only zero padding there.
    #[error("non-zero byte after the end of the {what}: offset {offset}")]
    TrailingBytes { what: &'static str, offset: usize },
}

impl FormatError {
    /// The stable error code of docs/architecture.md#error-codes: `unsupported_version` or `evidence_malformed`.
    pub fn code(&self) -> &'static str {
        match self {
            FormatError::UnsupportedVersion { .. } => "unsupported_version",
            FormatError::WrongSize { .. }
            | FormatError::Truncated { .. }
            | FormatError::InvalidField { .. }
            | FormatError::TrailingBytes { .. } => "evidence_malformed",
        }
    }

    pub(crate) fn invalid(field: &'static str, offset: usize, reason: impl Into<String>) -> Self {
        FormatError::InvalidField {
            field,
            offset,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_version_errors_map_to_unsupported_version() {
        let v = FormatError::UnsupportedVersion {
            what: "report version",
            version: 6,
        };
        assert_eq!(v.code(), "unsupported_version");
        let t = FormatError::Truncated {
            field: "body",
            offset: 48,
            needed: 584,
            available: 3,
        };
        assert_eq!(t.code(), "evidence_malformed");
        assert!(
            t.to_string().contains("body"),
            "message names the field: {t}"
        );
    }
}
