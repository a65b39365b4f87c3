//! X.509 certificates and CRLs of the simulated Intel PKI, in the exact shapes of Intel's (see `asn1parse` of a real
//! PCK chain): P-256 keys, ECDSA-with-SHA256, names `CN, O, L, ST, C` (UTF8String, country PrintableString), extensions
//! in Intel's order — authority key id, CRL distribution point, subject key id, key usage (critical), basic constraints
//! (critical) and, on a PCK leaf, the SGX extension `1.2.840.113741.1.13.1` (non-critical).

use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString, OctetString, SetOfVec, UtcTime};
use der::Tag;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::EncodePublicKey as _;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use super::asn1;
use super::keys;

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const OID_L: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.7");
const OID_ST: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.8");
const OID_C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_AUTHORITY_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
const OID_CRL_DISTRIBUTION_POINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.31");
const OID_SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
const OID_CRL_REASON: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.21");

/// Intel SGX extension and its children (Intel PCK Certificate and CRL Profile).
pub const OID_SGX_EXTENSION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1");
const SGX_PPID: &str = "1.2.840.113741.1.13.1.1";
const SGX_TCB: &str = "1.2.840.113741.1.13.1.2";
const SGX_PCEID: &str = "1.2.840.113741.1.13.1.3";
const SGX_FMSPC: &str = "1.2.840.113741.1.13.1.4";
const SGX_TYPE: &str = "1.2.840.113741.1.13.1.5";
const SGX_PLATFORM_INSTANCE_ID: &str = "1.2.840.113741.1.13.1.6";
const SGX_CONFIGURATION: &str = "1.2.840.113741.1.13.1.7";

/// Organisation of every simulated certificate: the names say "SIM" and "not Intel" so they can never be mistaken
/// for Intel's (whose organisation is "Intel Corporation").
pub const SIM_ORGANIZATION: &str = "Locus Simulator (not Intel Corporation)";
const SIM_LOCALITY: &str = "Simulated";
const SIM_STATE: &str = "SIM";
const SIM_COUNTRY: &str = "ZZ";

fn oid(text: &str) -> ObjectIdentifier {
    // Only called with the string constants above, which are valid OIDs.
    ObjectIdentifier::new_unwrap(text)
}

/// Encodes a structure built by this module. Every input here is produced by the simulator itself (fixed shapes,
/// bounded sizes), so an encoding failure can only be a bug in this file, never bad external input.
fn encode<T: der::Encode>(value: &T) -> Vec<u8> {
    value
        .to_der()
        .expect("simulated Intel PKI structures are well-formed by construction")
}

fn attribute(oid: ObjectIdentifier, tag: Tag, value: &str) -> AttributeTypeAndValue {
    AttributeTypeAndValue {
        oid,
        value: Any::new(tag, value.as_bytes()).expect("short attribute value"),
    }
}

/// `CN=<common_name>, O=…, L=…, ST=…, C=…` in Intel's attribute order and string types.
pub(crate) fn sim_name(common_name: &str) -> Name {
    let rdns = [
        attribute(OID_CN, Tag::Utf8String, common_name),
        attribute(OID_O, Tag::Utf8String, SIM_ORGANIZATION),
        attribute(OID_L, Tag::Utf8String, SIM_LOCALITY),
        attribute(OID_ST, Tag::Utf8String, SIM_STATE),
        attribute(OID_C, Tag::PrintableString, SIM_COUNTRY),
    ]
    .into_iter()
    .map(|atv| {
        RelativeDistinguishedName(SetOfVec::try_from(vec![atv]).expect("one attribute per RDN"))
    })
    .collect();
    RdnSequence(rdns)
}

pub(crate) fn utc_time(unix_seconds: u64) -> Time {
    Time::UtcTime(
        UtcTime::from_unix_duration(std::time::Duration::from_secs(unix_seconds))
            .expect("simulated dates lie between 1970 and 2049"),
    )
}

fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA256,
        parameters: None,
    }
}

fn spki(key: &VerifyingKey) -> SubjectPublicKeyInfoOwned {
    let der = key
        .to_public_key_der()
        .expect("a P-256 public key always encodes");
    der::Decode::from_der(der.as_bytes()).expect("the SPKI just encoded decodes")
}

/// Key identifier: the first 20 bytes of SHA-256 over the uncompressed public point (Intel uses 20-byte ids).
pub(crate) fn key_id(key: &VerifyingKey) -> [u8; 20] {
    let digest = keys::sha256(key.to_encoded_point(false).as_bytes());
    let mut id = [0u8; 20];
    id.copy_from_slice(&digest[..20]);
    id
}

fn extension(oid: ObjectIdentifier, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).expect("extension fits"),
    }
}

fn authority_key_id(id: &[u8; 20]) -> Extension {
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
    extension(
        OID_AUTHORITY_KEY_ID,
        false,
        asn1::tlv(0x30, &asn1::tlv(0x80, id)),
    )
}

fn crl_distribution_point(uri: &str) -> Extension {
    // SEQUENCE OF DistributionPoint { distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } } }
    let general_names = asn1::tlv(0xA0, &asn1::tlv(0x86, uri.as_bytes()));
    let dp_name = asn1::tlv(0xA0, &general_names);
    extension(
        OID_CRL_DISTRIBUTION_POINTS,
        false,
        asn1::tlv(0x30, &asn1::tlv(0x30, &dp_name)),
    )
}

fn subject_key_id(id: &[u8; 20]) -> Extension {
    extension(OID_SUBJECT_KEY_ID, false, asn1::octet_string(id))
}

/// What a certificate is for: decides key usage and basic constraints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertRole {
    /// Self-signed root: keyCertSign + cRLSign, CA with pathLen 1.
    Root,
    /// Intermediate (PCK Platform CA): keyCertSign + cRLSign, CA with pathLen 0.
    IntermediateCa,
    /// End entity (PCK leaf, TCB Signing): digitalSignature + nonRepudiation, not a CA.
    EndEntity,
}

fn key_usage(role: CertRole) -> Extension {
    let bits: &[u8] = match role {
        // BIT STRING, 1 unused bit, bits 5 (keyCertSign) and 6 (cRLSign).
        CertRole::Root | CertRole::IntermediateCa => &[0x01, 0x06],
        // BIT STRING, 6 unused bits, bits 0 (digitalSignature) and 1 (nonRepudiation).
        CertRole::EndEntity => &[0x06, 0xC0],
    };
    extension(OID_KEY_USAGE, true, asn1::tlv(0x03, bits))
}

fn basic_constraints(role: CertRole) -> Extension {
    let value = match role {
        CertRole::Root => asn1::sequence(&[asn1::boolean(true), asn1::uint(1)]),
        CertRole::IntermediateCa => asn1::sequence(&[asn1::boolean(true), asn1::uint(0)]),
        CertRole::EndEntity => asn1::sequence(&[]),
    };
    extension(OID_BASIC_CONSTRAINTS, true, value)
}

/// Everything that varies between the certificates of the simulated PKI.
#[derive(Debug)]
pub(crate) struct CertTemplate<'a> {
    pub serial: [u8; 20],
    pub issuer: Name,
    pub subject: Name,
    pub not_before: u64,
    pub not_after: u64,
    pub subject_key: &'a VerifyingKey,
    pub issuer_key: &'a VerifyingKey,
    pub crl_distribution_point: &'a str,
    pub role: CertRole,
    /// DER of the SGX extension value (PCK leaves only).
    pub sgx_extension: Option<Vec<u8>>,
}

