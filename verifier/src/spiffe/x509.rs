//! The SPIFFE certificates the verifier signs: the trust domain's self-signed CA and X.509-SVID leaves
//! (SPIFFE X509-SVID standard), built from `x509-cert` types and signed with the CA's ES256 key through
//! [`sign_tbs`], the one place a certificate signature is made.
//!
//! CA: P-256, `basicConstraints` cA (critical), `keyUsage` keyCertSign + cRLSign (critical), `subjectKeyIdentifier`,
//! the trust domain's SPIFFE ID (`spiffe://<trust domain>`) as its only URI SAN.
//!
//! Leaf: the SPIFFE ID as its only URI SAN (no DNS names, no CN requirement), `basicConstraints` cA false
//! (critical), `keyUsage` digitalSignature (critical), `extKeyUsage` serverAuth + clientAuth,
//! `authorityKeyIdentifier` naming the CA key, and, when the agent handed in its EAR, the conceptual message wrapper
//! extension `id-pe-cmw` (1.3.6.1.5.5.7.1.35, draft-ietf-rats-msg-wrap-23 §4.4): `extnValue` is the DER of
//! `CMW ::= CHOICE { json UTF8String, cbor OCTET STRING }`, here the `json` choice holding a CMW record
//! `["<EAR media type>", "<base64url of the EAR>", 8]` (8: the attestation-results indicator). Not critical, as
//! the draft recommends.

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER, ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH,
};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString, SetOfVec, UtcTime};
use der::asn1::{UintRef, Utf8StringRef};
use der::{Any, Decode as _, Encode as _, Sequence};
use locus_wimse::{Es256SigningKey, JwsSigner as _, PublicKey};
use sha2::Digest as _;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate};

/// `id-pe-cmw` (draft-ietf-rats-msg-wrap-23 §4.4, assigned by IANA in the SMI PKIX extension registry).
pub const ID_PE_CMW: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.35");
/// ecdsa-with-SHA256.
pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// The CMW `ind` bit for attestation results.
pub const CMW_IND_ATTESTATION_RESULTS: u8 = 8;

/// Why a certificate could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    #[error("{0}")]
    Invalid(String),
}

/// SubjectPublicKeyInfo of a P-256 key: id-ecPublicKey, prime256v1, the uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The SPKI of a P-256 public key; any other key type is refused.
pub fn spki_p256(key: &PublicKey) -> Result<SubjectPublicKeyInfoOwned, CertError> {
    let PublicKey::P256 { x, y } = key else {
        return Err(CertError::Invalid("not a P-256 key".into()));
    };
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.push(0x04);
    der.extend_from_slice(x);
    der.extend_from_slice(y);
    Ok(SubjectPublicKeyInfoOwned::from_der(&der)?)
}

/// A key identifier: the first 20 bytes of SHA-256 over the subjectPublicKey bits (RFC 7093 §2 method 1).
pub fn key_id(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    sha2::Sha256::digest(spki.subject_public_key.raw_bytes())[..20].to_vec()
}

/// `O=Locus, CN=<cn>` (UTF8String values).
pub fn name(cn: &str) -> Result<Name, CertError> {
    use const_oid::db::rfc4519 as n;
    let mut rdns = Vec::new();
    for (oid, v) in [(n::O, "Locus"), (n::CN, cn)] {
        let atv = AttributeTypeAndValue {
            oid,
            value: Any::encode_from(&Utf8StringRef::new(v)?)?,
        };
        rdns.push(RelativeDistinguishedName(SetOfVec::try_from(vec![atv])?));
    }
    Ok(RdnSequence(rdns))
}

/// A certificate time: UTCTime before 2050, GeneralizedTime from then on (RFC 5280 §4.1.2.5).
pub fn time(unix_secs: u64) -> Result<Time, CertError> {
    let d = std::time::Duration::from_secs(unix_secs);
    if unix_secs < 2_524_608_000 {
        Ok(Time::UtcTime(UtcTime::from_unix_duration(d)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(d)?))
    }
}

fn ext<T: der::Encode>(
    oid: ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, CertError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// A random positive serial of 127 bits, minimally encoded (second-highest bit set, highest clear).
pub fn random_serial() -> Result<SerialNumber, CertError> {
    let mut bytes: [u8; 16] = ring::rand::generate(&ring::rand::SystemRandom::new())
        .map_err(|_| CertError::Invalid("random source failed".into()))?
        .expose();
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::new(&bytes)?)
}

