//! The X.509 pieces of the AMD chain: PEM, certificates and CRLs parsed with `x509-cert`, RSASSA-PSS SHA-384 links and
//! ECDSA checks verified over the exact bytes received (never a re-encoding), validity at `now`, and the
//! AMD KDS extensions of VCEK/VLEK certificates (VCEK Certificate and KDS Interface Specification, publication 57230).

use const_oid::ObjectIdentifier;
use der::asn1::{Ia5StringRef, OctetStringRef};
use der::{Decode, Encode, Header, Reader, SliceReader};
use ring::signature;
use spki::AlgorithmIdentifierRef;
use x509_cert::crl::CertificateList;
use x509_cert::Certificate;

use crate::error::{ErrorCode, Refusal};

/// rsaEncryption: the SPKI algorithm of AMD's RSA keys.
pub(crate) const OID_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// RSASSA-PSS: the only signature algorithm of the AMD chain.
pub(crate) const OID_RSASSA_PSS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// id-mgf1.
const OID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
/// id-sha384.
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-ecPublicKey.
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp384r1.
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// AMD KDS extension OIDs (publication 57230).
pub(crate) mod amd_oid {
    use const_oid::ObjectIdentifier;
    pub const PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
    pub const BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
    pub const TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
    pub const SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
    pub const UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
    pub const FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
    pub const HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
    pub const CSP_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.5");
}

/// Every `-----BEGIN CERTIFICATE-----` block of a PEM text, decoded, in order. Other blocks are skipped.
pub fn pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    pem_blocks(text, "CERTIFICATE")
}

/// Every PEM block with the given label, decoded, in order (the `pem` crate, which dcap-qvl already brings: the
/// verifier's one PEM decoder). Blocks with other labels are skipped; malformed PEM is an error.
pub fn pem_blocks(text: &[u8], label: &str) -> Result<Vec<Vec<u8>>, String> {
    let blocks = pem::parse_many(text).map_err(|e| format!("PEM: {e}"))?;
    Ok(blocks
        .into_iter()
        .filter(|b| b.tag() == label)
        .map(pem::Pem::into_contents)
        .collect())
}

/// DER from a file's bytes that hold one certificate as DER or PEM.
pub fn der_or_pem_certificate(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    let mut certs = pem_certificates(bytes)?;
    match certs.len() {
        1 => Ok(certs.remove(0)),
        0 => Err("no certificate found (neither DER nor PEM)".into()),
        n => Err(format!("expected one certificate, found {n}")),
    }
}

/// SHA-256 of a DER blob (certificate fingerprints, pins).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The first TLV inside the outer SEQUENCE: the exact signed bytes (tbsCertificate / tbsCertList) as received.
fn first_inner_tlv(der: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    let outer = Header::decode(&mut reader)?;
    outer.tag.assert_eq(der::Tag::Sequence)?;
    reader.tlv_bytes()
}

/// A parsed certificate beside its DER and the exact TBS bytes its signature covers.
#[derive(Debug, Clone)]
pub struct ParsedCert {
    pub der: Vec<u8>,
    pub cert: Certificate,
    tbs_range: (usize, usize),
    /// Which certificate this is, for messages ("VCEK", "ASK", "ARK").
    pub role: &'static str,
}

impl ParsedCert {
    /// Parse DER; a failure is `code` (the caller knows whether the bytes are evidence or endorsement).
    pub fn parse(der: &[u8], role: &'static str) -> Result<Self, Refusal> {
        let bad = |e: der::Error| {
            Refusal::new(
                ErrorCode::ChainUntrusted,
                format!("{role} certificate does not parse as X.509: {e}"),
            )
        };
        let cert = Certificate::from_der(der).map_err(bad)?;
        let tbs = first_inner_tlv(der).map_err(bad)?;
        let start = tbs.as_ptr() as usize - der.as_ptr() as usize;
        Ok(ParsedCert {
            der: der.to_vec(),
            cert,
            tbs_range: (start, start + tbs.len()),
            role,
        })
    }

