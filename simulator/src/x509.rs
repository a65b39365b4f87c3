//! Certificate and CRL construction from `x509-cert` types: build the TBS structure, DER-encode it, sign those bytes,
//! and wrap them. No certificate-builder crate: every field is set explicitly so the output matches the vendors'
//! certificates field for field.

use const_oid::ObjectIdentifier;
use der::asn1::{BitString, OctetString, PrintableStringRef, SetOfVec, UtcTime, Utf8StringRef};
use der::{Any, Decode, Encode};
use sha2::Digest;
use signature::{RandomizedSigner, SignatureEncoding, Signer as _};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::crl::{CertificateList, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate};

use crate::error::SimError;

/// rsassaPss (RFC 4055).
pub const OID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// ecdsa-with-SHA384.
pub const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA256.
pub const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// RSASSA-PSS-params exactly as AMD encodes them in every ARK/ASK/VCEK: hash SHA-384, MGF1 with SHA-384, salt 48,
/// and the (default, but explicitly present) trailer field 1.
const AMD_PSS_PARAMS: [u8; 59] = [
    0x30, 0x39, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
    0x02, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
    0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0xa2, 0x03, 0x02, 0x01, 0x30, 0xa3, 0x03, 0x02, 0x01, 0x01,
];

/// How a certificate or CRL gets signed.
pub enum Signer<'a> {
    /// RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 (AMD). The salt is drawn from a ChaCha20 stream seeded with
    /// `seed`, the issuer label and the message, so signatures are deterministic.
    RsaPssSha384 {
        /// The issuer's RSA key.
        key: &'a rsa::RsaPrivateKey,
        /// World seed.
        seed: u64,
        /// Issuer label (domain-separates the salt streams).
        label: &'a str,
    },
    /// ECDSA P-384 with SHA-384 (RFC 6979).
    EcdsaP384(&'a p384::ecdsa::SigningKey),
    /// ECDSA P-256 with SHA-256 (RFC 6979) (Intel).
    EcdsaP256(&'a p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Signer::RsaPssSha384 { label, .. } => format!("RsaPssSha384({label})"),
            Signer::EcdsaP384(_) => "EcdsaP384".into(),
            Signer::EcdsaP256(_) => "EcdsaP256".into(),
        };
        f.write_str(&kind)
    }
}

impl Signer<'_> {
    /// The AlgorithmIdentifier this signer writes into the TBS and the outer structure.
    pub fn algorithm(&self) -> Result<AlgorithmIdentifierOwned, SimError> {
        Ok(match self {
            Signer::RsaPssSha384 { .. } => AlgorithmIdentifierOwned {
                oid: OID_RSASSA_PSS,
                parameters: Some(Any::from_der(&AMD_PSS_PARAMS)?),
            },
            Signer::EcdsaP384(_) => AlgorithmIdentifierOwned {
                oid: OID_ECDSA_SHA384,
                parameters: None,
            },
            Signer::EcdsaP256(_) => AlgorithmIdentifierOwned {
                oid: OID_ECDSA_SHA256,
                parameters: None,
            },
        })
    }

    /// Sign `msg`; ECDSA signatures come out DER-encoded (X.509 form).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SimError> {
        Ok(match self {
            Signer::RsaPssSha384 { key, seed, label } => {
                let sk =
                    rsa::pss::SigningKey::<sha2::Sha384>::new_with_salt_len((*key).clone(), 48);
                let mut rng = crate::keys::rng(
                    *seed,
                    &format!("pss-salt:{label}"),
                    &sha2::Sha384::digest(msg),
                );
                sk.try_sign_with_rng(&mut rng, msg)
                    .map_err(|e| SimError::Invalid(format!("RSA-PSS sign: {e}")))?
                    .to_vec()
            }
            Signer::EcdsaP384(k) => {
                let sig: p384::ecdsa::Signature = k
                    .try_sign(msg)
                    .map_err(|e| SimError::Invalid(format!("ECDSA: {e}")))?;
                sig.to_der().as_bytes().to_vec()
            }
            Signer::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k
                    .try_sign(msg)
                    .map_err(|e| SimError::Invalid(format!("ECDSA: {e}")))?;
                sig.to_der().as_bytes().to_vec()
            }
        })
    }
}

