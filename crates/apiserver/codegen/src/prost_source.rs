//! k8s-pb's prost structs: one message per struct, its fields' tags, wire
//! types and referenced messages read from the `#[prost(...)]` attributes
//! and the Rust types. Proto names follow the module path
//! (`api::core::v1::Pod` is `k8s.io.api.core.v1.Pod`).

use std::collections::BTreeMap;
use std::path::Path;

use quote::ToTokens;

use crate::Error;

/// A protobuf message as k8s-pb declares it.
pub struct Message {
    /// The module path below the crate root: `["api", "core", "v1"]`.
    pub module: Vec<String>,
    pub rust_name: String,
    pub fields: Vec<Field>,
    /// The `apiVersion` of a kind (k8s-pb's `Resource` impls name it).
    pub api_version: Option<String>,
}

/// One field of a message.
pub struct Field {
    /// The Rust field name without `r#`: `pod_ip`, `type`.
    pub rust_name: String,
    pub tag: u32,
    /// The scalar type (`string`, `int32`, `bytes`, `message`, ...); for
    /// maps, the value type.
    pub scalar: String,
    pub repeated: bool,
    pub map: bool,
    /// The proto name of the message the field holds, if it holds one.
    pub message: Option<String>,
}

pub fn proto_name(module: &[String], rust_name: &str) -> String {
    format!("k8s.io.{}.{rust_name}", module.join("."))
}

/// Every message under `src`, by proto name.
pub fn parse(src: &Path) -> Result<BTreeMap<String, Message>, Error> {
    let mut out = BTreeMap::new();
    walk(src, &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    module: &mut Vec<String>,
    out: &mut BTreeMap<String, Message>,
) -> Result<(), Error> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            module.push(entry.file_name().to_string_lossy().into_owned());
            walk(&path, module, out)?;
            module.pop();
        } else if path.file_name().is_some_and(|n| n == "mod.rs") && !module.is_empty() {
            let file = syn::parse_file(&std::fs::read_to_string(&path)?)?;
            for item in &file.items {
                if let syn::Item::Struct(s) = item
                    && is_message(&s.attrs)
                {
                    let message = message(module, s)
                        .map_err(|err| format!("{}::{}: {err}", module.join("::"), s.ident))?;
                    out.insert(proto_name(module, &message.rust_name), message);
                }
            }
            for item in &file.items {
                if let Some((name, api_version)) = resource(item)
                    && let Some(message) = out.get_mut(&proto_name(module, &name))
                {
                    message.api_version = Some(api_version);
                }
            }
        }
    }
    Ok(())
}

/// `impl crate::Resource for X { const API_VERSION: &str = "apps/v1"; .. }`
/// as `(X, "apps/v1")`.
fn resource(item: &syn::Item) -> Option<(String, String)> {
    let syn::Item::Impl(imp) = item else {
        return None;
    };
    let (_, trait_path, _) = imp.trait_.as_ref()?;
    if !trait_path.segments.last()?.ident.to_string().eq("Resource") {
        return None;
    }
    let syn::Type::Path(ty) = imp.self_ty.as_ref() else {
        return None;
    };
    let name = ty.path.segments.last()?.ident.to_string();
    imp.items.iter().find_map(|i| match i {
        syn::ImplItem::Const(c) if c.ident == "API_VERSION" => match &c.expr {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some((name.clone(), s.value())),
            _ => None,
        },
        _ => None,
    })
}

fn is_message(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("derive") && a.to_token_stream().to_string().contains("prost :: Message")
    })
}

fn message(module: &[String], s: &syn::ItemStruct) -> Result<Message, Error> {
    let mut fields = Vec::new();
    for field in &s.fields {
        let ident = field.ident.as_ref().ok_or("tuple struct")?.to_string();
        let rust_name = ident.trim_start_matches("r#").to_string();
        let attr = field
            .attrs
            .iter()
            .find(|a| a.path().is_ident("prost"))
            .ok_or_else(|| format!("field {rust_name} has no #[prost] attribute"))?;
        let args = attr.meta.require_list()?.tokens.to_string();
        let parts: Vec<&str> = args.split(',').map(str::trim).collect();
        let tag = parts
            .iter()
            .find_map(|p| p.strip_prefix("tag = "))
            .ok_or_else(|| format!("field {rust_name} has no tag"))?
            .trim_matches('"')
            .parse()?;
        let (scalar, map) = match parts[0].strip_prefix("btree_map = \"") {
            // `btree_map = "string, message"` splits at its comma.
            Some(_) => (parts[1].trim_end_matches('"').to_string(), true),
            None => (
                parts[0].split_whitespace().next().unwrap_or("").to_string(),
                false,
            ),
        };
        if map && !parts[0].ends_with("string") {
            return Err(format!("field {rust_name}: map keys other than strings").into());
        }
        let message = (scalar == "message")
            .then(|| referenced(module, &field.ty))
            .transpose()?;
        fields.push(Field {
            rust_name,
            tag,
            scalar,
            repeated: parts.contains(&"repeated"),
            map,
            message,
        });
    }
    Ok(Message {
        module: module.to_vec(),
        rust_name: s.ident.to_string(),
        fields,
        api_version: None,
    })
}

/// The proto name of the message in a field's type (inside `Option`,
/// `Vec`, `Box` or a map), resolving `super::` against `module`.
fn referenced(module: &[String], ty: &syn::Type) -> Result<String, Error> {
    let syn::Type::Path(path) = ty else {
        return Err("unexpected field type".into());
    };
    let last = path.path.segments.last().ok_or("empty type path")?;
    let wrapper = matches!(
        last.ident.to_string().as_str(),
        "Option" | "Vec" | "Box" | "BTreeMap"
    );
    if wrapper {
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return Err("wrapper type without arguments".into());
        };
        let inner = args
            .args
            .iter()
            .filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .last()
            .ok_or("wrapper type without a type argument")?;
        return referenced(module, inner);
    }
    let mut resolved = module.to_vec();
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let (name, dirs) = segments.split_last().ok_or("empty type path")?;
    for dir in dirs {
        if dir == "super" {
            resolved.pop().ok_or("super:: above the crate root")?;
        } else {
            resolved.push(dir.clone());
        }
    }
    Ok(proto_name(&resolved, name))
}
