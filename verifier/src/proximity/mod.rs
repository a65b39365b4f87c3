//! Proximity: distance bounds from timed challenges (docs/proximity.md).
//!
//! Flow: an agent dials a landmark (a verifier with `[landmark_role]`) at `GET /v1/proximity`, upgrades the
//! connection to the framed protocol of `locus_wimse::proximity`, presents its public JWK, and answers k fresh
//! challenges one at a time by signing `"locus-proximity-v1" ‖ 0x00 ‖ landmark_id ‖ challenge` with its attested
//! key ([`landmark`]). The landmark times each round on its own monotonic clock, keeps the minimum, and answers a
//! signed [`statement`]: this key answered from within `d_max_km` of this landmark, at this time. The agent sends
//! its statements with `POST /v1/attest`; the issuing verifier checks them in the pure decision
//! (`crate::decision::proximity`) with the [`distance`] arithmetic here.

pub mod distance;
pub mod landmark;
pub mod service;
pub mod statement;

pub use distance::{d_max_km, fibre_estimate_km, haversine_km};
pub use landmark::Landmark;
pub use statement::{Statement, StatementError};
