//! Where a scenario's files come from: a directory on disk (the scenario
//! file and the templates it names, relative to it) or the scenarios built
//! into the binary.

use std::path::{Path, PathBuf};

/// A built-in scenario: its files by path relative to the scenario file.
pub struct Builtin {
    pub name: &'static str,
    /// What the scenario models, for `kstress scenario list`.
    pub summary: &'static str,
    pub files: &'static [(&'static str, &'static str)],
}

impl Builtin {
    /// The scenario file itself.
    pub fn config(&self) -> &'static str {
        self.files[0].1
    }
}

macro_rules! builtin {
    ($name:literal, $summary:literal, [$($file:literal),* $(,)?]) => {
        Builtin {
            name: $name,
            summary: $summary,
            files: &[
                (concat!($name, ".yml"), include_str!(concat!("../scenarios/", $name, "/", $name, ".yml"))),
                $(($file, include_str!(concat!("../scenarios/", $name, "/", $file))),)*
            ],
        }
    };
}

/// The scenarios shipped in the binary.
pub static BUILTINS: &[Builtin] = &[
    builtin!(
        "node-density",
        "fills every node to its pod capacity with pause pods, one namespace, pods waited for Running",
        ["templates/pod.yml"]
    ),
    builtin!(
        "cluster-density",
        "per namespace: deployments with their services, configmaps and secrets mounted by the pods",
        [
            "templates/deployment.yml",
            "templates/service.yml",
            "templates/configmap.yml",
            "templates/secret.yml"
        ]
    ),
    builtin!(
        "api-intensive",
        "creates deployments and configmaps, patches them with JSON, merge and strategic-merge patches, reads them, deletes them by label",
        [
            "templates/deployment.yml",
            "templates/configmap.yml",
            "templates/patch-json.json",
            "templates/patch-merge.yml",
            "templates/patch-strategic.yml"
        ]
    ),
    builtin!(
        "density",
        "ClusterLoader2's density shape: 30 pods per node through deployments of 5, waited for Running",
        ["templates/deployment.yml"]
    ),
];

/// Finds a built-in scenario by name.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|builtin| builtin.name == name)
}

/// A scenario's files.
#[derive(Clone, Debug)]
pub enum Source {
    /// A scenario file on disk; templates are relative to its directory.
    File(PathBuf),
    /// A built-in scenario.
    Builtin(&'static str),
}

impl Source {
    /// A file path, or the name of a built-in scenario when no such file
    /// exists.
    pub fn find(name_or_path: &str) -> Result<Self, String> {
        let path = Path::new(name_or_path);
        if path.exists() {
            return Ok(Source::File(path.to_owned()));
        }
        if let Some(found) = builtin(name_or_path) {
            return Ok(Source::Builtin(found.name));
        }
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        Err(format!(
            "{name_or_path}: no such file, and no built-in scenario of that name (built-in: {})",
            names.join(", ")
        ))
    }

    /// How errors name the scenario file.
    pub fn display(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Builtin(name) => format!("{name} (built-in)"),
        }
    }

    /// The scenario's name: the built-in's, or the file's stem.
    pub fn name(&self) -> String {
        match self {
            Source::File(path) => path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into()),
            Source::Builtin(name) => (*name).to_owned(),
        }
    }

    /// The scenario file's text.
    pub fn config(&self) -> Result<String, String> {
        match self {
            Source::File(path) => std::fs::read_to_string(path)
                .map_err(|err| format!("{}: cannot read: {err}", path.display())),
            Source::Builtin(name) => builtin(name)
                .map(|b| b.config().to_owned())
                .ok_or_else(|| format!("no built-in scenario {name}")),
        }
    }

    /// A file the scenario names, relative to the scenario file; returns
    /// how errors should name it and its text.
    pub fn read(&self, relative: &str) -> Result<(String, String), String> {
        match self {
            Source::File(path) => {
                let base = path.parent().unwrap_or(Path::new("."));
                let full = base.join(relative);
                let shown = full.display().to_string();
                std::fs::read_to_string(&full)
                    .map(|text| (shown.clone(), text))
                    .map_err(|err| format!("{shown}: cannot read: {err}"))
            }
            Source::Builtin(name) => {
                let relative = relative.trim_start_matches("./");
                builtin(name)
                    .and_then(|b| b.files.iter().find(|(file, _)| *file == relative))
                    .map(|(file, text)| (format!("{name}/{file}"), (*text).to_owned()))
                    .ok_or_else(|| format!("{name} (built-in) has no file {relative}"))
            }
        }
    }
}
