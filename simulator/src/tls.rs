//! A test TLS PKI for running `locus-verifier serve` with TLS on loopback: a CA and a server certificate (P-256,
//! ECDSA-SHA256) for the given DNS names and IP addresses, deterministic from the seed. TEST KEYS: the organisation is
//! "Locus Simulator (test TLS)"; nothing here is fit for a real deployment.

use std::net::IpAddr;

use der::asn1::{Ia5String, OctetString};
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};

use crate::error::SimError;
use crate::keys;
use crate::x509::{self, CertFields, NameAttr, Signer};

/// PEM texts of a test TLS PKI.
#[derive(Debug, Clone)]
pub struct TestTls {
    /// The CA certificate clients trust.
    pub ca_pem: String,
    /// The server certificate followed by the CA (the chain a server presents).
    pub chain_pem: String,
    /// The server's PKCS#8 private key.
    pub key_pem: String,
}

const OID_SERVER_AUTH: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");

/// A CA and a server certificate valid from `not_before` to `not_after` for `dns` names and `ips`.
pub fn test_tls(
    seed: u64,
    dns: &[&str],
    ips: &[IpAddr],
    not_before: u64,
    not_after: u64,
) -> Result<TestTls, SimError> {
    let ca_key = keys::p256_key(seed, "tls/ca");
    let server_key = keys::p256_key(seed, "tls/server");
    let ca_name = x509::name(&[
        NameAttr::O("Locus Simulator (test TLS)"),
        NameAttr::Cn("Locus test TLS CA"),
    ])?;
    let ca_spki = x509::spki_p256(ca_key.verifying_key())?;
    let ca_der = x509::certificate(
        CertFields {
            serial: x509::serial(1)?,
            issuer: ca_name.clone(),
            subject: ca_name.clone(),
            validity: x509::validity(not_before, not_after)?,
            spki: ca_spki,
            extensions: vec![
                x509::ext(
                    der::oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                    true,
                    &BasicConstraints {
                        ca: true,
                        path_len_constraint: Some(0),
                    },
                )?,
                x509::ext(
                    der::oid::db::rfc5280::ID_CE_KEY_USAGE,
                    true,
                    &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
                )?,
            ],
        },
        &Signer::EcdsaP256(&ca_key),
    )?;
    let mut names = Vec::new();
    for d in dns {
        names.push(GeneralName::DnsName(
            Ia5String::new(*d).map_err(|e| SimError::Invalid(format!("DNS name {d:?}: {e}")))?,
        ));
    }
    for ip in ips {
        let bytes = match ip {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        names.push(GeneralName::IpAddress(OctetString::new(bytes)?));
    }
    let server_der = x509::certificate(
        CertFields {
            serial: x509::serial(2)?,
            issuer: ca_name,
            subject: x509::name(&[
                NameAttr::O("Locus Simulator (test TLS)"),
                NameAttr::Cn(dns.first().copied().unwrap_or("localhost")),
            ])?,
            validity: x509::validity(not_before, not_after)?,
            spki: x509::spki_p256(server_key.verifying_key())?,
            extensions: vec![
                x509::ext(
                    der::oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                    true,
                    &BasicConstraints {
                        ca: false,
                        path_len_constraint: None,
                    },
                )?,
                x509::ext(
                    der::oid::db::rfc5280::ID_CE_KEY_USAGE,
                    true,
                    &KeyUsage(KeyUsages::DigitalSignature.into()),
                )?,
                x509::ext(
                    der::oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
                    false,
                    &ExtendedKeyUsage(vec![OID_SERVER_AUTH]),
                )?,
                x509::ext(
                    der::oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
                    false,
                    &SubjectAltName(names),
                )?,
            ],
        },
        &Signer::EcdsaP256(&ca_key),
    )?;
    let key_pem = server_key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| SimError::Pkcs8(e.to_string()))?
        .to_string();
    let ca_pem = x509::cert_pem(&ca_der);
    Ok(TestTls {
        chain_pem: format!("{}{}", x509::cert_pem(&server_der), ca_pem),
        ca_pem,
        key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode as _;

    #[test]
    fn the_server_certificate_names_loopback_and_is_signed_by_the_ca() {
        let t = test_tls(
            7,
            &["localhost"],
            &["127.0.0.1".parse().expect("ip")],
            0,
            4_000_000_000,
        )
        .expect("tls");
        assert!(t.key_pem.contains("BEGIN PRIVATE KEY"));
        assert_eq!(t.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        let again = test_tls(
            7,
            &["localhost"],
            &["127.0.0.1".parse().expect("ip")],
            0,
            4_000_000_000,
        )
        .expect("tls");
        assert_eq!(t.chain_pem, again.chain_pem, "deterministic");
        let first = t
            .chain_pem
            .split("-----END CERTIFICATE-----")
            .next()
            .expect("first");
        let b64: String = first.lines().filter(|l| !l.starts_with("-----")).collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        let cert = x509_cert::Certificate::from_der(&der).expect("parses");
        assert!(cert
            .tbs_certificate
            .extensions
            .expect("extensions")
            .iter()
            .any(|e| e.extn_id == der::oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME));
    }
}