    pub fn tbs_bytes(&self) -> &[u8] {
        &self.der[self.tbs_range.0..self.tbs_range.1]
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        sha256(&self.der)
    }

    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate.issuer.to_string()
    }

    /// The value of the subject's (first) commonName.
    pub fn subject_cn(&self) -> Option<String> {
        name_attr(
            &self.cert.tbs_certificate.subject,
            const_oid::db::rfc4519::CN,
        )
    }

    /// The value of the issuer's (first) commonName.
    pub fn issuer_cn(&self) -> Option<String> {
        name_attr(
            &self.cert.tbs_certificate.issuer,
            const_oid::db::rfc4519::CN,
        )
    }

    /// True when the subject names the issuer (a self-issued certificate).
    pub fn self_issued(&self) -> bool {
        self.cert.tbs_certificate.subject == self.cert.tbs_certificate.issuer
    }

    /// notBefore and notAfter, Unix seconds (the inclusive window [`ParsedCert::check_validity`] applies).
    pub fn validity(&self) -> (u64, u64) {
        let v = &self.cert.tbs_certificate.validity;
        (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    /// Validity at `now`: `certificate_expired` outside notBefore..=notAfter.
    pub fn check_validity(&self, now: u64) -> Result<(), Refusal> {
        let v = &self.cert.tbs_certificate.validity;
        let (nb, na) = self.validity();
        if now < nb {
            return Err(Refusal::new(
                ErrorCode::CertificateExpired,
                format!(
                    "{} certificate not yet valid: notBefore {} > now {now}",
                    self.role, v.not_before
                ),
            ));
        }
        if now > na {
            return Err(Refusal::new(
                ErrorCode::CertificateExpired,
                format!(
                    "{} certificate expired: notAfter {} < now {now}",
                    self.role, v.not_after
                ),
            ));
        }
        Ok(())
    }

    /// The raw value bytes of an extension (inside the extnValue OCTET STRING), if present.
    pub fn extension(&self, oid: ObjectIdentifier) -> Option<&[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// An extension holding a DER INTEGER (the AMD SPL values).
    pub fn extension_u32(&self, oid: ObjectIdentifier) -> Result<Option<u32>, Refusal> {
        let Some(raw) = self.extension(oid) else {
            return Ok(None);
        };
        u32::from_der(raw).map(Some).map_err(|e| {
            Refusal::new(
                ErrorCode::ChainUntrusted,
                format!("{} extension {oid} is not an INTEGER: {e}", self.role),
            )
        })
    }

    /// An extension holding an IA5String (productName, cspID).
    pub fn extension_ia5(&self, oid: ObjectIdentifier) -> Result<Option<String>, Refusal> {
        let Some(raw) = self.extension(oid) else {
            return Ok(None);
        };
        Ia5StringRef::from_der(raw)
            .map(|s| Some(s.as_str().to_string()))
            .map_err(|e| {
                Refusal::new(
                    ErrorCode::ChainUntrusted,
                    format!("{} extension {oid} is not an IA5String: {e}", self.role),
                )
            })
    }

    /// The hwID extension: AMD writes the raw chip id bytes (64, Turin 8) without a DER wrapper; an OCTET STRING
    /// wrapped value is accepted too. `expected_len` disambiguates (a wrapped value is 2 bytes longer).
    pub fn hw_id(&self, expected_len: usize) -> Option<Vec<u8>> {
        let raw = self.extension(amd_oid::HW_ID)?;
        if raw.len() == expected_len {
            return Some(raw.to_vec());
        }
        OctetStringRef::from_der(raw)
            .ok()
            .map(|o| o.as_bytes().to_vec())
    }

    /// The SEC1 uncompressed point of a P-384 SPKI (VCEK/VLEK), or `chain_untrusted`.
    pub fn p384_public_key(&self) -> Result<&[u8], Refusal> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if spki.algorithm.oid != OID_EC_PUBLIC_KEY || curve != Some(OID_SECP384R1) {
            return Err(Refusal::new(
                ErrorCode::ChainUntrusted,
                format!(
                    "{} key is not an EC P-384 key (algorithm {})",
                    self.role, spki.algorithm.oid
                ),
            ));
        }
        spki.subject_public_key.as_bytes().ok_or_else(|| {
            Refusal::new(
                ErrorCode::ChainUntrusted,
                format!("{} public key bit string is not octet-aligned", self.role),
            )
        })
    }

    /// The PKCS#1 RSAPublicKey of an rsaEncryption SPKI (ARK, ASK/ASVK).
    fn rsa_public_key(&self) -> Result<&[u8], Refusal> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid != OID_RSA_ENCRYPTION {
            return Err(Refusal::new(
                ErrorCode::ChainUntrusted,
                format!(
                    "{} key is not rsaEncryption (algorithm {})",
                    self.role, spki.algorithm.oid
                ),
            ));
        }
        spki.subject_public_key.as_bytes().ok_or_else(|| {
            Refusal::new(
                ErrorCode::ChainUntrusted,
                format!("{} public key bit string is not octet-aligned", self.role),
            )
        })
    }

    /// Check that `issuer` signed this certificate: issuer name = issuer's subject, RSASSA-PSS SHA-384 (MGF1 SHA-384,
    /// salt 48) declared in both signature fields, and the signature verified by ring over the received TBS bytes.
    pub fn verify_signed_by(
        &self,
        issuer: &ParsedCert,
        memo: &super::tdx_memo::Memos,
    ) -> Result<(), Refusal> {
        if self.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
            return Err(Refusal::new(
                ErrorCode::ChainUntrusted,
                format!(
                    "{} issuer \"{}\" is not the {} subject \"{}\"",
                    self.role,
                    self.issuer(),
                    issuer.role,
                    issuer.subject()
                ),
            ));
        }
        check_pss_sha384(
            &self.cert.signature_algorithm.oid,
            self.cert.signature_algorithm.parameters.as_ref(),
            self.role,
        )?;
        if self.cert.signature_algorithm != self.cert.tbs_certificate.signature {
            return Err(Refusal::new(
                ErrorCode::ChainUntrusted,
                format!(
                    "{} signature algorithm differs from the one inside the TBS",
                    self.role
                ),
            ));
        }
        let key = issuer.rsa_public_key()?;
        let link = link_id(issuer, self);
        if memo.link_verified(&link) {
            return Ok(());
        }
        let sig = self.cert.signature.as_bytes().ok_or_else(|| {
            Refusal::new(
                ErrorCode::SignatureInvalid,
                format!("{} signature bit string is not octet-aligned", self.role),
            )
        })?;
        signature::UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA384, key)
            .verify(self.tbs_bytes(), sig)
            .map_err(|_| {
                Refusal::new(
                    ErrorCode::SignatureInvalid,
                    format!(
                        "{} signature does not verify under the {} key (RSA-PSS SHA-384)",
                        self.role, issuer.role
                    ),
                )
            })?;
        memo.remember_link(link);
        Ok(())
    }
}

