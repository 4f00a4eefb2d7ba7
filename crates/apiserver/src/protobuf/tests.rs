//! Round trips through the table: JSON as k8s-openapi serializes an
//! object, encoded here, must decode with k8s-pb's prost types, and what
//! k8s-pb encodes must decode here into that same JSON.

use k8s_openapi::api as oa;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as oa_ext;
use k8s_pb::api as pb;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as pb_ext;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb_meta;
use prost::Message as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;

/// The `raw` of an envelope, read with k8s-pb's `runtime.Unknown`.
fn unwrap(encoded: &[u8]) -> (String, String, Vec<u8>) {
    let envelope = encoded.strip_prefix(MAGIC).expect("magic");
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(envelope).expect("Unknown");
    let meta = unknown.type_meta.expect("typeMeta");
    (
        meta.api_version.unwrap_or_default(),
        meta.kind.unwrap_or_default(),
        unknown.raw.unwrap_or_default(),
    )
}

/// Decodes a bare message of the kind named by `oracle` back to JSON.
fn decode_bare(oracle: &Value, raw: &[u8]) -> Value {
    let api_version = oracle["apiVersion"].as_str().unwrap();
    let kind = oracle["kind"].as_str().unwrap();
    let message = message_for(api_version, kind).expect("a message for the kind");
    let mut back = decode::message(message, raw).expect("decodes");
    back["apiVersion"] = api_version.into();
    back["kind"] = kind.into();
    back
}

/// k8s-openapi's JSON of `json` (O) → our encoder → k8s-pb (P) decodes
/// it and encodes it again → our decoder: the JSON comes back unchanged.
fn round_trip<O: Serialize + DeserializeOwned, P: prost::Message + Default>(json: Value) -> P {
    let typed: O = serde_json::from_value(json).expect("k8s-openapi reads the object");
    let mut oracle = serde_json::to_value(&typed).unwrap();
    // k8s-openapi writes apiVersion and kind into embedded objects too (a
    // StatefulSet's claim templates); their messages have no TypeMeta, so
    // upstream's protobuf does not carry them either.
    if let Some(claims) = oracle
        .pointer_mut("/spec/volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for claim in claims.iter_mut().filter_map(Value::as_object_mut) {
            claim.remove("apiVersion");
            claim.remove("kind");
        }
    }
    let encoded = encode(&oracle).expect("encodes");
    let (api_version, kind, raw) = unwrap(&encoded);
    assert_eq!(api_version, oracle["apiVersion"]);
    assert_eq!(kind, oracle["kind"]);
    let decoded = P::decode(raw.as_slice()).expect("k8s-pb decodes our encoding");
    let back = decode_bare(&oracle, &decoded.encode_to_vec());
    assert_eq!(back, oracle, "round trip of {kind}");
    decoded
}

fn meta(name: &str) -> Value {
    json!({
        "name": name,
        "namespace": "team",
        "uid": "0b7e9f0e-4c1e-4c8c-9a51-5f9d7c1d2a10",
        "resourceVersion": "42",
        "generation": 3,
        "creationTimestamp": "2026-11-30T12:00:00Z",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": "a b c"},
        "finalizers": ["kstress.io/keep"],
        "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
            "uid": "7d1c1c6e-0000-4000-8000-000000000001",
            "controller": true, "blockOwnerDeletion": false,
        }],
        "managedFields": [{
            "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
            "time": "2026-11-30T12:00:01Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
        }],
    })
}

fn pod_spec() -> Value {
    json!({
        "containers": [{
            "name": "main",
            "image": "nginx:1.27",
            "command": ["nginx", "-g", "daemon off;"],
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
            "env": [
                {"name": "GREETING", "value": "hi"},
                {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": false}}},
            ],
            "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 3},
            "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
            "securityContext": {"runAsUser": 0, "privileged": false},
        }],
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "config", "configMap": {"name": "cm", "defaultMode": 420}},
        ],
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        "terminationGracePeriodSeconds": 30,
        "restartPolicy": "Always",
        "serviceAccountName": "default",
    })
}

fn template() -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()})
}

fn selector() -> Value {
    json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]})
}

