//! The simulated AMD PKI of one product: ARK (self-signed) → ASK → per-chip VCEKs, ARK → ASVK → per-CSP VLEKs, plus
//! the CRL signed by the ARK.
//!
//! Shapes follow AMD's certificates (VCEK Certificate and KDS Interface Specification, publication 57230): RSA-4096 ARK/ASK with rsaEncryption SPKIs, every link signed
//! RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 with the PSS parameters spelled out; VCEKs are P-384 keys, serial 0,
//! 7-year validity, carrying the KDS extensions. Names are AMD's except O = "Locus Simulated AMD" and
//! OU = "Locus Simulator TEST ONLY", so a simulator certificate can never be mistaken for AMD's.

use const_oid::ObjectIdentifier;
use der::asn1::{Ia5StringRef, OctetString};
use locus_hw::snp::{Product, TcbVersion};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;

use crate::error::SimError;
use crate::x509::{self, CertFields, NameAttr, Signer};

/// Organization of every simulated AMD certificate (AMD's says "Advanced Micro Devices").
pub const SIM_AMD_ORG: &str = "Locus Simulated AMD";
/// Organizational unit of every simulated AMD certificate (AMD's says "Engineering").
pub const SIM_AMD_OU: &str = "Locus Simulator TEST ONLY";

/// ARK/ASK notBefore: 2024-01-01T00:00:00Z.
pub const CA_NOT_BEFORE: u64 = 1_704_067_200;
/// ARK/ASK notAfter: 2049-01-01T00:00:00Z (25 years, as AMD's).
pub const CA_NOT_AFTER: u64 = 2_493_072_000;
/// VCEK notBefore: 2025-01-01T00:00:00Z.
pub const VCEK_NOT_BEFORE: u64 = 1_735_689_600;
/// VCEK notAfter: 2032-01-01T00:00:00Z (7 years, as AMD's).
pub const VCEK_NOT_AFTER: u64 = 1_956_528_000;
/// Expired-VCEK fault: notBefore 2016-01-01T00:00:00Z.
pub const EXPIRED_NOT_BEFORE: u64 = 1_451_606_400;
/// Expired-VCEK fault: notAfter 2023-01-01T00:00:00Z.
pub const EXPIRED_NOT_AFTER: u64 = 1_672_531_200;
/// CRL thisUpdate: 2025-01-01T00:00:00Z.
pub const CRL_THIS_UPDATE: u64 = 1_735_689_600;
/// CRL nextUpdate: 2049-01-01T00:00:00Z (long, so exported offline collateral never goes stale).
pub const CRL_NEXT_UPDATE: u64 = 2_493_072_000;

const AMD_ARC: &str = "1.3.6.1.4.1.3704.1";
/// structVersion.
pub const OID_STRUCT_VERSION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.1");
/// productName.
pub const OID_PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
/// blSPL.
pub const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
/// teeSPL.
pub const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
/// snpSPL.
pub const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
/// ucodeSPL.
pub const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
/// fmcSPL (Turin).
pub const OID_FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
/// hwID (VCEK).
pub const OID_HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
/// cspID (VLEK).
pub const OID_CSP_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.5");

/// Which signing hierarchy a chain belongs to: the world's genuine simulated AMD roots, or a foreign root with the
/// very same names but other keys (the `ForeignChain` fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hierarchy {
    /// The world's simulated AMD roots (the ones `pki export` publishes).
    Genuine,
    /// A look-alike root nobody trusts.
    Foreign,
}

/// The per-product RSA keys, with the label they were derived from (see [`crate::keys::rsa_key`]).
pub fn rsa_label(product: Product, hierarchy: Hierarchy, role: &str) -> String {
    match hierarchy {
        Hierarchy::Genuine => format!("amd:{}:{role}", product.kds_name().to_ascii_lowercase()),
        // The foreign hierarchy shares one key pair across products (its ASVK reuses its ASK key): it only has to
        // differ from the genuine one.
        Hierarchy::Foreign if role == "asvk" => "amd:foreign:ask".to_string(),
        Hierarchy::Foreign => format!("amd:foreign:{role}"),
    }
}

/// AMD-style name with the simulator's O and OU.
pub fn amd_name(cn: &str) -> Result<Name, SimError> {
    x509::name(&[
        NameAttr::Ou(SIM_AMD_OU),
        NameAttr::C("US"),
        NameAttr::L("Santa Clara"),
        NameAttr::St("CA"),
        NameAttr::O(SIM_AMD_ORG),
        NameAttr::Cn(cn),
    ])
}

