//! Proximity statements, agent side (docs/proximity.md): before `/v1/attest`, for each landmark the challenge
//! answer names, dial `<url>/v1/proximity`, upgrade the connection to the framed protocol of
//! `locus_wimse::proximity`, present the public JWK of the key being attested, and answer each challenge by signing
//! `"locus-proximity-v1" ‖ 0x00 ‖ landmark_id ‖ challenge` with it, at once. The landmark answers a signed statement
//! the agent forwards unread (the issuing verifier judges it).
//!
//! The agent signs only for the landmark id the verifier announced: a landmark asking for a signature bound to
//! another id is dropped. A landmark that cannot be reached or refuses costs only its statement (logged at warn):
//! the verifier then decides, with `proximity_failed` when the fence needed it.

use std::time::Duration;

use locus_wimse::proximity::{self as wire, Frame, HEADER_LEN};
use locus_wimse::Es256SigningKey;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::client::{LandmarkRef, VerifierClient};
use crate::credential::Credential;
use crate::error::AgentError;

/// Longest a whole session with one landmark may take.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// Collect a statement from each landmark for `key`; returns the statements (base64url) that arrived.
pub async fn collect(
    client: &VerifierClient,
    landmarks: &[LandmarkRef],
    key: &Es256SigningKey,
) -> Vec<String> {
    let mut out = Vec::new();
    for lm in landmarks {
        let session = async {
            let mut io = client.upgrade_to_landmark(&lm.url).await?;
            run_session(&mut io, lm, key).await
        };
        match tokio::time::timeout(SESSION_TIMEOUT, session).await {
            Ok(Ok(statement)) => out.push(locus_wimse::b64::encode(statement)),
            Ok(Err(e)) => {
                tracing::warn!(landmark = %lm.name, url = %lm.url, code = e.code(), error = %e, "no proximity statement")
            }
            Err(_) => {
                tracing::warn!(landmark = %lm.name, url = %lm.url, "proximity session timed out")
            }
        }
    }
    out
}

/// One session on an open stream: hello, answer every challenge, return the statement's bytes.
pub async fn run_session<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    landmark: &LandmarkRef,
    key: &Es256SigningKey,
) -> Result<Vec<u8>, AgentError> {
    let expected = locus_wimse::b64::decode(&landmark.id)
        .ok()
        .and_then(|b| <[u8; wire::LANDMARK_ID_LEN]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| {
            AgentError::BadResponse(format!(
                "landmark {} id is not 32 bytes base64url",
                landmark.name
            ))
        })?;
    let hello = Credential::public_jwk_of(key).to_value().to_string();
    write_frame(io, &Frame::Hello(hello.into_bytes())).await?;
    loop {
        match read_frame(io).await? {
            Frame::Challenge {
                landmark_id,
                challenge,
            } => {
                if landmark_id != expected {
                    return Err(AgentError::BadResponse(format!(
                        "landmark {} asked for a signature bound to another landmark id",
                        landmark.name
                    )));
                }
                let sig = wire::sign_round(key, &landmark_id, &challenge)
                    .map_err(|e| AgentError::Internal(format!("signing a proximity round: {e}")))?;
                write_frame(io, &Frame::Response(sig)).await?;
            }
            Frame::Statement(bytes) => return Ok(bytes),
            Frame::Error { code, message } => {
                return Err(AgentError::Refused {
                    status: 403,
                    code,
                    message,
                })
            }
            other => {
                return Err(AgentError::BadResponse(format!(
                    "landmark {} sent an unexpected frame {other:?}",
                    landmark.name
                )))
            }
        }
    }
}

async fn write_frame<S: AsyncWrite + Unpin>(io: &mut S, frame: &Frame) -> Result<(), AgentError> {
    let bytes = frame
        .encode()
        .map_err(|e| AgentError::Internal(format!("proximity frame: {e}")))?;
    io.write_all(&bytes)
        .await
        .map_err(|e| AgentError::Unreachable(format!("landmark: {e}")))?;
    io.flush()
        .await
        .map_err(|e| AgentError::Unreachable(format!("landmark: {e}")))
}

