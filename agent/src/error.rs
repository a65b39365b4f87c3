//! The agent's one error type. Every variant has a stable code: the attester's codes (`attester_unavailable`,
//! `attester_busy`, `attester_failed`, `evidence_malformed`), the verifier's own code passed through verbatim when it
//! refuses (docs/architecture.md#error-codes, e.g. `report_data_mismatch`), and the agent's codes below.

use locus_hw::backend::ProbeError;
use locus_hw::AttestError;

/// The verifier could not be reached (connect, TLS, timeout).
pub const VERIFIER_UNREACHABLE: &str = "verifier_unreachable";
/// The verifier answered something that is not the documented API (bad JSON, missing fields, error without code).
pub const VERIFIER_RESPONSE_INVALID: &str = "verifier_response_invalid";
/// The issued WIT is not bound to the key this agent generated.
pub const CNF_MISMATCH: &str = "cnf_mismatch";
/// The issued WIT does not verify against the verifier's JWKS (signature, `kid`, algorithm, lifetime, `aud`); the
/// message carries the `locus-wimse` code.
pub const WIT_INVALID: &str = "wit_invalid";
/// The issued WIT names another Workload Identifier than the one asked for.
pub const SUB_MISMATCH: &str = "sub_mismatch";
/// A Workload API client whose uid and gid are not on the allow-list.
pub const PEER_NOT_ALLOWED: &str = "peer_not_allowed";
/// The Workload API has no valid credential to serve.
pub const CREDENTIAL_UNAVAILABLE: &str = "credential_unavailable";
/// Bad configuration or arguments.
pub const CONFIG_INVALID: &str = "config_invalid";
/// Our own failure (randomness, key generation, a task that died).
pub const INTERNAL: &str = "internal";

/// Why obtaining or serving a credential failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The TEE interface failed.
    #[error(transparent)]
    Attester(#[from] AttestError),
    /// No TEE interface found (every probe listed).
    #[error(transparent)]
    NoAttester(#[from] ProbeError),
    /// The verifier refused, with its stable code and message.
    #[error("verifier refused ({status}): {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem document's `code`.
        code: String,
        /// `detail` (or `title`).
        message: String,
    },
    /// Transport failure.
    #[error("verifier unreachable: {0}")]
    Unreachable(String),
    /// The verifier's answer does not follow the API.
    #[error("invalid verifier response: {0}")]
    BadResponse(String),
    /// The WIT's `cnf.jwk` is not our key.
    #[error(
        "the issued WIT's cnf.jwk is not this agent's key (thumbprint {got}, expected {expected})"
    )]
    CnfMismatch {
        /// Our key's thumbprint (base64url).
        expected: String,
        /// The WIT's cnf thumbprint (base64url).
        got: String,
    },
    /// The WIT does not verify against the verifier's published keys.
    #[error("the issued WIT does not verify against the verifier's JWKS: {code}: {detail}")]
    WitInvalid {
        /// The `locus-wimse` code (`signature_invalid`, `kid_unknown`, …).
        code: &'static str,
        /// Its message.
        detail: String,
    },
    /// The WIT's `sub` is not the Workload Identifier asked for.
    #[error("the issued WIT is for {got}, not the workload asked for ({expected})")]
    SubMismatch {
        /// Asked for.
        expected: String,
        /// The WIT's `sub`.
        got: String,
    },
    /// Bad arguments or configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Our own failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AgentError {
    /// The stable code.
    pub fn code(&self) -> &str {
        match self {
            AgentError::Attester(e) => e.code(),
            AgentError::NoAttester(e) => e.code(),
            AgentError::Refused { code, .. } => code,
            AgentError::Unreachable(_) => VERIFIER_UNREACHABLE,
            AgentError::BadResponse(_) => VERIFIER_RESPONSE_INVALID,
            AgentError::CnfMismatch { .. } => CNF_MISMATCH,
            AgentError::WitInvalid { .. } => WIT_INVALID,
            AgentError::SubMismatch { .. } => SUB_MISMATCH,
            AgentError::Config(_) => CONFIG_INVALID,
            AgentError::Internal(_) => INTERNAL,
        }
    }

    /// `{"error":{"code","message"}}`, the `--json` refusal document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_refusals_pass_the_verifier_code_through() {
        let refused = AgentError::Refused {
            status: 403,
            code: "report_data_mismatch".into(),
            message: "m".into(),
        };
        assert_eq!(refused.code(), "report_data_mismatch");
        assert_eq!(
            AgentError::Unreachable("x".into()).code(),
            "verifier_unreachable"
        );
        assert_eq!(
            AgentError::BadResponse("x".into()).code(),
            "verifier_response_invalid"
        );
        assert_eq!(AgentError::Config("x".into()).code(), "config_invalid");
        assert_eq!(AgentError::Internal("x".into()).code(), "internal");
        assert_eq!(
            AgentError::CnfMismatch {
                expected: "a".into(),
                got: "b".into()
            }
            .code(),
            "cnf_mismatch"
        );
        assert_eq!(
            AgentError::WitInvalid {
                code: "signature_invalid",
                detail: "d".into()
            }
            .code(),
            "wit_invalid"
        );
        assert_eq!(
            AgentError::SubMismatch {
                expected: "a".into(),
                got: "b".into()
            }
            .code(),
            "sub_mismatch"
        );
        assert_eq!(
            AgentError::from(AttestError::Busy("b".into())).code(),
            "attester_busy"
        );
        let j = refused.to_json();
        assert_eq!(j["error"]["code"], "report_data_mismatch");
        assert!(j["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("m")));
    }
}
