//! The simulated vendor world: every key, certificate and platform, deterministic from one seed.
//!
//! The RSA CA hierarchies are built lazily per product (RSA-4096 keys are expensive: the default seed's are embedded,
//! see [`crate::amd::embedded`]), VCEKs are issued on demand and cached. Tests share one world through
//! [`World::shared`] so the keys are loaded once per test binary.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use locus_hw::snp::{Product, TcbVersion};

use crate::amd::attester::SimSnpAttester;
use crate::amd::pki::{self, Hierarchy, ProductPki, VcekSpec, VlekSpec};
use crate::error::SimError;
use crate::profile::{self, Profile, SnpProfile};
use crate::x509;

/// The fixed default seed (`--seed` overrides it); its RSA keys are committed under `simulator/keys/seed-2026/`.
pub const DEFAULT_SEED: u64 = crate::amd::embedded::EMBEDDED_SEED;

/// Most VCEKs/VLEKs kept in memory.
const VCEK_CACHE_MAX: usize = 1024;

/// Which validity a VCEK gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VcekValidity {
    /// 2025-01-01 .. 2032-01-01 (7 years, as AMD's).
    Current,
    /// 2016-01-01 .. 2023-01-01 (the `ExpiredCertificate` fault).
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct VcekId {
    hierarchy: Hierarchy,
    product: Product,
    /// The chip (VCEK) or all zeros (VLEK).
    chip_id: [u8; 64],
    /// The cloud provider (VLEK) or `None` (VCEK).
    csp_id: Option<String>,
    tcb: u64,
    validity: VcekValidity,
}

/// A simulated vendor world.
pub struct World {
    /// The seed everything derives from.
    seed: u64,
    /// Built-in platforms (SNP then TDX).
    profiles: Vec<Profile>,
    /// Genuine CA hierarchies, one per product, built on first use (index = position in `Product::ALL`).
    amd_genuine: [OnceLock<Result<Arc<ProductPki>, String>>; 3],
    /// Foreign look-alike hierarchies for the `ForeignChain` fault.
    amd_foreign: [OnceLock<Result<Arc<ProductPki>, String>>; 3],
    /// Issued VCEKs: issuing costs an RSA-4096 signature, and KDS answers the same certificate every time.
    vceks: Mutex<HashMap<VcekId, Arc<Vec<u8>>>>,
    /// The Intel hierarchy, collateral and TDX platforms, built on first use.
    intel: OnceLock<Arc<crate::intel::IntelPki>>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("seed", &self.seed)
            .field("profiles", &self.profiles.len())
            .finish()
    }
}

fn product_index(p: Product) -> usize {
    match p {
        Product::Milan => 0,
        Product::Genoa => 1,
        Product::Turin => 2,
    }
}

impl World {
    /// A world for `seed`. Cheap: PKI is built lazily.
    pub fn new(seed: u64) -> World {
        let mut profiles = profile::builtin_snp_profiles(seed);
        profiles.extend(profile::builtin_tdx_profiles(seed));
        World {
            seed,
            profiles,
            amd_genuine: Default::default(),
            amd_foreign: Default::default(),
            vceks: Mutex::new(HashMap::new()),
            intel: OnceLock::new(),
        }
    }

    /// The fixed default seed.
    pub fn default_seed() -> u64 {
        DEFAULT_SEED
    }

