//! EAT Attestation Results (draft-ietf-rats-ear-03) with AR4SI trustworthiness vectors (draft-ietf-rats-ar4si-06).
//!
//! One [`Ear`] is encoded either as a JWT (JSON claim names, media type `application/eat+jwt`) or as a CWT
//! (COSE_Sign1 over a CBOR map with the integer keys of draft-ietf-rats-ear-03, media type `application/eat+cwt`). Both are signed
//! with the verifier's key (ES256) and verified over the received bytes; decoding validates the draft's MUSTs
//! (profile, integer `iat`, verifier id, ≥ 1 submod, status no better than the worst vector claim, nonce length) and
//! ignores unknown claims.

use std::collections::BTreeMap;

use ciborium::value::{Integer, Value as Cbor};
use coset::{
    iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable,
};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::b64;
use crate::error::WimseError;
use crate::jwk::{Alg, Jwk, Jwks};
use crate::jws::{sign_compact, typ_matches, CompactJws, JwsSigner, OutHeader};

/// The EAR profile of draft -03.
pub const EAR_PROFILE: &str = "tag:ietf.org,2026:rats/ear#03";
/// JWT `typ` of an EAR.
pub const EAR_JWT_TYP: &str = "eat+jwt";
/// Media type of an EAR JWT (RFC 9782; the draft's `eat-jwt` is unregistered and never emitted).
pub const EAR_JWT_MEDIA_TYPE: &str =
    "application/eat+jwt; eat_profile=\"tag:ietf.org,2026:rats/ear#03\"";
/// Media type of an EAR CWT.
pub const EAR_CWT_MEDIA_TYPE: &str =
    "application/eat+cwt; eat_profile=\"tag:ietf.org,2026:rats/ear#03\"";

// CBOR keys (draft-ietf-rats-ear-03, RFC 9711, RFC 8392).
const K_EXP: i64 = 4;
const K_IAT: i64 = 6;
const K_NONCE: i64 = 10;
const K_PROFILE: i64 = 265;
const K_SUBMODS: i64 = 266;
const K_STATUS: i64 = 1000;
const K_VECTOR: i64 = 1001;
const K_RAW_EVIDENCE: i64 = 1002;
const K_POLICY_IDS: i64 = 1003;
const K_VERIFIER_ID: i64 = 1004;

fn bad(detail: impl Into<String>) -> WimseError {
    WimseError::EarInvalid {
        detail: detail.into(),
    }
}

/// AR4SI trust tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrustTier {
    /// `none` (0): no claim / verifier malfunction.
    None,
    /// `affirming` (2).
    Affirming,
    /// `warning` (32).
    Warning,
    /// `contraindicated` (96).
    Contraindicated,
}

impl TrustTier {
    /// JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Affirming => "affirming",
            Self::Warning => "warning",
            Self::Contraindicated => "contraindicated",
        }
    }

    /// CBOR value.
    pub fn as_int(self) -> i64 {
        match self {
            Self::None => 0,
            Self::Affirming => 2,
            Self::Warning => 32,
            Self::Contraindicated => 96,
        }
    }

    fn from_name(s: &str) -> Result<Self, WimseError> {
        Ok(match s {
            "none" => Self::None,
            "affirming" => Self::Affirming,
            "warning" => Self::Warning,
            "contraindicated" => Self::Contraindicated,
            _ => return Err(bad(format!("unknown ear_status {s:?}"))),
        })
    }

    fn from_int(v: i64) -> Result<Self, WimseError> {
        Ok(match v {
            0 => Self::None,
            2 => Self::Affirming,
            32 => Self::Warning,
            96 => Self::Contraindicated,
            _ => return Err(bad(format!("unknown ear_status {v}"))),
        })
    }

    /// The tier of one trustworthiness claim value (AR4SI §3.2: −1/0/1 none; 2..31 and −2..−32 affirming; 32..95
    /// and −33..−96 warning; 96..127 and −97..−128 contraindicated).
    pub fn of_claim(v: i8) -> Self {
        match v {
            -1..=1 => Self::None,
            2..=31 | -32..=-2 => Self::Affirming,
            32..=95 | -96..=-33 => Self::Warning,
            _ => Self::Contraindicated,
        }
    }

    /// Badness rank: affirming 0 < none 1 < warning 2 < contraindicated 3.
    fn rank(self) -> u8 {
        match self {
            Self::Affirming => 0,
            Self::None => 1,
            Self::Warning => 2,
            Self::Contraindicated => 3,
        }
    }

    /// The worse of two tiers.
    pub fn worst(self, other: Self) -> Self {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// AR4SI trustworthiness vector: one optional signed claim value per component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrustVector {
    /// `instance-identity` (0).
    pub instance_identity: Option<i8>,
    /// `configuration` (1).
    pub configuration: Option<i8>,
    /// `executables` (2).
    pub executables: Option<i8>,
    /// `file-system` (3).
    pub file_system: Option<i8>,
    /// `hardware` (4).
    pub hardware: Option<i8>,
    /// `runtime-opaque` (5).
    pub runtime_opaque: Option<i8>,
    /// `storage-opaque` (6).
    pub storage_opaque: Option<i8>,
    /// `sourced-data` (7).
    pub sourced_data: Option<i8>,
}

