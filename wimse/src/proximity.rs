//! Proximity rounds between an agent and a landmark (docs/proximity.md): the one definition of what the agent signs
//! and of the frames both sides exchange, shared by the agent (which signs) and the landmark (which verifies).
//!
//! ```text
//! message = "locus-proximity-v1" ‖ 0x00 ‖ landmark_id (32) ‖ challenge (32)       (83 bytes)
//! ```
//!
//! `landmark_id` is the RFC 7638 SHA-256 thumbprint of the landmark's statement-signing key, so a signature made for
//! one landmark never verifies at another; `challenge` is 32 fresh random bytes. The agent signs with its attested
//! key (the `cnf` key of the WIT it is asking for). The label makes the message disjoint from everything else that
//! key signs: a JWS signing input (WIT, WPT) is `base64url(header) "." …` and always starts with `eyJ` (the base64url
//! of `{"`), a COSE `Sig_structure` starts with the CBOR array head 0x84, and this message starts with `l`.
//!
//! Frames (after the HTTP/1.1 upgrade to [`UPGRADE_TOKEN`] on [`PATH`]): `type (1) ‖ length (2, big-endian) ‖
//! payload`, payload at most [`MAX_PAYLOAD`] bytes.
//!
//! | type | direction | payload |
//! |---|---|---|
//! | 1 `Hello` | agent → landmark | the agent's public JWK (JSON) |
//! | 2 `Challenge` | landmark → agent | landmark_id (32) ‖ challenge (32) |
//! | 3 `Response` | agent → landmark | the signature over [`message`] (ES256: 64-byte `r ‖ s`) |
//! | 4 `Statement` | landmark → agent | the signed proximity statement (COSE_Sign1) |
//! | 5 `Error` | landmark → agent | JSON `{"code","message"}`, then the landmark closes |

use crate::error::WimseError;
use crate::jwk::{Alg, Jwk};
use crate::jws::JwsSigner;

/// The domain-separation label.
pub const LABEL: &[u8] = b"locus-proximity-v1";
/// Length of a landmark id (an RFC 7638 SHA-256 thumbprint).
pub const LANDMARK_ID_LEN: usize = 32;
/// Length of a challenge.
pub const CHALLENGE_LEN: usize = 32;
/// Length of [`message`].
pub const MESSAGE_LEN: usize = LABEL.len() + 1 + LANDMARK_ID_LEN + CHALLENGE_LEN;
/// The landmark's route on a verifier.
pub const PATH: &str = "/v1/proximity";
/// The `Upgrade` token of the framed protocol.
pub const UPGRADE_TOKEN: &str = "locus-proximity/1";
/// Largest frame payload.
pub const MAX_PAYLOAD: usize = 8 * 1024;
/// Frame header length.
pub const HEADER_LEN: usize = 3;

/// The bytes the agent signs for one round.
pub fn message(
    landmark_id: &[u8; LANDMARK_ID_LEN],
    challenge: &[u8; CHALLENGE_LEN],
) -> [u8; MESSAGE_LEN] {
    let mut m = [0u8; MESSAGE_LEN];
    m[..LABEL.len()].copy_from_slice(LABEL);
    // m[LABEL.len()] stays 0x00, the separator.
    let id_at = LABEL.len() + 1;
    m[id_at..id_at + LANDMARK_ID_LEN].copy_from_slice(landmark_id);
    m[id_at + LANDMARK_ID_LEN..].copy_from_slice(challenge);
    m
}

/// Agent side: sign one round with the attested key.
pub fn sign_round(
    key: &dyn JwsSigner,
    landmark_id: &[u8; LANDMARK_ID_LEN],
    challenge: &[u8; CHALLENGE_LEN],
) -> Result<Vec<u8>, WimseError> {
    key.sign(&message(landmark_id, challenge))
}

