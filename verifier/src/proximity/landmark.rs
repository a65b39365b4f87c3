//! The landmark side of a proximity session, over any byte stream (the upgraded HTTP connection in the service, an
//! in-memory pipe in tests):
//!
//! 1. read `Hello`: the agent's public JWK (within the round timeout);
//! 2. k times: 32 fresh random bytes; start the clock; write `Challenge`; read `Response` (within the round timeout);
//!    stop the clock *before* verifying; verify the signature over
//!    `"locus-proximity-v1" ‖ 0x00 ‖ landmark_id ‖ challenge` under the presented key (`signature_invalid`
//!    otherwise, and the session ends without a statement); keep the minimum round trip;
//! 3. write `Statement`: key thumbprint, landmark id, site, coordinates, min RTT, `d_max_km`, rounds, time.
//!
//! The clock is `std::time::Instant` (monotonic) on this one host: a landmark is one machine, and the round trip is
//! measured between two readings of its own clock, so wall-clock steps and other replicas' clocks play no part.
//! Everything the landmark itself adds (writing, scheduling, reading) only lengthens a round, so the bound stays sound.

use std::time::{Duration, Instant};

use locus_wimse::proximity::{self as wire, Frame, HEADER_LEN};
use locus_wimse::{Es256SigningKey, Jwk};
use ring::rand::{SecureRandom as _, SystemRandom};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Semaphore;

use super::distance::d_max_km;
use super::statement::Statement;
use crate::config::LandmarkRole;
use crate::ErrorCode;

/// This verifier as a landmark: its key, where it stands, and its session limits.
#[derive(Debug)]
pub struct Landmark {
    /// RFC 7638 thumbprint of the statement key: what agents sign for, and the statements' `kid`.
    pub id: [u8; 32],
    key: std::sync::Arc<Es256SigningKey>,
    pub role: LandmarkRole,
    /// Sessions at once (`max_sessions`); a session holds a permit from the upgrade until it ends.
    pub sessions: std::sync::Arc<Semaphore>,
}

/// How a session ended well.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionReport {
    pub statement: Statement,
    /// Every round trip, microseconds, in order.
    pub rtts_us: Vec<u64>,
}

/// Why a session ended without a statement; `code` is what the agent is told.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SessionError {
    pub code: ErrorCode,
    pub message: String,
}

fn fail(code: ErrorCode, message: impl Into<String>) -> SessionError {
    SessionError {
        code,
        message: message.into(),
    }
}

impl Landmark {
    /// A landmark with `key` at `role`.
    pub fn new(key: Es256SigningKey, role: LandmarkRole) -> Landmark {
        Landmark {
            id: key.thumbprint_sha256(),
            sessions: std::sync::Arc::new(Semaphore::new(role.max_sessions)),
            key: std::sync::Arc::new(key),
            role,
        }
    }

    /// The statement key's public JWK (what an issuer puts in `[[landmark]] public_key`).
    pub fn public_jwk(&self) -> Jwk {
        self.key.public_jwk()
    }