const VECTOR_NAMES: [&str; 8] = [
    "instance-identity",
    "configuration",
    "executables",
    "file-system",
    "hardware",
    "runtime-opaque",
    "storage-opaque",
    "sourced-data",
];

impl TrustVector {
    fn slots(&self) -> [Option<i8>; 8] {
        [
            self.instance_identity,
            self.configuration,
            self.executables,
            self.file_system,
            self.hardware,
            self.runtime_opaque,
            self.storage_opaque,
            self.sourced_data,
        ]
    }

    fn slot_mut(&mut self, i: usize) -> Option<&mut Option<i8>> {
        Some(match i {
            0 => &mut self.instance_identity,
            1 => &mut self.configuration,
            2 => &mut self.executables,
            3 => &mut self.file_system,
            4 => &mut self.hardware,
            5 => &mut self.runtime_opaque,
            6 => &mut self.storage_opaque,
            7 => &mut self.sourced_data,
            _ => return None,
        })
    }

    /// The worst tier among the claims made (value 0, "no claim", is skipped); `None` when no claim is made.
    pub fn worst_tier(&self) -> Option<TrustTier> {
        self.slots()
            .into_iter()
            .flatten()
            .filter(|v| *v != 0)
            .map(TrustTier::of_claim)
            .reduce(TrustTier::worst)
    }

    fn to_cbor(self) -> Cbor {
        Cbor::Map(
            self.slots()
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (Cbor::from(i as i64), Cbor::from(i64::from(v)))))
                .collect(),
        )
    }

    fn from_json(v: &Json) -> Result<Self, WimseError> {
        let obj = v
            .as_object()
            .ok_or_else(|| bad("trustworthiness vector not an object"))?;
        let mut out = Self::default();
        for (k, v) in obj {
            let Some(i) = VECTOR_NAMES.iter().position(|n| n == k) else {
                continue; // unknown claims are ignored
            };
            let val = v
                .as_i64()
                .and_then(|x| i8::try_from(x).ok())
                .ok_or_else(|| bad(format!("vector claim {k} not an int8")))?;
            if let Some(slot) = out.slot_mut(i) {
                *slot = Some(val);
            }
        }
        Ok(out)
    }

    fn from_cbor(v: &Cbor) -> Result<Self, WimseError> {
        let mut out = Self::default();
        for (k, v) in cbor_int_map(v, "trustworthiness vector")? {
            let Some(slot) = usize::try_from(k).ok().and_then(|i| out.slot_mut(i)) else {
                continue;
            };
            let val = cbor_i64(v)
                .and_then(|x| i8::try_from(x).ok())
                .ok_or_else(|| bad(format!("vector claim {k} not an int8")))?;
            *slot = Some(val);
        }
        Ok(out)
    }
}

/// `ear_verifier_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierId {
    /// `developer` (0).
    pub developer: String,
    /// `build` (1).
    pub build: String,
}

/// One submodule's appraisal (Locus: one per TEE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarAppraisal {
    /// `ear_status`.
    pub status: TrustTier,
    /// `ear_trustworthiness_vector`.
    pub trust_vector: Option<TrustVector>,
    /// `ear_appraisal_policy_ids`, in application order (empty: omitted).
    pub policy_ids: Vec<String>,
    /// `eat_nonce` found in the evidence.
    pub nonce: Option<Vec<u8>>,
    /// `eat_profile` of the appraisal, if any.
    pub profile: Option<String>,
}

