//! How values print (Go's `%v` of the decoded JSON types), truth, and
//! `printf`'s verbs.

use serde_json::Value;

/// A value as `{{.}}` prints it: nil (a missing key, or JSON null) as
/// `<no value>`, as Go prints an empty interface.
pub(crate) fn print(value: &Value) -> String {
    match value {
        Value::Null => "<no value>".into(),
        other => verb_v(other),
    }
}

/// Go's `%v` of a value nested in a list or map.
fn verb_v(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(verb_v).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let entries: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", verb_v(&map[k])))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    float(n.as_f64().unwrap_or_default())
}

/// A float as Go's `%v` prints it: the shortest form, with an exponent
/// below 1e-4 and from 1e21 on.
pub(crate) fn float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let text = format!("{f:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let exponent: i32 = exponent.parse().unwrap_or_default();
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    format!("{f}")
}

/// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// The Go type a decoded JSON value has, for error messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %f %e %g %x
/// %X %o %b %q %t %c %%`, with flags (`-+ 0#`), width and precision.
pub(crate) fn printf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.left = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = digits(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(digits(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.next() {
            Some(arg) => out.push_str(&spec.pad(format_one(verb, &spec, arg))),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
    }
    let extra: Vec<String> = args
        .map(|arg| format!("{}={}", type_name(arg), verb_v(arg)))
        .collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Spec {
    fn pad(&self, text: String) -> String {
        let Some(width) = self.width else { return text };
        let len = text.chars().count();
        if len >= width {
            return text;
        }
        let fill = width - len;
        if self.left {
            return format!("{text}{}", " ".repeat(fill));
        }
        if self.zero {
            // Zeros go after the sign.
            let (sign, digits) = match text.strip_prefix(['-', '+']) {
                Some(rest) => (&text[..1], rest),
                None => ("", text.as_str()),
            };
            return format!("{sign}{}{digits}", "0".repeat(fill));
        }
        format!("{}{text}", " ".repeat(fill))
    }

    fn sign(&self, negative: bool) -> &'static str {
        match (negative, self.plus, self.space) {
            (true, _, _) => "-",
            (false, true, _) => "+",
            (false, false, true) => " ",
            _ => "",
        }
    }
}

fn digits(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut text = String::new();
    while let Some(&c) = chars.peek() {
        if !c.is_ascii_digit() {
            break;
        }
        text.push(c);
        chars.next();
    }
    text.parse().ok()
}

fn format_one(verb: char, spec: &Spec, arg: &Value) -> String {
    let bad = || format!("%!{verb}({}={})", type_name(arg), verb_v(arg));
    match verb {
        'v' => verb_v(arg),
        's' => {
            let text = verb_v(arg);
            match spec.precision {
                Some(p) => text.chars().take(p).collect(),
                None => text,
            }
        }
        'q' => match arg {
            Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
            _ => bad(),
        },
        't' => match arg {
            Value::Bool(b) => b.to_string(),
            _ => bad(),
        },
        'd' | 'x' | 'X' | 'o' | 'b' | 'c' => match arg.as_i64() {
            Some(i) => {
                let magnitude = i.unsigned_abs();
                let body = match verb {
                    'd' => magnitude.to_string(),
                    'x' => format!("{}{magnitude:x}", if spec.sharp { "0x" } else { "" }),
                    'X' => format!("{}{magnitude:X}", if spec.sharp { "0X" } else { "" }),
                    'o' => format!("{}{magnitude:o}", if spec.sharp { "0" } else { "" }),
                    'b' => format!("{magnitude:b}"),
                    _ => {
                        return char::from_u32(i as u32)
                            .map(String::from)
                            .unwrap_or_else(bad);
                    }
                };
                format!("{}{body}", spec.sign(i < 0))
            }
            None if verb == 'x' || verb == 'X' => match arg {
                Value::String(s) => {
                    let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
                    if verb == 'X' { hex.to_uppercase() } else { hex }
                }
                _ => bad(),
            },
            None => bad(),
        },
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' => match arg.as_f64() {
            Some(f) => {
                let precision = spec.precision;
                let body = match verb {
                    'f' | 'F' => format!("{:.*}", precision.unwrap_or(6), f.abs()),
                    'e' | 'E' => {
                        let text = format!("{:.*e}", precision.unwrap_or(6), f.abs());
                        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
                        let exponent: i32 = exponent.parse().unwrap_or_default();
                        let sign = if exponent < 0 { '-' } else { '+' };
                        let text = format!("{mantissa}e{sign}{:02}", exponent.abs());
                        if verb == 'E' {
                            text.to_uppercase()
                        } else {
                            text
                        }
                    }
                    _ => float(f.abs()),
                };
                format!("{}{body}", spec.sign(f.is_sign_negative() && f != 0.0))
            }
            None => bad(),
        },
        _ => bad(),
    }
}
