//! The objects drivers write: a payload of the requested size, the run's
//! label, and the send-time stamp watchers measure from.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, Pod, PodSpec, Volume, VolumeMount,
};
use kube::api::{DynamicObject, ObjectMeta};
use rand::Rng;
use serde_json::{Value, json};

use crate::resource::Resource;
use crate::{Error, RUN_LABEL, SENT_AT_ANNOTATION};

/// The annotation that carries the payload of kinds with no data field of
/// their own, and of templates.
pub const PAYLOAD_ANNOTATION: &str = "kstress.io/payload";

/// A random printable string of `size` bytes: incompressible enough that
/// the bytes really travel and get stored.
pub fn payload(size: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..size)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Now, as nanoseconds since the Unix epoch, the unit of
/// [`SENT_AT_ANNOTATION`].
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// The pod the pod-stress driver creates: one container that would append
/// the payload to a file in an emptyDir, so the payload travels in the
/// spec as it does in the reference workload.
pub fn stress_pod(name: &str, namespace: &str, image: &str, payload: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([("name".to_owned(), name.to_owned())])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("OnFailure".to_owned()),
            containers: vec![Container {
                name: name.to_owned(),
                image: Some(image.to_owned()),
                image_pull_policy: Some("Always".to_owned()),
                command: Some(vec![
                    "/bin/sh".to_owned(),
                    "-ec".to_owned(),
                    format!("echo -n '{payload}' >> /config/output.txt"),
                ]),
                volume_mounts: Some(vec![VolumeMount {
                    name: "config".to_owned(),
                    mount_path: "/config".to_owned(),
                    ..VolumeMount::default()
                }]),
                ..Container::default()
            }],
            volumes: Some(vec![Volume {
                name: "config".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// Builds objects of one resource for the churn, thrash and watch drivers.
#[derive(Clone, Debug)]
pub struct Template {
    resource: Resource,
    body: Value,
}

impl Template {
    /// A template for `resource` carrying `payload`: a built-in shape for
    /// the kinds kstress knows, `spec.payload` for custom resources.
    pub fn builtin(resource: &Resource, payload: &str) -> Result<Self, Error> {
        Ok(Self {
            resource: resource.clone(),
            body: builtin(resource, payload)?,
        })
    }

    /// The object in `path` (YAML or JSON), written as `resource`; with a
    /// `payload`, padded by the [`PAYLOAD_ANNOTATION`] annotation, the one
    /// place every kind has room for it.
    ///
    /// A template whose `kind` or `apiVersion` is not the resource's is an
    /// error: written as the resource, its fields would be dropped or
    /// refused, and the run would measure some other object than the one
    /// the file describes.
    pub fn from_file(
        resource: &Resource,
        path: &str,
        payload: Option<&str>,
    ) -> Result<Self, Error> {
        let mut body = read_template(path)?;
        let named = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
        let (kind, api_version) = (named("kind"), named("apiVersion"));
        let api = &resource.api;
        if kind.as_ref().is_some_and(|kind| *kind != api.kind)
            || api_version
                .as_ref()
                .is_some_and(|version| *version != api.api_version)
        {
            return Err(Error::TemplateKind {
                path: path.to_owned(),
                template: format!(
                    "{} ({})",
                    kind.as_deref().unwrap_or(&api.kind),
                    api_version.as_deref().unwrap_or(&api.api_version)
                ),
                resource: resource.to_string(),
                kind: format!("{} ({})", api.kind, api.api_version),
            });
        }
        if let Some(payload) = payload {
            let metadata = &mut body["metadata"];
            if !metadata.is_object() {
                *metadata = json!({});
            }
            let annotations = &mut metadata["annotations"];
            if !annotations.is_object() {
                *annotations = json!({});
            }
            annotations[PAYLOAD_ANNOTATION] = payload.into();
        }
        Ok(Self {
            resource: resource.clone(),
            body,
        })
    }

    /// The object called `name`, labelled for `run_id` and stamped now.
    pub fn object(&self, name: &str, namespace: Option<&str>, run_id: &str) -> DynamicObject {
        let mut object: DynamicObject = serde_json::from_value(self.body.clone())
            .unwrap_or_else(|_| DynamicObject::new(name, &self.resource.api));
        object.types = Some(kube::api::TypeMeta {
            api_version: self.resource.api.api_version.clone(),
            kind: self.resource.api.kind.clone(),
        });
        let meta = &mut object.metadata;
        meta.name = Some(name.to_owned());
        meta.generate_name = None;
        meta.resource_version = None;
        meta.uid = None;
        meta.namespace = namespace.map(str::to_owned);
        meta.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(RUN_LABEL.to_owned(), run_id.to_owned());
        stamp(&mut object.metadata);
        object
    }
}

/// Sets [`SENT_AT_ANNOTATION`] to now.
pub fn stamp(meta: &mut ObjectMeta) {
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(SENT_AT_ANNOTATION.to_owned(), now_ns().to_string());
}

/// A merge patch that stamps the object anew, the update of the churn-style
/// drivers: it changes the object (so watchers see a MODIFIED event) without
/// rewriting its payload.
pub fn stamp_patch(sequence: u64) -> Value {
    json!({
        "metadata": {
            "annotations": {
                SENT_AT_ANNOTATION: now_ns().to_string(),
                "kstress.io/update": sequence.to_string(),
            }
        }
    })
}

fn builtin(resource: &Resource, payload: &str) -> Result<Value, Error> {
    let api = &resource.api;
    let body = match (api.group.as_str(), api.plural.as_str()) {
        ("", "configmaps") => json!({ "data": { "payload": payload } }),
        ("", "secrets") => json!({
            "type": "Opaque",
            "stringData": { "payload": payload },
        }),
        ("", "serviceaccounts") => json!({
            "metadata": { "annotations": { PAYLOAD_ANNOTATION: payload } },
        }),
        ("coordination.k8s.io", "leases") => json!({
            "metadata": { "annotations": { PAYLOAD_ANNOTATION: payload } },
            "spec": { "holderIdentity": "kstress" },
        }),
        ("", "pods") => {
            let pod = stress_pod("template", "", "busybox", payload);
            json!({ "spec": pod.spec })
        }
        _ if resource.custom => json!({ "spec": { "payload": payload } }),
        _ => {
            return Err(Error::NoTemplate {
                resource: resource.to_string(),
            });
        }
    };
    Ok(body)
}

fn read_template(path: &str) -> Result<Value, Error> {
    let invalid = |message: String| Error::Template {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|err| invalid(err.to_string()))?;
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|err| invalid(err.to_string()))?
    } else {
        serde_saphyr::from_str(&text).map_err(|err| invalid(err.to_string()))?
    };
    if !value.is_object() {
        return Err(invalid("not an object".to_owned()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_requested_size() {
        assert_eq!(payload(10 * 1024).len(), 10 * 1024);
        assert_ne!(payload(64), payload(64), "payloads are random");
    }

    #[test]
    fn the_stress_pod_carries_its_payload_and_label() {
        let pod = stress_pod("pod1", "ns", "busybox", "xyz");
        let spec = pod.spec.expect("spec");
        assert_eq!(spec.restart_policy.as_deref(), Some("OnFailure"));
        let command = spec.containers[0].command.as_ref().expect("command");
        assert!(command[2].contains("'xyz'"));
        assert_eq!(pod.metadata.labels.expect("labels")["name"], "pod1");
    }

    #[test]
    fn the_stamp_patch_sets_the_send_time() {
        let before = now_ns();
        let patch = stamp_patch(3);
        let sent: i64 = patch["metadata"]["annotations"][SENT_AT_ANNOTATION]
            .as_str()
            .and_then(|text| text.parse().ok())
            .expect("a number");
        assert!(sent >= before);
        assert_eq!(patch["metadata"]["annotations"]["kstress.io/update"], "3");
    }
}