/// An attestation result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ear {
    /// `eat_profile` (always [`EAR_PROFILE`] after decoding).
    pub profile: String,
    /// `iat`.
    pub iat: u64,
    /// `exp`.
    pub exp: Option<u64>,
    /// `ear_verifier_id`.
    pub verifier_id: VerifierId,
    /// Overall `ear_status`.
    pub status: Option<TrustTier>,
    /// `ear_raw_evidence`.
    pub raw_evidence: Option<Vec<u8>>,
    /// `eat_nonce`: the relying party's nonce echoed.
    pub nonce: Option<Vec<u8>>,
    /// `submods`, ≥ 1.
    pub submods: BTreeMap<String, EarAppraisal>,
}

impl Ear {
    /// Check the draft's rules on a value (used before signing and after decoding).
    pub fn validate(&self) -> Result<(), WimseError> {
        if self.profile != EAR_PROFILE {
            return Err(bad(format!(
                "eat_profile {:?} is not {EAR_PROFILE}",
                self.profile
            )));
        }
        if self.submods.is_empty() {
            return Err(bad("submods empty"));
        }
        check_nonce(self.nonce.as_deref())?;
        let mut worst_submod: Option<TrustTier> = None;
        for (name, a) in &self.submods {
            check_nonce(a.nonce.as_deref())?;
            if let Some(w) = a.trust_vector.as_ref().and_then(TrustVector::worst_tier) {
                if a.status.rank() < w.rank() {
                    return Err(bad(format!(
                        "submod {name:?}: status better than its trustworthiness vector"
                    )));
                }
            }
            worst_submod = Some(worst_submod.map_or(a.status, |t| t.worst(a.status)));
        }
        if let (Some(s), Some(w)) = (self.status, worst_submod) {
            if s.rank() < w.rank() {
                return Err(bad("overall ear_status better than the worst submod"));
            }
        }
        Ok(())
    }

    /// The JSON claims-set.
    pub fn to_json(&self) -> Json {
        // `JsonClaims` writes only string keys and JSON scalars, which `to_value` cannot refuse.
        serde_json::to_value(JsonClaims(self)).unwrap_or(Json::Null)
    }