fn condition() -> Value {
    json!({"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T12:00:05Z", "reason": "Up", "message": "ok"})
}

#[test]
fn every_builtin_kind_and_its_list_has_a_message() {
    for builtin in crate::kinds::BUILTINS {
        let api_version = match builtin.group {
            "" => builtin.version.to_string(),
            group => format!("{group}/{}", builtin.version),
        };
        assert!(
            message_for(&api_version, builtin.kind).is_some(),
            "{api_version} {}",
            builtin.kind
        );
        assert!(message_for(&api_version, &format!("{}List", builtin.kind)).is_some());
    }
}

#[test]
fn core_kinds_round_trip() {
    let pod = round_trip::<oa::core::v1::Pod, pb::core::v1::Pod>(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta("web"), "spec": pod_spec(),
        "status": {
            "phase": "Running", "podIP": "10.0.0.7", "podIPs": [{"ip": "10.0.0.7"}],
            "startTime": "2026-11-30T12:00:02Z", "conditions": [condition()],
            "containerStatuses": [{
                "name": "main", "ready": true, "restartCount": 0, "image": "nginx:1.27", "imageID": "sha256:abc",
                "started": true, "state": {"running": {"startedAt": "2026-11-30T12:00:03Z"}},
            }],
            "qosClass": "Burstable",
        },
    }));
    // The fields land on the tags k8s-pb gives them.
    let spec = pod.spec.unwrap();
    let container = &spec.containers[0];
    assert_eq!(container.image.as_deref(), Some("nginx:1.27"));
    let requests = &container.resources.as_ref().unwrap().requests;
    assert_eq!(requests["cpu"].string.as_deref(), Some("250m"));
    let probe_port = container
        .readiness_probe
        .as_ref()
        .unwrap()
        .handler
        .as_ref()
        .unwrap();
    let port = probe_port.http_get.as_ref().unwrap().port.as_ref().unwrap();
    assert_eq!(
        (port.r#type, port.str_val.as_deref()),
        (Some(1), Some("http"))
    );
    assert_eq!(pod.status.unwrap().pod_ip.as_deref(), Some("10.0.0.7"));
    let created = pod.metadata.unwrap().creation_timestamp.unwrap();
    assert_eq!(created.seconds, Some(1_796_040_000));

    round_trip::<oa::core::v1::Namespace, pb::core::v1::Namespace>(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"a": "b"}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"},
    }));
    let cm = round_trip::<oa::core::v1::ConfigMap, pb::core::v1::ConfigMap>(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cm"),
        "data": {"k": "v", "empty": ""}, "binaryData": {"bin": "AAEC"}, "immutable": true,
    }));
    assert_eq!(cm.binary_data["bin"], vec![0, 1, 2]);
    let secret = round_trip::<oa::core::v1::Secret, pb::core::v1::Secret>(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": meta("s"),
        "type": "Opaque", "data": {"password": "aHVudGVyMg=="},
    }));
    assert_eq!(secret.data["password"], b"hunter2");
    let svc = round_trip::<oa::core::v1::Service, pb::core::v1::Service>(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": meta("s"),
        "spec": {
            "type": "ClusterIP", "selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}, {"name": "named", "port": 81, "targetPort": "http"}],
            "sessionAffinity": "None", "ipFamilies": ["IPv4"],
        },
        "status": {"loadBalancer": {}},
    }));
    let target = svc.spec.unwrap().ports[0].target_port.clone().unwrap();
    assert_eq!((target.r#type, target.int_val), (Some(0), Some(8080)));
    round_trip::<oa::core::v1::ServiceAccount, pb::core::v1::ServiceAccount>(json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("sa"),
        "secrets": [{"name": "token"}], "automountServiceAccountToken": false,
    }));
    round_trip::<oa::core::v1::Node, pb::core::v1::Node>(json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
        "spec": {"podCIDR": "10.244.1.0/24", "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"}, "allocatable": {"cpu": "7500m"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-11-30T12:00:00Z"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "nodeInfo": {"machineID": "m", "systemUUID": "u", "bootID": "b", "kernelVersion": "6.1", "osImage": "kstress",
                         "containerRuntimeVersion": "sim://1", "kubeletVersion": "v1.33.0", "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"},
        },
    }));
    round_trip::<oa::core::v1::ReplicationController, pb::core::v1::ReplicationController>(json!({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": meta("rc"),
        "spec": {"replicas": 0, "selector": {"app": "web"}, "template": template()},
        "status": {"replicas": 0, "observedGeneration": 3},
    }));
    round_trip::<oa::core::v1::PersistentVolumeClaim, pb::core::v1::PersistentVolumeClaim>(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("data"),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "standard"},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}},
    }));
    round_trip::<oa::core::v1::PersistentVolume, pb::core::v1::PersistentVolume>(json!({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data", "type": "DirectoryOrCreate"},
                 "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "team", "name": "data"}},
        "status": {"phase": "Available"},
    }));
    round_trip::<oa::core::v1::Endpoints, pb::core::v1::Endpoints>(json!({
        "apiVersion": "v1", "kind": "Endpoints", "metadata": meta("s"),
        "subsets": [{"addresses": [{"ip": "10.0.0.7", "targetRef": {"kind": "Pod", "name": "web", "namespace": "team"}}],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}],
    }));
    round_trip::<oa::core::v1::ResourceQuota, pb::core::v1::ResourceQuota>(json!({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta("q"),
        "spec": {"hard": {"pods": "10", "requests.cpu": "4"}}, "status": {"hard": {"pods": "10"}, "used": {"pods": "1"}},
    }));
    round_trip::<oa::core::v1::LimitRange, pb::core::v1::LimitRange>(json!({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": meta("l"),
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]},
    }));
    round_trip::<oa::core::v1::PodTemplate, pb::core::v1::PodTemplate>(json!({
        "apiVersion": "v1", "kind": "PodTemplate", "metadata": meta("t"), "template": template(),
    }));
    round_trip::<oa::core::v1::Event, pb::core::v1::Event>(json!({
        "apiVersion": "v1", "kind": "Event", "metadata": meta("web.1"),
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "team"},
        "reason": "Scheduled", "message": "assigned", "type": "Normal", "count": 1,
        "firstTimestamp": "2026-11-30T12:00:00Z", "lastTimestamp": "2026-11-30T12:00:00Z",
        "eventTime": "2026-11-30T12:00:00.123456Z", "source": {"component": "scheduler"},
        "reportingComponent": "scheduler", "reportingInstance": "kstress",
    }));
}

