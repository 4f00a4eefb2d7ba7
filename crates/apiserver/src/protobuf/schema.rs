//! The shape of the message table in `messages.rs`, which the codegen in
//! `crates/apiserver/codegen` writes from k8s-pb and k8s-openapi.

/// A protobuf message and how its JSON looks.
pub struct Message {
    /// The proto name (`k8s.io.api.core.v1.Pod`), for error messages.
    pub name: &'static str,
    pub form: Form,
    pub fields: &'static [Field],
}

/// The JSON form of a message. Most are objects of their fields; a few
/// well-known types of the API machinery have a JSON form of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Object,
    /// `meta.v1.Time`: seconds (and nanos) ⇄ RFC 3339 to the second.
    Time,
    /// `meta.v1.MicroTime`: seconds and nanos ⇄ RFC 3339 to the microsecond.
    MicroTime,
    /// `resource.Quantity`: its one string field ⇄ a JSON string.
    Quantity,
    /// `intstr.IntOrString`: type, intVal, strVal ⇄ a JSON number or string.
    IntOrString,
    /// Raw JSON bytes (RawExtension, FieldsV1, apiextensions JSON) ⇄ the
    /// JSON value they hold.
    RawJson,
    /// `JSONSchemaPropsOrArray`: a schema ⇄ an object, schemas ⇄ an array.
    OrArray,
    /// `JSONSchemaPropsOrBool`: allows ⇄ a bool, or a schema object.
    OrBool,
    /// `JSONSchemaPropsOrStringArray`: a schema object, or strings.
    OrStringArray,
}

/// One field of a message.
pub struct Field {
    pub tag: u32,
    /// The JSON property; empty for a message embedded inline (Go's
    /// `json:",inline"`), whose fields are the parent's.
    pub json: &'static str,
    pub label: Label,
    pub ty: Type,
    /// Whether a zero scalar read from the wire is kept in JSON (a Go
    /// pointer, or a field without `omitempty`); upstream writes every
    /// non-pointer field, so other zeros stand for "absent".
    pub keep_zero: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    One,
    Repeated,
    /// `map<string, T>`: repeated entries of key 1 and value 2.
    Map,
}

#[derive(Clone, Copy)]
pub enum Type {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    F64,
    Msg(&'static Message),
}

/// A kind's object and list messages.
pub struct Kind {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub object: &'static Message,
    pub list: &'static Message,
}

pub(super) const fn f(tag: u32, json: &'static str, label: Label, ty: Type) -> Field {
    Field {
        tag,
        json,
        label,
        ty,
        keep_zero: false,
    }
}

pub(super) const fn z(tag: u32, json: &'static str, label: Label, ty: Type) -> Field {
    Field {
        tag,
        json,
        label,
        ty,
        keep_zero: true,
    }
}
