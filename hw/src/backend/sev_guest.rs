//! `/dev/sev-guest` through the `sev` crate, which performs the Linux `sev-guest` driver's ioctls; this module has no
//! `unsafe` of its own.
//!
//! Always VMPL 0, passed explicitly: the crate's default request asks for VMPL 1.
//!
//! Certificates: `Firmware::get_ext_report` hands the host-supplied certificate table to the crate's `unsafe`
//! `parse_table`, which follows the host's offsets and lengths without bounds. The host is outside the trust
//! boundary, and an unbounded read in the agent's address space could copy arbitrary agent memory — the workload key
//! included — into a "certificate" that is then sent to the verifier. So by default this backend asks for the plain
//! report (`get_report`) and lets the verifier source the VCEK itself (from AMD KDS); the extended report is
//! available only through the explicitly named [`SevGuestCerts::DangerFromHostViaSevCrate`]. configfs-tsm (tried
//! first by `auto`) delivers the same table as `auxblob`, which we parse bounds-checked.

use std::path::Path;

use sev::error::{UserApiError, VmmError};
use sev::firmware::guest::Firmware;
use sev::firmware::host::CertType;

use crate::attester::{AttestError, Attester, Evidence};
use crate::TeeType;

/// The device the `sev` crate opens (fixed in the crate).
pub const DEVICE: &str = "/dev/sev-guest";

/// The VMPL every request asks for.
pub const VMPL: u32 = 0;

/// Whether to ask the host for its certificate table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SevGuestCerts {
    /// `get_report`: the report only (default).
    #[default]
    None,
    /// `get_ext_report`: the host's table, parsed by the `sev` crate's unbounded parser (see the module docs).
    DangerFromHostViaSevCrate,
}

/// The `/dev/sev-guest` attester.
#[derive(Debug)]
pub struct SevGuestAttester {
    certs: SevGuestCerts,
}

fn map_error(e: UserApiError) -> AttestError {
    match &e {
        UserApiError::VmmError(VmmError::RateLimitRetryRequest) => {
            AttestError::Busy(format!("{DEVICE}: host rate-limited the request: {e}"))
        }
        UserApiError::IOError(io)
            if io.raw_os_error() == Some(16) || io.raw_os_error() == Some(11) =>
        {
            AttestError::Busy(format!("{DEVICE}: {e}"))
        }
        _ => AttestError::Failed(format!("{DEVICE}: {e}")),
    }
}

fn open_device() -> Result<Firmware, AttestError> {
    Firmware::open().map_err(|e| AttestError::Unavailable(format!("{DEVICE}: {e}")))
}

impl SevGuestAttester {
    /// Check the device is there and can be opened (it is closed again).
    pub fn open(certs: SevGuestCerts) -> Result<Self, AttestError> {
        if !Path::new(DEVICE).exists() {
            return Err(AttestError::Unavailable(format!("{DEVICE}: not present")));
        }
        drop(open_device()?);
        Ok(Self { certs })
    }
}

impl Attester for SevGuestAttester {
    fn name(&self) -> &str {
        "sev-guest"
    }

    fn tee(&self) -> TeeType {
        TeeType::SevSnp
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        let mut fw = open_device()?;
        let (raw, certs) = match self.certs {
            SevGuestCerts::None => (
                fw.get_report(None, Some(*report_data), Some(VMPL))
                    .map_err(map_error)?,
                Vec::new(),
            ),
            SevGuestCerts::DangerFromHostViaSevCrate => {
                let (raw, table) = fw
                    .get_ext_report(None, Some(*report_data), Some(VMPL))
                    .map_err(map_error)?;
                let mut ranked: Vec<(u8, Vec<u8>)> = table
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|e| {
                        let rank = match e.cert_type {
                            CertType::VCEK | CertType::VLEK => 0,
                            CertType::ASK => 1,
                            CertType::ARK => 2,
                            _ => return None,
                        };
                        Some((rank, e.data))
                    })
                    .collect();
                ranked.sort_by_key(|(r, _)| *r);
                (raw, ranked.into_iter().map(|(_, d)| d).collect())
            }
        };
        if TeeType::detect(&raw) != Some(TeeType::SevSnp) {
            return Err(AttestError::Failed(format!(
                "{DEVICE}: returned {} bytes that are not an SNP report",
                raw.len()
            )));
        }
        Ok(Evidence {
            tee: TeeType::SevSnp,
            raw,
            certs,
        })
    }
}