/// Read one frame (the landmark bounds each round with its own timeout; the session has [`SESSION_TIMEOUT`]).
async fn read_frame<S: AsyncRead + Unpin>(io: &mut S) -> Result<Frame, AgentError> {
    let mut header = [0u8; HEADER_LEN];
    io.read_exact(&mut header)
        .await
        .map_err(|e| AgentError::Unreachable(format!("landmark closed: {e}")))?;
    let (kind, len) = Frame::parse_header(&header)
        .map_err(|e| AgentError::BadResponse(format!("landmark: {e}")))?;
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload)
        .await
        .map_err(|e| AgentError::Unreachable(format!("landmark closed: {e}")))?;
    Frame::decode(kind, &payload).map_err(|e| AgentError::BadResponse(format!("landmark: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn landmark_ref(id: [u8; 32]) -> LandmarkRef {
        LandmarkRef {
            name: "lm".into(),
            url: "http://127.0.0.1:1".into(),
            id: locus_wimse::b64::encode(id),
        }
    }

    async fn send<S: AsyncWrite + Unpin>(io: &mut S, f: Frame) {
        io.write_all(&f.encode().expect("frame"))
            .await
            .expect("write");
    }

    #[tokio::test]
    async fn the_agent_signs_each_challenge_for_the_announced_landmark_and_returns_the_statement() {
        let key = Es256SigningKey::generate().expect("key");
        let id = [5u8; 32];
        let lm_ref = landmark_ref(id);
        let (mut agent_io, mut lm_io) = tokio::io::duplex(4096);
        let lm = async {
            let Frame::Hello(jwk) = read_frame(&mut lm_io).await.expect("hello") else {
                panic!("expected hello")
            };
            let jwk = locus_wimse::Jwk::from_json(std::str::from_utf8(&jwk).expect("utf-8"))
                .expect("jwk");
            for round in 0..3u8 {
                let challenge = [round; 32];
                send(
                    &mut lm_io,
                    Frame::Challenge {
                        landmark_id: id,
                        challenge,
                    },
                )
                .await;
                let Frame::Response(sig) = read_frame(&mut lm_io).await.expect("response") else {
                    panic!("expected a response")
                };
                wire::verify_round(&jwk, &id, &challenge, &sig).expect("signed for this landmark");
            }
            send(&mut lm_io, Frame::Statement(b"statement".to_vec())).await;
        };
        let (got, ()) = tokio::join!(run_session(&mut agent_io, &lm_ref, &key), lm);
        assert_eq!(got.expect("statement"), b"statement");
    }

    #[tokio::test]
    async fn a_landmark_asking_for_another_landmark_id_gets_no_signature() {
        let key = Es256SigningKey::generate().expect("key");
        let lm_ref = landmark_ref([5; 32]);
        let (mut agent_io, mut lm_io) = tokio::io::duplex(4096);
        let lm = async {
            let _ = read_frame(&mut lm_io).await;
            send(
                &mut lm_io,
                Frame::Challenge {
                    landmark_id: [6; 32],
                    challenge: [1; 32],
                },
            )
            .await;
        };
        let (got, ()) = tokio::join!(run_session(&mut agent_io, &lm_ref, &key), lm);
        assert_eq!(
            got.expect_err("refused").code(),
            "verifier_response_invalid"
        );
    }

    #[tokio::test]
    async fn a_landmark_refusal_keeps_its_code() {
        let key = Es256SigningKey::generate().expect("key");
        let lm_ref = landmark_ref([5; 32]);
        let (mut agent_io, mut lm_io) = tokio::io::duplex(4096);
        let lm = async {
            let _ = read_frame(&mut lm_io).await;
            send(
                &mut lm_io,
                Frame::Error {
                    code: "signature_invalid".into(),
                    message: "round 0".into(),
                },
            )
            .await;
        };
        let (got, ()) = tokio::join!(run_session(&mut agent_io, &lm_ref, &key), lm);
        assert_eq!(got.expect_err("refused").code(), "signature_invalid");
    }
}
