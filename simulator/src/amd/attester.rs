//! `SimSnpAttester`: report data in → a signed 1184-byte SEV-SNP report plus the VCEK/ASK/ARK chain, exactly what
//! an extended guest request returns on real hardware. Faults alter the evidence so one verifier check fails.

use std::sync::Arc;

use locus_hw::attester::{AttestError, Attester, Evidence};
use locus_hw::snp::cert_table::{self, CertKind, CertTableEntry};
use locus_hw::TeeType;

use crate::amd::pki::Hierarchy;
use crate::amd::report::{self, ReportFields, REPORT_SIZE};
use crate::error::SimError;
use crate::fault::Fault;
use crate::profile::{low_tcb, Profile, SnpProfile, POLICY_DEBUG};
use crate::world::{snp_of, VcekValidity, World};

/// Everything one SEV-SNP attestation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpEvidence {
    /// The report, 1184 bytes.
    pub report: Vec<u8>,
    /// The key certificate that signed it (DER): the VCEK, or the VLEK when `vlek` is set.
    pub vcek_der: Vec<u8>,
    /// Whether `vcek_der` is a VLEK (and `ask_der` the ASVK).
    pub vlek: bool,
    /// The ASK, or the ASVK for a VLEK (DER).
    pub ask_der: Vec<u8>,
    /// The ARK (DER).
    pub ark_der: Vec<u8>,
}

impl SnpEvidence {
    /// The extended-report certificate table (GHCB layout) holding VCEK (or VLEK), ASK (or ASVK) and ARK.
    pub fn cert_table(&self) -> Vec<u8> {
        cert_table::encode(&[
            CertTableEntry {
                kind: if self.vlek {
                    CertKind::Vlek
                } else {
                    CertKind::Vcek
                },
                data: self.vcek_der.clone(),
            },
            CertTableEntry {
                kind: CertKind::Ask,
                data: self.ask_der.clone(),
            },
            CertTableEntry {
                kind: CertKind::Ark,
                data: self.ark_der.clone(),
            },
        ])
    }
}

/// A simulated SEV-SNP guest on one platform profile.
#[derive(Debug, Clone)]
pub struct SimSnpAttester {
    world: Arc<World>,
    name: String,
    snp: SnpProfile,
    faults: Vec<Fault>,
}

impl SimSnpAttester {
    /// An attester for `profile` (which must be an SNP profile; it need not be a built-in one).
    pub fn new(world: Arc<World>, profile: Profile) -> Result<Self, SimError> {
        let snp = snp_of(&profile)?.clone();
        Ok(SimSnpAttester {
            world,
            name: format!("sim-snp:{}", profile.name),
            snp,
            faults: Vec::new(),
        })
    }

    /// Add a fault (the Intel-only faults `RevokedPck` and `StaleCollateral` have no effect on SNP evidence).
    pub fn with_fault(mut self, fault: Fault) -> Self {
        if !self.faults.contains(&fault) {
            self.faults.push(fault);
        }
        self
    }

    /// The faults in effect.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// The platform as the faults make it look (debug bit, low TCB).
    pub fn effective_profile(&self) -> SnpProfile {
        let mut p = self.snp.clone();
        if self.faults.contains(&Fault::Debug) {
            p.policy |= POLICY_DEBUG;
        }
        if self.faults.contains(&Fault::LowTcb) {
            p.reported_tcb = low_tcb(p.product);
        }
        p
    }

    /// The report fields for `report_data` on the effective profile.
    pub fn report_fields(&self, report_data: &[u8; 64]) -> ReportFields {
        let p = self.effective_profile();
        let (maj, min, build) = p.firmware;
        ReportFields {
            product: p.product,
            version: p.report_version,
            guest_svn: p.guest_svn,
            policy: p.policy,
            family_id: p.family_id,
            image_id: p.image_id,
            vmpl: 0,
            current_tcb: p.reported_tcb,
            platform_info: p.platform_info,
            // KEY_INFO.SIGNING_KEY (bits 4:2): 0 = VCEK, 1 = VLEK.
            key_info: if p.vlek_csp_id.is_some() { 1 << 2 } else { 0 },
            report_data: *report_data,
            measurement: p.measurement,
            host_data: p.host_data,
            id_key_digest: p.id_key_digest,
            author_key_digest: [0; 48],
            report_id: p.report_id,
            report_id_ma: [0xFF; 32],
            reported_tcb: p.reported_tcb,
            chip_id: p.chip_id,
            committed_tcb: p.reported_tcb,
            current_version: (maj, min, build),
            committed_version: (maj, min, build),
            launch_tcb: p.reported_tcb,
            launch_mit_vector: 0,
            current_mit_vector: 0,
        }
    }

    /// Produce the report and its certificate chain.
    pub fn report(&self, report_data: &[u8; 64]) -> Result<SnpEvidence, SimError> {
        let fields = self.report_fields(report_data);
        let p = self.effective_profile();
        let hierarchy = if self.faults.contains(&Fault::ForeignChain) {
            Hierarchy::Foreign
        } else {
            Hierarchy::Genuine
        };
        let validity = if self.faults.contains(&Fault::ExpiredCertificate) {
            VcekValidity::Expired
        } else {
            VcekValidity::Current
        };
        let pki = self.world.amd_pki(p.product, hierarchy)?;
        let (cert_der, key, issuer_der) = match &p.vlek_csp_id {
            Some(csp) => (
                self.world
                    .vlek_der_for(hierarchy, p.product, csp, &p.reported_tcb, validity)?,
                pki.vlek_key(csp, &p.reported_tcb),
                pki.asvk_der.clone(),
            ),
            None => (
                self.world.vcek_der_for(
                    hierarchy,
                    p.product,
                    &p.chip_id,
                    &p.reported_tcb,
                    validity,
                )?,
                pki.vcek_key(&p.chip_id, &p.reported_tcb),
                pki.ask_der.clone(),
            ),
        };
        let mut raw: [u8; REPORT_SIZE] = report::encode_unsigned(&fields)?;
        report::sign(&mut raw, &key)?;
        if self.faults.contains(&Fault::BadSignature) {
            // Flip a bit of the low byte of r: the signature no longer verifies, everything else is intact.
            raw[0x2A0] ^= 0x01;
        }
        Ok(SnpEvidence {
            report: raw.to_vec(),
            vcek_der: cert_der.as_ref().clone(),
            vlek: p.vlek_csp_id.is_some(),
            ask_der: issuer_der,
            ark_der: pki.ark_der.clone(),
        })
    }
}

impl Attester for SimSnpAttester {
    fn name(&self) -> &str {
        &self.name
    }

    fn tee(&self) -> TeeType {
        TeeType::SevSnp
    }

    /// Evidence with `certs` = [VCEK, ASK, ARK] (DER).
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        let ev = self
            .report(report_data)
            .map_err(|e| AttestError::Failed(e.to_string()))?;
        Ok(Evidence {
            tee: TeeType::SevSnp,
            raw: ev.report,
            certs: vec![ev.vcek_der, ev.ask_der, ev.ark_der],
        })
    }
}