/// Builds and signs a certificate; returns its DER.
pub(crate) fn issue_certificate(template: CertTemplate<'_>, signer: &SigningKey) -> Vec<u8> {
    let mut extensions = vec![
        authority_key_id(&key_id(template.issuer_key)),
        crl_distribution_point(template.crl_distribution_point),
        subject_key_id(&key_id(template.subject_key)),
        key_usage(template.role),
        basic_constraints(template.role),
    ];
    if let Some(sgx) = template.sgx_extension {
        extensions.push(extension(OID_SGX_EXTENSION, false, sgx));
    }
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&template.serial).expect("20-byte positive serial"),
        signature: ecdsa_sha256(),
        issuer: template.issuer,
        validity: Validity {
            not_before: utc_time(template.not_before),
            not_after: utc_time(template.not_after),
        },
        subject: template.subject,
        subject_public_key_info: spki(template.subject_key),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs_der = encode(&tbs);
    let signature = keys::sign_der(signer, &tbs_der);
    encode(&Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_sha256(),
        signature: BitString::from_bytes(&signature).expect("DER signature fits a BIT STRING"),
    })
}

/// Builds and signs a v2 CRL with CRL number 1 and the issuer's key id; every revoked serial carries reason
/// keyCompromise, revoked at `this_update` (Intel's PCK CRL shape). No revoked serials ⇒ the list is omitted.
pub(crate) fn issue_crl(
    issuer: Name,
    issuer_key: &SigningKey,
    this_update: u64,
    next_update: u64,
    revoked_serials: &[[u8; 20]],
) -> Vec<u8> {
    let revoked: Vec<RevokedCert> = revoked_serials
        .iter()
        .map(|serial| RevokedCert {
            serial_number: SerialNumber::new(serial).expect("20-byte positive serial"),
            revocation_date: utc_time(this_update),
            // CRLReason ::= ENUMERATED { keyCompromise (1) }
            crl_entry_extensions: Some(vec![extension(OID_CRL_REASON, false, asn1::enumerated(1))]),
        })
        .collect();
    let tbs = TbsCertList {
        version: Version::V2,
        signature: ecdsa_sha256(),
        issuer,
        this_update: utc_time(this_update),
        next_update: Some(utc_time(next_update)),
        revoked_certificates: if revoked.is_empty() {
            None
        } else {
            Some(revoked)
        },
        crl_extensions: Some(vec![
            extension(OID_CRL_NUMBER, false, asn1::uint(1)),
            authority_key_id(&key_id(issuer_key.verifying_key())),
        ]),
    };
    let tbs_der = encode(&tbs);
    let signature = keys::sign_der(issuer_key, &tbs_der);
    encode(&CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: ecdsa_sha256(),
        signature: BitString::from_bytes(&signature).expect("DER signature fits a BIT STRING"),
    })
}

/// Values carried by the SGX extension of a PCK leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SgxExtensionValues {
    pub ppid: [u8; 16],
    pub cpu_svn: [u8; 16],
    pub pce_svn: u16,
    pub pce_id: [u8; 2],
    pub fmspc: [u8; 6],
    pub platform_instance_id: [u8; 16],
}

fn oid_value(oid_text: &str, value: Vec<u8>) -> Vec<u8> {
    asn1::sequence(&[asn1::oid(&oid(oid_text)), value])
}

