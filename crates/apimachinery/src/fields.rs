//! Field selectors: `fieldSelector=spec.nodeName=n1,status.phase!=Failed`.
//!
//! Upstream's grammar (k8s.io/apimachinery `pkg/fields`): terms separated by
//! unescaped commas, each `field=value`, `field==value` or `field!=value`;
//! values escape `\`, `,` and `=` with a backslash. Which fields a kind
//! supports is the server's business ([`FieldSelector::check_fields`]).

use std::borrow::Cow;
use std::fmt;

/// Why a field selector was rejected; the text is upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// A term without an operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Syntax { selector: String, term: String },
    /// A backslash followed by something other than `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A `,` or `=` inside a value without a backslash. Upstream prints the
    /// character as its code point (`61` for `=`), and so do we.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
}

/// A field the kind does not support, in upstream's words for the 400 an
/// API server answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field label not supported: {0}")]
pub struct UnsupportedField(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    /// `=` or `==`.
    Equals,
    /// `!=`
    NotEquals,
}

/// One `field op value` term, with the value unescaped.
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

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// A conjunction of field requirements; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses a selector. Like upstream, terms are sorted as strings before
    /// parsing, empty terms are skipped, and a term with neither field nor
    /// value (`=`) selects everything.
    pub fn parse(selector: &str) -> Result<FieldSelector, FieldSelectorError> {
        let mut terms = split_terms(selector);
        terms.sort_unstable();
        let mut requirements = Vec::with_capacity(terms.len());
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let Some((field, operator, raw_value)) = split_term(term) else {
                return Err(FieldSelectorError::Syntax {
                    selector: selector.to_string(),
                    term: term.to_string(),
                });
            };
            let value = unescape_value(raw_value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Fails on the first field (in selector order) the kind does not
    /// support, the check upstream's field label conversion makes.
    pub fn check_fields(
        &self,
        is_supported: impl Fn(&str) -> bool,
    ) -> Result<(), UnsupportedField> {
        match self.requirements.iter().find(|r| !is_supported(&r.field)) {
            Some(r) => Err(UnsupportedField(r.field.clone())),
            None => Ok(()),
        }
    }

    /// Whether an object satisfies every requirement; `get` returns a
    /// field's value, and a field the object lacks compares as the empty
    /// string, as with upstream's field sets.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<Cow<'a, str>>) -> bool {
        self.requirements.iter().all(|r| {
            let value = get(&r.field).unwrap_or_default();
            match r.operator {
                FieldOperator::Equals => value == r.value,
                FieldOperator::NotEquals => value != r.value,
            }
        })
    }

    /// The value an equality requirement pins `field` to (upstream's
    /// `RequiresExactMatch`), so a server can use an index (pods by
    /// `spec.nodeName`) instead of testing every object.
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }
}

/// The canonical form: `field=value` terms joined by commas, values
/// escaped, `==` printed as `=`.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// Escapes a value so it can be written in a selector.
pub fn escape_value(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', ',', '=']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Reverses [`escape_value`], rejecting what it could not have produced.
pub fn unescape_value(value: &str) -> Result<String, FieldSelectorError> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ ('\\' | ',' | '=')) => out.push(escaped),
                Some(other) => return Err(FieldSelectorError::InvalidEscape(format!("\\{other}"))),
                None => return Err(FieldSelectorError::InvalidEscape("\\".to_string())),
            },
            ',' | '=' => return Err(FieldSelectorError::UnescapedCharacter(c)),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Splits at commas not escaped by a backslash; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in selector.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at its first operator. Like upstream, the field part is
