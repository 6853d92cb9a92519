//! Compiles the test-only contract under `testdata/` (with the shared `google/api` definitions from
//! `proto/`) for the gateway's conformance tests: generated server code and its descriptor set.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let testdata = root.join("testdata");
    let contracts = root.join("../proto");
    let mut compiler = protox::Compiler::new([&testdata, &contracts])?;
    compiler.include_imports(true);
    compiler.open_files(["gatewaytest/v1/gatewaytest.proto"])?;
    let encoded = compiler.encode_file_descriptor_set();
    std::fs::write(out.join("gatewaytest_descriptor.bin"), &encoded)?;
    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(encoded.as_slice())?;
    // Only the test package: google.api types come from taskmesh-contracts at run time.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".google.api", "::taskmesh_contracts::google::api")
        .compile_fds(set)?;
    println!("cargo:rerun-if-changed=testdata");
    println!("cargo:rerun-if-changed=../proto/google");
    Ok(())
}
