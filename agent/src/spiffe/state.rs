//! The SVIDs the agent serves, per identity, and their renewal.
//!
//! For each identity ([`IdentityKey`]) one task ([`svid_loop`]) watches that identity's attested credential and,
//! whenever a new WIT arrives or the current SVIDs reach 2/3 of their lifetime:
//! 1. generates a fresh per-SVID key ([`SvidKey`]) — never the attested key;
//! 2. signs an SVID request with the attested key and has the [`SvidSource`] issue the X.509-SVID (and, with the
//!    WIT-SVID profile on, a second key and a WIT-SVID);
//! 3. checks what came back ([`check`]), fetches the bundle, and publishes bundle then SVIDs.
//!
//! Every publication bumps one epoch counter ([`SpiffeState::subscribe`]); each open Workload API stream rebuilds its
//! answer on every bump and sends it when it differs from the last one it sent, so a renewal reaches every stream
//! without the client reconnecting. An SVID past its expiry is withdrawn. Failures are retried with the agent's
//! jittered back-off; the bundle alone is refreshed at its `spiffe_refresh_hint` (clamped to 5 s – 5 min).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use locus_wimse::WorkloadId;
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::credential::Credential;
use crate::error::AgentError;
use crate::run::{jitter, retry_delay, Clock, CredentialSlot, RunConfig};
use crate::spiffe::bundle::SpiffeBundle;
use crate::spiffe::check;
use crate::spiffe::identity::IdentityKey;
use crate::spiffe::key::SvidKey;
use crate::spiffe::request::{SvidKind, SvidRequest};
use crate::spiffe::source::{IssuedJwt, SvidCall, SvidSource};

/// Bounds of the bundle refresh interval, seconds.
const BUNDLE_REFRESH_MIN: u64 = 5;
/// See [`BUNDLE_REFRESH_MIN`].
const BUNDLE_REFRESH_MAX: u64 = 300;

/// A served X.509-SVID.
pub struct X509SvidState {
    /// Its SPIFFE ID.
    pub spiffe_id: String,
    /// DER chain, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// PKCS#8 DER of the per-SVID key.
    pub key_pkcs8: Zeroizing<Vec<u8>>,
    /// `notAfter`, Unix seconds.
    pub expires_at: u64,
}

impl std::fmt::Debug for X509SvidState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X509SvidState")
            .field("spiffe_id", &self.spiffe_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A served WIT-SVID.
pub struct WitSvidState {
    /// Its SPIFFE ID.
    pub spiffe_id: String,
    /// The WIT bound to the per-SVID key.
    pub wit: String,
    /// The per-SVID private key as a JWK JSON text.
    pub key_jwk: Zeroizing<String>,
    /// `exp`.
    pub expires_at: u64,
}

impl std::fmt::Debug for WitSvidState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitSvidState")
            .field("spiffe_id", &self.spiffe_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The bundle with the trust domain it belongs to.
#[derive(Debug, PartialEq, Eq)]
pub struct BundleState {
    /// `spiffe://<trust domain>`: the key of the bundle maps.
    pub trust_domain_id: String,
    /// The trust domain itself, which JWT-SVIDs are validated against.
    pub trust_domain: locus_wimse::TrustDomain,
    /// The bundle.
    pub bundle: SpiffeBundle,
}

/// One identity the agent serves.
#[derive(Debug)]
pub struct Identity {
    /// Which one.
    pub key: IdentityKey,
    /// Its attested credential (renewed by its own renewal loop).
    pub slot: CredentialSlot,
    x509: Mutex<Option<Arc<X509SvidState>>>,
    wit: Mutex<Option<Arc<WitSvidState>>>,
    last_error: Mutex<Option<String>>,
}

impl Identity {
    /// An identity with nothing issued yet.
    pub fn new(key: IdentityKey, slot: CredentialSlot) -> Self {
        Self {
            key,
            slot,
            x509: Mutex::new(None),
            wit: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    /// The current X.509-SVID, if one is valid at `now`.
    pub fn x509(&self, now: u64) -> Option<Arc<X509SvidState>> {
        self.x509
            .lock()
            .ok()?
            .clone()
            .filter(|s| now < s.expires_at)
    }

    /// The current WIT-SVID, if one is valid at `now`.
    pub fn wit(&self, now: u64) -> Option<Arc<WitSvidState>> {
        self.wit.lock().ok()?.clone().filter(|s| now < s.expires_at)
    }

    /// Why the last issuance failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok()?.clone()
    }

    fn set_error(&self, e: Option<String>) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = e;
        }
    }
}

/// Everything the SPIFFE Workload API serves.
pub struct SpiffeState {
    identities: BTreeMap<IdentityKey, Arc<Identity>>,
    bundle: Mutex<Option<Arc<BundleState>>>,
    epoch: watch::Sender<u64>,
    source: Arc<dyn SvidSource>,
    clock: Clock,
    wit_svid: bool,
    cfg: RunConfig,
}

impl std::fmt::Debug for SpiffeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpiffeState")
            .field("identities", &self.identities.keys().collect::<Vec<_>>())
            .field("wit_svid", &self.wit_svid)
            .finish_non_exhaustive()
    }
}

