//! batch/v1 CronJob: Jobs created on a cron schedule.

use serde_json::Value;

use super::pod::{default_pod_spec, validate_pod_spec};
use super::{Builtin, Kind, set_default, text_at};
use crate::error::FieldError;
use crate::registry::ResourceDef;
use crate::table;

pub static CRON_JOB: Builtin = Builtin {
    short_names: &["cj"],
    categories: &["all"],
    status: true,
    generation: true,
    ..Builtin::new(
        ("batch", "v1", "CronJob", "cronjobs"),
        &CronJob,
        openapi::type_schema::<k8s_openapi::api::batch::v1::CronJob>(),
    )
};

struct CronJob;

impl Kind for CronJob {
    fn defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            set_default(spec, "concurrencyPolicy", "Allow".into());
            set_default(spec, "suspend", false.into());
            set_default(spec, "successfulJobsHistoryLimit", 3.into());
            set_default(spec, "failedJobsHistoryLimit", 1.into());
        }
        default_pod_spec(obj.pointer_mut("/spec/jobTemplate/spec/template/spec"));
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, errors: &mut Vec<FieldError>) {
        if obj
            .pointer("/spec/schedule")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            errors.push(FieldError::required("spec.schedule"));
        }
        match obj.pointer("/spec/jobTemplate/spec/template") {
            Some(template) => validate_pod_spec(
                template.get("spec"),
                "spec.jobTemplate.spec.template.spec",
                errors,
            ),
            None => errors.push(FieldError::required("spec.jobTemplate.spec.template")),
        }
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Schedule"),
            table::column("Timezone"),
            table::column("Suspend"),
            table::int_column("Active"),
            table::column("Last Schedule"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        let active = obj
            .pointer("/status/active")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let last = match obj.pointer("/status/lastScheduleTime") {
            Some(_) => table::age(obj, "/status/lastScheduleTime"),
            None => "<none>".into(),
        };
        vec![
            table::name(obj).into(),
            text_at(obj, "/spec/schedule").into(),
            table::or_none(text_at(obj, "/spec/timeZone")).into(),
            text_at(obj, "/spec/suspend").into(),
            active.into(),
            last.into(),
            table::created(obj).into(),
        ]
    }
}
