//! Protobuf → JSON: a message's fields, walked with its table entry, into
//! the JSON object upstream's JSON encoder would write for the same Go
//! object.

use base64::Engine;
use serde_json::{Map, Value};

use super::TranscodeError;
use super::schema::{Field, Form, Label, Message, Type};
use super::wellknown;
use super::wire::{self, Fields};

/// The JSON form of one encoded message; `Null` for a value JSON leaves
/// out (an unset Time, empty raw JSON).
pub fn message(msg: &Message, buf: &[u8]) -> Result<Value, TranscodeError> {
    match msg.form {
        Form::Object => Ok(Value::Object(object(msg, buf)?)),
        Form::Time | Form::MicroTime => {
            let (mut seconds, mut nanos) = (0, 0);
            for field in Fields::new(buf) {
                match field? {
                    (1, wire::Value::Varint(v)) => seconds = v as i64,
                    (2, wire::Value::Varint(v)) => nanos = v as i32,
                    _ => {}
                }
            }
            if seconds == wellknown::ZERO_TIME_SECONDS && nanos == 0 {
                return Ok(Value::Null);
            }
            let micro = msg.form == Form::MicroTime;
            Ok(wellknown::format_time(seconds, nanos, micro)?.into())
        }
        Form::Quantity => {
            let mut text = Value::from("");
            for field in Fields::new(buf) {
                if let (1, wire::Value::Len(bytes)) = field? {
                    text = utf8(bytes)?.into();
                }
            }
            Ok(text)
        }
        Form::IntOrString => {
            let (mut is_string, mut int, mut string) = (false, 0, String::new());
            for field in Fields::new(buf) {
                match field? {
                    (1, wire::Value::Varint(v)) => is_string = v == 1,
                    (2, wire::Value::Varint(v)) => int = v as i32,
                    (3, wire::Value::Len(bytes)) => string = utf8(bytes)?,
                    _ => {}
                }
            }
            Ok(if is_string { string.into() } else { int.into() })
        }
        Form::RawJson => {
            let mut raw: &[u8] = &[];
            for field in Fields::new(buf) {
                if let (1, wire::Value::Len(bytes)) = field? {
                    raw = bytes;
                }
            }
            if raw.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(raw).map_err(|err| {
                TranscodeError::Malformed(format!("{} does not hold JSON: {err}", msg.name))
            })
        }
        Form::OrArray | Form::OrBool | Form::OrStringArray => union(msg, buf),
    }
}

/// The JSON schema unions of CRDs: one field present, and which one
/// decides the JSON type.
fn union(msg: &Message, buf: &[u8]) -> Result<Value, TranscodeError> {
    let mut fields = object(msg, buf)?;
    let schema = msg.fields.iter().find(|f| f.tag == 1).map(|f| f.json);
    let other = msg.fields.iter().find(|f| f.tag == 2).map(|f| f.json);
    let take = |fields: &mut Map<String, Value>, name: Option<&str>| {
        name.and_then(|n| fields.remove(n)).unwrap_or(Value::Null)
    };
    Ok(match msg.form {
        // OrBool: tag 1 is `allows`, tag 2 the schema.
        Form::OrBool => match take(&mut fields, other) {
            Value::Null => take(&mut fields, schema).as_bool().unwrap_or(false).into(),
            schema => schema,
        },
        _ => match take(&mut fields, other) {
            Value::Array(items) if !items.is_empty() => Value::Array(items),
            _ => take(&mut fields, schema),
        },
    })
}

fn object(msg: &Message, buf: &[u8]) -> Result<Map<String, Value>, TranscodeError> {
    let mut out = Map::new();
    for field in Fields::new(buf) {
        let (tag, value) = field?;
        let Some(field) = msg.fields.iter().find(|f| f.tag == tag) else {
            continue;
        };
        match field.label {
            Label::One if field.json.is_empty() => {
                if let (Type::Msg(inner), wire::Value::Len(bytes)) = (field.ty, value) {
                    out.extend(object(inner, bytes)?);
                }
            }
            Label::One => {
                let value = scalar_or_message(msg, field, value)?;
                if !value.is_null() && (field.keep_zero || !is_go_zero(field, &value)) {
                    out.insert(field.json.to_string(), value);
                } else {
                    out.remove(field.json);
                }
            }
            Label::Repeated => {
                let list = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = list {
                    repeated(msg, field, value, list)?;
                }
            }
            Label::Map => {
                let wire::Value::Len(entry) = value else {
                    return Err(wrong_wire(msg, field));
                };
                let (key, value) = map_entry(msg, field, entry)?;
                let map = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, value);
                }
            }
        }
    }
    Ok(out)
}

/// Whether a message field holds what Go's `omitempty` drops; messages
/// are never dropped (Go does not omit structs), scalars are at zero.
fn is_go_zero(field: &Field, value: &Value) -> bool {
    if matches!(field.ty, Type::Msg(_)) {
        return false;
    }
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn repeated(
    msg: &Message,
    field: &Field,
    value: wire::Value<'_>,
    list: &mut Vec<Value>,
) -> Result<(), TranscodeError> {
    // Packed numbers: one length-delimited run of varints.
    if let (Type::I32 | Type::I64 | Type::Bool, wire::Value::Len(mut bytes)) = (field.ty, value) {
        while !bytes.is_empty() {
            let v = prost::encoding::decode_varint(&mut bytes)?;
            list.push(scalar_or_message(msg, field, wire::Value::Varint(v))?);
        }
        return Ok(());
    }
    list.push(scalar_or_message(msg, field, value)?);
    Ok(())
}

fn map_entry(
    msg: &Message,
    field: &Field,
    entry: &[u8],
) -> Result<(String, Value), TranscodeError> {
    let mut key = String::new();
    let mut value = None;
    for part in Fields::new(entry) {
        match part? {
            (1, wire::Value::Len(bytes)) => key = utf8(bytes)?,
            (2, v) => value = Some(scalar_or_message(msg, field, v)?),
            _ => {}
        }
    }
    let value = match (value, field.ty) {
        (Some(v), _) => v,
        (None, Type::Msg(inner)) => message(inner, &[])?,
        (None, Type::Str | Type::Bytes) => "".into(),
        (None, Type::Bool) => false.into(),
        (None, _) => 0.into(),
    };
    Ok((key, value))
}

fn scalar_or_message(
    msg: &Message,
    field: &Field,
    value: wire::Value<'_>,
) -> Result<Value, TranscodeError> {
    Ok(match (field.ty, value) {
        (Type::Str, wire::Value::Len(bytes)) => utf8(bytes)?.into(),
        (Type::Bytes, wire::Value::Len(bytes)) => base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into(),
        (Type::Bool, wire::Value::Varint(v)) => (v != 0).into(),
        (Type::I32, wire::Value::Varint(v)) => (v as i32).into(),
        (Type::I64, wire::Value::Varint(v)) => (v as i64).into(),
        (Type::F64, wire::Value::Fixed64(v)) => {
            serde_json::Number::from_f64(f64::from_bits(v)).map_or(Value::Null, Value::Number)
        }
        (Type::Msg(inner), wire::Value::Len(bytes)) => message(inner, bytes)?,
        _ => return Err(wrong_wire(msg, field)),
    })
}

fn utf8(bytes: &[u8]) -> Result<String, TranscodeError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| TranscodeError::Malformed("a string field is not UTF-8".into()))
}

fn wrong_wire(msg: &Message, field: &Field) -> TranscodeError {
    TranscodeError::Malformed(format!(
        "field {} of {} has the wrong wire type",
        field.tag, msg.name
    ))
}
