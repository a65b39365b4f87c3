//! Which TEE produced a piece of evidence.

use serde::{Deserialize, Serialize};

/// The two TEEs Locus appraises. Serialized as `"sev-snp"` / `"tdx"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TeeType {
    #[serde(rename = "sev-snp")]
    SevSnp,
    #[serde(rename = "tdx")]
    Tdx,
}

impl TeeType {
    /// The wire spelling (`"sev-snp"` or `"tdx"`).
    pub fn as_str(self) -> &'static str {
        match self {
            TeeType::SevSnp => "sev-snp",
            TeeType::Tdx => "tdx",
        }
    }

    /// Guesses the TEE from raw evidence bytes, without validating them (the parsers do that).
    ///
    /// SEV-SNP: exactly 1184 bytes with a little-endian u32 version in 2..=5 (which forces bytes 2..4 to zero).
    /// TDX: a u16 quote version 4 or 5 and tee_type 0x81 at offset 4. SNP is tried first: a TDX quote has
    /// att_key_type (2) in bytes 2..4, so it can never look like an SNP version.
    pub fn detect(bytes: &[u8]) -> Option<TeeType> {
        if bytes.len() == crate::snp::REPORT_SIZE {
            let version = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if (2..=5).contains(&version) {
                return Some(TeeType::SevSnp);
            }
        }
        if bytes.len() >= 8 {
            let version = u16::from_le_bytes([bytes[0], bytes[1]]);
            let tee = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            if (version == 4 || version == 5) && tee == crate::tdx::TEE_TYPE_TDX {
                return Some(TeeType::Tdx);
            }
        }
        None
    }
}

impl std::fmt::Display for TeeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TeeType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sev-snp" => Ok(TeeType::SevSnp),
            "tdx" => Ok(TeeType::Tdx),
            other => Err(format!(
                "unknown TEE type {other:?} (expected \"sev-snp\" or \"tdx\")"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_snp_by_size_and_version() {
        let mut r = vec![0u8; 1184];
        r[0] = 5;
        assert_eq!(TeeType::detect(&r), Some(TeeType::SevSnp));
        r[0] = 6;
        assert_eq!(TeeType::detect(&r), None);
        r[0] = 2;
        assert_eq!(TeeType::detect(&r[..1183]), None);
    }

    #[test]
    fn detects_tdx_by_version_and_tee_type() {
        let mut q = vec![0u8; 64];
        q[0] = 4;
        q[2] = 2;
        q[4] = 0x81;
        assert_eq!(TeeType::detect(&q), Some(TeeType::Tdx));
        q[0] = 5;
        assert_eq!(TeeType::detect(&q), Some(TeeType::Tdx));
        q[4] = 0; // SGX quote
        assert_eq!(TeeType::detect(&q), None);
        assert_eq!(TeeType::detect(&[]), None);
    }

    #[test]
    fn snp_v4_with_guest_svn_0x81_is_still_snp() {
        let mut r = vec![0u8; 1184];
        r[0] = 4;
        r[4] = 0x81;
        assert_eq!(TeeType::detect(&r), Some(TeeType::SevSnp));
    }

    #[test]
    fn serde_names_are_the_contract() {
        assert_eq!(
            serde_json::to_string(&TeeType::SevSnp).ok().as_deref(),
            Some("\"sev-snp\"")
        );
        assert_eq!(
            serde_json::from_str::<TeeType>("\"tdx\"").ok(),
            Some(TeeType::Tdx)
        );
        assert_eq!("tdx".parse::<TeeType>().ok(), Some(TeeType::Tdx));
        assert!("sgx".parse::<TeeType>().is_err());
    }
}
