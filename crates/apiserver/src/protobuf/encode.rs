//! JSON → protobuf: a JSON object written as its message, guided by the
//! message's table entry. Fields JSON does not carry are left out, which
//! a Go client reads as their zero values; JSON properties the message
//! has no field for (`apiVersion`, `kind`) are not written.

use base64::Engine;
use serde_json::Value;

use super::TranscodeError;
use super::schema::{Field, Form, Label, Message, Type};
use super::wellknown;
use super::wire;

/// Appends the fields of `msg` for the JSON `value`.
pub fn message(msg: &Message, value: &Value, out: &mut Vec<u8>) -> Result<(), TranscodeError> {
    match msg.form {
        Form::Object => {
            let Value::Object(obj) = value else {
                return Err(invalid(msg, "", "expected an object"));
            };
            for field in msg.fields {
                if field.json.is_empty() {
                    if let Type::Msg(inner) = field.ty {
                        wire::put_nested(out, field.tag, |out| message(inner, value, out))?;
                    }
                    continue;
                }
                match obj.get(field.json) {
                    None | Some(Value::Null) => {}
                    Some(v) => self::field(msg, field, v, out)?,
                }
            }
            Ok(())
        }
        Form::Time | Form::MicroTime => {
            let text = value
                .as_str()
                .ok_or_else(|| invalid(msg, "", "expected a time string"))?;
            let (seconds, nanos) =
                wellknown::parse_time(text).map_err(|reason| invalid(msg, "", &reason))?;
            let nanos = if msg.form == Form::MicroTime {
                nanos
            } else {
                0
            };
            wire::put_varint(out, 1, seconds as u64);
            wire::put_varint(out, 2, nanos as i64 as u64);
            Ok(())
        }
        Form::Quantity => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(invalid(msg, "", "expected a quantity")),
            };
            wire::put_bytes(out, 1, text.as_bytes());
            Ok(())
        }
        Form::IntOrString => {
            match value {
                Value::String(s) => {
                    wire::put_varint(out, 1, 1);
                    wire::put_varint(out, 2, 0);
                    wire::put_bytes(out, 3, s.as_bytes());
                }
                Value::Number(n) => {
                    let int = n
                        .as_i64()
                        .and_then(|i| i32::try_from(i).ok())
                        .ok_or_else(|| invalid(msg, "", "expected a 32-bit integer"))?;
                    wire::put_varint(out, 1, 0);
                    wire::put_varint(out, 2, int as i64 as u64);
                    wire::put_bytes(out, 3, b"");
                }
                _ => return Err(invalid(msg, "", "expected an integer or a string")),
            }
            Ok(())
        }
        Form::RawJson => {
            let raw =
                serde_json::to_vec(value).map_err(|err| invalid(msg, "", &err.to_string()))?;
            wire::put_bytes(out, 1, &raw);
            Ok(())
        }
        Form::OrArray | Form::OrBool | Form::OrStringArray => union(msg, value, out),
    }
}

/// The JSON schema unions of CRDs: the JSON type picks the field.
fn union(msg: &Message, value: &Value, out: &mut Vec<u8>) -> Result<(), TranscodeError> {
    let by_tag = |tag| msg.fields.iter().find(|f| f.tag == tag);
    let (Some(first), Some(second)) = (by_tag(1), by_tag(2)) else {
        return Err(invalid(msg, "", "not a schema union"));
    };
    match (msg.form, value) {
        (Form::OrBool, Value::Bool(allows)) => wire::put_varint(out, 1, u64::from(*allows)),
        (Form::OrBool, Value::Object(_)) => {
            wire::put_varint(out, 1, 1);
            field(msg, second, value, out)?;
        }
        (_, Value::Array(_)) if msg.form != Form::OrBool => field(msg, second, value, out)?,
        (_, Value::Object(_)) if msg.form != Form::OrBool => field(msg, first, value, out)?,
        _ => return Err(invalid(msg, "", "unexpected JSON type")),
    }
    Ok(())
}

fn field(
    msg: &Message,
    field: &Field,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), TranscodeError> {
    match field.label {
        Label::One => one(msg, field, value, out),
        Label::Repeated => {
            let Value::Array(items) = value else {
                return Err(invalid(msg, field.json, "expected an array"));
            };
            items.iter().try_for_each(|item| one(msg, field, item, out))
        }
        Label::Map => {
            let Value::Object(map) = value else {
                return Err(invalid(msg, field.json, "expected an object"));
            };
            for (key, item) in map {
                wire::put_nested(out, field.tag, |out| {
                    wire::put_bytes(out, 1, key.as_bytes());
                    if item.is_null() {
                        return Ok(());
                    }
                    one(msg, &Field { tag: 2, ..*field }, item, out)
                })?;
            }
            Ok(())
        }
    }
}

/// One value of a field (an element, for repeated fields).
fn one(
    msg: &Message,
    field: &Field,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), TranscodeError> {
    let tag = field.tag;
    let bad = |what: &str| invalid(msg, field.json, &format!("expected {what}"));
    match field.ty {
        Type::Str => wire::put_bytes(
            out,
            tag,
            value.as_str().ok_or_else(|| bad("a string"))?.as_bytes(),
        ),
        Type::Bytes => {
            let text = value.as_str().ok_or_else(|| bad("a base64 string"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| bad("a base64 string"))?;
            wire::put_bytes(out, tag, &bytes);
        }
        Type::Bool => wire::put_varint(
            out,
            tag,
            u64::from(value.as_bool().ok_or_else(|| bad("a boolean"))?),
        ),
        Type::I32 => {
            let v = integer(value)
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| bad("a 32-bit integer"))?;
            wire::put_varint(out, tag, v as i64 as u64);
        }
        Type::I64 => wire::put_varint(
            out,
            tag,
            integer(value).ok_or_else(|| bad("an integer"))? as u64,
        ),
        Type::F64 => wire::put_fixed64(
            out,
            tag,
            value.as_f64().ok_or_else(|| bad("a number"))?.to_bits(),
        ),
        Type::Msg(inner) => wire::put_nested(out, tag, |out| message(inner, value, out))?,
    }
    Ok(())
}

/// An integer, also when JSON spells it `3.0`.
fn integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

fn invalid(msg: &Message, field: &str, reason: &str) -> TranscodeError {
    TranscodeError::Json {
        message: msg.name,
        field: field.to_string(),
        reason: reason.to_string(),
    }
}
