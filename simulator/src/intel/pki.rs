//! The simulated Intel PKI, deterministic from a seed:
//!
//! ```text
//! SIM Intel SGX Root CA (self-signed, P-256)
//!  ├── SIM Intel SGX PCK Platform CA ── SIM Intel SGX PCK Certificate (one per platform, SGX extension)
//!  │                                    └─ signs the platform's QE reports
//!  └── SIM Intel SGX TCB Signing ── signs TCB info and QE identity
//! root CA CRL (by the root), PCK CRL (by the Platform CA; revokes the `RevokedPck` variant of every built-in PCK)
//! ```
//!
//! A second, look-alike hierarchy with the same names but other keys (the "foreign" root) issues the PCKs of the
//! `ForeignChain` fault. Nothing here is Intel's: the organisation is "Locus Simulator (not Intel Corporation)" and
//! every common name starts with "SIM".

use p256::ecdsa::SigningKey;
use x509_cert::name::Name;

use super::asn1;
use super::certs::{self, CertRole, CertTemplate, SgxExtensionValues};
use super::collateral::{
    self, CollateralWindow, QeValues, SignedJson, TdxCollateralFiles, CERTS_VALID_UNTIL_UNIX,
    COLLATERAL_NEXT_UPDATE_UNIX, VALID_FROM_UNIX,
};
use super::keys;
use super::profile::{TdxProfile, BUILTIN_TDX_PROFILES};

/// Common name of the simulated root CA (Intel's is "Intel SGX Root CA").
pub const SIM_ROOT_CA_CN: &str = "SIM Intel SGX Root CA";
/// Common name of the simulated PCK Platform CA.
pub const SIM_PLATFORM_CA_CN: &str = "SIM Intel SGX PCK Platform CA";
/// Common name of the simulated TCB Signing certificate.
pub const SIM_TCB_SIGNING_CN: &str = "SIM Intel SGX TCB Signing";
/// Common name of the simulated PCK leaves.
pub const SIM_PCK_CN: &str = "SIM Intel SGX PCK Certificate";

const ROOT_CRL_URL: &str = "https://certificates.sim.locus.invalid/IntelSGXRootCA.der";
const PCK_CRL_URL: &str =
    "https://pcs.sim.locus.invalid/sgx/certification/v4/pckcrl?ca=platform&encoding=der";

/// 2023-01-01T00:00:00Z and 2024-12-31T23:59:59Z: validity of an expired PCK (the `ExpiredPck` fault).
const EXPIRED_PCK_NOT_BEFORE: u64 = 1_672_531_200;
const EXPIRED_PCK_NOT_AFTER: u64 = 1_735_689_599;

/// Which certificate a platform's quote carries as its PCK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PckVariant {
    /// The platform's valid PCK.
    Genuine,
    /// Same key and extension, validity 2023-01-01 .. 2024-12-31: expired.
    Expired,
    /// Same key and extension, another serial, listed in the PCK CRL (built-in profile names only).
    Revoked,
    /// Issued by the look-alike foreign hierarchy; the chain ends at the foreign root.
    Foreign,
}

impl PckVariant {
    fn label(self) -> &'static str {
        match self {
            Self::Genuine => "genuine",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Foreign => "foreign",
        }
    }
}

/// Which CA signs a CRL built with [`IntelPki::issue_crl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlIssuer {
    /// The root CA (the root CA CRL).
    Root,
    /// The PCK Platform CA (the PCK CRL).
    PlatformCa,
}

/// A CA (or signer) of the simulated PKI: its key, certificate and name.
#[derive(Debug, Clone)]
struct Authority {
    key: SigningKey,
    name: Name,
    der: Vec<u8>,
}

fn self_signed_root(seed: u64, label: &str) -> Authority {
    let key = keys::derive_p256(seed, label);
    let name = certs::sim_name(SIM_ROOT_CA_CN);
    let der = certs::issue_certificate(
        CertTemplate {
            serial: keys::derive_serial(seed, label),
            issuer: name.clone(),
            subject: name.clone(),
            not_before: VALID_FROM_UNIX,
            not_after: CERTS_VALID_UNTIL_UNIX,
            subject_key: key.verifying_key(),
            issuer_key: key.verifying_key(),
            crl_distribution_point: ROOT_CRL_URL,
            role: CertRole::Root,
            sgx_extension: None,
        },
        &key,
    );
    Authority { key, name, der }
}

fn issued_by(
    root: &Authority,
    seed: u64,
    label: &str,
    common_name: &str,
    role: CertRole,
) -> Authority {
    let key = keys::derive_p256(seed, label);
    let name = certs::sim_name(common_name);
    let der = certs::issue_certificate(
        CertTemplate {
            serial: keys::derive_serial(seed, label),
            issuer: root.name.clone(),
            subject: name.clone(),
            not_before: VALID_FROM_UNIX,
            not_after: CERTS_VALID_UNTIL_UNIX,
            subject_key: key.verifying_key(),
            issuer_key: root.key.verifying_key(),
            crl_distribution_point: ROOT_CRL_URL,
            role,
            sgx_extension: None,
        },
        &root.key,
    );
    Authority { key, name, der }
}