    /// Decode and validate a JSON claims-set.
    pub fn from_json(v: &Json) -> Result<Self, WimseError> {
        let m = v
            .as_object()
            .ok_or_else(|| bad("claims-set not an object"))?;
        let profile = json_str(m, "eat_profile")?.ok_or_else(|| bad("eat_profile missing"))?;
        let iat = json_uint(m, "iat")?.ok_or_else(|| bad("iat missing"))?;
        let exp = json_uint(m, "exp")?;
        let vid = m
            .get("ear_verifier_id")
            .and_then(Json::as_object)
            .ok_or_else(|| bad("ear_verifier_id missing"))?;
        let verifier_id = VerifierId {
            developer: json_str(vid, "developer")?
                .ok_or_else(|| bad("verifier developer missing"))?,
            build: json_str(vid, "build")?.ok_or_else(|| bad("verifier build missing"))?,
        };
        let status = json_str(m, "ear_status")?
            .map(|s| TrustTier::from_name(&s))
            .transpose()?;
        let raw_evidence = json_b64(m, "ear_raw_evidence")?;
        let nonce = json_b64(m, "eat_nonce")?;
        let subs = m
            .get("submods")
            .and_then(Json::as_object)
            .ok_or_else(|| bad("submods missing"))?;
        let mut submods = BTreeMap::new();
        for (name, s) in subs {
            let s = s
                .as_object()
                .ok_or_else(|| bad(format!("submod {name:?} not an object")))?;
            let status = TrustTier::from_name(
                &json_str(s, "ear_status")?.ok_or_else(|| bad("submod ear_status missing"))?,
            )?;
            let trust_vector = s
                .get("ear_trustworthiness_vector")
                .map(TrustVector::from_json)
                .transpose()?;
            let policy_ids = match s.get("ear_appraisal_policy_ids") {
                None => Vec::new(),
                Some(Json::Array(a)) if !a.is_empty() => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad("policy id not a string"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(bad("ear_appraisal_policy_ids not a non-empty array")),
            };
            submods.insert(
                name.clone(),
                EarAppraisal {
                    status,
                    trust_vector,
                    policy_ids,
                    nonce: json_b64(s, "eat_nonce")?,
                    profile: json_str(s, "eat_profile")?,
                },
            );
        }
        let ear = Self {
            profile,
            iat,
            exp,
            verifier_id,
            status,
            raw_evidence,
            nonce,
            submods,
        };
        ear.validate()?;
        Ok(ear)
    }

    /// The CBOR claims-set (integer keys).
    pub fn to_cbor(&self) -> Cbor {
        let mut m: Vec<(Cbor, Cbor)> = vec![
            (K_PROFILE.into(), self.profile.clone().into()),
            (K_IAT.into(), self.iat.into()),
        ];
        if let Some(exp) = self.exp {
            m.push((K_EXP.into(), exp.into()));
        }
        m.push((
            K_VERIFIER_ID.into(),
            Cbor::Map(vec![
                (0.into(), self.verifier_id.developer.clone().into()),
                (1.into(), self.verifier_id.build.clone().into()),
            ]),
        ));
        if let Some(s) = self.status {
            m.push((K_STATUS.into(), s.as_int().into()));
        }
        if let Some(r) = &self.raw_evidence {
            m.push((K_RAW_EVIDENCE.into(), Cbor::Bytes(r.clone())));
        }
        if let Some(n) = &self.nonce {
            m.push((K_NONCE.into(), Cbor::Bytes(n.clone())));
        }
        let subs = self
            .submods
            .iter()
            .map(|(name, a)| {
                let mut s: Vec<(Cbor, Cbor)> = Vec::new();
                if let Some(p) = &a.profile {
                    s.push((K_PROFILE.into(), p.clone().into()));
                }
                s.push((K_STATUS.into(), a.status.as_int().into()));
                if let Some(v) = a.trust_vector {
                    s.push((K_VECTOR.into(), v.to_cbor()));
                }
                if !a.policy_ids.is_empty() {
                    s.push((
                        K_POLICY_IDS.into(),
                        Cbor::Array(a.policy_ids.iter().map(|p| p.clone().into()).collect()),
                    ));
                }
                if let Some(n) = &a.nonce {
                    s.push((K_NONCE.into(), Cbor::Bytes(n.clone())));
                }
                (Cbor::Text(name.clone()), Cbor::Map(s))
            })
            .collect();
        m.push((K_SUBMODS.into(), Cbor::Map(subs)));
        Cbor::Map(m)
    }

    /// Decode and validate a CBOR claims-set.
    pub fn from_cbor(v: &Cbor) -> Result<Self, WimseError> {
        let m = cbor_int_map(v, "claims-set")?;
        let get = |k: i64| m.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let profile = get(K_PROFILE)
            .and_then(Cbor::as_text)
            .ok_or_else(|| bad("eat_profile missing"))?
            .to_owned();
        let iat = get(K_IAT)
            .map(cbor_uint)
            .transpose()?
            .ok_or_else(|| bad("iat missing"))?;
        let exp = get(K_EXP).map(cbor_uint).transpose()?;
        let vid = cbor_int_map(
            get(K_VERIFIER_ID).ok_or_else(|| bad("ear_verifier_id missing"))?,
            "verifier id",
        )?;
        let vget = |k: i64| {
            vid.iter()
                .find(|(key, _)| *key == k)
                .and_then(|(_, v)| v.as_text())
                .map(str::to_owned)
        };
        let verifier_id = VerifierId {
            developer: vget(0).ok_or_else(|| bad("verifier developer missing"))?,
            build: vget(1).ok_or_else(|| bad("verifier build missing"))?,
        };
        let status = get(K_STATUS).map(cbor_tier).transpose()?;
        let raw_evidence = get(K_RAW_EVIDENCE).map(cbor_bytes).transpose()?;
        let nonce = get(K_NONCE).map(cbor_bytes).transpose()?;
        let subs = get(K_SUBMODS)
            .and_then(Cbor::as_map)
            .ok_or_else(|| bad("submods missing"))?;
        let mut submods = BTreeMap::new();
        for (name, s) in subs {
            let name = name.as_text().ok_or_else(|| bad("submod name not text"))?;
            let sm = cbor_int_map(s, "submod")?;
            let sget = |k: i64| sm.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
            let policy_ids = match sget(K_POLICY_IDS) {
                None => Vec::new(),
                Some(Cbor::Array(a)) if !a.is_empty() => a
                    .iter()
                    .map(|x| {
                        x.as_text()
                            .map(str::to_owned)
                            .ok_or_else(|| bad("policy id not text"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(bad("ear_appraisal_policy_ids not a non-empty array")),
            };
            let appraisal = EarAppraisal {
                status: cbor_tier(sget(K_STATUS).ok_or_else(|| bad("submod ear_status missing"))?)?,
                trust_vector: sget(K_VECTOR).map(TrustVector::from_cbor).transpose()?,
                policy_ids,
                nonce: sget(K_NONCE).map(cbor_bytes).transpose()?,
                profile: sget(K_PROFILE)
                    .map(|p| {
                        p.as_text()
                            .map(str::to_owned)
                            .ok_or_else(|| bad("profile not text"))
                    })
                    .transpose()?,
            };
            if submods.insert(name.to_owned(), appraisal).is_some() {
                return Err(bad(format!("duplicate submod {name:?}")));
            }
        }
        let ear = Self {
            profile,
            iat,
            exp,
            verifier_id,
            status,
            raw_evidence,
            nonce,
            submods,
        };
        ear.validate()?;
        Ok(ear)
    }

    /// Sign as a JWT: header `{"alg","kid"?,"typ":"eat+jwt"}`.
    pub fn sign_jwt(&self, signer: &dyn JwsSigner) -> Result<String, WimseError> {
        self.validate()?;
        let header = OutHeader {
            alg: signer.alg().name(),
            kid: signer.kid(),
            typ: EAR_JWT_TYP,
        };
        sign_compact(signer, &header, &JsonClaims(self))
    }

    /// Verify a JWT EAR with the verifier keys `keys` at `now`.
    pub fn verify_jwt(token: &str, keys: &Jwks, now: u64) -> Result<Self, WimseError> {
        let jws = CompactJws::parse(token)?;
        typ_matches(jws.header.typ.as_deref(), EAR_JWT_TYP)?;
        let alg = jws.alg_allowed(Alg::ALL)?;
        let key = pick_key(keys, jws.header.kid.as_deref(), alg)?;
        jws.verify_with(alg, &key.key)?;
        let ear = Self::from_json(&Json::Object(jws.claims()?))?;
        ear.check_time(now)?;
        Ok(ear)
    }

    /// Sign as a CWT: COSE_Sign1 (tag 18), protected header `alg` and `kid`, payload the CBOR claims-set.
    pub fn sign_cwt(&self, signer: &dyn JwsSigner) -> Result<Vec<u8>, WimseError> {
        self.validate()?;
        let mut payload = Vec::new();
        ciborium::into_writer(&self.to_cbor(), &mut payload).map_err(|_| WimseError::Internal {
            detail: "CBOR encoding",
        })?;
        let mut protected = HeaderBuilder::new().algorithm(cose_alg(signer.alg()));
        if let Some(kid) = signer.kid() {
            protected = protected.key_id(kid.as_bytes().to_vec());
        }
        let sign1 = CoseSign1Builder::new()
            .protected(protected.build())
            .payload(payload)
            .try_create_signature(&[], |tbs| signer.sign(tbs))?
            .build();
        sign1.to_tagged_vec().map_err(|_| WimseError::Internal {
            detail: "COSE encoding",
        })
    }

    /// Verify a CWT EAR (COSE_Sign1, tagged or not) with the verifier keys `keys` at `now`.
    pub fn verify_cwt(bytes: &[u8], keys: &Jwks, now: u64) -> Result<Self, WimseError> {
        let sign1 = if bytes.first() == Some(&0xd2) {
            CoseSign1::from_tagged_slice(bytes)
        } else {
            CoseSign1::from_slice(bytes)
        }
        .map_err(|e| WimseError::malformed(format!("COSE_Sign1: {e}")))?;
        let h = &sign1.protected.header;
        if !h.crit.is_empty() {
            return Err(WimseError::CritUnsupported);
        }
        let alg = match &h.alg {
            Some(coset::Algorithm::Assigned(a)) => alg_of_cose(*a)?,
            Some(other) => {
                return Err(WimseError::AlgNotAllowed {
                    alg: format!("{other:?}"),
                })
            }
            None => return Err(WimseError::malformed("protected alg missing")),
        };
        let kid_bytes = if h.key_id.is_empty() {
            &sign1.unprotected.key_id
        } else {
            &h.key_id
        };
        let kid = if kid_bytes.is_empty() {
            None
        } else {
            Some(
                std::str::from_utf8(kid_bytes)
                    .map_err(|_| WimseError::malformed("kid not UTF-8"))?,
            )
        };
        let key = pick_key(keys, kid, alg)?;
        sign1.verify_signature(&[], |sig, data| key.key.verify(alg, data, sig))?;
        let payload = sign1
            .payload
            .as_deref()
            .ok_or_else(|| WimseError::malformed("detached payload"))?;
        let mut rd = payload;
        let claims: Cbor = ciborium::from_reader(&mut rd)
            .map_err(|e| WimseError::malformed(format!("CBOR claims: {e}")))?;
        if !rd.is_empty() {
            return Err(WimseError::malformed(
                "trailing bytes after the CBOR claims-set",
            ));
        }
        let ear = Self::from_cbor(&claims)?;
        ear.check_time(now)?;
        Ok(ear)
    }

    fn check_time(&self, now: u64) -> Result<(), WimseError> {
        if let Some(exp) = self.exp {
            if now >= exp {
                return Err(WimseError::TokenExpired { exp, now });
            }
        }
        Ok(())
    }
}

fn pick_key<'k>(keys: &'k Jwks, kid: Option<&str>, alg: Alg) -> Result<&'k Jwk, WimseError> {
    let key = match kid {
        Some(k) => keys
            .find(k)
            .ok_or_else(|| WimseError::KidUnknown { kid: k.to_owned() })?,
        None => match keys.keys.as_slice() {
            [only] => only,
            _ => return Err(WimseError::KidMissing),
        },
    };
    if let Some(a) = &key.alg {
        if a != alg.name() {
            return Err(WimseError::AlgMismatch {
                expected: a.clone(),
                got: alg.name().to_owned(),
            });
        }
    }
    Ok(key)
}

fn cose_alg(alg: Alg) -> iana::Algorithm {
    match alg {
        Alg::Es256 => iana::Algorithm::ES256,
        Alg::Es384 => iana::Algorithm::ES384,
        Alg::EdDsa => iana::Algorithm::EdDSA,
        Alg::Rs256 => iana::Algorithm::RS256,
        Alg::Ps256 => iana::Algorithm::PS256,
    }
}

fn alg_of_cose(a: iana::Algorithm) -> Result<Alg, WimseError> {
    Alg::ALL
        .iter()
        .copied()
        .find(|x| cose_alg(*x) == a)
        .ok_or_else(|| WimseError::AlgNotAllowed {
            alg: format!("{a:?}"),
        })
}

fn check_nonce(n: Option<&[u8]>) -> Result<(), WimseError> {
    match n {
        Some(n) if !(8..=64).contains(&n.len()) => Err(bad(format!(
            "eat_nonce of {} bytes, expected 8..64",
            n.len()
        ))),
        _ => Ok(()),
    }
}

fn json_str(m: &Map<String, Json>, k: &str) -> Result<Option<String>, WimseError> {
    match m.get(k) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{k} not a string"))),
    }
}

fn json_uint(m: &Map<String, Json>, k: &str) -> Result<Option<u64>, WimseError> {
    match m.get(k) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("{k} not a non-negative integer"))),
    }
}

