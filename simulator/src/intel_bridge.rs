//! The seam between the common simulator (world, CLI, server) and the Intel side in [`crate::intel`]: the few calls
//! the CLI and server make into it, in one place.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;

use crate::error::SimError;
use crate::fault::{Fault, Faults};
use crate::intel::server::PcsState;
use crate::intel::{CollateralWindow, SimTdxAttester, TdxCollateralFiles, TdxFault};
use crate::server::SimState;
use crate::world::World;

/// Names of the files [`crate::intel::TdxCollateralFiles::write_dir`] writes.
const COLLATERAL_FILES: [&str; 10] = [
    "tcb_info.json",
    "tcb_info_issuer_chain.pem",
    "qe_identity.json",
    "qe_identity_issuer_chain.pem",
    "pck_crl.der",
    "pck_crl_issuer_chain.pem",
    "root_ca_crl.der",
    "intel_sgx_root_ca.der",
    "intel_sgx_root_ca.pem",
    "collateral_dcap_qvl.json",
];

/// Write the current TDX collateral (vectors layout) into `dir`.
pub fn export_tdx_collateral(world: &World, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    write_tdx_collateral(world, CollateralWindow::Current, dir)
}

/// Write the TDX collateral of a validity window into `dir`.
pub fn write_tdx_collateral(
    world: &World,
    window: CollateralWindow,
    dir: &Path,
) -> Result<Vec<PathBuf>, SimError> {
    write_collateral(&world.intel().collateral(window), dir)
}

/// The Intel PCS routes, mounted by [`crate::server::router`] (request counting, 429s and delays are applied by the
/// server's middleware around them). `stale-collateral` serves TCB info and QE identity of the stale window.
pub fn pcs_routes(world: &World, faults: &Faults) -> Router<Arc<SimState>> {
    let window = if faults.has(Fault::StaleCollateral) {
        CollateralWindow::Stale
    } else {
        CollateralWindow::Current
    };
    let state = Arc::new(PcsState::new(&world.intel(), window));
    crate::intel::server::routes(state)
}

/// The Intel attester's spelling of a simulator fault.
pub fn tdx_fault(fault: Fault) -> TdxFault {
    match fault {
        Fault::BadSignature => TdxFault::BadSignature,
        Fault::ForeignChain => TdxFault::ForeignChain,
        Fault::ExpiredCertificate => TdxFault::ExpiredPck,
        Fault::RevokedPck => TdxFault::RevokedPck,
        Fault::StaleCollateral => TdxFault::StaleCollateral,
        Fault::Debug => TdxFault::Debug,
        Fault::LowTcb => TdxFault::LowTcb,
    }
}

/// A TDX attester for a built-in profile with faults.
pub fn tdx_attester(
    world: &World,
    profile: &str,
    faults: &[Fault],
) -> Result<SimTdxAttester, SimError> {
    tdx_attester_with_mr_td(world, profile, faults, None)
}

/// A TDX attester for a built-in profile with faults, its TD launched with `mr_td` instead of the demo image's MRTD
/// when given (a reference value computed from a firmware image, e.g. by `locus-verifier measure tdx`).
pub fn tdx_attester_with_mr_td(
    world: &World,
    profile: &str,
    faults: &[Fault],
    mr_td: Option<[u8; 48]>,
) -> Result<SimTdxAttester, SimError> {
    let p = world.require_profile(profile)?;
    let mut tdx = p
        .tdx()
        .ok_or_else(|| SimError::WrongTee {
            name: profile.to_string(),
            tee: "sev-snp",
        })?
        .clone();
    if let Some(m) = mr_td {
        tdx.mr_td = m;
    }
    let mut attester = world.intel().attester(&tdx);
    for f in faults {
        attester = attester.with_fault(tdx_fault(*f));
    }
    Ok(attester)
}

/// A TDX quote for a built-in profile with faults, and the collateral that goes with it (stale window under
/// `StaleCollateral`).
pub fn tdx_quote(
    world: &World,
    profile: &str,
    report_data: &[u8; 64],
    faults: &[Fault],
) -> Result<(Vec<u8>, TdxCollateralFiles), SimError> {
    tdx_quote_with_mr_td(world, profile, report_data, faults, None)
}

/// [`tdx_quote`] from a TD launched with `mr_td` when given (see [`tdx_attester_with_mr_td`]).
pub fn tdx_quote_with_mr_td(
    world: &World,
    profile: &str,
    report_data: &[u8; 64],
    faults: &[Fault],
    mr_td: Option<[u8; 48]>,
) -> Result<(Vec<u8>, TdxCollateralFiles), SimError> {
    let attester = tdx_attester_with_mr_td(world, profile, faults, mr_td)?;
    Ok((attester.quote(report_data), attester.collateral()))
}

/// Write collateral files into `dir` (vectors layout).
pub fn write_collateral(files: &TdxCollateralFiles, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    files.write_dir(dir).map_err(|e| SimError::io(dir, e))?;
    Ok(COLLATERAL_FILES.iter().map(|f| dir.join(f)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_td_launched_with_a_given_mr_td_reports_it_and_otherwise_the_profiles() {
        let world = World::shared();
        let mr_td = [0x42; 48];
        // MRTD sits at quote offset 184 (48-byte header + TD report body offset 136).
        let (quote, _) =
            tdx_quote_with_mr_td(&world, "tdx-fra-1", &[0; 64], &[], Some(mr_td)).expect("quote");
        assert_eq!(&quote[184..232], &mr_td);
        let (quote, _) = tdx_quote(&world, "tdx-fra-1", &[0; 64], &[]).expect("quote");
        let profile_mr_td = world
            .require_profile("tdx-fra-1")
            .ok()
            .and_then(|p| p.tdx())
            .map(|t| t.mr_td)
            .expect("TDX profile");
        assert_eq!(&quote[184..232], &profile_mr_td);
    }

    #[test]
    fn an_mr_td_for_an_snp_profile_is_wrong_tee() {
        let err = tdx_attester_with_mr_td(&World::shared(), "snp-fra-1", &[], Some([0; 48]))
            .expect_err("SNP profile");
        assert!(matches!(err, SimError::WrongTee { .. }), "{err}");
    }
}