/// The simulated Intel world for one seed: PKI, QE identity, built-in TDX profiles, CRLs.
///
/// Share it behind an `Arc`; attesters made from it (`IntelPki::attester`) keep a reference.
#[derive(Debug)]
pub struct IntelPki {
    seed: u64,
    root: Authority,
    platform_ca: Authority,
    tcb_signing: Authority,
    foreign_root: Authority,
    foreign_platform_ca: Authority,
    qe: QeValues,
    profiles: Vec<TdxProfile>,
    revoked_pck_serials: Vec<[u8; 20]>,
    root_ca_crl_der: Vec<u8>,
    pck_crl_der: Vec<u8>,
}

impl IntelPki {
    /// Builds the whole Intel world from `seed` (deterministic: same seed, same bytes).
    pub fn new(seed: u64) -> Self {
        let root = self_signed_root(seed, "intel/root");
        let platform_ca = issued_by(
            &root,
            seed,
            "intel/pck-platform-ca",
            SIM_PLATFORM_CA_CN,
            CertRole::IntermediateCa,
        );
        let tcb_signing = issued_by(
            &root,
            seed,
            "intel/tcb-signing",
            SIM_TCB_SIGNING_CN,
            CertRole::EndEntity,
        );
        let foreign_root = self_signed_root(seed, "intel/foreign-root");
        let foreign_platform_ca = issued_by(
            &foreign_root,
            seed,
            "intel/foreign-pck-platform-ca",
            SIM_PLATFORM_CA_CN,
            CertRole::IntermediateCa,
        );
        let qe = QeValues {
            mrsigner: keys::derive_bytes(seed, "intel/qe/mrsigner"),
            mrenclave: keys::derive_bytes(seed, "intel/qe/mrenclave"),
            attributes: [0x15, 0, 0, 0, 0, 0, 0, 0, 0xE7, 0, 0, 0, 0, 0, 0, 0],
            miscselect: 0,
            isvprodid: super::profile::SIM_QE_ISVPRODID,
        };
        let revoked_pck_serials: Vec<[u8; 20]> = BUILTIN_TDX_PROFILES
            .iter()
            .map(|name| pck_serial(seed, name, PckVariant::Revoked))
            .collect();
        let root_ca_crl_der = certs::issue_crl(
            root.name.clone(),
            &root.key,
            VALID_FROM_UNIX,
            COLLATERAL_NEXT_UPDATE_UNIX,
            &[],
        );
        let pck_crl_der = certs::issue_crl(
            platform_ca.name.clone(),
            &platform_ca.key,
            VALID_FROM_UNIX,
            COLLATERAL_NEXT_UPDATE_UNIX,
            &revoked_pck_serials,
        );
        Self {
            seed,
            root,
            platform_ca,
            tcb_signing,
            foreign_root,
            foreign_platform_ca,
            qe,
            profiles: TdxProfile::builtins(seed),
            revoked_pck_serials,
            root_ca_crl_der,
            pck_crl_der,
        }
    }

    /// The seed this world was built from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// DER of the simulated root CA — the trust anchor to hand to a verifier (never Intel's root).
    pub fn root_der(&self) -> &[u8] {
        &self.root.der
    }

    /// PEM of the simulated root CA.
    pub fn root_pem(&self) -> String {
        asn1::pem("CERTIFICATE", &self.root.der)
    }

    /// DER of the PCK Platform CA.
    pub fn platform_ca_der(&self) -> &[u8] {
        &self.platform_ca.der
    }

    /// DER of the TCB Signing certificate.
    pub fn tcb_signing_der(&self) -> &[u8] {
        &self.tcb_signing.der
    }

    /// DER of the look-alike foreign root (same names, other key) that issues `ForeignChain` PCKs.
    pub fn foreign_root_der(&self) -> &[u8] {
        &self.foreign_root.der
    }

    /// DER of the root CA CRL (no revoked certificates).
    pub fn root_ca_crl_der(&self) -> &[u8] {
        &self.root_ca_crl_der
    }

    /// DER of the PCK Platform CA CRL.
    pub fn pck_crl_der(&self) -> &[u8] {
        &self.pck_crl_der
    }

    /// Serials (20 bytes, big-endian) listed in the PCK CRL: the `Revoked` PCK of every built-in profile.
    pub fn revoked_pck_serials(&self) -> &[[u8; 20]] {
        &self.revoked_pck_serials
    }

    /// The simulated TD quoting enclave's identity values.
    pub fn qe_values(&self) -> &QeValues {
        &self.qe
    }

    /// The built-in TDX profiles of this seed.
    pub fn profiles(&self) -> &[TdxProfile] {
        &self.profiles
    }

    /// A built-in TDX profile by name.
    pub fn profile(&self, name: &str) -> Option<&TdxProfile> {
        self.profiles.iter().find(|profile| profile.name == name)
    }

    /// The platform's PCK signing key (derived from the seed and the profile name).
    pub(crate) fn pck_key(&self, profile: &TdxProfile) -> SigningKey {
        keys::derive_p256(self.seed, &format!("intel/pck/{}", profile.name))
    }