/// Identity of a (issuer, subject) signature link: SHA-256 over both DERs.
fn link_id(issuer: &ParsedCert, subject: &ParsedCert) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&(issuer.der.len() as u64).to_be_bytes());
    ctx.update(&issuer.der);
    ctx.update(&subject.der);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn name_attr(name: &x509_cert::name::Name, oid: ObjectIdentifier) -> Option<String> {
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == oid {
                if let Ok(s) = atv.value.decode_as::<der::asn1::Utf8StringRef<'_>>() {
                    return Some(s.as_str().to_string());
                }
                if let Ok(s) = atv.value.decode_as::<der::asn1::PrintableStringRef<'_>>() {
                    return Some(s.as_str().to_string());
                }
                if let Ok(s) = atv.value.decode_as::<Ia5StringRef<'_>>() {
                    return Some(s.as_str().to_string());
                }
            }
        }
    }
    None
}

/// RSASSA-PSS-params (RFC 4055) as written in AMD certificates and CRLs.
#[derive(Debug, der::Sequence)]
struct RsaPssParams<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierRef<'a>>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierRef<'a>>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u32>,
}

/// Accept only RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48 and trailer 1 (AMD's chain, publication 57230).
fn check_pss_sha384(
    oid: &ObjectIdentifier,
    params: Option<&der::Any>,
    role: &str,
) -> Result<(), Refusal> {
    let reject = |why: &str| {
        Refusal::new(
            ErrorCode::ChainUntrusted,
            format!(
                "{role} signature algorithm is not RSASSA-PSS SHA-384/MGF1-SHA-384/salt 48: {why}"
            ),
        )
    };
    if *oid != OID_RSASSA_PSS {
        return Err(reject(&format!("algorithm {oid}")));
    }
    let params = params.ok_or_else(|| reject("no parameters"))?;
    let der = params.to_der().map_err(|e| reject(&e.to_string()))?;
    let p = RsaPssParams::from_der(&der).map_err(|e| reject(&e.to_string()))?;
    let hash_ok = p.hash.map(|h| h.oid == OID_SHA384).unwrap_or(false);
    let mgf_ok = p
        .mask_gen
        .map(|m| {
            m.oid == OID_MGF1
                && m.parameters
                    .and_then(|inner| inner.decode_as::<AlgorithmIdentifierRef<'_>>().ok())
                    .map(|h| h.oid == OID_SHA384)
                    .unwrap_or(false)
        })
        .unwrap_or(false);
    if !hash_ok {
        return Err(reject("hash is not SHA-384"));
    }
    if !mgf_ok {
        return Err(reject("mask generation is not MGF1 with SHA-384"));
    }
    if p.salt_len != Some(48) {
        return Err(reject(&format!("salt length {:?}", p.salt_len)));
    }
    if p.trailer.unwrap_or(1) != 1 {
        return Err(reject("trailer field is not 1"));
    }
    Ok(())
}

/// An AMD CRL (ARK-signed, RSASSA-PSS SHA-384) parsed beside its exact signed bytes.
#[derive(Debug, Clone)]
pub struct ParsedCrl {
    crl: CertificateList,
    tbs: Vec<u8>,
}

impl ParsedCrl {
    pub fn parse(der: &[u8]) -> Result<Self, Refusal> {
        let bad = |e: der::Error| {
            Refusal::new(
                ErrorCode::CollateralMissing,
                format!("CRL does not parse: {e}"),
            )
        };
        let crl = CertificateList::from_der(der).map_err(bad)?;
        let tbs = first_inner_tlv(der).map_err(bad)?.to_vec();
        Ok(ParsedCrl { crl, tbs })
    }

    /// Signed by `ark`, within thisUpdate..nextUpdate at `now`.
    pub fn verify(&self, ark: &ParsedCert, now: u64) -> Result<(), Refusal> {
        if self.crl.tbs_cert_list.issuer != ark.cert.tbs_certificate.subject {
            return Err(Refusal::new(
                ErrorCode::ChainUntrusted,
                "CRL issuer is not the ARK",
            ));
        }
        check_pss_sha384(
            &self.crl.signature_algorithm.oid,
            self.crl.signature_algorithm.parameters.as_ref(),
            "CRL",
        )?;
        let key = ark.rsa_public_key()?;
        let sig = self.crl.signature.as_bytes().ok_or_else(|| {
            Refusal::new(
                ErrorCode::SignatureInvalid,
                "CRL signature bit string is not octet-aligned",
            )
        })?;
        signature::UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA384, key)
            .verify(&self.tbs, sig)
            .map_err(|_| {
                Refusal::new(
                    ErrorCode::SignatureInvalid,
                    "CRL signature does not verify under the ARK key",
                )
            })?;
        let this_update = self
            .crl
            .tbs_cert_list
            .this_update
            .to_unix_duration()
            .as_secs();
        if now < this_update {
            return Err(Refusal::new(
                ErrorCode::CollateralExpired,
                "CRL thisUpdate is in the future",
            ));
        }
        // A CRL without nextUpdate never goes stale, so it could hide every later revocation: refused.
        let next = self.crl.tbs_cert_list.next_update.ok_or_else(|| {
            Refusal::new(
                ErrorCode::CollateralMissing,
                "CRL has no nextUpdate: its freshness cannot be judged",
            )
        })?;
        // Usable while now < nextUpdate (the rule webpki applies to the TDX CRLs and the service to a client CRL).
        if now >= next.to_unix_duration().as_secs() {
            return Err(Refusal::new(
                ErrorCode::CollateralExpired,
                format!("CRL expired: nextUpdate {next} <= now {now}"),
            ));
        }
        Ok(())
    }

    /// thisUpdate, Unix seconds.
    pub fn this_update(&self) -> u64 {
        self.crl
            .tbs_cert_list
            .this_update
            .to_unix_duration()
            .as_secs()
    }

    /// nextUpdate, Unix seconds (`None`: absent, which [`ParsedCrl::verify`] refuses).
    pub fn next_update(&self) -> Option<u64> {
        self.crl
            .tbs_cert_list
            .next_update
            .map(|t| t.to_unix_duration().as_secs())
    }

    /// The cRLNumber extension (RFC 5280 §5.2.3), if present and decodable (at most 20 octets, big-endian).
    pub fn crl_number(&self) -> Option<u128> {
        const CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
        let exts = self.crl.tbs_cert_list.crl_extensions.as_ref()?;
        let ext = exts.iter().find(|e| e.extn_id == CRL_NUMBER)?;
        let n = der::asn1::UintRef::from_der(ext.extn_value.as_bytes()).ok()?;
        let bytes = n.as_bytes();
        if bytes.len() > 16 {
            return None;
        }
        Some(
            bytes
                .iter()
                .fold(0u128, |acc, b| (acc << 8) | u128::from(*b)),
        )
    }

    /// True when `self` was issued after `other`: by CRL number when both carry one, otherwise by thisUpdate.
    pub fn is_newer_than(&self, other: &ParsedCrl) -> bool {
        match (self.crl_number(), other.crl_number()) {
            (Some(a), Some(b)) if a != b => a > b,
            _ => self.this_update() > other.this_update(),
        }
    }

    /// True when the CRL lists `cert`'s serial number.
    pub fn lists(&self, cert: &ParsedCert) -> bool {
        let serial = &cert.cert.tbs_certificate.serial_number;
        self.crl
            .tbs_cert_list
            .revoked_certificates
            .as_ref()
            .map(|list| list.iter().any(|r| &r.serial_number == serial))
            .unwrap_or(false)
    }
}

