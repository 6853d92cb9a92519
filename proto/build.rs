//! Compiles every `.proto` under this crate with protox (no protoc binary) and generates prost messages
//! and tonic clients and servers with tonic-prost-build. The encoded descriptor set, custom options
//! such as `google.api.http` included, is written to `OUT_DIR/descriptor.bin` for reflection and for
//! the gateway. `buf/validate/validate.proto` (the protovalidate rules the contracts annotate their
//! fields with) is not copied here: it is read from the descriptor set that the
//! `prost-protovalidate-types` crate ships.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut files = Vec::new();
    collect_protos(&root.join("taskmesh"), &mut files)?;
    // Opened explicitly: error details must decode for reflection clients, and HttpBody must
    // exist for contracts and gateways that use it.
    collect_protos(&root.join("google/rpc"), &mut files)?;
    collect_protos(&root.join("google/api"), &mut files)?;
    files.sort();
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(&root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;

    // `protox::compile` would return a prost-types set whose re-encoding drops extension options;
    // the Compiler keeps them when the set is encoded directly.
    let mut compiler = protox::Compiler::with_file_resolver(resolver(&root)?);
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&relative)?;
    let encoded = compiler.encode_file_descriptor_set();
    let descriptor_path = out.join("descriptor.bin");
    std::fs::write(&descriptor_path, &encoded)?;

    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(encoded.as_slice())?;
    // Type names (`prost::Name`) let events name themselves: publishers and consumers use
    // `TaskCreated::full_name()` instead of spelling `taskmesh.tasks.v1.TaskCreated`.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds_with_config(set, config)?;

    println!("cargo:rerun-if-changed=taskmesh");
    println!("cargo:rerun-if-changed=google");
    Ok(())
}

/// This crate's `.proto` files, then protobuf's well-known types, then `buf/validate/validate.proto`.
fn resolver(root: &Path) -> Result<protox::file::ChainFileResolver, Box<dyn std::error::Error>> {
    use protox::file::{
        ChainFileResolver, DescriptorSetFileResolver, GoogleFileResolver, IncludeFileResolver,
    };
    let validate = prost_protovalidate_types::DESCRIPTOR_POOL.encode_to_vec();
    let mut chain = ChainFileResolver::new();
    chain.add(IncludeFileResolver::new(root.to_owned()));
    chain.add(GoogleFileResolver::new());
    chain.add(DescriptorSetFileResolver::decode(validate.as_slice())?);
    Ok(chain)
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