#[test]
fn group_kinds_round_trip() {
    let deployment = round_trip::<oa::apps::v1::Deployment, pb::apps::v1::Deployment>(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web"),
        "spec": {
            "replicas": 0, "selector": selector(), "template": template(),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
        },
        "status": {"replicas": 1, "readyReplicas": 1, "observedGeneration": 3,
                   "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2026-11-30T12:00:00Z"}]},
    }));
    // Zero replicas is a value (Go's *int32), not an absent field.
    assert_eq!(deployment.spec.unwrap().replicas, Some(0));
    round_trip::<oa::apps::v1::ReplicaSet, pb::apps::v1::ReplicaSet>(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta("web-1"),
        "spec": {"replicas": 2, "selector": selector(), "template": template()},
        "status": {"replicas": 2, "fullyLabeledReplicas": 2},
    }));
    round_trip::<oa::apps::v1::StatefulSet, pb::apps::v1::StatefulSet>(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("db"),
        "spec": {"replicas": 3, "serviceName": "db", "selector": selector(), "template": template(),
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
        "status": {"replicas": 3, "currentRevision": "db-1"},
    }));
    round_trip::<oa::apps::v1::DaemonSet, pb::apps::v1::DaemonSet>(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("agent"),
        "spec": {"selector": selector(), "template": template(), "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}},
        "status": {"currentNumberScheduled": 1, "numberMisscheduled": 0, "desiredNumberScheduled": 1, "numberReady": 1},
    }));
    round_trip::<oa::apps::v1::ControllerRevision, pb::apps::v1::ControllerRevision>(json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta("web-abc"),
        "data": {"spec": {"template": {"$patch": "replace", "spec": {"containers": [{"name": "main"}]}}}}, "revision": 2,
    }));
    round_trip::<oa::batch::v1::Job, pb::batch::v1::Job>(json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": meta("x"),
        "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 6, "suspend": false, "ttlSecondsAfterFinished": 0,
                 "template": {"spec": {"containers": [{"name": "x", "image": "busybox"}], "restartPolicy": "Never"}}},
        "status": {"active": 1, "startTime": "2026-11-30T12:00:00Z", "uncountedTerminatedPods": {}},
    }));
    round_trip::<oa::batch::v1::CronJob, pb::batch::v1::CronJob>(json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("c"),
        "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 0,
                 "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}},
        "status": {"lastScheduleTime": "2026-11-30T12:05:00Z"},
    }));
    round_trip::<oa::coordination::v1::Lease, pb::coordination::v1::Lease>(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta("node-1"),
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": "2026-11-30T12:00:00.500000Z"},
    }));
    round_trip::<oa::events::v1::Event, pb::events::v1::Event>(json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("web.2"),
        "eventTime": "2026-11-30T12:00:00.000001Z", "reportingController": "kstress", "reportingInstance": "i",
        "action": "Binding", "reason": "Scheduled", "regarding": {"kind": "Pod", "name": "web"}, "type": "Normal",
        "series": {"count": 2, "lastObservedTime": "2026-11-30T12:01:00.000000Z"},
    }));
    round_trip::<oa::networking::v1::Ingress, pb::networking::v1::Ingress>(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("i"),
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]},
    }));
    round_trip::<oa::networking::v1::IngressClass, pb::networking::v1::IngressClass>(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
        "spec": {"controller": "k8s.io/ingress-nginx"},
    }));
    round_trip::<oa::networking::v1::NetworkPolicy, pb::networking::v1::NetworkPolicy>(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("deny"),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}, {"port": "http"}],
                 "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]},
    }));
    round_trip::<oa::policy::v1::PodDisruptionBudget, pb::policy::v1::PodDisruptionBudget>(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("pdb"),
        "spec": {"minAvailable": "50%", "selector": selector()},
        "status": {"currentHealthy": 1, "desiredHealthy": 1, "disruptionsAllowed": 0, "expectedPods": 2, "conditions": [condition()]},
    }));
    round_trip::<oa::storage::v1::StorageClass, pb::storage::v1::StorageClass>(json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"},
        "provisioner": "kstress.io/sim", "parameters": {"type": "ssd"}, "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true,
    }));
    round_trip::<oa::scheduling::v1::PriorityClass, pb::scheduling::v1::PriorityClass>(json!({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"},
        "value": 1000000, "globalDefault": true, "description": "important", "preemptionPolicy": "Never",
    }));
    round_trip::<oa::discovery::v1::EndpointSlice, pb::discovery::v1::EndpointSlice>(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta("s-abc"),
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": true, "serving": true, "terminating": false}, "nodeName": "node-1"}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    }));
    round_trip::<oa::rbac::v1::ClusterRole, pb::rbac::v1::ClusterRole>(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"},
        "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/metrics"]}],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]},
    }));
    round_trip::<oa::rbac::v1::ClusterRoleBinding, pb::rbac::v1::ClusterRoleBinding>(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}],
    }));
    round_trip::<oa::rbac::v1::Role, pb::rbac::v1::Role>(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta("r"),
        "rules": [{"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"]}],
    }));
    round_trip::<oa::rbac::v1::RoleBinding, pb::rbac::v1::RoleBinding>(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta("rb"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "team"}],
    }));
}

