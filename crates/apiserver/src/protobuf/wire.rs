//! The protobuf wire format at its lowest level: tagged fields read from
//! a buffer and written to one.

use prost::bytes::Buf;
use prost::encoding::{decode_varint, encode_varint};

use super::TranscodeError;

/// One field's value as the wire carries it.
#[derive(Clone, Copy)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    /// Skipped: no Kubernetes message has 32-bit fixed fields.
    Fixed32,
    Len(&'a [u8]),
}

/// The fields of one encoded message, in wire order.
pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Fields<'a> {
        Fields { buf }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), TranscodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        Some(read_field(&mut self.buf))
    }
}

fn read_field<'a>(buf: &mut &'a [u8]) -> Result<(u32, Value<'a>), TranscodeError> {
    let key = decode_varint(buf)?;
    let tag = u32::try_from(key >> 3).map_err(|_| malformed("field tag out of range"))?;
    let value = match key & 7 {
        0 => Value::Varint(decode_varint(buf)?),
        1 => {
            if buf.len() < 8 {
                return Err(malformed("truncated 64-bit field"));
            }
            Value::Fixed64(buf.get_u64_le())
        }
        2 => {
            let len = usize::try_from(decode_varint(buf)?)
                .map_err(|_| malformed("length out of range"))?;
            if buf.len() < len {
                return Err(malformed("truncated length-delimited field"));
            }
            let (head, tail) = buf.split_at(len);
            *buf = tail;
            Value::Len(head)
        }
        5 => {
            if buf.len() < 4 {
                return Err(malformed("truncated 32-bit field"));
            }
            buf.advance(4);
            Value::Fixed32
        }
        other => return Err(malformed(&format!("unsupported wire type {other}"))),
    };
    if tag == 0 {
        return Err(malformed("field tag 0"));
    }
    Ok((tag, value))
}

fn malformed(reason: &str) -> TranscodeError {
    TranscodeError::Malformed(reason.to_string())
}

pub fn put_varint(out: &mut Vec<u8>, tag: u32, value: u64) {
    encode_varint(u64::from(tag) << 3, out);
    encode_varint(value, out);
}

pub fn put_fixed64(out: &mut Vec<u8>, tag: u32, value: u64) {
    encode_varint((u64::from(tag) << 3) | 1, out);
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn put_bytes(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    encode_varint((u64::from(tag) << 3) | 2, out);
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

/// Writes a length-delimited field whose content `write` appends, without
/// a second buffer: one byte is reserved for the length and the content
/// moved along only when the length needs more.
pub fn put_nested<E>(
    out: &mut Vec<u8>,
    tag: u32,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    encode_varint((u64::from(tag) << 3) | 2, out);
    let at = out.len();
    out.push(0);
    write(out)?;
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(5);
        encode_varint(len as u64, &mut prefix);
        out.splice(at..at + 1, prefix);
    }
    Ok(())
}
