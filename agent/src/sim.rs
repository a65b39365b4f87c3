//! The simulator as an attester (`--tee sim-snp|sim-tdx --sim-profile NAME`), for demos and tests. Its evidence
//! chains to the simulator's roots, which no production verifier trusts.

use std::sync::Arc;

use locus_hw::{Attester, TeeType};
use locus_simulator::intel::SimTdxAttester;
use locus_simulator::World;

use crate::error::AgentError;

/// Default profile per TEE.
pub fn default_profile(tee: TeeType) -> &'static str {
    match tee {
        TeeType::SevSnp => "snp-fra-1",
        TeeType::Tdx => "tdx-fra-1",
    }
}

/// A simulated attester for `profile` (default per TEE) of the shared default-seed world.
pub fn attester(tee: TeeType, profile: Option<&str>) -> Result<Arc<dyn Attester>, AgentError> {
    let name = profile.unwrap_or(default_profile(tee));
    let world = World::shared();
    let p = world
        .profile(name)
        .ok_or_else(|| AgentError::Config(format!("unknown simulator profile {name:?}")))?;
    if p.tee() != tee {
        return Err(AgentError::Config(format!(
            "simulator profile {name:?} is a {} platform, not {}",
            p.tee().as_str(),
            tee.as_str()
        )));
    }
    match tee {
        TeeType::SevSnp => {
            let a = world
                .snp_attester(name)
                .map_err(|e| AgentError::Config(format!("simulator profile {name:?}: {e}")))?;
            Ok(Arc::new(a))
        }
        TeeType::Tdx => {
            let tdx = p.tdx().ok_or_else(|| {
                AgentError::Config(format!("simulator profile {name:?} has no TDX platform"))
            })?;
            Ok(Arc::new(SimTdxAttester::new(world.intel(), tdx.clone())))
        }
    }
}