fn json_b64(m: &Map<String, Json>, k: &str) -> Result<Option<Vec<u8>>, WimseError> {
    json_str(m, k)?
        .map(|s| b64::decode(&s).map_err(|_| bad(format!("{k} not base64url"))))
        .transpose()
}

/// A CBOR map whose keys are all integers (text keys, e.g. private extensions, are skipped); duplicates refused.
fn cbor_int_map<'v>(v: &'v Cbor, what: &str) -> Result<Vec<(i64, &'v Cbor)>, WimseError> {
    let m = v.as_map().ok_or_else(|| bad(format!("{what} not a map")))?;
    let mut out: Vec<(i64, &Cbor)> = Vec::with_capacity(m.len());
    for (k, val) in m {
        let Some(k) = k.as_integer().and_then(|i| i64::try_from(i).ok()) else {
            continue;
        };
        if out.iter().any(|(x, _)| *x == k) {
            return Err(bad(format!("{what}: duplicate key {k}")));
        }
        out.push((k, val));
    }
    Ok(out)
}

fn cbor_i64(v: &Cbor) -> Option<i64> {
    v.as_integer().and_then(|i: Integer| i64::try_from(i).ok())
}

fn cbor_uint(v: &Cbor) -> Result<u64, WimseError> {
    v.as_integer()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| bad("time not a non-negative integer"))
}

