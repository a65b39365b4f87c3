//! The per-SVID key: a fresh P-256 key the agent generates for each X.509-SVID and WIT-SVID. Unlike the attested key
//! (which never leaves the agent), this key is handed to the workload — as PKCS#8 DER (`x509_svid_key`) or as a
//! private JWK (`wit_svid_key`) — so it is never the attested key and signs nothing for the agent.

use locus_wimse::{Alg, Es256SigningKey, Jwk, PublicKey};
use zeroize::Zeroizing;

use crate::error::AgentError;

/// A per-SVID key pair.
pub struct SvidKey {
    key: Es256SigningKey,
}

impl std::fmt::Debug for SvidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SvidKey")
            .field("thumbprint", &self.public_jwk().thumbprint_b64())
            .finish_non_exhaustive()
    }
}

impl SvidKey {
    /// A fresh key.
    pub fn generate() -> Result<Self, AgentError> {
        let key = Es256SigningKey::generate()
            .map_err(|e| AgentError::Internal(format!("per-SVID key generation: {e}")))?;
        Ok(Self { key })
    }

    /// The public JWK (with `"alg":"ES256"`), as sent in the SVID request.
    pub fn public_jwk(&self) -> Jwk {
        Jwk::new(self.key.public_key()).with_alg(Alg::Es256)
    }

    /// The uncompressed public point `04 ‖ x ‖ y` (what an X.509 SubjectPublicKeyInfo carries).
    pub fn public_point(&self) -> Vec<u8> {
        match self.key.public_key() {
            PublicKey::P256 { x, y } => [&[4u8][..], &x, &y].concat(),
            _ => Vec::new(),
        }
    }

    /// The unencrypted PKCS#8 DER document (`x509_svid_key`).
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.key.to_pkcs8().to_vec())
    }

    /// The private key as a JWK JSON text with `d` (`wit_svid_key`).
    pub fn private_jwk_json(&self) -> Result<Zeroizing<String>, AgentError> {
        let d = self
            .key
            .private_scalar()
            .map_err(|e| AgentError::Internal(format!("per-SVID key: {e}")))?;
        let mut jwk = self.public_jwk().to_value();
        jwk["d"] = serde_json::Value::String(locus_wimse::b64::encode(&*d));
        Ok(Zeroizing::new(jwk.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_jwk_and_pkcs8_are_the_same_key_and_every_key_is_fresh() {
        let k = SvidKey::generate().expect("key");
        let jwk: serde_json::Value =
            serde_json::from_str(&k.private_jwk_json().expect("jwk")).expect("json");
        assert_eq!(
            (jwk["kty"].as_str(), jwk["crv"].as_str()),
            (Some("EC"), Some("P-256"))
        );
        let d = locus_wimse::b64::decode(jwk["d"].as_str().expect("d")).expect("b64");
        let rebuilt = Es256SigningKey::from_scalar_and_public(&d, &k.public_jwk().key)
            .expect("d matches the public key");
        assert_eq!(rebuilt.to_pkcs8(), &k.pkcs8_der()[..]);
        assert_eq!(k.public_point().len(), 65);
        let other = SvidKey::generate().expect("key");
        assert_ne!(
            other.public_jwk().thumbprint_sha256(),
            k.public_jwk().thumbprint_sha256()
        );
    }
}
