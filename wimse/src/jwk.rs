//! JSON Web Keys (RFC 7517) for the key types Locus uses — EC P-256 / P-384, OKP Ed25519, RSA (verify only) — JWK
//! Sets, RFC 7638 thumbprints, and the JWS algorithms (RFC 7518, RFC 8037) with their verification via `ring`.
//!
//! Coordinates are decoded strictly (base64url without padding, canonical trailing bits, exact lengths), so the
//! thumbprint, which re-encodes them, equals the one computed over the members received.

use std::fmt;

use ring::signature::{self, UnparsedPublicKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::b64;
use crate::error::WimseError;

/// JWKS `use` value for WIT signing keys (SPIFFE WIT-SVID bundle).
pub const USE_WIT_SVID: &str = "wit-svid";

/// A JWS algorithm this crate implements. Symmetric algorithms and `none` are deliberately absent: they can never be
/// named by a verified token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    /// ECDSA P-256 SHA-256.
    Es256,
    /// ECDSA P-384 SHA-384.
    Es384,
    /// Ed25519 (RFC 8037 `EdDSA`).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 SHA-256 (verification only, 2048..8192-bit moduli).
    Rs256,
    /// RSASSA-PSS SHA-256 (verification only, 2048..8192-bit moduli).
    Ps256,
}

impl Alg {
    /// Every algorithm implemented, the default allow-list.
    pub const ALL: &'static [Alg] = &[Alg::Es256, Alg::Es384, Alg::EdDsa, Alg::Rs256, Alg::Ps256];

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }

    /// Parse a JOSE name (exact, case-sensitive). Anything else — `none`, `HS256`, … — is `alg_not_allowed`.
    pub fn from_name(name: &str) -> Result<Self, WimseError> {
        Ok(match name {
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "EdDSA" => Self::EdDsa,
            "RS256" => Self::Rs256,
            "PS256" => Self::Ps256,
            _ => {
                return Err(WimseError::AlgNotAllowed {
                    alg: name.to_owned(),
                })
            }
        })
    }

    /// COSE algorithm identifier (RFC 9053 / RFC 8812).
    pub fn cose_id(self) -> i64 {
        match self {
            Self::Es256 => -7,
            Self::Es384 => -35,
            Self::EdDsa => -8,
            Self::Rs256 => -257,
            Self::Ps256 => -37,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The public key material of a JWK.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// EC P-256 point.
    P256 {
        /// x coordinate, big-endian.
        x: [u8; 32],
        /// y coordinate, big-endian.
        y: [u8; 32],
    },
    /// EC P-384 point.
    P384 {
        /// x coordinate, big-endian.
        x: [u8; 48],
        /// y coordinate, big-endian.
        y: [u8; 48],
    },
    /// Ed25519 public key.
    Ed25519 {
        /// The 32-byte public key.
        x: [u8; 32],
    },
    /// RSA public key.
    Rsa {
        /// Modulus, big-endian, no leading zero.
        n: Vec<u8>,
        /// Exponent, big-endian, no leading zero.
        e: Vec<u8>,
    },
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::P256 { x, y } => write!(f, "P256(x={}, y={})", hex::encode(x), hex::encode(y)),
            Self::P384 { x, y } => write!(f, "P384(x={}, y={})", hex::encode(x), hex::encode(y)),
            Self::Ed25519 { x } => write!(f, "Ed25519({})", hex::encode(x)),
            Self::Rsa { n, .. } => write!(f, "Rsa({} bits)", n.len() * 8),
        }
    }
}

impl PublicKey {
    /// Whether `alg` is a signature algorithm for this key type.
    pub fn fits(&self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (Self::P256 { .. }, Alg::Es256)
                | (Self::P384 { .. }, Alg::Es384)
                | (Self::Ed25519 { .. }, Alg::EdDsa)
                | (Self::Rsa { .. }, Alg::Rs256 | Alg::Ps256)
        )
    }

    /// The algorithm a key of this type signs with by default (RSA: RS256).
    pub fn default_alg(&self) -> Alg {
        match self {
            Self::P256 { .. } => Alg::Es256,
            Self::P384 { .. } => Alg::Es384,
            Self::Ed25519 { .. } => Alg::EdDsa,
            Self::Rsa { .. } => Alg::Rs256,
        }
    }

    /// Verify `signature` over `message` with `alg`. ECDSA signatures are the JWS/COSE fixed-size `r ‖ s`.
    pub fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> Result<(), WimseError> {
        if !self.fits(alg) {
            return Err(WimseError::AlgMismatch {
                expected: self.default_alg().name().to_owned(),
                got: alg.name().to_owned(),
            });
        }
        let ok = match self {
            Self::P256 { x, y } => {
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
            }
            Self::P384 { x, y } => {
                let mut point = Vec::with_capacity(97);
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
            }
            Self::Ed25519 { x } => {
                UnparsedPublicKey::new(&signature::ED25519, x).verify(message, sig)
            }
            Self::Rsa { n, e } => {
                let params: &signature::RsaParameters = if alg == Alg::Ps256 {
                    &signature::RSA_PSS_2048_8192_SHA256
                } else {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                };
                signature::RsaPublicKeyComponents { n, e }.verify(params, message, sig)
            }
        };
        ok.map_err(|_| WimseError::SignatureInvalid)
    }

    /// RFC 7638 canonical JSON: the required members only, lexicographic order, no whitespace.
    fn thumbprint_input(&self) -> String {
        match self {
            Self::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::encode(x),
                b64::encode(y)
            ),
            Self::P384 { x, y } => format!(
                r#"{{"crv":"P-384","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::encode(x),
                b64::encode(y)
            ),
            Self::Ed25519 { x } => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                b64::encode(x)
            ),
            Self::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64::encode(e),
                b64::encode(n)
            ),
        }
    }
}

