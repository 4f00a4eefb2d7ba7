//! Builds the tree of a template from its items: control structures
//! (`if`, `range`, `with`, `define`, `block`, `template`) and pipelines.

use std::collections::HashMap;

use crate::Error;
use crate::lex::{Item, Tok, Token};

#[derive(Clone, Debug)]
pub(crate) enum Node {
    Text(String),
    /// `{{pipeline}}`: printed unless it declares variables.
    Action {
        pipe: Pipeline,
        line: usize,
    },
    If(Branch),
    With(Branch),
    Range(Branch),
    /// `{{template "name" pipeline}}`.
    Template {
        name: String,
        pipe: Option<Pipeline>,
        line: usize,
    },
    Break,
    Continue,
}

/// The shared shape of `if`, `with` and `range`.
#[derive(Clone, Debug)]
pub(crate) struct Branch {
    pub pipe: Pipeline,
    pub body: Vec<Node>,
    pub otherwise: Vec<Node>,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Pipeline {
    /// Variables declared (`:=`) or assigned (`=`) from the result.
    pub vars: Vec<String>,
    pub assign: bool,
    pub commands: Vec<Vec<Operand>>,
}

#[derive(Clone, Debug)]
pub(crate) enum Operand {
    Dot,
    /// Field chain on dot: `.A.B`.
    Fields(Vec<String>),
    /// `$name` with a field chain.
    Variable(String, Vec<String>),
    Function(String),
    /// A parenthesized pipeline with a field chain.
    Group(Box<Pipeline>, Vec<String>),
    Literal(serde_json::Value),
}

/// A parsed template: its main body and the templates it defines.
pub(crate) struct Parsed {
    pub body: Vec<Node>,
    pub defines: HashMap<String, Vec<Node>>,
}

pub(crate) fn parse(name: &str, items: Vec<Item>) -> Result<Parsed, Error> {
    let mut parser = Parser {
        name,
        items: items.into_iter().peekable(),
        defines: HashMap::new(),
        loops: 0,
    };
    let (body, end) = parser.list()?;
    if let Some((keyword, line)) = end {
        return Err(Error::parse(
            name,
            line,
            format!("unexpected {{{{{keyword}}}}}"),
        ));
    }
    Ok(Parsed {
        body,
        defines: parser.defines,
    })
}

struct Parser<'a> {
    name: &'a str,
    items: std::iter::Peekable<std::vec::IntoIter<Item>>,
    defines: HashMap<String, Vec<Node>>,
    /// Depth of enclosing `range`s: `break` and `continue` need one.
    loops: usize,
}

/// How a list ended: `end` or `else` (with the rest of that action).
type End = Option<(String, usize)>;

