//! The TD report body of a quote (Intel DCAP `sgx_quote_4.h`, `sgx_quote_5.h`): TD 1.0 (584 bytes) and TD 1.5 (648 bytes).

use crate::bytes::{Reader, Writer};
use crate::FormatError;

/// Size of a TD report 1.0 body.
pub const TD_REPORT10_SIZE: usize = 584;
/// Size of a TD report 1.5 body (TD 1.0 + TEE_TCB_SVN2 + MRSERVICETD).
pub const TD_REPORT15_SIZE: usize = 648;
const _: () = assert!(16 + 48 + 48 + 8 + 8 + 8 + 4 * 48 + 4 * 48 + 64 == TD_REPORT10_SIZE);
const _: () = assert!(TD_REPORT10_SIZE + 16 + 48 == TD_REPORT15_SIZE);

/// A TD report body. The two TD 1.5 fields are `Some` exactly when the body is TD 1.5.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TdReport {
    /// Body offset 0, 16 bytes: TEE_TCB_SVN (byte 0 module SVN, byte 1 module major version).
    pub tee_tcb_svn: [u8; 16],
    /// Body offset 16, 48 bytes: MRSEAM.
    pub mr_seam: [u8; 48],
    /// Body offset 64, 48 bytes: MRSIGNERSEAM.
    pub mr_signer_seam: [u8; 48],
    /// Body offset 112, 8 bytes: SEAM_ATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// Body offset 120, 8 bytes: TD_ATTRIBUTES (bit 0 DEBUG).
    pub td_attributes: [u8; 8],
    /// Body offset 128, 8 bytes: XFAM.
    pub xfam: [u8; 8],
    /// Body offset 136, 48 bytes: MRTD.
    pub mr_td: [u8; 48],
    /// Body offset 184, 48 bytes: MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// Body offset 232, 48 bytes: MROWNER.
    pub mr_owner: [u8; 48],
    /// Body offset 280, 48 bytes: MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// Body offset 328, 4 × 48 bytes: RTMR0..RTMR3.
    pub rtmr: [[u8; 48]; 4],
    /// Body offset 520, 64 bytes: REPORTDATA.
    pub report_data: [u8; 64],
    /// Body offset 584, 16 bytes (TD 1.5 only): TEE_TCB_SVN2, the current TCB after a TD-preserving update.
    pub tee_tcb_svn2: Option<[u8; 16]>,
    /// Body offset 600, 48 bytes (TD 1.5 only): MRSERVICETD.
    pub mr_service_td: Option<[u8; 48]>,
}

impl TdReport {
    /// TD_ATTRIBUTES bit 0: the TD is debuggable.
    pub fn debug(&self) -> bool {
        self.td_attributes[0] & 1 != 0
    }

    /// TD_ATTRIBUTES as a little-endian u64 (see [`crate::tdx::TdAttributes`]).
    pub fn td_attributes_u64(&self) -> u64 {
        u64::from_le_bytes(self.td_attributes)
    }

    /// TD_ATTRIBUTES with named bits.
    pub fn attributes(&self) -> super::TdAttributes {
        super::TdAttributes::from(self.td_attributes)
    }

    /// Whether this is a TD 1.5 body.
    pub fn is_td15(&self) -> bool {
        self.tee_tcb_svn2.is_some() || self.mr_service_td.is_some()
    }

    /// Encoded size of this body.
    pub fn size(&self) -> usize {
        if self.is_td15() {
            TD_REPORT15_SIZE
        } else {
            TD_REPORT10_SIZE
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>, td15: bool) -> Result<Self, FormatError> {
        let mut report = TdReport {
            tee_tcb_svn: r.array("body.tee_tcb_svn")?,
            mr_seam: r.array("body.mr_seam")?,
            mr_signer_seam: r.array("body.mr_signer_seam")?,
            seam_attributes: r.array("body.seam_attributes")?,
            td_attributes: r.array("body.td_attributes")?,
            xfam: r.array("body.xfam")?,
            mr_td: r.array("body.mr_td")?,
            mr_config_id: r.array("body.mr_config_id")?,
            mr_owner: r.array("body.mr_owner")?,
            mr_owner_config: r.array("body.mr_owner_config")?,
            rtmr: [
                r.array("body.rtmr0")?,
                r.array("body.rtmr1")?,
                r.array("body.rtmr2")?,
                r.array("body.rtmr3")?,
            ],
            report_data: r.array("body.report_data")?,
            tee_tcb_svn2: None,
            mr_service_td: None,
        };
        if td15 {
            report.tee_tcb_svn2 = Some(r.array("body.tee_tcb_svn2")?);
            report.mr_service_td = Some(r.array("body.mr_service_td")?);
        }
        Ok(report)
    }

    /// Writes the body; a TD 1.5 field left `None` beside a present one is written as zeros.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.tee_tcb_svn)
            .bytes(&self.mr_seam)
            .bytes(&self.mr_signer_seam)
            .bytes(&self.seam_attributes)
            .bytes(&self.td_attributes)
            .bytes(&self.xfam)
            .bytes(&self.mr_td)
            .bytes(&self.mr_config_id)
            .bytes(&self.mr_owner)
            .bytes(&self.mr_owner_config);
        for rtmr in &self.rtmr {
            w.bytes(rtmr);
        }
        w.bytes(&self.report_data);
        if self.is_td15() {
            w.bytes(&self.tee_tcb_svn2.unwrap_or([0; 16]))
                .bytes(&self.mr_service_td.unwrap_or([0; 48]));
        }
    }
}
