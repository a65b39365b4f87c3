//! The decision (docs/architecture.md#the-decision): one pure step from (validated config, endorsements, `Verified<Facts>`, request, `now`) to
//! a [`Decision`] — the claims to issue, or a refusal with its code.
//!
//! Flow, each step with its own code:
//! 1. simulator evidence needs simulator trust (`simulated_evidence_untrusted`);
//! 2. the evidence binds this challenge and this key ([`binding`], `report_data_mismatch`);
//! 3. which workload ([`select`]: `identifier_invalid`, `workload_unknown`, `measurement_unknown`,
//!    `workload_ambiguous`);
//! 4. the confirmation key's algorithm is one the workload allows (`key_unsupported`);
//! 5. the workload's policy over the facts (`crate::appraisal::apply_policy`: debug, migration, VMPL, revocation, TCB
//!    status and floors, launch properties, reference values), which also yields the SNP `tcb_status`;
//! 6. where the platform is ([`residency`]: registry, endorsements), how far its key answered from landmarks
//!    ([`proximity`]: statements, `location_inconsistent`), and the geo-fence (`location_unknown`, `geofence_denied`,
//!    `proximity_failed`);
//! 7. the claims ([`claims`]), every value in them one the steps above established.
//!
//! Nothing here reads a file, a socket or the clock; the HTTP layer feeds it and signs, audits and answers what it
//! returns. The [`Context`] says what was learnt before the outcome, so the audit record is built from the decision
//! and never from raw request fields.

pub mod binding;
pub mod claims;
pub mod proximity;
pub mod residency;
pub mod select;

use locus_hw::TeeType;
use locus_wimse::{Alg, Jwk};

use crate::appraisal::{apply_policy, Facts, Verified};
use crate::config::{Config, Workload};
use crate::endorsement::Endorsement;
use crate::{ErrorCode, Refusal};

pub use claims::{ResidencyClaim, TeeClaim};
pub use residency::{Location, PlatformIdentity};

/// What the agent asked for.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The raw challenge bytes (already checked for MAC and age by the caller).
    pub nonce: &'a [u8],
    /// The agent's public key, to be bound as `cnf`.
    pub jwk: &'a Jwk,
    /// The workload named in the request, if any (untrusted text).
    pub workload: Option<&'a str>,
    /// Proximity statements as received (untrusted bytes; [`proximity::bounds`] keeps the ones that count).
    pub proximity: &'a [Vec<u8>],
}

/// Everything the decision looks at.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub config: &'a Config,
    pub endorsements: &'a [Endorsement],
    pub verified: &'a Verified<Facts>,
    pub request: Request<'a>,
    pub now: u64,
}

/// What was established on the way, for the audit record (whatever the outcome).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    pub tee: Option<TeeType>,
    /// The workload chosen (never the raw requested text).
    pub workload: Option<String>,
    /// Hex SHA-256 of the platform identity (`locus_tee.platform`).
    pub platform: Option<String>,
    pub location: Option<Location>,
    /// Equal to the `simulated` of the credential that is or would be issued.
    pub simulated: Option<bool>,
    pub measurement: Option<String>,
    /// RFC 7638 thumbprint (base64url) of the agent key.
    pub cnf_jkt: Option<String>,
}

/// The claims to issue.
#[derive(Clone, Debug)]
pub struct Claims<'a> {
    pub workload: &'a Workload,
    pub tee: TeeClaim,
    pub residency: Option<ResidencyClaim>,
    /// `exp` of the credential.
    pub exp: u64,
    pub simulated: bool,
}

/// The outcome and what led to it.
#[derive(Clone, Debug)]
pub struct Decision<'a> {
    pub context: Context,
    pub outcome: Result<Claims<'a>, Refusal>,
}

