/work/main/crates/apiserver/codegen/target/debug/deps/apiserver_codegen-bda7609887a6c7c1.d: src/main.rs src/emit.rs src/json_names.rs src/presence.rs src/prost_source.rs src/roots.rs

/work/main/crates/apiserver/codegen/target/debug/deps/apiserver_codegen-bda7609887a6c7c1: src/main.rs src/emit.rs src/json_names.rs src/presence.rs src/prost_source.rs src/roots.rs

src/main.rs:
src/emit.rs:
src/json_names.rs:
src/presence.rs:
src/prost_source.rs:
src/roots.rs:

# env-dep:CARGO=/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/cargo
# env-dep:CARGO_MANIFEST_DIR=/work/main/crates/apiserver/codegen
