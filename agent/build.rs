//! Compile the SPIFFE Workload API proto (`proto/workload.proto`) with protox, a protobuf compiler written in Rust, so
//! a fresh machine needs no `protoc`. The generated messages, server and client land in `$OUT_DIR/_.rs` (the proto
//! has no package) and are included by `src/spiffe/pb.rs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/workload.proto");
    let fds = protox::compile(["workload.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        // The client is generated too: the WIT-SVID profile has no client library yet, so the tests speak it
        // through this one. No `connect` helper: callers bring their own channel.
        .build_client(true)
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