/// not unescaped, so `a\=b=c` splits after `a\`.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    const OPERATORS: [(&str, FieldOperator); 3] = [
        ("!=", FieldOperator::NotEquals),
        ("==", FieldOperator::Equals),
        ("=", FieldOperator::Equals),
    ];
    term.char_indices().find_map(|(i, _)| {
        let rest = &term[i..];
        OPERATORS
            .iter()
            .find(|(op, _)| rest.starts_with(op))
            .map(|(op, operator)| (&term[..i], *operator, &rest[op.len()..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<Cow<'a, str>> {
        move |f| {
            pairs
                .iter()
                .find(|(k, _)| *k == f)
                .map(|(_, v)| Cow::Borrowed(*v))
        }
    }

    #[test]
    fn upstream_good_selectors_print_canonically() {
        let cases = [
            ("", ""),
            ("x=a,y=b,z=c", "x=a,y=b,z=c"),
            ("x!=a,y=b", "x!=a,y=b"),
            ("z=c,x=a", "x=a,z=c"),
            ("x==a", "x=a"),
            ("x=", "x="),
            ("x=a,", "x=a"),
            (",x=a", "x=a"),
            ("x=a\\,b", "x=a\\,b"),
            ("x=a\\=b", "x=a\\=b"),
            ("x=a\\\\b", "x=a\\\\b"),
            ("=", ""),
            ("x=a|b", "x=a|b"),
        ];
        for (input, printed) in cases {
            let parsed = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(parsed.to_string(), printed, "{input:?}");
        }
    }

    #[test]
    fn upstream_bad_selectors_and_messages() {
        assert_eq!(
            FieldSelector::parse("x=a,b").unwrap_err().to_string(),
            "invalid selector: 'x=a,b'; can't understand 'b'"
        );
        assert_eq!(
            FieldSelector::parse("x=a==b").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            FieldSelector::parse(r"x=a\b").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \b"
        );
        assert_eq!(
            FieldSelector::parse(r"x=a\").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            FieldSelector::parse(r"a\=b=c").unwrap_err(),
            FieldSelectorError::UnescapedCharacter('='),
            "the field part is not unescaped"
        );
        for bad in ["a", "x=a||y=b", "x!", "a,b=c"] {
            assert!(FieldSelector::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escaping_round_trips() {
        for value in ["", "plain", "a,b", "a=b", r"a\b", r"\,=\\", "ünïcode,="] {
            let escaped = escape_value(value);
            assert_eq!(unescape_value(&escaped).unwrap(), value);
            let s = FieldSelector::parse(&format!("metadata.name={escaped}")).unwrap();
            assert_eq!(s.requirements()[0].value(), value);
            assert_eq!(FieldSelector::parse(&s.to_string()).unwrap(), s);
        }
        assert!(matches!(escape_value("plain"), Cow::Borrowed(_)));
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
            ("metadata.name!=x", true),
            ("", true),
        ];
        for (selector, expected) in cases {
            let s = FieldSelector::parse(selector).unwrap();
            assert_eq!(s.matches(get(&fields)), expected, "{selector}");
        }
    }

    #[test]
    fn exact_values_for_indexes() {
        let s =
            FieldSelector::parse(r"spec.nodeName!=n0,metadata.name=a\,b,spec.nodeName=n1").unwrap();
        assert_eq!(s.exact_value("spec.nodeName"), Some("n1"));
        assert_eq!(s.exact_value("metadata.name"), Some("a,b"));
        assert_eq!(s.exact_value("status.phase"), None);
        assert_eq!(
            FieldSelector::parse("spec.nodeName!=n1")
                .unwrap()
                .exact_value("spec.nodeName"),
            None
        );
    }

    #[test]
    fn unsupported_fields_are_reported_like_upstream() {
        let s = FieldSelector::parse("spec.nodeName=a,spec.bogus=b").unwrap();
        let supported =
            |f: &str| matches!(f, "metadata.name" | "metadata.namespace" | "spec.nodeName");
        assert_eq!(
            s.check_fields(supported).unwrap_err().to_string(),
            "field label not supported: spec.bogus"
        );
        assert!(
            FieldSelector::parse("spec.nodeName=a")
                .unwrap()
                .check_fields(supported)
                .is_ok()
        );
        let empty_field = FieldSelector::parse("=x").unwrap();
        assert_eq!(
            empty_field.check_fields(supported).unwrap_err().to_string(),
            "field label not supported: "
        );
    }
}