/// The `productName` value of a VCEK, as AMD writes it.
pub fn product_name(product: Product) -> &'static str {
    match product {
        Product::Milan => "Milan-B0",
        Product::Genoa => "Genoa",
        Product::Turin => "Turin",
    }
}

/// `structVersion`: 0 on Milan/Genoa, 1 on Turin (vectors).
fn struct_version(product: Product) -> u8 {
    if product.has_fmc() {
        1
    } else {
        0
    }
}

/// Length of the hwID: the whole 64-byte chip id, Turin only its first 8 bytes.
pub fn hwid_len(product: Product) -> usize {
    if product == Product::Turin {
        8
    } else {
        64
    }
}

/// Serial numbers: AMD numbers ARKs 0x010000 / 0x020000 / 0x030000 per product and ASKs one more.
fn ca_serial(product: Product) -> u64 {
    match product {
        Product::Milan => 0x01_0000,
        Product::Genoa => 0x02_0000,
        Product::Turin => 0x03_0000,
    }
}

fn crl_dp(product: Product) -> Result<Extension, SimError> {
    let uri = format!(
        "http://kds.locus-sim.invalid/vcek/v1/{}/crl",
        product.kds_name()
    );
    let dp = DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::UniformResourceIdentifier(Ia5StringRef::new(&uri)?.into()),
        ])),
        reasons: None,
        crl_issuer: None,
    };
    x509::ext(
        const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS,
        false,
        &CrlDistributionPoints(vec![dp]),
    )
}

/// One product's CA keys and certificates.
pub struct ProductPki {
    /// The product.
    pub product: Product,
    /// Genuine or foreign.
    pub hierarchy: Hierarchy,
    seed: u64,
    ark_key: rsa::RsaPrivateKey,
    ask_key: rsa::RsaPrivateKey,
    asvk_key: rsa::RsaPrivateKey,
    ark_name: Name,
    ask_name: Name,
    asvk_name: Name,
    /// ARK certificate, DER.
    pub ark_der: Vec<u8>,
    /// ASK certificate, DER.
    pub ask_der: Vec<u8>,
    /// ASVK certificate (issuer of VLEKs), DER.
    pub asvk_der: Vec<u8>,
    /// ASK CRL signed by the ARK, DER (no revoked entries).
    pub crl_der: Vec<u8>,
}

impl std::fmt::Debug for ProductPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductPki")
            .field("product", &self.product)
            .field("hierarchy", &self.hierarchy)
            .finish_non_exhaustive()
    }
}

/// Parameters of a VCEK to issue.
#[derive(Debug, Clone)]
pub struct VcekSpec<'a> {
    /// The chip id (64 bytes; Turin uses the first 8).
    pub chip_id: &'a [u8; 64],
    /// The TCB the VCEK is derived from (REPORTED_TCB).
    pub tcb: TcbVersion,
    /// notBefore / notAfter (Unix seconds).
    pub not_before: u64,
    /// notAfter.
    pub not_after: u64,
}

impl ProductPki {
    /// Build the CA certificates and CRL of `product` from its three RSA keys.
    pub fn new(
        seed: u64,
        product: Product,
        hierarchy: Hierarchy,
        ark_key: rsa::RsaPrivateKey,
        ask_key: rsa::RsaPrivateKey,
        asvk_key: rsa::RsaPrivateKey,
    ) -> Result<Self, SimError> {
        let kds = product.kds_name();
        let ark_name = amd_name(&format!("ARK-{kds}"))?;
        let ask_name = amd_name(&format!("SEV-{kds}"))?;
        let ark_spki = x509::spki_rsa(&ark_key.to_public_key())?;
        let ask_spki = x509::spki_rsa(&ask_key.to_public_key())?;
        let ark_id = x509::key_id(&ark_spki);
        let ark_label = rsa_label(product, hierarchy, "ark");

        let ark_signer = Signer::RsaPssSha384 {
            key: &ark_key,
            seed,
            label: &ark_label,
        };
        let ark_der = x509::certificate(
            CertFields {
                serial: x509::serial(ca_serial(product))?,
                issuer: ark_name.clone(),
                subject: ark_name.clone(),
                validity: x509::validity(CA_NOT_BEFORE, CA_NOT_AFTER)?,
                spki: ark_spki,
                extensions: vec![
                    x509::ext(
                        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
                        true,
                        &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
                    )?,
                    x509::ext(
                        const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
                        false,
                        &SubjectKeyIdentifier(OctetString::new(ark_id)?),
                    )?,
                    x509::ext(
                        const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                        true,
                        &BasicConstraints {
                            ca: true,
                            path_len_constraint: None,
                        },
                    )?,
                    crl_dp(product)?,
                ],
            },
            &ark_signer,
        )?;
        let ask_der = signing_ca_cert(
            product,
            ca_serial(product) + 1,
            &ark_name,
            ark_id,
            ask_name.clone(),
            ask_spki,
            &ark_signer,
        )?;
        let asvk_name = amd_name(&format!("SEV-VLEK-{kds}"))?;
        let asvk_spki = x509::spki_rsa(&asvk_key.to_public_key())?;
        let asvk_der = signing_ca_cert(
            product,
            ca_serial(product) + 2,
            &ark_name,
            ark_id,
            asvk_name.clone(),
            asvk_spki,
            &ark_signer,
        )?;
        let crl_der = x509::crl(
            ark_name.clone(),
            CRL_THIS_UPDATE,
            CRL_NEXT_UPDATE,
            &[],
            vec![x509::ext(
                const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(ark_id)?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            )?],
            &ark_signer,
        )?;
        Ok(ProductPki {
            product,
            hierarchy,
            seed,
            ark_key,
            ask_key,
            asvk_key,
            ark_name,
            ask_name,
            asvk_name,
            ark_der,
            ask_der,
            asvk_der,
            crl_der,
        })
    }

