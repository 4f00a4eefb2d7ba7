//! Which scalar fields keep their zero value in JSON.
//!
//! Upstream's protobuf encoder writes every non-pointer field of a Go
//! struct, zero or not, while its JSON encoder drops the zero values of
//! fields tagged `omitempty`. So a zero scalar read from the wire stands
//! for "absent" unless the Go field is a pointer (`replicas: 0` was set) or
//! has no `omitempty` (`containerPort` is always shown). `presence.txt`
//! lists those fields, one `message tag name` a line, read from the Go
//! types of kubernetes/api, apimachinery and apiextensions-apiserver.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::Error;
use crate::prost_source::Message;

/// (proto message name, field tag).
pub type Kept = BTreeSet<(String, u32)>;

/// The fields of the Go structs under `dir` (one checkout per repository,
/// named as the repository) whose zero value JSON shows.
pub fn from_go(dir: &Path) -> Result<Kept, Error> {
    let mut kept = Kept::new();
    for repo in ["api", "apimachinery", "apiextensions-apiserver"] {
        let package = format!("k8s.io.{}", repo.replace('-', "_"));
        walk(&dir.join(repo), &package, &mut kept)?;
    }
    if kept.is_empty() {
        return Err(format!("no Go types under {}", dir.display()).into());
    }
    Ok(kept)
}

fn walk(dir: &Path, package: &str, kept: &mut Kept) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if name != "testdata" && !name.starts_with('.') {
                walk(&path, &format!("{package}.{name}"), kept)?;
            }
        } else if name.ends_with(".go") && !name.ends_with("_test.go") {
            structs(&std::fs::read_to_string(&path)?, package, kept);
        }
    }
    Ok(())
}

/// Records the fields of each `type X struct { ... }` in one Go file.
fn structs(text: &str, package: &str, kept: &mut Kept) {
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("type ")
            && let Some(name) = rest.strip_suffix(" struct {")
        {
            current = Some(format!("{package}.{}", name.trim()));
            continue;
        }
        if line == "}" {
            current = None;
            continue;
        }
        let Some(message) = &current else { continue };
        let Some((decl, tags)) = line.trim().split_once('`') else {
            continue;
        };
        let mut words = decl.split_whitespace();
        let (Some(_), Some(go_type)) = (words.next(), words.next()) else {
            continue;
        };
        let (Some(json), Some(proto)) = (tag(tags, "json"), tag(tags, "protobuf")) else {
            continue;
        };
        let Some(number) = proto.split(',').nth(1).and_then(|n| n.parse().ok()) else {
            continue;
        };
        if go_type.starts_with('*') || !json.split(',').any(|o| o == "omitempty") {
            kept.insert((message.clone(), number));
        }
    }
}

/// The value of one key of a Go struct tag: `json:"name,omitempty"`.
fn tag<'a>(tags: &'a str, key: &str) -> Option<&'a str> {
    let start = tags.find(&format!("{key}:\""))? + key.len() + 2;
    let len = tags[start..].find('"')?;
    Some(&tags[start..start + len])
}

/// Writes the kept scalar fields of the reachable messages.
pub fn write(
    file: &Path,
    messages: &BTreeMap<String, Message>,
    reachable: &BTreeSet<String>,
    kept: &Kept,
) -> Result<(), Error> {
    let mut text = String::from(
        "# Scalar fields whose zero value upstream's JSON shows (Go pointers and\n\
         # fields without omitempty): message, tag, k8s-pb field. Written by\n\
         # `apiserver-codegen --go-types DIR` from the Go types at v1.33.\n",
    );
    for name in reachable {
        for field in &messages[name].fields {
            if field.message.is_none()
                && !field.repeated
                && !field.map
                && kept.contains(&(name.clone(), field.tag))
            {
                text.push_str(&format!("{name} {} {}\n", field.tag, field.rust_name));
            }
        }
    }
    std::fs::write(file, text)?;
    Ok(())
}

pub fn read(file: &Path) -> Result<Kept, Error> {
    let text = std::fs::read_to_string(file)
        .map_err(|err| format!("{}: {err} (run with --go-types)", file.display()))?;
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut words = l.split_whitespace();
            match (words.next(), words.next().and_then(|t| t.parse().ok())) {
                (Some(message), Some(tag)) => Ok((message.to_string(), tag)),
                _ => Err(format!("bad line in {}: {l}", file.display()).into()),
            }
        })
        .collect()
}