    /// Run one session on `io`; `now` gives Unix seconds for the statement's time. On failure the agent gets an
    /// `Error` frame with the code before the stream is dropped.
    pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut S,
        now: impl Fn() -> u64,
    ) -> Result<SessionReport, SessionError> {
        let result = self.rounds(io, now).await;
        match &result {
            Ok(report) => {
                let (statement, key) = (report.statement.clone(), self.key.clone());
                let bytes = off_worker(move || statement.sign(&key))
                    .await?
                    .map_err(|e| fail(ErrorCode::Internal, e.to_string()))?;
                write_frame(io, &Frame::Statement(bytes)).await?;
            }
            Err(e) => {
                let frame = Frame::Error {
                    code: e.code.as_str().to_string(),
                    message: e.message.clone(),
                };
                // Best effort: the agent may be gone already.
                let _ = write_frame(io, &frame).await;
            }
        }
        let _ = io.shutdown().await;
        result
    }

    async fn rounds<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut S,
        now: impl Fn() -> u64,
    ) -> Result<SessionReport, SessionError> {
        let timeout = self.role.round_timeout;
        let jwk = match read_frame(io, timeout).await? {
            Frame::Hello(json) => std::str::from_utf8(&json)
                .ok()
                .and_then(|t| Jwk::from_json(t).ok())
                .ok_or_else(|| fail(ErrorCode::RequestInvalid, "hello: not a public JWK"))?,
            other => {
                return Err(fail(
                    ErrorCode::RequestInvalid,
                    format!("expected hello, got {other:?}"),
                ))
            }
        };
        let rng = SystemRandom::new();
        let mut rtts_us = Vec::with_capacity(self.role.rounds as usize);
        for round in 0..self.role.rounds {
            let mut challenge = [0u8; wire::CHALLENGE_LEN];
            rng.fill(&mut challenge)
                .map_err(|_| fail(ErrorCode::Internal, "random source failed"))?;
            let frame = Frame::Challenge {
                landmark_id: self.id,
                challenge,
            }
            .encode()
            .map_err(|e| fail(ErrorCode::Internal, e.to_string()))?;
            // The clock starts before the write and stops after the read: both only lengthen the round.
            let start = Instant::now();
            io.write_all(&frame)
                .await
                .map_err(|e| fail(ErrorCode::RequestInvalid, format!("write: {e}")))?;
            io.flush()
                .await
                .map_err(|e| fail(ErrorCode::RequestInvalid, format!("flush: {e}")))?;
            let answer = read_frame(io, timeout).await?;
            let rtt = start.elapsed();
            let Frame::Response(signature) = answer else {
                return Err(fail(
                    ErrorCode::RequestInvalid,
                    format!("round {round}: expected a response"),
                ));
            };
            let (key, id) = (jwk.clone(), self.id);
            off_worker(move || wire::verify_round(&key, &id, &challenge, &signature))
                .await?
                .map_err(|e| {
                fail(
                    ErrorCode::SignatureInvalid,
                    format!(
                        "round {round}: the answer is not signed by the presented key for this landmark ({})",
                        e.code()
                    ),
                )
            })?;
            rtts_us.push(u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX));
        }
        let min_rtt_us = rtts_us.iter().copied().min().unwrap_or(u64::MAX);
        let statement = Statement {
            key_thumbprint: jwk.thumbprint_sha256(),
            landmark_id: self.id,
            site: self.role.site.clone(),
            coordinates: self.role.coordinates,
            min_rtt_us,
            d_max_km: d_max_km(min_rtt_us),
            rounds: self.role.rounds,
            time: now(),
        };
        Ok(SessionReport { statement, rtts_us })
    }
}

/// Signature work on the blocking pool, not on the async workers that time other sessions' rounds (the round's
/// clock has stopped before a signature is checked).
async fn off_worker<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SessionError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| fail(ErrorCode::Internal, format!("signature task: {e}")))
}

async fn write_frame<S: AsyncWrite + Unpin>(io: &mut S, frame: &Frame) -> Result<(), SessionError> {
    let bytes = frame
        .encode()
        .map_err(|e| fail(ErrorCode::Internal, e.to_string()))?;
    io.write_all(&bytes)
        .await
        .map_err(|e| fail(ErrorCode::RequestInvalid, format!("write: {e}")))?;
    io.flush()
        .await
        .map_err(|e| fail(ErrorCode::RequestInvalid, format!("flush: {e}")))
}

