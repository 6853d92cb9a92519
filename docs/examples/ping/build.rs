//! Generates the ping contract's code and descriptor set (protox: no protoc needed).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let set = protox::compile(["ping.proto"], ["."])?;
    std::fs::write(out.join("ping.bin"), prost::Message::encode_to_vec(&set))?;
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure().compile_fds_with_config(set, config)?;
    println!("cargo:rerun-if-changed=ping.proto");
    Ok(())
}
