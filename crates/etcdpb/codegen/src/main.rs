//! Generates the etcd v3 client code of the `etcdpb` crate.
//!
//! protox parses the proto file in Rust and tonic-prost-build writes the
//! messages and client stubs, so regenerating needs no protoc; the output
//! is committed, so building kstress needs neither.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let proto_dir = crate_dir.join("proto");
    let out_dir = crate_dir.join("src/generated");
    match generate(&proto_dir, &out_dir) {
        Ok(()) => {
            println!("wrote {}", out_dir.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("etcdpb codegen: {err}");
            ExitCode::FAILURE
        }
    }
}

fn generate(proto_dir: &Path, out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile([proto_dir.join("etcd_v3.proto")], [proto_dir])?;
    std::fs::create_dir_all(out_dir)?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(true)
        .out_dir(out_dir)
        .compile_fds(descriptors)?;
    Ok(())
}