fn cbor_bytes(v: &Cbor) -> Result<Vec<u8>, WimseError> {
    v.as_bytes()
        .cloned()
        .ok_or_else(|| bad("expected a byte string"))
}

fn cbor_tier(v: &Cbor) -> Result<TrustTier, WimseError> {
    TrustTier::from_int(cbor_i64(v).ok_or_else(|| bad("ear_status not an integer"))?)
}

/// The JSON claims-set, written from the EAR's own fields: [`Ear::sign_jwt`] signs it without building a `Value`
/// tree, and [`Ear::to_json`] is its `Value`.
struct JsonClaims<'a>(&'a Ear);

impl Serialize for JsonClaims<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("eat_profile", &e.profile)?;
        m.serialize_entry("iat", &e.iat)?;
        if let Some(exp) = e.exp {
            m.serialize_entry("exp", &exp)?;
        }
        m.serialize_entry("ear_verifier_id", &JsonVerifierId(&e.verifier_id))?;
        if let Some(status) = e.status {
            m.serialize_entry("ear_status", status.as_str())?;
        }
        if let Some(r) = &e.raw_evidence {
            m.serialize_entry("ear_raw_evidence", &b64::encode(r))?;
        }
        if let Some(n) = &e.nonce {
            m.serialize_entry("eat_nonce", &b64::encode(n))?;
        }
        m.serialize_entry("submods", &JsonSubmods(&e.submods))?;
        m.end()
    }
}

