//! The in-guest attester interface: something that turns 64 bytes of report data into hardware evidence.
//! Backends (configfs-tsm, /dev/sev-guest, libtdx_attest) and the simulator implement [`Attester`].

use crate::{FormatError, TeeType};

/// Evidence as produced by an attester: the raw report or quote, plus any certificates that came with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// Which TEE produced `raw`.
    pub tee: TeeType,
    /// The SNP report (1184 bytes) or the TDX quote, verbatim.
    pub raw: Vec<u8>,
    /// DER certificates shipped with the evidence (e.g. VCEK/ASK/ARK from the extended-report table); may be empty.
    pub certs: Vec<Vec<u8>>,
}

/// Why an attester could not produce evidence. Codes are stable strings for the agent's logs and API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The TEE interface is not present or not usable (no device, no configfs, no library).
    #[error("attester unavailable: {0}")]
    Unavailable(String),
    /// The interface is busy or rate-limited; retrying later may succeed.
    #[error("attester busy: {0}")]
    Busy(String),
    /// The interface was present but the request failed.
    #[error("attester failed: {0}")]
    Failed(String),
    /// The interface returned bytes that do not parse as evidence.
    #[error("attester returned malformed evidence: {0}")]
    Malformed(#[from] FormatError),
    /// An I/O error talking to the interface.
    #[error("attester I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl AttestError {
    /// The stable code: `attester_unavailable`, `attester_busy`, `attester_failed` or `evidence_malformed`.
    pub fn code(&self) -> &'static str {
        match self {
            AttestError::Unavailable(_) => "attester_unavailable",
            AttestError::Busy(_) => "attester_busy",
            AttestError::Failed(_) | AttestError::Io(_) => "attester_failed",
            AttestError::Malformed(_) => "evidence_malformed",
        }
    }

    /// Whether the same request may succeed if retried later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AttestError::Busy(_))
    }
}

/// A source of hardware (or simulated) evidence.
pub trait Attester: Send + Sync {
    /// A short name for logs (`"configfs-tsm"`, `"sev-guest"`, `"sim-snp"`…).
    fn name(&self) -> &str;
    /// The TEE this attester produces evidence for.
    fn tee(&self) -> TeeType;
    /// Produces evidence binding `report_data`.
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            AttestError::Unavailable("x".into()).code(),
            "attester_unavailable"
        );
        assert_eq!(AttestError::Busy("x".into()).code(), "attester_busy");
        assert_eq!(AttestError::Failed("x".into()).code(), "attester_failed");
        assert_eq!(
            AttestError::Io(std::io::Error::other("x")).code(),
            "attester_failed"
        );
        let malformed = AttestError::from(FormatError::invalid("f", 0, "r"));
        assert_eq!(malformed.code(), "evidence_malformed");
        assert!(AttestError::Busy("x".into()).is_retryable());
        assert!(!AttestError::Failed("x".into()).is_retryable());
    }

    #[test]
    fn attester_is_object_safe() {
        struct Fixed;
        impl Attester for Fixed {
            fn name(&self) -> &str {
                "fixed"
            }
            fn tee(&self) -> TeeType {
                TeeType::Tdx
            }
            fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
                Ok(Evidence {
                    tee: TeeType::Tdx,
                    raw: report_data.to_vec(),
                    certs: vec![],
                })
            }
        }
        let a: Box<dyn Attester> = Box::new(Fixed);
        let ev = a.attest(&[7; 64]).ok();
        assert_eq!(ev.map(|e| e.raw), Some(vec![7; 64]));
        assert_eq!(a.name(), "fixed");
        assert_eq!(a.tee(), TeeType::Tdx);
    }
}
