//! Custom resources: the rules every CRD's resources share, with what
//! differs between them (scope, subresources, printer columns, schema)
//! read from their [`ResourceDef`].

use serde_json::{Value, json};

use super::{Kind, NameRule};
use crate::registry::ResourceDef;
use crate::table;

/// The rules of every custom resource.
pub static CUSTOM_RESOURCE: CustomResource = CustomResource;

pub struct CustomResource;

impl Kind for CustomResource {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    /// Name, then the CRD's additionalPrinterColumns; Age when it has none.
    fn columns(&self, def: &ResourceDef) -> Vec<Value> {
        let mut columns = table::columns(&[table::name_column()]);
        if def.printer_columns.is_empty() {
            columns.push(
                json!({"name": "Age", "type": "date", "format": "", "description": "", "priority": 0}),
            );
        }
        for c in &def.printer_columns {
            columns.push(json!({"name": c.name, "type": c.type_, "format": "", "description": c.description, "priority": c.priority}));
        }
        columns
    }

    fn cells(&self, def: &ResourceDef, obj: &Value) -> Vec<Value> {
        let mut cells = vec![Value::String(table::name(obj))];
        if def.printer_columns.is_empty() {
            cells.push(table::created(obj).into());
        }
        for c in &def.printer_columns {
            let pointer = format!("/{}", c.json_path.trim_start_matches('.').replace('.', "/"));
            let value = obj.pointer(&pointer).cloned().unwrap_or(Value::Null);
            cells.push(match (c.type_.as_str(), &value) {
                ("date", Value::String(_)) => table::age(obj, &pointer).into(),
                _ => value,
            });
        }
        cells
    }

    fn strategic_merge(&self) -> bool {
        false
    }
}