struct JsonVerifierId<'a>(&'a VerifierId);

impl Serialize for JsonVerifierId<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("developer", &self.0.developer)?;
        m.serialize_entry("build", &self.0.build)?;
        m.end()
    }
}

struct JsonSubmods<'a>(&'a BTreeMap<String, EarAppraisal>);

impl Serialize for JsonSubmods<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, a) in self.0 {
            m.serialize_entry(name, &JsonAppraisal(a))?;
        }
        m.end()
    }
}

struct JsonAppraisal<'a>(&'a EarAppraisal);

impl Serialize for JsonAppraisal<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(p) = &a.profile {
            m.serialize_entry("eat_profile", p)?;
        }
        m.serialize_entry("ear_status", a.status.as_str())?;
        if let Some(v) = a.trust_vector {
            m.serialize_entry("ear_trustworthiness_vector", &JsonVector(v))?;
        }
        if !a.policy_ids.is_empty() {
            m.serialize_entry("ear_appraisal_policy_ids", &a.policy_ids)?;
        }
        if let Some(n) = &a.nonce {
            m.serialize_entry("eat_nonce", &b64::encode(n))?;
        }
        m.end()
    }
}

struct JsonVector(TrustVector);

impl Serialize for JsonVector {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (name, v) in VECTOR_NAMES.iter().zip(self.0.slots()) {
            if let Some(v) = v {
                m.serialize_entry(name, &v)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_of_claim_values() {
        assert_eq!(TrustTier::of_claim(0), TrustTier::None);
        assert_eq!(TrustTier::of_claim(-1), TrustTier::None);
        assert_eq!(TrustTier::of_claim(2), TrustTier::Affirming);
        assert_eq!(TrustTier::of_claim(-32), TrustTier::Affirming);
        assert_eq!(TrustTier::of_claim(32), TrustTier::Warning);
        assert_eq!(TrustTier::of_claim(-96), TrustTier::Warning);
        assert_eq!(TrustTier::of_claim(96), TrustTier::Contraindicated);
        assert_eq!(TrustTier::of_claim(-128), TrustTier::Contraindicated);
        assert_eq!(TrustTier::of_claim(127), TrustTier::Contraindicated);
    }

    #[test]
    fn spec_json_example_decodes() {
        let v: Json = serde_json::from_str(
            r#"{ "eat_profile": "tag:ietf.org,2026:rats/ear#03", "iat": 1666529300,
  "ear_verifier_id": { "developer": "https://veraison-project.org", "build": "vts 0.0.1" },
  "ear_raw_evidence": "NzQ3MjY5NzM2NTYzNzQKNzQ3MjY5NzM2NTYzNzQK",
  "submods": {
    "CCA Platform": { "ear_status": "affirming",
      "ear_trustworthiness_vector": { "instance-identity": 2, "executables": 2, "hardware": 2 },
      "ear_appraisal_policy_ids": [ "https://veraison.example/policy/1/60a0068d" ] },
    "CCA Realm": { "ear_status": "affirming",
      "ear_trustworthiness_vector": { "instance-identity": 2 },
      "ear_appraisal_policy_ids": [ "https://veraison.example/policy/1/60a0068d" ] } } }"#,
        )
        .unwrap();
        let ear = Ear::from_json(&v).unwrap();
        assert_eq!(ear.submods.len(), 2);
        assert_eq!(
            ear.submods["CCA Platform"].trust_vector.unwrap().hardware,
            Some(2)
        );
        assert_eq!(ear.verifier_id.build, "vts 0.0.1");
        assert_eq!(Ear::from_json(&ear.to_json()).unwrap(), ear);
    }