/// DER of the SGX extension value: PPID, TCB (16 component SVNs as INTEGER, PCESVN INTEGER, CPUSVN OCTET STRING),
/// PCE-ID, FMSPC, SGX type (ENUMERATED 1 = scalable), platform instance id and the Platform CA configuration flags
/// dynamicPlatform, cachedKeys, smtEnabled — all false.
pub(crate) fn sgx_extension(values: &SgxExtensionValues) -> Vec<u8> {
    let mut tcb = Vec::with_capacity(18);
    for (index, svn) in values.cpu_svn.iter().enumerate() {
        tcb.push(oid_value(
            &format!("{SGX_TCB}.{}", index + 1),
            asn1::uint(u64::from(*svn)),
        ));
    }
    tcb.push(oid_value(
        &format!("{SGX_TCB}.17"),
        asn1::uint(u64::from(values.pce_svn)),
    ));
    tcb.push(oid_value(
        &format!("{SGX_TCB}.18"),
        asn1::octet_string(&values.cpu_svn),
    ));
    let configuration = asn1::sequence(&[
        oid_value(&format!("{SGX_CONFIGURATION}.1"), asn1::boolean(false)),
        oid_value(&format!("{SGX_CONFIGURATION}.2"), asn1::boolean(false)),
        oid_value(&format!("{SGX_CONFIGURATION}.3"), asn1::boolean(false)),
    ]);
    asn1::sequence(&[
        oid_value(SGX_PPID, asn1::octet_string(&values.ppid)),
        oid_value(SGX_TCB, asn1::sequence(&tcb)),
        oid_value(SGX_PCEID, asn1::octet_string(&values.pce_id)),
        oid_value(SGX_FMSPC, asn1::octet_string(&values.fmspc)),
        oid_value(SGX_TYPE, asn1::enumerated(1)),
        oid_value(
            SGX_PLATFORM_INSTANCE_ID,
            asn1::octet_string(&values.platform_instance_id),
        ),
        oid_value(SGX_CONFIGURATION, configuration),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_use_intel_string_types_and_never_intel_corporation() {
        let der = encode(&sim_name("SIM Intel SGX Root CA"));
        // CN is a UTF8String (0x0C), C a PrintableString (0x13).
        let text = String::from_utf8_lossy(&der);
        assert!(text.contains("SIM Intel SGX Root CA"));
        assert!(!text.contains("Intel Corporation\u{13}"));
        assert!(der.windows(2).any(|w| w == [0x13, 0x02]));
    }

    #[test]
    fn key_usage_and_basic_constraints_match_intel_bytes() {
        assert_eq!(
            key_usage(CertRole::EndEntity).extn_value.as_bytes(),
            [0x03, 0x02, 0x06, 0xC0]
        );
        assert_eq!(
            key_usage(CertRole::Root).extn_value.as_bytes(),
            [0x03, 0x02, 0x01, 0x06]
        );
        assert_eq!(
            basic_constraints(CertRole::EndEntity).extn_value.as_bytes(),
            [0x30, 0x00]
        );
        assert_eq!(
            basic_constraints(CertRole::Root).extn_value.as_bytes(),
            [0x30, 0x06, 0x01, 0x01, 0xFF, 0x02, 0x01, 0x01]
        );
        assert_eq!(
            basic_constraints(CertRole::IntermediateCa)
                .extn_value
                .as_bytes(),
            [0x30, 0x06, 0x01, 0x01, 0xFF, 0x02, 0x01, 0x00]
        );
    }

    #[test]
    fn sgx_extension_has_intel_layout() {
        let der = sgx_extension(&SgxExtensionValues {
            ppid: [0x11; 16],
            cpu_svn: [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
            pce_svn: 11,
            pce_id: [0, 0],
            fmspc: [0xB0, 0xC0, 0x6F, 0, 0, 0],
            platform_instance_id: [0x22; 16],
        });
        // Same prefix as a real PCK: SEQUENCE (long form) { SEQUENCE { OID .1, OCTET STRING(16) } ...
        assert_eq!(&der[..2], &[0x30, 0x82]);
        assert_eq!(&der[4..8], &[0x30, 0x1E, 0x06, 0x0A]);
        // The TCB sequence starts like Intel's: 30 82 01 63 06 0A <.2> 30 82 01 53
        let tcb_at = 4 + 0x20;
        assert_eq!(&der[tcb_at..tcb_at + 4], &[0x30, 0x82, 0x01, 0x63]);
        // Byte-for-byte the same length as the real PCK's extension (554 bytes).
        assert_eq!(der.len(), 554);
    }
}