/// One attribute of a distinguished name.
#[derive(Debug, Clone, Copy)]
pub enum NameAttr<'a> {
    /// countryName (PrintableString).
    C(&'a str),
    /// stateOrProvinceName.
    St(&'a str),
    /// localityName.
    L(&'a str),
    /// organizationName.
    O(&'a str),
    /// organizationalUnitName.
    Ou(&'a str),
    /// commonName.
    Cn(&'a str),
}

/// A distinguished name with one attribute per RDN, in the given order (UTF8String values, PrintableString for C,
/// as AMD and Intel encode them).
pub fn name(attrs: &[NameAttr<'_>]) -> Result<Name, SimError> {
    use const_oid::db::rfc4519 as n;
    let mut rdns = Vec::with_capacity(attrs.len());
    for a in attrs {
        let (oid, value) = match a {
            NameAttr::C(v) => (n::C, Any::encode_from(&PrintableStringRef::new(v)?)?),
            NameAttr::St(v) => (n::ST, Any::encode_from(&Utf8StringRef::new(v)?)?),
            NameAttr::L(v) => (n::L, Any::encode_from(&Utf8StringRef::new(v)?)?),
            NameAttr::O(v) => (n::O, Any::encode_from(&Utf8StringRef::new(v)?)?),
            NameAttr::Ou(v) => (n::OU, Any::encode_from(&Utf8StringRef::new(v)?)?),
            NameAttr::Cn(v) => (n::CN, Any::encode_from(&Utf8StringRef::new(v)?)?),
        };
        let atv = AttributeTypeAndValue { oid, value };
        rdns.push(RelativeDistinguishedName(SetOfVec::try_from(vec![atv])?));
    }
    Ok(RdnSequence(rdns))
}

/// A certificate/CRL time: UTCTime before 2050, GeneralizedTime after (RFC 5280 §4.1.2.5).
pub fn time(unix_secs: u64) -> Result<Time, SimError> {
    let d = std::time::Duration::from_secs(unix_secs);
    if unix_secs < 2_524_608_000 {
        Ok(Time::UtcTime(UtcTime::from_unix_duration(d)?))
    } else {
        Ok(Time::GeneralTime(
            der::asn1::GeneralizedTime::from_unix_duration(d)?,
        ))
    }
}

/// Validity from two Unix times.
pub fn validity(not_before: u64, not_after: u64) -> Result<Validity, SimError> {
    Ok(Validity {
        not_before: time(not_before)?,
        not_after: time(not_after)?,
    })
}

/// A serial number from a u64 (0 is allowed: AMD's VCEKs have serial 0).
pub fn serial(n: u64) -> Result<SerialNumber, SimError> {
    let bytes = n.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    Ok(SerialNumber::new(&bytes[first..])?)
}

/// An extension whose value is the DER of `value`.
pub fn ext<T: Encode>(
    oid: ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, SimError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// An extension whose value is the given raw bytes (AMD's hwID carries the chip id without a DER wrapper).
pub fn ext_raw(oid: ObjectIdentifier, critical: bool, raw: &[u8]) -> Result<Extension, SimError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(raw)?,
    })
}

/// A key identifier: the first 20 bytes of SHA-256 of the subjectPublicKey bits.
pub fn key_id(spki: &SubjectPublicKeyInfoOwned) -> [u8; 20] {
    let h = sha2::Sha256::digest(spki.subject_public_key.raw_bytes());
    let mut out = [0u8; 20];
    out.copy_from_slice(&h[..20]);
    out
}

/// SPKI of a P-384 key.
pub fn spki_p384(k: &p384::ecdsa::VerifyingKey) -> Result<SubjectPublicKeyInfoOwned, SimError> {
    use p384::pkcs8::EncodePublicKey;
    let doc = k
        .to_public_key_der()
        .map_err(|e| SimError::Pkcs8(e.to_string()))?;
    Ok(SubjectPublicKeyInfoOwned::from_der(doc.as_bytes())?)
}

/// SPKI of a P-256 key.
pub fn spki_p256(k: &p256::ecdsa::VerifyingKey) -> Result<SubjectPublicKeyInfoOwned, SimError> {
    use p256::pkcs8::EncodePublicKey;
    let doc = k
        .to_public_key_der()
        .map_err(|e| SimError::Pkcs8(e.to_string()))?;
    Ok(SubjectPublicKeyInfoOwned::from_der(doc.as_bytes())?)
}

/// SPKI of an RSA key (rsaEncryption with NULL parameters, as AMD's).
pub fn spki_rsa(k: &rsa::RsaPublicKey) -> Result<SubjectPublicKeyInfoOwned, SimError> {
    use rsa::pkcs8::EncodePublicKey;
    let doc = k
        .to_public_key_der()
        .map_err(|e| SimError::Pkcs8(e.to_string()))?;
    Ok(SubjectPublicKeyInfoOwned::from_der(doc.as_bytes())?)
}

/// The fields of a certificate that the caller chooses; version is always v3 and the signature algorithm comes from
/// the signer.
#[derive(Debug, Clone)]
pub struct CertFields {
    /// Serial number.
    pub serial: SerialNumber,
    /// Issuer name (equal to the issuer certificate's subject).
    pub issuer: Name,
    /// Subject name.
    pub subject: Name,
    /// notBefore, notAfter.
    pub validity: Validity,
    /// Subject public key.
    pub spki: SubjectPublicKeyInfoOwned,
    /// Extensions in order (None = no extensions field).
    pub extensions: Vec<Extension>,
}

/// Build, sign and DER-encode a certificate.
pub fn certificate(fields: CertFields, signer: &Signer<'_>) -> Result<Vec<u8>, SimError> {
    let alg = signer.algorithm()?;
    let tbs = TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: fields.serial,
        signature: alg.clone(),
        issuer: fields.issuer,
        validity: fields.validity,
        subject: fields.subject,
        subject_public_key_info: fields.spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: if fields.extensions.is_empty() {
            None
        } else {
            Some(fields.extensions)
        },
    };
    let tbs_der = tbs.to_der()?;
    let sig = signer.sign(&tbs_der)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(&sig)?,
    };
    Ok(cert.to_der()?)
}

/// One revoked entry of a CRL.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// Serial of the revoked certificate.
    pub serial: SerialNumber,
    /// Revocation time (Unix seconds).
    pub at: u64,
}

/// Build, sign and DER-encode a v2 CRL.
pub fn crl(
    issuer: Name,
    this_update: u64,
    next_update: u64,
    revoked: &[Revoked],
    extensions: Vec<Extension>,
    signer: &Signer<'_>,
) -> Result<Vec<u8>, SimError> {
    let alg = signer.algorithm()?;
    let mut entries = Vec::with_capacity(revoked.len());
    for r in revoked {
        entries.push(x509_cert::crl::RevokedCert {
            serial_number: r.serial.clone(),
            revocation_date: time(r.at)?,
            crl_entry_extensions: None,
        });
    }
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: alg.clone(),
        issuer,
        this_update: time(this_update)?,
        next_update: Some(time(next_update)?),
        revoked_certificates: if entries.is_empty() {
            None
        } else {
            Some(entries)
        },
        crl_extensions: if extensions.is_empty() {
            None
        } else {
            Some(extensions)
        },
    };
    let tbs_der = tbs.to_der()?;
    let sig = signer.sign(&tbs_der)?;
    let list = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(&sig)?,
    };
    Ok(list.to_der()?)
}

