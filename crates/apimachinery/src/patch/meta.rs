//! Which lists of a built-in kind a strategic merge patch merges, and by
//! which key.
//!
//! Upstream reads this from the Go struct tags `patchStrategy` and
//! `patchMergeKey` of k8s.io/api. k8s-openapi 0.29 (with its `schemars`
//! feature) emits no `x-kubernetes-patch-*` extensions in its schemas, so
//! there is nothing to derive it from at run time: this module is a table,
//! transcribed from the k8s.io/api v0.33 tags, of the kinds kstress serves.
//! Lists absent from it are atomic (replaced whole), as upstream.

use std::collections::HashMap;
use std::sync::LazyLock;

/// How a list declared `patchStrategy: merge` merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListMerge {
    /// Objects merged by the value of this key (containers by `name`).
    ByKey(&'static str),
    /// Scalars merged as a set (`finalizers`).
    Primitives,
}

/// One field of a kind's schema. A list's node describes its items.
#[derive(Debug, Default)]
pub(crate) struct Node {
    children: HashMap<&'static str, Node>,
    list: Option<ListMerge>,
}

impl Node {
    /// The node at a dotted path below this one, created as needed.
    fn at(&mut self, path: &'static str) -> &mut Node {
        path.split('.')
            .filter(|name| !name.is_empty())
            .fold(self, |node, name| node.children.entry(name).or_default())
    }
}

/// Where a merge is looked up while walking a patch: the node of the
/// current object, or nothing for fields outside the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema<'a>(Option<&'a Node>);

impl<'a> Schema<'a> {
    pub(crate) fn child(self, field: &str) -> Schema<'a> {
        Schema(self.0.and_then(|node| node.children.get(field)))
    }

    /// The merge strategy of this field, if it is a merging list.
    pub(crate) fn list_merge(self) -> Option<ListMerge> {
        self.0.and_then(|node| node.list)
    }

    pub(crate) fn merge_key(self) -> Option<&'static str> {
        match self.list_merge() {
            Some(ListMerge::ByKey(key)) => Some(key),
            _ => None,
        }
    }
}

/// The strategic-merge metadata of one kind; cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct PatchMeta {
    root: &'static Node,
}

impl PatchMeta {
    /// The metadata of a built-in kind kstress serves, or `None` for kinds
    /// strategic merge patch does not apply to (custom resources: upstream
    /// answers 415 Unsupported Media Type).
    pub fn for_kind(group: &str, version: &str, kind: &str) -> Option<PatchMeta> {
        let table = match (group, version, kind) {
            ("", "v1", "Pod") => &*POD,
            ("apps", "v1", "Deployment" | "ReplicaSet") | ("batch", "v1", "Job") => &*WORKLOAD,
            ("", "v1", "Node") => &*NODE,
            ("", "v1", "Service") => &*SERVICE,
            ("", "v1", "Namespace") => &*NAMESPACE,
            ("", "v1", "ServiceAccount") => &*SERVICE_ACCOUNT,
            ("", "v1", "ConfigMap" | "Secret" | "Event")
            | ("events.k8s.io", "v1", "Event")
            | ("coordination.k8s.io", "v1", "Lease")
            | ("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
            | ("autoscaling", "v1", "Scale")
            | (
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding",
            ) => &*OBJECT_ONLY,
            _ => return None,
        };
        Some(PatchMeta { root: table })
    }

    pub(crate) fn schema(&self) -> Schema<'static> {
        Schema(Some(self.root))
    }
}

use ListMerge::{ByKey, Primitives};

/// ObjectMeta, at `metadata` of every object and of pod templates.
const OBJECT_META: &[(&str, ListMerge)] = &[
    ("metadata.ownerReferences", ByKey("uid")),
    ("metadata.finalizers", Primitives),
];

/// PodSpec, relative to `spec` of a pod or of a pod template.
const POD_SPEC: &[(&str, ListMerge)] = &[
    ("containers", ByKey("name")),
    ("initContainers", ByKey("name")),
    ("ephemeralContainers", ByKey("name")),
    ("volumes", ByKey("name")),
    ("imagePullSecrets", ByKey("name")),
    ("hostAliases", ByKey("ip")),
    ("topologySpreadConstraints", ByKey("topologyKey")),
    ("schedulingGates", ByKey("name")),
    ("resourceClaims", ByKey("name")),
];

/// Container and EphemeralContainer, relative to one item of the lists.
const CONTAINER: &[(&str, ListMerge)] = &[
    ("ports", ByKey("containerPort")),
    ("env", ByKey("name")),
    ("volumeMounts", ByKey("mountPath")),
    ("volumeDevices", ByKey("devicePath")),
];

