//! Issuing the credential (DESIGN §5): the WIT with the `locus_tee` and `locus_residency` claims, and the EAR
//! (draft-ietf-rats-ear-03) beside it, both signed with the active key through `locus-wimse`.
//!
//! Claim choices where DESIGN §5 leaves room:
//! - `locus_tee.measurement` is the SNP MEASUREMENT or the TDX MRTD, lowercase hex.
//! - `locus_tee.tcb_status` is Intel's status for TDX; for SEV-SNP, which has no vendor status, it is `UpToDate`
//!   once the report's TCB passed the workload's policy (per-component minimum when one is configured).
//! - `locus_residency` is present only when the platform's location is known; an unfenced workload on an
//!   unlocated platform gets a WIT without it.
//! - The EAR has one submod named after the TEE (`sev-snp` / `tdx`), `ear.trustworthiness-vector` claims
//!   instance-identity, configuration, executables and hardware; simulated evidence rates hardware `warning` (32), so
//!   the EAR status is `warning` while the WIT still carries `"simulated": true` for relying parties to judge.
//! - `simulated` is true whenever simulator trust is on (DESIGN §3: "every credential then carries
//!   `simulated: true`"), not only for evidence that chained to a simulator root: a verifier that trusts the
//!   simulator cannot vouch for hardware.

use std::collections::BTreeMap;

use locus_wimse::ear::{EAR_CWT_MEDIA_TYPE, EAR_JWT_MEDIA_TYPE};
use locus_wimse::{
    Ear, EarAppraisal, Es256SigningKey, Jwk, TrustTier, TrustVector, VerifierId, WitIssuer,
    WorkloadId, EAR_PROFILE,
};
use serde_json::{json, Map, Value};

use super::config::{EarFormat, Workload};
use super::policy::tee_of;
use super::residency::{Location, PlatformIdentity};
use crate::appraisal::{Facts, Verified};
use crate::{ErrorCode, Refusal};

/// What the issuer needs about one decision.
#[derive(Debug)]
pub struct IssueRequest<'a> {
    pub workload: &'a Workload,
    pub verified: &'a Verified<Facts>,
    pub platform: &'a PlatformIdentity,
    pub location: Option<&'a Location>,
    pub cnf: &'a Jwk,
    pub nonce: &'a [u8],
    pub now: u64,
    pub with_ear: bool,
    pub ear_format: EarFormat,
    /// `trust.simulator` of the running config.
    pub simulator_trusted: bool,
}

/// An issued credential.
#[derive(Debug, Clone)]
pub struct Issued {
    pub wit: String,
    /// The EAR: a JWT, or base64url of the CWT.
    pub ear: Option<String>,
    /// Its media type.
    pub ear_type: Option<&'static str>,
    pub jti: String,
    pub exp: u64,
    pub kid: String,
    pub tee_claim: Value,
    pub residency_claim: Option<Value>,
}

fn internal(what: &str, e: impl std::fmt::Display) -> Refusal {
    Refusal::new(ErrorCode::Internal, format!("{what}: {e}"))
}

/// The `locus_tee` claim.
pub fn tee_claim(
    verified: &Verified<Facts>,
    platform: &PlatformIdentity,
    simulator_trusted: bool,
) -> Value {
    let (measurement, tcb_status) = match verified.facts() {
        Facts::Snp(f) => (hex::encode(f.measurement), "UpToDate".to_string()),
        Facts::Tdx(f) => (hex::encode(f.mr_td), f.tcb_status.clone()),
    };
    let facts = verified.facts();
    json!({
        "type": tee_of(verified).as_str(),
        "measurement": measurement,
        "tcb_status": tcb_status,
        "debug": facts.debug(),
        "platform": platform.digest_hex(),
        "simulated": verified.simulated() || simulator_trusted,
    })
}

/// The `locus_residency` claim.
pub fn residency_claim(loc: &Location, checked_at: u64) -> Value {
    let mut v = json!({
        "country": loc.country,
        "site": loc.site,
        "zones": loc.zones,
        "sources": loc.sources,
        "checked_at": checked_at,
    });
    if let (Some(region), Some(obj)) = (&loc.region, v.as_object_mut()) {
        obj.insert("region".into(), Value::String(region.clone()));
    }
    v
}

fn ear(req: &IssueRequest<'_>, exp: u64) -> Ear {
    let simulated = req.verified.simulated() || req.simulator_trusted;
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
    let tee = tee_of(req.verified);
    let mut submods = BTreeMap::new();
    submods.insert(
        tee.as_str().to_string(),
        EarAppraisal {
            status,
            trust_vector: Some(vector),
            policy_ids: vec![req.workload.id.clone()],
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
            build: format!("locus-verifier {}", env!("CARGO_PKG_VERSION")),
        },
        status: Some(status),
        raw_evidence: None,
        nonce: Some(req.nonce.to_vec()),
        submods,
    }
}

/// Sign the WIT (and EAR) for a decision that passed every check.
pub fn issue(
    issuer: &WitIssuer,
    signer: &Es256SigningKey,
    req: &IssueRequest<'_>,
) -> Result<Issued, Refusal> {
    let sub = WorkloadId::parse(&req.workload.id).map_err(|e| {
        Refusal::new(
            ErrorCode::IdentifierInvalid,
            format!("workload {}: {e}", req.workload.id),
        )
    })?;
    let exp = req.now.saturating_add(req.workload.ttl.as_secs());
    let tee_claim = tee_claim(req.verified, req.platform, req.simulator_trusted);
    let residency = req.location.map(|l| residency_claim(l, req.now));
    let mut extra = Map::new();
    extra.insert("locus_tee".into(), tee_claim.clone());
    if let Some(r) = &residency {
        extra.insert("locus_residency".into(), r.clone());
    }
    let (wit, claims) = issuer
        .issue(&sub, req.cnf, req.now, exp, &extra)
        .map_err(|e| internal("WIT issuance", e))?;
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
        jti: claims.jti.unwrap_or_default(),
        exp,
        kid: signer.kid().unwrap_or_default().to_string(),
        tee_claim,
        residency_claim: residency,
    })
}