impl Parser<'_> {
    fn err(&self, line: usize, message: impl Into<String>) -> Error {
        Error::parse(self.name, line, message)
    }

    /// Nodes up to an `{{end}}` or `{{else ...}}`, which is returned (an
    /// `else` with the tokens after it pushed back as a new action).
    fn list(&mut self) -> Result<(Vec<Node>, End), Error> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (tokens, line) = match item {
                Item::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Item::Action { tokens, line } => (tokens, line),
            };
            let keyword = match tokens.first().map(|t| &t.tok) {
                Some(Tok::Ident(word)) => word.clone(),
                None => return Err(self.err(line, "missing value for command")),
                _ => String::new(),
            };
            let rest = tokens[1.min(tokens.len())..].to_vec();
            match keyword.as_str() {
                "end" => {
                    if !rest.is_empty() {
                        return Err(self.err(line, "unexpected tokens after end"));
                    }
                    return Ok((nodes, Some(("end".into(), line))));
                }
                "else" => {
                    // `else if ...` / `else with ...`: the rest opens a nested
                    // branch that shares this one's end.
                    if !rest.is_empty() {
                        let mut items: Vec<Item> = vec![Item::Action { tokens: rest, line }];
                        items.extend(self.items.by_ref());
                        self.items = items.into_iter().peekable();
                        return Ok((nodes, Some(("else-chain".into(), line))));
                    }
                    return Ok((nodes, Some(("else".into(), line))));
                }
                "if" | "with" | "range" => {
                    let node = self.branch(&keyword, rest, line)?;
                    nodes.push(node);
                }
                "define" | "block" => {
                    let (name, pipe) = self.template_header(&keyword, rest, line)?;
                    let (body, end) = self.list()?;
                    if end.as_ref().map(|(k, _)| k.as_str()) != Some("end") {
                        return Err(self.err(line, format!("unexpected EOF in {keyword}")));
                    }
                    self.defines.insert(name.clone(), body);
                    if keyword == "block" {
                        nodes.push(Node::Template { name, pipe, line });
                    }
                }
                "template" => {
                    let (name, pipe) = self.template_header("template", rest, line)?;
                    nodes.push(Node::Template { name, pipe, line });
                }
                "break" | "continue" => {
                    if self.loops == 0 {
                        return Err(
                            self.err(line, format!("{{{{{keyword}}}}} outside {{{{range}}}}"))
                        );
                    }
                    nodes.push(if keyword == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                _ => {
                    let pipe = self.pipeline(&tokens, line, false)?;
                    nodes.push(Node::Action { pipe, line });
                }
            }
        }
        Ok((nodes, None))
    }

    fn branch(&mut self, keyword: &str, tokens: Vec<Token>, line: usize) -> Result<Node, Error> {
        let pipe = self.pipeline(&tokens, line, keyword == "range")?;
        if keyword == "range" {
            self.loops += 1;
        }
        let listed = self.list();
        if keyword == "range" {
            self.loops -= 1;
        }
        let (body, end) = listed?;
        let otherwise = match end {
            Some((ref k, _)) if k == "end" => Vec::new(),
            Some((ref k, _)) if k == "else" => {
                let (otherwise, end) = self.list()?;
                if end.as_ref().map(|(k, _)| k.as_str()) != Some("end") {
                    return Err(self.err(line, format!("expected end; found {end:?} in {keyword}")));
                }
                otherwise
            }
            Some((ref k, _)) if k == "else-chain" => {
                // The pushed-back action is `if ...` or `with ...`; its own
                // end closes this branch too.
                let (chained, end) = self.list_one()?;
                if end.is_some() {
                    return Err(self.err(line, format!("unexpected end in {keyword}")));
                }
                chained
            }
            _ => return Err(self.err(line, format!("unexpected EOF in {keyword}"))),
        };
        let branch = Branch {
            pipe,
            body,
            otherwise,
            line,
        };
        Ok(match keyword {
            "if" => Node::If(branch),
            "with" => Node::With(branch),
            _ => Node::Range(branch),
        })
    }

    /// The one node of an `else if` / `else with` chain.
    fn list_one(&mut self) -> Result<(Vec<Node>, End), Error> {
        let Some(Item::Action { tokens, line }) = self.items.next() else {
            return Err(self.err(0, "malformed else"));
        };
        match tokens.first().map(|t| &t.tok) {
            Some(Tok::Ident(word)) if word == "if" || word == "with" => {
                let keyword = word.clone();
                let node = self.branch(&keyword, tokens[1..].to_vec(), line)?;
                Ok((vec![node], None))
            }
            _ => Err(self.err(line, "else may only be followed by if or with")),
        }
    }

    fn template_header(
        &self,
        keyword: &str,
        tokens: Vec<Token>,
        line: usize,
    ) -> Result<(String, Option<Pipeline>), Error> {
        let Some(Token {
            tok: Tok::Str(name),
            ..
        }) = tokens.first()
        else {
            return Err(self.err(line, format!("missing template name in {keyword}")));
        };
        let pipe = if tokens.len() > 1 {
            if keyword == "define" {
                return Err(self.err(line, "unexpected tokens after define name"));
            }
            Some(self.pipeline(&tokens[1..], line, false)?)
        } else {
            None
        };
        Ok((name.clone(), pipe))
    }

    fn pipeline(&self, tokens: &[Token], line: usize, range: bool) -> Result<Pipeline, Error> {
        let mut at = 0;
        let mut vars = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, or in range `$i, $v :=`.
        let declared = |at: usize| {
            matches!(tokens.get(at).map(|t| &t.tok), Some(Tok::Variable(_)))
                && matches!(
                    tokens.get(at + 1).map(|t| &t.tok),
                    Some(Tok::Declare | Tok::Assign | Tok::Comma)
                )
        };
        if declared(0) {
            loop {
                let Some(Tok::Variable(name)) = tokens.get(at).map(|t| &t.tok) else {
                    return Err(self.err(line, "expected a variable in declaration"));
                };
                vars.push(name.clone());
                match tokens.get(at + 1).map(|t| &t.tok) {
                    Some(Tok::Comma) if range && vars.len() < 2 => at += 2,
                    Some(Tok::Declare) => {
                        at += 2;
                        break;
                    }
                    Some(Tok::Assign) => {
                        assign = true;
                        at += 2;
                        break;
                    }
                    _ => return Err(self.err(line, "too many declarations in command")),
                }
            }
        }
        let (pipe, used) = self.commands(&tokens[at..], line)?;
        if used != tokens.len() - at {
            return Err(self.err(line, "unexpected \")\" in command"));
        }
        Ok(Pipeline {
            vars,
            assign,
            commands: pipe,
        })
    }

    /// Commands separated by `|`, up to an unmatched `)` or the end;
    /// returns them and the tokens used.
    fn commands(&self, tokens: &[Token], line: usize) -> Result<(Vec<Vec<Operand>>, usize), Error> {
        let mut commands = Vec::new();
        let mut command = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let token = &tokens[i];
            match &token.tok {
                Tok::RParen => break,
                Tok::Pipe => {
                    if command.is_empty() {
                        return Err(self.err(line, "missing command before |"));
                    }
                    commands.push(std::mem::take(&mut command));
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let (operand, used) = self.operand(&tokens[i..], line)?;
            command.push(operand);
            i += used;
        }
        if command.is_empty() {
            return Err(self.err(line, "missing value for command"));
        }
        commands.push(command);
        Ok((commands, i))
    }

    /// One operand with the field chain that follows it without space.
    fn operand(&self, tokens: &[Token], line: usize) -> Result<(Operand, usize), Error> {
        let mut used = 1;
        let operand = match &tokens[0].tok {
            Tok::Dot => Operand::Dot,
            Tok::Field(name) => Operand::Fields(vec![name.clone()]),
            Tok::Variable(name) => Operand::Variable(name.clone(), Vec::new()),
            Tok::Ident(name) => match name.as_str() {
                "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block" => {
                    return Err(self.err(line, format!("unexpected <{name}> in command")));
                }
                _ => Operand::Function(name.clone()),
            },
            Tok::Str(s) => Operand::Literal(s.clone().into()),
            Tok::Int(n) => Operand::Literal((*n).into()),
            Tok::Float(f) => Operand::Literal(
                serde_json::Number::from_f64(*f)
                    .map(serde_json::Value::Number)
                    .unwrap_or_default(),
            ),
            Tok::Bool(b) => Operand::Literal((*b).into()),
            Tok::Nil => Operand::Literal(serde_json::Value::Null),
            Tok::LParen => {
                let (commands, inner) = self.commands(&tokens[1..], line)?;
                if !matches!(tokens.get(1 + inner).map(|t| &t.tok), Some(Tok::RParen)) {
                    return Err(self.err(line, "unclosed left paren"));
                }
                used = inner + 2;
                Operand::Group(
                    Box::new(Pipeline {
                        vars: Vec::new(),
                        assign: false,
                        commands,
                    }),
                    Vec::new(),
                )
            }
            other => return Err(self.err(line, format!("unexpected {other:?} in operand"))),
        };
        let mut operand = operand;
        while let Some(Token {
            tok: Tok::Field(name),
            spaced: false,
        }) = tokens.get(used)
        {
            match &mut operand {
                Operand::Fields(chain) | Operand::Variable(_, chain) | Operand::Group(_, chain) => {
                    chain.push(name.clone());
                }
                Operand::Dot => operand = Operand::Fields(vec![name.clone()]),
                _ => return Err(self.err(line, format!("unexpected .{name} after a value"))),
            }
            used += 1;
        }
        Ok((operand, used))
    }
}
