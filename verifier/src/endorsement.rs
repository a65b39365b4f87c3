//! Location endorsements (docs/architecture.md#residency-and-the-geo-fence, source 2): a COSE_Sign1 signed with ES256 by an endorser key the verifier
//! trusts (for example the data-centre operator), over a CBOR map
//! `{"platform", "site", "country", "region", "not_before", "not_after"}`.
//!
//! `platform` is either the raw platform identity as a byte string (SNP CHIP_ID, TDX PPID) or, as a text string, the
//! lowercase hex SHA-256 of that identity — the same value the WIT carries in `locus_tee.platform`, so an operator
//! can endorse a platform named in a credential. `not_before`/`not_after` are unix seconds.
//!
//! Flow: [`Endorsement::parse_and_verify`] decodes the COSE_Sign1, requires `alg` = ES256 in the protected header,
//! checks the signature over the received Sig_structure against each configured endorser key, and decodes the
//! payload. Validity in time and the platform it names are checked by [`Endorsement::places`] with `now` passed in.
//! Endorsements that do not verify are dropped at load with a warning; they can never place a platform.

use std::path::Path;

use base64::Engine as _;
use ciborium::Value;
use coset::{
    iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable,
};
use ring::signature::{self, UnparsedPublicKey};
use sha2::{Digest, Sha256};

/// A key whose location endorsements the verifier trusts (`[[endorser]]`), parsed by [`parse_public_key`].
#[derive(Clone, Debug)]
pub struct Endorser {
    pub name: String,
    /// Uncompressed SEC1 P-256 point (65 bytes), the form ring verifies with.
    pub public_key: Vec<u8>,
}

/// An endorsement whose signature verified under a configured endorser key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endorsement {
    /// The endorser (config `[[endorser]].name`) whose key verified it.
    pub endorser: String,
    pub platform: PlatformRef,
    pub site: String,
    pub country: String,
    pub region: Option<String>,
    pub not_before: u64,
    pub not_after: u64,
}

/// How an endorsement names its platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformRef {
    Raw(Vec<u8>),
    Sha256Hex(String),
}