/// Decide. See the module docs for the steps.
pub fn decide<'a>(inputs: &Inputs<'a>) -> Decision<'a> {
    let facts = inputs.verified.facts();
    let simulated = inputs.verified.simulated() || inputs.config.trust.simulator;
    let platform = PlatformIdentity {
        tee: facts.tee(),
        id: facts.platform_identity(),
        provider_level: facts.provider_level_identity(),
    };
    // The agent key's RFC 7638 thumbprint, once: the context, the nonce binding and the proximity bounds use it.
    let jkt = inputs.request.jwk.thumbprint_sha256();
    let mut context = Context {
        tee: Some(facts.tee()),
        platform: Some(platform.digest_hex()),
        simulated: Some(simulated),
        measurement: Some(hex::encode(facts.measurement())),
        cnf_jkt: Some(locus_wimse::b64::encode(jkt)),
        ..Context::default()
    };
    let outcome = decide_inner(inputs, &platform, &jkt, simulated, &mut context);
    Decision { context, outcome }
}

fn decide_inner<'a>(
    inputs: &Inputs<'a>,
    platform: &PlatformIdentity,
    jkt: &[u8; 32],
    simulated: bool,
    context: &mut Context,
) -> Result<Claims<'a>, Refusal> {
    let cfg = inputs.config;
    let verified = inputs.verified;
    let facts = verified.facts();

    // Step 1: simulator evidence only under simulator trust (appraisal already refuses it; belt and braces).
    if verified.simulated() && !cfg.trust.simulator {
        return Err(Refusal::new(
            ErrorCode::SimulatedEvidenceUntrusted,
            "evidence chains to a simulator root and trust.simulator is off",
        ));
    }

    // Step 2: the evidence was made for this challenge and this key.
    binding::check(facts.report_data(), inputs.request.nonce, jkt)?;

    // Step 3: the workload.
    let workload = select::select(cfg, inputs.request.workload, verified)?;
    context.workload = Some(workload.id.as_str().to_string());

    // Step 4: the confirmation key.
    check_key(workload, inputs.request.jwk)?;

    // Step 5: the workload's policy.
    let outcome = apply_policy(verified, &workload.policy)?;

    // Step 6: residency, proximity bounds and the fence.
    let mut location = residency::locate(cfg, inputs.endorsements, platform, inputs.now);
    let (bounds, _ignored) = proximity::bounds(cfg, inputs.request.proximity, jkt, inputs.now);
    context.location = location.clone();
    proximity::check_consistent(cfg, &bounds, location.as_ref())?;
    residency::check(workload, location.as_ref())?;
    if let Some(fence) = &workload.geofence {
        proximity::check_within(fence, &bounds)?;
    }
    if let (Some(loc), false) = (location.as_mut(), bounds.is_empty()) {
        loc.sources.push("proximity");
        context.location = Some(loc.clone());
    }

    // Step 7: the claims.
    let tee = TeeClaim::new(verified, workload, platform, &outcome, simulated);
    let residency = match location {
        Some(loc) => Some(ResidencyClaim::established(loc, bounds, inputs.now)),
        None if !bounds.is_empty() => Some(ResidencyClaim::ProximityOnly {
            bounds,
            checked_at: inputs.now,
        }),
        None => Some(ResidencyClaim::NotEstablished),
    };
    Ok(Claims {
        workload,
        tee,
        residency,
        exp: inputs.now.saturating_add(workload.ttl.as_secs()),
        simulated,
    })
}

/// The algorithm the agent key signs with: its `alg` member when present, else its key type's.
fn check_key(workload: &Workload, jwk: &Jwk) -> Result<(), Refusal> {
    let alg = match jwk.alg.as_deref() {
        Some(name) => Alg::from_name(name).ok(),
        None => Some(jwk.key.default_alg()),
    };
    match alg {
        Some(alg) if jwk.key.fits(alg) && workload.key_algorithms.contains(&alg) => Ok(()),
        _ => Err(Refusal::new(
            ErrorCode::KeyUnsupported,
            format!(
                "confirmation key algorithm {} is not allowed for {} (allowed: {})",
                jwk.alg
                    .clone()
                    .unwrap_or_else(|| jwk.key.default_alg().name().to_string()),
                workload.id.as_str(),
                workload
                    .key_algorithms
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}
