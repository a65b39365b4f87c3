//! Simulated Intel world: root CA, PCK platform CA, PCK leaves with SGX extensions, TCB signing, TCB info, QE identity,
//! CRLs, TDX attester, PCS routes.
//!
//! Flow: [`IntelPki::new`]`(seed)` derives every key from the seed and issues the hierarchy (root → PCK Platform CA →
//! one PCK per platform; root → TCB Signing), the CRLs, and the built-in [`TdxProfile`]s. [`IntelPki::collateral`]
//! signs TCB info and QE identity as Intel PCS does and bundles them as [`TdxCollateralFiles`] (vectors layout).
//! [`SimTdxAttester`] (from [`IntelPki::attester`]) builds quotes v4/v5 for a profile, with [`TdxFault`]s injected
//! on demand; [`server::routes`] serves the collateral on the Intel PCS v4 paths. Independent verifiers (`dcap-qvl`
//! given [`IntelPki::root_der`]) accept the simulator's quotes with its collateral.
//!
//! Nothing here is Intel's: the root is "SIM Intel SGX Root CA" of organisation "Locus Simulator (not Intel
//! Corporation)", and its key derives from the seed.

mod asn1;
pub mod attester;
mod certs;
pub mod collateral;
mod keys;
pub mod pki;
pub mod profile;
pub mod server;

pub use attester::{SimTdxAttester, TdxFault};
pub use certs::{OID_SGX_EXTENSION, SIM_ORGANIZATION};
pub use collateral::{
    CollateralWindow, QeValues, SignedJson, TdxCollateralFiles, SIM_VERIFICATION_TIME_UNIX,
};
pub use pki::{CrlIssuer, IntelPki, PckVariant, SIM_ROOT_CA_CN};
pub use profile::{TdxProfile, TdxTcbExpectation, BUILTIN_TDX_PROFILES};
