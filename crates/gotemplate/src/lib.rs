//! Go's text/template, as kube-burner's workload files use it, rendered
//! over JSON data.
//!
//! Scenario files and their object templates are written for kube-burner,
//! which renders them with Go's text/template and the sprig function
//! library; kstress must render the same files to the same text. No
//! maintained Rust crate does, so this is the subset those files need:
//!
//! - actions with trim markers (`{{-`, `-}}`) and comments;
//! - pipelines with `|`, parenthesized groups, field chains on dot,
//!   variables and groups (`.A.B`, `$x.A`, `(index . 0).A`), literals;
//! - `$x := ...`, `$x = ...`, `if`/`else if`/`else`, `with`/`else with`,
//!   `range` over lists, maps (sorted keys), integers, with `$i, $v :=`,
//!   `break` and `continue`; `define`, `template` and `block`;
//! - Go's built-in functions and the sprig functions listed in
//!   [`FUNCTIONS`].
//!
//! A missing map key is an error, as kube-burner renders by default
//! (`missingkey=error`), or prints `<no value>` with [`MissingKey::Zero`]
//! (kube-burner's `defaultMissingKeysWithZero`).

mod exec;
mod format;
mod funcs;
mod lex;
mod parse;

use std::collections::HashMap;

use serde_json::Value;

pub use funcs::NAMES as FUNCTIONS;

/// What a reference to a missing map key does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// Fails the rendering, naming the key.
    #[default]
    Error,
    /// Yields nil, which prints as `<no value>`.
    Zero,
}

/// A template that failed to parse or to render, with the template's
/// name and line.
#[derive(Debug, thiserror::Error)]
#[error("template {name}:{line}: {message}")]
pub struct Error {
    /// The template's name (its file).
    pub name: String,
    /// The line of the action at fault.
    pub line: usize,
    /// What went wrong.
    pub message: String,
}

impl Error {
    fn parse(name: &str, line: usize, message: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            line,
            message: message.into(),
        }
    }

    fn exec(name: &str, line: usize, message: impl Into<String>) -> Self {
        Self::parse(name, line, message)
    }
}

/// A parsed template and the templates it defines.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    body: Vec<parse::Node>,
    defines: HashMap<String, Vec<parse::Node>>,
}

impl Template {
    /// Parses `text`; `name` names it in errors.
    pub fn parse(name: &str, text: &str) -> Result<Self, Error> {
        let items = lex::items(name, text)?;
        let parsed = parse::parse(name, items)?;
        Ok(Self {
            name: name.to_owned(),
            body: parsed.body,
            defines: parsed.defines,
        })
    }

    /// Makes the templates `other` defines callable from this one (as
    /// kube-burner's `functionTemplates`).
    pub fn include(&mut self, other: &Template) {
        for (name, body) in &other.defines {
            self.defines
                .entry(name.clone())
                .or_insert_with(|| body.clone());
        }
    }

    /// Renders the template over `data`.
    pub fn render(&self, data: &Value, missing: MissingKey) -> Result<String, Error> {
        let mut exec = exec::Exec {
            name: &self.name,
            defines: &self.defines,
            missing,
            vars: vec![(String::new(), data.clone())],
            out: String::new(),
            depth: 0,
            steps: 0,
        };
        exec.run(&self.body, data)?;
        Ok(exec.out)
    }
}

/// Parses and renders `text` in one step.
pub fn render(name: &str, text: &str, data: &Value, missing: MissingKey) -> Result<String, Error> {
    Template::parse(name, text)?.render(data, missing)
}

#[cfg(test)]
mod tests;
