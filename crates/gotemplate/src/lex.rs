//! Splits a template into text and actions, and an action into tokens.
//!
//! Trim markers are applied here: `{{- ` removes the white space before
//! the action, ` -}}` the white space after it, as Go does. Comments
//! (`{{/* ... */}}`) vanish, trim markers included.

use crate::Error;

/// A piece of a template: literal text, or the inside of one `{{ }}`.
#[derive(Debug)]
pub(crate) enum Item {
    Text(String),
    Action { tokens: Vec<Token>, line: usize },
}

/// One token of an action.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// `.` on its own.
    Dot,
    /// `.Name`: a field of whatever precedes it (or of dot).
    Field(String),
    /// `$` or `$name`.
    Variable(String),
    /// A function name or keyword.
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    LParen,
    RParen,
    Pipe,
    Comma,
    Declare,
    Assign,
}

/// A token, with whether white space came before it: `$x.Field` is a
/// field of `$x`, `$x .Field` two arguments.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub spaced: bool,
}

/// The items of `text`.
pub(crate) fn items(name: &str, text: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut rest = text;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            push_text(&mut items, rest, trim_next, false);
            break;
        };
        let before = &rest[..open];
        let after_open = &rest[open + 2..];
        let trim_before = after_open.starts_with("- ")
            || after_open.starts_with("-\t")
            || after_open.starts_with("-\n")
            || after_open.starts_with("-\r");
        push_text(&mut items, before, trim_next, trim_before);
        line += before.matches('\n').count();
        let body_start = if trim_before { 2 } else { 0 };
        let body = &after_open[body_start..];
        let (inner, trim_after, consumed) = action_body(name, body, line)?;
        let action_line = line;
        line += after_open[..body_start + consumed].matches('\n').count();
        rest = &after_open[body_start + consumed..];
        trim_next = trim_after;
        let trimmed = inner.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(Error::parse(name, action_line, "unclosed comment"));
            }
            continue;
        }
        let tokens = tokens(name, inner, action_line)?;
        items.push(Item::Action {
            tokens,
            line: action_line,
        });
    }
    Ok(items)
}

fn push_text(items: &mut Vec<Item>, text: &str, trim_start: bool, trim_end: bool) {
    let mut text = text;
    if trim_start {
        text = text.trim_start_matches([' ', '\t', '\n', '\r']);
    }
    if trim_end {
        text = text.trim_end_matches([' ', '\t', '\n', '\r']);
    }
    if !text.is_empty() {
        items.push(Item::Text(text.to_owned()));
    }
}