    /// The ARK's subject (and the CRL issuer).
    pub fn ark_name(&self) -> &Name {
        &self.ark_name
    }

    /// The ASK's subject (and every VCEK's issuer).
    pub fn ask_name(&self) -> &Name {
        &self.ask_name
    }

    /// The ASVK's subject (and every VLEK's issuer).
    pub fn asvk_name(&self) -> &Name {
        &self.asvk_name
    }

    /// A CRL listing the given ASK serials as revoked, signed by the ARK (for revocation tests).
    pub fn crl_revoking(
        &self,
        serials: &[u64],
        this_update: u64,
        next_update: u64,
    ) -> Result<Vec<u8>, SimError> {
        let label = rsa_label(self.product, self.hierarchy, "ark");
        let signer = Signer::RsaPssSha384 {
            key: &self.ark_key,
            seed: self.seed,
            label: &label,
        };
        let mut revoked = Vec::with_capacity(serials.len());
        for s in serials {
            revoked.push(x509::Revoked {
                serial: x509::serial(*s)?,
                at: this_update,
            });
        }
        x509::crl(
            self.ark_name.clone(),
            this_update,
            next_update,
            &revoked,
            vec![],
            &signer,
        )
    }

    /// The VCEK key of a chip at a TCB: deterministic, so KDS can re-issue the same certificate any time.
    pub fn vcek_key(&self, chip_id: &[u8; 64], tcb: &TcbVersion) -> p384::ecdsa::SigningKey {
        let hw = &chip_id[..hwid_len(self.product)];
        let label = format!(
            "amd:vcek:{}:{}:{}",
            self.product.kds_name(),
            hex::encode(hw),
            tcb.to_raw(self.product)
        );
        crate::keys::p384_key(self.seed, &label)
    }

    /// Issue the VCEK certificate (DER) of a chip at a TCB, signed by this hierarchy's ASK.
    pub fn vcek_der(&self, spec: &VcekSpec<'_>) -> Result<Vec<u8>, SimError> {
        let product = self.product;
        let key = self.vcek_key(spec.chip_id, &spec.tcb);
        let mut exts = tcb_extensions(product, &spec.tcb)?;
        exts.push(x509::ext_raw(
            OID_HW_ID,
            false,
            &spec.chip_id[..hwid_len(product)],
        )?);
        let label = rsa_label(product, self.hierarchy, "ask");
        let signer = Signer::RsaPssSha384 {
            key: &self.ask_key,
            seed: self.seed,
            label: &label,
        };
        x509::certificate(
            CertFields {
                serial: x509::serial(0)?,
                issuer: self.ask_name.clone(),
                subject: amd_name("SEV-VCEK")?,
                validity: x509::validity(spec.not_before, spec.not_after)?,
                spki: x509::spki_p384(key.verifying_key())?,
                extensions: exts,
            },
            &signer,
        )
    }

    /// The VLEK key of a cloud provider at a TCB (VLEKs are per CSP and TCB, not per chip).
    pub fn vlek_key(&self, csp_id: &str, tcb: &TcbVersion) -> p384::ecdsa::SigningKey {
        let label = format!(
            "amd:vlek:{}:{csp_id}:{}",
            self.product.kds_name(),
            tcb.to_raw(self.product)
        );
        crate::keys::p384_key(self.seed, &label)
    }