impl PlatformRef {
    pub fn matches(&self, identity: &[u8]) -> bool {
        match self {
            PlatformRef::Raw(raw) => raw.as_slice() == identity,
            PlatformRef::Sha256Hex(h) => *h == hex::encode(Sha256::digest(identity)),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndorsementError {
    #[error("not a COSE_Sign1: {0}")]
    Cose(String),
    #[error("protected header alg must be ES256")]
    Algorithm,
    #[error("signature does not verify under any trusted endorser key")]
    Untrusted,
    #[error("payload: {0}")]
    Payload(String),
}

impl Endorsement {
    /// Decode a (tagged or untagged) COSE_Sign1 and verify it against `endorsers`.
    pub fn parse_and_verify(
        bytes: &[u8],
        endorsers: &[Endorser],
    ) -> Result<Self, EndorsementError> {
        let sign1 = CoseSign1::from_tagged_slice(bytes)
            .or_else(|_| CoseSign1::from_slice(bytes))
            .map_err(|e| EndorsementError::Cose(format!("{e:?}")))?;
        let alg_ok = matches!(
            sign1.protected.header.alg,
            Some(coset::RegisteredLabelWithPrivate::Assigned(
                iana::Algorithm::ES256
            ))
        );
        if !alg_ok {
            return Err(EndorsementError::Algorithm);
        }
        let payload = sign1
            .payload
            .as_deref()
            .ok_or_else(|| EndorsementError::Payload("detached payload not supported".into()))?;
        // Sig_structure is built from the protected header bytes as received (coset keeps `original_data`).
        let endorser = endorsers
            .iter()
            .find(|e| {
                sign1
                    .verify_signature(b"", |sig, tbs| {
                        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &e.public_key)
                            .verify(tbs, sig)
                    })
                    .is_ok()
            })
            .ok_or(EndorsementError::Untrusted)?;
        let mut e = decode_payload(payload)?;
        e.endorser = endorser.name.clone();
        Ok(e)
    }

    /// Does this endorsement place the platform `identity` at time `now`?
    pub fn places(&self, identity: &[u8], now: u64) -> bool {
        self.platform.matches(identity) && self.not_before <= now && now < self.not_after
    }
}

fn decode_payload(payload: &[u8]) -> Result<Endorsement, EndorsementError> {
    let bad = |m: &str| EndorsementError::Payload(m.to_string());
    let value: Value =
        ciborium::de::from_reader(payload).map_err(|e| EndorsementError::Payload(e.to_string()))?;
    let map = value.as_map().ok_or_else(|| bad("not a CBOR map"))?;
    let mut platform = None;
    let mut site = None;
    let mut country = None;
    let mut region = None;
    let mut not_before = None;
    let mut not_after = None;
    for (k, v) in map {
        let key = k.as_text().ok_or_else(|| bad("map keys must be text"))?;
        let seen = match key {
            "platform" => platform
                .replace(match v {
                    Value::Bytes(b) => PlatformRef::Raw(b.clone()),
                    Value::Text(t)
                        if t.len() == 64
                            && t.bytes()
                                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) =>
                    {
                        PlatformRef::Sha256Hex(t.clone())
                    }
                    _ => {
                        return Err(bad(
                            "platform must be a byte string or lowercase hex SHA-256",
                        ))
                    }
                })
                .is_some(),
            "site" => site.replace(text(v, "site")?).is_some(),
            "country" => country.replace(text(v, "country")?).is_some(),
            "region" => region.replace(text(v, "region")?).is_some(),
            "not_before" => not_before.replace(uint(v, "not_before")?).is_some(),
            "not_after" => not_after.replace(uint(v, "not_after")?).is_some(),
            other => return Err(EndorsementError::Payload(format!("unknown key {other:?}"))),
        };
        if seen {
            return Err(EndorsementError::Payload(format!("duplicate key {key:?}")));
        }
    }
    let country = country.ok_or_else(|| bad("missing country"))?;
    if !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(EndorsementError::Payload(format!(
            "country {country:?} is not ISO 3166-1 alpha-2"
        )));
    }
    if let Some(r) = &region {
        if !r.starts_with(&format!("{country}-")) {
            return Err(EndorsementError::Payload(format!(
                "region {r:?} is not in country {country}"
            )));
        }
    }
    let not_before = not_before.ok_or_else(|| bad("missing not_before"))?;
    let not_after = not_after.ok_or_else(|| bad("missing not_after"))?;
    if not_after <= not_before {
        return Err(bad("not_after must be after not_before"));
    }
    Ok(Endorsement {
        endorser: String::new(),
        platform: platform.ok_or_else(|| bad("missing platform"))?,
        site: site.ok_or_else(|| bad("missing site"))?,
        country,
        region,
        not_before,
        not_after,
    })
}

fn text(v: &Value, what: &str) -> Result<String, EndorsementError> {
    v.as_text()
        .map(str::to_string)
        .ok_or_else(|| EndorsementError::Payload(format!("{what} must be text")))
}

fn uint(v: &Value, what: &str) -> Result<u64, EndorsementError> {
    v.as_integer()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| EndorsementError::Payload(format!("{what} must be an unsigned integer")))
}

/// The unsigned content of an endorsement, for building one (operator tooling and tests).
#[derive(Clone, Debug)]
pub struct EndorsementClaims<'a> {
    pub platform: &'a [u8],
    pub site: &'a str,
    pub country: &'a str,
    pub region: Option<&'a str>,
    pub not_before: u64,
    pub not_after: u64,
}