/// A public JWK: key material plus the optional `alg`, `kid` and `use` members. Other members are ignored on input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// Key material.
    pub key: PublicKey,
    /// `alg` as received (kept as a string: the WPT check is a string comparison). Validated to fit the key type when
    /// it names an algorithm this crate knows.
    pub alg: Option<String>,
    /// `kid`.
    pub kid: Option<String>,
    /// `use` (`wit-svid` in a WIT bundle).
    pub key_use: Option<String>,
}

impl Jwk {
    /// A JWK for `key` without optional members.
    pub fn new(key: PublicKey) -> Self {
        Self {
            key,
            alg: None,
            kid: None,
            key_use: None,
        }
    }

    /// Set `alg`.
    pub fn with_alg(mut self, alg: Alg) -> Self {
        self.alg = Some(alg.name().to_owned());
        self
    }

    /// Set `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Set `use`.
    pub fn with_use(mut self, key_use: impl Into<String>) -> Self {
        self.key_use = Some(key_use.into());
        self
    }

    /// RFC 7638 SHA-256 thumbprint (the `jwk_thumbprint` of docs/architecture.md#evidence-binding).
    pub fn thumbprint_sha256(&self) -> [u8; 32] {
        Sha256::digest(self.key.thumbprint_input().as_bytes()).into()
    }

    /// The thumbprint, base64url.
    pub fn thumbprint_b64(&self) -> String {
        b64::encode(self.thumbprint_sha256())
    }

    /// Parse from a JSON value (strict: public members only; a private member such as `d` is refused).
    pub fn from_value(v: &Value) -> Result<Self, WimseError> {
        let obj = v
            .as_object()
            .ok_or_else(|| WimseError::key("JWK is not a JSON object"))?;
        Self::from_map(obj)
    }

    /// Parse from JSON text.
    pub fn from_json(s: &str) -> Result<Self, WimseError> {
        let v: Value =
            serde_json::from_str(s).map_err(|e| WimseError::key(format!("JWK JSON: {e}")))?;
        Self::from_value(&v)
    }

    fn from_map(obj: &Map<String, Value>) -> Result<Self, WimseError> {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            if obj.contains_key(private) {
                return Err(WimseError::key(format!(
                    "JWK holds private member {private:?}"
                )));
            }
        }
        let kty = str_member(obj, "kty")?.ok_or_else(|| WimseError::key("kty missing"))?;
        let key = match kty {
            "EC" => {
                let crv = str_member(obj, "crv")?.ok_or_else(|| WimseError::key("crv missing"))?;
                let x = b64_member(obj, "x")?;
                let y = b64_member(obj, "y")?;
                match crv {
                    "P-256" => PublicKey::P256 {
                        x: fixed(&x, "x")?,
                        y: fixed(&y, "y")?,
                    },
                    "P-384" => PublicKey::P384 {
                        x: fixed(&x, "x")?,
                        y: fixed(&y, "y")?,
                    },
                    other => {
                        return Err(WimseError::key(format!("EC curve {other:?} not supported")))
                    }
                }
            }
            "OKP" => {
                let crv = str_member(obj, "crv")?.ok_or_else(|| WimseError::key("crv missing"))?;
                if crv != "Ed25519" {
                    return Err(WimseError::key(format!("OKP curve {crv:?} not supported")));
                }
                PublicKey::Ed25519 {
                    x: fixed(&b64_member(obj, "x")?, "x")?,
                }
            }
            "RSA" => {
                let n = b64_member(obj, "n")?;
                let e = b64_member(obj, "e")?;
                if n.first() == Some(&0) || e.first() == Some(&0) || e.is_empty() {
                    return Err(WimseError::key("RSA n/e with leading zero or empty"));
                }
                if n.len() < 256 {
                    return Err(WimseError::key("RSA modulus shorter than 2048 bits"));
                }
                PublicKey::Rsa { n, e }
            }
            other => return Err(WimseError::key(format!("kty {other:?} not supported"))),
        };
        let alg = str_member(obj, "alg")?.map(str::to_owned);
        if let Some(a) = &alg {
            // An algorithm we implement must fit the key; an unknown name is kept (it can then never be satisfied).
            if let Ok(known) = Alg::from_name(a) {
                if !key.fits(known) {
                    return Err(WimseError::key(format!(
                        "alg {a} does not fit the key type"
                    )));
                }
            }
        }
        Ok(Self {
            key,
            alg,
            kid: str_member(obj, "kid")?.map(str::to_owned),
            key_use: str_member(obj, "use")?.map(str::to_owned),
        })
    }

    /// The JSON object (members in lexicographic order): [`Jwk`]'s `Serialize`, as a `Value`.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The `alg` member parsed, if present and known.
    pub fn known_alg(&self) -> Option<Alg> {
        self.alg.as_deref().and_then(|a| Alg::from_name(a).ok())
    }
}