/// Landmark side: check one round's signature under the key the agent presented, with the algorithm its JWK names
/// (or its key type's default).
pub fn verify_round(
    jwk: &Jwk,
    landmark_id: &[u8; LANDMARK_ID_LEN],
    challenge: &[u8; CHALLENGE_LEN],
    signature: &[u8],
) -> Result<(), WimseError> {
    let alg = match jwk.alg.as_deref() {
        Some(name) => Alg::from_name(name)?,
        None => jwk.key.default_alg(),
    };
    jwk.key
        .verify(alg, &message(landmark_id, challenge), signature)
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The type byte names no frame.
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    /// Longer than [`MAX_PAYLOAD`].
    #[error("frame payload of {0} bytes is over the limit")]
    TooLong(usize),
    /// The payload does not have the frame's shape.
    #[error("frame payload: {0}")]
    Payload(&'static str),
}

/// One frame of the protocol (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The agent's public JWK, as JSON text.
    Hello(Vec<u8>),
    /// A fresh challenge from the landmark with the id to sign for.
    Challenge {
        /// The landmark's id.
        landmark_id: [u8; LANDMARK_ID_LEN],
        /// 32 random bytes.
        challenge: [u8; CHALLENGE_LEN],
    },
    /// The agent's signature over [`message`].
    Response(Vec<u8>),
    /// The signed statement.
    Statement(Vec<u8>),
    /// A refusal with a stable code.
    Error {
        /// The code (the verifier's error codes).
        code: String,
        /// Human-readable detail.
        message: String,
    },
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Hello(_) => 1,
            Frame::Challenge { .. } => 2,
            Frame::Response(_) => 3,
            Frame::Statement(_) => 4,
            Frame::Error { .. } => 5,
        }
    }

    /// Header and payload, ready to write in one call.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let payload: Vec<u8> = match self {
            Frame::Hello(b) | Frame::Response(b) | Frame::Statement(b) => b.clone(),
            Frame::Challenge {
                landmark_id,
                challenge,
            } => [landmark_id.as_slice(), challenge.as_slice()].concat(),
            Frame::Error { code, message } => {
                serde_json::json!({ "code": code, "message": message })
                    .to_string()
                    .into_bytes()
            }
        };
        let len = u16::try_from(payload.len())
            .ok()
            .filter(|l| usize::from(*l) <= MAX_PAYLOAD)
            .ok_or(FrameError::TooLong(payload.len()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.push(self.kind());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Read a header: the frame type and the payload length that follows.
    pub fn parse_header(header: &[u8; HEADER_LEN]) -> Result<(u8, usize), FrameError> {
        let kind = header[0];
        if !(1..=5).contains(&kind) {
            return Err(FrameError::UnknownType(kind));
        }
        let len = usize::from(u16::from_be_bytes([header[1], header[2]]));
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLong(len));
        }
        Ok((kind, len))
    }

    /// The frame of type `kind` with `payload` (the mirror image of [`Frame::encode`]).
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Frame, FrameError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(FrameError::TooLong(payload.len()));
        }
        Ok(match kind {
            1 => Frame::Hello(payload.to_vec()),
            2 => {
                if payload.len() != LANDMARK_ID_LEN + CHALLENGE_LEN {
                    return Err(FrameError::Payload(
                        "a challenge is landmark_id (32) and challenge (32)",
                    ));
                }
                let mut landmark_id = [0u8; LANDMARK_ID_LEN];
                let mut challenge = [0u8; CHALLENGE_LEN];
                landmark_id.copy_from_slice(&payload[..LANDMARK_ID_LEN]);
                challenge.copy_from_slice(&payload[LANDMARK_ID_LEN..]);
                Frame::Challenge {
                    landmark_id,
                    challenge,
                }
            }
            3 => Frame::Response(payload.to_vec()),
            4 => Frame::Statement(payload.to_vec()),
            5 => {
                let v: serde_json::Value = serde_json::from_slice(payload)
                    .map_err(|_| FrameError::Payload("an error is a JSON object"))?;
                let text = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_owned);
                Frame::Error {
                    code: text("code").ok_or(FrameError::Payload("an error needs a code"))?,
                    message: text("message").unwrap_or_default(),
                }
            }
            other => return Err(FrameError::UnknownType(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::{CompactJws, Es256SigningKey};
    use crate::wpt::{create_wpt, WptRequest};
    use crate::WitIssuer;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_message_matches_an_independently_computed_vector() {
        // python3: m = b"locus-proximity-v1" + b"\0" + b"\xab" * 32 + bytes(range(32));
        //          len(m), hashlib.sha256(m).hexdigest()
        let challenge: [u8; 32] = core::array::from_fn(|i| i as u8);
        let m = message(&[0xab; 32], &challenge);
        assert_eq!(m.len(), 83);
        assert_eq!(
            hex::encode(Sha256::digest(m)),
            "110a43c2ad5381dcfdf1fd5cce7bdd3ea947dc03c7945ab54fc0ef99959c7823"
        );
        assert_eq!(&m[..19], b"locus-proximity-v1\0");
    }

    #[test]
    fn a_round_signed_for_one_landmark_is_refused_by_another() {
        let key = Es256SigningKey::generate().unwrap();
        let jwk = key.public_jwk();
        let (a, b, c) = ([1u8; 32], [2u8; 32], [7u8; 32]);
        let sig = sign_round(&key, &a, &c).unwrap();
        assert!(verify_round(&jwk, &a, &c, &sig).is_ok());
        assert_eq!(
            verify_round(&jwk, &b, &c, &sig).unwrap_err().code(),
            "signature_invalid"
        );
        // Another challenge, or another key, fails the same way.
        assert_eq!(
            verify_round(&jwk, &a, &[8; 32], &sig).unwrap_err().code(),
            "signature_invalid"
        );
        let other = Es256SigningKey::generate().unwrap().public_jwk();
        assert_eq!(
            verify_round(&other, &a, &c, &sig).unwrap_err().code(),
            "signature_invalid"
        );
    }

    #[test]
    fn no_jws_the_agent_key_signs_can_be_a_proximity_message() {
        // What the agent's key signs for a workload: WPTs (and any JWS: WIT-shaped tokens). Every JWS signing input
        // starts with base64url('{"') = "eyJ"; every proximity message starts with the label.
        let key = Es256SigningKey::generate().unwrap().with_kid("k");
        let issuer = WitIssuer::new(
            Es256SigningKey::generate().unwrap().with_kid("i"),
            Some("https://v.example".into()),
        )
        .unwrap();
        let sub = crate::WorkloadId::parse("spiffe://example.com/w").unwrap();
        let (wit, _) = issuer
            .issue(&sub, &key.public_jwk(), 100, 200, &serde_json::Map::new())
            .unwrap();
        let wpt = create_wpt(&key, &WptRequest::new("https://rp.example/x", &wit, 150)).unwrap();
        for token in [wpt.as_str(), wit.as_str()] {
            let input = CompactJws::parse(token).unwrap().signing_input();
            assert!(input.starts_with(b"eyJ"), "{:?}", &input[..3]);
            assert_ne!(&input[..LABEL.len()], LABEL);
            assert_ne!(input.len(), MESSAGE_LEN);
        }
        // A WPT's signature is no proximity signature, whatever landmark and challenge it is offered for.
        let wpt_jws = CompactJws::parse(&wpt).unwrap();
        let wpt_sig = crate::b64::decode(wpt.rsplit('.').next().unwrap()).unwrap();
        let mut challenge = [0u8; 32];
        challenge.copy_from_slice(&Sha256::digest(wpt_jws.signing_input()));
        assert_eq!(
            verify_round(&key.public_jwk(), &[0; 32], &challenge, &wpt_sig)
                .unwrap_err()
                .code(),
            "signature_invalid"
        );
        assert!(!LABEL.starts_with(b"eyJ"));
    }

    #[test]
    fn frames_round_trip_and_bad_frames_are_refused() {
        let frames = [
            Frame::Hello(br#"{"kty":"EC"}"#.to_vec()),
            Frame::Challenge {
                landmark_id: [3; 32],
                challenge: [4; 32],
            },
            Frame::Response(vec![5; 64]),
            Frame::Statement(vec![6; 300]),
            Frame::Error {
                code: "signature_invalid".into(),
                message: "round 2".into(),
            },
        ];
        for f in frames {
            let bytes = f.encode().unwrap();
            let header: [u8; 3] = bytes[..3].try_into().unwrap();
            let (kind, len) = Frame::parse_header(&header).unwrap();
            assert_eq!(len, bytes.len() - 3);
            assert_eq!(Frame::decode(kind, &bytes[3..]).unwrap(), f);
        }
        assert_eq!(
            Frame::parse_header(&[9, 0, 0]),
            Err(FrameError::UnknownType(9))
        );
        assert_eq!(
            Frame::parse_header(&[1, 0xff, 0xff]),
            Err(FrameError::TooLong(65535))
        );
        assert!(matches!(
            Frame::decode(2, &[0; 63]),
            Err(FrameError::Payload(_))
        ));
        assert!(matches!(
            Frame::decode(5, b"not json"),
            Err(FrameError::Payload(_))
        ));
        assert_eq!(
            Frame::Statement(vec![0; MAX_PAYLOAD + 1]).encode(),
            Err(FrameError::TooLong(MAX_PAYLOAD + 1))
        );
    }
}