    #[test]
    fn every_member_is_written_under_its_name_and_read_back() {
        let full = serde_json::json!({
            "eat_profile": EAR_PROFILE, "iat": 1666529300, "exp": 1666529900,
            "ear_verifier_id": { "developer": "https://locus.example/verifier", "build": "b 1" },
            "ear_status": "warning",
            "ear_raw_evidence": "AAEC", "eat_nonce": "AAECAwQFBgc",
            "submods": {
                "sev-snp": { "eat_profile": "p", "ear_status": "warning",
                    "ear_trustworthiness_vector": { "instance-identity": 2, "hardware": 32, "sourced-data": 2 },
                    "ear_appraisal_policy_ids": ["a", "b"], "eat_nonce": "CAkKCwwNDg8" },
                "tdx": { "ear_status": "affirming" } } });
        let ear = Ear::from_json(&full).unwrap();
        assert_eq!(ear.to_json(), full);
        let minimal = serde_json::json!({
            "eat_profile": EAR_PROFILE, "iat": 1666529300,
            "ear_verifier_id": { "developer": "d", "build": "b" }, "submods": { "tdx": { "ear_status": "none" } } });
        assert_eq!(Ear::from_json(&minimal).unwrap().to_json(), minimal);
    }

    #[test]
    fn spec_cbor_example_decodes() {
        // {265: profile, 6: 1666529184, 1004: {0: dev, 1: build}, 1002: h'6C69…', 266: {"PSA": {1000: 96,
        //  1001: {0: 2, 2: 96, 4: 2}, 1003: [policy]}}}
        let v = Cbor::Map(vec![
            (265.into(), EAR_PROFILE.into()),
            (6.into(), 1666529184.into()),
            (
                1004.into(),
                Cbor::Map(vec![
                    (0.into(), "https://veraison-project.org".into()),
                    (1.into(), "vts 0.0.1".into()),
                ]),
            ),
            (
                1002.into(),
                Cbor::Bytes(hex::decode("6C696665626F61746D616E").unwrap()),
            ),
            (
                266.into(),
                Cbor::Map(vec![(
                    "PSA".into(),
                    Cbor::Map(vec![
                        (1000.into(), 96.into()),
                        (
                            1001.into(),
                            Cbor::Map(vec![
                                (0.into(), 2.into()),
                                (2.into(), 96.into()),
                                (4.into(), 2.into()),
                            ]),
                        ),
                        (
                            1003.into(),
                            Cbor::Array(vec!["https://veraison.example/policy/1/60a0068d".into()]),
                        ),
                    ]),
                )]),
            ),
        ]);
        let ear = Ear::from_cbor(&v).unwrap();
        assert_eq!(ear.submods["PSA"].status, TrustTier::Contraindicated);
        assert_eq!(ear.raw_evidence.as_deref(), Some(&b"lifeboatman"[..]));
        assert_eq!(Ear::from_cbor(&ear.to_cbor()).unwrap(), ear);
    }

    #[test]
    fn float_iat_and_wrong_profile_refused() {
        let mut v = serde_json::json!({"eat_profile": EAR_PROFILE, "iat": 1.666529184e9,
            "ear_verifier_id": {"developer":"d","build":"b"}, "submods": {"x": {"ear_status":"affirming"}}});
        assert_eq!(Ear::from_json(&v).unwrap_err().code(), "ear_invalid");
        v["iat"] = 1666529184.into();
        assert!(Ear::from_json(&v).is_ok());
        v["eat_profile"] = "tag:github.com,2023:veraison/ear".into();
        assert_eq!(Ear::from_json(&v).unwrap_err().code(), "ear_invalid");
    }

    #[test]
    fn status_better_than_vector_refused() {
        let v = serde_json::json!({"eat_profile": EAR_PROFILE, "iat": 1,
            "ear_verifier_id": {"developer":"d","build":"b"},
            "submods": {"x": {"ear_status":"affirming", "ear_trustworthiness_vector": {"hardware": 97}}}});
        assert_eq!(Ear::from_json(&v).unwrap_err().code(), "ear_invalid");
        let v = serde_json::json!({"eat_profile": EAR_PROFILE, "iat": 1, "ear_status": "affirming",
            "ear_verifier_id": {"developer":"d","build":"b"},
            "submods": {"x": {"ear_status":"warning"}}});
        assert_eq!(Ear::from_json(&v).unwrap_err().code(), "ear_invalid");
    }
}
