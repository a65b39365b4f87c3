//! The SGX enclave report body (384 bytes) that the quoting enclave signs with the PCK key (`sgx_report_body_t` in Intel DCAP `sgx_quote_4.h`).

use crate::bytes::{Reader, Writer};
use crate::FormatError;

/// Size of an enclave report body.
pub const ENCLAVE_REPORT_SIZE: usize = 384;
const _: () =
    assert!(16 + 4 + 28 + 16 + 32 + 32 + 32 + 96 + 2 + 2 + 60 + 64 == ENCLAVE_REPORT_SIZE);

/// The QE report. Reserved regions are kept so the encoding mirrors the input.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnclaveReport {
    /// Offset 0, 16 bytes: CPUSVN.
    pub cpu_svn: [u8; 16],
    /// Offset 16, 4 bytes: MISCSELECT.
    pub misc_select: u32,
    /// Offset 20, 28 bytes: reserved.
    pub reserved1: [u8; 28],
    /// Offset 48, 16 bytes: ATTRIBUTES.
    pub attributes: [u8; 16],
    /// Offset 64, 32 bytes: MRENCLAVE.
    pub mr_enclave: [u8; 32],
    /// Offset 96, 32 bytes: reserved.
    pub reserved2: [u8; 32],
    /// Offset 128, 32 bytes: MRSIGNER.
    pub mr_signer: [u8; 32],
    /// Offset 160, 96 bytes: reserved.
    pub reserved3: [u8; 96],
    /// Offset 256, 2 bytes: ISVPRODID.
    pub isv_prod_id: u16,
    /// Offset 258, 2 bytes: ISVSVN.
    pub isv_svn: u16,
    /// Offset 260, 60 bytes: reserved.
    pub reserved4: [u8; 60],
    /// Offset 320, 64 bytes: REPORTDATA (SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes).
    pub report_data: [u8; 64],
}

impl EnclaveReport {
    /// Parses exactly [`ENCLAVE_REPORT_SIZE`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() != ENCLAVE_REPORT_SIZE {
            return Err(FormatError::WrongSize {
                what: "SGX enclave report",
                expected: ENCLAVE_REPORT_SIZE,
                actual: bytes.len(),
            });
        }
        Self::read(&mut Reader::new(bytes))
    }

    /// Serializes to [`ENCLAVE_REPORT_SIZE`] bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(ENCLAVE_REPORT_SIZE);
        self.write(&mut w);
        w.into_vec()
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, FormatError> {
        Ok(EnclaveReport {
            cpu_svn: r.array("qe_report.cpu_svn")?,
            misc_select: r.u32("qe_report.misc_select")?,
            reserved1: r.array("qe_report.reserved1")?,
            attributes: r.array("qe_report.attributes")?,
            mr_enclave: r.array("qe_report.mr_enclave")?,
            reserved2: r.array("qe_report.reserved2")?,
            mr_signer: r.array("qe_report.mr_signer")?,
            reserved3: r.array("qe_report.reserved3")?,
            isv_prod_id: r.u16("qe_report.isv_prod_id")?,
            isv_svn: r.u16("qe_report.isv_svn")?,
            reserved4: r.array("qe_report.reserved4")?,
            report_data: r.array("qe_report.report_data")?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.cpu_svn)
            .u32(self.misc_select)
            .bytes(&self.reserved1)
            .bytes(&self.attributes)
            .bytes(&self.mr_enclave)
            .bytes(&self.reserved2)
            .bytes(&self.mr_signer)
            .bytes(&self.reserved3)
            .u16(self.isv_prod_id)
            .u16(self.isv_svn)
            .bytes(&self.reserved4)
            .bytes(&self.report_data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_sgx_report_body() {
        let raw: Vec<u8> = (0..ENCLAVE_REPORT_SIZE).map(|i| i as u8).collect();
        let Ok(rep) = EnclaveReport::parse(&raw) else {
            panic!("384 bytes must parse")
        };
        assert_eq!(rep.cpu_svn[0], 0);
        assert_eq!(rep.misc_select, u32::from_le_bytes([16, 17, 18, 19]));
        assert_eq!(rep.attributes[0], 48);
        assert_eq!(rep.mr_enclave[0], 64);
        assert_eq!(rep.mr_signer[0], 128);
        assert_eq!(rep.isv_prod_id, u16::from_le_bytes([0, 1])); // 256 % 256 = 0
        assert_eq!(rep.isv_svn, u16::from_le_bytes([2, 3]));
        assert_eq!(rep.report_data[0], 64); // 320 % 256
        assert_eq!(rep.to_bytes(), raw);
    }

    #[test]
    fn wrong_size_is_evidence_malformed() {
        for len in [0, 383, 385] {
            let err = EnclaveReport::parse(&vec![0; len]).err();
            assert_eq!(err.map(|e| e.code()), Some("evidence_malformed"));
        }
    }
}
