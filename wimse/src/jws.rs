//! JWS compact serialization (RFC 7515) with the RFC 8725 rules Locus needs: strict ABNF, explicit `typ`, an `alg`
//! allow-list, no `crit`, and verification over the received ASCII `header.payload`. Also the signing keys.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::WimseError;
use crate::jwk::{Alg, Jwk, PublicKey};

/// Largest compact token accepted (bytes). Bounds the work an attacker can ask for before any signature check.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The JOSE header members this crate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoseHeader {
    /// `alg` as received.
    pub alg: String,
    /// `typ`, if any.
    pub typ: Option<String>,
    /// `kid`, if any.
    pub kid: Option<String>,
}

/// A compact JWS split and decoded, not yet verified. Keeps the received signing input.
#[derive(Debug, Clone)]
pub struct CompactJws<'a> {
    raw: &'a str,
    signing_input_len: usize,
    /// Decoded header.
    pub header: JoseHeader,
    /// Decoded payload bytes.
    pub payload: Vec<u8>,
    /// Decoded signature bytes.
    pub signature: Vec<u8>,
}

fn is_b64url_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

impl<'a> CompactJws<'a> {
    /// Split and decode `token`: exactly three non-empty base64url parts without padding (the WIT ABNF of draft-ietf-wimse-workload-creds), a JSON
    /// object header with a string `alg`, no `crit`.
    pub fn parse(token: &'a str) -> Result<Self, WimseError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(WimseError::malformed("token too long"));
        }
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return Err(WimseError::malformed(format!(
                "{} parts, expected 3",
                parts.len()
            )));
        }
        let well_formed = |p: &str| !p.is_empty() && p.bytes().all(is_b64url_char);
        if !well_formed(parts[0]) || !well_formed(parts[1]) {
            return Err(WimseError::malformed("part is not 1*base64url"));
        }
        let header_bytes =
            b64::decode(parts[0]).map_err(|_| WimseError::malformed("header base64url"))?;
        let header_value = crate::json::from_slice_strict(&header_bytes)
            .map_err(|e| WimseError::malformed(format!("header JSON: {e}")))?;
        let obj = header_value
            .as_object()
            .ok_or_else(|| WimseError::malformed("header is not a JSON object"))?;
        let alg = match obj.get("alg") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(WimseError::malformed("alg is not a string")),
            None => return Err(WimseError::malformed("alg missing")),
        };
        // An unsecured JWS (`alg` none, empty signature) gets the precise answer rather than "malformed".
        if alg == "none" {
            return Err(WimseError::AlgNotAllowed { alg });
        }
        if !well_formed(parts[2]) {
            return Err(WimseError::malformed("signature is not 1*base64url"));
        }
        if obj.contains_key("crit") {
            return Err(WimseError::CritUnsupported);
        }
        let payload =
            b64::decode(parts[1]).map_err(|_| WimseError::malformed("payload base64url"))?;
        let signature =
            b64::decode(parts[2]).map_err(|_| WimseError::malformed("signature base64url"))?;
        let opt = |name: &str| -> Result<Option<String>, WimseError> {
            match obj.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(WimseError::malformed(format!("{name} is not a string"))),
            }
        };
        let header = JoseHeader {
            alg,
            typ: opt("typ")?,
            kid: opt("kid")?,
        };
        Ok(Self {
            raw: token,
            signing_input_len: parts[0].len() + 1 + parts[1].len(),
            header,
            payload,
            signature,
        })
    }

    /// The received ASCII `header.payload` — what the signature covers.
    pub fn signing_input(&self) -> &'a [u8] {
        &self.raw.as_bytes()[..self.signing_input_len]
    }

    /// The whole token as received.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// `alg` checked against `allowed` (a name outside the implemented set — `none`, `HS256` — is always refused).
    pub fn alg_allowed(&self, allowed: &[Alg]) -> Result<Alg, WimseError> {
        let alg = Alg::from_name(&self.header.alg)?;
        if !allowed.contains(&alg) {
            return Err(WimseError::AlgNotAllowed {
                alg: self.header.alg.clone(),
            });
        }
        Ok(alg)
    }

    /// Verify the signature with `key` over the received signing input.
    pub fn verify_with(&self, alg: Alg, key: &PublicKey) -> Result<(), WimseError> {
        key.verify(alg, self.signing_input(), &self.signature)
    }

    /// The payload as a JSON object.
    pub fn claims(&self) -> Result<Map<String, Value>, WimseError> {
        let v = crate::json::from_slice_strict(&self.payload)
            .map_err(|e| WimseError::malformed(format!("payload JSON: {e}")))?;
        match v {
            Value::Object(m) => Ok(m),
            _ => Err(WimseError::malformed("payload is not a JSON object")),
        }
    }
}