    /// Issue the VLEK certificate (DER) of a cloud provider at a TCB, signed by this hierarchy's ASVK: the KDS
    /// extensions with `cspID` instead of `hwID`.
    pub fn vlek_der(&self, spec: &VlekSpec<'_>) -> Result<Vec<u8>, SimError> {
        let product = self.product;
        let key = self.vlek_key(spec.csp_id, &spec.tcb);
        let mut exts = tcb_extensions(product, &spec.tcb)?;
        exts.push(x509::ext(
            OID_CSP_ID,
            false,
            &Ia5StringRef::new(spec.csp_id)?,
        )?);
        let label = rsa_label(product, self.hierarchy, "asvk");
        let signer = Signer::RsaPssSha384 {
            key: &self.asvk_key,
            seed: self.seed,
            label: &label,
        };
        x509::certificate(
            CertFields {
                serial: x509::serial(0)?,
                issuer: self.asvk_name.clone(),
                subject: amd_name("SEV-VLEK")?,
                validity: x509::validity(spec.not_before, spec.not_after)?,
                spki: x509::spki_p384(key.verifying_key())?,
                extensions: exts,
            },
            &signer,
        )
    }
}

/// Parameters of a VLEK to issue.
#[derive(Debug, Clone)]
pub struct VlekSpec<'a> {
    /// The cloud provider's id (`cspID`).
    pub csp_id: &'a str,
    /// The TCB the VLEK is derived from (REPORTED_TCB).
    pub tcb: TcbVersion,
    /// notBefore (Unix seconds).
    pub not_before: u64,
    /// notAfter.
    pub not_after: u64,
}

/// structVersion, productName and the SPL extensions, in AMD's order (vectors).
fn tcb_extensions(product: Product, tcb: &TcbVersion) -> Result<Vec<Extension>, SimError> {
    let spl = |oid: ObjectIdentifier, v: u8| x509::ext(oid, false, &v);
    let reserved = |n: u32| -> Result<Extension, SimError> {
        let oid = ObjectIdentifier::new(&format!("{AMD_ARC}.3.{n}")).map_err(der::Error::from)?;
        x509::ext(oid, false, &0u8)
    };
    let mut exts = vec![
        x509::ext(OID_STRUCT_VERSION, false, &struct_version(product))?,
        x509::ext(
            OID_PRODUCT_NAME,
            false,
            &Ia5StringRef::new(product_name(product))?,
        )?,
    ];
    if product.has_fmc() {
        exts.push(spl(OID_FMC_SPL, tcb.fmc.unwrap_or(0))?);
        exts.push(spl(OID_BL_SPL, tcb.bootloader)?);
        exts.push(spl(OID_TEE_SPL, tcb.tee)?);
        exts.push(spl(OID_SNP_SPL, tcb.snp)?);
        for n in 5..=7 {
            exts.push(reserved(n)?);
        }
    } else {
        exts.push(spl(OID_BL_SPL, tcb.bootloader)?);
        exts.push(spl(OID_TEE_SPL, tcb.tee)?);
        for n in 4..=7 {
            exts.push(reserved(n)?);
        }
        exts.push(spl(OID_SNP_SPL, tcb.snp)?);
    }
    exts.push(spl(OID_UCODE_SPL, tcb.microcode)?);
    Ok(exts)
}

/// An ASK or ASVK: RSA key certified by the ARK, CA with path length 0, keyCertSign (AMD's extensions).
fn signing_ca_cert(
    product: Product,
    serial: u64,
    ark_name: &Name,
    ark_id: [u8; 20],
    subject: Name,
    spki: spki::SubjectPublicKeyInfoOwned,
    ark_signer: &Signer<'_>,
) -> Result<Vec<u8>, SimError> {
    let id = x509::key_id(&spki);
    x509::certificate(
        CertFields {
            serial: x509::serial(serial)?,
            issuer: ark_name.clone(),
            subject,
            validity: x509::validity(CA_NOT_BEFORE, CA_NOT_AFTER)?,
            spki,
            extensions: vec![
                x509::ext(
                    const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
                    false,
                    &SubjectKeyIdentifier(OctetString::new(id)?),
                )?,
                x509::ext(
                    const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
                    false,
                    &AuthorityKeyIdentifier {
                        key_identifier: Some(OctetString::new(ark_id)?),
                        authority_cert_issuer: None,
                        authority_cert_serial_number: None,
                    },
                )?,
                x509::ext(
                    const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                    true,
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: Some(0),
                    },
                )?,
                x509::ext(
                    const_oid::db::rfc5280::ID_CE_KEY_USAGE,
                    true,
                    &KeyUsage(KeyUsages::KeyCertSign.into()),
                )?,
                crl_dp(product)?,
            ],
        },
        ark_signer,
    )
}
