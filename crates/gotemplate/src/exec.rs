//! Walks a template's tree over JSON data and writes its output.

use std::collections::HashMap;

use serde_json::Value;

use crate::parse::{Branch, Node, Operand, Pipeline};
use crate::{Error, MissingKey, format, funcs};

/// How deep `{{template}}` calls may nest: a template that includes itself
/// fails instead of overflowing the stack.
const MAX_DEPTH: usize = 100;

/// How many nodes one rendering may execute, and how much it may write:
/// nested ranges over large numbers end with an error, not a hang.
const MAX_STEPS: u64 = 10_000_000;
const MAX_OUTPUT_BYTES: usize = 64 << 20;

/// The largest integer `range` counts to.
const MAX_RANGE: i64 = 1_000_000;

pub(crate) struct Exec<'a> {
    pub name: &'a str,
    pub defines: &'a HashMap<String, Vec<Node>>,
    pub missing: MissingKey,
    pub vars: Vec<(String, Value)>,
    pub out: String,
    pub depth: usize,
    pub steps: u64,
}

/// What a list of nodes asks of its enclosing `range`.
enum Flow {
    Normal,
    Break,
    Continue,
}

impl Exec<'_> {
    fn err(&self, line: usize, message: impl Into<String>) -> Error {
        Error::exec(self.name, line, message)
    }

    pub fn run(&mut self, nodes: &[Node], dot: &Value) -> Result<(), Error> {
        self.nodes(nodes, dot).map(|_| ())
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, Error> {
        for node in nodes {
            match self.node(node, dot)? {
                Flow::Normal => {}
                flow => return Ok(flow),
            }
        }
        Ok(Flow::Normal)
    }

    fn node(&mut self, node: &Node, dot: &Value) -> Result<Flow, Error> {
        self.steps += 1;
        if self.steps > MAX_STEPS || self.out.len() > MAX_OUTPUT_BYTES {
            return Err(self.err(
                line_of(node),
                "the template does too much work: over ten million steps or 64 MiB of output",
            ));
        }
        match node {
            Node::Text(text) => self.out.push_str(text),
            Node::Action { pipe, line } => {
                let value = self.pipeline(pipe, dot, *line)?;
                if pipe.vars.is_empty() {
                    self.out.push_str(&format::print(&value));
                }
            }
            Node::If(branch) => return self.scoped(|exec| exec.if_with(branch, dot, false)),
            Node::With(branch) => return self.scoped(|exec| exec.if_with(branch, dot, true)),
            Node::Range(branch) => return self.scoped(|exec| exec.range(branch, dot)),
            Node::Template { name, pipe, line } => {
                let body = self
                    .defines
                    .get(name)
                    .ok_or_else(|| self.err(*line, format!("no such template {name:?}")))?;
                let data = match pipe {
                    Some(pipe) => self.pipeline(pipe, dot, *line)?,
                    None => Value::Null,
                };
                if self.depth >= MAX_DEPTH {
                    return Err(self.err(
                        *line,
                        format!("exceeded maximum template depth ({MAX_DEPTH})"),
                    ));
                }
                // A called template sees only its own `$`.
                let saved = std::mem::replace(&mut self.vars, vec![("".into(), data.clone())]);
                self.depth += 1;
                let result = self.run(body, &data);
                self.depth -= 1;
                self.vars = saved;
                result?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    /// Runs `f` with variables declared inside it dropped afterwards.
    fn scoped(&mut self, f: impl FnOnce(&mut Self) -> Result<Flow, Error>) -> Result<Flow, Error> {
        let mark = self.vars.len();
        let result = f(self);
        self.vars.truncate(mark);
        result
    }

    fn if_with(&mut self, branch: &Branch, dot: &Value, with: bool) -> Result<Flow, Error> {
        let value = self.pipeline(&branch.pipe, dot, branch.line)?;
        if format::truthy(&value) {
            let dot = if with { &value } else { dot };
            self.nodes(&branch.body, dot)
        } else {
            self.nodes(&branch.otherwise, dot)
        }
    }

    fn range(&mut self, branch: &Branch, dot: &Value) -> Result<Flow, Error> {
        let pipe = Pipeline {
            vars: Vec::new(),
            assign: false,
            commands: branch.pipe.commands.clone(),
        };
        let value = self.pipeline(&pipe, dot, branch.line)?;
        let entries: Vec<(Value, Value)> = match &value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i), v.clone()))
                .collect(),
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| (Value::from(k.clone()), map[k].clone()))
                    .collect()
            }
            Value::Number(n) if n.as_i64().is_some() => {
                let count = n.as_i64().unwrap_or_default();
                if count > MAX_RANGE {
                    return Err(self.err(
                        branch.line,
                        format!("range over {count}: at most {MAX_RANGE} iterations"),
                    ));
                }
                (0..count)
                    .map(|i| (Value::from(i), Value::from(i)))
                    .collect()
            }
            Value::Null => Vec::new(),
            other => {
                return Err(self.err(
                    branch.line,
                    format!("range can't iterate over {}", format::print(other)),
                ));
            }
        };
        if entries.is_empty() {
            return self.nodes(&branch.otherwise, dot);
        }
        let mark = self.vars.len();
        for (key, element) in entries {
            self.vars.truncate(mark);
            match branch.pipe.vars.as_slice() {
                [] => {}
                [v] => self.vars.push((v.clone(), element.clone())),
                [k, v, ..] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), element.clone()));
                }
            }
            match self.nodes(&branch.body, &element)? {
                Flow::Break => break,
                Flow::Continue | Flow::Normal => {}
            }
        }
        Ok(Flow::Normal)
    }

    fn pipeline(&mut self, pipe: &Pipeline, dot: &Value, line: usize) -> Result<Value, Error> {
        let mut value: Option<Value> = None;
        for command in &pipe.commands {
            value = Some(self.command(command, dot, value, line)?);
        }
        let value = value.unwrap_or_default();
        for name in &pipe.vars {
            if pipe.assign {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| {
                        Error::exec(self.name, line, format!("undefined variable: ${name}"))
                    })?;
                slot.1 = value.clone();
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn command(
        &mut self,
        command: &[Operand],
        dot: &Value,
        piped: Option<Value>,
        line: usize,
    ) -> Result<Value, Error> {
        if let Operand::Function(name) = &command[0] {
            return self.call(name, &command[1..], dot, piped, line);
        }
        if command.len() > 1 || piped.is_some() {
            return Err(self.err(line, "can't give argument to non-function"));
        }
        self.operand(&command[0], dot, line)
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Operand],
        dot: &Value,
        piped: Option<Value>,
        line: usize,
    ) -> Result<Value, Error> {
        // `and` and `or` stop at the first argument that decides them.
        if name == "and" || name == "or" {
            let mut last = Value::Null;
            let count = args.len() + usize::from(piped.is_some());
            if count == 0 {
                return Err(self.err(
                    line,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            for arg in args {
                last = self.operand(arg, dot, line)?;
                if format::truthy(&last) != (name == "and") {
                    return Ok(last);
                }
            }
            if let Some(piped) = piped {
                last = piped;
            }
            return Ok(last);
        }
        let function = funcs::lookup(name)
            .ok_or_else(|| self.err(line, format!("function {name:?} not defined")))?;
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.operand(arg, dot, line)?);
        }
        values.extend(piped);
        function(&values)
            .map_err(|message| self.err(line, format!("error calling {name}: {message}")))
    }

    fn operand(&mut self, operand: &Operand, dot: &Value, line: usize) -> Result<Value, Error> {
        match operand {
            Operand::Dot => Ok(dot.clone()),
            Operand::Literal(value) => Ok(value.clone()),
            Operand::Fields(chain) => self.fields(dot, chain, line),
            Operand::Variable(name, chain) => {
                let value = if name.is_empty() {
                    self.vars.first().map(|(_, v)| v.clone())
                } else {
                    self.vars
                        .iter()
                        .rev()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                }
                .ok_or_else(|| self.err(line, format!("undefined variable: ${name}")))?;
                self.fields(&value, chain, line)
            }
            Operand::Function(name) => self.call(name, &[], dot, None, line),
            Operand::Group(pipe, chain) => {
                let value = self.pipeline(pipe, dot, line)?;
                self.fields(&value, chain, line)
            }
        }
    }

    fn fields(&self, value: &Value, chain: &[String], line: usize) -> Result<Value, Error> {
        let mut current = value.clone();
        for name in chain {
            current = match current {
                Value::Object(mut map) => match map.remove(name) {
                    Some(value) => value,
                    None if self.missing == MissingKey::Zero => Value::Null,
                    None => {
                        return Err(self.err(line, format!("map has no entry for key {name:?}")));
                    }
                },
                Value::Null if self.missing == MissingKey::Zero => Value::Null,
                Value::Null => {
                    return Err(self.err(line, format!("nil data; no entry for key {name:?}")));
                }
                other => {
                    return Err(self.err(
                        line,
                        format!(
                            "can't evaluate field {name} in type {}",
                            format::type_name(&other)
                        ),
                    ));
                }
            };
        }
        Ok(current)
    }
}

/// The line a node starts on, for errors; text has none of its own.
fn line_of(node: &Node) -> usize {
    match node {
        Node::Action { line, .. } | Node::Template { line, .. } => *line,
        Node::If(branch) | Node::With(branch) | Node::Range(branch) => branch.line,
        Node::Text(_) | Node::Break | Node::Continue => 0,
    }
}