/// `typ` check of RFC 7515 §4.1.9: a value without `/` is read as `application/<typ>`; comparison is
/// case-insensitive. `expected` is the short form, e.g. `wpt+jwt`.
pub fn typ_matches(typ: Option<&str>, expected: &'static str) -> Result<(), WimseError> {
    let fail = || WimseError::TypInvalid {
        expected,
        got: typ.map(str::to_owned),
    };
    let t = typ.ok_or_else(fail)?;
    let short = if t.contains('/') {
        let (top, sub) = t.split_once('/').ok_or_else(fail)?;
        if !top.eq_ignore_ascii_case("application") {
            return Err(fail());
        }
        sub
    } else {
        t
    };
    if short.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(fail())
    }
}

/// Something that signs JWS / COSE messages with one key.
pub trait JwsSigner: Send + Sync {
    /// The algorithm.
    fn alg(&self) -> Alg;
    /// The public JWK (with `alg`, and `kid` when set).
    fn public_jwk(&self) -> Jwk;
    /// `kid`, if set.
    fn kid(&self) -> Option<&str>;
    /// Sign `message`; ECDSA signatures are fixed-size `r ‖ s`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, WimseError>;
}

/// Build a compact JWS: `header` and `claims` are serialized as given (field order is the struct's).
pub fn sign_compact<H: Serialize, C: Serialize>(
    signer: &dyn JwsSigner,
    header: &H,
    claims: &C,
) -> Result<String, WimseError> {
    let h = serde_json::to_vec(header).map_err(|_| WimseError::Internal {
        detail: "header serialization",
    })?;
    let c = serde_json::to_vec(claims).map_err(|_| WimseError::Internal {
        detail: "claims serialization",
    })?;
    let mut token = b64::encode(h);
    token.push('.');
    token.push_str(&b64::encode(c));
    let sig = signer.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&b64::encode(sig));
    Ok(token)
}

/// Header `{"alg","kid"?,"typ"}` as emitted by this crate.
#[derive(Debug, Serialize)]
pub(crate) struct OutHeader<'a> {
    pub alg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<&'a str>,
    pub typ: &'a str,
}

/// 128 random bits, base64url (22 characters): `jti` values.
pub fn random_jti() -> Result<String, WimseError> {
    let bytes: [u8; 16] = ring::rand::generate(&SystemRandom::new())
        .map_err(|_| WimseError::Internal {
            detail: "random generator",
        })?
        .expose();
    Ok(b64::encode(bytes))
}

/// An ES256 (P-256) signing key. The private key lives in memory only; [`Es256SigningKey::to_pkcs8`] exports it for
/// callers that persist it (the verifier's state dir) — the agent never calls it.
///
/// Signing runs on aws-lc-rs, the verifier's per-request backend (one ES256 signature per WIT, one more per EAR);
/// keys are the same PKCS#8 documents either way.
pub struct Es256SigningKey {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
    kid: Option<String>,
    rng: aws_lc_rs::rand::SystemRandom,
}

impl fmt::Debug for Es256SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Es256SigningKey")
            .field("kid", &self.kid)
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// RFC 5915 ECPrivateKey inside a PKCS#8 v1 PrivateKeyInfo for P-256, the fixed layout ring itself emits, up to the
/// 32-byte private scalar (which follows it).
const P256_PKCS8_PREFIX: [u8; 36] = [
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02,
    0x01, 0x01, 0x04, 0x20,
];

