//! The stable error codes of docs/architecture.md#error-codes. Codes are a contract: add new ones, never reuse or rename one.

use std::fmt;

/// A stable, machine-readable refusal code (docs/architecture.md#error-codes). Every refusal the verifier gives carries exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    EvidenceMalformed,
    UnsupportedVersion,
    SignatureInvalid,
    ChainUntrusted,
    CertificateExpired,
    Revoked,
    CollateralMissing,
    CollateralExpired,
    TcbMismatch,
    TcbNotSupported,
    TcbStatusRejected,
    TcbBelowMinimum,
    DebugEnabled,
    VmplRejected,
    MeasurementUnknown,
    ReportDataMismatch,
    NonceInvalid,
    NonceExpired,
    SimulatedEvidenceUntrusted,
    LocationUnknown,
    GeofenceDenied,
    IdentifierInvalid,
    WorkloadUnknown,
    RequestInvalid,
    RequestTooLarge,
    Overloaded,
    Internal,
    /// The confirmation key's algorithm is not one the workload allows (docs/architecture.md#credentials: ES256 by default; never EdDSA for a
    /// `spiffe://` subject, which the WIT-SVID profile excludes).
    KeyUnsupported,
    /// The request names no workload and several match the evidence without one of them marked `default = true`.
    WorkloadAmbiguous,
    /// Migration is enabled for the guest (SNP policy MIGRATE_MA, TDX TD_ATTRIBUTES.MIGRATABLE) and the workload does
    /// not allow it.
    MigrationEnabled,
    /// A platform or launch property the workload's policy requires is not met (PLATFORM_INFO requirements, minimum
    /// policy ABI, TD-attributes mask, MRSERVICETD, PCK SGX type or flags).
    PolicyRejected,
    /// The audit log cannot be made durable: nothing is issued until it can (docs/operations.md#audit-log).
    AuditUnavailable,
    /// The client exceeded its request rate; retry after `Retry-After`.
    RateLimited,
    /// A credential presented to the verifier (the WIT or EAR of an SVID request) is not a current one of this
    /// verifier: bad signature, unknown key, expired, another trust domain or issuer, or not from the same attestation.
    CredentialInvalid,
    /// A signed request (an SVID request's `jti`) was seen before.
    Replayed,
    /// Proximity bounds disagree with each other or with the platform's claimed site (docs/proximity.md).
    LocationInconsistent,
    /// The geo-fence needs a proximity bound from a landmark and no valid, fresh statement for this key counted.
    ProximityFailed,
}

impl ErrorCode {
    /// Every code, in the order of docs/architecture.md#error-codes.
    pub const ALL: [ErrorCode; 37] = [
        ErrorCode::EvidenceMalformed,
        ErrorCode::UnsupportedVersion,
        ErrorCode::SignatureInvalid,
        ErrorCode::ChainUntrusted,
        ErrorCode::CertificateExpired,
        ErrorCode::Revoked,
        ErrorCode::CollateralMissing,
        ErrorCode::CollateralExpired,
        ErrorCode::TcbMismatch,
        ErrorCode::TcbNotSupported,
        ErrorCode::TcbStatusRejected,
        ErrorCode::TcbBelowMinimum,
        ErrorCode::DebugEnabled,
        ErrorCode::VmplRejected,
        ErrorCode::MeasurementUnknown,
        ErrorCode::ReportDataMismatch,
        ErrorCode::NonceInvalid,
        ErrorCode::NonceExpired,
        ErrorCode::SimulatedEvidenceUntrusted,
        ErrorCode::LocationUnknown,
        ErrorCode::GeofenceDenied,
        ErrorCode::IdentifierInvalid,
        ErrorCode::WorkloadUnknown,
        ErrorCode::RequestInvalid,
        ErrorCode::RequestTooLarge,
        ErrorCode::Overloaded,
        ErrorCode::Internal,
        ErrorCode::KeyUnsupported,
        ErrorCode::WorkloadAmbiguous,
        ErrorCode::MigrationEnabled,
        ErrorCode::PolicyRejected,
        ErrorCode::AuditUnavailable,
        ErrorCode::RateLimited,
        ErrorCode::CredentialInvalid,
        ErrorCode::Replayed,
        ErrorCode::LocationInconsistent,
        ErrorCode::ProximityFailed,
    ];

    /// The wire spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::EvidenceMalformed => "evidence_malformed",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::SignatureInvalid => "signature_invalid",
            ErrorCode::ChainUntrusted => "chain_untrusted",
            ErrorCode::CertificateExpired => "certificate_expired",
            ErrorCode::Revoked => "revoked",
            ErrorCode::CollateralMissing => "collateral_missing",
            ErrorCode::CollateralExpired => "collateral_expired",
            ErrorCode::TcbMismatch => "tcb_mismatch",
            ErrorCode::TcbNotSupported => "tcb_not_supported",
            ErrorCode::TcbStatusRejected => "tcb_status_rejected",
            ErrorCode::TcbBelowMinimum => "tcb_below_minimum",
            ErrorCode::DebugEnabled => "debug_enabled",
            ErrorCode::VmplRejected => "vmpl_rejected",
            ErrorCode::MeasurementUnknown => "measurement_unknown",
            ErrorCode::ReportDataMismatch => "report_data_mismatch",
            ErrorCode::NonceInvalid => "nonce_invalid",
            ErrorCode::NonceExpired => "nonce_expired",
            ErrorCode::SimulatedEvidenceUntrusted => "simulated_evidence_untrusted",
            ErrorCode::LocationUnknown => "location_unknown",
            ErrorCode::GeofenceDenied => "geofence_denied",
            ErrorCode::IdentifierInvalid => "identifier_invalid",
            ErrorCode::WorkloadUnknown => "workload_unknown",
            ErrorCode::RequestInvalid => "request_invalid",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal",
            ErrorCode::KeyUnsupported => "key_unsupported",
            ErrorCode::WorkloadAmbiguous => "workload_ambiguous",
            ErrorCode::MigrationEnabled => "migration_enabled",
            ErrorCode::PolicyRejected => "policy_rejected",
            ErrorCode::AuditUnavailable => "audit_unavailable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::CredentialInvalid => "credential_invalid",
            ErrorCode::Replayed => "replayed",
            ErrorCode::LocationInconsistent => "location_inconsistent",
            ErrorCode::ProximityFailed => "proximity_failed",
        }
    }

    /// The HTTP status the service answers with for this code (docs/api.md).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::EvidenceMalformed
            | ErrorCode::UnsupportedVersion
            | ErrorCode::IdentifierInvalid
            | ErrorCode::RequestInvalid
            | ErrorCode::NonceInvalid
            | ErrorCode::NonceExpired
            | ErrorCode::KeyUnsupported
            | ErrorCode::WorkloadAmbiguous
            | ErrorCode::Replayed => 400,
            ErrorCode::RequestTooLarge => 413,
            ErrorCode::Overloaded | ErrorCode::AuditUnavailable => 503,
            ErrorCode::RateLimited => 429,
            ErrorCode::CollateralMissing => 503,
            ErrorCode::Internal => 500,
            _ => 403,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: a stable code and a human-readable message saying which check failed and on what value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// A parse failure of the evidence formats: `unsupported_version` or `evidence_malformed`, with the parser's message
/// (which names the field and offset).
impl From<locus_hw::FormatError> for Refusal {
    fn from(e: locus_hw::FormatError) -> Self {
        let code = match e.code() {
            "unsupported_version" => ErrorCode::UnsupportedVersion,
            _ => ErrorCode::EvidenceMalformed,
        };
        Refusal::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serializes_to_its_wire_spelling() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