#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Sign a DER `TBSCertificate` with the CA key: ES256 through the key's signer (fixed `r ‖ s`), re-encoded as the
/// X.509 `ECDSA-Sig-Value` DER sequence.
pub fn sign_tbs(key: &Es256SigningKey, tbs_der: &[u8]) -> Result<Vec<u8>, CertError> {
    let fixed = key
        .sign(tbs_der)
        .map_err(|e| CertError::Invalid(format!("signing: {e}")))?;
    if fixed.len() != 64 {
        return Err(CertError::Invalid("ES256 signature is not 64 bytes".into()));
    }
    let value = EcdsaSigValue {
        r: UintRef::new(&fixed[..32])?,
        s: UintRef::new(&fixed[32..])?,
    };
    Ok(value.to_der()?)
}

fn sign_certificate(tbs: TbsCertificate, key: &Es256SigningKey) -> Result<Vec<u8>, CertError> {
    let sig = sign_tbs(key, &tbs.to_der()?)?;
    let cert = Certificate {
        signature_algorithm: tbs.signature.clone(),
        tbs_certificate: tbs,
        signature: BitString::from_bytes(&sig)?,
    };
    Ok(cert.to_der()?)
}

fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA256,
        parameters: None,
    }
}

fn uri_san(uri: &str) -> Result<Extension, CertError> {
    let ia5 = Ia5String::new(uri).map_err(|e| CertError::Invalid(format!("URI SAN: {e}")))?;
    ext(
        ID_CE_SUBJECT_ALT_NAME,
        false,
        &SubjectAltName(vec![GeneralName::UniformResourceIdentifier(ia5)]),
    )
}

/// The self-signed CA certificate of `trust_domain` for `key`, valid from `not_before` to `not_after`; `generation`
/// (the key's not-before) goes into the CN so successive CAs have distinct names.
pub fn ca_certificate(
    key: &Es256SigningKey,
    trust_domain: &str,
    generation: u64,
    not_before: u64,
    not_after: u64,
) -> Result<Vec<u8>, CertError> {
    let spki = spki_p256(&key.public_key())?;
    let subject = name(&format!("{trust_domain} SPIFFE CA {generation}"))?;
    let tbs = TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: random_serial()?,
        signature: ecdsa_sha256(),
        issuer: subject.clone(),
        validity: Validity {
            not_before: time(not_before)?,
            not_after: time(not_after)?,
        },
        subject,
        extensions: Some(vec![
            ext(
                ID_CE_BASIC_CONSTRAINTS,
                true,
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: Some(0),
                },
            )?,
            ext(
                ID_CE_KEY_USAGE,
                true,
                &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
            )?,
            ext(
                ID_CE_SUBJECT_KEY_IDENTIFIER,
                false,
                &SubjectKeyIdentifier(OctetString::new(key_id(&spki))?),
            )?,
            uri_san(&format!("spiffe://{trust_domain}"))?,
        ]),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
    };
    sign_certificate(tbs, key)
}

/// The attestation result to carry in a leaf: its media type and the EAR as sent (a JWT, or base64url of a CWT).
#[derive(Debug, Clone, Copy)]
pub struct CmwEar<'a> {
    pub media_type: &'a str,
    /// A JWT's ASCII bytes are base64url-encoded into the record; a CWT arrives base64url already and is decoded
    /// first, so the record's value is always base64url of the EAR's own bytes.
    pub value: &'a [u8],
}

/// The `id-pe-cmw` extension holding `ear` as a JSON CMW record.
pub fn cmw_extension(ear: &CmwEar<'_>) -> Result<Extension, CertError> {
    let record = serde_json::json!([
        ear.media_type,
        locus_wimse::b64::encode(ear.value),
        CMW_IND_ATTESTATION_RESULTS
    ])
    .to_string();
    let choice = Utf8StringRef::new(&record)?;
    ext(ID_PE_CMW, false, &choice)
}

/// What a leaf says.
#[derive(Debug)]
pub struct LeafRequest<'a> {
    /// The SPIFFE ID (the only URI SAN).
    pub spiffe_id: &'a str,
    /// The per-SVID public key (P-256).
    pub public_key: &'a PublicKey,
    pub not_before: u64,
    pub not_after: u64,
    pub ear: Option<CmwEar<'a>>,
}

