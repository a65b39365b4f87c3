//! What the agent checks on an SVID the verifier issued before serving it, as it checks a WIT's `cnf.jwk`: an SVID
//! for another key or another identity would be useless to the workload at best.
//! - X.509-SVID: the leaf's public key is the per-SVID key, its only URI SAN is the identity asked for.
//! - JWT-SVID: `sub` is the identity, `aud` holds every audience asked for.
//! - WIT-SVID: `sub` is the identity, `cnf.jwk` is the per-SVID key.
//!
//! Signatures and chains are the workload's relying parties' business (they hold the bundle); the agent does not
//! re-verify what it just received over an authenticated channel from the verifier.

use der::Decode as _;
use locus_wimse::jws::CompactJws;
use locus_wimse::Jwk;
use serde_json::Value;

use crate::error::AgentError;

fn bad(detail: impl std::fmt::Display) -> AgentError {
    AgentError::BadResponse(format!("issued SVID: {detail}"))
}

/// Check an X.509-SVID chain against the identity and the per-SVID public point (`04 ‖ x ‖ y`).
pub fn x509_svid(
    chain: &[Vec<u8>],
    spiffe_id: &str,
    public_point: &[u8],
) -> Result<(), AgentError> {
    let leaf = chain
        .first()
        .ok_or_else(|| bad("empty certificate chain"))?;
    let cert = x509_cert::Certificate::from_der(leaf).map_err(|e| bad(format!("leaf: {e}")))?;
    let spki = &cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key;
    if spki.raw_bytes() != public_point {
        return Err(bad("the leaf certifies another key than the per-SVID key"));
    }
    // Exactly one URI SAN, a SPIFFE ID: the one asked for.
    let id =
        locus_wimse::spiffe_tls::spiffe_id_of_leaf(leaf).map_err(|e| bad(format!("leaf: {e}")))?;
    if id.as_str() != spiffe_id {
        return Err(bad(format!(
            "the leaf is for {}, expected only {spiffe_id}",
            id.as_str()
        )));
    }
    for (i, der) in chain.iter().enumerate().skip(1) {
        x509_cert::Certificate::from_der(der).map_err(|e| bad(format!("chain[{i}]: {e}")))?;
    }
    Ok(())
}

fn claims_of(token: &str) -> Result<serde_json::Map<String, Value>, AgentError> {
    CompactJws::parse(token)
        .and_then(|j| j.claims())
        .map_err(|e| bad(format!("token: {e}")))
}

/// Check a JWT-SVID's `sub` and `aud`.
pub fn jwt_svid(token: &str, spiffe_id: &str, audiences: &[String]) -> Result<(), AgentError> {
    let claims = claims_of(token)?;
    if claims.get("sub").and_then(Value::as_str) != Some(spiffe_id) {
        return Err(bad(format!("JWT-SVID sub is not {spiffe_id}")));
    }
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if let Some(missing) = audiences.iter().find(|a| !aud.contains(&a.as_str())) {
        return Err(bad(format!("JWT-SVID aud lacks {missing}")));
    }
    Ok(())
}

/// Check a WIT-SVID's `sub` and `cnf.jwk`.
pub fn wit_svid(wit: &str, spiffe_id: &str, key: &Jwk) -> Result<(), AgentError> {
    let claims = claims_of(wit)?;
    if claims.get("sub").and_then(Value::as_str) != Some(spiffe_id) {
        return Err(bad(format!("WIT-SVID sub is not {spiffe_id}")));
    }
    let cnf = claims
        .get("cnf")
        .and_then(|c| c.get("jwk"))
        .ok_or_else(|| bad("WIT-SVID has no cnf.jwk"))?;
    let cnf = Jwk::from_value(cnf).map_err(|e| bad(format!("WIT-SVID cnf.jwk: {e}")))?;
    if cnf.thumbprint_sha256() != key.thumbprint_sha256() {
        return Err(bad("WIT-SVID cnf.jwk is not the per-SVID key"));
    }
    Ok(())
}