/// Build a tagged COSE_Sign1 endorsement; `sign` gets the Sig_structure bytes and returns the 64-byte r‖s ES256
/// signature.
pub fn encode<E>(
    claims: &EndorsementClaims<'_>,
    kid: &str,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, E> {
    let mut entries = vec![
        (
            Value::Text("platform".into()),
            Value::Bytes(claims.platform.to_vec()),
        ),
        (Value::Text("site".into()), Value::Text(claims.site.into())),
        (
            Value::Text("country".into()),
            Value::Text(claims.country.into()),
        ),
    ];
    if let Some(r) = claims.region {
        entries.push((Value::Text("region".into()), Value::Text(r.into())));
    }
    entries.push((
        Value::Text("not_before".into()),
        Value::Integer(claims.not_before.into()),
    ));
    entries.push((
        Value::Text("not_after".into()),
        Value::Integer(claims.not_after.into()),
    ));
    let mut payload = Vec::new();
    // Writing a Value into a Vec cannot fail.
    let _ = ciborium::ser::into_writer(&Value::Map(entries), &mut payload);
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .key_id(kid.as_bytes().to_vec())
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .try_create_signature(b"", sign)?
        .build();
    Ok(sign1.to_tagged_vec().unwrap_or_default())
}

/// Load every `*.cose` / `*.cbor` file of `dir`, keeping the ones that verify; returns the kept endorsements and a
/// description of each file dropped (logged by the caller).
pub fn load_dir(dir: &Path, endorsers: &[Endorser]) -> (Vec<Endorsement>, Vec<String>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return (kept, vec![format!("{}: {e}", dir.display())]),
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "cose" && ext != "cbor" {
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) => match Endorsement::parse_and_verify(&bytes, endorsers) {
                Ok(e) => kept.push(e),
                Err(err) => dropped.push(format!("{}: {err}", path.display())),
            },
            Err(err) => dropped.push(format!("{}: {err}", path.display())),
        }
    }
    (kept, dropped)
}

/// Parse an endorser public key: PEM `PUBLIC KEY` (SPKI, P-256) or a P-256 JWK. Returns the uncompressed SEC1 point.
pub fn parse_public_key(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    if t.starts_with('{') {
        let jwk: serde_json::Value =
            serde_json::from_str(t).map_err(|e| format!("JWK is not JSON: {e}"))?;
        if jwk.get("kty").and_then(|v| v.as_str()) != Some("EC")
            || jwk.get("crv").and_then(|v| v.as_str()) != Some("P-256")
        {
            return Err("JWK must have kty EC and crv P-256".into());
        }
        let coord = |name: &str| -> Result<Vec<u8>, String> {
            let s = jwk
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or(format!("JWK lacks {name}"))?;
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|e| format!("JWK {name}: {e}"))?;
            if b.len() != 32 {
                return Err(format!("JWK {name}: expected 32 bytes, got {}", b.len()));
            }
            Ok(b)
        };
        let mut point = vec![4u8];
        point.extend(coord("x")?);
        point.extend(coord("y")?);
        return check_point(point);
    }
    let der = match crate::appraisal::x509::pem_blocks(t.as_bytes(), "PUBLIC KEY")?.as_slice() {
        [one] => one.clone(),
        _ => return Err("expected one PEM PUBLIC KEY block or a JWK object".into()),
    };
    use der::Decode as _;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(&der).map_err(|e| format!("SPKI: {e}"))?;
    const EC_PUBLIC_KEY: der::asn1::ObjectIdentifier =
        der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const P256: der::asn1::ObjectIdentifier =
        der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    if spki.algorithm.oid != EC_PUBLIC_KEY {
        return Err(format!(
            "key algorithm {} is not id-ecPublicKey",
            spki.algorithm.oid
        ));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
    if curve != Some(P256) {
        return Err("EC key is not on P-256".into());
    }
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or("public key bit string has unused bits")?
        .to_vec();
    check_point(point)
}