    /// The platform's quote attestation key.
    pub(crate) fn attestation_key(&self, profile: &TdxProfile) -> SigningKey {
        keys::derive_p256(
            self.seed,
            &format!("intel/attestation-key/{}", profile.name),
        )
    }

    /// Issues the PCK leaf of `profile` in `variant`; returns its DER.
    pub fn pck_der(&self, profile: &TdxProfile, variant: PckVariant) -> Vec<u8> {
        let (issuer, not_before, not_after) = match variant {
            PckVariant::Genuine | PckVariant::Revoked => {
                (&self.platform_ca, VALID_FROM_UNIX, CERTS_VALID_UNTIL_UNIX)
            }
            PckVariant::Expired => (
                &self.platform_ca,
                EXPIRED_PCK_NOT_BEFORE,
                EXPIRED_PCK_NOT_AFTER,
            ),
            PckVariant::Foreign => (
                &self.foreign_platform_ca,
                VALID_FROM_UNIX,
                CERTS_VALID_UNTIL_UNIX,
            ),
        };
        let key = self.pck_key(profile);
        certs::issue_certificate(
            CertTemplate {
                serial: pck_serial(self.seed, &profile.name, variant),
                issuer: issuer.name.clone(),
                subject: certs::sim_name(SIM_PCK_CN),
                not_before,
                not_after,
                subject_key: key.verifying_key(),
                issuer_key: issuer.key.verifying_key(),
                crl_distribution_point: PCK_CRL_URL,
                role: CertRole::EndEntity,
                sgx_extension: Some(certs::sgx_extension(&SgxExtensionValues {
                    ppid: profile.ppid,
                    cpu_svn: profile.cpu_svn,
                    pce_svn: profile.pce_svn,
                    pce_id: profile.pce_id,
                    fmspc: profile.fmspc,
                    platform_instance_id: profile.platform_instance_id,
                })),
            },
            &issuer.key,
        )
    }

    /// The PEM chain a quote carries (certification data type 5): PCK leaf, PCK Platform CA, root.
    pub fn pck_chain_pem(&self, profile: &TdxProfile, variant: PckVariant) -> String {
        let leaf = self.pck_der(profile, variant);
        match variant {
            PckVariant::Foreign => asn1::pem_chain([
                leaf.as_slice(),
                self.foreign_platform_ca.der.as_slice(),
                self.foreign_root.der.as_slice(),
            ]),
            _ => asn1::pem_chain([
                leaf.as_slice(),
                self.platform_ca.der.as_slice(),
                self.root.der.as_slice(),
            ]),
        }
    }

    /// The serial (20 bytes, big-endian) of `profile`'s PCK in `variant`.
    pub fn pck_serial(&self, profile: &TdxProfile, variant: PckVariant) -> [u8; 20] {
        pck_serial(self.seed, &profile.name, variant)
    }

    /// Issues another CRL of this world, e.g. one that revokes a genuine PCK or one already past `next_update`, for
    /// tests of revocation and CRL freshness. Times are Unix seconds (1970..2049).
    pub fn issue_crl(
        &self,
        issuer: CrlIssuer,
        this_update: u64,
        next_update: u64,
        revoked_serials: &[[u8; 20]],
    ) -> Vec<u8> {
        let authority = match issuer {
            CrlIssuer::Root => &self.root,
            CrlIssuer::PlatformCa => &self.platform_ca,
        };
        certs::issue_crl(
            authority.name.clone(),
            &authority.key,
            this_update,
            next_update,
            revoked_serials,
        )
    }

    fn sign_json(&self, body: String) -> SignedJson {
        let signature = keys::sign_raw(&self.tcb_signing.key, body.as_bytes());
        SignedJson { body, signature }
    }

    /// The collateral of every simulated TDX platform (they share one FMSPC), with the JSON documents in `window`.
    pub fn collateral(&self, window: CollateralWindow) -> TdxCollateralFiles {
        let tcb_info = self.sign_json(collateral::tcb_info_text(window));
        let qe_identity = self.sign_json(collateral::qe_identity_text(window, &self.qe));
        let signing_chain =
            asn1::pem_chain([self.tcb_signing.der.as_slice(), self.root.der.as_slice()]);
        TdxCollateralFiles {
            tcb_info_json: tcb_info.envelope("tcbInfo"),
            tcb_info_issuer_chain_pem: signing_chain.clone(),
            qe_identity_json: qe_identity.envelope("enclaveIdentity"),
            qe_identity_issuer_chain_pem: signing_chain,
            pck_crl_der: self.pck_crl_der.clone(),
            pck_crl_issuer_chain_pem: asn1::pem_chain([
                self.platform_ca.der.as_slice(),
                self.root.der.as_slice(),
            ]),
            root_ca_crl_der: self.root_ca_crl_der.clone(),
            root_ca_der: self.root.der.clone(),
            tcb_info,
            qe_identity,
        }
    }
}

fn pck_serial(seed: u64, profile_name: &str, variant: PckVariant) -> [u8; 20] {
    keys::derive_serial(
        seed,
        &format!("intel/pck/{profile_name}/{}", variant.label()),
    )
}