/// An X.509-SVID signed by the CA (`ca_key`, whose certificate is `ca_der`).
pub fn leaf_certificate(
    req: &LeafRequest<'_>,
    ca_key: &Es256SigningKey,
    ca_der: &[u8],
) -> Result<(Vec<u8>, SerialNumber), CertError> {
    let ca = Certificate::from_der(ca_der)?;
    let ca_spki = &ca.tbs_certificate.subject_public_key_info;
    let ca_pub = spki_p256(&ca_key.public_key())?;
    if ca_pub != *ca_spki {
        return Err(CertError::Invalid(
            "CA certificate does not hold the CA key".into(),
        ));
    }
    let spki = spki_p256(req.public_key)?;
    let serial = random_serial()?;
    let mut extensions = vec![
        ext(
            ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
        )?,
        ext(
            ID_CE_KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::DigitalSignature.into()),
        )?,
        ext(
            ID_CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH]),
        )?,
        ext(
            ID_CE_AUTHORITY_KEY_IDENTIFIER,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(key_id(ca_spki))?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
        uri_san(req.spiffe_id)?,
    ];
    if let Some(ear) = &req.ear {
        extensions.push(cmw_extension(ear)?);
    }
    let tbs = TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: serial.clone(),
        signature: ecdsa_sha256(),
        issuer: ca.tbs_certificate.subject.clone(),
        validity: Validity {
            not_before: time(req.not_before)?,
            not_after: time(req.not_after)?,
        },
        subject: name("SVID")?,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    Ok((sign_certificate(tbs, ca_key)?, serial))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify_sig(cert_der: &[u8], issuer: &PublicKey) -> bool {
        let cert = Certificate::from_der(cert_der).expect("parse");
        let tbs = cert.tbs_certificate.to_der().expect("tbs");
        let PublicKey::P256 { x, y } = issuer else {
            return false;
        };
        let mut point = vec![4u8];
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
            .verify(&tbs, cert.signature.raw_bytes())
            .is_ok()
    }

    fn ext_of(cert: &Certificate, oid: ObjectIdentifier) -> Option<&Extension> {
        cert.tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
    }

    #[test]
    fn the_ca_is_self_signed_with_the_trust_domain_as_its_only_uri_san() {
        let key = Es256SigningKey::generate().expect("key");
        let der_bytes =
            ca_certificate(&key, "locus.example", 42, 1_800_000_000, 1_900_000_000).expect("ca");
        assert!(verify_sig(&der_bytes, &key.public_key()));
        let cert = Certificate::from_der(&der_bytes).expect("parse");
        assert_eq!(cert.tbs_certificate.issuer, cert.tbs_certificate.subject);
        let bc = ext_of(&cert, ID_CE_BASIC_CONSTRAINTS).expect("bc");
        assert!(bc.critical);
        let bc = BasicConstraints::from_der(bc.extn_value.as_bytes()).expect("bc");
        assert!(bc.ca);
        let san = ext_of(&cert, ID_CE_SUBJECT_ALT_NAME).expect("san");
        let san = SubjectAltName::from_der(san.extn_value.as_bytes()).expect("san");
        assert_eq!(san.0.len(), 1);
        assert!(
            matches!(&san.0[0], GeneralName::UniformResourceIdentifier(u) if u.as_str() == "spiffe://locus.example")
        );
    }

    #[test]
    fn a_leaf_chains_to_its_ca_and_carries_the_spiffe_id_the_key_usages_and_the_ear() {
        let ca_key = Es256SigningKey::generate().expect("key");
        let ca =
            ca_certificate(&ca_key, "locus.example", 0, 1_800_000_000, 1_900_000_000).expect("ca");
        let leaf_key = Es256SigningKey::generate().expect("key");
        let ear = b"header.payload.sig";
        let (der_bytes, serial) = leaf_certificate(
            &LeafRequest {
                spiffe_id: "spiffe://locus.example/ns/prod/sa/api",
                public_key: &leaf_key.public_key(),
                not_before: 1_800_000_000,
                not_after: 1_800_003_600,
                ear: Some(CmwEar {
                    media_type: "application/eat+jwt",
                    value: ear,
                }),
            },
            &ca_key,
            &ca,
        )
        .expect("leaf");
        assert!(verify_sig(&der_bytes, &ca_key.public_key()));
        assert!(!verify_sig(&der_bytes, &leaf_key.public_key()));
        let cert = Certificate::from_der(&der_bytes).expect("parse");
        assert_eq!(cert.tbs_certificate.serial_number, serial);
        let ca_cert = Certificate::from_der(&ca).expect("ca");
        assert_eq!(cert.tbs_certificate.issuer, ca_cert.tbs_certificate.subject);
        assert_eq!(
            cert.tbs_certificate.subject_public_key_info,
            spki_p256(&leaf_key.public_key()).expect("spki")
        );
        let bc = BasicConstraints::from_der(
            ext_of(&cert, ID_CE_BASIC_CONSTRAINTS)
                .expect("bc")
                .extn_value
                .as_bytes(),
        )
        .expect("bc");
        assert!(!bc.ca);
        let ku = ext_of(&cert, ID_CE_KEY_USAGE).expect("ku");
        assert!(ku.critical);
        let ku = KeyUsage::from_der(ku.extn_value.as_bytes()).expect("ku");
        assert!(ku.digital_signature() && !ku.key_cert_sign());
        let eku = ExtendedKeyUsage::from_der(
            ext_of(&cert, ID_CE_EXT_KEY_USAGE)
                .expect("eku")
                .extn_value
                .as_bytes(),
        )
        .expect("eku");
        assert_eq!(eku.0, vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH]);
        let san = SubjectAltName::from_der(
            ext_of(&cert, ID_CE_SUBJECT_ALT_NAME)
                .expect("san")
                .extn_value
                .as_bytes(),
        )
        .expect("san");
        assert_eq!(san.0.len(), 1, "the SPIFFE ID is the only SAN");
        assert!(
            matches!(&san.0[0], GeneralName::UniformResourceIdentifier(u) if u.as_str() == "spiffe://locus.example/ns/prod/sa/api")
        );
        // The CMW: DER UTF8String holding the JSON record [type, base64url(value), 8].
        let cmw = ext_of(&cert, ID_PE_CMW).expect("cmw");
        assert!(!cmw.critical);
        let text = der::asn1::Utf8StringRef::from_der(cmw.extn_value.as_bytes()).expect("utf8");
        let record: serde_json::Value = serde_json::from_str(text.as_str()).expect("json");
        assert_eq!(
            record,
            serde_json::json!(["application/eat+jwt", locus_wimse::b64::encode(ear), 8])
        );
    }

    #[test]
    fn a_leaf_without_an_ear_has_no_cmw_extension_and_a_ca_mismatch_is_refused() {
        let ca_key = Es256SigningKey::generate().expect("key");
        let ca = ca_certificate(&ca_key, "td", 0, 1_800_000_000, 1_900_000_000).expect("ca");
        let leaf_key = Es256SigningKey::generate().expect("key");
        let req = LeafRequest {
            spiffe_id: "spiffe://td/a",
            public_key: &leaf_key.public_key(),
            not_before: 1_800_000_000,
            not_after: 1_800_000_100,
            ear: None,
        };
        let (der_bytes, _) = leaf_certificate(&req, &ca_key, &ca).expect("leaf");
        let cert = Certificate::from_der(&der_bytes).expect("parse");
        assert!(ext_of(&cert, ID_PE_CMW).is_none());
        let other = Es256SigningKey::generate().expect("key");
        assert!(matches!(
            leaf_certificate(&req, &other, &ca),
            Err(CertError::Invalid(_))
        ));
    }

    #[test]
    fn signatures_are_der_ecdsa_sig_values_whatever_the_leading_bytes() {
        let key = Es256SigningKey::generate().expect("key");
        let PublicKey::P256 { x, y } = key.public_key() else {
            panic!("P-256")
        };
        let mut point = vec![4u8];
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        let verifier = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            point,
        );
        // Enough signatures that r or s with a high first bit (needing a 0x00 pad) and short values both occur.
        for i in 0..64u32 {
            let msg = i.to_be_bytes();
            let sig = sign_tbs(&key, &msg).expect("sign");
            assert!(verifier.verify(&msg, &sig).is_ok(), "{i}");
        }
    }

    #[test]
    fn serials_are_positive_minimal_and_distinct() {
        let a = random_serial().expect("serial");
        let b = random_serial().expect("serial");
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 16);
        assert_eq!(a.as_bytes()[0] & 0xc0, 0x40);
    }
}
