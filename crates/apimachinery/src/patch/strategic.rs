//! Strategic merge patch application, following upstream's
//! `StrategicMergeMapPatch` (k8s.io/apimachinery `pkg/util/strategicpatch`
//! at v1.33) step by step: the same directive handling, list ordering and
//! error classes, so that what kubectl sends lands the same way.
//!
//! Upstream decodes the merged map into a Go struct, which silently drops
//! anything that is not a field; patches can leave directive keys (`$...`)
//! in places upstream never looks. [`apply`] strips those at the end, the
//! one effect of typed decoding that matters for a JSON store.

use serde_json::{Map, Value};

use super::PatchError;
use super::meta::{ListMerge, Schema};

type Object = Map<String, Value>;

const DIRECTIVE: &str = "$patch";
const DELETE: &str = "delete";
const REPLACE: &str = "replace";
const MERGE: &str = "merge";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Applies `patch` to `original` under `schema`.
pub(super) fn apply(
    original: Object,
    patch: Object,
    schema: Schema<'_>,
) -> Result<Object, PatchError> {
    let mut merged = merge_map(original, patch, schema)?;
    strip_directive_keys(&mut merged);
    Ok(merged)
}

fn merge_map(
    mut original: Object,
    mut patch: Object,
    schema: Schema<'_>,
) -> Result<Object, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some(REPLACE) => {
                patch.remove(DIRECTIVE);
                Ok(patch)
            }
            Some(DELETE) => Ok(Object::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_orders(&mut original, &mut patch, schema)?;

    for (key, patch_value) in patch {
        let (key, delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (
                extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?.to_string(),
                true,
            )
        } else {
            (key, false)
        };
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(original_value) = original.remove(&key) else {
            if !delete_list {
                insert_patch_value(&mut original, key, patch_value);
            }
            continue;
        };
        if Kind::of(&original_value) != Kind::of(&patch_value) {
            if delete_list {
                original.insert(key, original_value);
            } else {
                insert_patch_value(&mut original, key, patch_value);
            }
            continue;
        }
        let field = schema.child(&key);
        let merged = match (original_value, patch_value) {
            (Value::Object(o), Value::Object(p)) => Value::Object(merge_map(o, p, field)?),
            (Value::Array(o), Value::Array(p)) if delete_list || field.list_merge().is_some() => {
                Value::Array(merge_list(o, p, field, &key, delete_list)?)
            }
            (Value::Array(_), Value::Array(p)) => Value::Array(p),
            (_, scalar) => scalar,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// A patch value for a key the original lacks: nulls and `$patch`
/// directives mean nothing there and are dropped.
fn insert_patch_value(original: &mut Object, key: String, mut value: Value) {
    discard_nulls(&mut value);
    if let Some(value) = remove_directives(value) {
        original.insert(key, value);
    }
}

/// `$retainKeys`: keys of the original not listed are cleared; every key
/// the patch sets must be listed.
fn apply_retain_keys(original: &mut Object, patch: &mut Object) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRequest(
            "invalid patch format of retainKeys".into(),
        ));
    };
    let listed = |key: &str| retain.iter().any(|k| k.as_str() == Some(key));
    let unlisted_patch_key = patch.iter().any(|(k, v)| {
        !v.is_null()
            && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            && !k.starts_with(SET_ELEMENT_ORDER)
            && !listed(k)
    });
    if unlisted_patch_key {
        return Err(PatchError::BadRequest(
            "invalid patch format of retainKeys".into(),
        ));
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<list>`: merges the list it names (if the patch has
/// it) and then orders the result: listed items in the listed order, the
/// rest where they were in the live object.
fn merge_set_element_orders(
    original: &mut Object,
    patch: &mut Object,
    schema: Schema<'_>,
) -> Result<(), PatchError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in directives {
        let Some(order) = patch.remove(&directive) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(bad_arg_type("[]interface {}", &order));
        };
        let key = extract_key(&directive, SET_ELEMENT_ORDER)?.to_string();
        let original_list = match original.get(&key) {
            None => None,
            Some(Value::Array(list)) => Some(list.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
        };
        let patch_list = match patch.remove(&key) {
            None => None,
            Some(Value::Array(list)) => Some(list),
            Some(other) => return Err(bad_arg_type("[]interface {}", &other)),
        };
        let field = schema.child(&key);
        let merge_key = field.merge_key();
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or_default(),
            &order,
            merge_key,
        )?;
        let server_order = original_list.clone().unwrap_or_default();
        let patch_items = patch_list.clone().unwrap_or_default();
        let merged = match (original_list, patch_list) {
            (Some(list), None) => list,
            (None, Some(list)) => list.into_iter().filter_map(remove_directives).collect(),
            (Some(o), Some(p)) if field.list_merge().is_some() => {
                merge_list(o, p, field, &key, false)?
            }
            (Some(_), Some(p)) => p,
            (None, None) => continue,
        };
        let (listed, unlisted) = partition(merged, &order, merge_key)?;
        let kind = element_kind(&[&server_order, &patch_items])?;
        let ordered =
            normalize_element_order(listed, unlisted, &order, &server_order, merge_key, kind)?;
        original.insert(key, Value::Array(ordered));
    }
    Ok(())
}

/// Merges two lists of a field whose strategy is `merge` (or a
/// `$deleteFromPrimitiveList`), then orders the result: patch items in
/// patch order, interleaved with the server-only items in live order.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema<'_>,
    field: &str,
    delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_kind(&[&original, &patch])?;
    if kind != Kind::Object {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|item| !patch.contains(item))
                .collect());
        }
        let mut both = original.clone();
        both.extend(patch.iter().cloned());
        let merged = deduplicate_scalars(both);
        let (in_patch, server_only) = partition(merged, &patch, None)?;
        return normalize_element_order(in_patch, server_only, &patch, &original, None, kind);
    }
    let key = match schema.list_merge() {
        Some(ListMerge::ByKey(key)) => key,
        _ => {
            return Err(PatchError::Internal(format!(
                "cannot merge lists without merge key for {field}"
            )));
        }
    };
    let (original, patch) = merge_special_elements(original, patch, key)?;
    let server_order = original.clone();
    let merged = merge_by_key(original, &patch, key, schema)?;
    let (in_patch, server_only) = partition(merged, &patch, Some(key))?;
    normalize_element_order(
        in_patch,
        server_only,
        &patch,
        &server_order,
        Some(key),
        kind,
    )
}

/// Applies the items carrying `$patch`: `delete` removes the matching live
/// items, `replace` makes the other patch items the whole list.
fn merge_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(map) = &item else {
            return Err(bad_arg_type("map[string]interface {}", &item));
        };
        match map.get(DIRECTIVE) {
            None => plain.push(item),
            Some(directive) => match directive.as_str() {
                Some(DELETE) => {
                    let Some(id) = map.get(key) else {
                        return Err(no_merge_key(map, key));
                    };
                    original.retain(|o| o.get(key) != Some(id));
                }
                Some(REPLACE) => replace = true,
                Some(MERGE) => {
                    return Err(PatchError::Internal(
                        "merging lists cannot yet be specified in the patch".into(),
                    ));
                }
                _ => return Err(bad_patch_type(directive, map)),
            },
        }
    }
    Ok(if replace {
        (plain, Vec::new())
    } else {
        (original, plain)
    })
}

/// Merges each patch item into the live item with the same key, or
/// appends it.
fn merge_by_key(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &str,
    schema: Schema<'_>,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let Value::Object(map) = item else {
            return Err(bad_arg_type("map[string]interface {}", item));
        };
        let Some(id) = map.get(key) else {
            return Err(no_merge_key(map, key));
        };
        match find_by_key(&original, key, id)? {
            Some(i) => {
                let live = match std::mem::take(&mut original[i]) {
                    Value::Object(live) => live,
                    _ => Object::new(),
                };
                original[i] = Value::Object(merge_map(live, map.clone(), schema)?);
            }
            None => original.push(item.clone()),
        }
    }
    Ok(original)
}

fn find_by_key(list: &[Value], key: &str, id: &Value) -> Result<Option<usize>, PatchError> {
    for (i, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(PatchError::Internal(format!(
                "value for key {i} is not a map"
            )));
        };
        if map.get(key) == Some(id) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Splits `items` into those present in `by` (by merge key, or by value
/// for scalars) and the others, keeping their order.
fn partition(
    items: Vec<Value>,
    by: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let Some(key) = key else {
        return Ok(items.into_iter().partition(|item| by.contains(item)));
    };
    let mut present = Vec::with_capacity(items.len());
    let mut absent = Vec::new();
    for item in items {
        let Value::Object(map) = &item else {
            return Err(bad_arg_type("map[string]interface {}", &item));
        };
        let Some(id) = map.get(key) else {
            return Err(no_merge_key(map, key));
        };
        if find_by_key(by, key, id)?.is_some() {
            present.push(item);
        } else {
            absent.push(item);
        }
    }
    Ok((present, absent))
}

/// Sorts the patch items by `patch_order` and the server-only items by
/// `server_order`, then interleaves them: a server-only item goes before a
/// patch item only when both are live and it was before it.
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
    kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let patch = normalize_slice_order(patch, patch_order, key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, key, kind)?;
    let position = |item: &Value| {
        let id = identity(item, key, kind);
        server_order
            .iter()
            .position(|o| identity(o, key, kind) == id)
    };
    let mut merged = Vec::with_capacity(patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                matches!((position(l), position(r)), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        merged.extend(next);
    }
    Ok(merged)
}

/// Stable sort of `items` by their position in `order`; for lists of
/// objects, items carrying `$patch: delete` go last.
fn normalize_slice_order(
    items: Vec<Value>,
    order: &[Value],
    key: Option<&str>,
    kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let (mut items, deletes) = if kind == Kind::Object {
        let key = key.unwrap_or_default();
        validate_merge_key(key, &items)?;
        validate_merge_key(key, order)?;
        extract_deletes(items)?
    } else {
        (items, Vec::new())
    };
    items.sort_by_cached_key(|item| {
        let id = identity(item, key, kind);
        order.iter().position(|o| identity(o, key, kind) == id)
    });
    items.extend(deletes);
    Ok(items)
}

/// What identifies a list item: its merge key's value, or itself. A
/// missing key compares equal to a missing key, as upstream's nil does.
fn identity<'v>(item: &'v Value, key: Option<&str>, kind: Kind) -> Option<&'v Value> {
    match (kind, key) {
        (Kind::Object, Some(key)) => item.get(key),
        (Kind::Object, None) => None,
        _ => Some(item),
    }
}

fn validate_merge_key(key: &str, list: &[Value]) -> Result<(), PatchError> {
    for item in list {
        let Value::Object(map) = item else {
            return Err(bad_arg_type("map[string]interface {}", item));
        };
        if !map.contains_key(key) {
            return Err(no_merge_key(map, key));
        }
    }
    Ok(())
}

fn extract_deletes(list: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut keep = Vec::with_capacity(list.len());
    let mut delete = Vec::new();
    for item in list {
        let Value::Object(map) = &item else {
            return Err(bad_arg_type("map[string]interface {}", &item));
        };
        if map.get(DIRECTIVE).and_then(Value::as_str) == Some(DELETE) {
            delete.push(item);
        } else {
            keep.push(item);
        }
    }
    Ok((keep, delete))
}

/// The patch list must name its items in the same relative order as the
/// `$setElementOrder` list, and only items that list names.
fn validate_patch_with_set_order_list(
    patch: &[Value],
    order: &[Value],
    key: Option<&str>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let items = match key {
        Some(_) => extract_deletes(patch.to_vec())?.0,
        None => patch.to_vec(),
    };
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if items[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if merge_key_value_equal(&items[p], &order[o], key)? {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() && o >= order.len() {
        return Err(PatchError::Internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_format(&Value::Array(patch.to_vec())),
            go_format(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_value_equal(
    left: &Value,
    right: &Value,
    key: Option<&str>,
) -> Result<bool, PatchError> {
    let Some(key) = key else {
        return Ok(left == right);
    };
    let (Value::Object(l), Value::Object(r)) = (left, right) else {
        let culprit = if left.is_object() { right } else { left };
        return Err(bad_arg_type("map[string]interface {}", culprit));
    };
    match (l.get(key), r.get(key)) {
        (Some(a), Some(b)) => Ok(a == b),
        (None, _) => Err(no_merge_key(l, key)),
        (_, None) => Err(no_merge_key(r, key)),
    }
}

/// Upstream's in-place deduplication, which moves the last item into each
/// duplicate's slot (the order is normalized afterwards).
fn deduplicate_scalars(mut items: Vec<Value>) -> Vec<Value> {
    let mut i = 0;
    while i + 1 < items.len() {
        let mut j = i + 1;
        while j < items.len() {
            if items[i] == items[j] {
                items.swap_remove(j);
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    items
}

/// The field a `$deleteFromPrimitiveList/<field>` or
/// `$setElementOrder/<field>` directive names.
fn extract_key<'k>(directive: &'k str, prefix: &str) -> Result<&'k str, PatchError> {
    match directive.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => Err(PatchError::BadRequest(
            "invalid patch format of primitive list".into(),
        )),
        _ => Err(PatchError::BadRequest(
            "invalid patch format of setElementOrder list".into(),
        )),
    }
}

/// A JSON value's Go type after upstream's decoding, which keeps integers
/// and floats apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    String,
    Array,
    Object,
}

impl Kind {
    fn of(value: &Value) -> Kind {
        match value {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_f64() => Kind::Float,
            Value::Number(_) => Kind::Int,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    fn go_name(self) -> &'static str {
        match self {
            Kind::Null => "%!s(<nil>)",
            Kind::Bool => "bool",
            Kind::Int => "int64",
            Kind::Float => "float64",
            Kind::String => "string",
            Kind::Array => "[]interface {}",
            Kind::Object => "map[string]interface {}",
        }
    }
}

/// The one element type of the given lists; lists of lists and mixed
/// lists are refused.
fn element_kind(lists: &[&[Value]]) -> Result<Kind, PatchError> {
    let mut kind = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let this = Kind::of(item);
        match kind {
            None if this == Kind::Array => {
                return Err(PatchError::Unprocessable(
                    "lists of lists are not supported".into(),
                ));
            }
            None => kind = Some(this),
            Some(previous) if previous != this => {
                let lists: Vec<String> = lists
                    .iter()
                    .map(|l| go_format(&Value::Array(l.to_vec())))
                    .collect();
                return Err(PatchError::Internal(format!(
                    "list element types are not identical: [{}]",
                    lists.join(" ")
                )));
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| PatchError::Internal("no elements in any of the given slices".into()))
}

/// Drops null members from objects, recursively (upstream's
/// `discardNullValuesFromPatch`).
fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Drops every object carrying `$patch`, recursively; `None` when the
/// value itself is one.
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) if map.contains_key(DIRECTIVE) => None,
        Value::Object(map) => Some(Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect(),
        )),
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Removes `$`-prefixed keys everywhere: no Kubernetes field starts with
/// `$`, so upstream's typed decoding drops them.
fn strip_directive_keys(map: &mut Object) {
    map.retain(|k, _| !k.starts_with('$'));
    for value in map.values_mut() {
        strip_value(value);
    }
}

fn strip_value(value: &mut Value) {
    match value {
        Value::Object(map) => strip_directive_keys(map),
        Value::Array(items) => items.iter_mut().for_each(strip_value),
        _ => {}
    }
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    PatchError::Internal(format!(
        "expected a {expected}, but received a {}",
        Kind::of(actual).go_name()
    ))
}

fn bad_patch_type(directive: &Value, map: &Object) -> PatchError {
    PatchError::Internal(format!(
        "unknown patch type: {} in map: {}",
        go_format(directive),
        go_format(&Value::Object(map.clone()))
    ))
}

fn no_merge_key(map: &Object, key: &str) -> PatchError {
    PatchError::Internal(format!(
        "map: {} does not contain declared merge key: {key}",
        go_format(&Value::Object(map.clone()))
    ))
}

/// Go's `%v` of a decoded JSON value, for upstream's error texts:
/// `map[a:1 b:[x y]]`.
fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_format).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}