/// Verify an ECDSA P-384 SHA-384 signature (fixed r‖s, big-endian): the SEV-SNP report signature, the one check
/// no memo can spare. With aws-lc-rs, the per-request backend (3-4x ring's speed on P-384; BENCHMARKS.md); RSA links
/// and CRLs, which are memoised, stay on ring.
pub fn verify_p384_fixed(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, public_key)
        .verify(msg, sig)
        .is_ok()
}

/// Verify an ECDSA P-256 SHA-256 signature (fixed r‖s, big-endian; `public_key` SEC1 uncompressed): the TDX quote
/// signature on the memo's path. The same per-request backend as [`verify_p384_fixed`].
pub fn verify_p256_fixed(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
        .verify(msg, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(pem: &[u8], role: &'static str) -> ParsedCert {
        let der = pem_certificates(pem).expect("pem").remove(0);
        ParsedCert::parse(&der, role).expect("parse")
    }

    #[test]
    fn rsa_pss_links_verify_and_a_flipped_signature_is_signature_invalid_even_after_the_memo() {
        use sev::certs::snp::builtin::genoa;
        let ark = builtin(genoa::ARK, "ARK");
        let ask = builtin(genoa::ASK, "ASK");
        let memo = super::super::tdx_memo::Memos::default();
        ask.verify_signed_by(&ark, &memo)
            .expect("first verification");
        ask.verify_signed_by(&ark, &memo)
            .expect("memoised verification");
        let mut der = ask.der.clone();
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let bad = ParsedCert::parse(&der, "ASK").expect("still parses");
        assert_eq!(
            bad.verify_signed_by(&ark, &memo).err().map(|r| r.code),
            Some(ErrorCode::SignatureInvalid)
        );
        // Names are checked before the memo: the ARK is not issued by the ASK.
        assert_eq!(
            ark.verify_signed_by(&ask, &memo).err().map(|r| r.code),
            Some(ErrorCode::ChainUntrusted)
        );
    }

    #[test]
    fn pem_blocks_decode_in_order_and_garbage_is_an_error() {
        use sev::certs::snp::builtin::milan;
        let mut two = milan::ASK.to_vec();
        two.extend_from_slice(milan::ARK);
        let certs = pem_certificates(&two).expect("pem");
        assert_eq!(certs.len(), 2);
        assert_eq!(builtin(milan::ARK, "ARK").der, certs[1]);
        assert!(
            pem_certificates(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----")
                .is_err()
        );
        assert!(der_or_pem_certificate(b"nothing here").is_err());
    }

    #[test]
    fn validity_outside_the_window_is_certificate_expired() {
        use sev::certs::snp::builtin::turin;
        let ark = builtin(turin::ARK, "ARK");
        let v = &ark.cert.tbs_certificate.validity;
        let nb = v.not_before.to_unix_duration().as_secs();
        let na = v.not_after.to_unix_duration().as_secs();
        assert!(ark.check_validity(nb).is_ok());
        assert!(ark.check_validity(na).is_ok());
        assert_eq!(
            ark.check_validity(nb - 1).err().map(|r| r.code),
            Some(ErrorCode::CertificateExpired)
        );
        assert_eq!(
            ark.check_validity(na + 1).err().map(|r| r.code),
            Some(ErrorCode::CertificateExpired)
        );
    }

    #[test]
    fn a_non_pss_signature_algorithm_is_refused() {
        let err = check_pss_sha384(&OID_RSA_ENCRYPTION, None, "X").expect_err("refused");
        assert_eq!(err.code, ErrorCode::ChainUntrusted);
        assert!(check_pss_sha384(&OID_RSASSA_PSS, None, "X").is_err());
    }
}
