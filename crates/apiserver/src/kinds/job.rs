//! batch/v1 Job: completions, parallelism and back-off defaults, and the
//! selector of the Job's own uid unless the user manages it.

use serde_json::{Value, json};

use super::{Builtin, Kind, not_supported, set_default, workload};
use crate::error::FieldError;
use crate::registry::ResourceDef;
use crate::table;

pub static JOB: Builtin = Builtin {
    categories: &["all"],
    status: true,
    generation: true,
    ..Builtin::new(
        ("batch", "v1", "Job", "jobs"),
        &Job,
        openapi::type_schema::<k8s_openapi::api::batch::v1::Job>(),
    )
};

struct Job;

/// Like upstream, a Job selects its pods by its own uid: the selector and
/// the template's labels carry it.
fn select_own_pods(spec: &mut serde_json::Map<String, Value>, uid: &str) {
    let labels = json!({
        "batch.kubernetes.io/controller-uid": uid,
        "controller-uid": uid,
    });
    if !spec.contains_key("selector") {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
    }
    if let Some(template_meta) = spec
        .get_mut("template")
        .and_then(Value::as_object_mut)
        .map(|t| t.entry("metadata").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        let template_labels = template_meta.entry("labels").or_insert_with(|| json!({}));
        if let (Some(dst), Some(src)) = (template_labels.as_object_mut(), labels.as_object()) {
            for (k, v) in src {
                dst.entry(k.clone()).or_insert(v.clone());
            }
        }
    }
}

impl Kind for Job {
    fn defaults(&self, obj: &mut Value) {
        let uid = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        set_default(spec, "parallelism", 1.into());
        set_default(spec, "backoffLimit", 6.into());
        set_default(spec, "completionMode", "NonIndexed".into());
        set_default(spec, "suspend", false.into());
        set_default(spec, "manualSelector", false.into());
        set_default(spec, "podReplacementPolicy", "TerminatedOrFailed".into());
        if !spec.contains_key("completions") {
            let parallelism = spec.get("parallelism").cloned().unwrap_or(1.into());
            let indexed = spec.get("completionMode").and_then(Value::as_str) == Some("Indexed");
            spec.insert(
                "completions".into(),
                if indexed { parallelism } else { 1.into() },
            );
        }
        if spec.get("manualSelector") != Some(&Value::Bool(true)) && !uid.is_empty() {
            select_own_pods(spec, &uid);
        }
        workload::default_template(obj);
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, errors: &mut Vec<FieldError>) {
        workload::validate_template(obj, errors);
        if let Some(policy) = obj
            .pointer("/spec/template/spec/restartPolicy")
            .and_then(Value::as_str)
            && !matches!(policy, "OnFailure" | "Never")
        {
            errors.push(not_supported(
                "spec.template.spec.restartPolicy",
                policy,
                &["OnFailure", "Never"],
            ));
        }
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Status"),
            table::column("Completions"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        let completions = table::int(obj, "/spec/completions");
        let succeeded = table::int(obj, "/status/succeeded");
        let status = if succeeded >= completions && completions > 0 {
            "Complete"
        } else if table::int(obj, "/status/failed") > 0 && table::int(obj, "/status/active") == 0 {
            "Failed"
        } else {
            "Running"
        };
        vec![
            table::name(obj).into(),
            status.into(),
            format!("{succeeded}/{completions}").into(),
            table::created(obj).into(),
        ]
    }
}
