//! The one error type of `locus-wimse`.
//!
//! Every refusal carries a stable snake_case code (`WimseError::code`). Codes are part of the public contract: relying
//! parties log them and answer 400 with an RFC 9457 problem document carrying the code. Add codes; never rename one.
//!
//! | code | meaning |
//! |---|---|
//! | `identifier_invalid` | a Workload Identifier or trust domain broke the strict syntax (the reason says which rule) |
//! | `header_missing` | `Workload-Identity-Token` or `Workload-Proof-Token` absent |
//! | `header_repeated` | a header that must appear once appeared several times |
//! | `token_malformed` | not a compact JWS / JWT: ABNF, base64url, JSON or claim types |
//! | `alg_not_allowed` | `alg` not on the allow-list (`none`, HMAC, unknown, or not configured) |
//! | `alg_mismatch` | WPT `alg` differs from the WIT `cnf.jwk.alg`, or an algorithm does not fit the key type |
//! | `typ_invalid` | `typ` missing or not `wit+jwt` / `wpt+jwt` / `eat+jwt` |
//! | `crit_unsupported` | a JOSE `crit` header parameter (none are understood) |
//! | `trust_domain_unknown` | no trust anchor configured for the WIT subject's trust domain |
//! | `kid_missing` | no `kid` while several keys could sign for the trust domain |
//! | `kid_unknown` | `kid` names no configured key of that trust domain |
//! | `issuer_not_allowed` | `iss` not on the trust domain's issuer allow-list |
//! | `signature_invalid` | the signature does not verify over the received bytes |
//! | `claim_missing` | a required claim (`sub`, `exp`, `cnf`, `aud`, `jti`, `wth`, …) is absent |
//! | `claim_invalid` | a claim has the wrong type or value |
//! | `token_expired` | `exp` passed (beyond the allowed clock skew) |
//! | `token_not_yet_valid` | `nbf` / `iat` in the future (beyond the allowed clock skew) |
//! | `exp_too_far` | WPT (or WIT) `exp` further ahead of now than the configured maximum lifetime (plus clock skew) |
//! | `lifetime_too_long` | WIT `exp` − `iat` above the configured maximum WIT lifetime (default 24 h) |
//! | `cnf_invalid` | WIT `cnf.jwk` missing its `alg`, holding a private key, or with an algorithm unfit for the key |
//! | `key_invalid` | a JWK or key document is malformed or of an unsupported type |
//! | `aud_mismatch` | WPT `aud` is neither the target URI (on a configured authority) nor a configured alias |
//! | `wth_mismatch` | WPT `wth` is not the hash of the WIT presented |
//! | `ath_missing` / `ath_mismatch` | access token present without `ath`, or not matching (or `ath` without a token) |
//! | `tth_missing` / `tth_mismatch` | the same for `Txn-Token` |
//! | `oth_missing` / `oth_mismatch` / `oth_unknown` | a configured context token not covered, a listed token that does not match or is absent, an `oth` entry naming a header the relying party does not know |
//! | `replayed` | the WPT `jti` was already seen from this sender |
//! | `overloaded` | the replay cache is full of unexpired entries (fail closed) |
//! | `replay_quota_exceeded` | this sender (WIT `sub`) already holds its quota of live replay-cache entries |
//! | `jti_too_long` | WPT `jti` longer than the replay cache accepts (default 128 bytes) |
//! | `jwks_unavailable` | no usable key set: never fetched, or the last good one is older than the stale limit |
//! | `ear_invalid` | an EAR claims-set breaks draft-ietf-rats-ear-03 |
//! | `request_invalid` | caller misuse (e.g. a reserved claim passed as an extra claim, a signing key without `kid`) |
//! | `signature_params_invalid` | HTTP message signature: `Signature-Input` / `Signature` syntax, a missing or forbidden parameter (`alg`, `keyid`), a wrong `tag`, an unsupported component |
//! | `component_missing` | HTTP message signature: a component the draft requires is not covered, or a covered header is absent |
//! | `signature_stale` | HTTP message signature: `created` in the future or older than the maximum age, or `expires` passed |
//! | `content_digest_mismatch` | HTTP message signature: the body does not match `Content-Digest` (or no supported digest) |
//! | `internal` | our own failure (random generator, signing) |

