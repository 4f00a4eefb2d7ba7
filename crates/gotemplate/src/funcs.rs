//! The functions templates can call: Go's built-ins and the sprig
//! functions kube-burner's workloads use. Arguments arrive evaluated, a
//! piped value last; numbers convert as sprig converts them (strings are
//! parsed, floats truncated, anything else is 0).

use base64::Engine;
use rand::Rng;
use serde_json::{Map, Value};

use crate::format;

pub(crate) type Func = fn(&[Value]) -> Result<Value, String>;

/// Every function name this engine knows, for documentation and tests.
pub const NAMES: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "urlquery",
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "addf",
    "subf",
    "mulf",
    "divf",
    "floor",
    "ceil",
    "round",
    "randInt",
    "int",
    "int64",
    "float64",
    "atoi",
    "toString",
    "toJson",
    "toPrettyJson",
    "upper",
    "lower",
    "title",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "repeat",
    "substr",
    "trunc",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "nospace",
    "join",
    "splitList",
    "b64enc",
    "b64dec",
    "randAlphaNum",
    "randAlpha",
    "randNumeric",
    "uuidv4",
    "list",
    "append",
    "prepend",
    "first",
    "last",
    "rest",
    "initial",
    "until",
    "untilStep",
    "seq",
    "has",
    "concat",
    "uniq",
    "dict",
    "get",
    "set",
    "hasKey",
    "keys",
    "values",
    "default",
    "empty",
    "coalesce",
    "ternary",
    "fail",
];

