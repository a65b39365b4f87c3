//! The 48-byte quote header (Intel DCAP `sgx_quote_4.h`), shared by quote versions 4 and 5.

use crate::bytes::{Reader, Writer};
use crate::FormatError;

/// Size of the quote header.
pub const HEADER_SIZE: usize = 48;

/// `att_key_type` for ECDSA-256 with P-256, the only attestation key type Locus accepts.
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// `tee_type` of a TDX quote (0x00 is SGX).
pub const TEE_TYPE_TDX: u32 = 0x81;
/// The QE vendor id of Intel's quoting enclave.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// The quote versions Locus accepts.
pub const SUPPORTED_QUOTE_VERSIONS: [u16; 2] = [4, 5];

/// The quote header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuoteHeader {
    /// Offset 0, 2 bytes: quote version (4 or 5).
    pub version: u16,
    /// Offset 2, 2 bytes: attestation key type (2 = ECDSA P-256).
    pub att_key_type: u16,
    /// Offset 4, 4 bytes: TEE type (0x81 = TDX).
    pub tee_type: u32,
    /// Offset 8, 2 bytes: QE SVN (`reserved` in the DCAP header).
    pub qe_svn: u16,
    /// Offset 10, 2 bytes: PCE SVN.
    pub pce_svn: u16,
    /// Offset 12, 16 bytes: QE vendor id (Intel: [`INTEL_QE_VENDOR_ID`]); checked by the verifier.
    pub qe_vendor_id: [u8; 16],
    /// Offset 28, 20 bytes: opaque user data.
    pub user_data: [u8; 20],
}

impl QuoteHeader {
    /// Reads and validates the header: version in [`SUPPORTED_QUOTE_VERSIONS`] (`unsupported_version`), attestation
    /// key type 2 and TEE type 0x81 (`evidence_malformed`: the rest of the layout depends on them).
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        let version = r.u16("header.version")?;
        if !SUPPORTED_QUOTE_VERSIONS.contains(&version) {
            return Err(FormatError::UnsupportedVersion {
                what: "TDX quote version",
                version: version.into(),
            });
        }
        let att_key_type = r.u16("header.att_key_type")?;
        if att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
            return Err(FormatError::invalid(
                "header.att_key_type",
                2,
                format!("{att_key_type} (only 2, ECDSA P-256, is supported)"),
            ));
        }
        let tee_type = r.u32("header.tee_type")?;
        if tee_type != TEE_TYPE_TDX {
            return Err(FormatError::invalid(
                "header.tee_type",
                4,
                format!("{tee_type:#x} (only 0x81, TDX, is supported)"),
            ));
        }
        Ok(QuoteHeader {
            version,
            att_key_type,
            tee_type,
            qe_svn: r.u16("header.qe_svn")?,
            pce_svn: r.u16("header.pce_svn")?,
            qe_vendor_id: r.array("header.qe_vendor_id")?,
            user_data: r.array("header.user_data")?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u16(self.version)
            .u16(self.att_key_type)
            .u32(self.tee_type)
            .u16(self.qe_svn)
            .u16(self.pce_svn)
            .bytes(&self.qe_vendor_id)
            .bytes(&self.user_data);
    }
}