/// PEM-encode one DER certificate.
pub fn cert_pem(der_bytes: &[u8]) -> String {
    pem_block("CERTIFICATE", der_bytes)
}

/// PEM-encode a DER blob under `label` (64-column base64, LF line endings).
pub fn pem_block(label: &str, der_bytes: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der_bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_2050_are_utc_and_after_are_generalized() {
        assert!(matches!(time(2_524_607_999), Ok(Time::UtcTime(_))));
        assert!(matches!(time(2_524_608_000), Ok(Time::GeneralTime(_))));
    }

    #[test]
    fn serial_zero_encodes_as_a_single_zero_octet() {
        let s = serial(0).expect("serial 0");
        assert_eq!(s.as_bytes(), &[0]);
        assert_eq!(serial(0x01_0000).expect("serial").as_bytes(), &[1, 0, 0]);
    }

    #[test]
    fn names_keep_attribute_order_and_printable_country() {
        use der::Tagged;
        let n = name(&[NameAttr::C("US"), NameAttr::O("Org"), NameAttr::Cn("X")]).expect("name");
        assert_eq!(n.0.len(), 3);
        assert_eq!(
            n.0[0].0.get(0).map(|a| a.value.tag()),
            Some(der::Tag::PrintableString)
        );
        assert_eq!(
            n.0[2].0.get(0).map(|a| a.value.tag()),
            Some(der::Tag::Utf8String)
        );
    }

    #[test]
    fn ecdsa_certificates_round_trip_and_verify() {
        let key = crate::keys::p256_key(1, "x509-test");
        let spki = spki_p256(key.verifying_key()).expect("spki");
        let subject = name(&[NameAttr::Cn("test")]).expect("name");
        let der_bytes = certificate(
            CertFields {
                serial: serial(5).expect("serial"),
                issuer: subject.clone(),
                subject,
                validity: validity(1_700_000_000, 1_800_000_000).expect("validity"),
                spki,
                extensions: vec![],
            },
            &Signer::EcdsaP256(&key),
        )
        .expect("cert");
        let cert = Certificate::from_der(&der_bytes).expect("parse");
        assert_eq!(cert.signature_algorithm.oid, OID_ECDSA_SHA256);
        assert!(cert.tbs_certificate.extensions.is_none());
        let tbs = cert.tbs_certificate.to_der().expect("tbs");
        let sig = p256::ecdsa::Signature::from_der(cert.signature.raw_bytes()).expect("DER sig");
        use signature::Verifier;
        assert!(key.verifying_key().verify(&tbs, &sig).is_ok());
        use der::DecodePem;
        let pem = cert_pem(&der_bytes);
        assert_eq!(
            Certificate::from_pem(pem.as_bytes())
                .expect("pem")
                .to_der()
                .expect("der"),
            der_bytes
        );
    }
}