pub(crate) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "not" => |a| Ok((!format::truthy(one(a)?)).into()),
        "len" => len,
        "index" => index,
        "slice" => slice,
        "print" => |a| Ok(print(a).into()),
        "println" => |a| {
            let items: Vec<String> = a.iter().map(format::print).collect();
            Ok(format!("{}\n", items.join(" ")).into())
        },
        "printf" => |a| {
            let (format, rest) = a.split_first().ok_or("printf needs a format")?;
            Ok(format::printf(&string(format), rest).into())
        },
        "eq" => |a| {
            let (first, rest) = a.split_first().ok_or("missing argument for comparison")?;
            if rest.is_empty() {
                return Err("missing argument for comparison".into());
            }
            for other in rest {
                if compare(first, other)? == Some(std::cmp::Ordering::Equal) {
                    return Ok(true.into());
                }
            }
            Ok(false.into())
        },
        "ne" => |a| Ok((ordering(a)? != Some(std::cmp::Ordering::Equal)).into()),
        "lt" => |a| Ok((ordered(a)? == std::cmp::Ordering::Less).into()),
        "le" => |a| Ok((ordered(a)? != std::cmp::Ordering::Greater).into()),
        "gt" => |a| Ok((ordered(a)? == std::cmp::Ordering::Greater).into()),
        "ge" => |a| Ok((ordered(a)? != std::cmp::Ordering::Less).into()),
        "urlquery" => |a| {
            let text = print(a);
            Ok(text
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    b' ' => "+".into(),
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
                .into())
        },
        "add" => |a| fold_int(a, 0, |x, y| x.checked_add(y)),
        "mul" => |a| fold_int(a, 1, |x, y| x.checked_mul(y)),
        "add1" => |a| Ok((int(one(a)?).wrapping_add(1)).into()),
        "sub" => |a| int2(a, |x, y| x.checked_sub(y)),
        "div" => |a| int2(a, |x, y| x.checked_div(y)),
        "mod" => |a| int2(a, |x, y| x.checked_rem(y)),
        "max" => |a| fold_int(a, i64::MIN, |x, y| Some(x.max(y))),
        "min" => |a| fold_int(a, i64::MAX, |x, y| Some(x.min(y))),
        "addf" => |a| float_result(a.iter().map(float).sum()),
        "mulf" => |a| float_result(a.iter().map(float).product()),
        "subf" => |a| float2(a, |x, y| x - y),
        "divf" => |a| float2(a, |x, y| x / y),
        "floor" => |a| float_result(float(one(a)?).floor()),
        "ceil" => |a| float_result(float(one(a)?).ceil()),
        "round" => |a| {
            let (value, places) = match a {
                [value] => (value, 0),
                [value, places, ..] => (value, int(places)),
                [] => return Err("round needs a value".into()),
            };
            let factor = 10f64.powi(i32::try_from(places).unwrap_or(0));
            float_result((float(value) * factor).round() / factor)
        },
        "randInt" => |a| {
            let [min, max] = a else {
                return Err("randInt needs a minimum and a maximum".into());
            };
            let (min, max) = (int(min), int(max));
            if min >= max {
                return Err(format!(
                    "randInt: the minimum {min} is not below the maximum {max}"
                ));
            }
            Ok(rand::rng().random_range(min..max).into())
        },
        "int" | "int64" | "atoi" => |a| Ok(int(one(a)?).into()),
        "float64" => |a| float_result(float(one(a)?)),
        "toString" => |a| Ok(string(one(a)?).into()),
        "toJson" => |a| {
            serde_json::to_string(one(a)?)
                .map(Value::from)
                .map_err(|e| e.to_string())
        },
        "toPrettyJson" => |a| {
            serde_json::to_string_pretty(one(a)?)
                .map(Value::from)
                .map_err(|e| e.to_string())
        },
        "upper" => |a| Ok(string(one(a)?).to_uppercase().into()),
        "lower" => |a| Ok(string(one(a)?).to_lowercase().into()),
        "title" => |a| {
            let text = string(one(a)?);
            let mut out = String::with_capacity(text.len());
            let mut start = true;
            for c in text.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = c.is_whitespace();
            }
            Ok(out.into())
        },
        "trim" => |a| Ok(string(one(a)?).trim().into()),
        "trimAll" => |a| {
            let [cut, text] = a else {
                return Err("trimAll needs the characters and a string".into());
            };
            let cut: Vec<char> = string(cut).chars().collect();
            Ok(string(text).trim_matches(cut.as_slice()).into())
        },
        "trimPrefix" => |a| {
            let [prefix, text] = a else {
                return Err("trimPrefix needs a prefix and a string".into());
            };
            let (prefix, text) = (string(prefix), string(text));
            Ok(text.strip_prefix(&prefix).unwrap_or(&text).into())
        },
        "trimSuffix" => |a| {
            let [suffix, text] = a else {
                return Err("trimSuffix needs a suffix and a string".into());
            };
            let (suffix, text) = (string(suffix), string(text));
            Ok(text.strip_suffix(&suffix).unwrap_or(&text).into())
        },
        "replace" => |a| {
            let [old, new, text] = a else {
                return Err("replace needs old, new and a string".into());
            };
            Ok(string(text).replace(&string(old), &string(new)).into())
        },
        "repeat" => |a| {
            let [count, text] = a else {
                return Err("repeat needs a count and a string".into());
            };
            let count = usize::try_from(int(count)).map_err(|_| "repeat count is negative")?;
            if count.saturating_mul(string(text).len()) > 16 << 20 {
                return Err("repeat would produce more than 16 MiB".into());
            }
            Ok(string(text).repeat(count).into())
        },
        "substr" => |a| {
            let [start, end, text] = a else {
                return Err("substr needs start, end and a string".into());
            };
            let chars: Vec<char> = string(text).chars().collect();
            let start = usize::try_from(int(start)).unwrap_or(0).min(chars.len());
            let end = usize::try_from(int(end)).map_or(chars.len(), |e| e.min(chars.len()));
            Ok(chars[start..end.max(start)]
                .iter()
                .collect::<String>()
                .into())
        },
        "trunc" => |a| {
            let [count, text] = a else {
                return Err("trunc needs a length and a string".into());
            };
            let chars: Vec<char> = string(text).chars().collect();
            let n = int(count);
            let kept: String = if n >= 0 {
                chars.iter().take(n as usize).collect()
            } else {
                chars
                    .iter()
                    .skip(chars.len().saturating_sub(n.unsigned_abs() as usize))
                    .collect()
            };
            Ok(kept.into())
        },
        "contains" => |a| {
            let [needle, text] = a else {
                return Err("contains needs a substring and a string".into());
            };
            Ok(string(text).contains(&string(needle)).into())
        },
        "hasPrefix" => |a| {
            let [prefix, text] = a else {
                return Err("hasPrefix needs a prefix and a string".into());
            };
            Ok(string(text).starts_with(&string(prefix)).into())
        },
        "hasSuffix" => |a| {
            let [suffix, text] = a else {
                return Err("hasSuffix needs a suffix and a string".into());
            };
            Ok(string(text).ends_with(&string(suffix)).into())
        },
        "quote" => |a| {
            let quoted: Vec<String> = a
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| serde_json::to_string(&string(v)).unwrap_or_default())
                .collect();
            Ok(quoted.join(" ").into())
        },
        "squote" => |a| {
            let quoted: Vec<String> = a
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| format!("'{}'", string(v)))
                .collect();
            Ok(quoted.join(" ").into())
        },
        "cat" => |a| {
            let parts: Vec<String> = a.iter().filter(|v| !v.is_null()).map(string).collect();
            Ok(parts.join(" ").into())
        },
        "indent" => |a| {
            let [spaces, text] = a else {
                return Err("indent needs a width and a string".into());
            };
            Ok(indent(int(spaces), &string(text)).into())
        },
        "nindent" => |a| {
            let [spaces, text] = a else {
                return Err("nindent needs a width and a string".into());
            };
            Ok(format!("\n{}", indent(int(spaces), &string(text))).into())
        },
        "nospace" => |a| {
            Ok(string(one(a)?)
                .split_whitespace()
                .collect::<String>()
                .into())
        },
        "join" => |a| {
            let [separator, items] = a else {
                return Err("join needs a separator and a list".into());
            };
            let items: Vec<String> = list_of(items).iter().map(string).collect();
            Ok(items.join(&string(separator)).into())
        },
        "splitList" => |a| {
            let [separator, text] = a else {
                return Err("splitList needs a separator and a string".into());
            };
            Ok(string(text)
                .split(&string(separator))
                .map(Value::from)
                .collect::<Vec<_>>()
                .into())
        },
        "b64enc" => |a| {
            Ok(base64::engine::general_purpose::STANDARD
                .encode(string(one(a)?))
                .into())
        },
        "b64dec" => |a| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(string(one(a)?))
                .map_err(|e| e.to_string())?;
            Ok(String::from_utf8_lossy(&bytes).into_owned().into())
        },
        "randAlphaNum" => |a| {
            random(
                a,
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            )
        },
        "randAlpha" => |a| random(a, b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        "randNumeric" => |a| random(a, b"0123456789"),
        "uuidv4" => |_| Ok(uuid::Uuid::new_v4().to_string().into()),
        "list" => |a| Ok(a.to_vec().into()),
        "append" => |a| {
            let [items, item] = a else {
                return Err("append needs a list and a value".into());
            };
            let mut items = list_of(items);
            items.push(item.clone());
            Ok(items.into())
        },
        "prepend" => |a| {
            let [items, item] = a else {
                return Err("prepend needs a list and a value".into());
            };
            let mut items = list_of(items);
            items.insert(0, item.clone());
            Ok(items.into())
        },
        "first" => |a| Ok(list_of(one(a)?).first().cloned().unwrap_or_default()),
        "last" => |a| Ok(list_of(one(a)?).last().cloned().unwrap_or_default()),
        "rest" => |a| {
            Ok(list_of(one(a)?)
                .into_iter()
                .skip(1)
                .collect::<Vec<_>>()
                .into())
        },
        "initial" => |a| {
            let mut items = list_of(one(a)?);
            items.pop();
            Ok(items.into())
        },
        "until" => |a| steps(0, int(one(a)?), 1),
        "untilStep" => |a| {
            let [start, stop, step] = a else {
                return Err("untilStep needs start, stop and step".into());
            };
            steps(int(start), int(stop), int(step))
        },
        "seq" => |a| {
            let numbers: Vec<i64> = a.iter().map(int).collect();
            let (start, step, end) = match numbers.as_slice() {
                [end] => (1, 1, *end),
                [start, end] => (*start, if start <= end { 1 } else { -1 }, *end),
                [start, step, end] => (*start, *step, *end),
                _ => return Err("seq takes 1 to 3 numbers".into()),
            };
            let stop = if step > 0 { end + 1 } else { end - 1 };
            let items = steps(start, stop, step)?;
            let text: Vec<String> = items
                .as_array()
                .into_iter()
                .flatten()
                .map(format::print)
                .collect();
            Ok(text.join(" ").into())
        },
        "has" => |a| {
            let [needle, items] = a else {
                return Err("has needs a value and a list".into());
            };
            Ok(list_of(items).contains(needle).into())
        },
        "concat" => |a| Ok(a.iter().flat_map(list_of).collect::<Vec<_>>().into()),
        "uniq" => |a| {
            let mut out: Vec<Value> = Vec::new();
            for item in list_of(one(a)?) {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
            Ok(out.into())
        },
        "dict" => |a| {
            let mut map = Map::new();
            for pair in a.chunks(2) {
                map.insert(string(&pair[0]), pair.get(1).cloned().unwrap_or_default());
            }
            Ok(map.into())
        },
        "get" => |a| {
            let [map, key] = a else {
                return Err("get needs a dict and a key".into());
            };
            Ok(map.get(string(key)).cloned().unwrap_or_else(|| "".into()))
        },
        "set" => |a| {
            let [map, key, value] = a else {
                return Err("set needs a dict, a key and a value".into());
            };
            let mut map = map.as_object().cloned().ok_or("set needs a dict")?;
            map.insert(string(key), value.clone());
            Ok(map.into())
        },
        "hasKey" => |a| {
            let [map, key] = a else {
                return Err("hasKey needs a dict and a key".into());
            };
            Ok(map.get(string(key)).is_some().into())
        },
        "keys" => |a| {
            let mut keys: Vec<String> = a
                .iter()
                .filter_map(Value::as_object)
                .flat_map(|m| m.keys().cloned())
                .collect();
            keys.sort();
            Ok(keys.into_iter().map(Value::from).collect::<Vec<_>>().into())
        },
        "values" => |a| {
            let map = one(a)?.as_object().ok_or("values needs a dict")?;
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Ok(keys
                .into_iter()
                .map(|k| map[k].clone())
                .collect::<Vec<_>>()
                .into())
        },
        "default" => |a| {
            let [fallback, rest @ ..] = a else {
                return Err("default needs a default value".into());
            };
            Ok(match rest.first() {
                Some(value) if format::truthy(value) => value.clone(),
                _ => fallback.clone(),
            })
        },
        "empty" => |a| Ok((!a.first().is_some_and(format::truthy)).into()),
        "coalesce" => |a| {
            Ok(a.iter()
                .find(|v| format::truthy(v))
                .cloned()
                .unwrap_or_default())
        },
        "ternary" => |a| {
            let [yes, no, condition] = a else {
                return Err("ternary needs two values and a condition".into());
            };
            Ok(if format::truthy(condition) {
                yes.clone()
            } else {
                no.clone()
            })
        },
        "fail" => |a| Err(string(one(a)?)),
        _ => return None,
    })
}

