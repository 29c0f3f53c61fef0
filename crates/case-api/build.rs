//! Generates the gRPC client and server code from `proto/` with protox (no system `protoc`).

use std::path::PathBuf;

const FILES: [&str; 3] = [
    "case/v1/types.proto",
    "case/v1/services.proto",
    "sandbox/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(FILES, [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
