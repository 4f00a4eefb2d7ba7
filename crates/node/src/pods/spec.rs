//! From a pod's spec to what the runtime runs: command line, environment,
//! mounts, with Kubernetes' `$(VAR)` expansion and downward-API fields.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};

use crate::runtime::{ContainerRun, Mount, PodSandbox};

/// Where a container's termination message is read from by default.
const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// The pod's sandbox: its identity and volumes.
pub fn sandbox(pod: &Pod) -> PodSandbox {
    PodSandbox {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        empty_dirs: pod
            .spec
            .iter()
            .flat_map(|spec| spec.volumes.iter().flatten())
            .map(|volume| volume.name.clone())
            .collect(),
    }
}

/// The run of `container` that would be its `attempt`-th start.
pub fn container_run(pod: &Pod, container: &Container, attempt: u32, pod_ip: &str) -> ContainerRun {
    let meta = &pod.metadata;
    let env = environment(pod, container, pod_ip);
    let lookup: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let argv = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(|arg| expand(arg, &lookup))
        .collect();
    ContainerRun {
        pod_uid: meta.uid.clone().unwrap_or_default(),
        pod_name: meta.name.clone().unwrap_or_default(),
        container: container.name.clone(),
        attempt,
        argv,
        working_dir: container.working_dir.clone().filter(|d| !d.is_empty()),
        mounts: container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| Mount {
                volume: m.name.clone(),
                path: m.mount_path.clone(),
                read_only: m.read_only.unwrap_or(false),
            })
            .collect(),
        termination_message_path: container
            .termination_message_path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_TERMINATION_MESSAGE_PATH.to_owned()),
        annotations: meta.annotations.clone().unwrap_or_default(),
        env,
    }
}

/// The container's environment in order, later variables able to refer to
/// earlier ones.
fn environment(pod: &Pod, container: &Container, pod_ip: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container.env.iter().flatten() {
        let lookup: HashMap<&str, &str> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let value = match (&var.value, field_value(pod, var, pod_ip)) {
            (Some(value), _) => expand(value, &lookup),
            (None, Some(value)) => value,
            (None, None) => String::new(),
        };
        env.retain(|(name, _)| name != &var.name);
        env.push((var.name.clone(), value));
    }
    env
}

/// A `valueFrom.fieldRef` value of the downward API.
fn field_value(pod: &Pod, var: &EnvVar, pod_ip: &str) -> Option<String> {
    let path = var
        .value_from
        .as_ref()?
        .field_ref
        .as_ref()?
        .field_path
        .as_str();
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let keyed = |prefix: &str, map: Option<&std::collections::BTreeMap<String, String>>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        map?.get(key).cloned()
    };
    match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.hostIP" => Some(pod_ip.to_owned()),
        _ => keyed("metadata.labels['", meta.labels.as_ref())
            .or_else(|| keyed("metadata.annotations['", meta.annotations.as_ref())),
    }
}

/// Kubernetes' `$(VAR)` expansion: defined variables are replaced, `$$`
/// escapes a `$`, anything else is left as written.
fn expand(input: &str, env: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(close) = inner.find(')')
            && let Some(value) = env.get(&inner[..close])
        {
            out.push_str(value);
            rest = &inner[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EnvVarSource, ObjectFieldSelector, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let env: HashMap<&str, &str> = [("A", "1"), ("B", "two")].into_iter().collect();
        assert_eq!(expand("$(A)-$(B)", &env), "1-two");
        assert_eq!(expand("$$(A) $(C) $", &env), "$(A) $(C) $");
        assert_eq!(expand("echo $(A", &env), "echo $(A");
    }

    #[test]
    fn runs_carry_argv_env_and_mounts() {
        let container = Container {
            name: "c".into(),
            command: Some(vec!["sh".into(), "-c".into()]),
            args: Some(vec!["echo $(GREETING) $(POD)".into()]),
            env: Some(vec![
                EnvVar {
                    name: "POD".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            ..ObjectFieldSelector::default()
                        }),
                        ..EnvVarSource::default()
                    }),
                    ..EnvVar::default()
                },
                EnvVar {
                    name: "GREETING".into(),
                    value: Some("hello-$(POD)".into()),
                    ..EnvVar::default()
                },
            ]),
            ..Container::default()
        };
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![container.clone()],
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        let run = container_run(&pod, &container, 2, "10.0.0.1");
        assert_eq!(run.argv, ["sh", "-c", "echo hello-web web"]);
        assert_eq!(run.attempt, 2);
        assert_eq!(run.termination_message_path, "/dev/termination-log");
        assert_eq!(run.env[1], ("GREETING".to_owned(), "hello-web".to_owned()));
    }
}