    /// The default-seed world, built once per process (for tests and the agent's simulator backend).
    pub fn shared() -> Arc<World> {
        static SHARED: OnceLock<Arc<World>> = OnceLock::new();
        SHARED
            .get_or_init(|| Arc::new(World::new(DEFAULT_SEED)))
            .clone()
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Every built-in profile.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    /// A built-in profile by name.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// A built-in profile by name, or `UnknownProfile`.
    pub fn require_profile(&self, name: &str) -> Result<&Profile, SimError> {
        self.profile(name)
            .ok_or_else(|| SimError::UnknownProfile(name.to_string()))
    }

    /// The simulated Intel world (root CA, PCK CAs, TCB signing, collateral, TDX platforms).
    pub fn intel(&self) -> Arc<crate::intel::IntelPki> {
        self.intel
            .get_or_init(|| Arc::new(crate::intel::IntelPki::new(self.seed)))
            .clone()
    }

    /// The simulated Intel SGX root CA, DER.
    pub fn intel_root_der(&self) -> Vec<u8> {
        self.intel().root_der().to_vec()
    }

    /// The CA hierarchy of `product` (genuine or foreign), built on first use.
    pub fn amd_pki(
        &self,
        product: Product,
        hierarchy: Hierarchy,
    ) -> Result<Arc<ProductPki>, SimError> {
        let slot = match hierarchy {
            Hierarchy::Genuine => &self.amd_genuine[product_index(product)],
            Hierarchy::Foreign => &self.amd_foreign[product_index(product)],
        };
        let built = slot.get_or_init(|| {
            let seed = self.seed;
            let ark =
                crate::amd::embedded::rsa_key(seed, &pki::rsa_label(product, hierarchy, "ark"))
                    .map_err(|e| e.to_string())?;
            let ask =
                crate::amd::embedded::rsa_key(seed, &pki::rsa_label(product, hierarchy, "ask"))
                    .map_err(|e| e.to_string())?;
            let asvk =
                crate::amd::embedded::rsa_key(seed, &pki::rsa_label(product, hierarchy, "asvk"))
                    .map_err(|e| e.to_string())?;
            ProductPki::new(seed, product, hierarchy, ark, ask, asvk)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        built
            .clone()
            .map_err(|e| SimError::Invalid(format!("building the {product:?} AMD PKI: {e}")))
    }

    /// The simulated ARK of `product`, DER.
    pub fn amd_ark_der(&self, product: Product) -> Result<Vec<u8>, SimError> {
        Ok(self.amd_pki(product, Hierarchy::Genuine)?.ark_der.clone())
    }

    /// The simulated ASK of `product`, DER.
    pub fn amd_ask_der(&self, product: Product) -> Result<Vec<u8>, SimError> {
        Ok(self.amd_pki(product, Hierarchy::Genuine)?.ask_der.clone())
    }

    /// The ASK CRL of `product` (signed by the ARK), DER.
    pub fn amd_crl_der(&self, product: Product) -> Result<Vec<u8>, SimError> {
        Ok(self.amd_pki(product, Hierarchy::Genuine)?.crl_der.clone())
    }

    /// KDS `cert_chain`: PEM of the ASK, then the ARK.
    pub fn amd_cert_chain_pem(&self, product: Product) -> Result<String, SimError> {
        let pki = self.amd_pki(product, Hierarchy::Genuine)?;
        Ok(format!(
            "{}{}",
            x509::cert_pem(&pki.ask_der),
            x509::cert_pem(&pki.ark_der)
        ))
    }

    /// The VCEK of a chip at a TCB (DER), issued by the given hierarchy, cached.
    pub fn vcek_der_for(
        &self,
        hierarchy: Hierarchy,
        product: Product,
        chip_id: &[u8; 64],
        tcb: &TcbVersion,
        validity: VcekValidity,
    ) -> Result<Arc<Vec<u8>>, SimError> {
        let mut chip = *chip_id;
        chip[pki::hwid_len(product)..].fill(0);
        let id = VcekId {
            hierarchy,
            product,
            chip_id: chip,
            csp_id: None,
            tcb: tcb.to_raw(product),
            validity,
        };
        if let Some(hit) = self
            .vceks
            .lock()
            .map_err(|_| SimError::Invalid("VCEK cache poisoned".into()))?
            .get(&id)
        {
            return Ok(hit.clone());
        }
        let pki = self.amd_pki(product, hierarchy)?;
        let (not_before, not_after) = match validity {
            VcekValidity::Current => (pki::VCEK_NOT_BEFORE, pki::VCEK_NOT_AFTER),
            VcekValidity::Expired => (pki::EXPIRED_NOT_BEFORE, pki::EXPIRED_NOT_AFTER),
        };
        let der = Arc::new(pki.vcek_der(&VcekSpec {
            chip_id: &chip,
            tcb: *tcb,
            not_before,
            not_after,
        })?);
        self.remember(id, der.clone())?;
        Ok(der)
    }

    /// The VLEK of a cloud provider at a TCB (DER), issued by the given hierarchy's ASVK, cached.
    pub fn vlek_der_for(
        &self,
        hierarchy: Hierarchy,
        product: Product,
        csp_id: &str,
        tcb: &TcbVersion,
        validity: VcekValidity,
    ) -> Result<Arc<Vec<u8>>, SimError> {
        let id = VcekId {
            hierarchy,
            product,
            chip_id: [0; 64],
            csp_id: Some(csp_id.to_string()),
            tcb: tcb.to_raw(product),
            validity,
        };
        let poisoned = |_| SimError::Invalid("VLEK cache poisoned".into());
        if let Some(hit) = self.vceks.lock().map_err(poisoned)?.get(&id) {
            return Ok(hit.clone());
        }
        let pki = self.amd_pki(product, hierarchy)?;
        let (not_before, not_after) = match validity {
            VcekValidity::Current => (pki::VCEK_NOT_BEFORE, pki::VCEK_NOT_AFTER),
            VcekValidity::Expired => (pki::EXPIRED_NOT_BEFORE, pki::EXPIRED_NOT_AFTER),
        };
        let der = Arc::new(pki.vlek_der(&VlekSpec {
            csp_id,
            tcb: *tcb,
            not_before,
            not_after,
        })?);
        self.remember(id, der.clone())?;
        Ok(der)
    }

    /// The simulated ASVK of `product`, DER.
    pub fn amd_asvk_der(&self, product: Product) -> Result<Vec<u8>, SimError> {
        Ok(self.amd_pki(product, Hierarchy::Genuine)?.asvk_der.clone())
    }

    /// KDS `vlek/.../cert_chain`: PEM of the ASVK, then the ARK.
    pub fn amd_vlek_cert_chain_pem(&self, product: Product) -> Result<String, SimError> {
        let pki = self.amd_pki(product, Hierarchy::Genuine)?;
        Ok(format!(
            "{}{}",
            x509::cert_pem(&pki.asvk_der),
            x509::cert_pem(&pki.ark_der)
        ))
    }

    /// Cache an issued VCEK/VLEK. KDS may be asked for any TCB of a known chip, so the cache is bounded: when full
    /// it starts over (re-issuing is deterministic, only slower).
    fn remember(&self, id: VcekId, der: Arc<Vec<u8>>) -> Result<(), SimError> {
        let mut cache = self
            .vceks
            .lock()
            .map_err(|_| SimError::Invalid("VCEK cache poisoned".into()))?;
        if cache.len() >= VCEK_CACHE_MAX {
            cache.clear();
        }
        cache.insert(id, der);
        Ok(())
    }

    /// The VCEK (DER) of an SNP profile at its reported TCB.
    pub fn vcek_der(&self, profile: &Profile) -> Result<Vec<u8>, SimError> {
        let snp = snp_of(profile)?;
        Ok(self
            .vcek_der_for(
                Hierarchy::Genuine,
                snp.product,
                &snp.chip_id,
                &snp.reported_tcb,
                VcekValidity::Current,
            )?
            .as_ref()
            .clone())
    }

    /// The built-in SNP platform KDS knows by `hwid` (lowercase hex accepted by the caller, raw bytes here).
    pub fn snp_chip(&self, product: Product, hwid: &[u8]) -> Option<&SnpProfile> {
        self.profiles
            .iter()
            .filter_map(|p| p.snp())
            .find(|s| s.product == product && s.hwid() == hwid)
    }

    /// An SNP attester for a built-in profile.
    pub fn snp_attester(self: &Arc<Self>, name: &str) -> Result<SimSnpAttester, SimError> {
        let profile = self.require_profile(name)?.clone();
        SimSnpAttester::new(self.clone(), profile)
    }

    /// An SNP attester for a built-in profile whose guest was launched with `measurement` instead of the demo image's
    /// (a reference value computed from a firmware image, e.g. by `locus-verifier measure snp`).
    pub fn snp_attester_with_measurement(
        self: &Arc<Self>,
        name: &str,
        measurement: [u8; 48],
    ) -> Result<SimSnpAttester, SimError> {
        let mut profile = self.require_profile(name)?.clone();
        match &mut profile.tee_profile {
            crate::profile::TeeProfile::Snp(snp) => snp.measurement = measurement,
            crate::profile::TeeProfile::Tdx(_) => {
                return Err(SimError::WrongTee {
                    name: name.to_string(),
                    tee: "tdx",
                })
            }
        }
        SimSnpAttester::new(self.clone(), profile)
    }

    /// The current TDX collateral (TCB info, QE identity, CRLs, chains, root) every simulated TDX platform
    /// verifies with; one FMSPC covers them all.
    pub fn tdx_collateral(&self) -> crate::intel::TdxCollateralFiles {
        self.intel()
            .collateral(crate::intel::CollateralWindow::Current)
    }

    /// A TDX attester for a built-in profile.
    pub fn tdx_attester(&self, name: &str) -> Result<crate::intel::SimTdxAttester, SimError> {
        crate::intel_bridge::tdx_attester(self, name, &[])
    }

    /// Write the PKI a verifier needs to trust this world (`locus-sim pki export`):
    /// `DIR/snp/<product>/{ark.pem,ask.pem,cert_chain.pem,crl.der,asvk.pem,vlek_cert_chain.pem}` for milan, genoa, turin and
    /// `DIR/tdx/collateral/` in the vectors' layout.
    pub fn export_pki(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>, SimError> {
        let mut written = Vec::new();
        for product in Product::ALL {
            let pki = self.amd_pki(product, Hierarchy::Genuine)?;
            let d = dir
                .join("snp")
                .join(product.kds_name().to_ascii_lowercase());
            std::fs::create_dir_all(&d).map_err(|e| SimError::io(&d, e))?;
            let files: [(&str, Vec<u8>); 6] = [
                ("ark.pem", x509::cert_pem(&pki.ark_der).into_bytes()),
                ("ask.pem", x509::cert_pem(&pki.ask_der).into_bytes()),
                (
                    "cert_chain.pem",
                    self.amd_cert_chain_pem(product)?.into_bytes(),
                ),
                ("crl.der", pki.crl_der.clone()),
                ("asvk.pem", x509::cert_pem(&pki.asvk_der).into_bytes()),
                (
                    "vlek_cert_chain.pem",
                    self.amd_vlek_cert_chain_pem(product)?.into_bytes(),
                ),
            ];
            for (name, bytes) in files {
                let path = d.join(name);
                std::fs::write(&path, bytes).map_err(|e| SimError::io(&path, e))?;
                written.push(path);
            }
        }
        written.extend(crate::intel_bridge::export_tdx_collateral(
            self,
            &dir.join("tdx").join("collateral"),
        )?);
        Ok(written)
    }
}

/// The SNP part of a profile, or `WrongTee`.
pub fn snp_of(profile: &Profile) -> Result<&SnpProfile, SimError> {
    profile.snp().ok_or_else(|| SimError::WrongTee {
        name: profile.name.clone(),
        tee: "tdx",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_launched_with_a_given_measurement_reports_it_on_the_same_platform() {
        let world = World::shared();
        let measurement = [0x5a; 48];
        let attester = world
            .snp_attester_with_measurement("snp-fra-1", measurement)
            .expect("SNP profile");
        let fields = attester.report_fields(&[0; 64]);
        assert_eq!(fields.measurement, measurement);
        let built_in = world.snp_attester("snp-fra-1").expect("SNP profile");
        assert_eq!(fields.chip_id, built_in.report_fields(&[0; 64]).chip_id);
        assert_ne!(
            fields.measurement,
            built_in.report_fields(&[0; 64]).measurement
        );
    }

    #[test]
    fn a_measurement_for_a_tdx_profile_is_wrong_tee() {
        let err = World::shared()
            .snp_attester_with_measurement("tdx-fra-1", [0; 48])
            .expect_err("TDX profile");
        assert!(matches!(err, SimError::WrongTee { .. }), "{err}");
    }
}
