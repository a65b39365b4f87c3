//! The proximity statement (docs/proximity.md#the-statement): a COSE_Sign1, ES256, signed by the landmark's statement
//! key, protected header `{1: -7 (alg), 3: "application/locus-proximity+cbor" (content type), 4: landmark_id (kid)}`,
//! over a CBOR map with integer labels:
//!
//! | label | name | type |
//! |---|---|---|
//! | 1 | key thumbprint: RFC 7638 SHA-256 thumbprint of the agent key that answered | bstr (32) |
//! | 2 | landmark id: RFC 7638 SHA-256 thumbprint of the landmark's statement key | bstr (32) |
//! | 3 | landmark site name | tstr |
//! | 4 | landmark latitude, millionths of a degree | int |
//! | 5 | landmark longitude, millionths of a degree | int |
//! | 6 | minimum round trip, microseconds (landmark's monotonic clock) | uint |
//! | 7 | `d_max_km` = ⌈min RTT / 2 × c⌉ | uint |
//! | 8 | rounds answered | uint |
//! | 9 | time of the statement, Unix seconds (landmark's clock) | uint |
//!
//! [`Statement::verify`] is the mirror image of [`Statement::sign`]: every label present once, nothing else, the
//! signature checked over the bytes received, and `d_max_km` equal to the bound its own round trip gives.

use ciborium::Value;
use coset::{
    iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable,
};
use locus_wimse::jws::JwsSigner;
use locus_wimse::{Alg, Es256SigningKey, PublicKey};

use super::distance::d_max_km;

/// The protected header's content type.
pub const CONTENT_TYPE: &str = "application/locus-proximity+cbor";

/// What a landmark says about one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub key_thumbprint: [u8; 32],
    pub landmark_id: [u8; 32],
    pub site: String,
    /// `[lat, lon]`, millionths of a degree.
    pub coordinates: [i64; 2],
    pub min_rtt_us: u64,
    pub d_max_km: u64,
    pub rounds: u32,
    pub time: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatementError {
    #[error("not a COSE_Sign1: {0}")]
    Cose(String),
    #[error("protected header must say alg ES256 and content type {CONTENT_TYPE}")]
    Header,
    #[error("kid names no trusted landmark")]
    UnknownLandmark,
    #[error("signature does not verify under the landmark's key")]
    Signature,
    #[error("payload: {0}")]
    Payload(String),
    #[error("signing: {0}")]
    Sign(String),
}

impl Statement {
    /// The bound this statement's own round trip gives (what label 7 must say).
    pub fn expected_d_max_km(&self) -> u64 {
        d_max_km(self.min_rtt_us)
    }

    /// The CBOR payload (the labelled map of the module docs).
    pub fn payload(&self) -> Result<Vec<u8>, StatementError> {
        let int = |n: i64| Value::Integer(n.into());
        let uint = |n: u64| Value::Integer(n.into());
        let payload = Value::Map(vec![
            (int(1), Value::Bytes(self.key_thumbprint.to_vec())),
            (int(2), Value::Bytes(self.landmark_id.to_vec())),
            (int(3), Value::Text(self.site.clone())),
            (int(4), int(self.coordinates[0])),
            (int(5), int(self.coordinates[1])),
            (int(6), uint(self.min_rtt_us)),
            (int(7), uint(self.d_max_km)),
            (int(8), uint(u64::from(self.rounds))),
            (int(9), uint(self.time)),
        ]);
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(&payload, &mut bytes)
            .map_err(|e| StatementError::Sign(e.to_string()))?;
        Ok(bytes)
    }

    /// A tagged COSE_Sign1 signed with the landmark key (`kid` = `landmark_id`).
    pub fn sign(&self, key: &Es256SigningKey) -> Result<Vec<u8>, StatementError> {
        Self::sign_payload(self.payload()?, &self.landmark_id, key)
    }