impl Es256SigningKey {
    /// A fresh key.
    pub fn generate() -> Result<Self, WimseError> {
        // ring's generator emits the PKCS#8 v1 document (with the public key) that the keys directory holds.
        let rng = SystemRandom::new();
        let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .map_err(|_| WimseError::Internal {
            detail: "key generation",
        })?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Load a PKCS#8 v1/v2 P-256 private key document.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, WimseError> {
        // ring's parser first: it refuses a document whose embedded public key is not the private key's.
        ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|e| WimseError::key(format!("PKCS#8 P-256 key: {e}")))?;
        let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
        )
        .map_err(|e| WimseError::key(format!("PKCS#8 P-256 key: {e}")))?;
        Ok(Self {
            pair,
            pkcs8: Zeroizing::new(pkcs8.to_vec()),
            kid: None,
            rng: aws_lc_rs::rand::SystemRandom::new(),
        })
    }

    /// From the private scalar `d` (32 bytes, big-endian; JWK `d`) and its public key; a mismatched pair is refused.
    pub fn from_scalar_and_public(d: &[u8], public: &PublicKey) -> Result<Self, WimseError> {
        let PublicKey::P256 { x, y } = public else {
            return Err(WimseError::key("ES256 needs a P-256 public key"));
        };
        if d.len() != 32 {
            return Err(WimseError::key("P-256 private scalar must be 32 bytes"));
        }
        let mut der = Vec::with_capacity(138);
        der.extend_from_slice(&P256_PKCS8_PREFIX);
        der.extend_from_slice(d);
        der.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00, 0x04]);
        der.extend_from_slice(x);
        der.extend_from_slice(y);
        let der = Zeroizing::new(der);
        Self::from_pkcs8(&der)
    }

    /// The private scalar `d` (32 bytes, big-endian; JWK `d`), read back from the PKCS#8 layout
    /// [`Es256SigningKey::from_scalar_and_public`] builds.
    pub fn private_scalar(&self) -> Result<Zeroizing<Vec<u8>>, WimseError> {
        let pkcs8 = self.to_pkcs8();
        match pkcs8.strip_prefix(&P256_PKCS8_PREFIX[..]) {
            Some(rest) if rest.len() >= 32 => Ok(Zeroizing::new(rest[..32].to_vec())),
            _ => Err(WimseError::key("unexpected PKCS#8 layout of a P-256 key")),
        }
    }

    /// Set the `kid` (WIT issuance requires one).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// A `kid` derived from the key: its RFC 7638 thumbprint, base64url.
    pub fn with_thumbprint_kid(self) -> Self {
        let kid = Jwk::new(self.public_key()).thumbprint_b64();
        self.with_kid(kid)
    }

    /// The PKCS#8 document (secret).
    pub fn to_pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        use aws_lc_rs::signature::KeyPair as _;
        let point = self.pair.public_key().as_ref();
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        // The uncompressed point 0x04 ‖ x ‖ y (65 bytes for P-256).
        if point.len() == 65 {
            x.copy_from_slice(&point[1..33]);
            y.copy_from_slice(&point[33..65]);
        }
        PublicKey::P256 { x, y }
    }

    /// RFC 7638 thumbprint of the public key.
    pub fn thumbprint_sha256(&self) -> [u8; 32] {
        Jwk::new(self.public_key()).thumbprint_sha256()
    }

    /// Sign claims as a compact JWS with header `{"alg":"ES256","kid"?,"typ":typ}`.
    pub fn sign_jws<C: Serialize>(&self, typ: &str, claims: &C) -> Result<String, WimseError> {
        let header = OutHeader {
            alg: Alg::Es256.name(),
            kid: self.kid.as_deref(),
            typ,
        };
        sign_compact(self, &header, claims)
    }
}

impl Es256SigningKey {
    /// The public JWK with `alg` and, when set, `kid` (the WIT `cnf.jwk`, or a JWKS member).
    pub fn public_jwk(&self) -> Jwk {
        let jwk = Jwk::new(self.public_key()).with_alg(Alg::Es256);
        match &self.kid {
            Some(k) => jwk.with_kid(k.clone()),
            None => jwk,
        }
    }

    /// The `kid`, if set.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

impl JwsSigner for Es256SigningKey {
    fn alg(&self) -> Alg {
        Alg::Es256
    }

    fn public_jwk(&self) -> Jwk {
        Es256SigningKey::public_jwk(self)
    }

    fn kid(&self) -> Option<&str> {
        Es256SigningKey::kid(self)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, WimseError> {
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| WimseError::Internal {
                detail: "ECDSA signing",
            })
    }
}

/// An Ed25519 (`EdDSA`) signing key: workloads may hold one as their `cnf` key.
pub struct Ed25519SigningKey {
    pair: Ed25519KeyPair,
    kid: Option<String>,
}

impl fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519SigningKey")
            .field("kid", &self.kid)
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl Ed25519SigningKey {
    /// A fresh key.
    pub fn generate() -> Result<Self, WimseError> {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| WimseError::Internal {
            detail: "key generation",
        })?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Load a PKCS#8 Ed25519 key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, WimseError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| WimseError::key(format!("PKCS#8 Ed25519 key: {e}")))?;
        Ok(Self { pair, kid: None })
    }

    /// From the 32-byte seed (JWK `d`) and public key (JWK `x`); refuses a pair that does not match.
    pub fn from_seed_and_public(seed: &[u8], public: &[u8]) -> Result<Self, WimseError> {
        let pair = Ed25519KeyPair::from_seed_and_public_key(seed, public)
            .map_err(|e| WimseError::key(format!("Ed25519 seed/public key: {e}")))?;
        Ok(Self { pair, kid: None })
    }

    /// Set the `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        let mut x = [0u8; 32];
        let pk = self.pair.public_key().as_ref();
        if pk.len() == 32 {
            x.copy_from_slice(pk);
        }
        PublicKey::Ed25519 { x }
    }
}

