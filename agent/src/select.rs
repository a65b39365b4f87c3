//! Choosing the attester: `--tee auto|sev-snp|tdx|sim-snp|sim-tdx`.
//!
//! `auto`, `sev-snp` and `tdx` probe the hardware backends of `locus_hw::backend` in the order of docs/agent.md#backends-and-their-probe-order; when nothing
//! answers, the error lists every probe and why. The simulator is used only when asked for by name, and only in
//! builds with the `simulator` feature (default on).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use locus_hw::backend::{self, BackendConfig};
use locus_hw::{Attester, TeeType};

use crate::error::AgentError;

/// The `--tee` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TeeChoice {
    /// Probe every hardware backend.
    #[default]
    Auto,
    /// SEV-SNP hardware (configfs-tsm, then /dev/sev-guest).
    SevSnp,
    /// TDX hardware (configfs-tsm, then libtdx_attest).
    Tdx,
    /// The simulator's SEV-SNP platform.
    SimSnp,
    /// The simulator's TDX platform.
    SimTdx,
}

impl TeeChoice {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            TeeChoice::Auto => "auto",
            TeeChoice::SevSnp => "sev-snp",
            TeeChoice::Tdx => "tdx",
            TeeChoice::SimSnp => "sim-snp",
            TeeChoice::SimTdx => "sim-tdx",
        }
    }
}

impl fmt::Display for TeeChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TeeChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => TeeChoice::Auto,
            "sev-snp" => TeeChoice::SevSnp,
            "tdx" => TeeChoice::Tdx,
            "sim-snp" => TeeChoice::SimSnp,
            "sim-tdx" => TeeChoice::SimTdx,
            other => {
                return Err(format!(
                    "unknown TEE {other:?}: expected auto, sev-snp, tdx, sim-snp or sim-tdx"
                ))
            }
        })
    }
}

/// Everything that decides which attester is used.
#[derive(Debug, Clone, Default)]
pub struct AttesterOptions {
    /// `--tee`.
    pub tee: TeeChoice,
    /// `--sim-profile` (simulator only; default `snp-fra-1` / `tdx-fra-1`).
    pub sim_profile: Option<String>,
    /// Where the hardware backends look.
    pub backend: BackendConfig,
}

/// Open the attester `opts` asks for.
pub fn open_attester(opts: &AttesterOptions) -> Result<Arc<dyn Attester>, AgentError> {
    if opts.sim_profile.is_some() && !matches!(opts.tee, TeeChoice::SimSnp | TeeChoice::SimTdx) {
        return Err(AgentError::Config(
            "--sim-profile applies only to --tee sim-snp or sim-tdx".into(),
        ));
    }
    let wanted = match opts.tee {
        TeeChoice::Auto => None,
        TeeChoice::SevSnp => Some(TeeType::SevSnp),
        TeeChoice::Tdx => Some(TeeType::Tdx),
        TeeChoice::SimSnp => return simulated(TeeType::SevSnp, opts.sim_profile.as_deref()),
        TeeChoice::SimTdx => return simulated(TeeType::Tdx, opts.sim_profile.as_deref()),
    };
    Ok(Arc::from(backend::open(wanted, &opts.backend)?))
}

#[cfg(feature = "simulator")]
fn simulated(tee: TeeType, profile: Option<&str>) -> Result<Arc<dyn Attester>, AgentError> {
    crate::sim::attester(tee, profile)
}

#[cfg(not(feature = "simulator"))]
fn simulated(_tee: TeeType, _profile: Option<&str>) -> Result<Arc<dyn Attester>, AgentError> {
    Err(AgentError::Config(
        "this locus-agent was built without the simulator feature".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tee_flag_values_round_trip_and_unknown_is_refused() {
        for c in [
            TeeChoice::Auto,
            TeeChoice::SevSnp,
            TeeChoice::Tdx,
            TeeChoice::SimSnp,
            TeeChoice::SimTdx,
        ] {
            assert_eq!(c.as_str().parse::<TeeChoice>(), Ok(c));
        }
        assert!("sev".parse::<TeeChoice>().is_err());
    }

    #[test]
    fn sim_profile_without_a_simulated_tee_is_a_config_error() {
        let opts = AttesterOptions {
            tee: TeeChoice::Tdx,
            sim_profile: Some("tdx-fra-1".into()),
            ..AttesterOptions::default()
        };
        assert_eq!(
            open_attester(&opts).err().map(|e| e.code().to_string()),
            Some("config_invalid".into())
        );
    }
}