fn check_point(point: Vec<u8>) -> Result<Vec<u8>, String> {
    if point.len() != 65 || point[0] != 4 {
        return Err("expected an uncompressed P-256 point".into());
    }
    // ring rejects points off the curve when verifying, so such a key can never verify anything.
    Ok(point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use std::sync::OnceLock;

    fn key(i: usize) -> &'static EcdsaKeyPair {
        static KEYS: OnceLock<Vec<EcdsaKeyPair>> = OnceLock::new();
        &KEYS.get_or_init(|| {
            let rng = SystemRandom::new();
            (0..2)
                .map(|_| {
                    let pk = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                        .expect("gen");
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pk.as_ref(), &rng)
                        .expect("load")
                })
                .collect()
        })[i]
    }

    fn endorser(i: usize) -> Endorser {
        Endorser {
            name: format!("op{i}"),
            public_key: key(i).public_key().as_ref().to_vec(),
        }
    }

    fn sign_with(i: usize, claims: &EndorsementClaims<'_>) -> Vec<u8> {
        encode(claims, "op", |tbs| {
            key(i)
                .sign(&SystemRandom::new(), tbs)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| ())
        })
        .expect("sign")
    }

    const PLATFORM: [u8; 16] = [7; 16];

    fn claims() -> EndorsementClaims<'static> {
        EndorsementClaims {
            platform: &PLATFORM,
            site: "fra-2",
            country: "DE",
            region: Some("DE-BE"),
            not_before: 1000,
            not_after: 2000,
        }
    }

    #[test]
    fn a_trusted_endorsement_places_its_platform_within_its_validity() {
        let bytes = sign_with(0, &claims());
        let e =
            Endorsement::parse_and_verify(&bytes, &[endorser(1), endorser(0)]).expect("verifies");
        assert_eq!(e.endorser, "op0");
        assert_eq!(e.country, "DE");
        assert!(e.places(&PLATFORM, 1500));
        assert!(!e.places(&PLATFORM, 999), "not yet valid");
        assert!(!e.places(&PLATFORM, 2000), "expired");
        assert!(!e.places(&[8; 16], 1500), "another platform");
    }

    #[test]
    fn an_endorsement_by_an_untrusted_key_is_refused() {
        let bytes = sign_with(1, &claims());
        assert_eq!(
            Endorsement::parse_and_verify(&bytes, &[endorser(0)]),
            Err(EndorsementError::Untrusted)
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let mut bytes = sign_with(0, &claims());
        // "fra-2" → "fra-3" inside the payload.
        let pos = bytes
            .windows(5)
            .position(|w| w == b"fra-2")
            .expect("site in payload");
        bytes[pos + 4] = b'3';
        assert_eq!(
            Endorsement::parse_and_verify(&bytes, &[endorser(0)]),
            Err(EndorsementError::Untrusted)
        );
    }

    #[test]
    fn garbage_is_not_a_cose_sign1() {
        assert!(matches!(
            Endorsement::parse_and_verify(b"\x01\x02", &[endorser(0)]),
            Err(EndorsementError::Cose(_))
        ));
    }

    #[test]
    fn platform_may_be_named_by_its_sha256() {
        let p = PlatformRef::Sha256Hex(hex::encode(Sha256::digest(PLATFORM)));
        assert!(p.matches(&PLATFORM));
        assert!(!p.matches(&[0; 16]));
    }

    #[test]
    fn public_keys_parse_from_jwk_and_pem() {
        let point = key(0).public_key().as_ref().to_vec();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwk = format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#,
            b64.encode(&point[1..33]),
            b64.encode(&point[33..])
        );
        assert_eq!(parse_public_key(&jwk).expect("jwk"), point);
        // SPKI DER for P-256: fixed 26-byte prefix then the point.
        let mut der =
            hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").expect("hex");
        der.extend(&point);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        assert_eq!(parse_public_key(&pem).expect("pem"), point);
        assert!(parse_public_key("not a key").is_err());
        assert!(parse_public_key(r#"{"kty":"RSA"}"#).is_err());
    }
}
