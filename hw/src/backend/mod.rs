//! In-guest attester backends: configfs-tsm, `/dev/sev-guest`, `libtdx_attest` (FFI), chosen by `auto` probing.
//!
//! [`open`] tries, in the order of docs/agent.md#backends-and-their-probe-order, configfs-tsm (SNP and TDX), `/dev/sev-guest` (SNP) and `libtdx_attest`
//! (TDX), skipping the ones that cannot serve the requested TEE, and returns the first that answers. When none does,
//! the [`ProbeError`] lists every probe and why it failed. The simulator is not a backend here: the agent offers it
//! only when asked for by name (`--tee sim-snp|sim-tdx`).

pub mod configfs_tsm;
pub mod sev_guest;
pub mod tdx_attest;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::attester::{AttestError, Attester};
use crate::TeeType;

use configfs_tsm::{ConfigfsTsmAttester, RealTsmFs, TsmFs, TsmOptions};
use sev_guest::{SevGuestAttester, SevGuestCerts};
use tdx_attest::TdxAttestAttester;

/// Where each backend looks; every field has the production default.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// The configfs-tsm file system (default: the real tree at `/sys/kernel/config/tsm/report`).
    pub tsm: Arc<dyn TsmFs>,
    /// SNP VMPL for configfs-tsm `privlevel` (0).
    pub privlevel: u32,
    /// Whether `/dev/sev-guest` should fetch the host's certificate table (see [`sev_guest`]).
    pub sev_guest_certs: SevGuestCerts,
    /// Skip `/dev/sev-guest` (tests on machines that might have one).
    pub sev_guest_enabled: bool,
    /// `libtdx_attest` path; `None` tries `libtdx_attest.so.1` then `libtdx_attest.so`.
    pub tdx_attest_library: Option<PathBuf>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            tsm: Arc::new(RealTsmFs::default()),
            privlevel: 0,
            sev_guest_certs: SevGuestCerts::None,
            sev_guest_enabled: true,
            tdx_attest_library: None,
        }
    }
}

/// One probe and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Backend name (`configfs-tsm`, `sev-guest`, `libtdx_attest`).
    pub backend: &'static str,
    /// Why it could not be used.
    pub reason: String,
}

/// No backend could serve the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    /// The TEE asked for, `None` for `auto`.
    pub wanted: Option<TeeType>,
    /// Every probe, in order.
    pub probes: Vec<Probe>,
}

impl ProbeError {
    /// Always `attester_unavailable`.
    pub fn code(&self) -> &'static str {
        "attester_unavailable"
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.wanted {
            Some(TeeType::SevSnp) => write!(f, "no SEV-SNP attester found; probed ")?,
            Some(TeeType::Tdx) => write!(f, "no TDX attester found; probed ")?,
            None => write!(f, "no attester found; probed ")?,
        }
        for (i, p) in self.probes.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{}: {}", p.backend, p.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for ProbeError {}

impl From<ProbeError> for AttestError {
    fn from(e: ProbeError) -> Self {
        AttestError::Unavailable(e.to_string())
    }
}

/// The probe's reason without the generic "attester unavailable" prefix (the list says that already).
fn reason(e: AttestError) -> String {
    match e {
        AttestError::Unavailable(m) => m,
        other => other.to_string(),
    }
}

/// Open the first backend that can serve `wanted` (`None`: any TEE), in the order of docs/agent.md#backends-and-their-probe-order.
pub fn open(wanted: Option<TeeType>, cfg: &BackendConfig) -> Result<Box<dyn Attester>, ProbeError> {
    let mut probes = Vec::new();

    let tsm_opts = TsmOptions {
        expect: wanted,
        privlevel: cfg.privlevel,
        ..TsmOptions::default()
    };
    match ConfigfsTsmAttester::open(cfg.tsm.clone(), tsm_opts) {
        Ok(a) => return Ok(Box::new(a)),
        Err(e) => probes.push(Probe {
            backend: "configfs-tsm",
            reason: reason(e),
        }),
    }

    if wanted != Some(TeeType::Tdx) {
        if cfg.sev_guest_enabled {
            match SevGuestAttester::open(cfg.sev_guest_certs) {
                Ok(a) => return Ok(Box::new(a)),
                Err(e) => probes.push(Probe {
                    backend: "sev-guest",
                    reason: reason(e),
                }),
            }
        } else {
            probes.push(Probe {
                backend: "sev-guest",
                reason: "disabled by configuration".to_string(),
            });
        }
    }

    if wanted != Some(TeeType::SevSnp) {
        match TdxAttestAttester::load(cfg.tdx_attest_library.as_deref()) {
            // Loading proves only that the library is installed; a TD report needs the TDX guest device.
            Ok(a) => match a.library().get_report(&[0u8; 64]) {
                Ok(_) => return Ok(Box::new(a)),
                Err(e) => probes.push(Probe {
                    backend: "libtdx_attest",
                    reason: format!(
                        "{} loaded, but no TD report: {e}",
                        a.library().path().display()
                    ),
                }),
            },
            Err(e) => probes.push(Probe {
                backend: "libtdx_attest",
                reason: e.to_string(),
            }),
        }
    }

    Err(ProbeError { wanted, probes })
}