/// Why a JWT-SVID could not be issued.
#[derive(Debug)]
pub enum JwtSvidError {
    /// The audiences break a rule.
    Audience(String),
    /// No valid credential for the identity yet, or the issuer refused or failed.
    Unavailable(String),
}

impl SpiffeState {
    /// State for `identities` (each with its credential slot), issuing through `source`. `wit_svid` turns the WIT-SVID
    /// profile on; `cfg` gives the renewal fraction and back-off.
    pub fn new(
        identities: impl IntoIterator<Item = (IdentityKey, CredentialSlot)>,
        source: Arc<dyn SvidSource>,
        clock: Clock,
        wit_svid: bool,
        cfg: RunConfig,
    ) -> Self {
        Self {
            identities: identities
                .into_iter()
                .map(|(k, slot)| (k.clone(), Arc::new(Identity::new(k, slot))))
                .collect(),
            bundle: Mutex::new(None),
            epoch: watch::Sender::new(0),
            source,
            clock,
            wit_svid,
            cfg,
        }
    }

    /// The identity record for `key`.
    pub fn identity(&self, key: &IdentityKey) -> Option<&Arc<Identity>> {
        self.identities.get(key)
    }

    /// Every identity.
    pub fn identities(&self) -> impl Iterator<Item = &Arc<Identity>> {
        self.identities.values()
    }

    /// Whether the WIT-SVID profile is on.
    pub fn wit_svid_enabled(&self) -> bool {
        self.wit_svid
    }

    /// Now, Unix seconds.
    pub fn now(&self) -> u64 {
        (self.clock)() as u64
    }

    /// The current bundle.
    pub fn bundle(&self) -> Option<Arc<BundleState>> {
        self.bundle.lock().ok()?.clone()
    }