    /// A tagged COSE_Sign1 (ES256, this content type, `kid`) over `payload` as given: [`Statement::sign`]'s envelope,
    /// for the fuzzers to wrap arbitrary payloads the way a landmark would.
    #[doc(hidden)]
    pub fn sign_payload(
        payload: Vec<u8>,
        kid: &[u8; 32],
        key: &Es256SigningKey,
    ) -> Result<Vec<u8>, StatementError> {
        let protected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES256)
            .content_type(CONTENT_TYPE.to_string())
            .key_id(kid.to_vec())
            .build();
        let sign1 = CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .try_create_signature(b"", |tbs| key.sign(tbs))
            .map_err(|e| StatementError::Sign(e.to_string()))?
            .build();
        sign1
            .to_tagged_vec()
            .map_err(|e| StatementError::Sign(format!("{e:?}")))
    }

    /// Decode a (tagged or untagged) COSE_Sign1 and verify it under the key of the landmark its `kid` names, found by
    /// `key_of(landmark_id)`. Returns the statement; freshness and the thumbprint are the caller's to judge.
    pub fn verify<'k>(
        bytes: &[u8],
        key_of: impl FnOnce(&[u8; 32]) -> Option<&'k PublicKey>,
    ) -> Result<Statement, StatementError> {
        let sign1 = CoseSign1::from_tagged_slice(bytes)
            .or_else(|_| CoseSign1::from_slice(bytes))
            .map_err(|e| StatementError::Cose(format!("{e:?}")))?;
        let h = &sign1.protected.header;
        let alg_ok = matches!(
            h.alg,
            Some(coset::RegisteredLabelWithPrivate::Assigned(
                iana::Algorithm::ES256
            ))
        );
        let ct_ok =
            matches!(&h.content_type, Some(coset::ContentType::Text(t)) if t == CONTENT_TYPE);
        if !alg_ok || !ct_ok {
            return Err(StatementError::Header);
        }
        let kid: [u8; 32] = h
            .key_id
            .as_slice()
            .try_into()
            .map_err(|_| StatementError::UnknownLandmark)?;
        let key = key_of(&kid).ok_or(StatementError::UnknownLandmark)?;
        sign1
            .verify_signature(b"", |sig, tbs| key.verify(Alg::Es256, tbs, sig))
            .map_err(|_| StatementError::Signature)?;
        let payload = sign1
            .payload
            .as_deref()
            .ok_or_else(|| StatementError::Payload("detached payload not supported".into()))?;
        let s = Statement::from_payload(payload)?;
        if s.landmark_id != kid {
            return Err(StatementError::Payload(
                "landmark id differs from the kid".into(),
            ));
        }
        if s.d_max_km != s.expected_d_max_km() {
            return Err(StatementError::Payload(format!(
                "d_max_km {} is not the bound of {} µs ({})",
                s.d_max_km,
                s.min_rtt_us,
                s.expected_d_max_km()
            )));
        }
        if s.rounds == 0 {
            return Err(StatementError::Payload("no rounds".into()));
        }
        Ok(s)
    }
}

impl Statement {
    /// Decode a payload (no signature check: [`Statement::verify`] is the one way to a statement that counts).
    pub fn from_payload(payload: &[u8]) -> Result<Statement, StatementError> {
        decode_payload(payload)
    }
}

