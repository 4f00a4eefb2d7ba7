//! Field selectors: `fieldSelector=spec.nodeName=n1,status.phase!=Failed`.
//!
//! Only equality and inequality exist; values may escape `\`, `,` and `=`
//! with a backslash, as upstream's parser allows.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldSelectorError(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    Equals,
    NotEquals,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    field: String,
    operator: FieldOperator,
    value: String,
}

impl FieldRequirement {
    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn operator(&self) -> FieldOperator {
        self.operator
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A conjunction of field requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn parse(input: &str) -> Result<FieldSelector, FieldSelectorError> {
        let mut requirements = Vec::new();
        for term in split_unescaped(input, ',') {
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_term(&term)?);
        }
        Ok(FieldSelector { requirements })
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object satisfies every requirement; `get` returns a
    /// field's value (a missing field compares as the empty string).
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<Cow<'a, str>>) -> bool {
        self.requirements.iter().all(|r| {
            let value = get(&r.field).unwrap_or_default();
            match r.operator {
                FieldOperator::Equals => value == r.value,
                FieldOperator::NotEquals => value != r.value,
            }
        })
    }

    /// The value an equality requirement pins `field` to, if any: lets a
    /// server use an index instead of evaluating every object.
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }
}

/// Splits on `sep` where it is not escaped, keeping escapes in the parts.
fn split_unescaped(input: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in input.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    if escaped {
        current.push('\\');
    }
    parts.push(current);
    parts
}

fn parse_term(term: &str) -> Result<FieldRequirement, FieldSelectorError> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                return requirement(&term[..i], FieldOperator::NotEquals, &term[i + 2..]);
            }
            b'=' if bytes.get(i + 1) == Some(&b'=') => {
                return requirement(&term[..i], FieldOperator::Equals, &term[i + 2..]);
            }
            b'=' => return requirement(&term[..i], FieldOperator::Equals, &term[i + 1..]),
            _ => i += 1,
        }
    }
    Err(FieldSelectorError(format!("invalid selector: '{term}'; can't understand '{term}'")))
}

fn requirement(field: &str, operator: FieldOperator, value: &str) -> Result<FieldRequirement, FieldSelectorError> {
    let field = field.trim();
    if field.is_empty() {
        return Err(FieldSelectorError("field name must not be empty".into()));
    }
    Ok(FieldRequirement {
        field: field.to_string(),
        operator,
        value: unescape(value)?,
    })
}

fn unescape(value: &str) -> Result<String, FieldSelectorError> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(other) => {
                    return Err(FieldSelectorError(format!(
                        "invalid escape sequence: \\{other}"
                    )));
                }
                None => return Err(FieldSelectorError("unterminated escape sequence".into())),
            },
            '=' | ',' => {
                return Err(FieldSelectorError(format!("invalid field selector value {value:?}: unescaped {c}")));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<Cow<'a, str>> {
        move |f| pairs.iter().find(|(k, _)| *k == f).map(|(_, v)| Cow::Borrowed(*v))
    }

    #[test]
    fn equality_and_inequality() {
        let fields = [("spec.nodeName", "n1"), ("status.phase", "Running")];
        let cases = [
            ("spec.nodeName=n1", true),
            ("spec.nodeName==n1", true),
            ("spec.nodeName!=n1", false),
            ("spec.nodeName=n1,status.phase!=Failed", true),
            ("spec.nodeName=n2", false),
            ("metadata.name=", true),
            ("metadata.name!=", false),
            ("", true),
        ];
        for (selector, expected) in cases {
            let s = FieldSelector::parse(selector).unwrap();
            assert_eq!(s.matches(get(&fields)), expected, "{selector}");
        }
    }

    #[test]
    fn escapes_and_exact_values() {
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c,spec.nodeName=n1").unwrap();
        assert_eq!(s.requirements()[0].value(), "a,b=c");
        assert_eq!(s.exact_value("spec.nodeName"), Some("n1"));
        assert_eq!(s.exact_value("status.phase"), None);
        let s = FieldSelector::parse("spec.nodeName!=n1").unwrap();
        assert_eq!(s.exact_value("spec.nodeName"), None);
    }

    #[test]
    fn malformed_selectors_fail() {
        for bad in ["a", "=b", r"a=b\x", "a=b=c", r"a=b\"] {
            assert!(FieldSelector::parse(bad).is_err(), "{bad:?}");
        }
    }
}
