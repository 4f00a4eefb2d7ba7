//! Label selectors: the `labelSelector` query syntax and metav1
//! LabelSelector objects, evaluated against `metadata.labels`.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::validation::{is_qualified_name, is_valid_label_value};

/// Why a selector could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One `key op values` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: BTreeSet<String>,
}

impl Requirement {
    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = labels.and_then(|l| l.get(&self.key)).and_then(Value::as_str);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.iter().next().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan { v > bound } else { v < bound }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = || self.values.iter().cloned().collect::<Vec<_>>().join(",");
        match self.operator {
            Operator::Equals => write!(f, "{}={}", self.key, values()),
            Operator::NotEquals => write!(f, "{}!={}", self.key, values()),
            Operator::In => write!(f, "{} in ({})", self.key, values()),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, values()),
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::GreaterThan => write!(f, "{}>{}", self.key, values()),
            Operator::LessThan => write!(f, "{}<{}", self.key, values()),
        }
    }
}

/// A conjunction of requirements; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the query-string syntax (`a=b,c!=d,e in (f,g),h,!i`).
    pub fn parse(input: &str) -> Result<LabelSelector, SelectorError> {
        let mut lexer = Lexer::new(input);
        let mut requirements = Vec::new();
        loop {
            match lexer.peek() {
                Token::End => break,
                _ => requirements.push(parse_requirement(&mut lexer)?),
            }
            match lexer.next() {
                Token::End => break,
                Token::Comma => {
                    if lexer.peek() == Token::End {
                        return Err(SelectorError("found '', expected: identifier after ','".into()));
                    }
                }
                other => {
                    return Err(SelectorError(format!("found '{other}', expected: ',' or 'end of string'")));
                }
            }
        }
        for r in &requirements {
            validate(r)?;
        }
        Ok(LabelSelector { requirements })
    }

    /// Converts a metav1 LabelSelector object (`matchLabels` and
    /// `matchExpressions`).
    pub fn from_label_selector_json(selector: &Value) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                let value = value
                    .as_str()
                    .ok_or_else(|| SelectorError(format!("matchLabels[{key}] must be a string")))?;
                requirements.push(Requirement {
                    key: key.clone(),
                    operator: Operator::Equals,
                    values: BTreeSet::from([value.to_string()]),
                });
            }
        }
        if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
            for expr in exprs {
                let key = expr.get("key").and_then(Value::as_str).unwrap_or("").to_string();
                let values: BTreeSet<String> = expr
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                let operator = match expr.get("operator").and_then(Value::as_str) {
                    Some("In") => Operator::In,
                    Some("NotIn") => Operator::NotIn,
                    Some("Exists") => Operator::Exists,
                    Some("DoesNotExist") => Operator::DoesNotExist,
                    other => {
                        return Err(SelectorError(format!(
                            "{:?} is not a valid label selector operator",
                            other.unwrap_or("")
                        )));
                    }
                };
                requirements.push(Requirement { key, operator, values });
            }
        }
        for r in &requirements {
            validate(r)?;
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether labels (an object's `metadata.labels`, if any) satisfy every
    /// requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

fn validate(r: &Requirement) -> Result<(), SelectorError> {
    if let Some(msg) = is_qualified_name(&r.key).into_iter().next() {
        return Err(SelectorError(format!("key: Invalid value: {:?}: {msg}", r.key)));
    }
    match r.operator {
        Operator::In | Operator::NotIn if r.values.is_empty() => {
            return Err(SelectorError(
                "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty".into(),
            ));
        }
        Operator::Equals | Operator::NotEquals if r.values.len() != 1 => {
            return Err(SelectorError("values: Invalid value: exact-match compatibility requires one single value".into()));
        }
        Operator::Exists | Operator::DoesNotExist if !r.values.is_empty() => {
            return Err(SelectorError("values: Invalid value: values set must be empty for exists and does not exist".into()));
        }
        Operator::GreaterThan | Operator::LessThan
            if r.values.len() != 1 || r.values.iter().any(|v| v.parse::<i64>().is_err()) =>
        {
            return Err(SelectorError("values: Invalid value: for 'Gt', 'Lt' operators, exactly one integer value is required".into()));
        }
        _ => {}
    }
    for v in &r.values {
        if let Some(msg) = is_valid_label_value(v).into_iter().next() {
            return Err(SelectorError(format!("values[0][{}]: Invalid value: {v:?}: {msg}", r.key)));
        }
    }
    Ok(())
}

fn parse_requirement(lexer: &mut Lexer<'_>) -> Result<Requirement, SelectorError> {
    let negated = lexer.peek() == Token::Not;
    if negated {
        lexer.next();
    }
    let key = match lexer.next() {
        Token::Ident(k) => k.to_string(),
        other => return Err(SelectorError(format!("found '{other}', expected: identifier"))),
    };
    if negated {
        return Ok(Requirement { key, operator: Operator::DoesNotExist, values: BTreeSet::new() });
    }
    let operator = match lexer.peek() {
        Token::Comma | Token::End => {
            return Ok(Requirement { key, operator: Operator::Exists, values: BTreeSet::new() });
        }
        Token::Eq | Token::DoubleEq => Operator::Equals,
        Token::NotEq => Operator::NotEquals,
        Token::Gt => Operator::GreaterThan,
        Token::Lt => Operator::LessThan,
        Token::Ident("in") => Operator::In,
        Token::Ident("notin") => Operator::NotIn,
        other => {
            return Err(SelectorError(format!(
                "found '{other}', expected: in, notin, =, ==, !=, gt, lt"
            )));
        }
    };
    lexer.next();
    let values = match operator {
        Operator::In | Operator::NotIn => parse_value_set(lexer)?,
        _ => match lexer.peek() {
            Token::Ident(v) => {
                lexer.next();
                BTreeSet::from([v.to_string()])
            }
            Token::Comma | Token::End => BTreeSet::from([String::new()]),
            other => return Err(SelectorError(format!("found '{other}', expected: identifier"))),
        },
    };
    Ok(Requirement { key, operator, values })
}

fn parse_value_set(lexer: &mut Lexer<'_>) -> Result<BTreeSet<String>, SelectorError> {
    match lexer.next() {
        Token::Open => {}
        other => return Err(SelectorError(format!("found '{other}', expected: '('"))),
    }
    let mut values = BTreeSet::new();
    loop {
        match lexer.next() {
            Token::Ident(v) => {
                values.insert(v.to_string());
                match lexer.next() {
                    Token::Comma => continue,
                    Token::Close => return Ok(values),
                    other => return Err(SelectorError(format!("found '{other}', expected: ',' or ')'"))),
                }
            }
            Token::Close => {
                values.insert(String::new());
                return Ok(values);
            }
            Token::Comma => {
                values.insert(String::new());
            }
            other => return Err(SelectorError(format!("found '{other}', expected: identifier"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Ident(&'a str),
    Comma,
    Open,
    Close,
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    End,
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Token::Ident(s) => s,
            Token::Comma => ",",
            Token::Open => "(",
            Token::Close => ")",
            Token::Not => "!",
            Token::Eq => "=",
            Token::DoubleEq => "==",
            Token::NotEq => "!=",
            Token::Gt => ">",
            Token::Lt => "<",
            Token::End => "",
        })
    }
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str) -> Self {
        Lexer { input, pos: 0 }
    }

    fn peek(&mut self) -> Token<'a> {
        let saved = self.pos;
        let token = self.next();
        self.pos = saved;
        token
    }

    fn next(&mut self) -> Token<'a> {
        let rest = &self.input[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let mut take = |n: usize, t: Token<'a>| {
            self.pos += n;
            t
        };
        if trimmed.is_empty() {
            return Token::End;
        }
        for (text, token) in [("==", Token::DoubleEq), ("!=", Token::NotEq)] {
            if trimmed.starts_with(text) {
                return take(2, token);
            }
        }
        match trimmed.as_bytes()[0] {
            b',' => return take(1, Token::Comma),
            b'(' => return take(1, Token::Open),
            b')' => return take(1, Token::Close),
            b'!' => return take(1, Token::Not),
            b'=' => return take(1, Token::Eq),
            b'>' => return take(1, Token::Gt),
            b'<' => return take(1, Token::Lt),
            _ => {}
        }
        let len = trimmed
            .find(|c: char| c.is_whitespace() || ",()!=<>".contains(c))
            .unwrap_or(trimmed.len());
        let ident = &trimmed[..len];
        self.pos += len;
        Token::Ident(ident)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn every_operator_matches_like_upstream() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("app notin (db)", true),
            ("missing notin (db)", true),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("n>4", true),
            ("n<5", false),
            ("", true),
            (" app = web , tier ", true),
        ];
        for (selector, expected) in cases {
            let parsed = LabelSelector::parse(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
            assert_eq!(parsed.matches(Some(&l)), expected, "{selector}");
        }
        assert!(LabelSelector::parse("!a").unwrap().matches(None));
        assert!(!LabelSelector::parse("a").unwrap().matches(None));
    }

    #[test]
    fn invalid_selectors_are_rejected() {
        for bad in ["a in ()x", "a in", "a in (b", "=b", "a=b,", "a b", "a=b=c", "-a=b", "a=-b", "a in (-x)"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} must not parse");
        }
    }

    #[test]
    fn display_round_trips() {
        let s = LabelSelector::parse("a=b,c!=d,e in (g,f),h notin (i),j,!k").unwrap();
        assert_eq!(s.to_string(), "a=b,c!=d,e in (f,g),h notin (i),j,!k");
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn metav1_selectors_convert() {
        let s = LabelSelector::from_label_selector_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                 {"key": "x", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        assert!(s.matches(Some(&labels(json!({"app": "web", "tier": "b"})))));
        assert!(!s.matches(Some(&labels(json!({"app": "web", "tier": "b", "x": "1"})))));
        assert_eq!(s.to_string(), "app=web,tier in (a,b),!x");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert!(LabelSelector::from_label_selector_json(&bad).is_err());
    }
}