/// The members in lexicographic order (as RFC 7638 orders the required ones), written from the key's fields: no
/// `Value` tree per key (the verifier writes one `cnf.jwk` per credential).
impl Serialize for Jwk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        struct B64<'a>(&'a [u8]);
        impl Serialize for B64<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&b64::encode(self.0))
            }
        }
        let (kty, crv, e, n, x, y) = match &self.key {
            PublicKey::P256 { x, y } => {
                ("EC", Some("P-256"), None, None, Some(&x[..]), Some(&y[..]))
            }
            PublicKey::P384 { x, y } => {
                ("EC", Some("P-384"), None, None, Some(&x[..]), Some(&y[..]))
            }
            PublicKey::Ed25519 { x } => ("OKP", Some("Ed25519"), None, None, Some(&x[..]), None),
            PublicKey::Rsa { n, e } => ("RSA", None, Some(&e[..]), Some(&n[..]), None, None),
        };
        // Every member a key may have, in lexicographic order; those it has not are left out.
        let mut m = s.serialize_map(None)?;
        if let Some(a) = &self.alg {
            m.serialize_entry("alg", a)?;
        }
        if let Some(crv) = crv {
            m.serialize_entry("crv", crv)?;
        }
        if let Some(e) = e {
            m.serialize_entry("e", &B64(e))?;
        }
        if let Some(k) = &self.kid {
            m.serialize_entry("kid", k)?;
        }
        m.serialize_entry("kty", kty)?;
        if let Some(n) = n {
            m.serialize_entry("n", &B64(n))?;
        }
        if let Some(u) = &self.key_use {
            m.serialize_entry("use", u)?;
        }
        if let Some(x) = x {
            m.serialize_entry("x", &B64(x))?;
        }
        if let Some(y) = y {
            m.serialize_entry("y", &B64(y))?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Jwk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_value(&v).map_err(serde::de::Error::custom)
    }
}

fn str_member<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, WimseError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(WimseError::key(format!("{name} is not a string"))),
    }
}

fn b64_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, WimseError> {
    let s = str_member(obj, name)?.ok_or_else(|| WimseError::key(format!("{name} missing")))?;
    b64::decode(s).map_err(|_| WimseError::key(format!("{name} is not base64url without padding")))
}

fn fixed<const N: usize>(v: &[u8], name: &str) -> Result<[u8; N], WimseError> {
    v.try_into()
        .map_err(|_| WimseError::key(format!("{name} has {} bytes, expected {N}", v.len())))
}

/// A JWK Set (RFC 7517 §5). Members of an unsupported `kty` or curve are skipped, as RFC 7517 §5 asks; malformed
/// members of a supported type are an error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// A set of `keys`.
    pub fn new(keys: Vec<Jwk>) -> Self {
        Self { keys }
    }

    /// Parse JSON text `{"keys":[…]}`.
    pub fn from_json(s: &str) -> Result<Self, WimseError> {
        let v: Value =
            serde_json::from_str(s).map_err(|e| WimseError::key(format!("JWKS JSON: {e}")))?;
        Self::from_value(&v)
    }

    /// Parse a JSON value `{"keys":[…]}`.
    pub fn from_value(v: &Value) -> Result<Self, WimseError> {
        let keys = v
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| WimseError::key("JWKS has no keys array"))?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let kty = k.get("kty").and_then(Value::as_str);
            let crv = k.get("crv").and_then(Value::as_str);
            let supported = match kty {
                Some("EC") => matches!(crv, Some("P-256" | "P-384")),
                Some("OKP") => crv == Some("Ed25519"),
                Some("RSA") => true,
                _ => false,
            };
            if !supported {
                continue;
            }
            out.push(Jwk::from_value(k)?);
        }
        Ok(Self { keys: out })
    }

    /// JSON value `{"keys":[…]}`.
    pub fn to_value(&self) -> Value {
        serde_json::json!({ "keys": self.keys.iter().map(Jwk::to_value).collect::<Vec<_>>() })
    }

    /// JSON text.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// The key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

