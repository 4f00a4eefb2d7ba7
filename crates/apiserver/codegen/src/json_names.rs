//! JSON property names from k8s-openapi: its serde code spells each one as
//! upstream's Go json tag (`"podIP" => Field::Key_pod_ip`), which the snake
//! case Rust names of k8s-pb cannot be turned back into.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Error;

/// The JSON names of each k8s-openapi struct, keyed by module path and
/// struct name in lower case (`api/core/v1/podstatus`: k8s-pb spells
/// `AWSElasticBlockStoreVolumeSource` as `AwsElasticBlockStoreVolumeSource`).
pub type JsonNames = BTreeMap<String, Vec<String>>;

/// The names of every Kubernetes version k8s-openapi covers (`src/v1_33`,
/// `src/v1_34`, ...), merged: k8s-pb may be generated from a newer minor
/// than the one the server reports, and names never change between them.
pub fn parse(src: &Path) -> Result<JsonNames, Error> {
    let mut out = JsonNames::new();
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        if entry.path().is_dir() && entry.file_name().to_string_lossy().starts_with("v1_") {
            let mut names = JsonNames::new();
            walk(&entry.path(), &mut Vec::new(), &mut names)?;
            for (key, list) in names {
                let merged = out.entry(key).or_default();
                merged.extend(list);
                merged.sort();
                merged.dedup();
            }
        }
    }
    if out.is_empty() {
        return Err(format!("no k8s-openapi versions under {}", src.display()).into());
    }
    Ok(out)
}

pub fn key(module: &[String], name: &str) -> String {
    format!("{}/{}", module.join("/"), name.to_lowercase())
}

fn walk(dir: &Path, module: &mut Vec<String>, out: &mut JsonNames) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.is_dir() {
            module.push(entry.file_name().to_string_lossy().into_owned());
            walk(&path, module, out)?;
            module.pop();
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)?;
            let Some(name) = text
                .lines()
                .find_map(|l| l.strip_prefix("pub struct "))
                .and_then(|l| l.split(|c: char| !c.is_alphanumeric()).next())
            else {
                continue;
            };
            let names = text
                .lines()
                .filter_map(|l| {
                    let (json, rest) = l.trim().strip_prefix('"')?.split_once('"')?;
                    rest.trim_start()
                        .starts_with("=> Field::Key_")
                        .then(|| json.to_string())
                })
                .collect();
            out.insert(key(module, name), names);
        }
    }
    Ok(())
}

/// The JSON name among `names` that is `rust_name` with its underscores
/// removed, ignoring case and the JSON name's punctuation (`$ref`,
/// `x-kubernetes-list-type`); an error unless exactly one is.
pub fn matching(names: &[String], rust_name: &str) -> Result<String, Error> {
    let wanted = rust_name.replace('_', "").to_lowercase();
    let found: Vec<&String> = names
        .iter()
        .filter(|n| {
            let bare: String = n.chars().filter(|c| c.is_alphanumeric()).collect();
            bare.to_lowercase() == wanted
        })
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("no JSON name matches {rust_name}").into()),
        many => Err(format!("JSON names {many:?} all match {rust_name}").into()),
    }
}

/// lowerCamelCase of a snake case name, for messages k8s-openapi has no
/// struct for (lists, whose fields are `metadata` and `items`).
pub fn camel(rust_name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in rust_name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