const POD_STATUS: &[(&str, ListMerge)] = &[
    ("status.conditions", ByKey("type")),
    ("status.hostIPs", ByKey("ip")),
    ("status.podIPs", ByKey("ip")),
    ("status.resourceClaimStatuses", ByKey("name")),
];

const STATUS_CONDITIONS: &[(&str, ListMerge)] = &[("status.conditions", ByKey("type"))];

fn table(build: impl FnOnce(&mut Node)) -> Node {
    let mut root = Node::default();
    add(&mut root, OBJECT_META);
    build(&mut root);
    root
}

/// Declares lists relative to `node`.
fn add(node: &mut Node, entries: &[(&'static str, ListMerge)]) {
    for (path, merge) in entries {
        node.at(path).list = Some(*merge);
    }
}

fn add_pod_spec(spec: &mut Node) {
    add(spec, POD_SPEC);
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        add(spec.at(list), CONTAINER);
    }
}

static OBJECT_ONLY: LazyLock<Node> = LazyLock::new(|| table(|_| {}));

static POD: LazyLock<Node> = LazyLock::new(|| {
    table(|root| {
        add_pod_spec(root.at("spec"));
        add(root, POD_STATUS);
    })
});

/// Deployment, ReplicaSet and Job: a pod template plus status conditions.
static WORKLOAD: LazyLock<Node> = LazyLock::new(|| {
    table(|root| {
        add(root.at("spec.template"), OBJECT_META);
        add_pod_spec(root.at("spec.template.spec"));
        add(root, STATUS_CONDITIONS);
    })
});

static NODE: LazyLock<Node> = LazyLock::new(|| {
    table(|root| {
        add(
            root,
            &[
                ("spec.podCIDRs", Primitives),
                ("status.conditions", ByKey("type")),
                ("status.addresses", ByKey("type")),
            ],
        );
    })
});

static SERVICE: LazyLock<Node> = LazyLock::new(|| {
    table(|root| {
        add(root, &[("spec.ports", ByKey("port"))]);
        add(root, STATUS_CONDITIONS);
    })
});

static NAMESPACE: LazyLock<Node> = LazyLock::new(|| table(|root| add(root, STATUS_CONDITIONS)));

static SERVICE_ACCOUNT: LazyLock<Node> =
    LazyLock::new(|| table(|root| add(root, &[("secrets", ByKey("name"))])));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_lists_and_their_keys() {
        let pod = PatchMeta::for_kind("", "v1", "Pod").unwrap().schema();
        let containers = pod.child("spec").child("containers");
        assert_eq!(containers.merge_key(), Some("name"));
        assert_eq!(containers.child("ports").merge_key(), Some("containerPort"));
        assert_eq!(
            containers.child("volumeMounts").merge_key(),
            Some("mountPath")
        );
        assert_eq!(
            pod.child("spec").child("tolerations").list_merge(),
            None,
            "tolerations are atomic"
        );
        assert_eq!(
            containers.child("resizePolicy").list_merge(),
            None,
            "resizePolicy is atomic"
        );
        assert_eq!(
            pod.child("metadata").child("finalizers").list_merge(),
            Some(ListMerge::Primitives)
        );
        assert_eq!(
            pod.child("status").child("conditions").merge_key(),
            Some("type")
        );
    }

    #[test]
    fn workloads_carry_a_pod_template() {
        for (group, kind) in [
            ("apps", "Deployment"),
            ("apps", "ReplicaSet"),
            ("batch", "Job"),
        ] {
            let spec = PatchMeta::for_kind(group, "v1", kind)
                .unwrap()
                .schema()
                .child("spec")
                .child("template");
            assert_eq!(
                spec.child("spec")
                    .child("initContainers")
                    .child("env")
                    .merge_key(),
                Some("name"),
                "{kind}"
            );
            assert_eq!(
                spec.child("metadata").child("ownerReferences").merge_key(),
                Some("uid"),
                "{kind}"
            );
        }
    }

    #[test]
    fn services_merge_ports_by_port_and_custom_resources_have_no_meta() {
        let service = PatchMeta::for_kind("", "v1", "Service").unwrap().schema();
        assert_eq!(
            service.child("spec").child("ports").merge_key(),
            Some("port")
        );
        assert!(PatchMeta::for_kind("stable.example.com", "v1", "CronTab").is_none());
        assert!(PatchMeta::for_kind("", "v2", "Pod").is_none());
        for kind in [
            "ConfigMap",
            "Secret",
            "Namespace",
            "Node",
            "ServiceAccount",
            "Event",
        ] {
            assert!(PatchMeta::for_kind("", "v1", kind).is_some(), "{kind}");
        }
    }
}
