//! Generates the protobuf message table of the kstress API server
//! (`crates/apiserver/src/protobuf/messages.rs`).
//!
//! The server stores and works on JSON, and transcodes the Kubernetes
//! protobuf wire form with one table per message: field tags and wire
//! types come from k8s-pb's prost structs (parsed with syn, so no protoc is
//! needed), JSON names from k8s-openapi's serde code, and which zero values
//! upstream's JSON carries from `presence.txt` (see [`presence`]). The
//! messages listed are those of the kinds `crates/apiserver/src/kinds`
//! serves, their lists, and everything they reference.
//!
//! `cargo run --manifest-path crates/apiserver/codegen/Cargo.toml` rewrites
//! the table; add `-- --go-types DIR` (DIR holding checkouts of
//! kubernetes/api, kubernetes/apimachinery and
//! kubernetes/apiextensions-apiserver at the served minor) to rewrite
//! `presence.txt` first.

mod emit;
mod json_names;
mod presence;
mod prost_source;
mod roots;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    match run() {
        Ok(out) => {
            println!("wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("apiserver codegen: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<PathBuf, Error> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let apiserver = here.join("..");
    let workspace = apiserver.join("../..");
    let pb_src = package_dir(&workspace, "k8s-pb")?.join("src");
    let openapi_src = package_dir(&workspace, "k8s-openapi")?.join("src");

    let messages = prost_source::parse(&pb_src)?;
    let roots = roots::from_kinds(&apiserver.join("src/kinds"))?;
    let reachable = reachable(&messages, &roots)?;
    let json = json_names::parse(&openapi_src)?;

    let presence_file = here.join("presence.txt");
    let mut args = std::env::args().skip(1);
    if let Some(flag) = args.next() {
        let dir = match (flag.as_str(), args.next()) {
            ("--go-types", Some(dir)) => PathBuf::from(dir),
            _ => return Err("usage: apiserver-codegen [--go-types DIR]".into()),
        };
        let kept = presence::from_go(&dir)?;
        presence::write(&presence_file, &messages, &reachable, &kept)?;
    }
    let kept = presence::read(&presence_file)?;

    let out = apiserver.join("src/protobuf/messages.rs");
    let text = emit::table(&messages, &reachable, &roots, &json, &kept)?;
    std::fs::write(&out, text)?;
    Ok(out)
}

/// The messages the roots reference, transitively, by proto name.
fn reachable(
    messages: &BTreeMap<String, prost_source::Message>,
    roots: &[roots::Root],
) -> Result<BTreeSet<String>, Error> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots
        .iter()
        .flat_map(|r| [r.message.clone(), r.list.clone()])
        .chain(roots::EXTRA.iter().map(|s| s.to_string()))
        .collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let message = messages
            .get(&name)
            .ok_or_else(|| format!("no k8s-pb message {name}"))?;
        todo.extend(message.fields.iter().filter_map(|f| f.message.clone()));
    }
    Ok(seen)
}

/// The source directory of a dependency of the kstress workspace, at the
/// version its lock file pins.
fn package_dir(workspace: &Path, name: &str) -> Result<PathBuf, Error> {
    // Only the host's dependencies: the others may not be downloaded.
    let host = std::process::Command::new("rustc").arg("-vV").output()?;
    let host = String::from_utf8(host.stdout)?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or("rustc -vV names no host")?;
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or_else(|| format!("{name} is not a dependency of the workspace"))?;
    Ok(Path::new(manifest)
        .parent()
        .ok_or("manifest path has no parent")?
        .to_path_buf())
}