#[test]
fn custom_resource_definitions_round_trip_with_their_schema_unions() {
    let crd = round_trip::<oa_ext::CustomResourceDefinition, pb_ext::CustomResourceDefinition>(
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer", "default": 3, "minimum": 1.0},
                                    "mode": {"type": "string", "enum": ["a", "b"]},
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                    "extra": {"type": "object", "additionalProperties": {"type": "string"}},
                                    "free": {"type": "object", "additionalProperties": false},
                                    "both": {"type": "object", "dependencies": {"a": ["b"], "c": {"required": ["d"]}}},
                                },
                                "x-kubernetes-preserve-unknown-fields": true,
                            },
                            "status": {"type": "object", "x-kubernetes-int-or-string": true},
                        },
                        "required": ["spec"],
                    }},
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                }],
            },
        }),
    );
    let version = &crd.spec.unwrap().versions[0];
    let schema = version
        .schema
        .as_ref()
        .unwrap()
        .open_apiv3_schema
        .as_ref()
        .unwrap();
    let size = &schema.properties["spec"].properties["size"];
    assert_eq!(
        size.default.as_ref().unwrap().raw.as_deref(),
        Some(&b"3"[..])
    );
}

#[test]
fn what_k8s_pb_encodes_decodes_to_k8s_openapi_json() {
    let pod = pb::core::v1::Pod {
        metadata: Some(pb_meta::ObjectMeta {
            name: Some("web".into()),
            labels: [("app".to_string(), "web".to_string())].into(),
            creation_timestamp: Some(pb_meta::Time {
                seconds: Some(1_796_040_000),
                nanos: Some(0),
            }),
            ..Default::default()
        }),
        spec: Some(pb::core::v1::PodSpec {
            containers: vec![pb::core::v1::Container {
                name: Some("main".into()),
                image: Some("nginx".into()),
                resources: Some(pb::core::v1::ResourceRequirements {
                    limits: [(
                        "cpu".to_string(),
                        k8s_pb::apimachinery::pkg::api::resource::Quantity {
                            string: Some("1".into()),
                        },
                    )]
                    .into(),
                    ..Default::default()
                }),
                ports: vec![pb::core::v1::ContainerPort {
                    container_port: Some(80),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let oracle = serde_json::to_value(oa::core::v1::Pod {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("web".into()),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            creation_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(1_796_040_000).unwrap(),
            )),
            ..Default::default()
        },
        spec: Some(oa::core::v1::PodSpec {
            containers: vec![oa::core::v1::Container {
                name: "main".into(),
                image: Some("nginx".into()),
                resources: Some(oa::core::v1::ResourceRequirements {
                    limits: Some(
                        [(
                            "cpu".to_string(),
                            k8s_openapi::apimachinery::pkg::api::resource::Quantity("1".into()),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                }),
                ports: Some(vec![oa::core::v1::ContainerPort {
                    container_port: 80,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    })
    .unwrap();
    assert_eq!(decode_bare(&oracle, &pod.encode_to_vec()), oracle);
}

/// What upstream's Go encoder writes for a `kubectl create deployment`:
/// every non-pointer field, zero or not. JSON shows what Go's JSON shows.
#[test]
fn zero_values_of_non_pointer_fields_stand_for_absent() {
    let deployment = pb::apps::v1::Deployment {
        metadata: Some(pb_meta::ObjectMeta {
            name: Some("web".into()),
            generate_name: Some(String::new()),
            namespace: Some(String::new()),
            generation: Some(0),
            creation_timestamp: Some(pb_meta::Time {
                seconds: Some(wellknown::ZERO_TIME_SECONDS),
                nanos: Some(0),
            }),
            ..Default::default()
        }),
        spec: Some(pb::apps::v1::DeploymentSpec {
            replicas: Some(0),
            min_ready_seconds: Some(0),
            paused: Some(false),
            strategy: Some(Default::default()),
            ..Default::default()
        }),
        status: Some(pb::apps::v1::DeploymentStatus {
            replicas: Some(0),
            ..Default::default()
        }),
    };
    let def = crate::registry::Registry::new()
        .snapshot()
        .get("apps", "v1", "deployments")
        .unwrap();
    let mut body = MAGIC.to_vec();
    wire::put_bytes(&mut body, 2, &deployment.encode_to_vec());
    assert_eq!(
        decode(&def, &body).unwrap(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": 0, "strategy": {}}, "status": {}})
    );
}

#[test]
fn pod_bindings_decode() {
    let binding = pb::core::v1::Binding {
        metadata: Some(pb_meta::ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        }),
        target: Some(pb::core::v1::ObjectReference {
            kind: Some("Node".into()),
            name: Some("node-1".into()),
            ..Default::default()
        }),
    };
    let mut body = MAGIC.to_vec();
    wire::put_bytes(&mut body, 2, &binding.encode_to_vec());
    assert_eq!(
        decode_kind("v1", "Binding", &body).unwrap(),
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
               "target": {"kind": "Node", "name": "node-1"}})
    );
}

#[test]
fn delete_options_decode() {
    let options = pb_meta::DeleteOptions {
        grace_period_seconds: Some(0),
        propagation_policy: Some("Foreground".into()),
        preconditions: Some(pb_meta::Preconditions {
            uid: Some("u".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let mut body = MAGIC.to_vec();
    wire::put_bytes(&mut body, 2, &options.encode_to_vec());
    assert_eq!(
        decode_delete_options(&body).unwrap(),
        json!({"gracePeriodSeconds": 0, "propagationPolicy": "Foreground", "preconditions": {"uid": "u"}})
    );
}

#[test]
fn lists_statuses_and_watch_frames_encode() {
    let list = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "9", "continue": "abc"},
                      "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]});
    let (_, kind, raw) = unwrap(&encode(&list).unwrap());
    assert_eq!(kind, "PodList");
    let decoded = pb::core::v1::PodList::decode(raw.as_slice()).unwrap();
    assert_eq!(decoded.items.len(), 2);
    assert_eq!(decoded.metadata.unwrap().r#continue.as_deref(), Some("abc"));

    let status = crate::error::ApiError::bad_request("nope").status_value();
    let (_, kind, raw) = unwrap(&encode(&status).unwrap());
    assert_eq!(kind, "Status");
    let decoded = pb_meta::Status::decode(raw.as_slice()).unwrap();
    assert_eq!(
        (decoded.code, decoded.message.as_deref()),
        (Some(400), Some("nope"))
    );

    let object =
        encode(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}})).unwrap();
    let frame = watch_frame("ADDED", &object);
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4);
    let event = pb_meta::WatchEvent::decode(&frame[4..]).unwrap();
    assert_eq!(event.r#type.as_deref(), Some("ADDED"));
    assert_eq!(event.object.unwrap().raw.unwrap(), object);
}

#[test]
fn bad_bodies_and_custom_resources_are_refused() {
    let snapshot = crate::registry::Registry::new().snapshot();
    let def = snapshot.get("", "v1", "configmaps").unwrap();
    assert_eq!(decode(&def, b"{}").unwrap_err().code, 400);
    assert_eq!(decode(&def, b"k8s\0\xff\xff").unwrap_err().code, 400);
    let mut wrong = MAGIC.to_vec();
    // `data` (a map, field 2) sent as a number.
    wire::put_nested(&mut wrong, 2, |out| {
        wire::put_varint(out, 2, 7);
        Ok::<_, TranscodeError>(())
    })
    .unwrap();
    assert_eq!(decode(&def, &wrong).unwrap_err().code, 400);
    assert!(encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget"})).is_err());
    assert!(
        encode(&json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "no"}})).is_err()
    );
}

#[test]
fn accept_headers_pick_the_encoding() {
    let snapshot = crate::registry::Registry::new().snapshot();
    let pods = snapshot.get("", "v1", "pods").unwrap();
    let cases = [
        (
            "application/vnd.kubernetes.protobuf, */*",
            Encoding::Protobuf,
        ),
        ("application/json", Encoding::Json),
        ("", Encoding::Json),
        ("*/*", Encoding::Json),
        (
            "application/json;q=0.5, application/vnd.kubernetes.protobuf",
            Encoding::Protobuf,
        ),
        (
            "application/vnd.kubernetes.protobuf;q=0.1, application/json",
            Encoding::Json,
        ),
    ];
    for (accept, expected) in cases {
        assert_eq!(negotiate(accept, &pods).unwrap(), expected, "{accept}");
    }
    assert!(accepts_only_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(!accepts_only_protobuf(
        "application/vnd.kubernetes.protobuf, */*"
    ));
    assert!(!accepts_only_protobuf(""));
}