fn decode_payload(payload: &[u8]) -> Result<Statement, StatementError> {
    let bad = |m: String| StatementError::Payload(m);
    let value: Value =
        ciborium::de::from_reader(payload).map_err(|e| bad(format!("not CBOR: {e}")))?;
    let map = value.into_map().map_err(|_| bad("not a CBOR map".into()))?;
    let mut fields: [Option<Value>; 9] = Default::default();
    for (k, v) in map {
        let label = k
            .as_integer()
            .and_then(|i| usize::try_from(i).ok())
            .filter(|l| (1..=9).contains(l))
            .ok_or_else(|| bad(format!("unknown label {k:?}")))?;
        if fields[label - 1].replace(v).is_some() {
            return Err(bad(format!("label {label} twice")));
        }
    }
    let mut take = |label: usize| {
        fields[label - 1]
            .take()
            .ok_or_else(|| bad(format!("label {label} missing")))
    };
    let bytes32 = |v: Value, label: usize| -> Result<[u8; 32], StatementError> {
        v.into_bytes()
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| bad(format!("label {label} must be 32 bytes")))
    };
    let int = |v: Value, label: usize| -> Result<i64, StatementError> {
        v.as_integer()
            .and_then(|i| i64::try_from(i).ok())
            .ok_or_else(|| bad(format!("label {label} must be an integer")))
    };
    let uint = |v: Value, label: usize| -> Result<u64, StatementError> {
        v.as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| bad(format!("label {label} must be an unsigned integer")))
    };
    let key_thumbprint = bytes32(take(1)?, 1)?;
    let landmark_id = bytes32(take(2)?, 2)?;
    let site = take(3)?
        .into_text()
        .map_err(|_| bad("label 3 must be text".into()))?;
    let lat = int(take(4)?, 4)?;
    let lon = int(take(5)?, 5)?;
    if !(-90_000_000..=90_000_000).contains(&lat) || !(-180_000_000..=180_000_000).contains(&lon) {
        return Err(bad("coordinates out of range".into()));
    }
    let min_rtt_us = uint(take(6)?, 6)?;
    let d_max_km = uint(take(7)?, 7)?;
    let rounds = u32::try_from(uint(take(8)?, 8)?).map_err(|_| bad("label 8 too large".into()))?;
    let time = uint(take(9)?, 9)?;
    Ok(Statement {
        key_thumbprint,
        landmark_id,
        site,
        coordinates: [lat, lon],
        min_rtt_us,
        d_max_km,
        rounds,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(landmark: &Es256SigningKey) -> Statement {
        Statement {
            key_thumbprint: [9; 32],
            landmark_id: landmark.thumbprint_sha256(),
            site: "fra-1".into(),
            coordinates: [50_110_900, 8_682_100],
            min_rtt_us: 1_000,
            d_max_km: 150,
            rounds: 8,
            time: 1_800_000_000,
        }
    }

    #[test]
    fn a_signed_statement_verifies_under_its_landmark_key_only() {
        let lm = Es256SigningKey::generate().expect("test value");
        let other = Es256SigningKey::generate().expect("test value");
        let s = statement(&lm);
        let bytes = s.sign(&lm).expect("test value");
        let pk = lm.public_key();
        let got = Statement::verify(&bytes, |id| (*id == s.landmark_id).then_some(&pk))
            .expect("test value");
        assert_eq!(got, s);
        // Untrusted: no key for that id.
        assert_eq!(
            Statement::verify(&bytes, |_| None),
            Err(StatementError::UnknownLandmark)
        );
        // A key that is not the signer's.
        let opk = other.public_key();
        assert_eq!(
            Statement::verify(&bytes, |_| Some(&opk)),
            Err(StatementError::Signature)
        );
    }

    #[test]
    fn a_tampered_payload_or_a_lying_bound_is_refused() {
        let lm = Es256SigningKey::generate().expect("test value");
        let pk = lm.public_key();
        let s = statement(&lm);
        let mut bytes = s.sign(&lm).expect("test value");
        // The min RTT 1000 (0x19 0x03 0xe8) becomes 1001: the signature no longer holds.
        let at = bytes
            .windows(3)
            .position(|w| w == [0x19, 0x03, 0xe8])
            .expect("test value");
        bytes[at + 2] = 0xe9;
        assert_eq!(
            Statement::verify(&bytes, |_| Some(&pk)),
            Err(StatementError::Signature)
        );
        // A landmark that signs a bound smaller than its own round trip gives.
        let lie = Statement {
            d_max_km: 10,
            ..statement(&lm)
        };
        let bytes = lie.sign(&lm).expect("test value");
        assert!(matches!(
            Statement::verify(&bytes, |_| Some(&pk)),
            Err(StatementError::Payload(m)) if m.contains("d_max_km")
        ));
        assert!(matches!(
            Statement::verify(b"\x01\x02", |_| Some(&pk)),
            Err(StatementError::Cose(_))
        ));
    }
}