    /// Bumped on every change of an SVID or the bundle.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    fn bump(&self) {
        self.epoch.send_modify(|e| *e = e.wrapping_add(1));
    }

    fn publish_bundle(&self, of: &WorkloadId, bundle: SpiffeBundle) {
        let next = BundleState {
            trust_domain_id: of.origin().to_string(),
            trust_domain: of.trust_domain(),
            bundle,
        };
        let changed = match self.bundle.lock() {
            Ok(mut g) => {
                let changed = g.as_deref() != Some(&next);
                if changed {
                    *g = Some(Arc::new(next));
                }
                changed
            }
            Err(_) => false,
        };
        if changed {
            self.bump();
        }
    }

    /// Issue a JWT-SVID for `ident` and `audiences`.
    pub async fn issue_jwt(
        &self,
        ident: &Identity,
        audiences: Vec<String>,
    ) -> Result<(String, IssuedJwt), JwtSvidError> {
        let now = self.now();
        let cred = ident.slot.valid_at(now).ok_or_else(|| {
            JwtSvidError::Unavailable(format!(
                "no valid attested credential yet{}",
                ident
                    .slot
                    .stats()
                    .last_error()
                    .map(|(c, m)| format!(" (last attempt: {c}: {m})"))
                    .unwrap_or_default()
            ))
        })?;
        let spiffe_id =
            spiffe_id_of(&cred).map_err(|e| JwtSvidError::Unavailable(e.to_string()))?;
        let req =
            SvidRequest::jwt(cred.wit(), audiences.clone(), now).map_err(JwtSvidError::Audience)?;
        let unavailable = |e: AgentError| JwtSvidError::Unavailable(format!("{}: {e}", e.code()));
        let call = SvidCall::signed(&cred, &req).map_err(unavailable)?;
        let issued = self.source.issue_jwt(call).await.map_err(unavailable)?;
        check::jwt_svid(&issued.token, &spiffe_id, &audiences).map_err(unavailable)?;
        Ok((spiffe_id, issued))
    }

    /// Issue fresh SVIDs for `ident` from `cred`, publish them with the bundle, and return when to renew them and the
    /// bundle's refresh interval.
    async fn refresh(&self, ident: &Identity, cred: &Credential) -> Result<(f64, u64), AgentError> {
        let now = self.now();
        let spiffe_id = spiffe_id_of(cred)?;
        let x509_key = SvidKey::generate()?;
        let req = SvidRequest::for_key(SvidKind::X509, cred.wit(), x509_key.public_jwk(), now)?;
        let x509 = self
            .source
            .issue_x509(SvidCall::signed(cred, &req)?)
            .await?;
        check::x509_svid(&x509.chain, &spiffe_id, &x509_key.public_point())?;
        let mut renew_at = renew_point(now, x509.expires_at, self.cfg.renew_fraction);
        let wit = if self.wit_svid {
            let wit_key = SvidKey::generate()?;
            let req = SvidRequest::for_key(SvidKind::Wit, cred.wit(), wit_key.public_jwk(), now)?;
            let issued = self.source.issue_wit(SvidCall::signed(cred, &req)?).await?;
            check::wit_svid(&issued.wit, &spiffe_id, &wit_key.public_jwk())?;
            renew_at = renew_at.min(renew_point(now, issued.expires_at, self.cfg.renew_fraction));
            Some(WitSvidState {
                spiffe_id: spiffe_id.clone(),
                wit: issued.wit,
                key_jwk: wit_key.private_jwk_json()?,
                expires_at: issued.expires_at,
            })
        } else {
            None
        };
        // The bundle first, so a stream never shows an SVID whose CA its bundle lacks.
        let hint = self.refresh_bundle(&spiffe_id).await?;
        if let Ok(mut g) = ident.x509.lock() {
            *g = Some(Arc::new(X509SvidState {
                spiffe_id: spiffe_id.clone(),
                chain: x509.chain,
                key_pkcs8: x509_key.pkcs8_der(),
                expires_at: x509.expires_at,
            }));
        }
        if let Some(w) = wit {
            if let Ok(mut g) = ident.wit.lock() {
                *g = Some(Arc::new(w));
            }
        }
        tracing::info!(spiffe_id = %spiffe_id, x509_expires_at = x509.expires_at, wit_svid = self.wit_svid, "issued SVIDs");
        self.bump();
        Ok((renew_at, hint))
    }

    async fn refresh_bundle(&self, spiffe_id: &str) -> Result<u64, AgentError> {
        let bundle = self.source.bundle().await?;
        let hint = bundle
            .refresh_hint()
            .unwrap_or(BUNDLE_REFRESH_MAX)
            .clamp(BUNDLE_REFRESH_MIN, BUNDLE_REFRESH_MAX);
        let id = WorkloadId::parse(spiffe_id)
            .map_err(|e| AgentError::Internal(format!("{spiffe_id}: {e}")))?;
        self.publish_bundle(&id, bundle);
        Ok(hint)
    }

    /// Withdraw SVIDs of `ident` that have expired at `now`.
    fn withdraw_expired(&self, ident: &Identity, now: u64) {
        let mut changed = false;
        if let Ok(mut g) = ident.x509.lock() {
            if g.as_ref().is_some_and(|s| now >= s.expires_at) {
                *g = None;
                changed = true;
            }
        }
        if let Ok(mut g) = ident.wit.lock() {
            if g.as_ref().is_some_and(|s| now >= s.expires_at) {
                *g = None;
                changed = true;
            }
        }
        if changed {
            self.bump();
        }
    }
}

