//! One attestation round (docs/architecture.md#evidence-binding):
//! 1. a fresh P-256 key in memory (ring, through `locus_wimse::Es256SigningKey`);
//! 2. `POST /v1/challenge` (naming the workload) → nonce, and the landmarks the workload's fence needs; a proximity
//!    statement from each for this key ([`crate::proximity`]);
//! 3. report_data = SHA-512("locus-attest-v1" ‖ 0 ‖ nonce ‖ RFC 7638 thumbprint of the public JWK);
//! 4. evidence from the attester (blocking hardware call, run off the async workers);
//! 5. `POST /v1/attest` with nonce, TEE, evidence, certificates, public JWK and workload;
//! 6. the WIT is accepted only if it verifies against the verifier's JWKS (signature, `kid`, ES256, lifetime, no
//!    `aud`: [`VerifierClient::verify_wit`]), names the workload asked for (`sub_mismatch`), and its `cnf.jwk` is our
//!    key (`cnf_mismatch`); the credential keeps the key. A WIT failing any of this is dropped here, so `run` keeps
//!    serving the credential it has.

use std::sync::Arc;

use locus_hw::Attester;
use locus_wimse::Es256SigningKey;

use crate::binding;
use crate::client::{AttestRequest, VerifierClient};
use crate::credential::Credential;
use crate::error::AgentError;

/// Run one round against `client` with `attester`; `now` gives Unix seconds (receipt time of the WIT).
pub async fn obtain_credential(
    client: &VerifierClient,
    attester: Arc<dyn Attester>,
    workload: Option<&str>,
    now: &(dyn Fn() -> u64 + Send + Sync),
) -> Result<Credential, AgentError> {
    let key = Es256SigningKey::generate()
        .map_err(|e| AgentError::Internal(format!("key generation: {e}")))?;
    let jwk = Credential::public_jwk_of(&key);
    let thumbprint = jwk.thumbprint_sha256();

    let challenge = client.challenge_for(workload).await?;
    let proximity = crate::proximity::collect(client, &challenge.landmarks, &key).await;
    let report_data = binding::report_data(&challenge.nonce, &thumbprint);

    let expected_tee = attester.tee();
    let evidence = tokio::task::spawn_blocking(move || attester.attest(&report_data))
        .await
        .map_err(|e| AgentError::Internal(format!("attester task: {e}")))??;
    if evidence.tee != expected_tee {
        return Err(AgentError::Internal(format!(
            "attester for {} produced {} evidence",
            expected_tee.as_str(),
            evidence.tee.as_str()
        )));
    }

    let request = AttestRequest::new(challenge.nonce_b64, &evidence, &jwk, workload, proximity);
    let response = client.attest(&request).await?;
    let received_at = now();
    let verified = client.verify_wit(&response.wit, received_at).await?;
    if let Some(asked) = workload {
        if verified.id().as_str() != asked {
            return Err(AgentError::SubMismatch {
                expected: asked.to_string(),
                got: verified.id().as_str().to_string(),
            });
        }
    }
    Credential::from_response(response, key, received_at)
}

/// Unix seconds from the system clock (the one place the agent reads it for credentials).
pub fn system_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