use crate::id::IdReason;

/// Every failure of this crate. `#[non_exhaustive]`: match on [`WimseError::code`] for stable handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WimseError {
    /// A Workload Identifier or trust domain is not in canonical, strict form.
    #[error("workload identifier invalid: {reason}")]
    IdentifierInvalid {
        /// Which rule was broken.
        reason: IdReason,
    },
    /// A required HTTP header is absent.
    #[error("header {name} missing")]
    HeaderMissing {
        /// Header name.
        name: &'static str,
    },
    /// A header that must appear at most once appeared several times.
    #[error("header {name} repeated")]
    HeaderRepeated {
        /// Header name (lower case).
        name: String,
    },
    /// Not a well-formed compact JWS/JWT.
    #[error("token malformed: {detail}")]
    TokenMalformed {
        /// What was wrong.
        detail: String,
    },
    /// `alg` is not on the allow-list.
    #[error("alg {alg:?} not allowed")]
    AlgNotAllowed {
        /// The received `alg`.
        alg: String,
    },
    /// `alg` differs from the one required (WIT `cnf.jwk.alg`, or the key type).
    #[error("alg mismatch: expected {expected}, got {got}")]
    AlgMismatch {
        /// Required algorithm.
        expected: String,
        /// Received algorithm.
        got: String,
    },
    /// `typ` missing or wrong.
    #[error("typ invalid: expected {expected}, got {got:?}")]
    TypInvalid {
        /// Required type.
        expected: &'static str,
        /// Received `typ`, if any.
        got: Option<String>,
    },
    /// A `crit` header parameter is present; no extension is understood.
    #[error("crit header parameter not supported")]
    CritUnsupported,
    /// No trust anchor for this trust domain.
    #[error("trust domain {trust_domain} unknown")]
    TrustDomainUnknown {
        /// The subject's trust domain.
        trust_domain: String,
    },
    /// No `kid` while key selection would be ambiguous.
    #[error("kid missing and the trust domain has several keys")]
    KidMissing,
    /// `kid` names no configured key.
    #[error("kid {kid:?} unknown")]
    KidUnknown {
        /// The received `kid`.
        kid: String,
    },
    /// `iss` not allowed for the trust domain.
    #[error("issuer {iss:?} not allowed for this trust domain")]
    IssuerNotAllowed {
        /// Received `iss` (None when absent but required).
        iss: Option<String>,
    },
    /// Signature does not verify.
    #[error("signature invalid")]
    SignatureInvalid,
    /// A required claim is absent.
    #[error("claim {claim} missing")]
    ClaimMissing {
        /// Claim name.
        claim: &'static str,
    },
    /// A claim has a wrong type or value.
    #[error("claim {claim} invalid: {detail}")]
    ClaimInvalid {
        /// Claim name.
        claim: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// `exp` passed.
    #[error("token expired at {exp} (now {now})")]
    TokenExpired {
        /// The token's `exp`.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// `nbf` or `iat` in the future.
    #[error("token not yet valid ({claim} {value}, now {now})")]
    TokenNotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// Its value.
        value: u64,
        /// The time of the check.
        now: u64,
    },
    /// WPT `exp` unreasonably far ahead.
    #[error("exp {exp} more than {max_lifetime} s after now {now}")]
    ExpTooFar {
        /// The token's `exp`.
        exp: u64,
        /// The time of the check.
        now: u64,
        /// Configured maximum.
        max_lifetime: u64,
    },
    /// WIT `cnf.jwk` unusable.
    #[error("cnf invalid: {detail}")]
    CnfInvalid {
        /// What was wrong.
        detail: String,
    },
    /// A JWK or key document is malformed or unsupported.
    #[error("key invalid: {detail}")]
    KeyInvalid {
        /// What was wrong.
        detail: String,
    },
    /// WPT `aud` does not match.
    #[error("aud {aud:?} does not match the target or a configured audience")]
    AudMismatch {
        /// Received `aud` value(s).
        aud: String,
    },
    /// WPT `wth` is not the hash of the presented WIT.
    #[error("wth does not match the presented WIT")]
    WthMismatch,
    /// Access token in the request but no `ath`.
    #[error("access token present but ath missing")]
    AthMissing,
    /// `ath` does not match the access token (or no token is present).
    #[error("ath does not match the access token")]
    AthMismatch,
    /// Txn-Token in the request but no `tth`.
    #[error("Txn-Token present but tth missing")]
    TthMissing,
    /// `tth` does not match the Txn-Token (or none is present).
    #[error("tth does not match the Txn-Token")]
    TthMismatch,
    /// A configured context-token header is present but not covered by `oth`.
    #[error("context token {header} present but not covered by oth")]
    OthMissing {
        /// Header name.
        header: String,
    },
    /// An `oth` entry does not match its header (or the header is absent).
    #[error("oth entry {header} does not match")]
    OthMismatch {
        /// Header name.
        header: String,
    },
    /// An `oth` entry names a header that is not a configured context token.
    #[error("oth entry {header} unknown")]
    OthUnknown {
        /// Header name.
        header: String,
    },
    /// The WPT `jti` was already used.
    #[error("jti replayed")]
    Replayed,
    /// The replay cache is full of unexpired entries.
    #[error("replay cache full")]
    Overloaded,
    /// This sender holds its quota of live replay-cache entries; other senders are unaffected.
    #[error("replay quota of {quota} live proofs exceeded for this sender")]
    ReplayQuotaExceeded {
        /// The per-sender quota.
        quota: usize,
    },
    /// The WPT `jti` is longer than the replay cache stores.
    #[error("jti of {len} bytes is longer than {max}")]
    JtiTooLong {
        /// Its length in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// WIT `exp` − `iat` above the configured maximum.
    #[error("WIT lifetime {lifetime} s above the maximum {max_lifetime} s")]
    LifetimeTooLong {
        /// `exp` − `iat`.
        lifetime: u64,
        /// Configured maximum.
        max_lifetime: u64,
    },
    /// No usable JWKS.
    #[error("JWKS unavailable: {detail}")]
    JwksUnavailable {
        /// Why.
        detail: String,
    },
    /// An EAR breaks draft-ietf-rats-ear-03.
    #[error("EAR invalid: {detail}")]
    EarInvalid {
        /// What was wrong.
        detail: String,
    },
    /// HTTP message signature: malformed `Signature-Input` / `Signature`, a missing or forbidden parameter, a wrong
    /// `tag`, or an unsupported component.
    #[error("HTTP signature parameters invalid: {detail}")]
    SignatureParamsInvalid {
        /// What is wrong.
        detail: String,
    },
    /// HTTP message signature: a component the profile requires is not covered, or a covered field is absent.
    #[error("HTTP signature component {name:?} missing: {detail}")]
    ComponentMissing {
        /// The component.
        name: String,
        /// Not covered, or absent from the message.
        detail: &'static str,
    },
    /// HTTP message signature: `created` in the future or too old, or `expires` passed.
    #[error("HTTP signature stale: {detail}")]
    SignatureStale {
        /// Which time check failed, with the values.
        detail: String,
    },
    /// HTTP message signature: the body does not match `Content-Digest`.
    #[error("content digest mismatch: {detail}")]
    ContentDigestMismatch {
        /// Which digest.
        detail: String,
    },
    /// Caller misuse.
    #[error("request invalid: {detail}")]
    RequestInvalid {
        /// What was wrong.
        detail: String,
    },
    /// Our own failure (RNG, signing).
    #[error("internal error: {detail}")]
    Internal {
        /// What failed.
        detail: &'static str,
    },
}

impl WimseError {
    /// The stable snake_case code of this error (see the module documentation for the table).
    pub fn code(&self) -> &'static str {
        match self {
            Self::IdentifierInvalid { .. } => "identifier_invalid",
            Self::HeaderMissing { .. } => "header_missing",
            Self::HeaderRepeated { .. } => "header_repeated",
            Self::TokenMalformed { .. } => "token_malformed",
            Self::AlgNotAllowed { .. } => "alg_not_allowed",
            Self::AlgMismatch { .. } => "alg_mismatch",
            Self::TypInvalid { .. } => "typ_invalid",
            Self::CritUnsupported => "crit_unsupported",
            Self::TrustDomainUnknown { .. } => "trust_domain_unknown",
            Self::KidMissing => "kid_missing",
            Self::KidUnknown { .. } => "kid_unknown",
            Self::IssuerNotAllowed { .. } => "issuer_not_allowed",
            Self::SignatureInvalid => "signature_invalid",
            Self::ClaimMissing { .. } => "claim_missing",
            Self::ClaimInvalid { .. } => "claim_invalid",
            Self::TokenExpired { .. } => "token_expired",
            Self::TokenNotYetValid { .. } => "token_not_yet_valid",
            Self::ExpTooFar { .. } => "exp_too_far",
            Self::CnfInvalid { .. } => "cnf_invalid",
            Self::KeyInvalid { .. } => "key_invalid",
            Self::AudMismatch { .. } => "aud_mismatch",
            Self::WthMismatch => "wth_mismatch",
            Self::AthMissing => "ath_missing",
            Self::AthMismatch => "ath_mismatch",
            Self::TthMissing => "tth_missing",
            Self::TthMismatch => "tth_mismatch",
            Self::OthMissing { .. } => "oth_missing",
            Self::OthMismatch { .. } => "oth_mismatch",
            Self::OthUnknown { .. } => "oth_unknown",
            Self::Replayed => "replayed",
            Self::Overloaded => "overloaded",
            Self::ReplayQuotaExceeded { .. } => "replay_quota_exceeded",
            Self::JtiTooLong { .. } => "jti_too_long",
            Self::LifetimeTooLong { .. } => "lifetime_too_long",
            Self::JwksUnavailable { .. } => "jwks_unavailable",
            Self::EarInvalid { .. } => "ear_invalid",
            Self::RequestInvalid { .. } => "request_invalid",
            Self::Internal { .. } => "internal",
            Self::SignatureParamsInvalid { .. } => "signature_params_invalid",
            Self::ComponentMissing { .. } => "component_missing",
            Self::SignatureStale { .. } => "signature_stale",
            Self::ContentDigestMismatch { .. } => "content_digest_mismatch",
        }
    }

    /// True when the failure is the caller's or ours rather than the presented input's.
    pub fn is_local(&self) -> bool {
        matches!(self, Self::RequestInvalid { .. } | Self::Internal { .. })
    }

    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        Self::TokenMalformed {
            detail: detail.into(),
        }
    }

    pub(crate) fn key(detail: impl Into<String>) -> Self {
        Self::KeyInvalid {
            detail: detail.into(),
        }
    }

    pub(crate) fn claim(claim: &'static str, detail: impl Into<String>) -> Self {
        Self::ClaimInvalid {
            claim,
            detail: detail.into(),
        }
    }
}

/// Every code [`WimseError::code`] can return, for documentation tests and for consumers building code tables.
pub const ALL_CODES: &[&str] = &[
    "identifier_invalid",
    "header_missing",
    "header_repeated",
    "token_malformed",
    "alg_not_allowed",
    "alg_mismatch",
    "typ_invalid",
    "crit_unsupported",
    "trust_domain_unknown",
    "kid_missing",
    "kid_unknown",
    "issuer_not_allowed",
    "signature_invalid",
    "claim_missing",
    "claim_invalid",
    "token_expired",
    "token_not_yet_valid",
    "exp_too_far",
    "cnf_invalid",
    "key_invalid",
    "aud_mismatch",
    "wth_mismatch",
    "ath_missing",
    "ath_mismatch",
    "tth_missing",
    "tth_mismatch",
    "oth_missing",
    "oth_mismatch",
    "oth_unknown",
    "replayed",
    "overloaded",
    "ear_invalid",
    "request_invalid",
    "internal",
    "replay_quota_exceeded",
    "jti_too_long",
    "lifetime_too_long",
    "jwks_unavailable",
    "signature_params_invalid",
    "component_missing",
    "signature_stale",
    "content_digest_mismatch",
];