fn one(args: &[Value]) -> Result<&Value, String> {
    match args {
        [value] => Ok(value),
        _ => Err(format!("wrong number of args: want 1 got {}", args.len())),
    }
}

fn print(args: &[Value]) -> String {
    // Go's Sprint puts spaces between operands when neither is a string.
    let mut out = String::new();
    for (i, value) in args.iter().enumerate() {
        if i > 0 && !value.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&format::print(value));
    }
    out
}

/// A value as sprig's `toString` gives it.
fn string(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => format::print(other),
    }
}

/// A value as sprig's `toInt64` gives it.
fn int(value: &Value) -> i64 {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or_default(),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64))
            .unwrap_or_default(),
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

fn float(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap_or_default(),
        Value::String(s) => s.trim().parse().unwrap_or_default(),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

fn float_result(f: f64) -> Result<Value, String> {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("{f} is not a finite number"))
}

fn fold_int(args: &[Value], start: i64, op: fn(i64, i64) -> Option<i64>) -> Result<Value, String> {
    args.iter()
        .try_fold(start, |acc, v| op(acc, int(v)))
        .map(Value::from)
        .ok_or_else(|| "integer overflow".into())
}

fn int2(args: &[Value], op: fn(i64, i64) -> Option<i64>) -> Result<Value, String> {
    let [a, b] = args else {
        return Err(format!("wrong number of args: want 2 got {}", args.len()));
    };
    op(int(a), int(b))
        .map(Value::from)
        .ok_or_else(|| "integer divide by zero or overflow".into())
}

