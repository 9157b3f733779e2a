//! Compiles `proto-schemas/*.proto` with protox (pure Rust), so building
//! needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto-schemas");
    let file = format!("{dir}/hookline.proto");
    println!("cargo:rerun-if-changed={file}");
    let descriptors = protox::compile([&file], [dir])?;
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