/// The inside of an action up to its `}}` (strings and comments may hold
/// braces), whether it ends with a trim marker, and the bytes consumed.
fn action_body<'a>(
    name: &str,
    body: &'a str,
    line: usize,
) -> Result<(&'a str, bool, usize), Error> {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'`' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= bytes.len() {
                    return Err(Error::parse(name, line, "unterminated quoted string"));
                }
                i += 1;
            }
            b'/' if body[i..].starts_with("/*") => match body[i + 2..].find("*/") {
                Some(end) => i += end + 4,
                None => return Err(Error::parse(name, line, "unclosed comment")),
            },
            b'}' if body[i..].starts_with("}}") => {
                let inner = &body[..i];
                let trimmed = inner.ends_with(" -")
                    || inner.ends_with("\t-")
                    || inner.ends_with("\n-")
                    || inner.ends_with("\r-");
                let inner = if trimmed {
                    &inner[..inner.len() - 1]
                } else {
                    inner
                };
                return Ok((inner, trimmed, i + 2));
            }
            _ => i += 1,
        }
    }
    Err(Error::parse(name, line, "unclosed action"))
}

fn tokens(name: &str, text: &str, line: usize) -> Result<Vec<Token>, Error> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut spaced = true;
    let err = |message: String| Error::parse(name, line, message);
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            spaced = true;
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '|' => {
                i += 1;
                Tok::Pipe
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Declare
            }
            '=' => {
                i += 1;
                Tok::Assign
            }
            '"' => {
                let (s, end) = quoted(&chars, i).map_err(err)?;
                i = end;
                Tok::Str(s)
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or_else(|| err("unterminated raw quoted string".into()))?;
                let s: String = chars[i + 1..i + 1 + end].iter().collect();
                i += end + 2;
                Tok::Str(s)
            }
            '\'' => {
                let (s, end) = quoted(&chars, i).map_err(err)?;
                let mut it = s.chars();
                let (Some(ch), None) = (it.next(), it.next()) else {
                    return Err(err(format!("malformed character constant: {s:?}")));
                };
                i = end;
                Tok::Int(i64::from(u32::from(ch)))
            }
            '.' if chars.get(i + 1).is_some_and(|c| is_ident(*c)) => {
                i += 1;
                let word = word(&chars, &mut i);
                Tok::Field(word)
            }
            '.' if chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                number(&chars, &mut i).map_err(err)?
            }
            '.' => {
                i += 1;
                Tok::Dot
            }
            '$' => {
                i += 1;
                Tok::Variable(word(&chars, &mut i))
            }
            '-' | '+'
                if chars
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.') =>
            {
                number(&chars, &mut i).map_err(err)?
            }
            c if c.is_ascii_digit() => number(&chars, &mut i).map_err(err)?,
            c if is_ident(c) => {
                let word = word(&chars, &mut i);
                match word.as_str() {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(word),
                }
            }
            other => return Err(err(format!("unexpected {other:?} in command"))),
        };
        debug_assert!(i > start);
        out.push(Token { tok, spaced });
        spaced = false;
    }
    Ok(out)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn word(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    while *i < chars.len() && is_ident(chars[*i]) {
        *i += 1;
    }
    chars[start..*i].iter().collect()
}

fn number(chars: &[char], i: &mut usize) -> Result<Tok, String> {
    let start = *i;
    if matches!(chars[*i], '+' | '-') {
        *i += 1;
    }
    while *i < chars.len()
        && (chars[*i].is_ascii_alphanumeric()
            || chars[*i] == '.'
            || chars[*i] == '_'
            || (matches!(chars[*i], '+' | '-') && matches!(chars[*i - 1], 'e' | 'E')))
    {
        *i += 1;
    }
    let text: String = chars[start..*i].iter().filter(|c| **c != '_').collect();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    let radix = [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ]
    .iter()
    .find_map(|(prefix, radix)| digits.strip_prefix(prefix).map(|rest| (rest, *radix)));
    if let Some((rest, radix)) = radix {
        let value =
            i64::from_str_radix(rest, radix).map_err(|_| format!("bad number syntax: {text:?}"))?;
        return Ok(Tok::Int(if negative { -value } else { value }));
    }
    if let Ok(value) = text.parse::<i64>() {
        return Ok(Tok::Int(value));
    }
    text.parse::<f64>()
        .map(Tok::Float)
        .map_err(|_| format!("bad number syntax: {text:?}"))
}

/// A double- or single-quoted string starting at `start`, with Go's
/// escapes; returns it and the index after the closing quote.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((out, i + 1));
        }
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let escape = chars
            .get(i + 1)
            .copied()
            .ok_or("unterminated quoted string")?;
        i += 2;
        let simple = match escape {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            '\'' => Some('\''),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        let digits = match escape {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            other => return Err(format!("unknown escape sequence: \\{other}")),
        };
        let hex: String = chars
            .get(i..i + digits)
            .ok_or("short escape sequence")?
            .iter()
            .collect();
        let code = u32::from_str_radix(&hex, 16)
            .map_err(|_| format!("bad escape sequence: \\{escape}{hex}"))?;
        out.push(
            char::from_u32(code).ok_or_else(|| format!("bad escape sequence: \\{escape}{hex}"))?,
        );
        i += digits;
    }
    Err("unterminated quoted string".into())
}