fn float2(args: &[Value], op: fn(f64, f64) -> f64) -> Result<Value, String> {
    let [a, b] = args else {
        return Err(format!("wrong number of args: want 2 got {}", args.len()));
    };
    float_result(op(float(a), float(b)))
}

fn list_of(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn indent(spaces: i64, text: &str) -> String {
    let pad = " ".repeat(usize::try_from(spaces).unwrap_or(0).min(1024));
    text.split('\n')
        .map(|line| format!("{pad}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn random(args: &[Value], alphabet: &[u8]) -> Result<Value, String> {
    let count = usize::try_from(int(one(args)?)).map_err(|_| "negative length")?;
    if count > 1 << 20 {
        return Err("random strings are limited to 1 MiB".into());
    }
    let mut rng = rand::rng();
    Ok((0..count)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect::<String>()
        .into())
}

/// The integers from `start` towards `stop` (exclusive) by `step`, at most
/// a million of them.
fn steps(start: i64, stop: i64, step: i64) -> Result<Value, String> {
    if step == 0 {
        return Ok(Vec::<Value>::new().into());
    }
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        if out.len() >= 1_000_000 {
            return Err("ranges are limited to a million numbers".into());
        }
        out.push(Value::from(i));
        i = i.checked_add(step).ok_or("integer overflow")?;
    }
    Ok(out.into())
}

fn len(args: &[Value]) -> Result<Value, String> {
    Ok(match one(args)? {
        Value::String(s) => s.len(),
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        Value::Null => 0,
        other => return Err(format!("len of type {}", format::type_name(other))),
    }
    .into())
}

fn index(args: &[Value]) -> Result<Value, String> {
    let (mut current, keys) = args.split_first().ok_or("index of nothing")?;
    for key in keys {
        current = match current {
            Value::Array(items) => {
                let i = key
                    .as_i64()
                    .ok_or("cannot index slice/array with a non-integer")?;
                usize::try_from(i)
                    .ok()
                    .and_then(|i| items.get(i))
                    .ok_or_else(|| format!("index out of range: {i}"))?
            }
            Value::Object(map) => match map.get(&string(key)) {
                Some(value) => value,
                None => return Ok(Value::Null),
            },
            Value::Null => return Ok(Value::Null),
            other => {
                return Err(format!(
                    "can't index item of type {}",
                    format::type_name(other)
                ));
            }
        };
    }
    Ok(current.clone())
}

fn slice(args: &[Value]) -> Result<Value, String> {
    let (value, bounds) = args.split_first().ok_or("slice of nothing")?;
    let bounds: Vec<usize> = bounds
        .iter()
        .map(|b| usize::try_from(int(b)).map_err(|_| "negative slice index".to_owned()))
        .collect::<Result<_, _>>()?;
    let slice_range = |len: usize| -> Result<(usize, usize), String> {
        let (start, end) = match bounds.as_slice() {
            [] => (0, len),
            [start] => (*start, len),
            [start, end, ..] => (*start, *end),
        };
        if start > end || end > len {
            return Err(format!(
                "slice index out of range: [{start}:{end}] with length {len}"
            ));
        }
        Ok((start, end))
    };
    match value {
        Value::String(s) => {
            let (start, end) = slice_range(s.len())?;
            s.get(start..end)
                .map(Value::from)
                .ok_or_else(|| "slice splits a character".into())
        }
        Value::Array(items) => {
            let (start, end) = slice_range(items.len())?;
            Ok(items[start..end].to_vec().into())
        }
        other => Err(format!(
            "can't slice item of type {}",
            format::type_name(other)
        )),
    }
}

/// Go's comparison of basic values: numbers with numbers, strings with
/// strings, booleans with booleans; nil equals only nil.
fn compare(a: &Value, b: &Value) -> Result<Option<std::cmp::Ordering>, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Ok(Some(x.cmp(&y))),
            _ => Ok(x.as_f64().partial_cmp(&y.as_f64()).and_then(|_| {
                x.as_f64()
                    .unwrap_or_default()
                    .partial_cmp(&y.as_f64().unwrap_or_default())
            })),
        },
        (Value::String(x), Value::String(y)) => Ok(Some(x.cmp(y))),
        (Value::Bool(x), Value::Bool(y)) => Ok((x == y).then_some(std::cmp::Ordering::Equal)),
        (Value::Null, Value::Null) => Ok(Some(std::cmp::Ordering::Equal)),
        (Value::Null, _) | (_, Value::Null) => Ok(None),
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            format::type_name(a),
            format::type_name(b)
        )),
    }
}

fn ordering(args: &[Value]) -> Result<Option<std::cmp::Ordering>, String> {
    let [a, b] = args else {
        return Err(format!("wrong number of args: want 2 got {}", args.len()));
    };
    compare(a, b)
}

fn ordered(args: &[Value]) -> Result<std::cmp::Ordering, String> {
    if let [a, _] = args
        && matches!(a, Value::Bool(_) | Value::Null)
    {
        return Err(format!(
            "invalid type for comparison: {}",
            format::type_name(a)
        ));
    }
    ordering(args)?.ok_or_else(|| "incomparable values".into())
}