/// `now + fraction · (expires_at − now)`.
fn renew_point(now: u64, expires_at: u64, fraction: f64) -> f64 {
    now as f64 + fraction.clamp(0.0, 1.0) * expires_at.saturating_sub(now) as f64
}

/// The SPIFFE ID a credential is for: its WIT's `sub`, which must be a `spiffe://` identifier.
pub fn spiffe_id_of(cred: &Credential) -> Result<String, AgentError> {
    let sub = cred
        .claims()
        .get("sub")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| AgentError::BadResponse("WIT has no sub".into()))?;
    match WorkloadId::parse(sub) {
        Ok(id) if id.is_spiffe() => Ok(sub.to_string()),
        _ => Err(AgentError::Config(format!(
            "the WIT's sub {sub} is not a SPIFFE ID: the SPIFFE Workload API needs a spiffe:// workload"
        ))),
    }
}

/// Keep `ident`'s SVIDs fresh until shutdown (see the module docs).
pub async fn svid_loop(
    state: Arc<SpiffeState>,
    ident: Arc<Identity>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut generation = ident.slot.subscribe();
    let mut served: Option<u64> = None;
    let mut renew_at = f64::INFINITY;
    let mut bundle_at = f64::INFINITY;
    let mut failures: u32 = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let current = *generation.borrow_and_update();
        let now = (state.clock)();
        state.withdraw_expired(&ident, now as u64);
        let wait = match ident.slot.valid_at(now as u64) {
            // Nothing to issue from: wait for the renewal loop's next credential.
            None => Duration::from_secs(BUNDLE_REFRESH_MAX),
            Some(cred) if served != Some(current) || now >= renew_at => {
                match state.refresh(&ident, &cred).await {
                    Ok((at, hint)) => {
                        served = Some(current);
                        failures = 0;
                        renew_at = at;
                        bundle_at = now + hint as f64;
                        ident.set_error(None);
                        Duration::from_secs_f64((renew_at.min(bundle_at) - now).max(0.05))
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let remaining = ident.x509(now as u64).map(|s| s.expires_at as f64 - now);
                        let delay = retry_delay(&state.cfg, failures, remaining, jitter());
                        tracing::warn!(identity = ?ident.key, code = e.code(), error = %e, retry_in_ms = delay.as_millis() as u64, "SVID issuance failed");
                        ident.set_error(Some(format!("{}: {e}", e.code())));
                        delay
                    }
                }
            }
            Some(cred) => {
                if now >= bundle_at {
                    bundle_at = match spiffe_id_of(&cred) {
                        Ok(id) => match state.refresh_bundle(&id).await {
                            Ok(hint) => now + hint as f64,
                            Err(e) => {
                                tracing::warn!(code = e.code(), error = %e, "bundle refresh failed");
                                now + BUNDLE_REFRESH_MIN as f64
                            }
                        },
                        Err(_) => f64::INFINITY,
                    };
                }
                Duration::from_secs_f64((renew_at.min(bundle_at) - now).clamp(0.05, 86_400.0))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            r = generation.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}
