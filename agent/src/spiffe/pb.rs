//! Types, server and client generated from `proto/workload.proto` by `build.rs` (prost + tonic, compiled with protox).
//! The proto has no package, so the gRPC service path is `/SpiffeWorkloadAPI/<Method>`.
#![allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]

include!(concat!(env!("OUT_DIR"), "/_.rs"));
