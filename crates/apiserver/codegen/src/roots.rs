//! The messages the server transcodes: every kind whose k8s-openapi type a
//! file in `crates/apiserver/src/kinds` names as its schema, with the
//! kind's list, and the few messages of the API machinery itself.

use std::path::Path;

use crate::Error;

/// A kind the server serves.
pub struct Root {
    pub kind: String,
    pub message: String,
    pub list: String,
}

/// Messages of the API machinery (request options, errors) and the
/// pods/binding body. (Watch events are written by hand: their object is
/// an envelope, not a message of the table.)
pub const EXTRA: &[&str] = &[
    "k8s.io.api.core.v1.Binding",
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Status",
];

const MARKER: &str = "type_schema::<k8s_openapi::";

pub fn from_kinds(dir: &Path) -> Result<Vec<Root>, Error> {
    let mut roots = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    files.sort_by_key(|e| e.file_name());
    for file in files {
        let text = std::fs::read_to_string(file.path())?;
        for (_, rest) in text.match_indices(MARKER).map(|(i, _)| text.split_at(i)) {
            let path = &rest[MARKER.len()..];
            let path = &path[..path.find('>').ok_or("unterminated type_schema")?];
            let mut segments: Vec<String> = path.split("::").map(str::to_string).collect();
            let kind = segments.pop().ok_or("empty type path")?;
            let message = crate::prost_source::proto_name(&segments, &kind);
            let list = format!("{message}List");
            roots.push(Root {
                kind,
                message,
                list,
            });
        }
    }
    if roots.is_empty() {
        return Err(format!("no kinds found in {}", dir.display()).into());
    }
    roots.sort_by(|a, b| a.message.cmp(&b.message));
    roots.dedup_by(|a, b| a.message == b.message);
    Ok(roots)
}
