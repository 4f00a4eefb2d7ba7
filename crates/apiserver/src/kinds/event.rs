//! Events: core/v1 Event is the stored form; events.k8s.io/v1 Event is a
//! view of the same objects under other field names, as upstream serves
//! both from one storage.

use serde_json::{Map, Value};

use super::{Builtin, Kind, NameRule, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static EVENT: Builtin = Builtin {
    short_names: &["ev"],
    ..Builtin::new(
        ("", "v1", "Event", "events"),
        &CoreEvent,
        openapi::type_schema::<k8s_openapi::api::core::v1::Event>(),
    )
};

pub static EVENT_V1: Builtin = Builtin {
    short_names: &["ev"],
    ..Builtin::new(
        ("events.k8s.io", "v1", "Event", "events"),
        &EventV1,
        openapi::type_schema::<k8s_openapi::api::events::v1::Event>(),
    )
};

/// Field renames between events.k8s.io/v1 (left) and core/v1 (right).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

struct CoreEvent;

impl Kind for CoreEvent {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        if let Some(rest) = field.strip_prefix("involvedObject.") {
            return Some(text_at(obj, &format!("/involvedObject/{rest}")));
        }
        match field {
            "reason" => Some(text_at(obj, "/reason")),
            "type" => Some(text_at(obj, "/type")),
            "source" => Some(text_at(obj, "/source/component")),
            _ => None,
        }
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        event_columns()
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        event_cells(obj, "/involvedObject", "/message")
    }
}

struct EventV1;

impl Kind for EventV1 {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        event_columns()
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        event_cells(obj, "/regarding", "/note")
    }

    fn to_storage(&self, obj: &mut Value) {
        rename(obj, |(v1, core)| (*v1, *core));
        obj["apiVersion"] = "v1".into();
    }

    fn view_of_stored(&self, stored: &Value) -> Option<Value> {
        let mut value = stored.clone();
        rename(&mut value, |(v1, core)| (*core, *v1));
        Some(value)
    }

    fn is_view(&self) -> bool {
        true
    }
}

fn event_columns() -> Vec<Value> {
    table::columns(&[
        table::column("Last Seen"),
        table::column("Type"),
        table::column("Reason"),
        table::column("Object"),
        table::column("Message"),
    ])
}

fn event_cells(obj: &Value, object_path: &str, message_path: &str) -> Vec<Value> {
    let object = format!(
        "{}/{}",
        text_at(obj, &format!("{object_path}/kind")).to_lowercase(),
        text_at(obj, &format!("{object_path}/name"))
    );
    vec![
        table::age(obj, "/lastTimestamp").into(),
        text_at(obj, "/type").into(),
        text_at(obj, "/reason").into(),
        object.into(),
        text_at(obj, message_path).into(),
    ]
}

fn rename(
    obj: &mut Value,
    direction: impl Fn(&(&'static str, &'static str)) -> (&'static str, &'static str),
) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let mut moved = Map::new();
    for pair in EVENT_FIELDS {
        let (from, to) = direction(pair);
        if let Some(v) = map.remove(from) {
            moved.insert(to.to_string(), v);
        }
    }
    map.extend(moved);
}
