//! Signing the credential (docs/architecture.md#credentials): the WIT with the claims the decision established (`crate::decision::Claims`:
//! `locus_tee`, `locus_residency`), and the EAR (draft-ietf-rats-ear-03) beside it, both signed with the active key
//! through `locus-wimse`. Nothing here decides: every value comes from the decision.
//!
//! The EAR has one submod named after the TEE (`sev-snp` / `tdx`); `ear.trustworthiness-vector` claims
//! instance-identity, configuration, executables and hardware; simulated evidence rates hardware `warning` (32), so
//! the EAR status is `warning` while the WIT still carries `"simulated": true` for relying parties to judge.

use std::collections::BTreeMap;

use locus_wimse::ear::{EAR_CWT_MEDIA_TYPE, EAR_JWT_MEDIA_TYPE};
use locus_wimse::{
    Ear, EarAppraisal, Es256SigningKey, Jwk, TrustTier, TrustVector, VerifierId, WitIssuer,
    EAR_PROFILE,
};

use crate::config::EarFormat;
use crate::decision::{Claims, ResidencyClaim, TeeClaim};
use crate::{ErrorCode, Refusal};

/// What the issuer needs about one decision.
#[derive(Debug)]
pub struct IssueRequest<'a> {
    pub claims: &'a Claims<'a>,
    pub cnf: &'a Jwk,
    pub nonce: &'a [u8],
    pub now: u64,
    pub with_ear: bool,
    pub ear_format: EarFormat,
}

/// An issued credential.
#[derive(Debug, Clone)]
pub struct Issued {
    pub wit: String,
    /// The EAR: a JWT, or base64url of the CWT.
    pub ear: Option<String>,
    /// Its media type.
    pub ear_type: Option<&'static str>,
    /// Its `jti`, expiry and signing key, as planned before signing.
    pub planned: Planned,
}

fn internal(what: &str, e: impl std::fmt::Display) -> Refusal {
    Refusal::new(ErrorCode::Internal, format!("{what}: {e}"))
}

fn ear(req: &IssueRequest<'_>, exp: u64) -> Ear {
    let simulated = req.claims.simulated;
    let hardware: i8 = if simulated { 32 } else { 2 };
    let vector = TrustVector {
        instance_identity: Some(2),
        configuration: Some(2),
        executables: Some(2),
        hardware: Some(hardware),
        ..TrustVector::default()
    };
    let status = if simulated {
        TrustTier::Warning
    } else {
        TrustTier::Affirming
    };
    let mut submods = BTreeMap::new();
    submods.insert(
        req.claims.tee.tee.to_string(),
        EarAppraisal {
            status,
            trust_vector: Some(vector),
            policy_ids: vec![req.claims.workload.id.as_str().to_string()],
            nonce: None,
            profile: None,
        },
    );
    Ear {
        profile: EAR_PROFILE.to_string(),
        iat: req.now,
        exp: Some(exp),
        verifier_id: VerifierId {
            developer: "https://locus.example/verifier".to_string(),
            build: concat!("locus-verifier ", env!("CARGO_PKG_VERSION")).to_string(),
        },
        status: Some(status),
        raw_evidence: None,
        nonce: Some(req.nonce.to_vec()),
        submods,
    }
}

/// A WIT extra claim of Locus's own.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum LocusClaim<'a> {
    Tee(&'a TeeClaim),
    Residency(&'a ResidencyClaim),
}

/// What a credential will carry, fixed before it is signed: its `jti`, expiry and signing key. The audit record of an
/// issuance is built from this, so it can be written while the signatures are made ([`sign`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub jti: String,
    pub exp: u64,
    pub kid: String,
}

/// Draw the `jti` and fix the expiry and key of the credential for `req`.
pub fn plan(signer: &Es256SigningKey, req: &IssueRequest<'_>) -> Result<Planned, Refusal> {
    Ok(Planned {
        jti: locus_wimse::jws::random_jti().map_err(|e| internal("jti", e))?,
        exp: req.claims.exp,
        kid: signer.kid().unwrap_or_default().to_string(),
    })
}

/// Sign the WIT (and EAR) for a decision that passed every check.
pub fn issue(
    issuer: &WitIssuer,
    signer: &Es256SigningKey,
    req: &IssueRequest<'_>,
) -> Result<Issued, Refusal> {
    sign(issuer, signer, req, plan(signer, req)?)
}

/// Sign the WIT (and EAR) as `planned`.
pub fn sign(
    issuer: &WitIssuer,
    signer: &Es256SigningKey,
    req: &IssueRequest<'_>,
    planned: Planned,
) -> Result<Issued, Refusal> {
    let sub = &req.claims.workload.id;
    // Written from the decision's claims (no JSON tree per credential), in name order.
    let mut extra = Vec::with_capacity(2);
    if let Some(r) = &req.claims.residency {
        extra.push(("locus_residency", LocusClaim::Residency(r)));
    }
    extra.push(("locus_tee", LocusClaim::Tee(&req.claims.tee)));
    let exp = planned.exp;
    let wit = issuer
        .issue_token_as(planned.jti.clone(), sub, req.cnf, req.now, exp, &extra)
        .map_err(|e| internal("WIT issuance", e))?
        .token;
    let (ear, ear_type) = if !req.with_ear {
        (None, None)
    } else {
        let result = ear(req, exp);
        match req.ear_format {
            EarFormat::Jwt => (
                Some(
                    result
                        .sign_jwt(signer)
                        .map_err(|e| internal("EAR signing", e))?,
                ),
                Some(EAR_JWT_MEDIA_TYPE),
            ),
            EarFormat::Cwt => (
                Some(locus_wimse::b64::encode(
                    result
                        .sign_cwt(signer)
                        .map_err(|e| internal("EAR signing", e))?,
                )),
                Some(EAR_CWT_MEDIA_TYPE),
            ),
        }
    };
    Ok(Issued {
        wit,
        ear,
        ear_type,
        planned,
    })
}