impl Serialize for Jwks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Jwks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_value(&v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwk_serializes_its_members_in_lexicographic_order_and_reads_back() {
        let ec = crate::jws::Es256SigningKey::generate()
            .unwrap()
            .public_jwk()
            .with_alg(Alg::Es256)
            .with_kid("k1")
            .with_use(USE_WIT_SVID);
        let rsa = Jwk::new(PublicKey::Rsa {
            n: vec![0xc5; 256],
            e: vec![1, 0, 1],
        })
        .with_kid("r");
        let ed = Jwk::new(PublicKey::Ed25519 { x: [7; 32] });
        for (jwk, names) in [
            (&ec, &["alg", "crv", "kid", "kty", "use", "x", "y"][..]),
            (&rsa, &["e", "kid", "kty", "n"][..]),
            (&ed, &["crv", "kty", "x"][..]),
        ] {
            let text = serde_json::to_string(jwk).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            let got: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(got, names, "{text}");
            // Written in that order too (what a byte-level reader sees), and the same as the Value form.
            let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
            assert!(names.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
            assert_eq!(jwk.to_value(), v);
            assert_eq!(&Jwk::from_value(&v).unwrap(), jwk);
        }
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1 example key and its thumbprint.
        let jwk = Jwk::from_json(r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
        assert_eq!(
            jwk.thumbprint_b64(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn rfc8037_ed25519_thumbprint() {
        // RFC 8037 appendix A.3.
        let jwk = Jwk::from_json(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint_b64(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn private_member_refused() {
        let e = Jwk::from_json(r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#).unwrap_err();
        assert_eq!(e.code(), "key_invalid");
    }

    #[test]
    fn wrong_lengths_padding_and_types_refused() {
        for bad in [
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR"}"#,
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo="}"#,
            r#"{"kty":"OKP","crv":"X25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
            r#"{"kty":"oct","k":"AAAA"}"#,
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"ES256"}"#,
            r#"{"kty":"EC","crv":"P-256","x":"kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks"}"#,
            r#"[1]"#,
        ] {
            assert_eq!(
                Jwk::from_json(bad).unwrap_err().code(),
                "key_invalid",
                "{bad}"
            );
        }
    }

    #[test]
    fn jwks_skips_unknown_kty_and_finds_by_kid() {
        let set = Jwks::from_json(r#"{"keys":[{"kty":"oct","k":"AAAA"},{"kty":"EC","crv":"P-521","x":"AA","y":"AA"},{"kty":"EC","kid":"June 5","crv":"P-256","x":"kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks","y":"n__VndPMR021-59UAs0b9qDTFT-EZtT6xSNs_xFskLo"}]}"#).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert!(set.find("June 5").is_some());
        assert!(set.find("June 6").is_none());
        let again = Jwks::from_json(&set.to_json()).unwrap();
        assert_eq!(again, set);
        // A malformed member of a supported type is an error, not skipped.
        let bad = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#;
        assert_eq!(Jwks::from_json(bad).unwrap_err().code(), "key_invalid");
    }

    #[test]
    fn es384_signatures_verify_and_tampering_fails() {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let json = format!(
            r#"{{"kty":"EC","crv":"P-384","alg":"ES384","x":"{}","y":"{}"}}"#,
            b64::encode(&point[1..49]),
            b64::encode(&point[49..97])
        );
        let jwk = Jwk::from_json(&json).unwrap();
        assert_eq!(jwk.known_alg(), Some(Alg::Es384));
        let sig = pair.sign(&rng, b"message").unwrap();
        jwk.key
            .verify(Alg::Es384, b"message", sig.as_ref())
            .unwrap();
        assert_eq!(
            jwk.key
                .verify(Alg::Es384, b"messagf", sig.as_ref())
                .unwrap_err()
                .code(),
            "signature_invalid"
        );
        assert_eq!(
            jwk.key
                .verify(Alg::Es256, b"message", sig.as_ref())
                .unwrap_err()
                .code(),
            "alg_mismatch"
        );
        assert_eq!(Jwk::from_json(&jwk.to_value().to_string()).unwrap(), jwk);
    }

    #[test]
    fn alg_names_are_exact() {
        for a in Alg::ALL {
            assert_eq!(Alg::from_name(a.name()).unwrap(), *a);
        }
        for bad in ["none", "HS256", "es256", "ES512", ""] {
            assert_eq!(Alg::from_name(bad).unwrap_err().code(), "alg_not_allowed");
        }
    }
}