/// Read one frame within `timeout` (`proximity_failed` when the agent is too slow or gone).
async fn read_frame<S: AsyncRead + Unpin>(
    io: &mut S,
    timeout: Duration,
) -> Result<Frame, SessionError> {
    let read = async {
        let mut header = [0u8; HEADER_LEN];
        io.read_exact(&mut header)
            .await
            .map_err(|e| fail(ErrorCode::ProximityFailed, format!("read: {e}")))?;
        let (kind, len) = Frame::parse_header(&header)
            .map_err(|e| fail(ErrorCode::RequestInvalid, e.to_string()))?;
        let mut payload = vec![0u8; len];
        io.read_exact(&mut payload)
            .await
            .map_err(|e| fail(ErrorCode::ProximityFailed, format!("read: {e}")))?;
        Frame::decode(kind, &payload).map_err(|e| fail(ErrorCode::RequestInvalid, e.to_string()))
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        fail(
            ErrorCode::ProximityFailed,
            format!("no answer within {} ms", timeout.as_millis()),
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proximity::Statement;

    fn landmark() -> Landmark {
        Landmark::new(
            Es256SigningKey::generate().expect("key"),
            LandmarkRole {
                site: "fra-1".into(),
                coordinates: [50_110_900, 8_682_100],
                rounds: 4,
                round_timeout: Duration::from_secs(2),
                max_sessions: 1,
            },
        )
    }

    async fn send<S: AsyncWrite + Unpin>(io: &mut S, f: Frame) {
        io.write_all(&f.encode().expect("encode"))
            .await
            .expect("write");
    }

    async fn recv<S: AsyncRead + Unpin>(io: &mut S) -> Frame {
        read_frame(io, Duration::from_secs(5)).await.expect("frame")
    }

    /// An agent that presents `shown` and signs with `signer`, for landmark id `sign_for` (None: the one asked).
    async fn agent<S: AsyncRead + AsyncWrite + Unpin>(
        io: &mut S,
        shown: &Es256SigningKey,
        signer: &Es256SigningKey,
        sign_for: Option<[u8; 32]>,
    ) -> Frame {
        send(
            io,
            Frame::Hello(shown.public_jwk().to_value().to_string().into_bytes()),
        )
        .await;
        loop {
            match recv(io).await {
                Frame::Challenge {
                    landmark_id,
                    challenge,
                } => {
                    let id = sign_for.unwrap_or(landmark_id);
                    let sig = wire::sign_round(signer, &id, &challenge).expect("sign");
                    send(io, Frame::Response(sig)).await;
                }
                other => return other,
            }
        }
    }

    #[tokio::test]
    async fn an_honest_agent_gets_a_statement_for_its_key_with_the_minimum_round_trip() {
        let lm = landmark();
        let key = Es256SigningKey::generate().expect("key");
        let (mut a, mut b) = tokio::io::duplex(4096);
        let (report, frame) = tokio::join!(
            lm.serve(&mut a, || 1_800_000_000),
            agent(&mut b, &key, &key, None)
        );
        let report = report.expect("session");
        assert_eq!(report.rtts_us.len(), 4);
        assert_eq!(
            Some(&report.statement.min_rtt_us),
            report.rtts_us.iter().min()
        );
        let Frame::Statement(bytes) = frame else {
            panic!("expected a statement, got {frame:?}")
        };
        let pk = lm.key.public_key();
        let s = Statement::verify(&bytes, |id| (*id == lm.id).then_some(&pk)).expect("verifies");
        assert_eq!(s.key_thumbprint, key.thumbprint_sha256());
        assert_eq!(
            (s.rounds, s.time, s.coordinates),
            (4, 1_800_000_000, [50_110_900, 8_682_100])
        );
    }

    #[tokio::test]
    async fn a_relay_answering_with_its_own_key_is_refused() {
        let lm = landmark();
        let victim = Es256SigningKey::generate().expect("key");
        let relay = Es256SigningKey::generate().expect("key");
        let (mut a, mut b) = tokio::io::duplex(4096);
        let (report, frame) =
            tokio::join!(lm.serve(&mut a, || 0), agent(&mut b, &victim, &relay, None));
        assert_eq!(
            report.map_err(|e| e.code).err(),
            Some(ErrorCode::SignatureInvalid)
        );
        assert!(matches!(frame, Frame::Error { code, .. } if code == "signature_invalid"));
    }

    #[tokio::test]
    async fn a_signature_made_for_another_landmark_is_refused() {
        let lm = landmark();
        let key = Es256SigningKey::generate().expect("key");
        let (mut a, mut b) = tokio::io::duplex(4096);
        let (report, frame) = tokio::join!(
            lm.serve(&mut a, || 0),
            agent(&mut b, &key, &key, Some([0x42; 32]))
        );
        assert_eq!(
            report.map_err(|e| e.code).err(),
            Some(ErrorCode::SignatureInvalid)
        );
        assert!(matches!(frame, Frame::Error { code, .. } if code == "signature_invalid"));
    }

    #[tokio::test]
    async fn an_agent_that_does_not_answer_in_time_gets_proximity_failed() {
        let mut lm = landmark();
        lm.role.round_timeout = Duration::from_millis(50);
        let key = Es256SigningKey::generate().expect("key");
        let (mut a, mut b) = tokio::io::duplex(4096);
        send(
            &mut b,
            Frame::Hello(key.public_jwk().to_value().to_string().into_bytes()),
        )
        .await;
        let report = lm.serve(&mut a, || 0).await;
        assert_eq!(
            report.map_err(|e| e.code).err(),
            Some(ErrorCode::ProximityFailed)
        );
    }
}