impl Ed25519SigningKey {
    /// The public JWK with `alg` and, when set, `kid` (the WIT `cnf.jwk`, or a JWKS member).
    pub fn public_jwk(&self) -> Jwk {
        let jwk = Jwk::new(self.public_key()).with_alg(Alg::EdDsa);
        match &self.kid {
            Some(k) => jwk.with_kid(k.clone()),
            None => jwk,
        }
    }

    /// The `kid`, if set.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

impl JwsSigner for Ed25519SigningKey {
    fn alg(&self) -> Alg {
        Alg::EdDsa
    }

    fn public_jwk(&self) -> Jwk {
        Ed25519SigningKey::public_jwk(self)
    }

    fn kid(&self) -> Option<&str> {
        Ed25519SigningKey::kid(self)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, WimseError> {
        Ok(self.pair.sign(message).as_ref().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_rule_of_rfc7515() {
        assert!(typ_matches(Some("wpt+jwt"), "wpt+jwt").is_ok());
        assert!(typ_matches(Some("WPT+JWT"), "wpt+jwt").is_ok());
        assert!(typ_matches(Some("application/wpt+jwt"), "wpt+jwt").is_ok());
        assert!(typ_matches(Some("Application/WPT+jwt"), "wpt+jwt").is_ok());
        for bad in [
            Some("wit+jwt"),
            Some("JWT"),
            Some("text/wpt+jwt"),
            Some("application/wpt+jwt; x=1"),
            None,
        ] {
            assert_eq!(
                typ_matches(bad, "wpt+jwt").unwrap_err().code(),
                "typ_invalid",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn compact_abnf_is_strict() {
        let key = Es256SigningKey::generate().unwrap();
        let good = key
            .sign_jws("wit+jwt", &serde_json::json!({"a":1}))
            .unwrap();
        assert!(CompactJws::parse(&good).is_ok());
        let padded = format!("{good}==");
        let with_space = format!(" {good}");
        let two = good.rsplit_once('.').unwrap().0.to_owned();
        let four = format!("{good}.AAAA");
        let empty_sig = format!("{two}.");
        for bad in [padded, with_space, two, four, empty_sig, String::new()] {
            assert_eq!(
                CompactJws::parse(&bad).unwrap_err().code(),
                "token_malformed",
                "{bad}"
            );
        }
    }

    #[test]
    fn crit_header_refused() {
        let key = Es256SigningKey::generate().unwrap();
        let t = sign_compact(
            &key,
            &serde_json::json!({"alg":"ES256","crit":["b64"],"b64":false}),
            &serde_json::json!({}),
        )
        .unwrap();
        assert_eq!(
            CompactJws::parse(&t).unwrap_err().code(),
            "crit_unsupported"
        );
    }

    #[test]
    fn es256_sign_verify_and_pkcs8_round_trip() {
        let key = Es256SigningKey::generate().unwrap().with_kid("k1");
        let again = Es256SigningKey::from_pkcs8(key.to_pkcs8()).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let t = key
            .sign_jws("wit+jwt", &serde_json::json!({"x":"y"}))
            .unwrap();
        let jws = CompactJws::parse(&t).unwrap();
        assert_eq!(jws.header.kid.as_deref(), Some("k1"));
        jws.verify_with(Alg::Es256, &again.public_key()).unwrap();
        // A different key does not verify.
        let other = Es256SigningKey::generate().unwrap();
        assert_eq!(
            jws.verify_with(Alg::Es256, &other.public_key())
                .unwrap_err()
                .code(),
            "signature_invalid"
        );
        // Wrong algorithm for the key type.
        assert_eq!(
            jws.verify_with(Alg::EdDsa, &key.public_key())
                .unwrap_err()
                .code(),
            "alg_mismatch"
        );
    }

    #[test]
    fn scalar_and_public_pair_loads_and_mismatch_is_refused() {
        let key = Es256SigningKey::generate().unwrap();
        // The PKCS#8 ring emits ends with the public point; the scalar sits at offset 36.
        let d = &key.to_pkcs8()[36..68];
        assert_eq!(&key.private_scalar().unwrap()[..], d);
        let again = Es256SigningKey::from_scalar_and_public(d, &key.public_key()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(again.to_pkcs8(), key.to_pkcs8());
        let other = Es256SigningKey::generate().unwrap();
        assert_eq!(
            Es256SigningKey::from_scalar_and_public(d, &other.public_key())
                .unwrap_err()
                .code(),
            "key_invalid"
        );
    }

    #[test]
    fn jti_is_128_bits() {
        let a = random_jti().unwrap();
        assert_eq!(a.len(), 22);
        assert_eq!(b64::decode(&a).unwrap().len(), 16);
        assert_ne!(a, random_jti().unwrap());
    }
}
