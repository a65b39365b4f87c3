//! The verifier's SPIFFE bundle (`GET /v1/spiffe/bundle`): a JWKS whose keys carry `use` `x509-svid` (CA
//! certificates in `x5c`), `jwt-svid` or `wit-svid`, plus `spiffe_sequence` and `spiffe_refresh_hint`. Parsed once
//! here into what the Workload API serves: DER CA certificates for the X.509 profile, and one JWK Set per JWT and WIT
//! profile holding only that profile's keys (the Workload API must not mix uses). Keys with another `use` are
//! ignored, as JWKS consumers do.

use base64::Engine as _;
use der::Decode as _;
use serde_json::{json, Value};

use crate::error::AgentError;

/// Most keys a bundle may hold.
pub const MAX_BUNDLE_KEYS: usize = 64;

/// One trust domain's bundle, as the Workload API serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeBundle {
    x509_authorities: Vec<Vec<u8>>,
    jwt_keys: Vec<Value>,
    wit_keys: Vec<Value>,
    sequence: Option<u64>,
    refresh_hint: Option<u64>,
}

fn bad(detail: impl std::fmt::Display) -> AgentError {
    AgentError::BadResponse(format!("SPIFFE bundle: {detail}"))
}

impl SpiffeBundle {
    /// Parse the bundle document. Every `x509-svid` key must carry an `x5c` whose first certificate parses as DER
    /// X.509; every `jwt-svid` and `wit-svid` key a `kid`; there must be at least one X.509 authority and one JWT key.
    pub fn from_json(body: &[u8]) -> Result<Self, AgentError> {
        let doc: Value = serde_json::from_slice(body).map_err(bad)?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no keys array"))?;
        if keys.len() > MAX_BUNDLE_KEYS {
            return Err(bad(format!("more than {MAX_BUNDLE_KEYS} keys")));
        }
        let mut out = SpiffeBundle {
            x509_authorities: Vec::new(),
            jwt_keys: Vec::new(),
            wit_keys: Vec::new(),
            sequence: doc.get("spiffe_sequence").and_then(Value::as_u64),
            refresh_hint: doc.get("spiffe_refresh_hint").and_then(Value::as_u64),
        };
        for key in keys {
            let has_kid = key
                .get("kid")
                .and_then(Value::as_str)
                .is_some_and(|k| !k.is_empty());
            match key.get("use").and_then(Value::as_str) {
                Some("x509-svid") => {
                    let first = key
                        .get("x5c")
                        .and_then(Value::as_array)
                        .and_then(|c| c.first())
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("an x509-svid key has no x5c certificate"))?;
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(first)
                        .map_err(|e| bad(format!("x5c is not base64: {e}")))?;
                    x509_cert::Certificate::from_der(&der)
                        .map_err(|e| bad(format!("x5c is not a DER certificate: {e}")))?;
                    out.x509_authorities.push(der);
                }
                Some(u @ ("jwt-svid" | "wit-svid")) => {
                    if !has_kid {
                        return Err(bad(format!("a {u} key has no kid")));
                    }
                    if u == "jwt-svid" {
                        out.jwt_keys.push(key.clone());
                    } else {
                        out.wit_keys.push(key.clone());
                    }
                }
                _ => {}
            }
        }
        if out.x509_authorities.is_empty() {
            return Err(bad("no x509-svid authority"));
        }
        if out.jwt_keys.is_empty() {
            return Err(bad("no jwt-svid key"));
        }
        Ok(out)
    }

    /// The X.509 authorities concatenated: the `bundle` field of the X.509 profile.
    pub fn x509_der(&self) -> Vec<u8> {
        self.x509_authorities.concat()
    }

    /// The JWT-SVID keys as a JWK Set (JSON text).
    pub fn jwt_jwks_json(&self) -> String {
        json!({ "keys": self.jwt_keys }).to_string()
    }

    /// The JWT-SVID keys, parsed, for validation.
    pub fn jwt_jwks(&self) -> Result<locus_wimse::Jwks, AgentError> {
        locus_wimse::Jwks::from_value(&json!({ "keys": self.jwt_keys })).map_err(bad)
    }

    /// The WIT-SVID keys as a JWK Set (JSON text).
    pub fn wit_jwks_json(&self) -> String {
        json!({ "keys": self.wit_keys }).to_string()
    }

    /// `spiffe_sequence`, if given.
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// `spiffe_refresh_hint` (seconds), if given.
    pub fn refresh_hint(&self) -> Option<u64> {
        self.refresh_hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any DER certificate serves as an X.509 authority here: the simulator's TDX root.
    const CA_DER: &[u8] =
        include_bytes!("../../../examples/sim-pki/tdx/collateral/intel_sgx_root_ca.der");

    fn x5c() -> String {
        base64::engine::general_purpose::STANDARD.encode(CA_DER)
    }

    fn doc(keys: Value) -> Vec<u8> {
        json!({"keys": keys, "spiffe_sequence": 7, "spiffe_refresh_hint": 60})
            .to_string()
            .into_bytes()
    }

    fn jwt_key(kid: &str, key_use: &str) -> Value {
        json!({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":kid,"use":key_use})
    }

    #[test]
    fn each_profile_gets_only_its_own_keys() {
        let body = doc(json!([
            {"kty":"EC","use":"x509-svid","kid":"ca","x5c":[x5c()]},
            jwt_key("j", "jwt-svid"),
            jwt_key("w", "wit-svid"),
            jwt_key("o", "wimse-jwt"),
        ]));
        let b = SpiffeBundle::from_json(&body).expect("bundle");
        assert_eq!(b.x509_der(), CA_DER);
        assert_eq!((b.sequence(), b.refresh_hint()), (Some(7), Some(60)));
        let jwt: Value = serde_json::from_str(&b.jwt_jwks_json()).expect("json");
        assert_eq!(jwt["keys"].as_array().map(Vec::len), Some(1));
        assert_eq!(jwt["keys"][0]["kid"], "j");
        let wit: Value = serde_json::from_str(&b.wit_jwks_json()).expect("json");
        assert_eq!(wit["keys"][0]["kid"], "w");
        assert_eq!(b.jwt_jwks().expect("parsed").keys.len(), 1);
    }

    #[test]
    fn malformed_bundles_are_verifier_response_invalid() {
        let ca = json!({"kty":"EC","use":"x509-svid","kid":"ca","x5c":[x5c()]});
        let cases = [
            br#"not json"#.to_vec(),
            br#"{"keys":{}}"#.to_vec(),
            doc(json!([jwt_key("j", "jwt-svid")])),
            doc(json!([ca.clone()])),
            doc(json!([{"kty":"EC","use":"x509-svid","kid":"ca"}, jwt_key("j", "jwt-svid")])),
            doc(
                json!([{"kty":"EC","use":"x509-svid","kid":"ca","x5c":["%%%"]}, jwt_key("j", "jwt-svid")]),
            ),
            doc(
                json!([{"kty":"EC","use":"x509-svid","kid":"ca","x5c":["AAAA"]}, jwt_key("j", "jwt-svid")]),
            ),
            doc(json!([ca, jwt_key("", "jwt-svid")])),
            doc(json!(vec![jwt_key("j", "jwt-svid"); MAX_BUNDLE_KEYS + 1])),
        ];
        for body in cases {
            let err = SpiffeBundle::from_json(&body).expect_err(&String::from_utf8_lossy(&body));
            assert_eq!(err.code(), "verifier_response_invalid");
        }
    }
}
